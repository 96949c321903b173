"""Validating an ingest batch before it is stored: reads and writes nothing.

``Services`` holds one :class:`BatchPreparer` for its routes and the lean path; the ingest
front process (:mod:`monitor.api.ingest_front`) holds another, fed the model schemas and
target Arrow schemas the server sends it, so a batch is validated there, off the process
that owns the DuckDB file (issue 17).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pyarrow as pa

from monitor import ingest
from monitor.settings import Settings
from storage.types import ModelInfo, ModelSchema

IngestKind = Literal["inferences", "labels", "events"]

# the Arrow schema an inference batch of a model is stored with (LogStore.arrow_schema)
InferenceTarget = Callable[[str, ModelSchema], pa.Schema]


@dataclass(frozen=True)
class PreparedIngest:
    """A validated ingest batch, not stored yet (``BatchPreparer.prepare``)."""

    kind: IngestKind
    model: str | None
    schema: ModelSchema | None  # the model's schema it was validated against
    tenant_scope: str | None  # the key's tenant it was validated for
    batch_id: str
    v: ingest.Validated
    table: pa.Table  # the rows to append (an inference batch's without its label column)
    labels: pa.Table | None  # an inference batch's labels, appended after it

    @property
    def append_args(self) -> tuple[str, str | None, pa.Table]:
        """``LogStore.append``'s arguments for this batch."""
        return self.kind, self.model, self.table


class BatchPreparer:
    """Validates ingest batches against the settings' bounds and a model's schema."""

    def __init__(
        self, settings: Settings, now: Callable[[], datetime], inference_target: InferenceTarget
    ) -> None:
        self.settings = settings
        self._now = now
        self._inference_target = inference_target
        # (kind, model) -> (schema, rules, target) of its batches; see plan
        self._plans: dict[
            tuple[IngestKind, str | None],
            tuple[ModelSchema | None, list[ingest.FieldRule], pa.Schema],
        ] = {}

    def limits(self, *, check_time: bool = True) -> ingest.Limits:
        """The per-row bounds of ingest, from the settings."""
        s = self.settings
        return ingest.Limits(
            min_ts=s.min_timestamp,
            max_future=timedelta(seconds=s.max_future_skew_seconds),
            check_time=check_time,
            max_id_chars=s.max_id_chars,
            max_category_chars=s.max_category_chars,
            max_text_chars=s.max_text_chars,
            max_abs_number=s.max_abs_number,
        )

    def prepare(
        self,
        kind: IngestKind,
        info: ModelInfo | None,
        parsed: ingest.ParsedBody,
        tenant_scope: str | None,
    ) -> PreparedIngest:
        """Validate a batch: its typed valid rows, its errors and rejected rows. ``info`` is
        the model (None for events)."""
        batch_id = uuid.uuid4().hex
        common: dict[str, Any] = {
            "tenant_scope": tenant_scope,
            "now": self._now(),
            "limits": self.limits(),
            "batch_id": batch_id,
        }
        labels = None
        rules, target = self.plan(kind, info)
        if kind == "events":
            v = ingest.validate(
                parsed,
                rules,
                target,
                kind="event",
                model=None,
                fill={"event_id": ingest.event_ids},
                **common,
            )
            return PreparedIngest(kind, None, None, tenant_scope, batch_id, v, v.table, None)
        assert info is not None
        if kind == "labels":
            v = ingest.validate(
                parsed,
                rules,
                target,
                kind="label",
                model=info.name,
                aliases=dict(info.schema.aliases),
                **common,
            )
            return PreparedIngest(
                kind, info.name, info.schema, tenant_scope, batch_id, v, v.table, None
            )
        v = ingest.validate(
            parsed,
            rules,
            target,
            kind="inference",
            model=info.name,
            aliases=dict(info.schema.aliases),
            **common,
        )
        table = v.table
        if "label" in table.column_names:
            labels = table.filter(table.column("label").is_valid()).select(
                ["request_id", "label", "tenant_id"]
            )
            table = table.drop_columns(["label"])
        return PreparedIngest(
            kind, info.name, info.schema, tenant_scope, batch_id, v, table, labels
        )

    def plan(
        self, kind: IngestKind, info: ModelInfo | None
    ) -> tuple[list[ingest.FieldRule], pa.Schema]:
        """The field rules and the target Arrow schema of a batch of ``kind`` (an inference
        batch's with its optional ``label`` column), built once per kind and model schema:
        about 0.1-0.3 ms a request otherwise (labels and events built theirs twice)."""
        model, schema = (info.name, info.schema) if info is not None else (None, None)
        cached = self._plans.get((kind, model))
        if cached is not None and cached[0] == schema:
            return cached[1], cached[2]
        if kind == "events":
            rules = ingest.event_rules()
            target = ingest.rules_schema(rules)
        elif schema is None or model is None:
            raise ValueError(f"a batch of {kind} needs its model")
        elif kind == "labels":
            rules = ingest.label_rules(schema)
            target = ingest.rules_schema(rules)
        else:
            label = ingest.prediction_rule(schema, "label", required=False)
            rules = [*ingest.inference_rules(schema), label]
            target = self._inference_target(model, schema).append(
                pa.field("label", ingest.ARROW_TYPES[label.kind])
            )
        self._plans[(kind, model)] = (schema, rules, target)
        return rules, target
