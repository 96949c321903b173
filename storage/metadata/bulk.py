"""Many-row INSERTs without SQLAlchemy's per-value parameter processing.

A Core ``insert()`` run with a list of rows binds every value of every row through the
compiled statement (``construct_params``) and the column type's bind processor in Python: for
the ~16-column result rows a backfill writes, ~38 us a row on SQLite, most of it converting
the same few window datetimes again and again. :class:`BulkInsert` compiles the statement once
per dialect and hands the driver's ``executemany`` rows whose values went through the same
bind processors, applied column by column, with each distinct value of a ``memo`` column
(datetimes) converted once. The stored rows are those of the Core path: same SQL, same
processors, same row order, hence the same autoincrement ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect

__all__ = ["BulkInsert"]


class BulkInsert:
    """``INSERT INTO table (columns) VALUES (...)`` for many rows at once on one dialect.

    Parameters
    ----------
    table
        The table; rows give the values of ``keys`` in that order.
    keys
        Column keys inserted (the others take their server or autoincrement value).
    dialect
        The dialect of the connections this runs on.
    memo
        Keys whose values are hashable and repeat (datetimes): each distinct value is
        converted once per call.
    """

    def __init__(
        self, table: Table, keys: Sequence[str], dialect: Dialect, memo: Iterable[str] = ()
    ) -> None:
        self.keys = tuple(keys)
        # inline(): no RETURNING of the primary key (the Core executemany path has none either)
        compiled = table.insert().inline().compile(dialect=dialect, column_keys=list(self.keys))
        self.sql = compiled.string
        self._positional = bool(compiled.positional)
        if self._positional and tuple(compiled.positiontup or ()) != self.keys:
            raise ValueError(f"compiled parameters {compiled.positiontup} are not {self.keys}")
        memo = set(memo)
        self._procs: list[tuple[int, Callable[[Any], Any], bool]] = []
        for i, key in enumerate(self.keys):
            proc = table.columns[key].type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self._procs.append((i, proc, key in memo))

    def run(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (values in :attr:`keys` order) in the connection's transaction."""
        if not rows:
            return
        cols: list[Sequence[Any]] = list(zip(*rows, strict=True))
        if len(cols) != len(self.keys):
            raise ValueError(f"rows have {len(cols)} values, expected {len(self.keys)}")
        for i, proc, memo in self._procs:
            if memo:
                seen: dict[Any, Any] = {}
                out = []
                for v in cols[i]:
                    if v in seen:
                        out.append(seen[v])
                    else:
                        out.append(seen.setdefault(v, proc(v)))
                cols[i] = out
            else:
                cols[i] = [proc(v) for v in cols[i]]
        params: list[Any] = list(zip(*cols, strict=True))
        if not self._positional:
            keys = self.keys
            params = [dict(zip(keys, p, strict=True)) for p in params]
        conn.exec_driver_sql(self.sql, params)
