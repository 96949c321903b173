"""DuckDB's ``hash(tenant, key)`` of two VARCHARs, computed in Python for small batches.

The log store's idempotency index (``storage.logstore._KeyIndex``) holds DuckDB's
``hash(coalesce(tenant, ''), key)`` of every stored row, built by one SQL scan per process. A
small ingest group used to ask DuckDB for its keys' hashes too: one statement, about 1-1.5 ms
of CPU and wall whatever the group's size, most of a 1-row request's planning. The function
is small (DuckDB's ``HashBytes`` over 8-byte little-endian words, a murmur finaliser, and
``CombineHash`` for the second argument), so here it is in Python, a few microseconds a key.

It must equal DuckDB's bit for bit, or a retry would be taken for a new row and stored twice.
DuckDB may change its hash in any release, so :func:`matches_duckdb` checks this function
against the running DuckDB on a probe set (every length from 0 to 40 bytes, so each tail
length and block count; multi-byte UTF-8; several tenants) and the store uses it only when
they agree, else it keeps asking DuckDB. ``tests/storage/test_key_hash.py`` compares both on
random text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["PROBES", "hash_pairs", "matches_duckdb"]

_MASK = (1 << 64) - 1
_MUL = 0xD6E8FEB86659FD93
_SEED = 0xE17A1465
_LEN_MUL = 0xC6A4A7935BD1E995


def _hash_bytes(data: bytes) -> int:
    """DuckDB's ``HashBytes``: 8-byte words XORed in and multiplied, then ``Hash(uint64)``."""
    n = len(data)
    h = (_SEED ^ (n * _LEN_MUL)) & _MASK
    whole = n - (n & 7)
    for i in range(0, whole, 8):
        h = ((h ^ int.from_bytes(data[i : i + 8], "little")) * _MUL) & _MASK
    if whole != n:
        h = ((h ^ int.from_bytes(data[whole:], "little")) * _MUL) & _MASK
    h ^= h >> 32
    h = (h * _MUL) & _MASK
    h ^= h >> 32
    h = (h * _MUL) & _MASK
    return h ^ (h >> 32)


def _combined_tenant(tenant: str) -> int:
    """The first argument's part of ``CombineHash(hash(tenant), hash(key))``."""
    a = _hash_bytes(tenant.encode())
    return ((a ^ (a >> 32)) * _MUL) & _MASK


# A group names a handful of tenants: their part is computed once per process (bounded).
_TENANT_PARTS: dict[str, int] = {}
_TENANT_CACHE_MAX = 4096


def _tenant_part(t: str) -> int:
    parts = _TENANT_PARTS
    a = parts.get(t)
    if a is None:
        a = _combined_tenant(t)
        if len(parts) < _TENANT_CACHE_MAX:
            parts[t] = a
    return a


# From this many pairs on, the keys are hashed by numpy, all at once (`_hash_keys`): about
# 0.3 us a key instead of 2 us, plus ~40 us of numpy calls that a few keys do not repay.
VECTOR_PAIRS = 32


def hash_pairs(tenants: Sequence[str], keys: Sequence[str]) -> npt.NDArray[Any]:
    """``hash(t, k)`` as DuckDB computes it, for each pair (``uint64``, in order)."""
    if len(keys) >= VECTOR_PAIRS:
        return _hash_pairs_numpy(tenants, keys)
    return _hash_pairs_python(tenants, keys)


def _hash_pairs_python(tenants: Sequence[str], keys: Sequence[str]) -> npt.NDArray[Any]:
    out = [_tenant_part(t) ^ _hash_bytes(k.encode()) for t, k in zip(tenants, keys, strict=True)]
    return np.array(out, dtype=np.uint64)


def _hash_pairs_numpy(tenants: Sequence[str], keys: Sequence[str]) -> npt.NDArray[Any]:
    if len(tenants) != len(keys):
        raise ValueError("hash_pairs: as many tenants as keys")
    parts: dict[str, int] = {}  # a group names a few tenants
    for t in tenants:
        if t not in parts:
            parts[t] = _tenant_part(t)
    a = np.fromiter((parts[t] for t in tenants), dtype=np.uint64, count=len(tenants))
    return np.asarray(a ^ _hash_keys([k.encode() for k in keys]), dtype=np.uint64)


def _hash_keys(data: list[bytes]) -> npt.NDArray[Any]:
    """``_hash_bytes`` of each of ``data`` at once: the values zero-padded to whole 8-byte
    words (a tail word read little-endian is its bytes zero-padded), then per word position
    the XOR-multiply step on the rows that have a word there, then the finaliser. uint64
    arithmetic wraps as the ``& _MASK`` of the scalar form does."""
    n = len(data)
    lengths = np.fromiter(map(len, data), dtype=np.uint64, count=n)
    width = (int(lengths.max()) + 7) // 8 * 8 if n else 0
    words = np.frombuffer(b"".join(d.ljust(width, b"\0") for d in data), dtype="<u8")
    words = words.reshape(n, width // 8) if width else words.reshape(n, 0)
    mul = np.uint64(_MUL)
    h = np.uint64(_SEED) ^ (lengths * np.uint64(_LEN_MUL))
    blocks = (lengths + np.uint64(7)) // np.uint64(8)  # words of each value, the tail included
    for w in range(words.shape[1]):
        step = (h ^ words[:, w]) * mul
        h = np.where(blocks > w, step, h)
    shift = np.uint64(32)
    h ^= h >> shift
    h *= mul
    h ^= h >> shift
    h *= mul
    return np.asarray(h ^ (h >> shift), dtype=np.uint64)


# Every byte length 0-40 (all tail lengths, 0-5 whole words), multi-byte UTF-8, empty tenant.
PROBES: tuple[tuple[str, str], ...] = (
    *((t, "k" * n) for n in range(41) for t in ("", "acme")),
    *(("tenant-é", s) for s in ("é", "日本語", "ü" * 9, "🙂-🙂-🙂", "a'b\"c\t", "x" * 500)),
    ("日本語-tenant", "r-0"),
)


def matches_duckdb(con: Any) -> bool:
    """Whether :func:`hash_pairs` equals ``hash(t, k)`` of the DuckDB behind ``con`` on
    ``PROBES`` (one query)."""
    tenants = [t for t, _ in PROBES]
    keys = [k for _, k in PROBES]
    (row,) = con.execute(
        "SELECT list_transform(range(1, len(CAST($1 AS VARCHAR[])) + 1), "
        "lambda i: hash(CAST($1 AS VARCHAR[])[i], CAST($2 AS VARCHAR[])[i]))",
        [tenants, keys],
    ).fetchall()
    expected = np.asarray(row[0], dtype=np.uint64)
    # both forms: hash_pairs picks one by the number of pairs
    return bool(
        np.array_equal(expected, _hash_pairs_python(tenants, keys))
        and np.array_equal(expected, _hash_pairs_numpy(tenants, keys))
    )
