"""The storage implementations satisfy the ports of monitor/ports.py: every method of a port
exists on its implementation and accepts the port's parameters (same names, same kinds, no
extra required ones). Structural, like mypy's Protocol check, but enforced in every test run."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from monitor import ports
from storage.kpi_sql import KpiQueries
from storage.log_reads import LogReads
from storage.metadata import MetadataStore
from storage.metadata.monitoring import MonitoringStore
from storage.profiles import ProfileStore

IMPLEMENTATIONS: list[tuple[type, type]] = [
    (ports.ProfileEngine, ProfileStore),
    (ports.LogReader, LogReads),
    (ports.ColumnReader, LogReads),
    (ports.KpiSource, KpiQueries),
    (ports.DefinitionStore, MonitoringStore),
    (ports.ResultStore, MonitoringStore),
    (ports.MonitorStore, MonitoringStore),
    (ports.ModelCatalog, MetadataStore),
]


def port_methods(port: type) -> dict[str, Any]:
    """The methods a Protocol declares (its own and its bases')."""
    out: dict[str, Any] = {}
    for klass in reversed(port.__mro__):
        if klass is object or not getattr(klass, "_is_protocol", False):
            continue
        for name, value in vars(klass).items():
            if callable(value) and not name.startswith("_"):
                out[name] = value
    return out


def mismatches(port: type, impl: type) -> list[str]:
    problems = []
    for name, want in port_methods(port).items():
        have = getattr(impl, name, None)
        if have is None:
            problems.append(f"{impl.__name__} lacks {name}()")
            continue
        w = list(inspect.signature(want).parameters.values())[1:]
        h = list(inspect.signature(have).parameters.values())[1:]
        h_by_name = {p.name: p for p in h}
        for p in w:
            q = h_by_name.get(p.name)
            if q is None:
                problems.append(f"{impl.__name__}.{name}() has no parameter {p.name!r}")
            elif q.kind != p.kind:
                problems.append(f"{impl.__name__}.{name}({p.name}): {q.kind} != {p.kind}")
            elif (p.default is inspect.Parameter.empty) != (q.default is inspect.Parameter.empty):
                problems.append(f"{impl.__name__}.{name}({p.name}): required-ness differs")
        extra = [q.name for q in h if q.name not in {p.name for p in w}]
        required = [
            n
            for n in extra
            if h_by_name[n].default is inspect.Parameter.empty
            and h_by_name[n].kind
            not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if required:
            problems.append(f"{impl.__name__}.{name}() requires {required} beyond the port")
        positional = [p.name for p in w if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        h_positional = [q.name for q in h if q.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        if h_positional[: len(positional)] != positional:
            problems.append(
                f"{impl.__name__}.{name}() positional order {h_positional} != {positional}"
            )
    return problems


@pytest.mark.parametrize(
    ("port", "impl"), IMPLEMENTATIONS, ids=lambda x: x.__name__ if isinstance(x, type) else x
)
def test_implementation_satisfies_its_port(port: type, impl: type) -> None:
    assert port_methods(port), port
    assert mismatches(port, impl) == []


def test_the_check_sees_a_missing_method_and_a_renamed_parameter() -> None:
    """Control: an implementation that drops a method or renames a parameter is caught."""

    class Broken:
        def sample(self, model, begin, end, columns, n, *, tenant_id=None, seed=0):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    got = mismatches(ports.LogReader, Broken)
    assert "Broken lacks labelled()" in got
    assert "Broken.sample() has no parameter 'start'" in got
