"""The one tenant-scope policy, used by the API (keys) and the dashboard (users).

A *scope* is the tenants a caller may see: ``None`` for every tenant (an unscoped key, a user
without tenants), else a tuple of tenant ids (a scoped key has one, a user may have several).
The rules, in one place:

- a scoped caller sees a tenant's rows only for the tenants in its scope;
- results over all tenants (tenant ``"*"``) are for unscoped callers only: they mix tenants;
- another tenant's object is hidden, not refused (the API answers 404 as if it were absent; the
  dashboard says it is not in the user's scope), so ids cannot be probed;
- objects shared by all tenants (models' schemas, monitors, KPIs, rules, channels, silences)
  are changed only by unscoped callers (``monitor.api.auth.require(..., unscoped=True)``).

Edges translate a scope into their answer; read models and routes filter with
:func:`sees`, :func:`visible`, :func:`as_filter`.
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.types import ALL

__all__ = ["ALL", "Scope", "as_filter", "of_key", "only", "sees", "visible"]

Scope = tuple[str, ...] | None


def of_key(tenant_id: str | None) -> Scope:
    """The scope of an API key (``tenant_id`` None: unscoped)."""
    return None if tenant_id is None else (tenant_id,)


def sees(scope: Scope, tenant: str | None) -> bool:
    """May a caller with ``scope`` see rows of ``tenant`` (``"*"``: all tenants together)?"""
    if scope is None:
        return True
    return tenant is not None and tenant != ALL and tenant in scope


def visible(scope: Scope, tenants: Iterable[str]) -> list[str]:
    """The given tenants a caller with ``scope`` sees, in order."""
    return [t for t in tenants if sees(scope, t)]


def as_filter(scope: Scope) -> tuple[str, ...] | None:
    """The tenant filter a store query takes for this scope (None: no filter)."""
    return None if scope is None else tuple(scope)


def only(scope: Scope) -> str | None:
    """The one tenant of a single-tenant scope (a scoped key); None when unscoped.

    Raises ``ValueError`` for a scope of several tenants (a user's), which has no single one."""
    if scope is None:
        return None
    if len(scope) != 1:
        raise ValueError(f"a scope of {len(scope)} tenants has no single tenant")
    return scope[0]
