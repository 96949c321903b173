"""Driftwatch's one error tree: each class carries its HTTP status, the one mapping every route
uses (``monitor.api.app`` renders any of them as ``{"error": {"type", "message", ...}}``).

::

    DriftwatchError                 500  base of everything raised on purpose
    ├── NotFoundError               404  unknown model, tenant, reference (or another tenant's)
    ├── ConflictError               409  the object exists already, or a state forbids the change
    ├── BadRequestError             400  malformed body, unsupported content type
    ├── ValidationFailed            422  schema violations; ``errors`` lists field paths, reasons
    ├── InvalidInput (ValueError)   422  a bad value found below the API's schemas:
    │   ├── RangeError                   a page's time range (monitor.timerange)
    │   └── FormulaError                 a KPI formula (monitor.kpis.formula)
    ├── PayloadTooLarge             413  body over ``max_body_bytes``
    ├── AuthenticationError         401  missing, unknown, revoked or expired API key
    ├── PermissionDenied            403  role too low, or rows of another tenant
    │   └── AccessDenied                 outside a read model's tenant scope (monitor.queries)
    ├── RateLimited                 429  too many requests for this key; ``retry_after`` seconds
    └── ClientError                      the remote server's refusal (monitor.client)

The layers below ``monitor`` cannot import it and keep their own roots, drawn in their modules:
``storage.errors.StorageError``, ``alerts.errors.AlertsError``, ``detectors.errors.DetectorError``.
:func:`translate` is the one place that maps them into this tree (the API registers it for the
three roots, so no route translates by hand). Not an error: ``monitor.jobs.Cancelled`` (a job's
stop signal).

Messages name the field, the value and the allowed choices, so a user can fix the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DriftwatchError(Exception):
    status_code = 500

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFoundError(DriftwatchError):
    status_code = 404


class ConflictError(DriftwatchError):
    status_code = 409


class BadRequestError(DriftwatchError):
    status_code = 400


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: ``loc`` is the path, e.g. ``("rows", 12, "age")``."""

    loc: tuple[str | int, ...]
    msg: str

    def to_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg}


class ValidationFailed(DriftwatchError):
    status_code = 422

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class PayloadTooLarge(DriftwatchError):
    status_code = 413


class AuthenticationError(DriftwatchError):
    status_code = 401


class PermissionDenied(DriftwatchError):
    status_code = 403


class RateLimited(DriftwatchError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidInput(DriftwatchError, ValueError):
    """A bad value found below the API's schemas (still a ``ValueError`` for parsers)."""

    status_code = 422


def translate(exc: BaseException) -> DriftwatchError | None:
    """The service error for an error of a lower layer (None: not one this tree maps).

    ==========================================  ==================
    lower layer                                 service error
    ==========================================  ==================
    storage ``NotFound``, ``UnknownModelError``  NotFoundError
    storage ``AlreadyExists``, other metadata,  ConflictError
    ``SchemaChangeError``
    storage ``KpiQueryError``                   ValidationFailed
    alerts ``AlertInputError`` (rule, matcher,  ValidationFailed
    secret, URL, channel kind)
    detectors ``UnknownNameError``,             ValidationFailed
    ``InvalidParameterError``
    ==========================================  ==================
    """
    from alerts.errors import AlertInputError
    from detectors.errors import InvalidParameterError, UnknownNameError
    from storage.kpi_sql import KpiQueryError
    from storage.logstore import SchemaChangeError, UnknownModelError
    from storage.metadata.errors import MetadataError, NotFound

    message = str(exc)
    if isinstance(exc, NotFound | UnknownModelError):
        return NotFoundError(message)
    if isinstance(exc, MetadataError | SchemaChangeError):
        return ConflictError(message)
    if isinstance(exc, KpiQueryError | AlertInputError | UnknownNameError | InvalidParameterError):
        return ValidationFailed(message)
    return None
