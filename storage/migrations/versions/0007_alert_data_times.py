"""Alerts: ``starts_at``/``ends_at`` become data times; ``fired_at``/``resolved_at`` keep
Driftwatch's wall clock.

Before, ``starts_at`` was when Driftwatch fired the alert and ``ends_at`` when it resolved it
(wall clock), so an alert born during a backfill said it started when the backfill ran. Now
``starts_at`` is the start of the first breaching window (``active_at``) once the alert fires
and ``ends_at`` the start of the window that resolved it; the old wall-clock values move to the
new ``fired_at``/``resolved_at`` columns. Stored ``ends_at`` values are kept as they were: the
window that resolved an old alert is not recorded (they differ by the monitor's lateness for
alerts resolved by live runs).

Groups' notification logs (``notified_firing``/``notified_resolved``) named fingerprints; they
now name alert instance ids, so an alert that resolves and breaches again between two flushes
is announced as the new instance it is. Each logged fingerprint becomes the id of its newest
instance in that group.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_alerts = sa.table(
    "alerts",
    sa.column("id", sa.Integer()),
    sa.column("fingerprint", sa.String()),
    sa.column("group_key", sa.String()),
)
_groups = sa.table(
    "alert_groups",
    sa.column("id", sa.Integer()),
    sa.column("group_key", sa.String()),
    sa.column("notified_firing", sa.JSON()),
    sa.column("notified_resolved", sa.JSON()),
)


def _convert_logs(to_ids: bool) -> None:
    """Rewrite the groups' logs: fingerprints → newest instance ids, or back."""
    bind = op.get_bind()
    newest: dict[tuple[str, str], int] = {}
    fp_of: dict[int, str] = {}
    for alert_id, fp, key in bind.execute(
        sa.select(_alerts.c.id, _alerts.c.fingerprint, _alerts.c.group_key)
    ):
        fp_of[alert_id] = fp
        if alert_id > newest.get((key, fp), -1):
            newest[(key, fp)] = alert_id

    def convert(key: str, entries: list[str] | None) -> list[str]:
        out = []
        for e in entries or []:
            if to_ids:
                found = newest.get((key, e))
                out.append(str(found) if found is not None else e)
            else:
                out.append(fp_of.get(int(e), e) if e.isdigit() else e)
        return out

    rows = bind.execute(
        sa.select(
            _groups.c.id,
            _groups.c.group_key,
            _groups.c.notified_firing,
            _groups.c.notified_resolved,
        )
    ).all()
    for gid, key, firing, resolved in rows:
        bind.execute(
            _groups.update()
            .where(_groups.c.id == gid)
            .values(notified_firing=convert(key, firing), notified_resolved=convert(key, resolved))
        )


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE alerts SET fired_at = starts_at, resolved_at = ends_at, "
        "starts_at = CASE WHEN starts_at IS NULL THEN NULL ELSE active_at END"
    )
    _convert_logs(to_ids=True)


def downgrade() -> None:
    _convert_logs(to_ids=False)
    op.execute(
        "UPDATE alerts SET starts_at = fired_at, "
        "ends_at = CASE WHEN resolved_at IS NULL THEN ends_at ELSE resolved_at END"
    )
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("resolved_at")
        batch.drop_column("fired_at")
