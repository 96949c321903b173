"""Typed response bodies: pydantic models built from the records the routes show.

Each record (a frozen dataclass of ``storage.types`` or ``alerts``) becomes a response model
with the same fields, so the OpenAPI document states every field of every answer and
schemathesis' ``response_schema_conformance`` holds the server to it. Times stay the strings
the API has always sent (``datetime.isoformat()``, ``+00:00``), documented as ``date-time``;
``Literal`` states are documented as strings (a stored state the code no longer names must
never turn an answer into a 500).
"""

from __future__ import annotations

import dataclasses
import functools
import types
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

__all__ = ["IsoTime", "Out", "StatusOut", "out_model"]

IsoTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class Out(BaseModel):
    """Base of the response models: fields named by the record; a field added to a record
    and not yet to its model is still sent (``extra="allow"``), never silently dropped."""

    model_config = ConfigDict(extra="allow")


class StatusOut(Out):
    status: str = Field(description="What happened, e.g. deleted.")


def _field_type(tp: Any) -> Any:
    origin = get_origin(tp)
    if tp is datetime:
        return IsoTime
    if origin is Literal:
        return str
    if origin in (Union, types.UnionType):
        return Union[tuple(_field_type(a) for a in get_args(tp))]  # noqa: UP007
    if origin in (tuple, list):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return types.GenericAlias(list, (_field_type(args[0]) if args else Any,))
    if origin is dict:
        key, value = get_args(tp) or (str, Any)
        return types.GenericAlias(dict, (key, _field_type(value)))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return out_model(tp)
    return tp


@functools.cache
def _record_fields(record: type) -> tuple[tuple[str, Any, Any], ...]:
    hints = get_type_hints(record)
    out = []
    for f in dataclasses.fields(record):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = ...
        if isinstance(default, tuple):
            default = list(default)
        out.append((f.name, _field_type(hints[f.name]), default))
    return tuple(out)


_MODELS: dict[tuple[Any, ...], type[Out]] = {}


def list_of(model: Any) -> Any:
    """``list[model]`` for a model :func:`out_model` builds at run time (a type checker
    cannot read a value as a type, so routes say ``response_model=list_of(AlertOut)``)."""
    return types.GenericAlias(list, (model,))


def out_model(
    record: type,
    name: str | None = None,
    *,
    exclude: tuple[str, ...] = (),
    extra: dict[str, tuple[Any, Any]] | None = None,
    doc: str | None = None,
) -> type[Out]:
    """The response model of ``record`` (a dataclass): its fields (less ``exclude``) plus
    ``extra`` (name → (type, default)), called ``name`` (default: the record's name with
    ``Record`` replaced by ``Out``)."""
    name = name or record.__name__.removesuffix("Record") + "Out"
    key = (record, name, exclude)  # a name is given once per shape
    hit = _MODELS.get(key)
    if hit is not None:
        return hit
    fields: dict[str, Any] = {
        n: (tp, default) for n, tp, default in _record_fields(record) if n not in exclude
    }
    fields.update(extra or {})
    model = create_model(name, __base__=Out, **fields)
    model.__doc__ = doc or (record.__doc__ or "").strip().split("\n\n")[0] or name
    _MODELS[key] = model
    return model
