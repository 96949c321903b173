"""Onboarding end to end, CLI only (issue 14 item 9): a real public dataset shipped inside
scikit-learn (the Wisconsin breast cancer data, no network), a model trained on half of it,
the other half as the reference, live traffic resampled over three weeks with the time in a
column of the user's own name. A new user's commands: infer, register, ingest with a column
map, upload the reference, init, apply, backfill. In the third week one feature drifts
(``mean radius`` x 1.35) and a quarter of the labels flip (accuracy 0.95 -> ~0.7): the default
rules must fire the drift summary and the performance alert from that week's first window, and
neither before it."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from monitor.cli import app

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAYS, PER_DAY, DRIFT_DAY = 21, 120, 14


def _files(tmp: Path) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8]  # mean radius ... mean concave points
    rng = np.random.default_rng(0)
    train = rng.random(len(X)) < 0.5
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(X[train], y[train])
    ref = X[~train].copy()
    proba = model.predict_proba(X[~train])[:, 1]
    ref["target"], ref["proba"], ref["pred"] = y[~train].values, proba, (proba >= 0.5) * 1
    ref.to_csv(tmp / "reference.csv", index=False)

    rows = rng.integers(0, len(X), DAYS * PER_DAY)
    live = X.iloc[rows].reset_index(drop=True)
    truth = y.iloc[rows].to_numpy()
    day = np.repeat(np.arange(DAYS), PER_DAY)
    late = day >= DRIFT_DAY
    live.loc[late, "mean radius"] *= 1.35  # injected drift
    proba = model.predict_proba(live)[:, 1]
    truth = np.where(late & (rng.random(len(live)) < 0.25), 1 - truth, truth)  # performance drop
    live["id"] = [f"r{i}" for i in range(len(live))]
    seconds = rng.integers(0, 86_400, len(live))
    live["timestamp"] = [
        (T0 + timedelta(days=int(d), seconds=int(s))).isoformat()
        for d, s in zip(day, seconds, strict=True)
    ]
    live["score"], live["predicted"], live["outcome"] = proba.round(6), (proba >= 0.5) * 1, truth
    with gzip.open(tmp / "live.csv.gz", "wt") as fh:
        live.to_csv(fh, index=False)


def test_from_a_file_to_alerts_with_the_cli_only(tmp_path: Path) -> None:
    _files(tmp_path)
    data = ["--data-dir", str(tmp_path / "data")]
    runner = CliRunner()

    def cli(*args: str) -> str:
        r = runner.invoke(app, list(args), catch_exceptions=False)
        assert r.exit_code == 0, (args, r.output)
        return r.stdout

    model_file = tmp_path / "model.yaml"
    cli("models", "infer", str(tmp_path / "live.csv.gz"), "--name", "cancer", "-o", str(model_file))
    spec = yaml.safe_load(model_file.read_text())
    assert spec["task"] == "binary" and spec["scores"] == ["score"]
    assert {"id": "request_id", "timestamp": "ts", "predicted": "prediction"}.items() <= spec[
        "aliases"
    ].items()
    # the user's edit: `outcome` is the label (sent with --map), not a feature
    spec["features"] = [f for f in spec["features"] if f["name"] != "outcome"]
    model_file.write_text(yaml.safe_dump(spec))
    cli("models", "register", str(model_file), *data)
    out = cli(
        "ingest", "cancer", str(tmp_path / "live.csv.gz"), "--map", "outcome=label",
        "--tenant", "clinic", "-q", *data,
    )  # fmt: skip
    assert f"{DAYS * PER_DAY:,} stored" in out
    out = cli(
        "references", "upload", "cancer", "training", str(tmp_path / "reference.csv"),
        "--map", "target=label,proba=score,pred=prediction", *data,
    )  # fmt: skip
    assert "version 1" in out
    monitors = tmp_path / "monitors.yaml"
    cli("init", "cancer", "-o", str(monitors), *data)
    cli("apply", "-f", str(monitors), *data)
    end = T0 + timedelta(days=DAYS)
    cli(
        "backfill",
        "--all",
        "--from",
        T0.date().isoformat(),
        "--to",
        end.date().isoformat(),
        "-q",
        *data,
    )

    alerts = json.loads(cli("alerts", "list", "--json", "--limit", "1000", *data))
    drift_start = T0 + timedelta(days=DRIFT_DAY)

    def started(rule: str, state: str | None = None) -> set[datetime]:
        return {
            datetime.fromisoformat(a["starts_at"])
            for a in alerts
            if a["rule"] == rule and a.get("starts_at") and state in (None, a["state"])
        }

    # the drift summary pages once per model and window from the drift's first window
    assert started("cancer-drift-summary", "firing") == {drift_start}
    assert started("cancer-drift-summary") == {drift_start}  # nothing before (no false alarm)
    performance = [a for a in alerts if a["rule"] == "cancer-performance"]
    assert {a["labels"].get("metric") for a in performance if a["state"] == "firing"} >= {
        "accuracy"
    }
    assert started("cancer-performance", "firing") == {drift_start}
    assert started("cancer-performance") == {drift_start}


# the commands test_from_a_file_to_alerts_with_the_cli_only runs
ONBOARDING = {
    "models infer",
    "models register",
    "ingest",
    "references upload",
    "init",
    "apply",
    "backfill",
    "alerts list",
}


def test_the_docs_path_is_ten_commands_at_most_all_tested() -> None:
    """docs/byom.md's "From a file to alerts" block: at most 10 commands, each one the
    onboarding test above runs (so the page's path is the tested one)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "byom.md").read_text()
    block = text.split("## From a file to alerts", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].split() for line in block.splitlines()]
    commands = [c for c in commands if c and c[0] == "driftwatch"]
    assert 1 <= len(commands) <= 10
    for c in commands:
        words = [w for w in c[1:3] if not w.startswith("-")]
        assert " ".join(words[:2]) in ONBOARDING or words[0] in ONBOARDING, c
