"""Metadata store (SQLAlchemy 2 + Alembic): tenants, models, API keys, audit log.

CONTRACT STUB — the metadata helper replaces the bodies; signatures are what callers use.
ORM rows never leave this package: every method returns the frozen types of ``storage.types``.
"""

from __future__ import annotations

from datetime import datetime

from storage.types import ApiKeyInfo, AuditEntry, ModelInfo, ModelSchema, Role, Tenant


class MetadataError(Exception):
    """Base of metadata errors."""


class AlreadyExists(MetadataError):
    pass


class NotFound(MetadataError):
    pass


class MetadataStore:
    """``url`` is a SQLAlchemy URL: ``sqlite:///path.db`` or ``postgresql+psycopg://...``."""

    def __init__(self, url: str) -> None:
        raise NotImplementedError

    def upgrade(self) -> None:
        """Run Alembic migrations up to head (idempotent)."""
        raise NotImplementedError

    def current_revision(self) -> str | None:
        raise NotImplementedError

    def ping(self) -> bool:
        raise NotImplementedError

    def dispose(self) -> None:
        raise NotImplementedError

    # tenants
    def ensure_tenants(self, tenant_ids: list[str]) -> None:
        raise NotImplementedError

    def list_tenants(self) -> list[Tenant]:
        raise NotImplementedError

    # models
    def create_model(
        self, name: str, schema: ModelSchema, description: str = "", actor: str = "system"
    ) -> ModelInfo:
        raise NotImplementedError

    def update_model_schema(self, name: str, schema: ModelSchema, actor: str = "system") -> ModelInfo:
        raise NotImplementedError

    def get_model(self, name: str) -> ModelInfo | None:
        raise NotImplementedError

    def list_models(self) -> list[ModelInfo]:
        raise NotImplementedError

    # API keys
    def create_api_key(
        self,
        name: str,
        role: Role,
        tenant_id: str | None = None,
        expires_at: datetime | None = None,
        actor: str = "system",
    ) -> tuple[ApiKeyInfo, str]:
        """Returns the stored info and the plaintext key ``dw_<base62>`` (shown once)."""
        raise NotImplementedError

    def authenticate(self, plaintext: str) -> ApiKeyInfo | None:
        """The key's info if it exists, is not revoked and not expired; else None.
        Updates last_used_at (at most once a minute per key, to keep writes off the hot path)."""
        raise NotImplementedError

    def list_api_keys(self) -> list[ApiKeyInfo]:
        raise NotImplementedError

    def revoke_api_key(self, key_id_or_prefix: str, actor: str = "system") -> ApiKeyInfo:
        raise NotImplementedError

    # audit
    def audit(
        self, actor: str, action: str, object_type: str, object_id: str, detail: dict | None = None
    ) -> None:
        raise NotImplementedError

    def list_audit(self, limit: int = 100, object_type: str | None = None) -> list[AuditEntry]:
        raise NotImplementedError
