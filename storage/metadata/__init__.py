"""Metadata store (SQLAlchemy 2 + Alembic): tenants, models, API keys, audit log.

ORM rows never leave this package: every method returns the frozen types of ``storage.types``.

Modules: ``store`` (:class:`MetadataStore`), ``models`` (ORM tables), ``definitions`` (what the
versioned, audited definitions share: monitors, KPIs, alert rules), ``engine`` (per-backend
Engine setup), ``keys`` (API key secrets), ``errors`` (exception tree). Migrations live in
``storage.migrations``.
"""

from __future__ import annotations

from storage.metadata.errors import AlreadyExists, Ambiguous, MetadataError, NotFound
from storage.metadata.store import LAST_USED_INTERVAL, MetadataStore

__all__ = [
    "LAST_USED_INTERVAL",
    "AlreadyExists",
    "Ambiguous",
    "MetadataError",
    "MetadataStore",
    "NotFound",
]
