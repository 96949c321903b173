"""Use cases shared by the API, the CLI (local mode) and, later, the dashboard.

``Services`` owns the two stores for the life of the process; handlers call its methods and get
plain values back. Nothing here knows about HTTP.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from monitor import ingest, tenancy
from monitor.errors import (
    ConflictError,
    NotFoundError,
    ValidationFailed,
)
from monitor.ingest_prepare import BatchPreparer, IngestKind, PreparedIngest
from monitor.schemas import ModelIn
from monitor.settings import Settings
from monitor.tenancy import Scope
from storage.log_reads import LogReads
from storage.logstore import LogStore, SchemaChangeError
from storage.metadata import AlreadyExists, MetadataStore
from storage.metadata import NotFound as MetaNotFound
from storage.private import private_dir
from storage.types import ApiKeyInfo, AppendResult, ModelInfo, ModelSchema

log = logging.getLogger("driftwatch")


@dataclass(frozen=True)
class IngestSummary:
    batch_id: str
    received: int
    accepted: int
    duplicates: int
    rejected: int
    errors: list[ingest.RowError]


@dataclass(frozen=True)
class Caller:
    """Who is calling: an API key, or a local operator (CLI on the data dir)."""

    actor: str
    role: str
    tenant_id: str | None = None

    @property
    def scope(self) -> Scope:
        """The tenants this caller sees (:mod:`monitor.tenancy`)."""
        return tenancy.of_key(self.tenant_id)

    @classmethod
    def of_key(cls, key: ApiKeyInfo) -> Caller:
        return cls(actor=f"key:{key.prefix}", role=key.role, tenant_id=key.tenant_id)

    @classmethod
    def local(cls) -> Caller:
        return cls(actor="local", role="admin")


Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Services:
    """The process's stores and the operations on them.

    ``clock`` is the process's one source of "now" (aware UTC): the metadata store's
    timestamps, the runner's due windows, KPI windows, alert times and the dashboard's
    relative ranges all read it. Tests and the demo pass a fixed or shifted clock so what
    they build does not depend on the calendar day.
    """

    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        logstore: LogStore,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.logstore = logstore
        # bounded raw-log reads (monitor.ports.LogReader / ColumnReader) for the runner and
        # the read models
        self.logs = LogReads(logstore)
        self.clock: Clock = clock or system_clock
        self.counters: dict[str, int] = {
            "ingested_rows": 0,
            "rejected_rows": 0,
            "auth_failures": 0,
        }
        self._lock = threading.Lock()
        # name -> (model, monotonic time read): every ingest request looks its model up (twice:
        # for the 404 before the body is read, then to validate); see get_model
        self._models: dict[str, tuple[ModelInfo, float]] = {}
        # validates ingest batches (reads and writes nothing); the ingest front process
        # (monitor.api.ingest_front) runs one of its own
        self.preparer = BatchPreparer(
            settings, self.now, lambda model, schema: logstore.arrow_schema(model, schema)
        )
        # the process's object graph, attached by monitor.composition.compose (one place
        # builds it; this module cannot import it)
        self.components: Any = None

    @classmethod
    def open(cls, settings: Settings, clock: Clock | None = None) -> Services:
        """Create the data dir, migrate the metadata DB and open the log store."""
        private_dir(settings.data_dir)
        metadata = MetadataStore(settings.metadata_url, clock=clock)
        metadata.upgrade()
        ckpt = settings.duckdb_background_checkpoint
        logstore = LogStore(
            settings.duckdb_path,
            memory_limit=settings.duckdb_memory_limit,
            background_checkpoint=None if ckpt == "off" else ckpt,
            clock=clock,
            group_commit=settings.ingest_group_commit,
        )
        services = cls(settings, metadata, logstore, clock)
        for info in metadata.list_models():  # tables follow the registered schemas
            logstore.ensure_model(info.name, info.schema)
        if settings.lake_dir is not None:  # after the tables: copies what a crash left behind
            from storage.lake_mirror import LakeMirror  # pyarrow's Parquet writer: only when on

            LakeMirror.open(logstore, settings.lake_dir)
        return services

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the process counter ``name`` (exported by ``/metrics``)."""
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def close(self) -> None:
        self.logstore.close()
        self.metadata.dispose()

    # ------------------------------------------------------------------ models
    def register_model(self, body: ModelIn, caller: Caller) -> ModelInfo:
        schema = body.to_schema()
        if self.metadata.get_model(body.name) is not None:
            raise ConflictError(
                f"model {body.name!r} exists; change its schema with PUT /api/v1/models/{body.name}"
            )
        self._ensure_tables(body.name, schema)
        self._models.pop(body.name, None)
        try:
            return self.metadata.create_model(body.name, schema, body.description, caller.actor)
        except AlreadyExists as exc:
            raise ConflictError(f"model {body.name!r} exists") from exc

    def update_model(self, name: str, body: ModelIn, caller: Caller) -> ModelInfo:
        current = self.get_model(name)
        if body.name != name:
            raise ValidationFailed(f"body name {body.name!r} differs from the URL's {name!r}")
        if body.task != current.task:
            raise ValidationFailed(
                f"task cannot change ({current.task} → {body.task}); register a new model"
            )
        schema = body.to_schema()
        self._ensure_tables(name, schema)
        try:
            return self.metadata.update_model_schema(name, schema, caller.actor)
        except MetaNotFound as exc:
            raise NotFoundError(f"model {name!r} not found") from exc
        finally:
            self._models.pop(name, None)

    def _ensure_tables(self, name: str, schema: ModelSchema) -> None:
        try:
            self.logstore.ensure_model(name, schema)
        except SchemaChangeError as exc:
            raise ConflictError(str(exc)) from exc

    MODEL_CACHE_SECONDS = 2.0

    def get_model(self, name: str) -> ModelInfo:
        """The registered model (NotFoundError listing the known ones).

        Read from the metadata store at most every ``MODEL_CACHE_SECONDS`` per model: schemas
        change only through this process's ``register_model``/``update_model`` (one process
        owns the log store), which drop the cached entry; the bound covers anything else."""
        cached = self._models.get(name)
        if cached is not None and time.monotonic() - cached[1] < self.MODEL_CACHE_SECONDS:
            return cached[0]
        info = self.metadata.get_model(name)
        if info is not None:
            self._models[name] = (info, time.monotonic())
        if info is None:
            known = [m.name for m in self.metadata.list_models()]
            raise NotFoundError(f"model {name!r} not found; registered models: {known}")
        return info

    def cached_model(self, name: str) -> ModelInfo | None:
        """The model as ``get_model`` has it in memory (None when not, or when stale): reads
        nothing."""
        cached = self._models.get(name)
        if cached is not None and time.monotonic() - cached[1] < self.MODEL_CACHE_SECONDS:
            return cached[0]
        return None

    def known_model(self, name: str) -> ModelInfo | None:
        """The model as ``get_model`` last read it, however long ago (None when never, or
        dropped by a schema change here): reads nothing. ``get_model`` still decides."""
        cached = self._models.get(name)
        return cached[0] if cached is not None else None

    def list_models(self) -> list[ModelInfo]:
        return self.metadata.list_models()

    # ------------------------------------------------------------------ ingest
    def now(self) -> datetime:
        """The process's current time (aware UTC)."""
        return self.clock()

    def _limits(self, *, check_time: bool = True) -> ingest.Limits:
        """The per-row bounds of ingest, from the settings."""
        return self.preparer.limits(check_time=check_time)

    def _finish(self, v: ingest.Validated, batch_id: str, accepted: int, dup: int) -> IngestSummary:
        if v.rejected:
            self.logstore.quarantine(v.rejected)
        with self._lock:
            self.counters["ingested_rows"] += accepted
            self.counters["rejected_rows"] += len(v.rejected)
        return IngestSummary(
            batch_id=batch_id,
            received=v.received,
            accepted=accepted,
            duplicates=dup,
            rejected=len(v.rejected),
            errors=v.errors,
        )

    def ingest_inferences(
        self, model: str, parsed: ingest.ParsedBody, caller: Caller
    ) -> IngestSummary:
        """Store inference rows. A ``label`` column (a file of past predictions with their
        outcomes) is stored as those rows' labels, as if sent to the labels endpoint."""
        return self._ingest("inferences", model, parsed, caller)

    def ingest_labels(self, model: str, parsed: ingest.ParsedBody, caller: Caller) -> IngestSummary:
        return self._ingest("labels", model, parsed, caller)

    def ingest_events(self, parsed: ingest.ParsedBody, caller: Caller) -> IngestSummary:
        return self._ingest("events", None, parsed, caller)

    def _ingest(
        self, kind: IngestKind, model: str | None, parsed: ingest.ParsedBody, caller: Caller
    ) -> IngestSummary:
        """One ingest request, in the routes' order: the model (404), validation, new tenants,
        the append (durable on return), the quarantine. ``monitor.api.lean_ingest`` runs the
        same steps, split where its group commit needs them split."""
        info = self.get_model(model) if model is not None else None
        prepared = self.prepare_ingest(kind, info, parsed, caller.tenant_id)
        self.admit_tenants(prepared)
        return self.finish_ingest(prepared, self.logstore.append(*prepared.append_args))

    def prepare_ingest(
        self,
        kind: IngestKind,
        info: ModelInfo | None,
        parsed: ingest.ParsedBody,
        tenant_scope: str | None,
    ) -> PreparedIngest:
        """Validate a batch (reads and writes nothing): its typed valid rows, its errors and
        rejected rows. ``info`` is the model (None for events)."""
        return self.preparer.prepare(kind, info, parsed, tenant_scope)

    def _plan(
        self, kind: IngestKind, info: ModelInfo | None
    ) -> tuple[list[ingest.FieldRule], pa.Schema]:
        """The field rules and target Arrow schema of a batch (``BatchPreparer.plan``)."""
        return self.preparer.plan(kind, info)

    def admit_tenants(self, prepared: PreparedIngest) -> None:
        """Create the tenants an inference or event batch names (before its append)."""
        if prepared.kind != "labels" and prepared.v.tenants:
            self.metadata.ensure_tenants(prepared.v.tenants)

    def finish_ingest(self, prepared: PreparedIngest, result: AppendResult) -> IngestSummary:
        """After the batch's append: its labels (an inference batch with a ``label`` column),
        the quarantine of its rejected rows, the counters; the request's summary."""
        labels = prepared.labels
        if labels is not None and labels.num_rows:
            assert prepared.model is not None
            self.logstore.append_labels(prepared.model, labels)
        return self._finish(prepared.v, prepared.batch_id, result.accepted, result.duplicates)

    def put_reference(
        self, model: str, name: str, parsed: ingest.ParsedBody, caller: Caller
    ) -> tuple[int, IngestSummary]:
        info = self.get_model(model)
        if not _is_name(name):
            raise ValidationFailed(f"reference name {name!r} must match [a-z][a-z0-9_-]{{0,62}}")
        batch_id = uuid.uuid4().hex
        rules = [
            ingest.FieldRule(
                r.name, r.kind, required=False, unit_interval=r.unit_interval, classes=r.classes
            )
            for r in ingest.inference_rules(info.schema)
        ] + [ingest.prediction_rule(info.schema, "label", required=False)]
        v = ingest.validate(
            parsed,
            rules,
            ingest.rules_schema(rules),
            kind="reference",
            model=model,
            now=self.now(),
            limits=self._limits(check_time=False),  # a baseline may be synthetic
            batch_id=batch_id,
            aliases=dict(info.schema.aliases),
        )
        if v.table.num_rows == 0:
            raise ValidationFailed(
                f"reference {name!r} has no valid row ({v.received} received)",
            )
        version = self.logstore.put_reference(model, name, v.table)
        self.metadata.audit(
            caller.actor,
            "reference.put",
            "reference",
            f"{model}/{name}",
            {"version": version, "rows": v.table.num_rows, "rejected": len(v.rejected)},
        )
        return version, self._finish(v, batch_id, v.table.num_rows, 0)


def _is_name(name: str) -> bool:
    return re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", name) is not None
