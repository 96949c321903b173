"""Evidently HTML drift reports of one window against its reference, on a bounded sample.

Evidently is heavy: it is imported lazily here and nowhere else in ``monitor``. The report is
built from stored rows (the reference set and the window's inference logs), capped at
``max_rows`` each, so its cost does not grow with traffic.
"""

from __future__ import annotations

from datetime import datetime

from monitor.service import Services

MAX_ROWS = 5000


def window_report_html(
    services: Services,
    model: str,
    start: datetime,
    end: datetime,
    tenant_id: str | None = None,
    reference: str | None = None,
    columns: list[str] | None = None,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> str:
    """The Evidently Data Drift report (HTML) of ``[start, end)`` vs the model's reference.

    Raises
    ------
    LookupError
        Unknown model, no reference set, or no logged rows in the window.
    """
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    info = services.metadata.get_model(model)
    if info is None:
        raise LookupError(f"model {model!r} not found")
    refs = services.logstore.list_references(model)
    if not refs:
        raise LookupError(f"model {model!r} has no reference set: upload one first")
    name = reference or refs[0][0]
    cols = columns or [f.name for f in info.schema.features]
    ref = services.logstore.read_reference(model, name).to_pandas()
    cur = services.logstore.read_inferences(
        model, start, end, tenant_id=tenant_id, columns=cols
    ).to_pandas()
    if cur.empty:
        raise LookupError(
            f"no {model} rows between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}"
        )
    keep = [c for c in cols if c in ref.columns and c in cur.columns]
    ref, cur = ref[keep], cur[keep]
    if len(ref) > max_rows:
        ref = ref.sample(max_rows, random_state=seed)
    if len(cur) > max_rows:
        cur = cur.sample(max_rows, random_state=seed)
    snapshot = Report([DataDriftPreset()]).run(
        reference_data=pd.DataFrame(ref).reset_index(drop=True),
        current_data=pd.DataFrame(cur).reset_index(drop=True),
    )
    return str(snapshot.get_html_str(as_iframe=False))
