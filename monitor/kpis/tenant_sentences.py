"""A tenant's sentence on the executive pages: its worst KPI in plain words, or, with no KPI
at risk, what is still worth a look (split from :mod:`monitor.kpis.headline`)."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.readable import fmt_change
from monitor.kpis.headline import TONE_RANK, Headline, fmt_day, fmt_value


def calm_sentence(tenant_id: str, items: Sequence[Headline]) -> str:
    """The sentence of a tenant with no KPI at risk. "Every KPI on target" only when every
    KPI is green and has a target ("2 of 2 KPIs with targets on target ...; retention value
    has no target" when one has none); a KPI worse than before or below zero (grey) is named, so the sentence does
    not call a tenant that is losing money fine: "acme: no KPI off target or outside its
    usual range; worse than before: conversion rate; below zero: retention value (−36.4 EUR)."
    """
    if all(h.tone in ("good", "none") for h in items):
        untargeted = [h for h in items if h.target is None]
        unvalued = [h for h in items if h.level is None and h.target is not None]
        if not untargeted and not unvalued:
            return f"{tenant_id}: every KPI on target and within its usual range."
        # "on target" only of the KPIs that have one: acme's retention value has none
        judged = [h for h in items if h.target is not None and h.level is not None]
        if judged:
            n = len(judged)
            kpis = "KPIs with targets" if n > 1 else "KPI with a target"
            text = f"{tenant_id}: {n} of {n} {kpis} on target"
        else:
            text = f"{tenant_id}: no KPI with a target to be on"
        text += ", none outside its usual range"
        if untargeted:
            names = ", ".join(h.title for h in untargeted)
            text += f"; {names} {'has' if len(untargeted) == 1 else 'have'} no target"
        if unvalued:
            names = ", ".join(h.title for h in unvalued)
            text += f"; {names} {'has' if len(unvalued) == 1 else 'have'} no value yet"
        return text + "."
    text = f"{tenant_id}: no KPI off target or outside its usual range"
    below = [h for h in items if h.negative and h.level is not None and h.level < 0]
    worse = [h for h in items if h.tone == "neutral" and h.worse and h not in below]
    if worse:
        text += "; worse than before: " + ", ".join(h.title for h in worse)
    if below:
        text += "; below zero: " + ", ".join(
            f"{h.title} ({fmt_value(h.level, h.unit)})" for h in below
        )
    # grey only for having no target (not worse, not below zero): named, so the grey card
    # has its reason in the banner too
    untargeted = [h for h in items if h.tone == "neutral" and h.target is None]
    untargeted = [h for h in untargeted if h not in below and h not in worse]
    if untargeted:
        names = ", ".join(h.title for h in untargeted)
        text += f"; no target: {names}"
    return text + "."


def tenant_sentence(tenant_id: str, items: Sequence[Headline], related: str | None = None) -> str:
    """One plain sentence about a tenant's worst KPI (and how many others are off), e.g.
    "globex: conversion rate 22.1 % against a 25 % target, down from 32.5 % since 13 Nov;
    likely related: the churn model's inputs changed on 12 Nov (discount_rate). The alert on
    it is open since 16 Nov." """
    risky = sorted((h for h in items if h.at_risk), key=lambda h: (-TONE_RANK[h.tone], h.kpi))
    if not risky:
        return calm_sentence(tenant_id, items)
    h = risky[0]
    parts = [f"{tenant_id}: {h.title} {fmt_value(h.level, h.unit)}"]
    if h.target is not None:
        parts.append(f" against a {fmt_value(h.target, h.unit)} target")
    if h.since is not None and h.before is not None and h.worse:
        way = "down" if h.direction == "higher" else "up"
        parts.append(
            f", {way} from {fmt_value(h.before, h.unit)} since {fmt_day(h.since, h.window)}"
        )
    elif h.change_abs is not None and h.before is not None and h.change_abs != 0:
        way = "down" if h.change_abs < 0 else "up"
        size = fmt_change(h.change_abs, h.before, h.unit, signed=False)
        parts.append(f", {way} {size} on {h.before_label}")
    text = "".join(parts)
    if related:
        text += f"; likely related: {related}"
    text += "."
    if h.negative and h.level is not None and h.level < 0:
        text += f" {h.negative}"
    if h.alert_since is not None:
        text += f" The alert on it is open since {fmt_day(h.alert_since, h.window)}."
    others = len(risky) - 1
    if others:
        text += f" {others} more KPI{'s' if others > 1 else ''} of {tenant_id} need a look."
    return text
