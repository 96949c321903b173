"""What the command line says when things go wrong or would change: one line and exit code 1
for a server that cannot be reached or is not Driftwatch (every command with ``--url``), the
alert list's summaries printed as they are, ``apply --dry-run`` diffs, ``init`` and channels.

The commands run through ``monitor.cli.main`` (the ``driftwatch`` entry point), where a
traceback would otherwise be printed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from monitor import cli
from monitor.demo import CHURN_MODEL

# The arguments each command with --url needs besides --url/--api-key ({tmp}: a folder with
# the files they read). A new command with --url must be added here (the first test).
ARGS = {
    "apply": ["-f", "{tmp}/monitors.yaml"],
    "init": ["churn"],
    "run": ["-m", "churn-drift", "--window", "2026-01-01"],
    "backfill": ["--from", "2026-01-01", "--to", "2026-01-02", "--all"],
    "references upload": ["churn", "training", "{tmp}/rows.csv"],
    "ingest": ["churn", "{tmp}/rows.csv"],
    "models register": ["{tmp}/model.yaml"],
    "alerts list": [],
    "alerts ack": ["1"],
    "alerts silence": ["-m", "tenant=acme", "--reason", "deploy"],
    "alerts silences": [],
    "alerts expire": ["1"],
    "alerts deliveries": [],
    "alerts retry": ["1"],
    "channels list": [],
    "channels create": ["hook", "--kind", "webhook", "--target", "https://hooks.example/x"],
    "channels test": ["hook"],
    "rules list": [],
    "rules apply": ["-f", "{tmp}/rules.yaml"],
    "rules backtest": ["churn-drift", "--from", "2026-01-01"],
    "kpis list": [],
    "kpis show": ["conversion"],
    "kpis compute": ["--from", "2026-01-01", "--to", "2026-01-02"],
    "quarantine list": ["--model", "churn"],
    "profile": ["--lake", "{tmp}/lake", "--model", "churn", "--quiet"],
}


def url_commands() -> set[str]:
    found: set[str] = set()

    def walk(cmd: object, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs is not None:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        elif any(p.name == "url" for p in cmd.params):  # type: ignore[attr-defined]
            found.add(" ".join(path))

    walk(typer.main.get_command(cli.app), [])
    return found


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DRIFTWATCH_URL", raising=False)
    monkeypatch.delenv("DRIFTWATCH_API_KEY", raising=False)
    (tmp_path / "monitors.yaml").write_text("monitors: []\n")
    (tmp_path / "rows.csv").write_text("request_id,ts\nr1,2026-01-01T00:00:00Z\n")
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(CHURN_MODEL.model_dump()))
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"rules": [{"name": "churn-drift", "match": {"model": "churn"}}]})
    )
    return tmp_path


def run_main(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["driftwatch", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: refused


def test_every_url_command_is_covered() -> None:
    assert url_commands() == set(ARGS)


def test_a_wrong_url_is_one_line_and_exit_code_1_for_every_command(
    files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the Python client retries a refused connection (six attempts, backoff): no waiting here
    monkeypatch.setattr("monitor.client._wait", lambda state: 0.0)
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    for command, extra in ARGS.items():
        args = [*command.split(), *(a.format(tmp=files) for a in extra)]
        code, out, err = run_main(
            [*args, "--url", url, "--api-key", "dw_test"], monkeypatch, capsys
        )
        lines = [line for line in err.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        assert code == 1, (command, out, err)
        # one error line (ingest's progress bar may have printed its line before)
        assert len(errors) == 1 and len(lines) - len(errors) <= ("ingest" in command), err
        assert errors[0].startswith(f"error: cannot reach {url}:"), (command, err)
        assert "Traceback" not in err + out


@pytest.fixture
def not_driftwatch() -> Iterator[str]:
    """A web server that is not Driftwatch: HTML pages, 404 for anything but GET /."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _page(self) -> None:
            ok = self.command == "GET" and "/alerts" in self.path
            body = b"<html><body>\n<h1>Welcome</h1>\n" + b"<p>line</p>\n" * 200 + b"</body></html>"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _page

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("command", "expect"),
    [
        ("alerts list", "answered text/html, not the Driftwatch API's JSON (check --url)"),
        ("kpis list", "HTTP 404 Not Found: http://127.0.0.1:"),
        ("models register", "HTTP 404: http://127.0.0.1:"),
    ],
)
def test_a_server_that_is_not_driftwatch_is_one_line(
    command: str,
    expect: str,
    files: Path,
    not_driftwatch: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [*command.split(), *(a.format(tmp=files) for a in ARGS[command])]
    code, _out, err = run_main(
        [*args, "--url", not_driftwatch, "--api-key", "dw_test"], monkeypatch, capsys
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, err
    assert "is not a Driftwatch API" in lines[0] or "not the Driftwatch API" in lines[0]
    assert expect in lines[0] and "<h1>" not in err


def invoke(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli.app, [*args, "--data-dir", str(data_dir)])


def local(data_dir: Path, *args: str) -> str:
    r = invoke(data_dir, *args)
    assert r.exit_code == 0, r.output
    return r.output


def test_alert_summaries_print_as_they_are(tmp_path: Path, monkeypatch) -> None:
    # rich took "[discount_rate]" in "psi[discount_rate] of churn" for markup and dropped it
    from monitor.alerting import AlertingRuntime
    from monitor.settings import load_settings
    from storage.metadata import MetadataStore
    from tests.alerts.helpers import result

    monkeypatch.delenv("DRIFTWATCH_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    data = tmp_path / "data"
    data.mkdir()
    settings = load_settings(data_dir=data)
    meta = MetadataStore(settings.metadata_url)
    meta.upgrade()

    class Svc:
        pass

    svc = Svc()
    svc.settings, svc.metadata = settings, meta  # type: ignore[attr-defined]
    rt = AlertingRuntime(svc)
    rt.engine.put_rule({"name": "churn-drift", "match": {"kind": "feature_drift"}})
    rt.engine.process([result(0, column="discount_rate")])
    meta.dispose()
    out = local(data, "alerts", "list")
    assert "psi[discount_rate] of churn" in out
    # since: the first breaching window, as every page shows times (control: the table
    # printed 2026-01-01T00:00:00+00:00); --json keeps the API's ISO 8601
    assert "2026-01-01 00:00 UTC" in out and "T00:00:00" not in out
    assert '"2026-01-01T00:00:00+00:00"' in local(data, "alerts", "list", "--json")


def test_apply_dry_run_prints_a_diff_per_changed_object_and_init_keeps_channels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.service import Caller, Services
    from monitor.settings import load_settings

    monkeypatch.delenv("DRIFTWATCH_URL", raising=False)
    monkeypatch.setenv("DRIFTWATCH_ALERT_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("COLUMNS", "250")
    data = tmp_path / "data"
    services = Services.open(load_settings(data_dir=data))
    services.register_model(CHURN_MODEL, Caller.local())
    services.close()
    local(
        data, "channels", "create", "pager", "--kind", "webhook", "--target", "http://127.0.0.1:9/x"
    )
    proposal = tmp_path / "proposal.yaml"
    r = invoke(data, "init", "churn", "-o", str(proposal))
    assert r.exit_code == 0, r.output
    assert "rules without channels alert without notifying anyone" in r.output
    doc = yaml.safe_load(proposal.read_text())
    assert all(rule["channels"] == [] for rule in doc["rules"])
    # the operator routes one rule to a channel and applies
    doc["rules"][0]["channels"] = ["pager"]
    proposal.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = local(data, "apply", "-f", str(proposal), "--dry-run")
    assert "would create monitor churn-feature-drift" in out
    assert '    + kind: "feature_drift"' in out
    assert f"would create rule {doc['rules'][0]['name']}" in out
    local(data, "apply", "-f", str(proposal))
    # a new proposal keeps the channels of the rules that exist
    r = invoke(data, "init", "churn", "-o", str(proposal))
    again = yaml.safe_load(proposal.read_text())
    assert again["rules"][0]["channels"] == ["pager"]
    assert doc["rules"][0]["name"] not in r.output.split("anyone:")[-1].split(".")[0]
    # a change: its diff; no change: "unchanged", never "would unchanged"
    again["monitors"][0]["window"] = "week"
    again["rules"][0]["for"] = 3
    proposal.write_text(yaml.safe_dump(again, sort_keys=False))
    out = local(data, "apply", "-f", str(proposal), "--dry-run")
    assert "would unchanged" not in out
    assert 'would update monitor churn-feature-drift\n    window: "day" -> "week"' in out
    assert f"would update rule {again['rules'][0]['name']}\n    for: " in out
    assert "unchanged monitor churn-prediction-drift" in out


def test_a_data_dir_that_cannot_be_opened_is_one_line_and_exit_code_2_for_every_command(
    files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the local side of every command with --url; the data dir is a file, not a folder
    not_a_folder = files / "not-a-folder"
    not_a_folder.write_text("x")
    monkeypatch.delenv("DRIFTWATCH_DATA_DIR", raising=False)
    for command, extra in ARGS.items():
        args = [*command.split(), *(a.format(tmp=files) for a in extra)]
        code, out, err = run_main([*args, "--data-dir", str(not_a_folder)], monkeypatch, capsys)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2, (command, out, err)
        assert "Traceback" not in err, (command, err)
        assert len(errors) == 1, (command, err)
        assert f"cannot open the data dir {not_a_folder}: Not a directory" in errors[0], (
            command,
            errors,
        )
