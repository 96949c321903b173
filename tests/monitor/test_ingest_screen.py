"""The small-column screen of the row checks (``monitor.ingest.checks._clean_small``) never
changes what the checks find: on edge values of every kind of field, ``row_checks`` with the
screen gives exactly the errors of the vectorised checks alone (``SMALL_COLUMN = 0``)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from monitor.ingest import checks
from monitor.ingest.rules import ARROW_TYPES, FieldRule, Limits

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
LIMITS = Limits(max_id_chars=8, max_category_chars=6, max_abs_number=1e6)
US = timedelta(microseconds=1)

EDGES: dict[str, list[Any]] = {
    "float": [
        *(0.0, -0.0, 1.0, 0.5, 1.0000001, -1e-300, 1e6, -1e6, 1e6 * 1.0000001, 3e6),
        *(float("nan"), float("inf"), float("-inf"), None),
    ],
    "binary": [0, 1, 2, -1, None],
    "bool": [True, False, None],
    "tenant": ["acme", "", "a" * 64, "a" * 65, "acme\n", "-x", "x-", "ü", "a b", "a\x00b", None],
    "id": ["r-1", "", "x" * 8, "x" * 9, "é" * 4, "é" * 5, "é" * 8, "é" * 9, None],
    "string": ["pro", "", "x" * 6, "x" * 7, "ß" * 3, "ß" * 6, "ß" * 7, None],
    "class": ["a", "b", "c", "", None],
    "ts": [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(2000, 1, 1, tzinfo=UTC) - US,
        NOW + timedelta(hours=1),
        NOW + timedelta(hours=1) + US,
        NOW,
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
        None,
    ],
}
RULES = [
    FieldRule("f", "float"),
    FieldRule("p", "float", unit_interval=True),
    FieldRule("b", "binary", required=True),
    FieldRule("o", "bool"),
    FieldRule("tenant_id", "tenant", required=True),
    FieldRule("request_id", "id", required=True, chars="id"),
    FieldRule("v", "string", chars="category"),
    FieldRule("c", "class", classes=("a", "b"), chars="category"),
    FieldRule("ts", "ts", required=True),
]


def columns(kind: str) -> list[list[Any]]:
    """Each edge value alone, with a clean neighbour, and every pair of edge values."""
    values = EDGES["float" if kind == "float" else kind]
    clean = next(v for v in values if v is not None)
    return (
        [[v] for v in values]
        + [[clean, v] for v in values]
        + [list(pair) for pair in itertools.combinations(values, 2)]
    )


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.kind}-{r.name}")
@pytest.mark.parametrize("limits", [LIMITS, Limits(check_time=False)], ids=["limits", "no-time"])
def test_screen_finds_what_the_vectorised_checks_find(
    rule: FieldRule, limits: Limits, monkeypatch: pytest.MonkeyPatch
) -> None:
    screened = 0
    for values in columns(rule.kind):
        arr = pa.array(values, ARROW_TYPES[rule.kind])
        with_screen = checks.row_checks(arr, rule, NOW, limits)
        with monkeypatch.context() as m:
            m.setattr(checks, "SMALL_COLUMN", 0)
            alone = checks.row_checks(arr, rule, NOW, limits)
        assert with_screen == alone, (rule, values)
        screened += checks._clean_small(arr, rule, NOW, limits)
    # the screen is not vacuous: clean columns of this kind pass it (a class column with
    # classes is always left to the vectorised checks)
    assert screened > 0 or rule.kind == "class"


def test_screen_passes_only_clean_columns() -> None:
    """Control: a column the checks flag is never screened clean."""
    rule = FieldRule("p", "float", unit_interval=True)
    assert checks._clean_small(pa.array([0.5, 0.25]), rule, NOW, LIMITS)
    for bad in (1.5, -0.1, float("nan")):
        arr = pa.array([0.5, bad])
        assert checks.row_checks(arr, rule, NOW, LIMITS)
        assert not checks._clean_small(arr, rule, NOW, LIMITS)
