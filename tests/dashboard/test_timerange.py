"""Time ranges of the dashboard's pages: any span back from now or any from/to, and a message
naming each bad value (never the default in its place)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor import queries
from monitor.timerange import RangeError, TimeRange, date_inputs, parse_time_range

NOW = datetime(2026, 11, 18, 14, 30, tzinfo=UTC)


def parse(**params: str) -> TimeRange:
    return parse_time_range(params, NOW, max_days=400)


def t_label(**params: str) -> str:
    return parse(**params).label


def errors(**params: str) -> list[str]:
    with pytest.raises(RangeError) as info:
        parse(**params)
    return info.value.errors


def test_spans_back_from_now() -> None:
    assert parse() == TimeRange(NOW - timedelta(days=30), NOW, "30d")
    assert parse(range="12h") == TimeRange(NOW - timedelta(hours=12), NOW, "12h")
    assert parse(range="3w").start == NOW - timedelta(weeks=3)
    assert parse(range="45d").params() == {"range": "45d"}
    assert parse(range="1d").label.startswith("last 1 day (")
    assert parse(range="7d").label == "last 7 days (2026-11-11 14:30 – 2026-11-18 14:30 UTC)"


def test_any_from_and_to() -> None:
    tr = parse(**{"from": "2026-09-01", "to": "2026-09-14"})
    # a "to" date includes its day, as a date picker's "to" reads
    assert (tr.start, tr.end) == (
        datetime(2026, 9, 1, tzinfo=UTC),
        datetime(2026, 9, 15, tzinfo=UTC),
    )
    assert tr.relative is None and tr.key == "custom"
    assert tr.params() == {"from": "2026-09-01", "to": "2026-09-14"}  # round trip
    assert date_inputs(tr) == ("2026-09-01", "2026-09-14")
    assert tr.label == "2026-09-01 to 2026-09-14 (whole days, UTC)"
    assert t_label(**{"from": "2026-09-01", "to": "2026-09-01"}) == "2026-09-01 (whole days, UTC)"
    t = parse(**{"from": "2026-09-01T06:00", "to": "2026-09-01T18:00+02:00"})
    assert (t.start.hour, t.end.hour) == (6, 16)  # an offset is converted to UTC
    assert t.params() == {"from": "2026-09-01T06:00", "to": "2026-09-01T16:00"}
    only_from = parse(**{"from": "2026-11-01"})
    assert only_from.end == NOW and only_from.note == "to now"
    only_to = parse(to="2026-10-31")
    assert only_to.start == datetime(2026, 10, 2, tzinfo=UTC)
    assert only_to.label == "2026-10-02 to 2026-10-31 (whole days, UTC), 30 days before 'to'"


def test_each_bad_value_is_named() -> None:
    assert errors(range="5y") == [
        "range='5y' is not a span back from now: a number and h, d, w or m "
        "(e.g. 24h, 7d, 30d, 90d); for dates use from= and to=."
    ]
    assert errors(range="0d")[0].startswith("range='0d' is not a span")
    assert errors(range="60w") == [
        "range='60w' is longer than the 400 days allowed (max_range_days)."
    ]
    assert errors(range="7d", **{"from": "2026-01-01"}) == [
        "Give either range= or from=/to=, not both."
    ]
    assert errors(**{"from": "2026-13-01", "to": "yesterday"}) == [
        "from='2026-13-01' is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM, UTC).",
        "to='yesterday' is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM, UTC).",
    ]
    assert errors(**{"from": "2026-10-05", "to": "2026-10-01"}) == [
        "from (2026-10-05) must be before to (2026-10-02)."
    ]
    (message,) = errors(**{"from": "2024-01-01", "to": "2026-01-01"})
    assert "from" in message and "400" in message  # over max_range_days
    (message,) = errors(**{"from": "1900-01-01", "to": "1900-02-01"})
    assert "outside the supported range" in message


def test_read_models_refuse_an_unknown_span_instead_of_the_default() -> None:
    # the former parse_range turned any unknown value into 30 days, silently
    with pytest.raises(RangeError):
        queries.parse_range("1y", NOW)
    assert queries.parse_range("12h", NOW) == ("12h", NOW - timedelta(hours=12), NOW)
    tr = parse(**{"from": "2026-09-01", "to": "2026-09-14"})
    assert queries.parse_range(tr, NOW) == ("custom", tr.start, tr.end)
