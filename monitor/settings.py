"""Settings: one typed object built once at start-up from ``DRIFTWATCH_*`` environment variables.

Every setting has a default and help text; ``driftwatch config`` prints them (secrets masked)
and ``tests/test_docs.py`` checks that ``docs/settings.md`` documents each one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Driftwatch's configuration. Environment variable = ``DRIFTWATCH_`` + upper-case name."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_", frozen=True, extra="ignore")

    data_dir: Path = Field(
        Path("data"),
        description="Folder holding the DuckDB log store (driftwatch.duckdb) and, by default, "
        "the SQLite metadata database.",
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL of the metadata database, e.g. "
        "postgresql+psycopg://user:pass@host/db. Empty: SQLite file <data_dir>/metadata.sqlite.",
    )
    host: str = Field("127.0.0.1", description="Address `driftwatch serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `driftwatch serve` listens on.")
    ingest_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="A second port for ingest, served by a process of its own that reads and "
        "validates JSON ingest requests and passes the rest on to the main port; dashboard "
        "reads then do not wait behind many small writers (docs/architecture.md, ingest "
        "front). Empty: everything on the main port.",
    )
    external_url: str = Field(
        "",
        description="Public base URL used in links (webhooks, emails). Empty: http://<host>:<port>.",
    )
    max_body_bytes: int = Field(
        64 * MiB, ge=1024, description="Largest request body the API accepts (413 above it)."
    )
    rate_limit_per_minute: int = Field(
        6000, ge=1, description="Requests per minute allowed for one API key (429 above it)."
    )
    rate_limit_burst: int = Field(
        600, ge=1, description="Requests one API key may send at once before the rate applies."
    )
    max_errors_reported: int = Field(
        20, ge=1, description="How many row errors an ingest response lists (all are quarantined)."
    )
    max_future_skew_seconds: int = Field(
        3600,
        ge=0,
        description="Rows timestamped further than this in the future are rejected (clock skew).",
    )
    max_range_days: int = Field(
        366,
        ge=1,
        description="Longest time range (days) a listing or analysis may ask for: results, "
        "runs and KPI values with start and end, rule backtests, related KPIs (422 above it).",
    )
    max_backfill_days: int = Field(
        366,
        ge=1,
        description="Longest range (days) one monitor backfill or KPI compute may cover "
        "(422 above it); split longer ones. A KPI compute without a range (the catch-up "
        "since its last run) is held to it too.",
    )
    min_timestamp: datetime = Field(
        datetime(2000, 1, 1, tzinfo=UTC),
        description="Rows (inferences, labels, events) timestamped before this are rejected "
        "(e.g. year 1, or the 1970 epoch of an unset clock); ISO 8601, naive means UTC.",
    )
    max_id_chars: int = Field(
        128,
        ge=1,
        description="Longest request_id, event_id, event name, event model and model_version, "
        "in characters (longer: the row is rejected, never clipped).",
    )
    max_category_chars: int = Field(
        256,
        ge=1,
        description="Longest value of a categorical feature or class label, in characters "
        "(longer: the row is rejected, never clipped).",
    )
    max_text_chars: int = Field(
        65_536,
        ge=1,
        description="Longest value of a text feature, in characters (longer: the row is "
        "rejected, never clipped).",
    )
    max_abs_number: float = Field(
        1e100,
        gt=0,
        description="Largest magnitude of a number in a row (features, predictions, labels, "
        "event values); above it the row is rejected, so sums of squares over a window (RMSE, "
        "variance) stay finite. NaN and infinities are always rejected.",
    )
    ingest_batch_rows: int = Field(
        122_880,
        ge=1,
        description="Rows per batch when the CLI streams a file (122,880 is DuckDB's row "
        "group: a whole one is written straight to the file, a smaller batch through the "
        "write-ahead log at about 2.5x the CPU).",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    secret_key: str = Field(
        "",
        description="Key signing dashboard session cookies. Empty: a random key kept in "
        "<data_dir>/dashboard_secret (log-ins survive restarts). Set it when several "
        "processes serve the dashboard.",
    )
    session_hours: float = Field(
        12.0,
        gt=0,
        le=24 * 30,
        description="Dashboard sessions expire this many hours after log-in (the cookie and "
        "the server both enforce it).",
    )
    login_max_failures: int = Field(
        5,
        ge=1,
        description="Failed dashboard log-ins for one username within 15 minutes before it is "
        "locked for login_lockout_seconds (429 with Retry-After).",
    )
    login_max_failures_per_address: int = Field(
        20,
        ge=1,
        description="Failed dashboard log-ins from one client address within 15 minutes before "
        "that address is locked for login_lockout_seconds.",
    )
    login_lockout_seconds: int = Field(
        300, ge=1, description="How long a locked username or address must wait."
    )
    duckdb_memory_limit: str = Field(
        "4GB",
        pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory DuckDB may use for its buffer pool (its own default is 80% of RAM), "
        "e.g. 2GB. Peak RSS of the server follows it.",
    )
    duckdb_background_checkpoint: str = Field(
        "16MB",
        pattern=r"^(\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)|off)$",
        description="WAL size at which the server folds DuckDB's write-ahead log into the "
        "data file on a background thread, so ingest requests do not wait for it; `off` lets "
        "the commit that crosses DuckDB's own 16MB threshold do it inline.",
    )
    ingest_group_commit: bool = Field(
        True,
        description="Concurrent ingest requests share commits: one writer appends whatever is "
        "queued in one transaction and each request is answered after that commit (see "
        "docs/architecture.md, group commit); false commits each request on its own.",
    )
    ingest_lean_path: bool = Field(
        True,
        description="JSON ingest requests of a recently authenticated key skip FastAPI's "
        "routing and dependency machinery (the same checks, one worker-thread hop instead of "
        "two; see docs/architecture.md, per-request cost); false sends them through the "
        "routes like every other request.",
    )
    lake_dir: Path | None = Field(
        None,
        description="Also copy every ingested batch (inferences, labels, events; the accepted "
        "rows only) into the Parquet lake in this folder, as ingest-<batch>.parquet files of "
        "the lake layout, after the store's commit and before the request is answered; a "
        "crash in between is repaired at the next start (docs/scale-out.md). Empty: off.",
    )
    scheduler_enabled: bool = Field(
        True, description="Run the monitor scheduler inside `driftwatch serve`."
    )
    scheduler_tick_seconds: int = Field(
        60,
        ge=1,
        description="How often each monitor's scheduler job looks for closed windows and late data.",
    )
    monitor_lateness_minutes: int = Field(
        10, ge=0, description="Grace after a window ends before monitors evaluate it (late rows)."
    )
    monitor_sample_size: int = Field(
        5000,
        ge=100,
        description="Rows of the bounded random window sample read by sample-based drift "
        "methods, estimated performance and multivariate drift.",
    )
    monitor_late_lookback_days: int = Field(
        7,
        ge=0,
        description="Evaluated windows up to this age are re-run when late rows or labels arrive.",
    )
    alert_secret_key: str = Field(
        "",
        description="Key that encrypts alert channel URLs and signing secrets in the metadata "
        "database. Empty: a random key kept in <data_dir>/alert-secret.key (share it, or this "
        "setting, between replicas).",
    )
    alert_allowed_hosts: str = Field(
        "",
        description="Comma-separated hosts, addresses or networks (CIDR) that alert channels may "
        "call over plain http and on private/loopback addresses (SSRF allowlist), e.g. "
        "127.0.0.1,hooks.internal,10.1.0.0/16.",
    )
    alert_delivery_concurrency: int = Field(
        8, ge=1, le=256, description="Webhook deliveries sent in parallel by the delivery worker."
    )
    alert_delivery_timeout_seconds: float = Field(
        15.0, gt=0, description="Timeout of one webhook delivery attempt."
    )
    alert_give_up_hours: float = Field(
        72.0,
        gt=0,
        description="A delivery still failing this long after it was queued is dead-lettered.",
    )
    alert_retry_scale: float = Field(
        1.0,
        gt=0,
        description="Multiplies the retry schedule (at once, 5 s, 5 min, 30 min, 2 h, ...) and the "
        "give-up time; below 1 only for tests.",
    )
    alert_worker: bool = Field(
        True,
        description="Run the alert delivery worker (and group planner) inside `driftwatch serve`.",
    )
    metrics_max_tenants: int = Field(
        25,
        ge=0,
        description="Tenants whose own model-health series /api/v1/metrics exports (the worst "
        "first: alert, warn, ok, no data); all-tenants series are always exported and the "
        "*_tenants families count every tenant.",
    )
    metrics_max_series: int = Field(
        5000,
        ge=1,
        description="Most label sets per model-health family on /api/v1/metrics; beyond it the "
        "least severe per-tenant ones are left out (driftwatch_health_series_dropped counts them).",
    )

    @field_validator("min_timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if value < datetime(1970, 1, 1, tzinfo=UTC):
            # what the API reads back (monitor.limits.EARLIEST): older rows could not be seen
            raise ValueError(f"min_timestamp must be 1970-01-01 or later, got {value.isoformat()}")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        allowed = ("debug", "info", "warning", "error")
        if value.lower() not in allowed:
            raise ValueError(f"log_level must be one of {', '.join(allowed)}, got {value!r}")
        return value.lower()

    @model_validator(mode="after")
    def _ports_differ(self) -> Settings:
        if self.ingest_port is not None and self.ingest_port == self.port:
            raise ValueError(
                f"ingest_port (DRIFTWATCH_INGEST_PORT) must differ from port (DRIFTWATCH_PORT); "
                f"both are {self.port}"
            )
        return self

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "driftwatch.duckdb"

    @property
    def metadata_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'metadata.sqlite').resolve()}"

    @property
    def base_url(self) -> str:
        return (self.external_url or f"http://{self.host}:{self.port}").rstrip("/")

    def described(self) -> list[tuple[str, str, str, str]]:
        """(env var, effective value with secrets masked, default, help) for every setting."""
        rows = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            secret = "secret" in name or "password" in name
            shown = ("***" if value else "") if secret else mask_secrets(str(value))
            rows.append(
                (
                    f"DRIFTWATCH_{name.upper()}",
                    shown,
                    str(info.default),
                    info.description or "",
                )
            )
        return rows


# scheme://[user]:password@ : any case, an empty user, a password holding ':' or '/'; the
# last '@' before the host ends it (a password may contain '@' when percent-encoding is lax)
_PASSWORD_IN_URL = re.compile(
    r"(?P<pre>[a-z][a-z0-9+.\-]*://[^:/@?#\s]*):(?P<pw>[^\s]*)@(?=[^@\s]*$|[^@\s]*[\s])",
    re.IGNORECASE,
)
# ?password=... / &sslpassword=... query parameters (libpq and SQLAlchemy accept them)
_PASSWORD_PARAM = re.compile(
    r"(?P<pre>[?&;](?:[a-z_]*password|passwd|pwd|secret|token)=)(?P<pw>[^&;#\s]*)",
    re.IGNORECASE,
)


def mask_secrets(text: str) -> str:
    """Hide passwords in URLs: ``postgresql://user:secret@host``, ``POSTGRESQL://:secret@h``,
    ``...?password=secret``."""
    text = _PASSWORD_IN_URL.sub(lambda m: f"{m.group('pre')}:***@", text)
    return _PASSWORD_PARAM.sub(lambda m: f"{m.group('pre')}***", text)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment, with explicit overrides (CLI flags) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
