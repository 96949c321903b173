"""The monitor-kind registry: a kind's stable name (stored in configs and the database) →
its :class:`~monitor.checks.base.Check`."""

from __future__ import annotations

from typing import TypeVar

from monitor.checks.base import Check

__all__ = ["get_check", "register", "registered_kinds"]

_CHECKS: dict[str, Check] = {}

C = TypeVar("C", bound=type[Check])


def register(cls: C) -> C:
    """Class decorator: register one instance of ``cls`` for each of its ``kinds``."""
    check = cls()
    for kind in cls.kinds:
        if kind in _CHECKS:
            raise ValueError(f"monitor kind {kind!r} is registered twice")
        _CHECKS[kind] = check
    return cls


def get_check(kind: str) -> Check:
    """The check of a monitor kind; an unknown kind names the registered ones."""
    try:
        return _CHECKS[kind]
    except KeyError:
        raise KeyError(
            f"unknown monitor kind {kind!r}; registered: {', '.join(sorted(_CHECKS))}"
        ) from None


def registered_kinds() -> tuple[str, ...]:
    """Every registered monitor kind, sorted."""
    return tuple(sorted(_CHECKS))
