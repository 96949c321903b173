"""Propose a model schema from a data file (``driftwatch models infer FILE``).

The proposal is a starting point the user reads, edits and registers with ``driftwatch models
register``: the role of each column (request id, time, tenant, label, prediction, scores) from
its name, the kind of each feature from its type and cardinality, and ``aliases`` for every
column whose name is not Driftwatch's (``id`` -> ``request_id``, ``mean radius`` ->
``mean_radius``), so the file ingests as it is.

Rules, in order (the first that matches wins):

* a column named like an id (``request_id``, ``id``, ``uuid``, ...) -> ``request_id``;
  a timestamp/date column, or one named ``ts``/``timestamp``/``date``/``time``/... whose
  values parse as times -> ``ts``; ``tenant_id``/``tenant``/``customer_id`` -> ``tenant_id``;
  ``model_version``/``version`` -> ``model_version``;
* ``label``/``target``/``y``/``actual``/``ground_truth``/``class`` -> ``label``;
  ``prediction``/``pred``/``y_pred``/``predicted`` -> ``prediction``;
  ``score``/``proba``/``probability``/``y_score`` (binary) -> the score;
* features: booleans (and numbers holding only 0 and 1) -> ``boolean``; other numbers ->
  ``numeric``; text with at most :data:`MAX_CATEGORIES` distinct values (and at most half as
  many as rows) -> ``categorical``; other text -> ``text``.

The task comes from the label (else the prediction): two distinct values -> ``binary``, more
text values -> ``multiclass``, more numbers -> ``regression``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from storage.types import COLUMN_RE, NAME_RE, RESERVED_COLUMNS

MAX_CATEGORIES = 200
SAMPLE_ROWS = 100_000

ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "request_id": ("request_id", "id", "uuid", "row_id", "request", "event_id", "record_id"),
    "ts": (
        "ts",
        "timestamp",
        "time",
        "datetime",
        "date",
        "event_time",
        "day",
        "dt",
        "event_date",
        "created_at",
        "inference_time",
        "prediction_time",
        "year",
    ),
    "tenant_id": ("tenant_id", "tenant", "customer_id", "customer", "account_id"),
    "model_version": ("model_version", "version"),
    "label": ("label", "target", "y", "y_true", "actual", "ground_truth", "truth", "class"),
    "prediction": ("prediction", "pred", "y_pred", "predicted", "yhat", "y_hat"),
    "score": ("score", "proba", "probability", "prob", "y_score", "y_proba", "prediction_proba"),
}


@dataclass
class Proposal:
    """A proposed model definition plus notes for the user (why, what to check)."""

    spec: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def column_name(raw: str) -> str:
    """A feature name Driftwatch accepts for ``raw``: ``"mean radius"`` -> ``mean_radius``."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", raw.strip()).strip("_").lower() or "column"
    if not re.match(r"[A-Za-z_]", name):
        name = f"f_{name}"
    name = name[:63]
    if name in RESERVED_COLUMNS:
        name = f"{name}_feature"[:63]
    return name


def model_name(raw: str) -> str:
    """A model name from a file name: ``Breast-Cancer.csv.gz`` -> ``breast_cancer``."""
    name = re.sub(r"[^a-z0-9_]+", "_", raw.lower()).strip("_") or "model"
    if not re.match(r"[a-z]", name):
        name = f"m_{name}"
    name = name[:63]
    return name if NAME_RE.match(name) else "model"


def propose(table: pa.Table, name: str) -> Proposal:
    """The proposed definition of model ``name`` for the rows of ``table``."""
    notes: list[str] = []
    roles: dict[str, str] = {}  # role -> column
    for column in table.column_names:
        role = _role(column, table.column(column))
        if role and role not in roles:
            roles[role] = column
    for required in ("request_id", "ts"):
        if required not in roles:
            what = {"request_id": "a unique id per row", "ts": "the time of each inference"}
            notes.append(
                f"no column looks like {required} ({what[required]}); every inference row "
                f"needs one: add it to your rows, or map yours with aliases/--map"
            )
    if "tenant_id" not in roles:
        notes.append(
            "no tenant column: pass `--tenant NAME` to `driftwatch ingest` (one tenant), or "
            "add a tenant_id column"
        )
    target = roles.get("label") or roles.get("prediction")
    task, classes = _task(table.column(target)) if target else ("binary", [])
    if target is None:
        notes.append("no label or prediction column: task guessed as binary; check it")
    used = set(roles.values())
    features = []
    aliases: dict[str, str] = {}
    taken = {"request_id", "ts", "tenant_id", "model_version", "label", "prediction"}
    for column in table.column_names:
        if column in used:
            continue
        kind = _kind(table.column(column))
        if kind is None:
            notes.append(f"column {column!r} skipped: no value, or a type that is not a feature")
            continue
        fname = column_name(column)
        while fname in taken:
            fname = f"{fname}_"[:63]
        taken.add(fname)
        if fname != column:
            aliases[column] = fname
        features.append({"name": fname, "kind": kind})
    if not features:
        notes.append("no feature column found; a model needs at least one")
    spec: dict[str, Any] = {"name": name, "task": task, "features": features}
    spec["prediction"] = "prediction"
    if "prediction" in roles and roles["prediction"] != "prediction":
        aliases[roles["prediction"]] = "prediction"
    if "prediction" not in roles:
        notes.append(
            "no prediction column: inference rows must carry the model's output as "
            "`prediction` (a reference may leave it out)"
        )
    if "score" in roles and task != "multiclass":
        spec["scores"] = ["score"]
        if roles["score"] != "score":
            aliases[roles["score"]] = "score"
    if classes:
        spec["classes"] = classes
    for role in ("request_id", "ts", "tenant_id", "model_version", "label"):
        if role in roles and roles[role] != role:
            aliases[roles[role]] = role
    if aliases:
        spec["aliases"] = aliases
    return Proposal(spec, notes)


def _role(column: str, values: pa.ChunkedArray) -> str | None:
    key = re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_")
    for role, names in ROLE_NAMES.items():
        if key not in names:
            continue
        if role == "ts" and not _time_like(values):
            continue
        if role == "request_id" and not _unique(values):
            continue
        return role
    return None


def _time_like(values: pa.ChunkedArray) -> bool:
    typ = values.type
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        return True
    if pa.types.is_integer(typ):  # a year column: 1900-2200
        lo, hi = pc.min_max(values).values()
        return lo.as_py() is not None and lo.as_py() >= 1900 and hi.as_py() <= 2200
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        sample = values.drop_null().slice(0, 1000)
        try:
            from monitor.ingest import parse_timestamps

            parse_timestamps(sample)
        except ValueError:
            return False
        return len(sample) > 0
    return False


def _unique(values: pa.ChunkedArray) -> bool:
    return values.null_count == 0 and len(pc.unique(values)) == len(values)


def _kind(values: pa.ChunkedArray) -> str | None:
    typ = values.type
    if pa.types.is_dictionary(typ):
        values = values.cast(typ.value_type)
        typ = values.type
    present = values.drop_null()
    if len(present) == 0:
        return None
    if pa.types.is_boolean(typ):
        return "boolean"
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        distinct = pc.unique(present)
        if len(distinct) <= 2 and set(distinct.to_pylist()) <= {0, 1}:
            return "boolean"
        return "numeric"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        distinct = len(pc.unique(present))
        longest = pc.max(pc.utf8_length(present)).as_py() or 0
        if distinct <= MAX_CATEGORIES and distinct <= max(2, len(present) // 2) and longest <= 256:
            return "categorical"
        return "text"
    return None


def _task(values: pa.ChunkedArray) -> tuple[str, list[str]]:
    typ = values.type
    if pa.types.is_dictionary(typ):
        values = values.cast(typ.value_type)
        typ = values.type
    distinct = pc.unique(values.drop_null())
    if pa.types.is_boolean(typ) or len(distinct) <= 2:
        return "binary", []
    if pa.types.is_floating(typ) or (pa.types.is_integer(typ) and len(distinct) > 20):
        return "regression", []
    return "multiclass", sorted(str(v) for v in distinct.to_pylist())


def spec_is_valid_column(name: str) -> bool:
    return bool(COLUMN_RE.match(name)) and name not in RESERVED_COLUMNS
