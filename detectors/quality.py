"""Data-quality checks, computed on mergeable column profiles where possible.

Every check returns a frozen :class:`QualityResult` (or a subclass with typed extras) holding the
measured ``value``, the ``threshold`` it was compared with and ``breached`` (``None`` when there
was no data to judge), so the runner can turn it into a metric-result row directly.

=====================  =============================================  ================  =========
check                  value                                          breached when     default
=====================  =============================================  ================  =========
``missing_rate``       missing / (count + missing)                    value > threshold 0.10
``missing_change``     current − reference missing rate               value > threshold 0.05
``out_of_range``       share of values outside [ref min, ref max]     value > threshold 0.01
``new_categories``     share of values outside the reference          value > threshold 0.01
                       vocabulary, minus the reference's own share
``constant``           1.0 if the column holds a single value         value > threshold 0.5
                       (and the reference did not), else 0.0
``type_errors``        quarantined / (quarantined + accepted) rows    value > threshold 0.0
``schema``             number of columns added, removed or retyped    value > threshold 0.0
=====================  =============================================  ================  =========
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.errors import InvalidParameterError
from detectors.profiles import ColumnProfile

__all__ = [
    "QUALITY_CHECKS",
    "NewCategoriesResult",
    "QualityResult",
    "SchemaChangeResult",
    "constant_column",
    "missing_rate",
    "missing_rate_change",
    "new_categories",
    "out_of_range",
    "schema_changes",
    "type_errors",
]

QUALITY_CHECKS: tuple[str, ...] = (
    "missing_rate",
    "missing_change",
    "out_of_range",
    "new_categories",
    "constant",
    "type_errors",
    "schema",
)


@dataclass(frozen=True)
class QualityResult:
    """Outcome of one data-quality check.

    Attributes
    ----------
    check
        One of :data:`QUALITY_CHECKS`.
    column
        The column checked; ``None`` for table-level checks (type errors, schema).
    value
        The measured value; ``None`` when there was no data.
    threshold
        The value above which the check is breached.
    breached
        ``value > threshold``; ``None`` when there was no data (``no_data``).
    n
        Rows the value is computed on.
    details
        Extra numbers that explain the value.
    """

    check: str
    column: str | None
    value: float | None
    threshold: float
    breached: bool | None
    n: int
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def no_data(self) -> bool:
        return self.breached is None

    @property
    def status(self) -> str:
        """``"no_data"``, ``"alert"`` or ``"ok"`` (a runner may map breaches to ``warn``)."""
        if self.breached is None:
            return "no_data"
        return "alert" if self.breached else "ok"


@dataclass(frozen=True)
class NewCategoriesResult(QualityResult):
    """:class:`QualityResult` plus the names and counts of the new categories (most frequent
    first; exact for one profile, lower bounds after merging profiles)."""

    new_categories: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class SchemaChangeResult(QualityResult):
    """:class:`QualityResult` plus which columns were added, removed or changed kind."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[tuple[str, str, str], ...] = ()  # (column, reference kind, current kind)


def _check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 1.0:
        raise InvalidParameterError("threshold", threshold, "a share in [0, 1]")
    return float(threshold)


def _result(
    check: str,
    column: str | None,
    value: float | None,
    threshold: float,
    n: int,
    **details: Any,
) -> QualityResult:
    breached = None if value is None else value > threshold
    return QualityResult(check, column, value, threshold, breached, n, details)


def _same_bins(reference: ColumnProfile, current: ColumnProfile) -> None:
    if reference.bins != current.bins:
        raise InvalidParameterError(
            "current.bins", current.bins.key, f"the reference's bins (key {reference.bins.key})"
        )


def _rate(profile: ColumnProfile) -> float | None:
    rows = profile.count + profile.missing
    return profile.missing / rows if rows else None


def missing_rate(
    current: ColumnProfile, *, column: str | None = None, threshold: float = 0.10
) -> QualityResult:
    """Share of missing values (None / NaN) in a window.

    Parameters
    ----------
    current
        The window's profile.
    column
        Column name, carried into the result.
    threshold
        Highest acceptable share of missing values.

    Returns
    -------
    QualityResult
        ``value`` = missing / rows; ``no_data`` on an empty window.
    """
    t = _check_threshold(threshold)
    rows = current.count + current.missing
    return _result("missing_rate", column, _rate(current), t, rows, missing=current.missing)


def missing_rate_change(
    reference: ColumnProfile,
    current: ColumnProfile,
    *,
    column: str | None = None,
    threshold: float = 0.05,
) -> QualityResult:
    """Increase of the missing-value share over the reference's.

    Parameters
    ----------
    reference, current
        Profiles of the reference and the window (any bins; only counts are used).
    column
        Column name, carried into the result.
    threshold
        Highest acceptable increase, in absolute share (0.05 = five percentage points). A
        decrease never breaches.

    Returns
    -------
    QualityResult
        ``value`` = current rate − reference rate; ``details`` holds both rates.
    """
    t = _check_threshold(threshold)
    ref, cur = _rate(reference), _rate(current)
    value = None if ref is None or cur is None else cur - ref
    rows = current.count + current.missing
    return _result("missing_change", column, value, t, rows, reference_rate=ref, current_rate=cur)


def out_of_range(
    reference: ColumnProfile,
    current: ColumnProfile,
    *,
    column: str | None = None,
    threshold: float = 0.01,
) -> QualityResult:
    """Share of a numeric window's values outside the reference's [min, max].

    The open-ended last bucket ``(e_k, +inf)`` holds exactly the values above the reference
    maximum. The first bucket ``(-inf, e_0]`` holds values *at or below* the reference minimum,
    so values equal to the minimum (in range) cannot be told apart from lower ones by counts
    alone. The count below is therefore:

    - exactly 0 when the window's finite minimum is ≥ ``e_0`` and it holds no ±inf;
    - otherwise the first bucket minus the rows expected *at* the minimum (the reference's own
      first-bucket share times the window's count), kept within [1, first bucket] when the
      window's minimum is below ``e_0``. For continuous columns the reference's own share is
      1/N, so this is exact up to about one row.

    Parameters
    ----------
    reference, current
        Numeric profiles on the same bins.
    column
        Column name, carried into the result.
    threshold
        Highest acceptable share outside the range.

    Returns
    -------
    QualityResult
        ``details``: ``above`` (exact count), ``below`` (as above), ``below_exact`` (bool).
    """
    t = _check_threshold(threshold)
    if current.kind != "numeric":
        raise InvalidParameterError("current.kind", current.kind, "'numeric' for out_of_range")
    _same_bins(reference, current)
    if not current.bins.edges or current.count == 0 or reference.count == 0:
        return _result("out_of_range", column, None, t, current.count)
    e0 = current.bins.edges[0]
    above = int(current.counts[-1])
    first = int(current.counts[0])
    has_inf = current.n_finite != current.count
    below_exact = not has_inf and (current.min is None or current.min >= e0)
    if below_exact:
        below = 0
    else:
        at_min = reference.counts[0] / reference.count * current.count
        floor = 1 if current.min is not None and current.min < e0 else 0
        below = int(min(first, max(floor, round(first - at_min))))
    value = (above + below) / current.count
    return _result(
        "out_of_range",
        column,
        value,
        t,
        current.count,
        above=above,
        below=below,
        below_exact=below_exact,
        reference_min=e0,
        reference_max=current.bins.edges[-1],
    )


def new_categories(
    reference: ColumnProfile,
    current: ColumnProfile,
    *,
    column: str | None = None,
    threshold: float = 0.01,
) -> NewCategoriesResult:
    """Share (and names) of a categorical window's values never seen in the reference.

    Values outside the reference vocabulary are counted in the profile's "other" bucket. When
    the vocabulary was capped the reference itself has "other" values; their share is
    subtracted so that only the *excess* counts as new.

    Parameters
    ----------
    reference, current
        Categorical profiles on the same bins.
    column
        Column name, carried into the result.
    threshold
        Highest acceptable excess share of unseen values.

    Returns
    -------
    NewCategoriesResult
        ``value`` = current "other" share − reference "other" share (≥ 0);
        ``new_categories`` = the most frequent unseen values with counts.
    """
    t = _check_threshold(threshold)
    if current.kind != "categorical":
        raise InvalidParameterError(
            "current.kind", current.kind, "'categorical' for new_categories"
        )
    _same_bins(reference, current)
    n = current.count
    if n == 0 or reference.count == 0:
        return NewCategoriesResult("new_categories", column, None, t, None, n)
    share = float(current.counts[-1] / n)
    ref_share = float(reference.counts[-1] / reference.count)
    value = max(0.0, share - ref_share)
    return NewCategoriesResult(
        "new_categories",
        column,
        value,
        t,
        value > t,
        n,
        {"share": share, "reference_share": ref_share, "count": int(current.counts[-1])},
        new_categories=current.unseen,
    )


def _is_constant(profile: ColumnProfile) -> bool | None:
    if profile.count == 0:
        return None
    if profile.kind == "numeric":
        # ±inf are kept out of min/max; a column with them is not constant
        return profile.n_finite == profile.count and profile.min == profile.max
    non_empty = int((profile.counts > 0).sum())
    if non_empty != 1:
        return False
    if profile.counts[-1] == 0:
        return True  # one vocabulary category
    # everything is "other": constant only if a single unseen name accounts for all of it
    return len(profile.unseen) == 1 and profile.unseen[0][1] == profile.count


def constant_column(
    current: ColumnProfile,
    reference: ColumnProfile | None = None,
    *,
    column: str | None = None,
) -> QualityResult:
    """Whether a column holds a single value in the window (a stuck feature).

    Parameters
    ----------
    current
        The window's profile.
    reference
        When given and itself constant, a constant window is expected and does not breach.
    column
        Column name, carried into the result.

    Returns
    -------
    QualityResult
        ``value`` 1.0 (constant, and the reference was not) or 0.0; threshold 0.5.
    """
    const = _is_constant(current)
    if const is None:
        return _result("constant", column, None, 0.5, 0)
    ref_const = _is_constant(reference) if reference is not None else None
    value = 1.0 if const and not ref_const else 0.0
    return _result(
        "constant", column, value, 0.5, current.count, constant=const, reference_constant=ref_const
    )


def type_errors(n_quarantined: int, n_accepted: int, *, threshold: float = 0.0) -> QualityResult:
    """Share of rows rejected at ingest (wrong types, unparsable values) in a window.

    Parameters
    ----------
    n_quarantined
        Rows quarantined in the window (counted by the caller from the quarantine table).
    n_accepted
        Rows accepted in the window.
    threshold
        Highest acceptable share of quarantined rows.

    Returns
    -------
    QualityResult
        ``value`` = quarantined / (quarantined + accepted); ``no_data`` without any rows.
    """
    if n_quarantined < 0 or n_accepted < 0:
        raise InvalidParameterError(
            "row counts", (n_quarantined, n_accepted), "non-negative integers"
        )
    t = _check_threshold(threshold)
    total = n_quarantined + n_accepted
    value = n_quarantined / total if total else None
    return _result("type_errors", None, value, t, total, quarantined=n_quarantined)


def schema_changes(
    reference: Mapping[str, str], current: Mapping[str, str], *, threshold: float = 0.0
) -> SchemaChangeResult:
    """Columns added, removed or changed in kind between two schemas.

    Parameters
    ----------
    reference, current
        Column name → kind (e.g. ``"numeric"``, ``"categorical"``, ``"boolean"``, ``"text"``).
    threshold
        Number of changes tolerated (default: none).

    Returns
    -------
    SchemaChangeResult
        ``value`` = number of changed columns; ``added``/``removed`` sorted by name,
        ``changed`` as ``(column, reference kind, current kind)``.
    """
    if threshold < 0:
        raise InvalidParameterError("threshold", threshold, "a number >= 0")
    added = tuple(sorted(set(current) - set(reference)))
    removed = tuple(sorted(set(reference) - set(current)))
    changed = tuple(
        (name, reference[name], current[name])
        for name in sorted(set(reference) & set(current))
        if reference[name] != current[name]
    )
    value = float(len(added) + len(removed) + len(changed))
    return SchemaChangeResult(
        "schema",
        None,
        value,
        float(threshold),
        value > threshold,
        len(current),
        {},
        added=added,
        removed=removed,
        changed=changed,
    )
