"""A lake-fed model end to end: ``driftwatch profile`` reads the spec from a real server,
profiles the lake with DuckDB, pushes each date; the server stores exactly the rows the embedded
build computes from the same logs, runs the monitor on them, refuses stale specs (409) and
tenant-scoped keys (403), and a re-run or a repeated push changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.composition import of
from monitor.lake_job import encode_day, encode_push
from storage.lake_profiles import DayRows, list_partitions
from storage.logstore import LogStore
from storage.profiles import ProfileStore
from storage.row_kernel import SAMPLE_BASE
from tests.api.conftest import make_keys, make_settings
from tests.storage.test_profile_engines import (
    DAYS,
    SCHEMA,
    T0,
    assert_same_profiles,
    logs,
    write_lake,
)
from tests.support import live_server

MODEL = {
    "name": "churn",
    "task": "binary",
    "features": [
        {"name": "x", "kind": "numeric"},
        {"name": "k", "kind": "numeric"},
        {"name": "plan", "kind": "categorical"},
        {"name": "city", "kind": "categorical"},
        {"name": "mobile", "kind": "boolean"},
    ],
    "prediction": "prediction",
    "scores": ["score"],
}


def _embedded(tables: list[pa.Table], spec) -> pa.Table:
    ls = LogStore(":memory:")
    try:
        ls.ensure_model("churn", SCHEMA)
        ps = ProfileStore(ls)
        ps.register("churn", spec)
        for t in tables:
            ls.append_inferences("churn", t)
        ps.ensure("churn", T0, T0 + timedelta(days=DAYS))
        return ps.profile_rows("churn", T0, T0 + timedelta(days=DAYS))
    finally:
        ls.close()


def labels_of(table: pa.Table, day) -> pa.Table:
    return table.filter(pa.compute.equal(pa.compute.cast(table.column("hour"), pa.date32()), day))


def _profile(url: str, key: str, lake: Path) -> dict:
    out = CliRunner().invoke(
        app,
        [
            "profile",
            "--engine",
            "duckdb",
            "--lake",
            str(lake),
            "--model",
            "churn",
            "--url",
            url,
            "--api-key",
            key,
            "--quiet",
        ],
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_lake_job_pushes_what_the_embedded_build_computes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}")
    lake = tmp_path / "lake"
    first = logs(3000, 11)
    write_lake(lake, "churn", first, "part-0")
    ref = logs(2000, 12).drop_columns(["request_id", "ts", "tenant_id", "model_version"])
    with live_server(settings) as live:
        keys = make_keys(live)
        h = {"Authorization": f"Bearer {keys.engineer}"}
        with httpx.Client(base_url=f"{live.url}/api/v1", headers=h, timeout=60) as c:
            assert c.post("/models", json=MODEL).status_code == 201
            sink = pa.BufferOutputStream()
            import pyarrow.parquet as pq

            pq.write_table(ref, sink)
            r = c.put(
                "/models/churn/references/base",
                content=sink.getvalue().to_pybytes(),
                headers={"Content-Type": "application/vnd.apache.parquet"},
            )
            assert r.status_code == 200, r.text
            for body in (
                {
                    "name": "fd",
                    "model": "churn",
                    "kind": "feature_drift",
                    "reference": {"dataset": "base"},
                    "window": "day",
                    "columns": ["x", "plan"],
                },
                {
                    "name": "perf",
                    "model": "churn",
                    "kind": "performance",
                    "reference": {"dataset": "base"},
                    "window": "day",
                },
            ):
                r = c.post("/monitors", json=body)
                assert r.status_code == 201, r.text
            spec_doc = c.get("/models/churn/profile-spec").json()
            assert set(spec_doc["numeric"]) == {"x"} and spec_doc["categorical"] == ["plan"]

            report = _profile(live.url, keys.engineer, lake)
            assert report["dates"] == ["2026-03-01", "2026-03-02", "2026-03-03"]
            svc = of(live.services).monitors
            runner = svc.runner
            spec, _ = svc.profile_spec("churn")
            span = (T0, T0 + timedelta(days=DAYS))
            stored = runner.profiles.profile_rows("churn", *span)
            assert_same_profiles(stored, _embedded([first], spec))

            # nothing changed: nothing recomputed; the same push again leaves the same rows
            assert _profile(live.url, keys.engineer, lake)["dates"] == []
            day = sorted(list_partitions(str(lake), "churn"))[1]
            files = list_partitions(str(lake), "churn")[day]
            again = stored.filter(
                pa.compute.equal(pa.compute.cast(stored.column("hour"), pa.date32()), day)
            )
            # the spec is format 2 (the performance monitor's label aggregates): a format-1
            # body is refused, the same format-2 push again changes nothing
            r = c.put(
                f"/models/churn/profiles/{day}",
                content=encode_push(again, spec.key, day, files),
                headers={"Content-Type": "application/vnd.apache.parquet"},
            )
            assert r.status_code == 400 and "push format 2" in r.text
            labels_before = runner.profiles.label_aggregates("churn", *span)
            body, ctype = encode_day(
                DayRows(again, SAMPLE_BASE.empty_table(), labels_of(labels_before, day)),
                spec,
                day,
                files,
            )
            r = c.put(
                f"/models/churn/profiles/{day}", content=body, headers={"Content-Type": ctype}
            )
            assert r.status_code == 200, r.text
            assert_same_profiles(runner.profiles.profile_rows("churn", *span), stored)
            assert runner.profiles.label_aggregates("churn", *span).equals(labels_before)

            # a stale spec is refused, and so is a key scoped to one tenant
            body = encode_push(again, "stale-spec", day, files)
            ctype = {"Content-Type": "application/vnd.apache.parquet"}
            r = c.put(f"/models/churn/profiles/{day}", content=body, headers=ctype)
            assert r.status_code == 409 and spec.key in r.json()["error"]["message"]
            r = httpx.put(
                f"{live.url}/api/v1/models/churn/profiles/{day}",
                content=encode_push(again, spec.key, day, files),
                headers={**ctype, "Authorization": f"Bearer {keys.acme}"},
            )
            assert r.status_code == 403
            # an hour outside the date is named
            body, mctype = encode_day(
                DayRows(again, SAMPLE_BASE.empty_table(), labels_of(labels_before, day)),
                spec,
                T0.date(),
                files,
            )
            r = c.put(
                f"/models/churn/profiles/{T0.date()}",
                content=body,
                headers={"Content-Type": mctype},
            )
            assert r.status_code == 400 and "not all on 2026-03-01" in r.text

            # late rows for a profiled day: only that date is recomputed
            late = logs(300, 13, start=T0 + timedelta(days=1), days=1, prefix="late")
            write_lake(lake, "churn", late, "part-late")
            assert _profile(live.url, keys.engineer, lake)["dates"] == ["2026-03-02"]
            stored = runner.profiles.profile_rows("churn", *span)
            assert_same_profiles(stored, _embedded([first, late], spec))

            # the monitor runs on the pushed profiles; a row-based kind says why it cannot
            r = c.post("/monitors/fd/run", json={"window_start": "2026-03-02T00:00:00Z"})
            assert r.status_code == 200, r.text
            res = c.get("/results", params={"monitor": "fd", "tenant_id": "*"}).json()
            rows = [x for x in res["items"] if x["column"] == "x"]
            assert rows and rows[0]["status"] in ("ok", "alert")
            r = c.post("/monitors/perf/run", json={"window_start": "2026-03-02T00:00:00Z"})
            assert r.status_code == 200, r.text
            res = c.get("/results", params={"monitor": "perf"}).json()["items"]
            # the lake has no label files: every metric is no_data, saying why
            assert res and all(x["status"] == "no_data" for x in res)
            assert all(x["details"]["reason"] for x in res)


@pytest.mark.parametrize("engine", ["nope"])
def test_profile_command_names_a_bad_engine(engine: str, tmp_path: Path) -> None:
    out = CliRunner().invoke(
        app, ["profile", "--engine", engine, "--lake", str(tmp_path), "--model", "m"]
    )
    assert out.exit_code == 1 and "--engine must be duckdb or spark" in out.output


FD = {
    "name": "fd",
    "model": "churn",
    "kind": "feature_drift",
    "reference": {"dataset": "base"},
    "window": "day",
    "columns": ["x", "plan"],
}


def test_profile_locally_and_through_a_server_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``driftwatch profile`` goes through the CLI's one core backend (``monitor.core_backend``):
    on the local data dir and through ``--url`` it reports the same dates and rows and leaves the
    same profiles. Control: ``test_lake_job_pushes_what_the_embedded_build_computes`` ties the
    pushed profiles to the embedded build."""
    from monitor import cli_common
    from monitor.core_backend import LocalCore
    from monitor.schemas import ModelIn
    from monitor.service import Services
    from tests.support import in_process

    lake = tmp_path / "lake"
    write_lake(lake, "churn", logs(2000, 11), "part-0")
    ref = logs(1000, 12).drop_columns(["request_id", "ts", "tenant_id", "model_version"])

    def prepare(services: Services) -> None:
        core = LocalCore(services)
        core.register_model(ModelIn.model_validate(MODEL))
        core.put_reference("churn", "base", ref)
        of(services).monitors.create(FD, "test")

    def profiles(services: Services) -> pa.Table:
        span = (T0, T0 + timedelta(days=DAYS))
        return of(services).monitors.runner.profiles.profile_rows("churn", *span)

    base = ["profile", "--engine", "duckdb", "--lake", str(lake), "--model", "churn", "-q"]
    local_settings = make_settings(tmp_path / "local")
    services = Services.open(local_settings)
    try:
        prepare(services)
    finally:
        services.close()
    out = CliRunner().invoke(app, [*base, "--data-dir", str(local_settings.data_dir)])
    assert out.exit_code == 0, out.output
    here = json.loads(out.stdout.strip().splitlines()[-1])
    services = Services.open(local_settings)
    try:
        local_rows = profiles(services)
    finally:
        services.close()

    with in_process(make_settings(tmp_path / "server")) as live:
        monkeypatch.setattr(cli_common, "TRANSPORT", live.transport)  # `--url` reaches the app
        prepare(live.services)
        key = make_keys(live).engineer
        out = CliRunner().invoke(app, [*base, "--url", live.url, "--api-key", key])
        assert out.exit_code == 0, out.output
        served = json.loads(out.stdout.strip().splitlines()[-1])
        assert_same_profiles(profiles(live.services), local_rows)
    assert here.pop("seconds") and served.pop("seconds")
    assert here == served and here["dates"] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert here["rows_pushed"] > 0
