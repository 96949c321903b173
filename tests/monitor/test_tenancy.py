"""The one tenant-scope policy (monitor/tenancy.py): its rules, and that the API's keys and the
dashboard's users go through it instead of comparing tenant ids themselves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor import tenancy
from monitor.accounts import Account
from monitor.service import Caller

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("scope", "tenant", "seen"),
    [
        (None, "acme", True),
        (None, "*", True),  # all-tenant results: unscoped callers only
        (("acme",), "acme", True),
        (("acme",), "globex", False),
        (("acme",), "*", False),
        (("acme", "globex"), "globex", True),
        (("acme",), None, False),
        ((), "acme", False),
    ],
)
def test_sees(scope: tenancy.Scope, tenant: str | None, seen: bool) -> None:
    assert tenancy.sees(scope, tenant) is seen


def test_keys_and_users_share_the_rules() -> None:
    tenants = ["acme", "globex", "*", "initech"]
    for scope in (None, ("acme",), ("acme", "initech")):
        user = Account(1, "u", "viewer", scope)
        assert user.scope(tenants) == tenancy.visible(scope, tenants)
        assert [user.sees_tenant(t) for t in tenants] == [tenancy.sees(scope, t) for t in tenants]
    assert Caller("key:x", "viewer", "acme").scope == ("acme",)
    assert Caller("key:x", "viewer").scope is None
    assert tenancy.only(("acme",)) == "acme" and tenancy.only(None) is None
    with pytest.raises(ValueError, match="2 tenants"):
        tenancy.only(("a", "b"))
    assert tenancy.as_filter(("acme",)) == ("acme",) and tenancy.as_filter(None) is None


# A scope decided by hand: comparing a caller's tenant, or testing membership in a scope.
HAND_MADE = re.compile(
    r"caller\.tenant_id (?:!=|==)|tenant_id != caller\.tenant_id"
    r"|scope is not None and [\w.]+ not in scope|not in \(None, tenant_scope\)"
)


@pytest.mark.parametrize(
    "path",
    sorted(
        [
            *(ROOT / "monitor" / "api").glob("*.py"),
            *(ROOT / "dashboard").rglob("*.py"),
            *(ROOT / "monitor" / "queries").glob("*.py"),
        ]
        + [ROOT / "monitor" / n for n in ("alert_pages.py", "business.py")]
    ),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_edges_ask_the_policy(path: Path) -> None:
    found = HAND_MADE.findall(path.read_text())
    assert not found, f"{path.relative_to(ROOT)} decides tenant scope by hand: {found}"


def test_the_check_sees_a_hand_made_scope() -> None:
    """Control for the pattern above."""
    assert HAND_MADE.search("if caller.tenant_id != tenant_id:")
    assert HAND_MADE.search("if scope is not None and a.tenant_id not in scope:")
