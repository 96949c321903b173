"""Monitor configuration: a typed, validated definition of one check on one model.

A monitor is stored as the JSON of :class:`MonitorConfig`; the same shape is accepted by the
API, the CLI and ``monitors.yaml`` (see ``docs/monitors.md``). :func:`parse_monitor` turns a
dict into a config and :func:`check_against_model` checks it against the model's schema; both
raise :class:`~monitor.errors.ValidationFailed` whose errors name the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from detectors.drift import available_methods, get_method
from detectors.errors import UnknownNameError
from detectors.performance import TASK_METRICS
from monitor import windows
from monitor.errors import FieldError, ValidationFailed
from monitor.windows import BASIC, check_window
from storage.types import NAME_RE, ModelSchema

__all__ = [
    "KINDS",
    "WINDOWS",
    "MonitorConfig",
    "ReferenceConfig",
    "check_against_model",
    "default_monitors",
    "dle_features",
    "estimated_metrics",
    "parse_monitor",
    "window_delta",
]

Kind = Literal[
    "feature_drift",
    "prediction_drift",
    "data_quality",
    "performance",
    "estimated_performance",
    "multivariate_drift",
]
KINDS: tuple[str, ...] = (
    "feature_drift",
    "prediction_drift",
    "data_quality",
    "performance",
    "estimated_performance",
    "multivariate_drift",
)
# hour, day, week, month or Nd: monitor.windows says what each is
Window = Annotated[str, AfterValidator(check_window)]
WINDOWS: tuple[str, ...] = BASIC
Segment = Literal["all", "tenant"]
DEFAULT_SEGMENTS: tuple[Segment, ...] = ("all", "tenant")
_DATASET_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]{0,127})(/(?P<version>\d+))?$")


def window_delta(window: str) -> timedelta:
    """The usual width of ``window`` (a month counts 30 days): for sizes and counts; step
    from one window to the next with ``monitor.windows``."""
    return windows.window(window).nominal


class ReferenceConfig(BaseModel):
    """The baseline: exactly one of ``dataset`` (an uploaded reference, ``name`` or
    ``name/version``), ``previous_days`` (the N days before each window) or ``start``+``end``
    (a fixed range of the logs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str | None = None
    version: int | None = Field(None, ge=1)
    previous_days: int | None = Field(None, ge=1, le=365)
    start: datetime | None = None
    end: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            m = _DATASET_RE.match(data.strip())
            if not m:
                raise ValueError(
                    f"reference {data!r}: expected 'name' or 'name/version' of an uploaded "
                    "reference, or an object with dataset, previous_days or start/end"
                )
            v = m.group("version")
            return {"dataset": m.group("name"), "version": int(v) if v else None}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> ReferenceConfig:
        chosen = [
            k
            for k, v in (
                ("dataset", self.dataset),
                ("previous_days", self.previous_days),
                ("start/end", self.start or self.end),
            )
            if v
        ]
        if len(chosen) != 1:
            raise ValueError(
                "give exactly one of dataset, previous_days, or start and end; got "
                + (", ".join(chosen) or "none")
            )
        if (self.start is None) != (self.end is None):
            raise ValueError("a fixed reference needs both start and end")
        if self.start and self.end:
            s, e = _utc(self.start), _utc(self.end)
            if e <= s:
                raise ValueError("end must be after start")
            object.__setattr__(self, "start", s)
            object.__setattr__(self, "end", e)
        if self.dataset and not _DATASET_RE.match(self.dataset):
            raise ValueError(f"dataset {self.dataset!r} is not a valid reference name")
        return self

    @property
    def type(self) -> str:
        if self.dataset:
            return "dataset"
        return "relative" if self.previous_days else "fixed"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class MonitorConfig(BaseModel):
    """One monitor. Fields not given take the defaults shown in ``docs/monitors.md``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model: str
    kind: Kind
    columns: list[str] | None = None
    window: Window = "day"
    reference: ReferenceConfig | None = None
    methods: dict[str, str | list[str]] | list[str] | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    alpha: float = Field(0.05, gt=0, lt=1)
    fdr: bool = False
    segments: list[Segment] = Field(default_factory=lambda: list(DEFAULT_SEGMENTS))
    by_version: bool = True
    attribution: bool = True
    metrics: list[str] | None = None
    bounds: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)
    # estimated_performance of classifiers: how CBPE calibrates the scores (None: "auto")
    calibration: Literal["auto", "isotonic", "none"] | None = None
    sample_size: int | None = Field(None, ge=100, le=1_000_000)
    lateness_minutes: int | None = Field(None, ge=0, le=7 * 24 * 60)
    schedule_minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    min_rows: int = Field(30, ge=1)
    description: str = ""
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_\-]{0,127}$", v):
            raise ValueError(
                "must be lower-case letters, digits, '_' or '-', starting with a letter"
            )
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"must match {NAME_RE.pattern}")
        return v

    @field_validator("segments")
    @classmethod
    def _segments(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one of 'all', 'tenant'")
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _methods_known(self) -> MonitorConfig:
        names: list[str] = []
        if isinstance(self.methods, list):
            names = list(self.methods)
        elif isinstance(self.methods, dict):
            for v in self.methods.values():
                names.extend([v] if isinstance(v, str) else v)
        for m in [*names, *self.thresholds]:
            try:
                get_method(m)
            except UnknownNameError as exc:
                raise ValueError(f"methods/thresholds: {exc}") from None
        needs_ref = ("feature_drift", "prediction_drift", "data_quality", "multivariate_drift")
        if self.kind in needs_ref and self.reference is None:
            raise ValueError(f"reference: required for kind {self.kind!r}")
        if self.calibration is not None and self.kind != "estimated_performance":
            raise ValueError(
                f"calibration: applies to kind 'estimated_performance' only, not {self.kind!r}"
            )
        if self.kind == "estimated_performance" and self.reference is None:
            raise ValueError("reference: required for estimated_performance (a labelled dataset)")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def window_delta(self) -> timedelta:
        """The usual width of the window (sizes only; a month's varies)."""
        return window_delta(self.window)

    @property
    def windowing(self) -> windows.Window:
        return windows.window(self.window)

    def window_end(self, start: datetime) -> datetime:
        """The end of the window starting at ``start``."""
        return windows.window(self.window).end(start)


def parse_monitor(data: dict[str, Any]) -> MonitorConfig:
    """Validate a monitor definition; :class:`ValidationFailed` lists each bad field."""
    try:
        return MonitorConfig.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(tuple(str(p) for p in e.get("loc", ())), e.get("msg", ""))
            for e in exc.errors()
        ]
        name = data.get("name", "?") if isinstance(data, dict) else "?"
        raise ValidationFailed(
            f"monitor {name!r} is invalid: "
            + "; ".join(f"{'.'.join(map(str, e.loc)) or '(root)'}: {e.msg}" for e in errors),
            errors,
        ) from exc


# What ``estimated_performance`` reports when ``metrics`` is not given: the realized metrics it
# can estimate, under the same names, so both series can be compared.
ESTIMATED_DEFAULTS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "roc_auc", "f1"),
    "multiclass": ("accuracy", "f1_macro", "f1_weighted"),
    "regression": ("mae", "rmse"),
}


def estimated_metrics(task: str, *, defaults: bool = False) -> tuple[str, ...]:
    """Metrics ``estimated_performance`` can give for a task (CBPE for binary and multiclass,
    DLE for regression), or only those it reports by default."""
    if defaults:
        return ESTIMATED_DEFAULTS[task]
    # imported here: the estimators load scikit-learn, which the CLI should not pay for at start
    from detectors.estimation.cbpe import BINARY_ESTIMATED_METRICS, MULTICLASS_ESTIMATED_METRICS
    from detectors.estimation.dle import DLE_METRICS

    return {
        "binary": BINARY_ESTIMATED_METRICS,
        "multiclass": MULTICLASS_ESTIMATED_METRICS,
        "regression": DLE_METRICS,
    }[task]


def dle_features(schema: ModelSchema) -> tuple[str, ...]:
    """The features DLE (regression estimated performance) learns the error from: every
    feature but free text."""
    return tuple(f.name for f in schema.features if f.kind != "text")


def monitored_columns(config: MonitorConfig, schema: ModelSchema) -> dict[str, str]:
    """Column -> kind (``numeric`` / ``categorical``) this monitor looks at."""
    cols: dict[str, str] = {}
    if config.kind in ("feature_drift", "data_quality", "multivariate_drift"):
        for f in schema.features:
            if f.kind == "text":
                continue
            cols[f.name] = "numeric" if f.kind == "numeric" else "categorical"
    elif config.kind == "prediction_drift":
        cols[schema.prediction] = "numeric" if schema.task == "regression" else "categorical"
        for s in schema.scores:
            cols[s] = "numeric"
    if config.columns is not None:
        cols = {c: cols[c] for c in config.columns if c in cols}
    return cols


def check_against_model(config: MonitorConfig, schema: ModelSchema) -> None:
    """Refuse columns the model does not have and methods that do not fit a column's kind."""
    errors: list[FieldError] = []
    allowed = monitored_columns(config.model_copy(update={"columns": None}), schema)
    if config.columns is not None and config.kind not in ("performance", "estimated_performance"):
        for i, c in enumerate(config.columns):
            if c not in allowed:
                errors.append(
                    FieldError(
                        ("columns", i),
                        f"{c!r} is not a {config.kind} column of model {config.model!r}; "
                        f"choose from {sorted(allowed)}",
                    )
                )
    if isinstance(config.methods, dict):
        for col, ms in config.methods.items():
            if col not in allowed:
                errors.append(FieldError(("methods", col), f"unknown column {col!r}"))
                continue
            for m in [ms] if isinstance(ms, str) else ms:
                if allowed[col] not in get_method(m).kinds:
                    valid = ", ".join(available_methods(allowed[col]))  # type: ignore[arg-type]
                    errors.append(
                        FieldError(
                            ("methods", col),
                            f"{m!r} does not accept {allowed[col]} columns; use one of {valid}",
                        )
                    )
    if config.kind in ("performance", "estimated_performance") and config.metrics:
        estimated = config.kind == "estimated_performance"
        valid_metrics = (
            estimated_metrics(schema.task) if estimated else TASK_METRICS.get(schema.task, ())
        )
        what = f"{schema.task} metric" + (
            " that can be estimated without labels" if estimated else ""
        )
        for i, m in enumerate(config.metrics):
            if m not in valid_metrics:
                errors.append(
                    FieldError(
                        ("metrics", i),
                        f"{m!r} is not a {what}; choose from {list(valid_metrics)}",
                    )
                )
    if config.kind == "estimated_performance":
        if config.reference is not None and not config.reference.dataset:
            errors.append(
                FieldError(
                    ("reference",),
                    "estimated_performance needs an uploaded reference dataset with a label "
                    "column (name or name/version), not a range of the logs",
                )
            )
        if schema.task == "regression" and config.calibration not in (None, "auto"):
            errors.append(
                FieldError(
                    ("calibration",),
                    "calibration applies to CBPE (binary and multiclass models); DLE "
                    "(regression) has no scores to calibrate",
                )
            )
        if schema.task == "regression" and not dle_features(schema):
            errors.append(
                FieldError(("kind",), "DLE (regression) needs numeric or categorical features")
            )
        if schema.task != "regression" and not schema.scores:
            errors.append(
                FieldError(
                    ("kind",),
                    f"CBPE ({schema.task}) needs the model's score columns; model "
                    f"{config.model!r} has none",
                )
            )
    if errors:
        raise ValidationFailed(
            f"monitor {config.name!r} does not fit model {config.model!r}: "
            + "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors),
            errors,
        )


def default_monitors(
    model: str,
    schema: ModelSchema,
    reference: str | None,
    bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
    bounds_note: str = "",
) -> list[MonitorConfig]:
    """Sensible defaults for a registered model (``driftwatch init``): daily drift of features
    and predictions against ``reference`` (or the previous 7 days), daily data quality (which
    also carries the operational metrics: row count, label coverage and delay, quarantined rows,
    freshness), daily realized performance, and, when a reference dataset is given, estimated
    performance (CBPE for binary and multiclass models with scores, DLE for regression).

    ``bounds`` (metric → ``(lower, upper)``, see :mod:`monitor.init_bounds`) go to both
    performance monitors, each for the metrics it reports; ``bounds_note`` says where they come
    from (the monitors' ``description``)."""
    ref: dict[str, Any] = {"dataset": reference} if reference else {"previous_days": 7}
    realized_bounds = {
        m: list(b) for m, b in (bounds or {}).items() if m in TASK_METRICS.get(schema.task, ())
    }
    estimated_bounds = {
        m: list(b) for m, b in (bounds or {}).items() if m in ESTIMATED_DEFAULTS[schema.task]
    }
    out: list[dict[str, Any]] = [
        {
            "name": f"{model}-feature-drift",
            "model": model,
            "kind": "feature_drift",
            "reference": ref,
            # a window without drift flags any column in ~alpha of windows, not in
            # 1 - (1 - alpha)^columns (56 % for 16 columns)
            "fdr": True,
        },
        {
            "name": f"{model}-prediction-drift",
            "model": model,
            "kind": "prediction_drift",
            "reference": ref,
            "fdr": True,
        },
        {"name": f"{model}-data-quality", "model": model, "kind": "data_quality", "reference": ref},
        {
            "name": f"{model}-performance",
            "model": model,
            "kind": "performance",
            **({"bounds": realized_bounds, "description": bounds_note} if realized_bounds else {}),
        },
    ]
    estimable = bool(dle_features(schema) if schema.task == "regression" else schema.scores)
    if reference and estimable:
        out.append(
            {
                "name": f"{model}-estimated-performance",
                "model": model,
                "kind": "estimated_performance",
                "reference": ref,
                **(
                    {"bounds": estimated_bounds, "description": bounds_note}
                    if estimated_bounds
                    else {}
                ),
            }
        )
    return [parse_monitor(m) for m in out]
