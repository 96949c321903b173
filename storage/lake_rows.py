"""A lake-fed model's pushed samples and label aggregates (``storage.row_kernel``) in the
embedded store: written with the day's profiles in one transaction, read per window.

``lake_samples__<model>`` holds the bottom-k sample rows (the base columns of
:data:`storage.row_kernel.SAMPLE_BASE` and the sampled columns, typed as pushed; a column a later
spec samples is added); ``profile_lake_labels`` the label aggregates of every lake-fed model.
Both are created by the first push that has such rows, so a store that never sees one is
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from storage import tables
from storage.row_kernel import LABEL_SCHEMA, SAMPLE_BASE
from storage.tables import quote
from storage.types import as_utc

__all__ = ["check_rows", "read_labels", "read_sample", "write_rows"]


def check_rows(samples: pa.Table, labels: pa.Table, start: datetime, end: datetime) -> pa.Table:
    """Validate pushed rows (``ValueError`` names the problem); the label rows cast."""
    missing = [f.name for f in SAMPLE_BASE if f.name not in samples.schema.names]
    if samples.num_rows and missing:
        raise ValueError(f"sample rows: columns {missing} are missing")
    missing = [f.name for f in LABEL_SCHEMA if f.name not in labels.schema.names]
    if labels.num_rows and missing:
        raise ValueError(f"label aggregate rows: columns {missing} are missing")
    try:
        labels = labels.select(LABEL_SCHEMA.names).cast(LABEL_SCHEMA) if labels.num_rows else labels
        for what, table in (("sample rows", samples), ("label aggregate rows", labels)):
            if table.num_rows == 0:
                continue
            hours = table.column("hour").cast(SAMPLE_BASE.field("hour").type)
            lo, hi = (v.as_py() for v in pc.min_max(hours).values())
            if lo is None or lo < start or hi >= end:
                raise ValueError(f"{what}: hours {lo} .. {hi} are not all in [{start}, {end})")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ValueError(f"label aggregate rows: {exc}") from exc
    return labels


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return bool(row[0][0])


def write_rows(
    con: duckdb.DuckDBPyConnection,
    model: str,
    start: datetime,
    end: datetime,
    samples: pa.Table,
    labels: pa.Table,
    sample_k: int,
) -> None:
    """Replace the rows of ``[start, end)`` (inside the caller's transaction); every sample
    row records the ``sample_k`` it was kept under (a window's sample of n rows needs n <= k)."""
    stable = tables.lake_samples(model)
    if _exists(con, stable):
        con.execute(
            f"DELETE FROM {quote(stable)} WHERE hour >= ? AND hour < ?", [start, end]
        ).fetchall()
    if samples.num_rows:
        if sample_k < 1:
            raise ValueError("sample rows pushed without the spec's sample k")
        samples = samples.append_column(
            "sample_k", pa.array([sample_k] * samples.num_rows, pa.int64())
        )
        con.register("__dw_samp", samples)
        try:
            if not _exists(con, stable):
                con.execute(
                    f"CREATE TABLE {quote(stable)} AS SELECT * FROM __dw_samp LIMIT 0"
                ).fetchall()
            have = {r[0] for r in con.execute(f"DESCRIBE {quote(stable)}").fetchall()}
            for name, typ, *_ in con.execute("DESCRIBE SELECT * FROM __dw_samp").fetchall():
                if name not in have:  # a column a newer spec samples
                    con.execute(
                        f"ALTER TABLE {quote(stable)} ADD COLUMN {quote(name)} {typ}"
                    ).fetchall()
            con.execute(f"INSERT INTO {quote(stable)} BY NAME SELECT * FROM __dw_samp").fetchall()
        finally:
            con.unregister("__dw_samp")
    ltable = tables.PROFILE_LAKE_LABELS
    if labels.num_rows and not _exists(con, ltable):
        con.execute(
            f"CREATE TABLE {ltable} (model VARCHAR NOT NULL, hour TIMESTAMPTZ NOT NULL, "
            "tenant_id VARCHAR NOT NULL, model_version VARCHAR NOT NULL, name VARCHAR NOT NULL, "
            "n BIGINT NOT NULL, value DOUBLE NOT NULL)"
        ).fetchall()
    if _exists(con, ltable):
        con.execute(
            f"DELETE FROM {ltable} WHERE model = ? AND hour >= ? AND hour < ?", [model, start, end]
        ).fetchall()
    if labels.num_rows:
        con.register("__dw_lab", labels)
        try:
            con.execute(
                f"INSERT INTO {ltable} SELECT ?, hour, tenant_id, model_version, name, n, value "
                "FROM __dw_lab",
                [model],
            ).fetchall()
        finally:
            con.unregister("__dw_lab")


def read_sample(
    cur: duckdb.DuckDBPyConnection,
    model: str,
    start: datetime,
    end: datetime,
    columns: Sequence[str],
    n: int,
    tenant_id: str | None = None,
) -> pa.Table:
    """The window's sample: the ``n`` stored rows of its hours with the smallest (sample_key,
    request_id), as ``storage.log_reads.LogReads.sample`` orders the embedded rows. Raises
    ``LookupError`` naming a column no push sampled."""
    stable = tables.lake_samples(model)
    if not _exists(cur, stable):
        raise LookupError(
            f"lake-fed model {model!r}: no sample rows were pushed yet (run `driftwatch "
            "profile` with a spec that samples; docs/scale-out.md)"
        )
    have = {r[0] for r in cur.execute(f"DESCRIBE {quote(stable)}").fetchall()}
    lacking = [c for c in columns if c not in have]
    if lacking:
        raise LookupError(
            f"lake-fed model {model!r}: the pushed samples lack the columns {lacking} (the lake "
            "job samples the columns of the spec it read; run it again)"
        )
    cols = ", ".join(["tenant_id", "model_version", *(quote(c) for c in columns)])
    where = "hour >= ? AND hour < ? AND ts >= ? AND ts < ?"
    params: list[object] = [as_utc(start), as_utc(end), as_utc(start), as_utc(end)]
    if tenant_id is not None:
        where += " AND tenant_id = ?"
        params.append(tenant_id)
    k = cur.execute(f"SELECT min(sample_k) FROM {quote(stable)} WHERE {where}", params).fetchall()
    if k[0][0] is not None and n > int(k[0][0]):
        raise LookupError(
            f"lake-fed model {model!r}: a sample of {n} rows was asked for, the lake job keeps "
            f"{int(k[0][0])} per hour and segment (the largest sample_size of the model's "
            "monitors; a relative reference's 200,000-row sample is not kept: upload a "
            "reference dataset)"
        )
    out: pa.Table = cur.sql(
        f"SELECT {cols} FROM {quote(stable)} WHERE {where} ORDER BY sample_key, request_id "
        f"LIMIT {int(n)}",
        params=params,
    ).to_arrow_table()
    return out


def read_labels(
    cur: duckdb.DuckDBPyConnection, model: str, start: datetime, end: datetime
) -> pa.Table:
    """The label aggregates of the hours in ``[start, end)`` (:data:`LABEL_SCHEMA`)."""
    if not _exists(cur, tables.PROFILE_LAKE_LABELS):
        return LABEL_SCHEMA.empty_table()
    out: pa.Table = cur.sql(
        f"SELECT hour, tenant_id, model_version, name, n, value FROM "
        f"{tables.PROFILE_LAKE_LABELS} WHERE model = ? AND hour >= ? AND hour < ?",
        params=[model, as_utc(start), as_utc(end)],
    ).to_arrow_table()
    return out.cast(LABEL_SCHEMA)
