"""API key secrets: generation, hashing and the display prefix.

A key is ``dw_`` followed by the base62 form of 32 random bytes, left-padded to a fixed 43
characters so every key has the same length. Only its SHA-256 hex digest is stored; the first
``PREFIX_LEN`` characters after ``dw_`` are kept in clear so people can tell keys apart.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "dw_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_BYTES = 32
# ceil(256 / log2(62)) = 43: the longest base62 form of a 256-bit number.
BODY_LEN = 43
KEY_LEN = len(KEY_PREFIX) + BODY_LEN
PREFIX_LEN = 8
_ALPHABET_SET = frozenset(ALPHABET)


def base62(data: bytes, width: int = BODY_LEN) -> str:
    """Encode ``data`` as a big-endian base62 number, left-padded with ``0`` to ``width``.

    Parameters
    ----------
    data : bytes
        The bytes to encode.
    width : int
        Minimum length of the result.

    Returns
    -------
    str
        Base62 digits (``0-9A-Za-z``).

    Examples
    --------
    >>> base62(b"\\x00\\x3e", width=4)
    '0010'
    """
    n = int.from_bytes(data, "big")
    digits: list[str] = []
    while n:
        n, rem = divmod(n, 62)
        digits.append(ALPHABET[rem])
    return "".join(reversed(digits)).rjust(width, "0")


def generate_key() -> str:
    """A new plaintext key ``dw_<43 base62 chars>`` from ``secrets.token_bytes``."""
    return KEY_PREFIX + base62(secrets.token_bytes(RANDOM_BYTES))


def hash_key(plaintext: str) -> str:
    """SHA-256 hex digest of the plaintext key (what the database stores).

    A plain, unsalted hash is enough here: the key carries 256 bits of entropy, so there is
    nothing to brute-force, and an unsalted digest can be looked up by an index.
    """
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def display_prefix(plaintext: str) -> str:
    """The part of the key kept in clear: ``PREFIX_LEN`` characters after ``dw_``."""
    return plaintext[len(KEY_PREFIX) : len(KEY_PREFIX) + PREFIX_LEN]


def looks_like_key(plaintext: str) -> bool:
    """Cheap shape check, so malformed input never reaches the database."""
    return (
        len(plaintext) == KEY_LEN
        and plaintext.startswith(KEY_PREFIX)
        and _ALPHABET_SET.issuperset(plaintext[len(KEY_PREFIX) :])  # each character
    )
