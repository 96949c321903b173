"""The KPI checks' typed configs: what a KPI definition's ``checks:`` list holds.

Each config is parsed by its ``type`` key (:data:`CheckConfig`); what a check computes from
them is :mod:`monitor.kpis.checks`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AnomalyCheck",
    "BoundsCheck",
    "ChangeCheck",
    "CheckConfig",
    "Direction",
    "ShiftCheck",
    "TargetCheck",
]

Direction = Literal["higher", "lower"]


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = Field(None, description="Metric name of the check's result row.")

    @property
    def metric(self) -> str:
        return self.name or str(getattr(self, "type"))  # noqa: B009


class BoundsCheck(_Check):
    type: Literal["bounds"] = "bounds"
    lower: float | None = None
    upper: float | None = None
    severity: Literal["warn", "alert"] = "alert"

    @model_validator(mode="after")
    def _one_bound(self) -> BoundsCheck:
        if self.lower is None and self.upper is None:
            raise ValueError("bounds: give lower, upper or both")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"bounds: lower {self.lower} is above upper {self.upper}")
        return self


class ChangeCheck(_Check):
    type: Literal["change"] = "change"
    baseline_windows: int = Field(4, ge=1, le=104)
    max_change: float = Field(0.10, gt=0, description="Alert at this relative change (0.10).")
    warn_change: float | None = Field(None, gt=0)
    seasonal: bool = Field(False, description="Daily windows: compare with the same weekdays.")


class TargetCheck(_Check):
    type: Literal["target"] = "target"
    warn_below: float = Field(1.0, gt=0, description="Warn under this attainment (1.0 = 100 %).")
    alert_below: float = Field(0.9, gt=0, description="Alert under this attainment.")


class AnomalyCheck(_Check):
    type: Literal["anomaly"] = "anomaly"
    history: int = Field(8, ge=3, le=104, description="Past comparable windows used.")
    min_history: int = Field(6, ge=3)
    z_alert: float = Field(3.5, gt=0)
    z_warn: float | None = Field(None, gt=0)
    seasonal: Literal["auto", "weekday", "none"] = Field(
        "auto", description="auto: same weekday for daily windows, previous windows otherwise."
    )
    two_sided: bool = Field(False, description="Also flag moves in the good direction.")
    min_change: float = Field(
        0.0, ge=0, description="Also require this relative deviation from the median."
    )


class ShiftCheck(_Check):
    """A sustained move to a worse level, against the level before the change (see
    :mod:`monitor.kpis.shift`): stays ``alert`` until the KPI is back near that level, or
    meets its target, for ``recover_windows`` windows in a row."""

    type: Literal["shift"] = "shift"
    baseline_windows: int = Field(28, ge=3, le=366, description="Windows forming the baseline.")
    min_baseline: int = Field(7, ge=3, description="Fewer windows of baseline: no_data.")
    k: float = Field(0.75, gt=0, description="Allowance, in standard deviations per window.")
    h: float = Field(6.0, gt=0, description="CUSUM decision interval (standard deviations).")
    recover_windows: int = Field(3, ge=1, le=104, description="Windows back before it clears.")
    recover_z: float = Field(1.0, ge=0, description="'Back near the baseline': within this.")
    lookback: int = Field(
        150,
        ge=10,
        le=2000,
        description="Windows read before each one (episodes up to "
        "lookback - 2 x baseline_windows long keep their baseline).",
    )
    seasonal: Literal["auto", "none"] = Field(
        "auto", description="auto: hourly windows compare the same hour of earlier days."
    )
    severity: Literal["warn", "alert"] = "alert"

    @model_validator(mode="after")
    def _sizes(self) -> ShiftCheck:
        if self.min_baseline > self.baseline_windows:
            raise ValueError(
                f"shift: min_baseline {self.min_baseline} is above baseline_windows "
                f"{self.baseline_windows}"
            )
        if self.lookback <= 2 * self.baseline_windows:
            raise ValueError(
                f"shift: lookback {self.lookback} must exceed twice baseline_windows "
                f"({self.baseline_windows})"
            )
        return self

    def step(self, window: str) -> int:
        return 24 if self.seasonal == "auto" and window == "hour" else 1


CheckConfig = Annotated[
    BoundsCheck | ChangeCheck | TargetCheck | AnomalyCheck | ShiftCheck,
    Field(discriminator="type"),
]
