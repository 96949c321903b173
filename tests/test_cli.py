"""The driftwatch command line, in process (typer's runner) on a temporary data dir."""

from __future__ import annotations

import io
import re
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from monitor import cli_common
from monitor.cli import app
from storage.logstore import LogStore
from tests.api.conftest import CHURN, make_keys, make_settings
from tests.support import in_process

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def rows(n: int, bad: int | None = None) -> list[dict]:
    out = [
        {
            "request_id": f"c{i}",
            "ts": f"2026-03-01T{i % 24:02d}:00:00Z",
            "tenant_id": "acme",
            "age": str(30 + i % 7),
            "plan": "pro",
            "prediction": str(i % 2),
            "score": "0.25",
        }
        for i in range(n)
    ]
    if bad is not None:
        out[bad]["age"] = "unknown"
    return out


def write_csv(path: Path, data: list[dict]) -> Path:
    buf = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pylist(data), buf)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    spec = tmp_path / "churn.yaml"
    spec.write_text(yaml.safe_dump(CHURN))
    out = run("models", "register", str(spec), "--data-dir", str(d))
    assert "registered" in out
    return d


def test_config_masks_secrets(tmp_path: Path) -> None:
    out = run(
        "config",
        env={"DRIFTWATCH_DATABASE_URL": "postgresql+psycopg://dw:hunter2@db/dw", "COLUMNS": "250"},
    )
    assert "hunter2" not in out and "***" in out and "DRIFTWATCH_MAX_BODY_BYTES" in out


def test_keys_create_list_revoke(data_dir: Path) -> None:
    args = ["keys", "create", "ci-bot", "--role", "viewer", "--tenant", "acme"]
    # an unknown tenant is refused (a typo would give a key that sees nothing) ...
    unknown = runner.invoke(app, [*args, "--data-dir", str(data_dir)])
    assert unknown.exit_code == 2 and "does not exist" in " ".join(unknown.output.split())
    # ... and so is a key that would be expired already
    for days in ("0", "-1"):
        expired = runner.invoke(app, [*args, "--expires-days", days, "--data-dir", str(data_dir)])
        assert expired.exit_code == 2, expired.output
    out = run(*args, "--create-tenant", "--data-dir", str(data_dir))
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("dw_") and len(secret) > 40
    listing = run("keys", "list", "--data-dir", str(data_dir), env={"COLUMNS": "250"})
    assert "ci-bot" in listing and secret not in listing
    prefix = secret[3:11]
    assert "revoked" in run("keys", "revoke", prefix, "--data-dir", str(data_dir))
    bad = runner.invoke(app, ["keys", "create", "x", "--role", "root", "--data-dir", str(data_dir)])
    assert bad.exit_code != 0 and "role" in bad.output


def test_ingest_csv_streams_in_batches_and_reports(tmp_path: Path, data_dir: Path) -> None:
    csv = write_csv(tmp_path / "logs.csv", rows(1000, bad=17))
    result = runner.invoke(
        app, ["ingest", "churn", str(csv), "--batch-rows", "128", "--data-dir", str(data_dir), "-q"]
    )
    assert result.exit_code == 3, result.output  # rejected rows make the exit code non-zero
    assert "1,000 rows read: 999 stored, 0 duplicates, 1 rejected" in result.output
    assert "row 17: age: expected a number, got 'unknown'" in result.output
    again = runner.invoke(app, ["ingest", "churn", str(csv), "--data-dir", str(data_dir), "-q"])
    assert "0 stored, 999 duplicates, 1 rejected" in again.output
    with LogStore(data_dir / "driftwatch.duckdb") as store:
        assert store.count_inferences("churn") == 999
        assert store.read_quarantine("churn").num_rows == 1  # the retry quarantines nothing twice


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_ingest_parquet_and_jsonl(tmp_path: Path, data_dir: Path, fmt: str) -> None:
    data = rows(300)
    path = tmp_path / f"logs.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(data), path)
    else:
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in data))
    out = run(
        "ingest", "churn", str(path), "--batch-rows", "100", "--data-dir", str(data_dir), "-q"
    )
    assert "300 rows read: 300 stored" in out


def test_ingest_against_a_server(
    tmp_path: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = write_csv(tmp_path / "logs.csv", rows(500))
    with in_process(make_settings(tmp_path, metadata_url)) as live:
        monkeypatch.setattr(cli_common, "TRANSPORT", live.transport)  # `--url` reaches the app
        keys = make_keys(live)
        run(
            "models",
            "register",
            str(_spec(tmp_path)),
            "--url",
            live.url,
            "--api-key",
            keys.engineer,
        )
        out = run(
            "ingest",
            "churn",
            str(csv),
            "--url",
            live.url,
            "--api-key",
            keys.engineer,
            "--batch-rows",
            "200",
            "-q",
        )
        assert "500 rows read: 500 stored" in out
        assert live.services.logstore.count_inferences("churn") == 500
        denied = runner.invoke(
            app, ["ingest", "churn", str(csv), "--url", live.url, "--api-key", keys.viewer, "-q"]
        )
        assert denied.exit_code == 1 and "403" in denied.output


def test_quarantine_list_shows_why_a_row_was_rejected(tmp_path: Path, data_dir: Path) -> None:
    csv = write_csv(tmp_path / "logs.csv", rows(30, bad=17))
    assert runner.invoke(app, ["ingest", "churn", str(csv), "--data-dir", str(data_dir), "-q"])
    wide = {"COLUMNS": "250"}
    out = run("quarantine", "list", "--model", "churn", "--data-dir", str(data_dir), env=wide)
    lines = out.strip().splitlines()
    assert len(lines) == 2, out  # the one rejected row, then the count
    assert "tenant acme" in lines[0] and "inference row 17" in lines[0]
    assert "age: expected a number, got 'unknown'" in lines[0]
    assert "age: age:" not in lines[0], lines[0]  # the reason names its field: once
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  ", lines[0])  # received at, UTC
    assert "1 quarantined rows for model churn" in lines[1]
    # another tenant's filter shows none; --events lists only events (none rejected here)
    other = run(
        "quarantine", "list", "-m", "churn", "--tenant", "globex", "--data-dir", str(data_dir)
    )
    assert "no quarantined rows for model churn, tenant globex" in other
    assert "no quarantined rows for business events" in run(
        "quarantine", "list", "--events", "--data-dir", str(data_dir)
    )
    for args in ([], ["--model", "churn", "--events"]):  # exactly one of the two
        both = runner.invoke(app, ["quarantine", "list", *args, "--data-dir", str(data_dir)])
        assert both.exit_code == 2 and "exactly one of --model M or --events" in both.output
    unknown = runner.invoke(app, ["quarantine", "list", "-m", "nope", "--data-dir", str(data_dir)])
    assert unknown.exit_code == 1 and "nope" in unknown.output


def test_quarantine_list_against_a_server(
    tmp_path: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_process(make_settings(tmp_path, metadata_url)) as live:
        monkeypatch.setattr(cli_common, "TRANSPORT", live.transport)  # `--url` reaches the app
        keys = make_keys(live)
        with live.http(keys.engineer) as c:
            bad = [
                {"tenant_id": "acme", "ts": "2026-03-01T00:00:00Z", "name": "x", "value": "lots"},
                {"tenant_id": "globex", "name": "y", "value": 1.0},
            ]
            assert c.post("/events", json=bad).json()["rejected"] == 2
        base = ["quarantine", "list", "--events", "--url", live.url]
        wide = {"COLUMNS": "250"}
        out = run(*base, "--api-key", keys.engineer, env=wide)
        assert "2 quarantined rows for business events" in out
        acme_line, globex_line = out.strip().splitlines()[:2]
        assert "tenant acme" in acme_line and "event row 0: value:" in acme_line
        assert "tenant globex" in globex_line and "event row 1: ts:" in globex_line
        only = run(*base, "--tenant", "globex", "--api-key", keys.engineer, env=wide)
        assert "tenant globex" in only and "tenant acme" not in only
        # a tenant-scoped key sees its own rows only, whatever --tenant asks for
        scoped = run(*base, "--api-key", keys.acme, env=wide)
        assert "tenant acme" in scoped and "globex" not in scoped
        probe = run(*base, "--tenant", "globex", "--api-key", keys.acme, env=wide)
        assert "no quarantined rows" in probe and "event row" not in probe
        first = run(*base, "--limit", "1", "--api-key", keys.engineer, env=wide)
        assert "tenant acme" in first and "tenant globex" not in first and "--limit N" in first


def test_ingest_while_server_holds_the_file_says_so(tmp_path: Path, data_dir: Path) -> None:
    csv = write_csv(tmp_path / "logs.csv", rows(5))
    with LogStore(data_dir / "driftwatch.duckdb"):
        result = runner.invoke(
            app, ["ingest", "churn", str(csv), "--data-dir", str(data_dir), "-q"]
        )
    assert result.exit_code == 2 and "--url" in result.output


def test_demo_load_is_repeatable(tmp_path: Path) -> None:
    d = str(tmp_path / "demo")
    first = run("demo", "load", "--days", "1", "--rows-per-hour", "20", "--data-dir", d)
    assert "480 new inference rows" in first and "dw_" in first
    second = run("demo", "load", "--days", "1", "--rows-per-hour", "20", "--data-dir", d)
    assert "480 already there" in second or "0 new inference rows" in second


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(CHURN))
    return spec


from tests.storage import conftest as _db  # noqa: E402

metadata_url = _db.migrated_url  # a copy of a database migrated once per session


def test_cli_role_list_matches_accounts() -> None:
    from monitor import accounts, cli_users

    assert tuple(cli_users.USER_ROLES) == tuple(accounts.USER_ROLES)


def test_cli_starts_without_loading_the_heavy_stack() -> None:
    # `driftwatch --help` must answer fast: scipy, SQLAlchemy and DuckDB load on first use
    import subprocess
    import sys

    code = (
        "import sys, monitor.cli; "
        "print(sorted(m for m in ('scipy', 'sqlalchemy', 'duckdb', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (
            ["--port", "8123", "--ingest-port", "8123"],
            {},
            "invalid setting: ingest_port (DRIFTWATCH_INGEST_PORT) must differ from port "
            "(DRIFTWATCH_PORT); both are 8123",
        ),
        ([], {"DRIFTWATCH_LOG_LEVEL": "loud"}, "invalid setting: DRIFTWATCH_LOG_LEVEL: log_level"),
    ],
    ids=["same-ports", "bad-log-level"],
)
def test_an_invalid_setting_is_one_line_naming_it(
    tmp_path: Path, args: list[str], env: dict[str, str], said: str
) -> None:
    """Not a traceback: the variable, the problem, exit 2, and nothing started."""
    result = runner.invoke(app, ["serve", "--data-dir", str(tmp_path / "d"), *args], env=env)
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "d").exists()
