"""The OpenAPI document states every status code a route can answer, with its body.

FastAPI documents the 2xx answer of each route and a 422 in its own ``{"detail": ...}``
shape; our errors all travel as ``{"error": {"type", "message", "errors"?}}``
(``monitor.api.app``), and authentication, permissions, rate limits, unknown objects and
conflicts can answer any route that takes a key. :func:`document_errors` adds those answers
to every operation, so schemathesis' conformance checks (``tests/api/test_schemathesis.py``)
hold the document to what the server does.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

__all__ = ["PUBLIC_PATHS", "ErrorOut", "document_errors"]

# Routes that take no key (no 401/403/429).
PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/ready", "/api/v1/metrics"})


class FieldErrorOut(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    type: str = Field(description="The error's class, e.g. ValidationFailed, NotFoundError.")
    message: str = Field(description="What is wrong, naming the field or object.")
    errors: list[FieldErrorOut] | None = Field(None, description="Per-field problems (422).")


class ErrorOut(BaseModel):
    """Every error answer of the API."""

    error: ErrorBody


_KEYED = {
    "401": "Missing, unknown, revoked or expired API key.",
    "403": "The key's role is too low, or the key is scoped to a tenant for a shared object.",
    "404": "An object in the path (or the body) does not exist, or belongs to another tenant.",
    "409": "The object exists already, or the request conflicts with its state.",
    "422": "A parameter or the body is invalid; the message names the field.",
    "429": "Rate limit of the key exceeded; see Retry-After.",
}
_BODY = {
    "400": "The body cannot be read (empty, malformed, unsupported content type).",
    "413": "The body is larger than max_body_bytes.",
}


def document_errors(app: FastAPI) -> dict[str, Any]:
    """Build ``app``'s OpenAPI document with the error answers of every operation."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorOut, ErrorBody, FieldErrorOut):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schema.pop("$defs", None)
        schemas[model.__name__] = schema
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
    for path, ops in doc.get("paths", {}).items():
        for _method, op in ops.items():
            responses = op.setdefault("responses", {})
            codes: dict[str, str] = {}
            if path not in PUBLIC_PATHS:
                codes.update(_KEYED)
            elif op.get("parameters"):
                codes["422"] = _KEYED["422"]
            if "requestBody" in op:
                codes.update(_BODY)
                codes["422"] = _KEYED["422"]
            for code, text in codes.items():
                responses[code] = {"description": text, **ref}
    app.openapi_schema = doc
    return doc
