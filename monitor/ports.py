"""What monitoring needs from storage: the ports the runner, the KPI service and the read
models are written against.

Ports live with their consumer (``typing.Protocol``); ``storage/`` satisfies them structurally and
never imports ``monitor``. Today's implementations:

========================  ==========================================================
port                      DuckDB implementation (embedded, the default)
========================  ==========================================================
:class:`ProfileEngine`    ``storage.profiles.ProfileStore``
:class:`LogReader`        ``storage.log_reads.LogReads``
:class:`ColumnReader`     ``storage.log_reads.LogReads``
:class:`KpiSource`        ``storage.kpi_sql.KpiQueries``
:class:`ResultStore`      ``storage.metadata.monitoring.MonitoringStore``
:class:`DefinitionStore`  ``storage.metadata.monitoring.MonitoringStore``
:class:`MonitorStore`     ``storage.metadata.monitoring.MonitoringStore`` (both above)
:class:`ModelCatalog`     ``storage.metadata.MetadataStore``
========================  ==========================================================

A second profile engine (profiles computed from a Parquet lake, e.g. by Spark) implements
:class:`ProfileEngine` and passes ``tests/storage/test_engine_contract.py``; nothing above the
port changes. Only the methods the consumers call are here: a method nobody calls is not part
of the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import pyarrow as pa

from storage.kpi_sql import Cells, EventMeasure, LogMeasure
from storage.lake_profiles import LakeFile
from storage.metadata.monitoring import FinishedRun, MonitorRecord, RunRecord
from storage.profiles import ProfileSpec, RawProfile
from storage.types import ModelInfo

__all__ = [
    "ColumnReader",
    "DefinitionStore",
    "KpiSource",
    "LogReader",
    "ModelCatalog",
    "MonitorStore",
    "ProfileEngine",
    "ResultStore",
]

Segment = tuple[str, str]
"""(tenant or ``"*"``, model version or ``"*"``)."""
ColumnKey = tuple[str, str]
"""(column, bins key: the reference's edges key for numeric columns, ``""`` otherwise)."""


class ProfileEngine(Protocol):
    """Mergeable hourly profiles of a model's logs: computed, kept up to date, read per window.

    The contract (``tests/storage/test_engine_contract.py``): a stored profile equals the
    detectors' numpy profile of the same rows exactly; rows that arrive late for a profiled
    hour show in :meth:`refresh` and the hour is recomputed by the next :meth:`ensure`.
    """

    def warm_up(self, *, wait: bool = True) -> None:
        """Load what the first profile build needs (compiled kernels) ahead of time."""
        ...

    def register(self, model: str, spec: ProfileSpec) -> ProfileSpec:
        """Add columns / bin sets to what is profiled for ``model``; the merged spec."""
        ...

    def refresh(self, model: str) -> list[datetime]:
        """Look for late rows: profiled hours that became dirty since the last call, sorted."""
        ...

    def hours(self, model: str, start: datetime, end: datetime) -> dict[datetime, dict[str, Any]]:
        """Profiled hours in ``[start, end)``: hour -> rows, spec, computed_at, changed_at,
        dirty."""
        ...

    def label_hours(self, model: str, since: datetime) -> dict[datetime, datetime]:
        """Hour of the inference -> newest label ``received_at``, for labels received after
        ``since``."""
        ...

    def ensure(
        self,
        model: str,
        start: datetime,
        end: datetime,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """Profile the missing, dirty and re-binned hours of ``[start, end)``; rows scanned."""
        ...

    def window(
        self,
        model: str,
        start: datetime,
        end: datetime,
        columns: Sequence[ColumnKey] | None = None,
        tenant_id: str | None = None,
    ) -> dict[Segment, dict[ColumnKey, RawProfile]]:
        """The hourly profiles of ``[start, end)`` summed per segment."""
        ...

    def windows(
        self,
        model: str,
        bounds: Sequence[tuple[datetime, datetime]],
        columns: Sequence[ColumnKey] | None = None,
        tenant_id: str | None = None,
    ) -> list[dict[Segment, dict[ColumnKey, RawProfile]]]:
        """:meth:`window` of each ``[start, end)`` of ``bounds``, read at once for all."""
        ...

    def row_counts(
        self, model: str, start: datetime, end: datetime, step: timedelta
    ) -> dict[Segment, list[int]]:
        """Rows per window of ``step`` from the stored profiles (unprofiled windows left out)."""
        ...

    def row_counts_windows(
        self, model: str, ranges: Sequence[tuple[datetime, datetime]], step: timedelta
    ) -> list[dict[Segment, list[int]]]:
        """:meth:`row_counts` of each ``[start, end)`` of ``ranges``, read at once for all."""
        ...

    def lake_fed(self, model: str) -> bool:
        """Whether a lake job pushes ``model``'s hours (they are not built from local rows)."""
        ...

    def lake_manifest(self, model: str) -> dict[date, tuple[str, list[LakeFile]]]:
        """Per pushed day: the spec key and the lake files its profiles came from."""
        ...

    def replace_day(
        self,
        model: str,
        day: date,
        rows: pa.Table,
        spec_key: str,
        files: Sequence[LakeFile],
        samples: pa.Table | None = None,
        labels: pa.Table | None = None,
        sample_k: int = 0,
    ) -> int:
        """Replace a day's hours with pushed profile rows (and, spec format 2, sample rows
        and label aggregates) and record their files, at once."""
        ...

    def lake_sample(
        self,
        model: str,
        start: datetime,
        end: datetime,
        columns: Sequence[str],
        n: int,
        *,
        tenant_id: str | None = None,
    ) -> pa.Table:
        """A lake-fed model's window sample from its pushed hourly bottom-k samples: the rows
        :meth:`LogReader.sample` (seed 0) picks from embedded rows."""
        ...

    def label_aggregates(self, model: str, start: datetime, end: datetime) -> pa.Table:
        """A lake-fed model's pushed hourly label aggregates of ``[start, end)``."""
        ...


class LogReader(Protocol):
    """Bounded raw-log reads: samples, labelled rows, operational figures, references."""

    def sample(
        self,
        model: str,
        start: datetime,
        end: datetime,
        columns: Sequence[str],
        n: int,
        *,
        tenant_id: str | None = None,
        seed: int = 0,
    ) -> pa.Table:
        """At most ``n`` rows of the window, uniform, the same for the same ``seed``."""
        ...

    def samples(
        self,
        model: str,
        windows: Sequence[tuple[datetime, datetime]],
        columns: Sequence[str],
        n: int,
        *,
        tenant_id: str | None = None,
        seed: int = 0,
    ) -> list[pa.Table]:
        """:meth:`sample` of each window (the same rows), read at once for all of them."""
        ...

    def labelled(
        self,
        model: str,
        start: datetime,
        end: datetime,
        prediction: str,
        scores: Sequence[str] = (),
    ) -> pa.Table:
        """The window's inferences that have a label."""
        ...

    def labelled_windows(
        self,
        model: str,
        windows: Sequence[tuple[datetime, datetime]],
        prediction: str,
        scores: Sequence[str] = (),
    ) -> list[pa.Table]:
        """:meth:`labelled` of each window, read at once for all of them."""
        ...

    def first_ts(self, model: str) -> datetime | None:
        """Timestamp of the model's oldest inference row."""
        ...

    def last_ts(
        self, model: str, before: datetime, since: datetime | None = None
    ) -> dict[Segment, datetime]:
        """Newest row ``ts`` before ``before`` per tenant, per version and overall; with
        ``since``, of the rows at or after it only (segments without any left out)."""
        ...

    def last_ts_windows(
        self, model: str, ranges: Sequence[tuple[datetime, datetime]]
    ) -> list[dict[Segment, datetime]]:
        """:meth:`last_ts` of each ``[since, before)`` of ``ranges``, read at once for all."""
        ...

    def label_stats(
        self, model: str, start: datetime, end: datetime
    ) -> dict[Segment, dict[str, Any]]:
        """Rows, labelled rows and mean label delay per tenant, per version and overall."""
        ...

    def label_stats_windows(
        self, model: str, windows: Sequence[tuple[datetime, datetime]]
    ) -> list[dict[Segment, dict[str, Any]]]:
        """:meth:`label_stats` of each window, read at once for all of them."""
        ...

    def quarantined(self, model: str, start: datetime, end: datetime) -> dict[str, int]:
        """Quarantined rows received in ``[start, end)`` per tenant and overall."""
        ...

    def list_references(self, model: str) -> list[tuple[str, int, int]]:
        """(name, version, rows) of every stored reference version."""
        ...

    def read_reference(self, model: str, name: str, version: int | None = None) -> pa.Table:
        """One reference version (the latest unless ``version``)."""
        ...


class ColumnReader(Protocol):
    """One column's values, bounded: what the dashboard's distribution charts read."""

    def column_values(
        self,
        model: str,
        column: str,
        start: datetime,
        end: datetime,
        *,
        tenant_id: str | None = None,
        limit: int,
    ) -> pa.Array[Any]:
        """The first ``limit`` values of ``column`` in ``[start, end)``, NULLs included."""
        ...

    def reference_values(
        self, model: str, name: str, column: str, *, limit: int
    ) -> pa.Array[Any] | None:
        """The first ``limit`` values of ``column`` in reference ``name`` (None: no such
        column; KeyError: no such reference)."""
        ...


class KpiSource(Protocol):
    """KPI measures per tenant and window, aggregated where the rows are."""

    def event_measures(
        self,
        measures: Sequence[EventMeasure],
        window: str,
        start: datetime,
        end: datetime,
        tenants: Sequence[str] | None = None,
    ) -> dict[str, Cells]:
        """Every business-event measure per tenant and window of ``[start, end)``."""
        ...

    def log_measures(
        self,
        measures: Sequence[LogMeasure],
        window: str,
        start: datetime,
        end: datetime,
        tenants: Sequence[str] | None = None,
    ) -> dict[str, Cells]:
        """Every model-log measure per tenant and window of ``[start, end)``."""
        ...

    def unlabelled_scores(
        self,
        model: str,
        score: str,
        prediction: str,
        window: str,
        start: datetime,
        end: datetime,
        tenants: Sequence[str] | None = None,
    ) -> pa.Table:
        """``tenant_id, w, score, prediction`` of the rows without a label yet (for CBPE)."""
        ...

    def list_references(self, model: str) -> list[tuple[str, int, int]]:
        """(name, version, rows) of every stored reference version."""
        ...

    def read_reference(self, model: str, name: str, version: int | None = None) -> pa.Table:
        """One reference version (the latest unless ``version``)."""
        ...


class ModelCatalog(Protocol):
    """Registered models and their schemas."""

    def get_model(self, name: str) -> ModelInfo | None: ...


class DefinitionStore(Protocol):
    """Versioned monitor definitions."""

    def get_monitor(self, name: str) -> MonitorRecord | None: ...


class ResultStore(Protocol):
    """Monitor runs and their metric results (idempotent per window)."""

    def start_run(
        self,
        monitor: str,
        model: str,
        window_start: datetime,
        window_end: datetime,
        trigger: str,
        definition_version: int,
    ) -> int: ...

    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        error: str | None = None,
        rows_scanned: int = 0,
        results: int = 0,
        duration_s: float | None = None,
    ) -> None: ...

    def last_runs(
        self, monitor: str, since: datetime | None = None
    ) -> dict[datetime, RunRecord]: ...

    def last_window_end(
        self, monitor: str, triggers: Sequence[str] | None = None
    ) -> datetime | None: ...

    def save_results(
        self,
        results: Sequence[Any],
        windows: Iterable[tuple[str, str, datetime]] = (),
    ) -> int: ...

    def record_runs(self, runs: Sequence[FinishedRun], results: Sequence[Any]) -> None:
        """Finished runs and their results in one transaction (a backfill's batch)."""
        ...


class MonitorStore(DefinitionStore, ResultStore, Protocol):
    """What the runner keeps: definitions to evaluate, runs and results it writes."""
