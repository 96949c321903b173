"""Per-field conversion of a column to its Arrow type: a typed fast path for the whole column,
then a per-value slow path that says for each bad value what is wrong with it."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.ingest.checks import ONE_TENANT, floats_clear, row_checks
from monitor.ingest.rules import ARROW_TYPES, EPOCH, TS_TYPE, FieldRule, Kind, Limits, show


# --------------------------------------------------------------------------- per-field conversion
def convert_column(
    rule: FieldRule,
    values: Any,
    n: int,
    now: datetime,
    limits: Limits,
) -> tuple[pa.Array, list[tuple[int, str]]]:
    if type(values) is list and len(values) <= PLAIN_COLUMN:
        plain = _plain(values, rule, now, limits)
        if plain is not None:
            return plain, []
    target = ARROW_TYPES[rule.kind]
    errors: list[tuple[int, str]] = []
    if values is None:
        arr = pa.nulls(n, target)
    elif rule.kind == "ts" and _arrow_timestamps(values):
        arr, errors = _ts_from_arrow(values)
    else:
        arr = _fast(values, rule, target)
        if arr is None:
            arr, errors = _slow(values, rule, target)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    errors += row_checks(arr, rule, now, limits)
    return arr, errors


# Up to this many values a column of JSON values (a list) is first tried by _plain.
PLAIN_COLUMN = 512
_TEXT_KINDS = frozenset(("string", "id", "tenant", "class"))
_TENANT = re.compile(ONE_TENANT)
_EXACT_FLOAT = 2**53  # a whole number up to this converts to a float exactly
_STR = frozenset((str,))
_NUMBER = frozenset((int, float))
_INT = frozenset((int,))
_BOOL = frozenset((bool,))
_BITS = frozenset((0, 1))


def _plain(values: list[Any], rule: FieldRule, now: datetime, limits: Limits) -> pa.Array | None:
    """A small column of JSON values (Python objects from the parser) as its typed array when
    every value is plainly valid: of the type its field takes as it comes (text for text
    fields and times, numbers for numbers, 0/1 for a binary prediction, booleans) and within
    every row check. Decided in Python on the values, then one Arrow call makes the array (a
    time column: Arrow's own parser, as ``_fast`` does, and one ``min_max``). None means
    "look closer": :func:`convert_column`'s usual path then converts and checks the column,
    and finds each bad row. Whatever this returns is what that path returns, with no error
    (``tests/monitor/test_ingest_plain.py`` compares the two on edge values and bodies):
    each test below passes only where a conversion or check of that path cannot fail, or
    else it sends the column on."""
    kind = rule.kind
    present = [v for v in values if v is not None] if None in values else values
    if rule.required and len(present) != len(values):
        return None  # "required field is missing"
    types = set(map(type, present))
    try:
        if kind in _TEXT_KINDS:
            if not types <= _STR:
                return None  # a number among strings converts on the per-value path
            if present:
                if kind in ("id", "tenant") and "" in present:
                    return None
                if rule.chars is not None and max(map(len, present)) > limits.chars(rule.chars)[0]:
                    return None  # characters are what the limit counts (utf8_length)
                if kind == "tenant" and not all(map(_TENANT.fullmatch, set(present))):
                    return None
                if kind == "class" and rule.classes and not set(present) <= set(rule.classes):
                    return None
            return pa.array(values, pa.string())  # a lone surrogate raises: look closer
        if kind == "float":
            if not types <= _NUMBER:
                return None  # booleans, text and objects are the per-value path's to judge
            if int in types and not all(
                -_EXACT_FLOAT <= v <= _EXACT_FLOAT for v in present if type(v) is int
            ):
                return None
            if present and not floats_clear(present, rule, limits):
                return None
            return pa.array(values, pa.float64())
        if kind == "binary":
            if not types <= _INT or not set(present) <= _BITS:
                return None
            return pa.array(values, pa.int32())
        if kind == "bool":
            return pa.array(values, pa.bool_()) if types <= _BOOL else None
        if kind == "ts":
            if not types <= _STR:
                return None
            arr = _fast_from_text(pa.array(values, pa.string()), rule, TS_TYPE)
            if limits.check_time and arr.null_count < len(arr):
                # compared as microseconds since 1970, the stored numbers (no datetimes made)
                mm = pc.min_max(arr)
                if mm["min"].value < _micros(limits.min_ts) or mm["max"].value > _micros(
                    now + limits.max_future
                ):
                    return None
            return arr
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    return None


_MICROSECOND = timedelta(microseconds=1)


def warm_up() -> None:
    """Pay validation's one first-call cost now: pyarrow imports pandas at its first
    ``pa.array`` of a Python list (~0.5 s here), which the first small request after a start
    would wait for otherwise (it took 0.3-0.8 s against ~10 ms for the next ones).
    ``driftwatch serve`` and the ingest front run this on a thread once their port is open."""
    pa.array([0.0], pa.float64())


def _micros(t: datetime) -> int:
    """An aware time as microseconds since 1970 (a ``TS_TYPE`` value's stored number)."""
    return (t - EPOCH) // _MICROSECOND


def _fast(values: Any, rule: FieldRule, target: pa.DataType) -> pa.Array | None:
    """Typed conversion of a whole column, or None when some value needs a closer look."""
    try:
        if isinstance(values, pa.ChunkedArray | pa.Array):
            typ = values.type
            if pa.types.is_dictionary(typ):
                # pandas `category` columns arrive dictionary-encoded: decode once (a take of
                # the dictionary by the indices) and convert the plain column. Without this a
                # category column took the per-value path, 4-7x slower than the same strings.
                values = values.cast(typ.value_type)
                typ = values.type
            if pa.types.is_string(typ) or pa.types.is_large_string(typ):
                return _fast_from_text(values, rule, target)
            if rule.kind == "ts" and pa.types.is_date(typ):
                return values.cast(pa.timestamp("s")).cast(TS_TYPE)  # a date: its midnight
            if rule.kind == "float" and (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
                return values.cast(target)
            if rule.kind == "binary" and (pa.types.is_integer(typ) or pa.types.is_boolean(typ)):
                return values.cast(target)
            if rule.kind == "bool" and pa.types.is_boolean(typ):
                return values
            if target == pa.string() and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
                return values.cast(pa.string())
            if pa.types.is_null(typ):
                return pa.nulls(len(values), target)
            return None
        if target == pa.string():
            return pa.array(values, type=target)  # a number among strings raises: slow path
        # Let Arrow infer the column's type first: converting straight to the target would
        # silently turn True into 1.0 and truncate 0.7 to 0 for an integer target.
        inferred = pa.array(values)
        typ = inferred.type
        if rule.kind == "ts":
            return _fast_from_text(inferred, rule, target) if pa.types.is_string(typ) else None
        if pa.types.is_null(typ):
            return pa.nulls(len(inferred), target)
        if rule.kind == "float" and (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
            return inferred.cast(target)
        if rule.kind == "binary" and (pa.types.is_integer(typ) or pa.types.is_boolean(typ)):
            return inferred.cast(target)  # out-of-range values are flagged by the checks
        if rule.kind == "bool" and pa.types.is_boolean(typ):
            return inferred
        return None
    except (pa.ArrowException, TypeError, ValueError, OverflowError, RecursionError):
        return None  # e.g. a value nested deeper than Arrow converts: looked at one by one


# Python's datetime range (years 1-9999) in seconds since 1970: what a row may hold before the
# bounds checks say whether it is a plausible time.
_TS_RANGE_S = (-62_135_596_800, 253_402_300_800)
_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_INT64 = (-(2**63), 2**63 - 1)


def _arrow_timestamps(values: Any) -> bool:
    """An Arrow column of timestamps (plain or dictionary-encoded)."""
    if not isinstance(values, pa.ChunkedArray | pa.Array):
        return False
    typ = values.type
    return pa.types.is_timestamp(typ) or (
        pa.types.is_dictionary(typ) and pa.types.is_timestamp(typ.value_type)
    )


def _ts_from_arrow(values: Any) -> tuple[pa.Array, list[tuple[int, str]]]:
    """An Arrow timestamp column (Parquet, Arrow) as microseconds in UTC. Values outside years
    1-9999 are row errors (casting them would overflow and fail the whole column); a naive
    timestamp is taken as UTC; nanoseconds are truncated to the microsecond, the store's unit.
    """
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    unit = values.type.unit
    per = _PER_SECOND[unit]
    raw = values.view(pa.int64())  # the stored count of units since 1970
    lo = max(_TS_RANGE_S[0] * per, _INT64[0])
    hi = min(_TS_RANGE_S[1] * per, _INT64[1])
    outside = pc.fill_null(pc.or_(pc.less(raw, lo), pc.greater_equal(raw, hi)), False)
    errors: list[tuple[int, str]] = []
    if pc.any(outside).as_py():
        for i in np.flatnonzero(outside.to_numpy(zero_copy_only=False)):
            errors.append(
                (
                    int(i),
                    f"timestamp {raw[int(i)].as_py()} {unit} since 1970 is outside years 1-9999",
                )
            )
        values = pc.if_else(outside, pa.scalar(None, values.type), values)
    return values.cast(TS_TYPE, safe=False), errors


def _fast_from_text(values: Any, rule: FieldRule, target: pa.DataType) -> Any:
    """Text columns (CSV): Arrow's own parsers; any failure falls back to per-value checks."""
    if target == pa.string():
        return values.cast(pa.string())
    if rule.kind == "ts":
        try:
            return values.cast(TS_TYPE)  # strings with a zone offset or Z
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return values.cast(pa.timestamp("us")).cast(TS_TYPE)  # naive strings: UTC
    if rule.kind == "binary":
        return values.cast(pa.int32())
    if rule.kind == "bool":
        return values.cast(pa.bool_())
    return values.cast(target)


def _slow(
    values: Any, rule: FieldRule, target: pa.DataType
) -> tuple[pa.Array, list[tuple[int, str]]]:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        values = values.to_pylist()
    convert = _CONVERTERS[rule.kind]
    out: list[Any] = []
    errors: list[tuple[int, str]] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(convert(v))
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            out.append(None)
            errors.append((i, str(exc)))
    return pa.array(out, type=target), errors


def _to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise TypeError(f"expected a number, got boolean {v!r}")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        text = v.strip()
        if text == "":
            raise ValueError("expected a number, got an empty string")
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {show(v)}") from None
    raise TypeError(f"expected a number, got {show(v)}")


def _to_binary(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float) and v in (0, 1):
        return int(v)
    if isinstance(v, str) and v.strip().lower() in ("0", "1", "true", "false"):
        return 1 if v.strip().lower() in ("1", "true") else 0
    raise ValueError(f"expected 0 or 1 (or true/false) for a binary model, got {show(v)}")


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "0", "1"):
        return v.strip().lower() in ("true", "1")
    raise ValueError(f"expected true or false, got {show(v)}")


def _to_string(v: Any) -> str:
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{show(v)} is not valid Unicode (a lone surrogate)") from None
        return v
    if isinstance(v, bool | int | float):
        return str(v)
    raise TypeError(f"expected a string, got {type(v).__name__}")


_YEAR_RE = re.compile(r"^\d{4}$")
YEARS = (1000, 9999)  # a whole number in this range is a year, not seconds since 1970


def _to_ts(v: Any) -> datetime:
    """One timestamp: a datetime, a date (its midnight, UTC), an ISO 8601 text (a date alone
    is its midnight; a year alone, ``"2021"``, its 1 January), seconds since 1970, or a year
    as a whole number 1000-9999 (as seconds it would be the first hours of 1970, a time no
    log holds). Naive times are UTC."""
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, date):
        dt = datetime(v.year, v.month, v.day)
    elif isinstance(v, int) and not isinstance(v, bool) and YEARS[0] <= v <= YEARS[1]:
        dt = datetime(v, 1, 1)
    elif isinstance(v, int | float) and not isinstance(v, bool):
        # seconds since 1970; checked before converting (the C library fails with OSError on
        # large values, and 1e17 was once a 500)
        if not (math.isfinite(v) and _TS_RANGE_S[0] <= v < _TS_RANGE_S[1]):
            raise ValueError(
                f"{show(v)} seconds since 1970 is outside years 1-9999 (send seconds, not "
                "milliseconds, or an ISO 8601 text)"
            )
        dt = EPOCH + timedelta(seconds=float(v))
    elif isinstance(v, str):
        text = v.strip()
        try:
            dt = datetime(int(text), 1, 1) if _YEAR_RE.match(text) else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"expected an ISO 8601 timestamp such as 2024-05-01T12:00:00Z, a date "
                f"(2024-05-01) or a year (2024), got {show(v)}"
            ) from None
    else:
        raise TypeError(f"expected a timestamp, got {type(v).__name__}")
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_timestamps(values: Any) -> pa.Array:
    """A column of times as the store keeps them (UTC microseconds), by the rules of ingest;
    ValueError naming the first value that is not a time."""
    rule = FieldRule("ts", "ts")
    if _arrow_timestamps(values):
        arr, errors = _ts_from_arrow(values)
    else:
        arr = _fast(values, rule, TS_TYPE)
        errors = []
        if arr is None:
            arr, errors = _slow(values, rule, TS_TYPE)
    if errors:
        raise ValueError(f"row {errors[0][0]}: {errors[0][1]}")
    return arr


_CONVERTERS: dict[Kind, Callable[[Any], Any]] = {
    "string": _to_string,
    "id": _to_string,
    "tenant": _to_string,
    "class": _to_string,
    "float": _to_float,
    "binary": _to_binary,
    "bool": _to_bool,
    "ts": _to_ts,
}
