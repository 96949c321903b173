"""``JobStore``: background jobs (backfills, KPI computes) with their state and progress.

States: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``; a job still queued or
running when its process stopped is ``interrupted`` (set at the next start). Progress is
``done`` of ``total`` steps (windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from storage.metadata.errors import NotFound
from storage.metadata.models_jobs import JOB_STATES, JobRow
from storage.metadata.store import MetadataStore

__all__ = ["FINISHED", "JOB_STATES", "JobRecord", "JobStore"]

FINISHED = ("done", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class JobRecord:
    id: int
    kind: str
    target: str
    params: dict[str, Any]
    state: str
    done: int
    total: int
    result: dict[str, Any] | None
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _job(row: JobRow) -> JobRecord:
    return JobRecord(
        id=row.id,
        kind=row.kind,
        target=row.target,
        params=dict(row.params or {}),
        state=row.state,
        done=row.done,
        total=row.total,
        result=None if row.result is None else dict(row.result),
        error=row.error,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


class JobStore:
    """Jobs in the metadata database (shares the store's engine, clock and audit log)."""

    def __init__(self, metadata: MetadataStore) -> None:
        self._m = metadata

    def create(
        self, kind: str, target: str, params: dict[str, Any], total: int, actor: str
    ) -> JobRecord:
        with self._m.writing() as s:
            row = JobRow(
                kind=kind,
                target=target,
                params=params,
                state="queued",
                done=0,
                total=total,
                result=None,
                error=None,
                created_by=actor,
                created_at=self._m.now(),
                started_at=None,
                finished_at=None,
            )
            s.add(row)
            s.flush()
            self._m.record_audit(
                s, actor, "job.create", "job", str(row.id), {"kind": kind, **params}
            )
            return _job(row)

    def get(self, job_id: int) -> JobRecord | None:
        with self._m.reading() as s:
            row = s.get(JobRow, int(job_id))
            return None if row is None else _job(row)

    def list(self, limit: int = 100, state: str | None = None) -> list[JobRecord]:
        stmt = select(JobRow).order_by(JobRow.id.desc()).limit(limit)
        if state is not None:
            stmt = stmt.where(JobRow.state == state)
        with self._m.reading() as s:
            return [_job(r) for r in s.scalars(stmt)]

    def start(self, job_id: int) -> bool:
        """queued → running; False when the job is no longer queued (cancelled meanwhile)."""
        with self._m.writing() as s:
            row = self._row(s, job_id)
            if row.state != "queued":
                return False
            row.state = "running"
            row.started_at = self._m.now()
            return True

    def progress(self, job_id: int, done: int, total: int | None = None) -> None:
        with self._m.writing() as s:
            values: dict[str, Any] = {"done": done}
            if total is not None:
                values["total"] = total
            s.execute(update(JobRow).where(JobRow.id == job_id).values(**values))

    def finish(
        self,
        job_id: int,
        state: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        actor: str = "system",
        only_from: tuple[str, ...] = ("queued", "running"),
    ) -> JobRecord:
        """End a job in ``state`` if it is in one of ``only_from`` (else unchanged)."""
        if state not in FINISHED:
            raise ValueError(f"state {state!r} is not one of {FINISHED}")
        with self._m.writing() as s:
            row = self._row(s, job_id)
            if row.state in only_from:
                row.state = state
                row.result = result
                row.error = error
                row.finished_at = self._m.now()
                if state == "cancelled":
                    self._m.record_audit(s, actor, "job.cancel", "job", str(job_id))
            return _job(row)

    def interrupt_unfinished(self) -> int:
        """Mark jobs left queued or running by a stopped process ``interrupted``."""
        with self._m.writing() as s:
            result = s.execute(
                update(JobRow)
                .where(JobRow.state.in_(("queued", "running")))
                .values(
                    state="interrupted",
                    finished_at=self._m.now(),
                    error="the server stopped before the job finished; start it again",
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    @staticmethod
    def _row(s: Any, job_id: int) -> JobRow:
        row: JobRow | None = s.get(JobRow, int(job_id))
        if row is None:
            raise NotFound(f"job {job_id} not found")
        return row


assert set(FINISHED) < set(JOB_STATES)
