"""Request and response bodies of the API, and their conversion to storage types.

Validation of user input happens here (pydantic), so storage only ever sees checked values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from storage.types import (
    COLUMN_RE,
    FEATURE_KINDS,
    NAME_RE,
    RESERVED_COLUMNS,
    FeatureSpec,
    ModelInfo,
    ModelSchema,
)

# fields every model has besides its features, prediction and scores
ALIAS_TARGETS = ("request_id", "ts", "tenant_id", "model_version", "label")


class FeatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Column name: letters, digits and _, at most 63 characters.")
    kind: Literal["numeric", "categorical", "boolean", "text"] = Field(
        description=f"One of {', '.join(FEATURE_KINDS)}."
    )
    segment: bool = Field(
        False, description="Categorical feature whose values drift results are attributed to."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not COLUMN_RE.match(value):
            raise ValueError(
                f"feature name {value!r} must match {COLUMN_RE.pattern} "
                "(letters, digits, underscore; not starting with a digit)"
            )
        if value in RESERVED_COLUMNS:
            raise ValueError(
                f"feature name {value!r} is reserved; reserved names: {sorted(RESERVED_COLUMNS)}"
            )
        return value

    @model_validator(mode="after")
    def _segment_is_categorical(self) -> FeatureIn:
        if self.segment and self.kind != "categorical":
            raise ValueError(f"feature {self.name!r}: segment=true needs kind 'categorical'")
        return self


class ModelIn(BaseModel):
    """A model to register: its task and the columns of its inference rows."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Model name: lower-case letters, digits and _.")
    task: Literal["binary", "multiclass", "regression"]
    description: str = ""
    features: list[FeatureIn] = Field(min_length=1)
    prediction: str = "prediction"
    scores: list[str] = Field(
        default_factory=list,
        description="Score columns: the positive-class probability (binary) or one per class "
        "in the order of `classes` (multiclass).",
    )
    classes: list[str] = Field(default_factory=list, description="Class names (multiclass).")
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Column names of your rows -> the field they are, e.g. {id: request_id, "
        "timestamp: ts, target: label, 'mean radius': mean_radius}; applied on every ingest "
        "path (inferences, labels, references).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"model name {value!r} must match {NAME_RE.pattern}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelIn:
        names = [f.name for f in self.features] + [self.prediction, *self.scores]
        for column in [self.prediction, *self.scores]:
            if not COLUMN_RE.match(column) or column in RESERVED_COLUMNS:
                raise ValueError(f"column name {column!r} is not allowed")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"column names must be unique; repeated: {dupes}")
        if self.task == "binary" and len(self.scores) > 1:
            raise ValueError(
                "a binary model has at most one score (the positive-class probability)"
            )
        if self.task == "multiclass":
            if len(self.classes) < 2:
                raise ValueError("a multiclass model needs `classes` (at least two)")
            if self.scores and len(self.scores) != len(self.classes):
                raise ValueError(
                    f"multiclass: {len(self.scores)} scores for {len(self.classes)} classes; "
                    "give one score column per class, in the order of `classes`"
                )
        elif self.classes:
            raise ValueError(f"`classes` is only for multiclass models, not {self.task}")
        fields = {*ALIAS_TARGETS, *names}
        for source, target in self.aliases.items():
            if target not in fields:
                raise ValueError(
                    f"aliases: {source!r} -> {target!r}: {target!r} is not a field of this "
                    f"model; fields: {sorted(fields)}"
                )
            if source in fields and source != target:
                raise ValueError(
                    f"aliases: {source!r} -> {target!r}: {source!r} is itself a field of "
                    "this model, so its column would be ambiguous"
                )
            if not source or len(source) > 128:
                raise ValueError(f"aliases: column name {source!r} must have 1-128 characters")
        mapped = list(self.aliases.values())
        twice = sorted({t for t in mapped if mapped.count(t) > 1})
        if twice:
            raise ValueError(f"aliases: several columns map to {twice}; keep one per field")
        return self

    def to_schema(self) -> ModelSchema:
        return ModelSchema(
            task=self.task,
            features=tuple(FeatureSpec(f.name, f.kind, f.segment) for f in self.features),
            prediction=self.prediction,
            scores=tuple(self.scores),
            classes=tuple(self.classes),
            aliases=tuple(self.aliases.items()),
        )


class ModelOut(BaseModel):
    name: str
    task: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema")
    created_at: datetime
    updated_at: datetime
    rows: int | None = None
    tenants: list[str] | None = None

    model_config = ConfigDict(populate_by_name=True)

    @classmethod
    def of(cls, info: ModelInfo, **extra: Any) -> ModelOut:
        return cls(
            name=info.name,
            task=info.task,
            description=info.description,
            schema=info.schema.to_dict(),
            created_at=info.created_at,
            updated_at=info.updated_at,
            **extra,
        )


class RowErrorOut(BaseModel):
    row: int
    field: str
    reason: str


class IngestOut(BaseModel):
    """Counts of an ingest call. ``errors`` lists the first few; every rejected row is kept in
    quarantine with its reason."""

    batch_id: str
    received: int
    accepted: int
    duplicates: int
    rejected: int
    errors: list[RowErrorOut]


class ReferenceOut(BaseModel):
    model: str
    name: str
    version: int
    rows: int


class TenantOut(BaseModel):
    tenant_id: str
    name: str
    created_at: datetime
