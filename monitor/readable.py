"""What people read (times, KPI values), for the dashboard: :mod:`alerts.readable` formats
them once for pages, notification texts and CLI tables; the dashboard imports ``monitor`` only
(docs/architecture.md)."""

from __future__ import annotations

from alerts.readable import MINUS, fmt_change, fmt_pct, fmt_signed, fmt_time, fmt_value

__all__ = ["MINUS", "fmt_change", "fmt_pct", "fmt_signed", "fmt_time", "fmt_value"]
