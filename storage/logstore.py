"""DuckDB log store: inference logs, labels, business events, references, quarantine.

CONTRACT STUB — the log-store helper replaces the bodies; signatures are what callers use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from storage.types import AppendResult, ModelSchema, QuarantineRow


class LogStoreError(Exception):
    """Base of log-store errors."""


class SchemaChangeError(LogStoreError):
    """A column would change type (refused); message names the column, old and new type."""


class LogStore:
    """One DuckDB file, one write connection (all writes serialised), read cursors per thread.

    ``path`` may be ``":memory:"`` for tests.
    """

    def __init__(self, path: str | Path) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # --- schema -----------------------------------------------------------------------
    def arrow_schema(self, model: str, schema: ModelSchema) -> pa.Schema:
        """The Arrow schema of a validated inference batch for this model (column order/types)."""
        raise NotImplementedError

    def ensure_model(self, model: str, schema: ModelSchema) -> None:
        """Create the model's tables, or add nullable columns for new features/scores.
        A changed type raises SchemaChangeError and changes nothing."""
        raise NotImplementedError

    # --- writes (each call is one transaction) ---------------------------------------
    def append_inferences(self, model: str, batch: pa.Table) -> AppendResult:
        """Append validated rows (columns as ``arrow_schema``); rows whose request_id is already
        stored (or repeated inside the batch) count as duplicates and are not stored again."""
        raise NotImplementedError

    def append_labels(self, model: str, batch: pa.Table) -> AppendResult:
        """Columns: request_id (string), label (typed per task), ts (timestamp[us, UTC], nullable).
        Idempotent by request_id (first label wins); labels may precede their inference row."""
        raise NotImplementedError

    def append_events(self, batch: pa.Table) -> AppendResult:
        """Columns: event_id (string), tenant_id, ts (timestamp[us, UTC]), name, value (double,
        nullable), request_id (nullable), model (nullable). Idempotent by event_id."""
        raise NotImplementedError

    def put_reference(self, model: str, name: str, batch: pa.Table) -> int:
        """Store a new version of the named reference dataset; returns the version (1, 2, ...)."""
        raise NotImplementedError

    def quarantine(self, rows: Sequence[QuarantineRow]) -> None:
        raise NotImplementedError

    # --- reads -----------------------------------------------------------------------
    def count_inferences(self, model: str, tenant_id: str | None = None) -> int:
        raise NotImplementedError

    def read_inferences(
        self,
        model: str,
        start: datetime | None = None,
        end: datetime | None = None,
        tenant_id: str | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        raise NotImplementedError

    def read_labels(self, model: str) -> pa.Table:
        raise NotImplementedError

    def read_joined(self, model: str, tenant_id: str | None = None) -> pa.Table:
        """Inference rows left-joined with their labels (column ``label``)."""
        raise NotImplementedError

    def read_events(self, tenant_id: str | None = None) -> pa.Table:
        raise NotImplementedError

    def list_references(self, model: str) -> list[tuple[str, int, int]]:
        """(name, version, rows) for every stored reference version."""
        raise NotImplementedError

    def read_reference(self, model: str, name: str, version: int | None = None) -> pa.Table:
        """The latest version unless ``version`` is given; KeyError names what exists."""
        raise NotImplementedError

    def read_quarantine(self, model: str | None = None, limit: int = 1000) -> pa.Table:
        raise NotImplementedError

    def tenants_seen(self, model: str) -> list[str]:
        raise NotImplementedError
