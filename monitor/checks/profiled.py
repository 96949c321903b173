"""Profile-based kinds (drift, data quality): a window's hourly profiles summed per segment and
converted onto the reference's bins, next to the reference profiles they are compared with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from detectors.profiles import ColumnProfile, ReferenceBins, profile_from_summary
from monitor.checks.base import CheckContext, CheckEnv
from monitor.checks.caches import Reference
from monitor.monitors import MonitorConfig, monitored_columns
from storage.metadata.monitoring import MonitorRecord
from storage.profiles import ROWS_COLUMN, ProfileSpec, RawProfile, edges_key
from storage.types import ALL, ModelSchema

__all__ = [
    "ProfiledWindow",
    "SegmentProfiles",
    "Segments",
    "column_profile",
    "profile_spec",
    "profile_window",
    "subtract",
]

Segment = tuple[str, str]
Segments = dict[Segment, dict[tuple[str, str], RawProfile]]


def column_profile(raw: RawProfile | None, bins: ReferenceBins) -> ColumnProfile:
    """A stored summary as the detectors' profile on ``bins`` (none: the empty profile)."""
    if raw is None:
        return profile_from_summary(bins)
    return profile_from_summary(
        bins,
        count=raw.count,
        missing=raw.missing,
        n_finite=raw.n_finite,
        min=raw.min,
        max=raw.max,
        sum=raw.sum,
        sum_sq=raw.sum_sq,
        counts=raw.counts,
        categories=raw.categories,
    )


def subtract(total: RawProfile, part: RawProfile) -> RawProfile:
    counts = None
    if total.counts is not None and part.counts is not None:
        counts = total.counts - part.counts
    cats = None
    if total.categories is not None:
        cats = {k: v - (part.categories or {}).get(k, 0) for k, v in total.categories.items()}
        cats = {k: v for k, v in cats.items() if v > 0}
    # min/max of the rest are unknown from sums; they are not used by distances
    return RawProfile(
        total.count - part.count,
        total.missing - part.missing,
        total.n_finite - part.n_finite,
        total.min,
        total.max,
        total.sum - part.sum,
        total.sum_sq - part.sum_sq,
        counts,
        cats,
    )


def segments(window: Segments, cfg: MonitorConfig) -> Segments:
    """(tenant or "*", version or "*") -> summed profiles."""
    out: Segments = {}

    def add(seg: Segment, cols: dict[tuple[str, str], RawProfile]) -> None:
        target = out.setdefault(seg, {})
        for k, p in cols.items():
            target[k] = target[k] + p if k in target else p

    versions = {v for _, v in window}
    for (tenant, version), cols in window.items():
        if "all" in cfg.segments:
            add((ALL, ALL), cols)
            if cfg.by_version and len(versions) > 1:
                add((ALL, version or ""), cols)
        if "tenant" in cfg.segments:
            add((tenant, ALL), cols)
    return out


def profile_spec(
    env: CheckEnv, record: MonitorRecord, cfg: MonitorConfig, schema: ModelSchema
) -> ProfileSpec:
    """The monitored columns, numeric ones on the reference's bin edges."""
    cols = monitored_columns(cfg, schema)
    ref = env.caches.reference(env.logs, record.model, cfg, schema)
    numeric: dict[str, tuple[tuple[float, ...], ...]] = {
        c: (ref.bins[c].edges,) for c, k in cols.items() if k == "numeric" and c in ref.bins
    }
    return ProfileSpec(numeric, tuple(c for c, k in cols.items() if k == "categorical"))


@dataclass
class SegmentProfiles:
    segment: Segment
    reference: dict[str, ColumnProfile]
    current: dict[str, ColumnProfile]
    rows: RawProfile | None


@dataclass
class ProfiledWindow:
    """A window's profiles: ``segments`` sorted (all tenants alone when the window is empty),
    ``raw`` the summed stored profiles the segments came from (``current`` without the
    empty-window placeholder), and the raw rows ``scanned`` to bring the hours up to date."""

    reference: Reference
    segments: list[SegmentProfiles]
    raw: Segments
    current: Segments
    scanned: int


def profile_window(ctx: CheckContext) -> ProfiledWindow:
    cfg, model, ws, we = ctx.cfg, ctx.model, ctx.start, ctx.end
    profiles = ctx.env.profiles
    cols = monitored_columns(cfg, ctx.schema)
    ref = ctx.env.caches.reference(ctx.env.logs, model, cfg, ctx.schema)
    profiles.register(model, profile_spec(ctx.env, ctx.record, cfg, ctx.schema))
    scanned: int = profiles.ensure(model, ws, we)
    wanted = [
        (c, edges_key(ref.bins[c].edges) if cols[c] == "numeric" else "")
        for c in cols
        if c in ref.bins
    ]
    current = segments(profiles.window(model, ws, we, wanted), cfg)
    by_segment: dict[Segment, dict[str, ColumnProfile]] | None = None
    if cfg.reference is not None and cfg.reference.previous_days:
        rs = ws - timedelta(days=cfg.reference.previous_days)
        scanned += profiles.ensure(model, rs, ws)
        prev = segments(profiles.window(model, rs, ws, wanted), cfg)
        by_segment = {
            seg: {c: column_profile(p.get((c, k)), ref.bins[c]) for c, k in wanted}
            for seg, p in prev.items()
        }
    segs = current or {(ALL, ALL): {}}
    out = []
    for seg in sorted(segs):
        raw = segs[seg]
        cur = {c: column_profile(raw.get((c, k)), ref.bins[c]) for c, k in wanted}
        if by_segment is not None:
            refp = by_segment.get(seg) or by_segment.get((ALL, ALL), {})
        else:
            refp = {c: ref.profiles[c] for c, _ in wanted if c in ref.profiles}
        if not refp:
            refp = {c: column_profile(None, ref.bins[c]) for c, _ in wanted}
        out.append(SegmentProfiles(seg, refp, cur, raw.get((ROWS_COLUMN, ""))))
    return ProfiledWindow(ref, out, segs, current, scanned)
