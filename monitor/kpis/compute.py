"""KPI computation: definitions → one pushed-down query per source → checks → metric results.

A run over ``[start, end)`` also reads the windows its checks look back on (for example eight
weeks of the same weekday), so every window's checks see the same history whether it is
computed by the scheduler, a catch-up or a backfill: results are a function of the logs only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.errors import DetectorError
from detectors.estimation import BinaryCBPE, ExpectedConfusion
from monitor import windows
from monitor.kpis.checks import CheckOutcome, history_needed, run_checks_series, worst
from monitor.kpis.definition import KpiDefinition
from monitor.kpis.formula import BusinessValueFormula, EventFormula, LogFormula
from monitor.ports import KpiSource
from storage.kpi_sql import Cells, EventMeasure, LogMeasure, window_start
from storage.types import MetricResult, ModelSchema

__all__ = ["CHECK_KIND", "KpiComputer", "align", "window_delta", "windows_between"]

# A KPI's own row (metric = the KPI's name) is ``kind: kpi``; each check's row beside it is
# ``kind: kpi_check``, so a rule can watch the KPI once (its status is the worst of its checks)
# instead of opening one alert per check row (alerts.defaults: ``kpi-breach``).
CHECK_KIND = "kpi_check"


def window_delta(window: str) -> timedelta:
    """The usual width of ``window`` (a month counts 30 days; step with ``windows``)."""
    return windows.window(window).nominal


def align(ts: datetime, window: str) -> datetime:
    """The start of the window holding ``ts`` (``monitor.windows``)."""
    return windows.window(window).floor(ts)


def windows_between(start: datetime, end: datetime, window: str) -> list[datetime]:
    """Starts of the whole windows in ``[start, end)``, ``start`` aligned down."""
    return windows.window(window).whole(start, end)


@dataclass(frozen=True)
class _Series:
    """One KPI × tenant over the lookback + requested windows."""

    value: npt.NDArray[Any]  # nan: no value or too few events
    support: npt.NDArray[Any]
    extra: dict[int, dict[str, Any]]


class KpiComputer:
    """Computes KPI results; stateless apart from a cache of fitted CBPE estimators.

    Parameters
    ----------
    queries
        The pushed-down aggregates.
    schema_of
        Model name → its schema (None when unknown).
    """

    def __init__(self, queries: KpiSource, schema_of: Callable[[str], ModelSchema | None]) -> None:
        self.queries = queries
        self.schema_of = schema_of
        self._cbpe: dict[tuple[str, str, int], BinaryCBPE | None] = {}

    # ------------------------------------------------------------------ public
    def compute(
        self,
        definitions: Sequence[KpiDefinition],
        start: datetime,
        end: datetime,
        *,
        tenants: Sequence[str] | None = None,
        computed_at: datetime | None = None,
    ) -> list[MetricResult]:
        """Results of every KPI, tenant and whole window in ``[start, end)``.

        Parameters
        ----------
        definitions
            The KPIs (disabled ones are skipped).
        start, end
            The range; ``start`` is aligned down to each KPI's window, partial windows at the
            end are left out.
        tenants
            Restrict to these tenants (a KPI's own tenant list still applies).
        computed_at
            Stamped on the results (now by default).

        Returns
        -------
        list of MetricResult
            Per KPI × tenant × window: the KPI row (``metric`` = KPI name) and one row per
            check (``metric`` = check name).
        """
        now = computed_at or datetime.now(UTC)
        out: list[MetricResult] = []
        by_window: dict[str, list[KpiDefinition]] = {}
        for d in definitions:
            if d.enabled:
                by_window.setdefault(d.window, []).append(d)
        for window, defs in by_window.items():
            out.extend(self._compute_window(window, defs, start, end, tenants, now))
        return out

    # ------------------------------------------------------------------ internals
    def _compute_window(
        self,
        window: str,
        defs: list[KpiDefinition],
        start: datetime,
        end: datetime,
        tenants: Sequence[str] | None,
        now: datetime,
    ) -> list[MetricResult]:
        targets = windows_between(start, end, window)
        if not targets:
            return []
        lookback = max(
            (history_needed(c, window) for d in defs for c in d.effective_checks), default=0
        )
        kind = windows.window(window)
        grid = [kind.shift(targets[0], -k) for k in range(lookback, 0, -1)] + targets
        q_start, q_end = grid[0], kind.end(targets[-1])
        cells = self._cells(window, defs, q_start, q_end, tenants)
        pos = {w: i for i, w in enumerate(grid)}
        first = lookback
        results: list[MetricResult] = []
        for d in defs:
            c = cells.get(d.name)
            series = self._series(d, c, pos, len(grid))
            wanted = d.tenant_list()
            names = set(series) if wanted is None else set(wanted)
            if tenants is not None:
                names &= set(tenants)
            for tenant in sorted(names):
                s = series.get(tenant) or _Series(
                    np.full(len(grid), np.nan), np.zeros(len(grid), dtype=np.int64), {}
                )
                results.extend(self._tenant_rows(d, tenant, grid, first, s, now))
        return results

    def _cells(
        self,
        window: str,
        defs: list[KpiDefinition],
        start: datetime,
        end: datetime,
        tenants: Sequence[str] | None,
    ) -> dict[str, Cells]:
        events: list[EventMeasure] = []
        logs: list[LogMeasure] = []
        bv: list[KpiDefinition] = []
        for d in defs:
            f = d.parsed
            if isinstance(f, EventFormula):
                events.append(EventMeasure(d.name, f.func, f.event, f.q, f.denominator))
                continue
            schema = self.schema_of(d.model or "")
            if schema is None:
                continue  # an unregistered model: every window is no_data
            logs.append(_log_measure(d.name, d.model or "", f, schema))
            if isinstance(f, BusinessValueFormula):
                bv.append(d)
        out = self.queries.event_measures(events, window, start, end, tenants)
        out.update(self.queries.log_measures(logs, window, start, end, tenants))
        for d in bv:
            out[d.name] = self._business_value(d, out[d.name], window, start, end, tenants)
        return out

    def _series(
        self, d: KpiDefinition, cells: Cells | None, pos: dict[datetime, int], size: int
    ) -> dict[str, _Series]:
        out: dict[str, _Series] = {}
        if cells is None:
            return out
        for k in range(len(cells)):
            i = pos.get(cells.window_start[k])
            if i is None:
                continue
            t = cells.tenant_id[k]
            s = out.get(t)
            if s is None:
                s = out[t] = _Series(np.full(size, np.nan), np.zeros(size, dtype=np.int64), {})
            s.support[i] = cells.support[k]
            v = float(cells.value[k])
            s.value[i] = v if cells.support[k] >= max(d.min_events, 1) else np.nan
            if cells.extra:
                s.extra[i] = {n: _json(a[k]) for n, a in cells.extra.items()}
        if isinstance(d.parsed, EventFormula) and d.parsed.func == "count" and d.min_events == 0:
            for s in out.values():  # a window without events counts zero, not "no value"
                s.value[np.isnan(s.value)] = 0.0
        return out

    def _tenant_rows(
        self,
        d: KpiDefinition,
        tenant: str,
        grid: list[datetime],
        first: int,
        s: _Series,
        now: datetime,
    ) -> list[MetricResult]:
        """The KPI row and one row per check for each window ``grid[first:]`` of one tenant.

        The KPI row's details hold what varies per window (support, check statuses, the
        message, attainment, business-value counts); the definition itself is the KPI's.
        """
        checks = d.effective_checks
        metrics = [c.metric for c in checks]
        values = s.value.tolist()
        supports = s.support.tolist()
        judged = [i for i in range(first, len(grid)) if math.isfinite(values[i])]
        slot = {i: k for k, i in enumerate(judged)}
        noise = _sampling_sd(d, s.value, s.support)
        outcomes = [
            run_checks_series(
                c,
                s.value,
                judged,
                direction=d.direction,
                window=d.window,
                target=d.target,
                noise=noise,
                unit=d.unit,
            )
            for c in checks
        ]
        fixed: dict[str, Any] = {
            "source": "kpi",
            "source_name": d.name,
            "kind": "kpi",
            "model": d.model,
            "tenant_id": tenant,
            "model_version": "*",
            "column": "",
            "computed_at": now,
        }
        name, target, extra = d.name, d.target, s.extra
        rows: list[MetricResult] = []
        append = rows.append
        kind = windows.window(d.window)
        for i in range(first, len(grid)):
            w = grid[i]
            at: dict[str, Any] = {"window_start": w, "window_end": kind.end(w), **fixed}
            check_at = {**at, "kind": CHECK_KIND}  # the checks' rows (see CHECK_KIND)
            base: dict[str, Any] = {"support": supports[i]}
            if i in extra:
                base.update(extra[i])
            k = slot.get(i)
            if k is None:
                why = f"{supports[i]} events, fewer than the minimum {d.min_events}"
                base["message"] = why
                append(
                    MetricResult(
                        metric=name,
                        value=None,
                        threshold=target,
                        status="no_data",
                        details=base,
                        **at,
                    )
                )
                for metric in metrics:
                    append(
                        MetricResult(
                            metric=metric,
                            value=None,
                            threshold=None,
                            status="no_data",
                            details={"message": why},
                            **check_at,
                        )
                    )
                continue
            outs = [_dated(o[k], grid, i) for o in outcomes]
            status = worst([o.status for o in outs])
            base["checks"] = dict(zip(metrics, (o.status for o in outs), strict=True))
            base["message"] = next(
                (o.message for o in outs if o.status in ("alert", "warn")),
                "within its usual range",
            )
            value = values[i]
            if target:
                base["attainment"] = _attainment(value, target, d.direction)
            shifted = next((o for o in outs if o.details.get("state") == "shifted"), None)
            if shifted is not None:
                # the level before a sustained change and when it began, for the summaries
                base["level_before"] = shifted.details["baseline"]
                base["changed_since"] = shifted.details["since"]
            append(
                MetricResult(
                    metric=name, value=value, threshold=target, status=status, details=base, **at
                )
            )
            for o in outs:
                det = {"message": o.message}
                det.update(o.details)
                append(
                    MetricResult(
                        metric=o.metric,
                        value=o.value,
                        threshold=o.threshold,
                        status=o.status,
                        details=det,
                        **check_at,
                    )
                )
        return rows

    # ------------------------------------------------------------------ business value
    def _fitted_cbpe(self, d: KpiDefinition, schema: ModelSchema) -> BinaryCBPE | None:
        model, ref = d.model or "", d.reference
        if not ref:
            return None
        refs = {n: v for n, v, _ in self.queries.list_references(model)}
        if ref not in refs:
            return None
        key = (model, ref, refs[ref])
        if key not in self._cbpe:
            table = self.queries.read_reference(model, ref)
            cols = set(table.column_names)
            score, pred = schema.scores[0], schema.prediction
            est: BinaryCBPE | None = None
            if {score, pred, "label"} <= cols:
                t = table.select([score, pred, "label"]).drop_null()
                try:
                    est = BinaryCBPE().fit(
                        t.column(score).to_numpy(),
                        t.column("label").to_numpy(),
                        t.column(pred).to_numpy(),
                    )
                except DetectorError:
                    est = None
            self._cbpe[key] = est
        return self._cbpe[key]

    def _business_value(
        self,
        d: KpiDefinition,
        cells: Cells,
        window: str,
        start: datetime,
        end: datetime,
        tenants: Sequence[str] | None,
    ) -> Cells:
        """Realized value of labelled rows plus, where a fitted CBPE exists, the expected
        value of the rows still waiting for labels (from the expected confusion matrix)."""
        f = d.parsed
        assert isinstance(f, BusinessValueFormula)
        schema = self.schema_of(d.model or "")
        assert schema is not None
        ex = cells.extra
        tp, fp, tn, fn = (ex[k].astype(np.float64) for k in ("tp", "fp", "tn", "fn"))
        unl = ex["unlabelled"]
        mode = np.where(unl == 0, "realized", "partial").astype(object)
        cbpe = self._fitted_cbpe(d, schema)
        if cbpe is not None and int(unl.sum()) > 0:
            table = self.queries.unlabelled_scores(
                d.model or "", schema.scores[0], schema.prediction, window, start, end, tenants
            )
            index = {
                (t, w): k
                for k, (t, w) in enumerate(zip(cells.tenant_id, cells.window_start, strict=True))
            }
            tid = np.asarray(table.column("tenant_id").to_pylist(), dtype=object)
            wid = np.asarray(table.column("w").to_numpy(), dtype=np.int64)
            sc = np.asarray(table.column("score").to_numpy(zero_copy_only=False), dtype=np.float64)
            pr = np.asarray(
                table.column("prediction").to_numpy(zero_copy_only=False), dtype=np.float64
            )
            order = np.lexsort((wid, tid.astype(str)))
            tid, wid, sc, pr = tid[order], wid[order], sc[order], pr[order]
            cuts = np.flatnonzero((tid[1:] != tid[:-1]) | (wid[1:] != wid[:-1])) + 1
            for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(tid)], strict=True):
                if a == b:
                    continue
                w = window_start(window, int(wid[a]))
                k = index.get((str(tid[a]), w))
                if k is None:
                    continue
                e = cbpe.estimate(sc[a:b], pr[a:b]).confusion
                if not isinstance(e, ExpectedConfusion):  # a binary estimate always has one
                    raise TypeError(f"binary CBPE gave no binary confusion matrix: {e!r}")
                tp[k] += e.tp
                fp[k] += e.fp
                tn[k] += e.tn
                fn[k] += e.fn
                mode[k] = "estimated" if tp[k] + fp[k] + tn[k] + fn[k] == b - a else "mixed"
        n = tp + fp + tn + fn
        value = f.tp * tp + f.fp * fp + f.tn * tn + f.fn * fn
        if f.per_row:
            value = np.divide(value, n, out=np.full(len(n), np.nan), where=n > 0)
        extra = dict(ex)
        extra["value_basis"] = mode
        return Cells(cells.tenant_id, cells.window_start, value, cells.support, extra)


def _log_measure(key: str, model: str, f: Any, schema: ModelSchema) -> LogMeasure:
    if isinstance(f, BusinessValueFormula):
        return LogMeasure(key, "confusion", model, schema.prediction, 1)
    assert isinstance(f, LogFormula)
    column = schema.prediction if f.column in ("prediction", "label") else f.column
    if f.func == "mean":
        return LogMeasure(key, "mean", model, column)
    positive: str | int | None = f.positive
    if schema.task == "binary":
        positive = int(f.positive or 1)
    return LogMeasure(key, f.func, model, column, positive)


def _sampling_sd(
    d: KpiDefinition, value: npt.NDArray[Any], support: npt.NDArray[Any]
) -> npt.NDArray[Any] | None:
    """Sampling standard deviation of each window's value where the formula implies one:
    binomial for shares (rate of events, positive and label rates), Poisson for counts."""
    f = d.parsed
    share = (isinstance(f, EventFormula) and f.func == "rate") or (
        isinstance(f, LogFormula) and f.func in ("positive_rate", "label_rate")
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        if share:
            p = np.clip(value, 0.0, 1.0)
            return np.where(support > 0, np.sqrt(p * (1.0 - p) / np.maximum(support, 1)), np.nan)
        if isinstance(f, EventFormula) and f.func == "count":
            result: npt.NDArray[Any] | None = np.sqrt(np.maximum(value, 1.0))
            return result
    return None


def _dated(o: CheckOutcome, grid: list[datetime], i: int) -> CheckOutcome:
    """A shift outcome with the start of its change as a date (``details.since``)."""
    ago = o.details.get("onset_windows_ago")
    if ago is None or i - ago < 0:
        return o
    return replace(o, details={**o.details, "since": grid[i - ago].isoformat()})


def _attainment(value: float, target: float, direction: str) -> float | None:
    if direction == "higher":
        return value / target
    return target / value if value else None


def _json(x: Any) -> Any:
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x
