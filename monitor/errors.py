"""Errors of the application layer; the API maps each to one HTTP status.

::

    DriftwatchError
    ├── NotFoundError          404  unknown model, tenant, reference (or another tenant's object)
    ├── ConflictError          409  the object exists already
    ├── BadRequestError        400  malformed body, unsupported content type
    ├── ValidationFailed       422  schema violations; ``errors`` lists field paths and reasons
    ├── PayloadTooLarge        413  body over ``max_body_bytes``
    ├── AuthenticationError    401  missing, unknown, revoked or expired API key
    ├── PermissionDenied       403  role too low, or rows of another tenant
    └── RateLimited            429  too many requests for this key; ``retry_after`` seconds

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
