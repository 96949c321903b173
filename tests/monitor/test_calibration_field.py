"""The ``calibration`` field of an ``estimated_performance`` monitor reaches CBPE: ``none``
trusts the scores, ``isotonic`` calibrates them, ``auto`` decides on the reference; each
result says whether its scores were calibrated. The field is refused on other kinds and on
regression (DLE has no scores)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest

from monitor.errors import ValidationFailed
from monitor.monitors import check_against_model, parse_monitor
from storage.metadata.monitoring import ResultQuery
from storage.types import FeatureSpec, ModelSchema
from tests.monitor.test_init_bounds import SCALE_944, SCHEMA, T0, _log_days, _rows, env
from tests.support import duckdb_runner

__all__ = ["env"]


def test_calibration_field_reaches_cbpe(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(21)
    ls.put_reference("loan", "base", pa.table(_rows(rng, 5000, SCALE_944)))
    _log_days(ls, rng, [SCALE_944], per_day=500)
    runner = duckdb_runner(meta, ls)
    seen = {}
    for choice in ("none", "isotonic"):
        cfg = parse_monitor(
            {
                "name": f"est-{choice}",
                "model": "loan",
                "kind": "estimated_performance",
                "reference": "base",
                "calibration": choice,
            }
        )
        check_against_model(cfg, SCHEMA)
        ms.create_monitor(cfg.name, "loan", cfg.kind, cfg.to_json())
        (run,) = runner.backfill(cfg.name, T0, T0 + timedelta(days=1))
        assert run.status == "ok", run.error
        rows, _ = ms.query_results(ResultQuery(source_name=cfg.name, tenant_id="*"), limit=50)
        seen[choice] = {r.details["calibrated"] for r in rows}
    assert seen == {"none": {False}, "isotonic": {True}}


def test_calibration_is_refused_where_it_means_nothing() -> None:
    with pytest.raises(ValidationFailed, match="calibration"):
        parse_monitor({"name": "d", "model": "m", "kind": "performance", "calibration": "isotonic"})
    with pytest.raises(ValidationFailed, match="calibration"):
        parse_monitor(
            {
                "name": "e",
                "model": "m",
                "kind": "estimated_performance",
                "reference": "base",
                "calibration": "platt",
            }
        )
    reg = ModelSchema("regression", (FeatureSpec("x", "numeric"),))
    cfg = parse_monitor(
        {
            "name": "e",
            "model": "m",
            "kind": "estimated_performance",
            "reference": "base",
            "calibration": "none",
        }
    )
    with pytest.raises(ValidationFailed, match="DLE"):
        check_against_model(cfg, reg)
