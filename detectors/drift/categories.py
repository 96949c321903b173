"""Share of current values in categories the reference never showed."""

from __future__ import annotations

from detectors.drift.registry import Score, register
from detectors.profiles import ColumnProfile


@register(
    "new_category_share",
    display_name="New-category share",
    kinds=("categorical",),
    score="distance",
    default_threshold=0.01,
    description=(
        "Share of current values outside the reference vocabulary (the 'other' bucket); drift "
        "when it exceeds the reference's own 'other' share (non-zero only past the vocabulary "
        "cap) by more than the threshold. Details name the most frequent new values."
    ),
)
def new_category_share(ref: ColumnProfile, cur: ColumnProfile) -> Score:
    n_cur = int(cur.counts.sum())
    n_ref = int(ref.counts.sum())
    share = float(cur.counts[-1]) / n_cur
    ref_share = float(ref.counts[-1]) / n_ref
    return Score(
        max(share - ref_share, 0.0),
        None,
        {
            "current_share": share,
            "reference_share": ref_share,
            "new_categories": [[name, count] for name, count in cur.unseen],
        },
    )
