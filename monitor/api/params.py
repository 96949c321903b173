"""Bounded parameter types shared by the routes, so no value reaches a store it would overflow.

Ids are positive 64-bit integers, offsets and limits have ceilings, and times are ISO 8601
strings (a bare number is refused, not read as Unix seconds) between
:data:`monitor.limits.EARLIEST` and :data:`monitor.limits.LATEST`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema

from monitor.limits import EARLIEST, LATEST, aware

__all__ = ["MAX_ID", "MAX_OFFSET", "AwareWhen", "Id", "Offset", "When"]

MAX_ID = 2**63 - 1  # the stores' BIGINT
MAX_OFFSET = 1_000_000_000


def _iso_only(value: Any) -> Any:
    """Refuse numbers (pydantic would read them as Unix seconds), also when sent as text."""
    numeric = isinstance(value, int | float)
    if isinstance(value, str):
        try:
            float(value)  # "12345", "-1e-308", "nan": no ISO 8601 time parses as a float
            numeric = True
        except ValueError:
            pass
    if numeric:
        raise ValueError("a time must be an ISO 8601 string such as 2026-01-31T00:00:00Z")
    return value


def _bounded(value: datetime) -> datetime:
    try:
        value = aware(value)
    except OverflowError as exc:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}") from exc
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return value


# An ISO 8601 time in [1970, 2200); naive means UTC.
When = Annotated[
    datetime,
    BeforeValidator(_iso_only),
    AfterValidator(_bounded),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": f"ISO 8601, {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}; naive is UTC",
        }
    ),
]
# The same, with an explicit offset required (``Z`` or ``+hh:mm``).
AwareWhen = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_only),
    AfterValidator(_bounded),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": f"ISO 8601 with an offset, {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}",
        }
    ),
]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
