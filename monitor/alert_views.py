"""Alerting records as JSON-ready values: what the API answers and the CLI prints (one shape)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

__all__ = ["jsonable", "silence_view"]


def jsonable(obj: Any) -> Any:
    """``obj`` with every datetime as ISO 8601 text, dicts and sequences walked."""
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def silence_view(view: Any, base_url: str) -> dict[str, Any]:
    """A silence with whether it is active and the alerts it mutes now (with their links)."""
    out = jsonable(asdict(view.silence))
    out["active"] = view.active
    out["muting"] = [
        {
            "id": a.id,
            "fingerprint": a.fingerprint,
            "labels": a.labels,
            "link": f"{base_url}/alerts/{a.id}",
        }
        for a in view.muting
    ]
    return out
