"""Engine construction: one pooled Engine per store, tuned per backend.

SQLite needs care to be shared by API threads: WAL lets readers run while one writer writes,
``busy_timeout`` makes a writer wait for the lock instead of failing at once, and write
transactions start with ``BEGIN IMMEDIATE`` so they take the write lock up front. (A deferred
transaction that reads and then writes fails with "database is locked" without waiting when
another writer committed in between; the busy handler is not consulted in that case.)
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from storage.private import private_dir, private_file

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
# Execution option marking a connection whose transaction will write (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "driftwatch_write"
SQLITE_BUSY_TIMEOUT_MS = 15_000


def make_engine(url: str | URL) -> Engine:
    """Create the store's Engine for a SQLite or PostgreSQL URL.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        ``sqlite:///path.db`` (parent folders are created), ``sqlite://`` for an in-memory
        database (one shared connection, tests only) or ``postgresql+psycopg://...``.

    Returns
    -------
    sqlalchemy.engine.Engine

    Raises
    ------
    ValueError
        For any other backend.
    """
    u = make_url(url)
    backend = u.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(
            f"database URL backend {backend!r} is not supported; use one of "
            f"{', '.join(SUPPORTED_BACKENDS)}"
        )
    if backend == "postgresql":
        # pre_ping: a restarted PostgreSQL must not turn the first requests into errors.
        return create_engine(u, pool_size=5, max_overflow=10, pool_pre_ping=True, pool_recycle=1800)
    return _sqlite_engine(u)


def _sqlite_engine(u: URL) -> Engine:
    memory = u.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if memory:
        # Every new connection to ":memory:" is a new, empty database: share one connection.
        kwargs["poolclass"] = StaticPool
    else:
        db = Path(u.database or "").expanduser()
        private_dir(db.parent)
        private_file(db, create=True)  # SQLite takes an empty file as an empty database
        kwargs.update(pool_size=5, max_overflow=10)
    engine = create_engine(u, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module (it would skip it for SELECT and DDL) so
        # that the "begin" hook below decides how every transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                _enable_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (a persistent property of the file), waiting out other openers.

    Changing the journal mode needs an exclusive lock and, unlike ordinary statements, does
    not always go through the busy handler: two processes opening a new file at once would
    see "database is locked". Retry until the file is in WAL mode or the busy timeout passes.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            # Whatever it answers: a file system without WAL support keeps its old mode.
            cursor.execute("PRAGMA journal_mode = WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
