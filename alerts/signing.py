"""Standard Webhooks secrets and signatures.

A channel's signing secret is ``whsec_`` + standard base64 of 24 to 64 random bytes (the spec's
range). Secrets are checked where they enter (API, CLI, engine) and again before each send, so
a malformed one is refused with a message naming the field instead of failing at send time.
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import base64
import binascii
import secrets as _secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

from alerts.errors import AlertInputError

__all__ = [
    "SECRET_MAX_BYTES",
    "SECRET_MIN_BYTES",
    "SigningSecretError",
    "check_signing_secret",
    "new_signing_secret",
    "sign",
]

SECRET_PREFIX = "whsec_"
# The spec asks for 24 to 64 random bytes; we generate 24.
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64


class SigningSecretError(AlertInputError):
    """A ``signing_secret`` that is not a Standard Webhooks secret (the message says why)."""


def check_signing_secret(secret: str) -> str:
    """Return ``secret`` when it is ``whsec_`` + standard base64 of 24 to 64 bytes.

    Raises
    ------
    SigningSecretError
        Naming the field and what is wrong, without quoting the secret.
    """
    where = "signing_secret"
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise SigningSecretError(
            f"{where}: must start with {SECRET_PREFIX!r} followed by base64 of "
            f"{SECRET_MIN_BYTES}-{SECRET_MAX_BYTES} random bytes (omit it to have one generated)"
        )
    encoded = secret[len(SECRET_PREFIX) :]
    try:  # padding may be left out, as the standardwebhooks library allows
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningSecretError(
            f"{where}: the part after {SECRET_PREFIX!r} is not valid base64"
        ) from exc
    if not SECRET_MIN_BYTES <= len(raw) <= SECRET_MAX_BYTES:
        raise SigningSecretError(
            f"{where}: decodes to {len(raw)} bytes; a Standard Webhooks secret has "
            f"{SECRET_MIN_BYTES} to {SECRET_MAX_BYTES}"
        )
    return secret


def new_signing_secret() -> str:
    """A fresh ``whsec_`` secret (24 random bytes, base64) for a webhook channel."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_MIN_BYTES)).decode()


def sign(webhook_id: str, body: str, secrets: Sequence[str], at: datetime) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, one signature per active secret."""
    ts = at.astimezone(UTC)
    signatures = " ".join(Webhook(s).sign(webhook_id, ts, body) for s in secrets)
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(int(ts.timestamp()))}
    if signatures:
        headers["webhook-signature"] = signatures
    return headers
