"""Alibi Detect behind the optional extra ``driftwatch[alibi]`` — the only module importing it.

Alibi Detect is licensed BSL 1.1 (since 2024) and pins numpy < 2, so the core of Driftwatch must
not need it. It is imported lazily, inside the functions here; when it is missing, the first use
raises :class:`~detectors.errors.MissingOptionalDependency` naming
``pip install 'driftwatch[alibi]'``.

Offered:

- :func:`tabular_drift` — ``TabularDrift``: a two-sample Kolmogorov-Smirnov test per numeric
  column and a chi-squared contingency test per categorical column, combined with a Bonferroni
  (or FDR) correction.
- :class:`OnlineDrift` — ``CVMDriftOnline`` (Cramér-von Mises, continuous data) and
  ``FETDriftOnline`` (Fisher exact test, 0/1 data): sequential detectors whose thresholds are
  simulated at construction so that, without drift, the expected run time until a false alarm
  is ``ert`` observations. Configuration cost grows with ``n_bootstraps`` and the largest window
  (CVM simulates ``n_bootstraps`` streams of ``len(reference) + 2·max(window_sizes)`` points);
  the first CVM construction in a process also compiles alibi's numba kernels (~20 s, cached
  on disk afterwards).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors._tabular import Table, TableEncoder
from detectors.errors import InvalidParameterError, MissingOptionalDependency
from detectors.result import DetectorResult

__all__ = ["OnlineDrift", "OnlineRun", "OnlineStep", "TabularDriftResult", "tabular_drift"]


def _alibi_cd() -> ModuleType:
    """``alibi_detect.cd``, or :class:`MissingOptionalDependency` naming the install command."""
    try:
        import alibi_detect.cd as cd
    except ImportError as exc:  # also a None entry in sys.modules, and numpy/ABI mismatches
        raise MissingOptionalDependency("alibi-detect", "alibi") from exc
    module: ModuleType = cd  # alibi-detect has no type information: Any to mypy
    return module


@dataclass(frozen=True)
class TabularDriftResult:
    """Per-column tests of ``TabularDrift`` and their corrected overall verdict.

    Attributes
    ----------
    overall
        ``DetectorResult`` with ``method="alibi_tabular"``: ``statistic`` = the smallest
        per-column p-value, ``threshold`` = the corrected level it was compared with (Bonferroni:
        ``p_val / n_columns``), ``drifted`` = alibi's verdict.
    p_values, statistics
        Column name → p-value and KS distance (numeric) or chi-squared statistic (categorical).
    tests
        Column name → ``"ks"`` or ``"chi2"``.
    """

    overall: DetectorResult
    p_values: dict[str, float]
    statistics: dict[str, float]
    tests: dict[str, str]


def tabular_drift(
    reference: Table,
    current: Table,
    *,
    p_val: float = 0.05,
    correction: str = "bonferroni",
    categorical: Collection[str] = (),
) -> TabularDriftResult:
    """Alibi Detect's ``TabularDrift`` on two tables.

    Parameters
    ----------
    reference, current
        Column name → values; string columns (and those named in ``categorical``) are tested
        with chi-squared on their category counts, the others with two-sided KS.
    p_val
        Family-wise significance level.
    correction
        ``"bonferroni"`` or ``"fdr"``.
    categorical
        Numeric columns to treat as categorical.

    Returns
    -------
    TabularDriftResult

    Raises
    ------
    MissingOptionalDependency
        When alibi-detect is not installed.
    """
    if not 0 < p_val < 1:
        raise InvalidParameterError("p_val", p_val, "a number in (0, 1)")
    if correction not in ("bonferroni", "fdr"):
        raise InvalidParameterError("correction", correction, "'bonferroni' or 'fdr'")
    cd = _alibi_cd()
    # category codes over both sides: alibi counts categories present in either
    encoder = TableEncoder(categorical).fit([reference, current])
    x_ref = encoder.transform(reference)
    x_cur = encoder.transform(current)
    cat_idx = [j for j, is_cat in enumerate(encoder.categorical_mask) if is_cat]
    for x in (x_ref, x_cur):
        # missing categories become their own code: chi-squared needs finite codes
        for j in cat_idx:
            x[:, j] = np.nan_to_num(x[:, j], nan=-1.0)
    n_ref, n_cur = x_ref.shape[0], x_cur.shape[0]
    with warnings.catch_warnings():
        # alibi warns when no column is categorical ("all features are numerical"): intended
        warnings.simplefilter("ignore", UserWarning)
        detector = cd.TabularDrift(
            x_ref,
            p_val=p_val,
            categories_per_feature=dict.fromkeys(cat_idx) or None,
            correction=correction,
        )
        out = detector.predict(x_cur, return_p_val=True, return_distance=True)["data"]
    p_values = np.asarray(out["p_val"], dtype=np.float64)
    stats = np.asarray(out["distance"], dtype=np.float64)
    names = encoder.columns
    overall = DetectorResult(
        method="alibi_tabular",
        statistic=float(p_values.min()),
        p_value=float(p_values.min()),
        threshold=float(np.max(out["threshold"])),
        drifted=bool(out["is_drift"]),
        n_reference=n_ref,
        n_current=n_cur,
        details={"correction": correction, "p_val": p_val},
    )
    return TabularDriftResult(
        overall=overall,
        p_values={n: float(p) for n, p in zip(names, p_values, strict=True)},
        statistics={n: float(s) for n, s in zip(names, stats, strict=True)},
        tests={n: "chi2" if j in cat_idx else "ks" for j, n in enumerate(names)},
    )


@dataclass(frozen=True)
class OnlineStep:
    """One observation fed to an :class:`OnlineDrift` detector.

    ``t`` counts observations since the start (or the last reset); ``test_stat`` is the largest
    statistic over windows and features (NaN until the smallest window is full).
    """

    t: int
    drifted: bool
    test_stat: float
    threshold: float


@dataclass(frozen=True)
class OnlineRun:
    """Outcome of feeding a stream: ``detected_at`` is the 1-based position of the first
    detection (``None`` if none), ``n_seen`` how many observations were consumed."""

    method: str
    detected_at: int | None
    n_seen: int
    ert: float
    window_sizes: tuple[int, ...]

    @property
    def drifted(self) -> bool:
        return self.detected_at is not None


_ONLINE = {"cvm": "CVMDriftOnline", "fet": "FETDriftOnline"}


class OnlineDrift:
    """A sequential drift detector from Alibi Detect, configured by expected run time.

    Parameters
    ----------
    method
        ``"cvm"`` (continuous data) or ``"fet"`` (0/1 data; detects an *increase* of the mean by
        default, alibi's ``alternative="greater"``).
    reference
        Reference sample, shape ``(n,)`` or ``(n, d)``.
    ert
        Expected run time (observations) until a false alarm without drift, counted from when
        the smallest window is full.
    window_sizes
        Sliding test windows: small ones react fast to large shifts, large ones catch small
        shifts.
    n_bootstraps
        Simulated streams used to set the thresholds; should be well above ``ert``.
    seed
        Seed of the threshold simulation (numpy's global generator is seeded and restored).
    **options
        Passed to the alibi detector (e.g. ``alternative``, ``lam`` for FET; ``batch_size`` for
        CVM).

    Raises
    ------
    MissingOptionalDependency
        When alibi-detect is not installed.
    """

    def __init__(
        self,
        method: str,
        reference: ArrayLike,
        *,
        ert: float,
        window_sizes: Sequence[int],
        n_bootstraps: int | None = None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        if method not in _ONLINE:
            raise InvalidParameterError("method", method, "'cvm' or 'fet'")
        if not ert > 1:
            raise InvalidParameterError("ert", ert, "a number > 1")
        sizes = tuple(window_sizes)
        if not sizes or any(int(w) != w or w < 1 for w in sizes):
            raise InvalidParameterError("window_sizes", sizes, "one or more integers >= 1")
        x_ref = np.asarray(reference, dtype=np.float64)
        if x_ref.ndim == 1:
            x_ref = x_ref[:, None]
        if x_ref.ndim != 2 or x_ref.shape[0] < max(sizes) or np.isnan(x_ref).any():
            raise InvalidParameterError(
                "reference", x_ref.shape, f"(n >= {max(sizes)}, d) numbers without NaN"
            )
        if method == "fet" and not np.isin(x_ref, (0.0, 1.0)).all():
            raise InvalidParameterError("reference", "non-binary values", "0/1 values for 'fet'")
        n_boot = int(n_bootstraps) if n_bootstraps is not None else max(1_000, int(10 * ert))
        if n_boot < 100:
            raise InvalidParameterError("n_bootstraps", n_boot, "an integer >= 100")
        cd = _alibi_cd()
        cls = getattr(cd, _ONLINE[method])
        self.method = method
        self.ert = float(ert)
        self.window_sizes = tuple(int(w) for w in sizes)
        # alibi simulates thresholds with numpy's global generator: seed it, then restore it so
        # callers' random streams are untouched
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            self._detector = cls(
                x_ref,
                ert=self.ert,
                window_sizes=list(self.window_sizes),
                n_bootstraps=n_boot,
                verbose=False,
                **options,
            )
        finally:
            np.random.set_state(state)
        self._n_features = x_ref.shape[1]

    @property
    def t(self) -> int:
        """Observations seen since construction or the last :meth:`reset`."""
        return int(self._detector.t)

    def reset(self) -> None:
        """Forget the stream (keep the reference and thresholds)."""
        self._detector.reset_state()

    def update(self, x: ArrayLike) -> OnlineStep:
        """Feed one observation (a scalar or a ``d``-vector).

        Returns
        -------
        OnlineStep
            Whether the detector fires at this observation.
        """
        x_t = np.asarray(x, dtype=np.float64).reshape(1, self._n_features)
        out = self._detector.predict(x_t, return_test_stat=True)["data"]
        stats: NDArray[np.float64] = np.asarray(out["test_stat"], dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN before windows fill
            stat = float(np.nanmax(stats)) if np.isfinite(stats).any() else float("nan")
        thr = np.asarray(out["threshold"], dtype=np.float64)
        return OnlineStep(
            t=int(out["time"]),
            drifted=bool(out["is_drift"]),
            test_stat=stat,
            threshold=float(np.nanmax(thr)) if np.isfinite(thr).any() else float("nan"),
        )

    def run(self, stream: Iterable[ArrayLike], *, stop_at_detection: bool = True) -> OnlineRun:
        """Feed a stream until the first detection (or its end).

        Parameters
        ----------
        stream
            Observations, in order.
        stop_at_detection
            Stop consuming at the first detection (default).

        Returns
        -------
        OnlineRun
            ``detected_at`` is the 1-based position in ``stream`` of the first detection.
        """
        detected_at = None
        seen = 0
        for x in stream:
            seen += 1
            step = self.update(x)
            if step.drifted and detected_at is None:
                detected_at = seen
                if stop_at_detection:
                    break
        return OnlineRun(self.method, detected_at, seen, self.ert, self.window_sizes)
