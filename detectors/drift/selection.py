"""Default drift method per column.

Like Evidently's ``get_default_stattest``, but decided from the *reference* only (so a column
keeps its method from window to window) and with the distances null-calibrated:

====================  ==========================  ===================  ===========================
column kind           distinct reference values   reference rows       default method
====================  ==========================  ===================  ===========================
categorical           2 or fewer                  <= 1000              ``fisher_exact``
categorical           more than 2                 <= 1000              ``chi2``
categorical           any                         > 1000               ``jensen_shannon``
numeric               5 or fewer                  <= 1000              ``chi2``
numeric               5 or fewer                  > 1000               ``jensen_shannon``
numeric               more than 5                 <= 1000              ``ks``
numeric               more than 5                 > 1000               ``wasserstein``
====================  ==========================  ===================  ===========================

Distinct values are the vocabulary size (categorical) or the number of bin edges (numeric; equal
to the number of distinct values when there are fewer than the bins). Evidently uses a z-test for
binary columns on small references; Fisher's exact test answers the same question without a
normal approximation.
"""

from __future__ import annotations

from detectors.profiles import ColumnKind, ColumnProfile

__all__ = ["SMALL_REFERENCE", "choose_method", "default_method_for_profile"]

SMALL_REFERENCE = 1000
FEW_NUMERIC_VALUES = 5


def choose_method(kind: ColumnKind, n_reference: int, n_unique: int) -> str:
    """The default method name for a column (see the module table).

    Parameters
    ----------
    kind
        ``"numeric"`` or ``"categorical"``.
    n_reference
        Non-missing reference values.
    n_unique
        Distinct reference values (vocabulary size / number of numeric bin edges).
    """
    small = n_reference <= SMALL_REFERENCE
    if kind == "categorical":
        if small:
            return "fisher_exact" if n_unique <= 2 else "chi2"
        return "jensen_shannon"
    if n_unique <= FEW_NUMERIC_VALUES:
        return "chi2" if small else "jensen_shannon"
    return "ks" if small else "wasserstein"


def default_method_for_profile(reference: ColumnProfile) -> str:
    """:func:`choose_method` for a reference profile."""
    n_unique = len(
        reference.bins.edges if reference.kind == "numeric" else reference.bins.categories
    )
    return choose_method(reference.kind, reference.count, n_unique)
