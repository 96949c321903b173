"""``storage.key_hash`` computes DuckDB's ``hash(tenant, key)`` in Python: it must equal the
running DuckDB's bit for bit (the idempotency index holds DuckDB's hashes), and a store must
notice when it does not and hash in SQL instead."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from storage import key_hash
from storage.logstore import LogStore
from storage.types import FeatureSpec, ModelSchema

SCHEMA = ModelSchema("binary", (FeatureSpec("x", "numeric"),))
ALPHABET = "abcXYZ019 -_'\"\t\\é日本🙂\x00"


def _duckdb_hashes(tenants: list[str], keys: list[str]) -> list[int]:
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT hash(t, k) FROM (SELECT unnest($1::VARCHAR[]) AS t, unnest($2::VARCHAR[]) AS k)",
            [tenants, keys],
        ).fetchall()
    finally:
        con.close()
    return [int(r[0]) for r in rows]


def test_python_hash_equals_duckdbs_on_random_text() -> None:
    rng = random.Random(17)
    tenants = ["".join(rng.choices(ALPHABET, k=rng.randrange(0, 30))) for _ in range(3000)]
    keys = ["".join(rng.choices(ALPHABET, k=rng.randrange(0, 90))) for _ in range(3000)]
    assert key_hash.hash_pairs(tenants, keys).tolist() == _duckdb_hashes(tenants, keys)


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 100, 700])
def test_numpy_and_python_forms_equal_duckdbs(n: int) -> None:
    """``hash_pairs`` hashes from ``VECTOR_PAIRS`` keys on with numpy, all at once: both
    forms must give DuckDB's hashes, at every size around the switch (keys of 0-90 bytes:
    every tail length, values longer than the others, empty ones)."""
    rng = random.Random(n)
    tenants = ["".join(rng.choices(ALPHABET, k=rng.randrange(0, 12))) for _ in range(n)]
    keys = ["".join(rng.choices(ALPHABET, k=rng.randrange(0, 90))) for _ in range(n)]
    expected = _duckdb_hashes(tenants, keys)
    assert key_hash._hash_pairs_numpy(tenants, keys).tolist() == expected
    assert key_hash._hash_pairs_python(tenants, keys).tolist() == expected
    assert key_hash.hash_pairs(tenants, keys).tolist() == expected
    assert key_hash._hash_pairs_numpy([""] * n, [""] * n).tolist() == _duckdb_hashes(
        [""] * n, [""] * n
    )


def test_probe_set_checks_the_numpy_form_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: a numpy form that differs (here: the lowest bit flipped) is refused even
    though the probe set is hashed right by the other form."""
    con = duckdb.connect()
    assert key_hash.matches_duckdb(con)
    real = key_hash._hash_keys

    def wrong(data: list[bytes]) -> np.ndarray:
        return np.asarray(real(data) ^ np.uint64(1), dtype=np.uint64)

    monkeypatch.setattr(key_hash, "_hash_keys", wrong)
    assert not key_hash.matches_duckdb(con)
    con.close()


def test_probe_set_accepts_this_duckdb_and_refuses_another_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    con = duckdb.connect()
    assert key_hash.matches_duckdb(con)
    monkeypatch.setattr(key_hash, "_SEED", key_hash._SEED + 1)  # a "new release" of the hash
    monkeypatch.setattr(key_hash, "_TENANT_PARTS", {})
    assert not key_hash.matches_duckdb(con)
    con.close()


def _batch(ids: list[str], tenant: str) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "request_id": ids,
            "ts": pa.array([datetime(2024, 5, 1, tzinfo=UTC)] * n, pa.timestamp("us", "UTC")),
            "tenant_id": [tenant] * n,
            "x": [1.0] * n,
            "prediction": pa.array([1] * n, pa.int32()),
        }
    )


@pytest.mark.parametrize("python_matches", [True, False])
def test_retries_are_duplicates_across_a_reopen_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_matches: bool
) -> None:
    """Rows stored with keys hashed in Python are duplicates for the index a reopened store
    builds by SQL; and when the Python hash does not match (a changed DuckDB), the store
    hashes in SQL and stays exact. Per tenant: the same id under another tenant is new."""
    if not python_matches:
        monkeypatch.setattr(key_hash, "_SEED", key_hash._SEED + 1)
        monkeypatch.setattr(key_hash, "_TENANT_PARTS", {})
    path = tmp_path / "k.duckdb"
    ids = [f"r-{i}-é" for i in range(12)]
    for group in (False, True):
        with LogStore(path, group_commit=group) as s:
            s.ensure_model("m", SCHEMA)
            first = s.append_inferences("m", _batch(ids[:6], "acme"))
            assert s._py_hash is python_matches
            again = s.append_inferences("m", _batch(ids, "acme"))
            other = s.append_inferences("m", _batch(ids[:3], "globex"))
            if not group:
                assert (first.accepted, again.accepted, again.duplicates) == (6, 6, 6)
                assert other.accepted == 3
            else:  # all stored by the first store
                assert (first.accepted, again.accepted, other.accepted) == (0, 0, 0)
            assert s.count_inferences("m") == 15
