"""Every DuckDB table name of the log store, spelled once.

A model's logs live in tables named after it (``inferences__<model>``, ``labels__<model>``,
``references__<model>``, ``profiles__<model>``); the rest are shared by every model. Code that
builds SQL asks this module for a name (and quotes it with :func:`quote`) instead of writing the
prefix itself, so a rename, or a second engine reading the same data from a Parquet lake
(``storage.lake``), has one place to look.

Only identifiers that already passed ``NAME_RE``/``COLUMN_RE`` reach :func:`quote`; quoting is
belt and braces, never the validation.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "EVENTS",
    "LAKE_OUTBOX",
    "PROFILE_HOURS",
    "PROFILE_LAKE_FILES",
    "PROFILE_LAKE_LABELS",
    "PROFILE_STATE",
    "QUARANTINE",
    "REFERENCE_SETS",
    "LogKind",
    "inferences",
    "labels",
    "lake_samples",
    "model_of",
    "model_table",
    "profiles",
    "quote",
    "references",
]

EVENTS = "events"
"""Business events of every tenant."""
QUARANTINE = "quarantine"
"""Rejected input rows with their field and reason."""
REFERENCE_SETS = "reference_sets"
"""Catalogue of uploaded reference versions (rows, columns, created_at)."""
PROFILE_HOURS = "profile_hours"
"""Per (model, hour): rows, bin spec, computed/changed times, dirty flag."""
PROFILE_STATE = "profile_state"
"""Per model: the ``received_at`` watermark up to which late rows were looked for."""
PROFILE_LAKE_FILES = "profile_lake_files"
"""Per lake-fed model and pushed day: the spec key and the lake files its profiles came from."""
PROFILE_LAKE_LABELS = "profile_lake_labels"
"""Per lake-fed model and (hour, tenant, version, name): pushed label aggregates (created with
the first push that has them)."""

LAKE_OUTBOX = "lake_outbox"
"""Keys of committed rows not yet copied to the lake (storage.lake_mirror; only when it is on)."""

LogKind = Literal["inferences", "labels", "references", "profiles", "lake_samples"]
_SEP = "__"


def model_table(kind: LogKind | str, model: str) -> str:
    """The table of one model's ``kind`` of rows (``inferences``, ``labels``, ``references``,
    ``profiles``), unquoted."""
    if kind not in ("inferences", "labels", "references", "profiles", "lake_samples"):
        raise ValueError(
            f"unknown log table kind {kind!r}: expected inferences, labels, references, "
            "profiles or lake_samples"
        )
    return f"{kind}{_SEP}{model}"


def inferences(model: str) -> str:
    """``inferences__<model>``: one row per prediction, features as real columns."""
    return model_table("inferences", model)


def labels(model: str) -> str:
    """``labels__<model>``: true labels by ``request_id``."""
    return model_table("labels", model)


def references(model: str) -> str:
    """``references__<model>``: every uploaded reference version of the model."""
    return model_table("references", model)


def profiles(model: str) -> str:
    """``profiles__<model>``: hourly profile rows."""
    return model_table("profiles", model)


def lake_samples(model: str) -> str:
    """``lake_samples__<model>``: a lake-fed model's pushed bottom-k sample rows (created with
    the first push that has them; its columns grow with the sampled columns)."""
    return model_table("lake_samples", model)


def model_of(table: str, kind: LogKind | str = "inferences") -> str | None:
    """The model a ``kind`` table belongs to (None for another table)."""
    prefix = f"{kind}{_SEP}"
    return table[len(prefix) :] if table.startswith(prefix) else None


def quote(name: str) -> str:
    """Quote an identifier that already matched NAME_RE/COLUMN_RE (belt and braces)."""
    return '"' + name.replace('"', '""') + '"'
