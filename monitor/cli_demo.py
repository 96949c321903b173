"""``driftwatch demo build`` (the realistic scenario) and ``driftwatch demo receiver`` (a local
webhook receiver that logs every alert notification to ``<data_dir>/demo-webhooks.jsonl``)."""

from __future__ import annotations

import gc
import json
import os
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from alerts.ssrf import Allowlist
from monitor.settings import load_settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder (default $DRIFTWATCH_DATA_DIR or ./data)."),
]
WEBHOOK_LOG = "demo-webhooks.jsonl"
# the demo channel's signing secret, written by `demo build` (0600) so `demo receiver` and
# anyone reading the log can verify the deliveries
WEBHOOK_SECRET = "demo-webhook-secret"


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path`` readable by its owner only (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    path.chmod(0o600)


def register(demo_app: typer.Typer) -> None:
    """Add the commands to ``driftwatch demo``."""
    demo_app.command("build")(demo_build)
    demo_app.command("receiver")(demo_receiver)


def demo_build(
    data_dir: DataDir = None,
    days: Annotated[
        int, typer.Option(help="Days of hourly traffic (a shorter story keeps its proportions).")
    ] = 60,
    force: Annotated[bool, typer.Option(help="Build even when the demo is already there.")] = False,
    webhook_port: Annotated[int, typer.Option(help="Port of `driftwatch demo receiver`.")] = 8765,
) -> None:
    """Build the realistic demo: 3 tenants, 2 models, 60 days, drift, KPI drop, alerts."""
    from monitor import demo_scenario
    from monitor.service import Services

    settings = load_settings(data_dir=data_dir)
    if not Allowlist.parse(settings.alert_allowed_hosts.split(",")).host_allowed("127.0.0.1"):
        # the demo's channel is the local receiver (plain http on loopback), which the alert
        # URL guard refuses unless allowed: say so before anything is built, not mid-build
        err.print(
            "[red]error:[/] the demo's alerts go to its local receiver "
            f"(http://127.0.0.1:{webhook_port}/hook), which alert channels may use only when "
            "DRIFTWATCH_ALERT_ALLOWED_HOSTS includes 127.0.0.1: run "
            "`DRIFTWATCH_ALERT_ALLOWED_HOSTS=127.0.0.1 driftwatch demo build` (`make demo` "
            "sets it), and the same for `driftwatch serve`"
        )
        raise typer.Exit(1)
    services = Services.open(settings)
    # What is loaded by now (modules, classes, the stores) lives as long as the build: frozen,
    # the collector's full passes skip it (5 passes, ~0.5 s each, a third of that after)
    gc.freeze()
    try:
        done = demo_scenario.built(services)
        if done and not force:
            console.print("demo data already built (use --force to rebuild)")
        else:
            summary = demo_scenario.build(
                services,
                days=days,
                webhook_url=f"http://127.0.0.1:{webhook_port}/hook",
                progress=lambda msg: console.print(f"[dim]·[/] {msg}"),
            )
            console.print(
                f"built in {summary.seconds:.0f} s: "
                + ", ".join(f"{m} {n:,} rows" for m, n in summary.rows.items())
                + f", {summary.events:,} business events, {len(summary.monitors)} monitors, "
                f"{summary.kpi_rows} KPI results, alerts {summary.alerts}"
            )
            if summary.webhook_secret:
                secret_path = Path(settings.data_dir) / WEBHOOK_SECRET
                write_secret(secret_path, summary.webhook_secret)
                console.print(
                    f"demo webhook signing secret (also in {secret_path}): {summary.webhook_secret}"
                )
    finally:
        services.close()
    console.print(f"\ndashboard: {settings.base_url}/   (API docs: {settings.base_url}/docs)")
    console.print(f"logins (password '{demo_scenario.DEMO_PASSWORD}'):")
    for username, role, tenants in demo_scenario.DEMO_USERS:
        scope = ", ".join(tenants) if tenants else "all tenants"
        console.print(f"  {username:<9} {role:<10} {scope}")
    console.print(
        f"alert webhooks are logged to {Path(settings.data_dir) / WEBHOOK_LOG} "
        "by `driftwatch demo receiver`"
    )


class _Receiver(BaseHTTPRequestHandler):
    log_path: Path
    secret_path: Path | None = None

    def _verified(self, raw: bytes) -> bool | None:
        """The Standard Webhooks signature checked with the demo secret (None: no secret)."""
        from standardwebhooks import Webhook
        from standardwebhooks.webhooks import WebhookVerificationError

        if self.secret_path is None:
            return None
        try:
            secret = self.secret_path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            Webhook(secret).verify(raw, headers)
        except WebhookVerificationError:
            return False
        return True

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        entry = {
            "received_at": datetime.now(UTC).isoformat(),
            "path": self.path,
            "webhook_id": self.headers.get("webhook-id"),
            "signature": self.headers.get("webhook-signature"),
            "verified": self._verified(raw),
            "body": body,
        }
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        console.print(f"[dim]webhook[/] {self.address_string()} {format % args}")


def demo_receiver(
    data_dir: DataDir = None,
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1).")] = 8765,
) -> None:
    """Receive alert webhooks on 127.0.0.1 and append them to <data_dir>/demo-webhooks.jsonl."""
    settings = load_settings(data_dir=data_dir)
    path = Path(settings.data_dir) / WEBHOOK_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = type(
        "Receiver",
        (_Receiver,),
        {"log_path": path, "secret_path": Path(settings.data_dir) / WEBHOOK_SECRET},
    )
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:  # taken (often a receiver left running), or not ours to bind
        err.print(
            f"[red]error:[/] the demo receiver cannot listen on 127.0.0.1:{port} "
            f"({e.strerror or e}). Stop what holds it, or pick another port for both sides: "
            "`driftwatch demo receiver --port N` and `driftwatch demo build --force "
            "--webhook-port N` (with make: remove ./data, then `make demo DEMO_WEBHOOK_PORT=N`)"
        )
        raise typer.Exit(1) from None
    console.print(f"demo webhook receiver on http://127.0.0.1:{port}/hook, logging to {path}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
