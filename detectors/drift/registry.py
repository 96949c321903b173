"""The drift-method registry: stable string keys → descriptor + implementation.

A method registers itself with :func:`register`; config files, the database and the dashboard
store its ``name``. :func:`get_method` resolves a name and fails with every valid name listed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy.typing as npt

from detectors.errors import UnknownNameError
from detectors.profiles import ColumnKind, ColumnProfile

__all__ = [
    "DriftMethod",
    "Score",
    "available_methods",
    "get_method",
    "register",
]

ScoreKind = Literal["p_value", "distance"]


@dataclass(frozen=True)
class Score:
    """What a method implementation returns; the runner turns it into a ``DetectorResult``."""

    statistic: float
    p_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


ProfileFn = Callable[[ColumnProfile, ColumnProfile], Score]
SampleFn = Callable[[npt.NDArray[Any], npt.NDArray[Any]], Score]
# Vectorised null statistics: (reference profile, reference counts (B, K), current counts (B, K))
# -> (B,) statistics, for methods whose statistic is a function of the bucket counts.
CountsNullFn = Callable[[ColumnProfile, npt.NDArray[Any], npt.NDArray[Any]], npt.NDArray[Any]]


@dataclass(frozen=True)
class DriftMethod:
    """Descriptor of one registered drift method.

    Attributes
    ----------
    name
        Stable key (stored in configs and the database).
    display_name
        Human name for the dashboard.
    kinds
        Column kinds it accepts.
    score
        ``"p_value"``: a hypothesis test, drift when ``p < threshold`` (threshold = α);
        ``"distance"``: drift when ``statistic > threshold``.
    default_threshold
        α for tests; for distances the fixed threshold used when calibration is switched off.
    calibrated
        Distances only: without an explicit threshold, the threshold is the (1-α) quantile of the
        statistic under no drift at the window's sample size (see ``calibration``).
    symmetric
        Swapping reference and current gives the same statistic (on samples sharing the same
        categories); checked by the contract test.
    on_profiles / on_samples
        Implementations; a method without ``on_samples`` runs on samples by profiling them on
        bins taken from the reference sample.
    null_from_counts
        For calibrated methods on profiles: the statistic computed from resampled counts.
    min_size
        Fewer non-missing values than this on either side gives ``no_data``.
    null_exponent
        Under no drift and large samples the statistic shrinks as ``n_eff ** -null_exponent``
        (1/2 for distances linear in the share differences or their root, 1 for PSI and KL,
        which are quadratic); calibration uses it to rescale one large-sample null.
    """

    name: str
    display_name: str
    kinds: frozenset[ColumnKind]
    score: ScoreKind
    default_threshold: float
    description: str
    on_profiles: ProfileFn | None = None
    on_samples: SampleFn | None = None
    null_from_counts: CountsNullFn | None = None
    calibrated: bool = False
    symmetric: bool = False
    min_size: int = 1
    binary_only: bool = False
    null_exponent: float = 0.5

    @property
    def is_test(self) -> bool:
        """``True`` for hypothesis tests (``p_value`` set)."""
        return self.score == "p_value"

    @property
    def works_on_profiles(self) -> bool:
        """``True`` when it can run on :class:`ColumnProfile` pairs."""
        return self.on_profiles is not None

    @property
    def works_on_samples(self) -> bool:
        """Every method runs on samples (natively or through profiles of the samples)."""
        return True

    @property
    def exact_on_samples(self) -> bool:
        """``True`` when samples are compared directly, not through binned profiles."""
        return self.on_samples is not None


_REGISTRY: dict[str, DriftMethod] = {}


def register(
    name: str,
    *,
    display_name: str,
    kinds: tuple[ColumnKind, ...],
    score: ScoreKind,
    default_threshold: float,
    description: str,
    calibrated: bool = False,
    symmetric: bool = False,
    min_size: int = 1,
    binary_only: bool = False,
    null_exponent: float = 0.5,
    samples: bool = False,
    null_from_counts: CountsNullFn | None = None,
) -> Callable[[Callable[..., Score]], Callable[..., Score]]:
    """Decorator registering a profile implementation (``samples=True``: a sample one).

    Registering the same name twice, once with ``samples=False`` and once with ``samples=True``,
    sets both implementations of one method; the descriptor fields must then agree.
    """

    def decorate(fn: Callable[..., Score]) -> Callable[..., Score]:
        existing = _REGISTRY.get(name)
        base = DriftMethod(
            name=name,
            display_name=display_name,
            kinds=frozenset(kinds),
            score=score,
            default_threshold=default_threshold,
            description=description,
            calibrated=calibrated,
            symmetric=symmetric,
            min_size=min_size,
            binary_only=binary_only,
            null_from_counts=null_from_counts or (existing.null_from_counts if existing else None),
            null_exponent=null_exponent,
            on_profiles=existing.on_profiles if existing else None,
            on_samples=existing.on_samples if existing else None,
        )
        if existing is not None:
            for attr in ("display_name", "kinds", "score", "default_threshold", "calibrated"):
                if getattr(existing, attr) != getattr(base, attr):
                    raise ValueError(
                        f"drift method {name!r} registered twice with different {attr}"
                    )
        base = _replace(base, **{"on_samples" if samples else "on_profiles": fn})
        _REGISTRY[name] = base
        return fn

    return decorate


def _replace(method: DriftMethod, **changes: Any) -> DriftMethod:
    from dataclasses import replace

    return replace(method, **changes)


def get_method(name: str) -> DriftMethod:
    """The registered method called ``name``.

    Raises
    ------
    UnknownNameError
        With the sorted list of valid names.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownNameError("drift method", name, _REGISTRY) from None


def available_methods(kind: ColumnKind | None = None) -> Mapping[str, DriftMethod]:
    """All registered methods (for ``kind``, those accepting that column kind), by name."""
    return {k: m for k, m in sorted(_REGISTRY.items()) if kind is None or kind in m.kinds}
