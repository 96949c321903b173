"""The alerting layer's exceptions, one tree (``monitor.errors`` maps them to the service's).

::

    AlertsError                             base of everything ``alerts`` raises on purpose
    └── AlertInputError (ValueError)        a bad definition; the message names field and rule
        ├── RuleError                       an alert rule (alerts.rules)
        ├── MatcherError                    a silence matcher (alerts.silences)
        ├── SigningSecretError              a webhook signing secret (alerts.signing)
        ├── UnsafeURL                       a channel URL that fails the SSRF rules (alerts.ssrf)
        └── UnknownChannelKind              a channel kind no module registered (alerts.channels)

Storage errors raised through the alerting layer (an unknown rule is ``storage``'s
``NotFound``) keep their own tree (``storage.errors``).
"""

from __future__ import annotations

__all__ = ["AlertInputError", "AlertsError"]


class AlertsError(Exception):
    """Base of the alerting layer's errors."""


class AlertInputError(AlertsError, ValueError):
    """A definition the alerting layer refuses (still a ``ValueError`` for its callers)."""
