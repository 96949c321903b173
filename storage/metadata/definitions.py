"""Versioned, audited definitions: monitors, KPIs and alert rules, one row per name.

Their tables share :class:`DefinitionColumns`; their stores share :class:`Definitions`: find a
definition by name, create it at version 1, record a change (version + 1, ``updated_at``), delete
it, list them. Every write is one transaction with its audit entry (``<action>.create``,
``.update``, ``.delete``). What counts as a change and what its audit entry says stay with each
store.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.metadata.base import DefinitionColumns
from storage.metadata.errors import AlreadyExists, NotFound
from storage.metadata.store import MetadataStore

__all__ = ["Definitions", "History"]


RowT = TypeVar("RowT", bound=DefinitionColumns)
RecordT = TypeVar("RecordT")

# (session, row as changed, action, diff, actor, now): a store's own record of each change,
# written in the change's transaction (the monitors' version history).
History = Callable[[Session, RowT, str, dict[str, Any], str, datetime], None]


class Definitions(Generic[RowT, RecordT]):
    """The definitions of one table.

    Parameters
    ----------
    meta
        The metadata store: engine, clock and audit log.
    row, record
        The table's ORM class and the function that turns its rows into the frozen records
        returned.
    noun
        The definition in error messages (``"alert rule"``).
    action, object_type
        Its audit entries: ``f"{action}.create"`` etc. on ``object_type``.
    history
        Called on every create, update and delete with the row (before a delete, whose
        version is then ``row.version + 1``).
    """

    def __init__(
        self,
        meta: MetadataStore,
        row: type[RowT],
        record: Callable[[RowT], RecordT],
        *,
        noun: str,
        action: str,
        object_type: str,
        history: History[RowT] | None = None,
    ) -> None:
        self._meta = meta
        self._row = row
        self._record = record
        self._noun = noun
        self._action = action
        self._object_type = object_type
        self._history = history

    def find(self, s: Session, name: str) -> RowT | None:
        return s.scalar(select(self._row).where(self._row.name == name))

    def require(self, s: Session, name: str) -> RowT:
        row = self.find(s, name)
        if row is None:
            raise NotFound(f"{self._noun} {name!r} not found")
        return row

    def get(self, name: str) -> RecordT | None:
        with self._meta.reading() as s:
            row = self.find(s, name)
            return None if row is None else self._record(row)

    def list(
        self, enabled: bool | None = None, where: ColumnElement[bool] | None = None
    ) -> builtins.list[RecordT]:
        """By name; ``enabled`` and ``where`` (``None``: any) filter."""
        stmt = select(self._row).order_by(self._row.name)
        if enabled is not None:
            stmt = stmt.where(self._row.enabled == enabled)
        if where is not None:
            stmt = stmt.where(where)
        with self._meta.reading() as s:
            return [self._record(r) for r in s.scalars(stmt)]

    def changed_since(self, ts: datetime) -> builtins.list[RecordT]:
        """Definitions created or changed at or after ``ts`` (a scheduler's reconcile)."""
        with self._meta.reading() as s:
            stmt = select(self._row).where(self._row.updated_at >= ts).order_by(self._row.name)
            return [self._record(r) for r in s.scalars(stmt)]

    def add(
        self, s: Session, name: str, actor: str, enabled: bool, detail: dict[str, Any], **body: Any
    ) -> RowT:
        """A new row at version 1 (``body``: its other columns), audited with ``detail``."""
        now = self._meta.now()
        row = self._row(
            name=name,
            version=1,
            enabled=enabled,
            created_by=actor,
            created_at=now,
            updated_at=now,
            **body,
        )
        s.add(row)
        if self._history is not None:
            self._history(s, row, "create", {}, actor, now)
        self._audit(s, actor, "create", name, detail)
        return row

    def create(
        self, name: str, actor: str, enabled: bool, detail: dict[str, Any], **body: Any
    ) -> RecordT:
        """:meth:`add` in its own transaction; :class:`AlreadyExists` for a taken name (also
        when a concurrent create takes it first)."""
        try:
            with self._meta.writing() as s:
                if self.find(s, name) is not None:
                    raise AlreadyExists(f"{self._noun} {name!r} already exists")
                row = self.add(s, name, actor, enabled, detail, **body)
                s.flush()
                return self._record(row)
        except IntegrityError as exc:
            raise AlreadyExists(f"{self._noun} {name!r} already exists") from exc

    def bump(
        self,
        s: Session,
        row: RowT,
        actor: str,
        enabled: bool | None,
        detail: dict[str, Any],
        diff: dict[str, Any] | None = None,
    ) -> RecordT:
        """Record a change the caller made to ``row``'s body: ``enabled`` (``None``: as it
        was), version + 1, ``updated_at``, its history and audit entry (``detail``)."""
        now = self._meta.now()
        if enabled is not None:
            row.enabled = enabled
        row.version += 1
        row.updated_at = now
        if self._history is not None:
            self._history(s, row, "update", diff or {}, actor, now)
        self._audit(s, actor, "update", row.name, detail)
        s.flush()
        return self._record(row)

    def delete(self, name: str, actor: str) -> None:
        with self._meta.writing() as s:
            row = self.require(s, name)
            if self._history is not None:
                self._history(s, row, "delete", {}, actor, self._meta.now())
            s.delete(row)
            self._audit(s, actor, "delete", name, {})

    def _audit(self, s: Session, actor: str, verb: str, name: str, detail: dict[str, Any]) -> None:
        self._meta.record_audit(s, actor, f"{self._action}.{verb}", self._object_type, name, detail)
