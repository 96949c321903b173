"""Field rules (which fields a batch holds, of what kind, how checked) and per-row limits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pyarrow as pa

from storage.types import ModelSchema

TS_TYPE = pa.timestamp("us", tz="UTC")
TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    """Per-row bounds; the service builds them from the settings named in each reason."""

    min_ts: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future: timedelta = timedelta(hours=1)
    check_time: bool = True  # False for references: a baseline may be synthetic
    max_id_chars: int = 128  # request_id, event_id, event names, model_version
    max_category_chars: int = 256  # category values and classes
    max_text_chars: int = 65_536  # free-text features
    max_abs_number: float = 1e100

    def chars(self, which: str) -> tuple[int, str]:
        """The limit for a kind of text and the setting that sets it."""
        return {
            "id": (self.max_id_chars, "DRIFTWATCH_MAX_ID_CHARS"),
            "category": (self.max_category_chars, "DRIFTWATCH_MAX_CATEGORY_CHARS"),
            "text": (self.max_text_chars, "DRIFTWATCH_MAX_TEXT_CHARS"),
        }[which]


Kind = Literal["string", "float", "binary", "class", "bool", "ts", "tenant", "id"]


@dataclass(frozen=True)
class FieldRule:
    """How one input field is converted and checked."""

    name: str
    kind: Kind
    required: bool = False
    unit_interval: bool = False  # scores: a probability, so outside [0, 1] is an error
    classes: tuple[str, ...] = ()
    chars: Literal["id", "category", "text"] | None = None  # which length limit applies


# --------------------------------------------------------------------------- field rules
def inference_rules(schema: ModelSchema) -> list[FieldRule]:
    rules = [
        FieldRule("request_id", "id", required=True, chars="id"),
        FieldRule("ts", "ts", required=True),
        FieldRule("tenant_id", "tenant", required=True),
        FieldRule("model_version", "string", chars="id"),
    ]
    kinds: dict[str, Kind] = {
        "numeric": "float",
        "categorical": "string",
        "boolean": "bool",
        "text": "string",
    }
    chars: dict[str, Literal["category", "text"]] = {"categorical": "category", "text": "text"}
    rules += [FieldRule(f.name, kinds[f.kind], chars=chars.get(f.kind)) for f in schema.features]
    rules.append(prediction_rule(schema, schema.prediction, required=True))
    unit = schema.task != "regression"
    rules += [FieldRule(s, "float", unit_interval=unit) for s in schema.scores]
    return rules


def prediction_rule(schema: ModelSchema, name: str, required: bool) -> FieldRule:
    if schema.task == "regression":
        return FieldRule(name, "float", required=required)
    if schema.task == "binary":
        return FieldRule(name, "binary", required=required)
    return FieldRule(name, "class", required=required, classes=schema.classes, chars="category")


def label_rules(schema: ModelSchema) -> list[FieldRule]:
    return [
        FieldRule("request_id", "id", required=True, chars="id"),
        prediction_rule(schema, "label", required=True),
        FieldRule("ts", "ts"),
        FieldRule("tenant_id", "tenant"),
    ]


def reference_rules(schema: ModelSchema) -> list[FieldRule]:
    """A baseline: any subset of the inference columns plus the label, none required."""
    rules = [replace(r, required=False) for r in inference_rules(schema)]
    return [*rules, prediction_rule(schema, "label", required=False)]


def rules_schema(rules: Sequence[FieldRule]) -> pa.Schema:
    """The Arrow schema of a batch validated with ``rules``."""
    return pa.schema([pa.field(r.name, ARROW_TYPES[r.kind]) for r in rules])


def event_rules() -> list[FieldRule]:
    return [
        FieldRule("event_id", "id", chars="id"),
        FieldRule("tenant_id", "tenant", required=True),
        FieldRule("ts", "ts", required=True),
        FieldRule("name", "id", required=True, chars="id"),
        FieldRule("value", "float"),
        FieldRule("request_id", "id", chars="id"),
        FieldRule("model", "string", chars="id"),
    ]


ARROW_TYPES: dict[Kind, pa.DataType] = {
    "string": pa.string(),
    "id": pa.string(),
    "tenant": pa.string(),
    "float": pa.float64(),
    "binary": pa.int32(),
    "class": pa.string(),
    "bool": pa.bool_(),
    "ts": TS_TYPE,
}


# --------------------------------------------------------------------------- messages
def show(v: Any) -> str:
    """A value for an error message: short, whatever was sent (a reason is not the raw row)."""
    if isinstance(v, dict):
        return "a JSON object"
    if isinstance(v, list):
        return "a JSON array"
    text = repr(v)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text):,} characters)"
