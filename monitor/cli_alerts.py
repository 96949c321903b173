"""CLI for alerting: ``driftwatch alerts …``, ``driftwatch channels …``, ``driftwatch rules …``.

Every command works on the local metadata database (``--data-dir``; it does not open the DuckDB
file, so it works while ``driftwatch serve`` runs) or, with ``--url`` and ``--api-key``,
through a running server's API. ``cli.py`` adds them with ``app.add_typer(cli_alerts.cli)``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from alerts.channels import kinds as channel_kinds
from alerts.readable import fmt_time
from alerts.rules import RuleError, parse_duration
from monitor.alerting_backend import AlertingBackend, HttpAlerting, LocalAlerting
from monitor.cli_common import (
    ApiKey,
    DataDir,
    Url,
    check_response,
    open_metadata,
    parse_when,
    print_changes,
    settings_for,
)
from monitor.errors import DriftwatchError
from storage.types import leaf_diff

cli = typer.Typer(no_args_is_help=True)
alerts_app = typer.Typer(
    help="List, acknowledge and silence alerts; deliveries and dead letters.", no_args_is_help=True
)
channels_app = typer.Typer(
    help=f"Notification channels ({', '.join(channel_kinds())}).", no_args_is_help=True
)
rules_app = typer.Typer(help="Alert rules: list, apply from YAML, backtest.", no_args_is_help=True)
cli.add_typer(alerts_app, name="alerts")
cli.add_typer(channels_app, name="channels")
cli.add_typer(rules_app, name="rules")

out = Console()
err = Console(stderr=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
_MATCHER = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(=~|!~|!=|=)(.*)$")


class _Backend:
    """The alerting backend of a command: the server's API with ``--url``, else the local
    metadata database (``monitor.alerting_backend``). An error of the service ends the
    command with one line and exit code 1."""

    def __init__(self, url: str | None, api_key: str | None, data_dir: Path | None) -> None:
        self.client: httpx.Client | None = None
        self.meta: Any = None
        self.backend: AlertingBackend
        if url:
            headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
            from monitor import cli_common

            self.client = httpx.Client(
                base_url=url.rstrip("/") + "/api/v1",
                headers=headers,
                timeout=60,
                transport=cli_common.TRANSPORT,
            )
            self.backend = HttpAlerting(self.client, check_response)
        else:
            from monitor.alerting import AlertingRuntime

            settings = settings_for(data_dir)
            self.meta = open_metadata(settings)

            class _Svc:  # the runtime needs only settings and the metadata store
                pass

            svc = _Svc()
            svc.settings = settings  # type: ignore[attr-defined]
            svc.metadata = self.meta  # type: ignore[attr-defined]
            self.backend = LocalAlerting(AlertingRuntime(svc))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.meta is not None:
            self.meta.dispose()

    def __enter__(self) -> AlertingBackend:
        return self.backend

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        if isinstance(exc, DriftwatchError):
            err.print(f"[red]error:[/] {exc.message}")
            raise typer.Exit(1) from exc


def _table(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table(*columns)
    for row in rows:
        # Text, not markup: a summary such as "psi[discount_rate] of churn" must print as is
        # (rich took "[discount_rate]" for a style tag and dropped it).
        table.add_row(*[Text(_cell(row.get(c), _is_time(c))) for c in columns])
    out.print(table)


def _is_time(column: str) -> bool:
    return column == "since" or column.endswith("_at")


def _when(v: Any) -> str:
    """A time as people read it (``2026-11-25 00:00 UTC``, as every page shows it); --json
    keeps the API's ISO 8601."""
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v)
        except ValueError:
            return v
    return fmt_time(v) if isinstance(v, datetime) else _cell(v)


def _cell(v: Any, time: bool = False) -> str:
    if time and v is not None:
        return _when(v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items())
    return "" if v is None else str(v)


# ---------------------------------------------------------------------------- alerts
@alerts_app.command("list")
def alerts_list(
    state: Annotated[
        list[str] | None, typer.Option(help="pending, firing or resolved (repeatable).")
    ] = None,
    rule: Annotated[str | None, typer.Option(help="Rule name.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant id.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name.")] = None,
    limit: int = 100,
    as_json: AsJson = False,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """List alerts, newest first."""
    with _Backend(url, api_key, data_dir) as b:
        rows = b.list_alerts(state, rule, tenant, model, limit)
    for r in rows:
        r["summary"] = r.get("annotations", {}).get("summary", "")
        # since when: the start of the first breaching window (the API's "since")
        r.setdefault("since", r.get("starts_at") or r.get("active_at"))
    _table(
        rows,
        [
            "id",
            "state",
            "severity",
            "rule",
            "tenant_id",
            "model",
            "summary",
            "since",
            "acknowledged_by",
        ],
        as_json,
    )


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    actor: Annotated[str, typer.Option(help="Who acknowledges (local mode).")] = "cli",
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Acknowledge a firing alert."""
    with _Backend(url, api_key, data_dir) as b:
        a = b.acknowledge(alert_id, actor)
    out.print(
        f"alert {a['id']} acknowledged by {a['acknowledged_by']} at {_when(a['acknowledged_at'])}"
    )


@alerts_app.command("silence")
def alerts_silence(
    match: Annotated[
        list[str],
        typer.Option(
            "--match",
            "-m",
            help="Label matcher: name=value, name!=value, name=~regex, name!~regex (repeatable).",
        ),
    ],
    reason: Annotated[str, typer.Option(help="Why (shown with the silence).")],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 2h, 30m, 1d.")] = "2h",
    until: Annotated[str | None, typer.Option(help="End time (ISO); overrides --for.")] = None,
    actor: Annotated[str, typer.Option(help="Creator (local mode).")] = "cli",
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Silence notifications of alerts matching all matchers (evaluation goes on)."""
    matchers = []
    for m in match:
        hit = _MATCHER.match(m)
        if not hit:
            raise typer.BadParameter(
                f"matcher {m!r}: use name=value, name!=value, name=~re, name!~re"
            )
        matchers.append({"name": hit.group(1), "op": hit.group(2), "value": hit.group(3)})
    try:
        ends = parse_when(until) if until else datetime.now(UTC) + parse_duration(duration, "--for")
    except RuleError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with _Backend(url, api_key, data_dir) as b:
        s = b.silence(matchers, reason, ends, actor)
    out.print(f"silence {s['id']} until {_when(s['ends_at'])}")


@alerts_app.command("silences")
def alerts_silences(
    expired: Annotated[bool, typer.Option(help="Include expired silences.")] = False,
    as_json: AsJson = False,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """List silences with how many alerts each mutes now."""
    with _Backend(url, api_key, data_dir) as b:
        rows = b.silences(expired)
    for r in rows:
        r["matchers"] = " ".join(f"{m['name']}{m['op']}{m['value']}" for m in r["matchers"])
        r["muting"] = len(r["muting"])
    _table(rows, ["id", "active", "matchers", "reason", "created_by", "ends_at", "muting"], as_json)


@alerts_app.command("expire")
def alerts_expire(
    silence_id: Annotated[int, typer.Argument(help="Silence id.")],
    actor: Annotated[str, typer.Option(help="Who expires it (local mode).")] = "cli",
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Expire a silence now."""
    with _Backend(url, api_key, data_dir) as b:
        b.expire_silence(silence_id, actor)
    out.print(f"silence {silence_id} expired")


@alerts_app.command("deliveries")
def alerts_deliveries(
    status: Annotated[
        list[str] | None, typer.Option(help="pending, sending, delivered, dead, cancelled.")
    ] = None,
    as_json: AsJson = False,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Deliveries with their attempts (--status dead: the dead letters)."""
    with _Backend(url, api_key, data_dir) as b:
        rows = b.deliveries(status)
    for r in rows:
        r.pop("body", None)
    _table(
        rows,
        [
            "id",
            "channel_name",
            "event",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "webhook_id",
        ],
        as_json,
    )


@alerts_app.command("retry")
def alerts_retry(
    delivery_id: Annotated[int, typer.Argument(help="Delivery id (dead or cancelled).")],
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Send a dead-lettered delivery again (same webhook-id)."""
    with _Backend(url, api_key, data_dir) as b:
        b.retry_delivery(delivery_id, "cli")
    out.print(f"delivery {delivery_id} queued again")


# ---------------------------------------------------------------------------- channels
@channels_app.command("list")
def channels_list(
    as_json: AsJson = False, url: Url = None, api_key: ApiKey = None, data_dir: DataDir = None
) -> None:
    """Channels (no secrets are ever shown)."""
    with _Backend(url, api_key, data_dir) as b:
        rows = b.channels()
    _table(
        rows,
        ["id", "name", "kind", "url_hint", "enabled", "disabled_reason", "secret_count"],
        as_json,
    )


@channels_app.command("create")
def channels_create(
    name: Annotated[str, typer.Argument(help="Channel name (rules refer to it).")],
    kind: Annotated[str, typer.Option(help=", ".join(channel_kinds()) + ".")],
    channel_url: Annotated[str, typer.Option("--target", help="The URL notifications go to.")],
    routing_key: Annotated[str | None, typer.Option(help="PagerDuty routing key.")] = None,
    signing_secret: Annotated[
        str | None,
        typer.Option(
            help="Webhook signing secret (whsec_ + base64 of 24-64 bytes); generated if omitted."
        ),
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Create a channel; prints a webhook channel's signing secret once."""
    if signing_secret is not None:
        from alerts.signing import SigningSecretError, check_signing_secret

        try:
            check_signing_secret(signing_secret)
        except SigningSecretError as exc:
            raise typer.BadParameter(str(exc), param_hint="--signing-secret") from exc
    body = {"name": name, "kind": kind, "url": channel_url, "routing_key": routing_key}
    if signing_secret is not None:
        body["signing_secret"] = signing_secret
    with _Backend(url, api_key, data_dir) as b:
        rec, secret = b.create_channel(body, "cli")
    out.print(f"channel {rec['name']} ({rec['kind']}) created")
    if secret:
        out.print(f"signing secret (shown once): {secret}")


@channels_app.command("test")
def channels_test(
    name: Annotated[str, typer.Argument(help="Channel name.")],
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Queue a sample notification to a channel (the server's worker sends it)."""
    with _Backend(url, api_key, data_dir) as b:
        rows = b.test_channel(name)
    for d in rows:
        out.print(
            f"delivery {d['id']} queued (webhook-id {d['webhook_id']}); see `driftwatch alerts deliveries`"
        )


# ---------------------------------------------------------------------------- rules
@rules_app.command("list")
def rules_list(
    as_json: AsJson = False, url: Url = None, api_key: ApiKey = None, data_dir: DataDir = None
) -> None:
    """Alert rules."""
    with _Backend(url, api_key, data_dir) as b:
        rows = b.rules()
    for r in rows:
        spec = r.get("spec", {})
        r["severity"] = spec.get("severity")
        r["match"] = spec.get("match")
        r["channels"] = ",".join(spec.get("channels", []))
    _table(
        rows, ["name", "enabled", "version", "severity", "match", "channels", "updated_at"], as_json
    )


def load_rules(file: Path, *, only_section: bool = False) -> list[dict[str, Any]]:
    """Rule specs of a YAML file: its ``rules:`` section (the file ``driftwatch init``
    writes), or, unless ``only_section``, documents that are rules themselves."""
    specs: list[dict[str, Any]] = []
    for d in yaml.safe_load_all(file.read_text()):
        if isinstance(d, dict) and "rules" in d:
            specs.extend(d["rules"] or [])
        elif d and not only_section and isinstance(d, dict) and "monitors" not in d:
            specs.append(d)
    return specs


def apply_rules_section(
    file: Path,
    dry_run: bool = False,
    url: str | None = None,
    api_key: str | None = None,
    data_dir: Path | None = None,
    *,
    only_section: bool = True,
) -> None:
    """Create or replace the rules of a file by name, printing create/update/unchanged
    (``driftwatch apply`` can call this for the file's ``rules:`` section)."""
    from alerts.rules import Rule

    specs = load_rules(file, only_section=only_section)
    if not specs:
        return
    try:
        parsed = [Rule.from_dict(spec) for spec in specs]
    except RuleError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    changes = []
    with _Backend(url, api_key, data_dir) as b:
        for spec, rule in zip(specs, parsed, strict=True):
            current = b.rule_spec(rule.name)
            if current is not None and "channels" not in spec:
                # a file without `channels:` (what `init` writes) leaves a rule's routing as
                # it is: replacing it with none would silence a rule someone had wired to
                # on-call. `channels: []` removes them on purpose.
                spec = {**spec, "channels": list(current.get("channels") or [])}
                rule = Rule.from_dict(spec)
            # compared in the stored form (defaults filled in), so a file that spells out a
            # default is unchanged
            wanted = rule.to_dict()
            diff = wanted if current is None else leaf_diff(current, wanted)
            action = "create" if current is None else "update" if diff else "unchanged"
            if action != "unchanged" and not dry_run:
                b.put_rule(spec, "cli")
            changes.append({"name": rule.name, "action": action, "diff": diff})
    print_changes(out, "rule", changes, dry_run)


@rules_app.command("apply")
def rules_apply(
    file: Annotated[
        Path,
        typer.Option("-f", "--file", help="YAML with a `rules:` list (or one rule per document)."),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the changes.")] = False,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Create or replace the rules of a YAML file (the `rules:` section of `driftwatch init`)."""
    apply_rules_section(file, dry_run, url, api_key, data_dir, only_section=False)


@rules_app.command("backtest")
def rules_backtest(
    rule: Annotated[str, typer.Argument(help="Rule name.")],
    start: Annotated[str, typer.Option("--from", help="Start (ISO date or datetime, UTC).")],
    end: Annotated[str | None, typer.Option("--to", help="End (default: now).")] = None,
    as_json: AsJson = False,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Replay a rule over stored results: the alerts it would have fired. Notifies nobody."""
    t0 = parse_when(start)
    t1 = parse_when(end) if end else datetime.now(UTC) + timedelta(seconds=1)
    with _Backend(url, api_key, data_dir) as b:
        report = b.backtest(rule, t0, t1)
    if as_json:
        out.print_json(json.dumps(report))
        return
    out.print(
        f"rule {report['rule']}: {report['results_matched']} of {report['results_seen']} results "
        f"matched over {report['windows']} windows → {report['fired']} alerts would have fired"
    )
    rows = [
        {
            **e,
            "labels": {
                k: v for k, v in e["labels"].items() if k in ("tenant", "model", "metric", "column")
            },
        }
        for e in report["episodes"]
    ]
    _table(rows, ["fired_at", "resolved_at", "windows_firing", "peak_value", "labels"], False)
