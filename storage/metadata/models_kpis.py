"""ORM table of tenant KPI definitions (migration ``0004``).

Same ``Base`` as ``models.py``. Rows never leave ``storage.metadata``: ``kpis.KpiStore``
converts them to :class:`storage.types.KpiRecord`. KPI values are metric results
(``source = "kpi"``) in the monitoring tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.metadata.base import DefinitionColumns


class KpiRow(DefinitionColumns):
    __tablename__ = "kpis"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    # The validated definition (``monitor.kpis.KpiDefinition.to_spec()``) as JSON.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
