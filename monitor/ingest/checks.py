"""Vectorised per-row checks on a typed column: required, lengths, tenant ids, finite numbers,
probabilities, classes, timestamp bounds."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.ingest.rules import TENANT_RE, TS_TYPE, FieldRule, Limits, show


def row_checks(
    arr: pa.Array, rule: FieldRule, now: datetime, limits: Limits
) -> list[tuple[int, str]]:
    """Vectorised row checks on an already typed column (the first failing check of a row is
    its reason, so the order below is the order of precedence).

    Each check first asks one aggregate of the column (a min, a max, a sum) whether any row can
    fail it, and only then looks for the rows: a clean column costs a few cheap passes.
    """
    if len(arr) <= SMALL_COLUMN and _clean_small(arr, rule, now, limits):
        return []
    errors: list[tuple[int, str]] = []

    def flag(mask: pa.Array, why: Callable[[int], str]) -> None:
        idx = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        errors.extend((int(i), why(int(i))) for i in idx)

    if rule.required and arr.null_count:
        flag(arr.is_null(), lambda i: "required field is missing")
    if not len(arr) or arr.null_count == len(arr):
        return errors
    nbytes = pc.binary_length(arr) if pa.types.is_string(arr.type) else None
    shortest, longest = _min_max(nbytes) if nbytes is not None else (None, None)
    if rule.kind in ("id", "tenant"):
        if shortest == 0:
            flag(pc.fill_null(pc.equal(nbytes, 0), False), lambda i: "must not be empty")
        if rule.kind == "tenant":
            ok = pc.match_substring_regex(arr, TENANT_RE.pattern)
            if not pc.all(pc.or_(ok, pc.equal(nbytes, 0))).as_py():
                flag(
                    pc.fill_null(pc.and_(pc.invert(ok), pc.greater(nbytes, 0)), False),
                    lambda i: f"tenant_id {show(arr[i].as_py())} must match {TENANT_RE.pattern}",
                )
    if rule.chars is not None and longest is not None:
        limit, setting = limits.chars(rule.chars)
        # bytes first (no scan of the text): only a value over the limit in bytes can be over
        # it in characters
        if longest > limit:
            chars = pc.utf8_length(arr)
            flag(
                pc.fill_null(pc.greater(chars, limit), False),
                lambda i: (
                    f"{chars[i].as_py():,} characters, longer than the limit of "
                    f"{limit:,} ({setting})"
                ),
            )
    if rule.kind == "float":
        # the sum of magnitudes is NaN or infinite when any value is, and below the limit
        # only when every value is
        total = pc.sum(pc.abs(arr)).as_py()
        if total is not None and not total <= limits.max_abs_number:
            finite = pc.fill_null(pc.is_finite(arr), True)
            flag(
                pc.invert(finite),
                lambda i: (
                    f"must be a finite number, got {arr[i].as_py()} (send null for a missing value)"
                ),
            )
            huge = pc.and_(finite, pc.greater(pc.abs(arr), limits.max_abs_number))
            flag(
                pc.fill_null(huge, False),
                lambda i: (
                    f"{arr[i].as_py()!r} is larger in magnitude than {limits.max_abs_number:g} "
                    "(DRIFTWATCH_MAX_ABS_NUMBER)"
                ),
            )
        if rule.unit_interval:
            outside = pc.or_(pc.less(arr, 0.0), pc.greater(arr, 1.0))
            flag(
                pc.fill_null(outside, False),
                lambda i: f"a probability must be in [0, 1], got {arr[i].as_py()!r}",
            )
    if rule.kind == "binary":
        flag(
            pc.and_(arr.is_valid(), pc.invert(pc.is_in(arr, pa.array([0, 1], pa.int32())))),
            lambda i: f"expected 0 or 1 for a binary model, got {arr[i].as_py()!r}",
        )
    if rule.kind == "class" and rule.classes:
        flag(
            pc.and_(arr.is_valid(), pc.invert(pc.is_in(arr, pa.array(list(rule.classes))))),
            lambda i: (
                f"{show(arr[i].as_py())} is not one of the model's classes {list(rule.classes)}"
            ),
        )
    if rule.kind == "ts" and limits.check_time:
        mm = pc.min_max(arr)  # compared as Arrow scalars: no conversion that could overflow
        early = pa.scalar(limits.min_ts, TS_TYPE)
        if pc.less(mm["min"], early).as_py():
            flag(
                pc.fill_null(pc.less(arr, early), False),
                lambda i: (
                    f"timestamp {_iso(arr[i])} is before "
                    f"{limits.min_ts.isoformat()} (DRIFTWATCH_MIN_TIMESTAMP)"
                ),
            )
        latest = pa.scalar(now + limits.max_future, TS_TYPE)
        if pc.greater(mm["max"], latest).as_py():
            flag(
                pc.fill_null(pc.greater(arr, latest), False),
                lambda i: (
                    f"timestamp {_iso(arr[i])} is in the future: later than now + "
                    f"{int(limits.max_future.total_seconds())} s "
                    "(DRIFTWATCH_MAX_FUTURE_SKEW_SECONDS)"
                ),
            )
    return errors


# Up to this many values a column is first screened on its Python values (_clean_small): the
# checks below cost about 25 Arrow calls per batch whatever its size, most of a small request's
# validation (validate() of a JSON body, ms of CPU without -> with the screen: 10 rows
# 0.75 -> 0.30, 100 rows 0.83 -> 0.45, 500 rows 1.44 -> 1.11; at 1,000 the screen cost more).
SMALL_COLUMN = 512

# Every tenant id of a column at once: the ids joined by NUL (TENANT_RE allows none in an
# id, and the caller checks the text holds no other NUL) match this exactly when each id
# matches TENANT_RE as a whole.
ONE_TENANT = TENANT_RE.pattern.removeprefix("^").removesuffix("$")
_TENANTS = re.compile(f"(?:{ONE_TENANT})(?:\x00(?:{ONE_TENANT}))*")


def _clean_small(arr: pa.Array, rule: FieldRule, now: datetime, limits: Limits) -> bool:
    """True when no check of :func:`row_checks` can flag a row of ``arr``, decided on its Python
    values with builtins that loop in C (min, max, sum, one regex match); False means "look
    closer" (the vectorised checks then decide, and find the rows). Conservative by
    construction: each test passes only where the check it stands for cannot flag
    (``tests/monitor/test_ingest_screen.py`` compares the two on edge values)."""
    if rule.required and arr.null_count:
        return False
    if rule.kind == "class" and rule.classes:
        return False  # a class is compared as Arrow compares it
    try:
        if rule.kind == "ts":
            if not limits.check_time:
                return True
            # one Arrow call: Python datetimes cost ~1 us each to make
            mm = pc.min_max(arr)
            low, high = mm["min"].as_py(), mm["max"].as_py()
            return not (low < limits.min_ts or high > now + limits.max_future)
        values = arr.to_pylist()
        if arr.null_count:
            values = [v for v in values if v is not None]
        if not values:
            return True
        if pa.types.is_string(arr.type):
            if rule.kind in ("id", "tenant") and "" in values:
                return False
            # fullmatch: stricter than the regex's own `$` (which Python lets match before a
            # final newline)
            if rule.kind == "tenant":
                joined = "\x00".join(values)
                # a NUL inside an id would pass for a separator: only the joins may be NULs
                if joined.count("\x00") != len(values) - 1 or not _TENANTS.fullmatch(joined):
                    return False
            if rule.chars is not None:
                limit, _ = limits.chars(rule.chars)
                # at most 4 UTF-8 bytes a character: count bytes only when that could pass
                if 4 * max(map(len, values)) > limit and (
                    max(len(v.encode("utf-8")) for v in values) > limit
                ):
                    return False
        if rule.kind == "float":
            if not floats_clear(values, rule, limits):
                return False
        elif rule.kind == "binary" and not set(values) <= {0, 1}:
            return False
    except (TypeError, ValueError, OverflowError, pa.ArrowException):
        return False  # e.g. a timestamp beyond year 9999, a naive bound: look closer
    return True


def floats_clear(values: list[Any], rule: FieldRule, limits: Limits) -> bool:
    """True when every one of ``values`` (numbers, no None) is finite, within the absolute
    bound and, for a unit-interval rule, in [0, 1]. NaN or an infinity makes the sum NaN or
    infinite (so does an overflow: then the caller's vectorised checks decide); once all are
    finite, min and max bound them."""
    if not math.isfinite(sum(values)):
        return False
    low, high = min(values), max(values)
    bound = limits.max_abs_number
    if low < -bound or high > bound:
        return False
    return not (rule.unit_interval and (low < 0.0 or high > 1.0))


def _iso(value: pa.Scalar) -> str:
    """A timestamp scalar as ISO 8601 text (its microseconds since 1970 beyond year 9999)."""
    try:
        return str(value.as_py().isoformat())
    except (ValueError, OverflowError):
        return f"{value.cast(pa.int64()).as_py()} microseconds since 1970"


def _min_max(arr: Any) -> tuple[Any, Any]:
    """The smallest and largest non-null value (None, None when every value is null)."""
    mm = pc.min_max(arr)
    return mm["min"].as_py(), mm["max"].as_py()
