"""Session-wide fixtures shared by every test folder, and how ``make test`` spreads the suite
over pytest-xdist workers (``-n``, ``--dist loadgroup``)."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.storage.conftest import Templates

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 in their environment: the CLI's
# module-level rich consoles would read them at import and keep 80 columns, whatever width a
# test asks for later (the serial suite has neither, so the consoles read the width when they
# print). Drop them before any test module imports the CLI.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)

# Tests that share a costly session or module fixture run in one pytest-xdist worker, so a run
# with ``-n`` builds it once, as a serial run does: test file -> group. The workers tell the
# controller only node ids, so groups are by file; a test elsewhere that uses one of these
# fixtures fails (list its file here).
SHARED_FIXTURES = {"site": "demo-site", "tabs": "demo-site", "spark": "spark"}
GROUPS = {
    # the demo built and served (tests/dashboard/conftest.py: ~1 min of the suite)
    "tests/dashboard/test_alert_delivery.py": "demo-site",
    "tests/dashboard/test_browser.py": "demo-site",
    "tests/dashboard/test_demo_scenario.py": "demo-site",
    "tests/dashboard/test_executive.py": "demo-site",
    "tests/dashboard/test_first_look.py": "demo-site",
    "tests/dashboard/test_status_truth.py": "demo-site",
    # Evidently (~7 s of CPU to import here): its comparisons run where the demo site's
    # Evidently report is made (tests/dashboard/test_browser.py), so one worker imports it
    "tests/detectors/test_drift_golden.py": "demo-site",
    # Spark's JVM (~11 s to start)
    "tests/storage/test_profile_engines.py": "spark",
    "tests/storage/test_engine_contract.py": "spark",
    "tests/storage/test_lake_rows.py": "spark",
}
# Files whose module-scoped fixture is costly (null simulations, a fitted model, a server, ten
# thousand alerts): each file is one unit, so its fixture is built once, not once per worker.
GROUPS.update(
    (path, path)
    for path in (
        "tests/api/test_auth_walk.py",
        "tests/api/test_bad_input.py",
        "tests/dashboard/test_alert_list.py",
        "tests/dashboard/test_api_docs.py",
        "tests/dashboard/test_drift_impact.py",
        "tests/dashboard/test_units.py",
        "tests/detectors/test_calibration.py",
        "tests/detectors/test_dle.py",
    )
)


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


# Tests that wait for the server's clock, run before another test of their group (test ->
# that test) so the wait overlaps work instead of idling the worker. The demo's alert
# groups are announced group_wait (30 s) after the server's first delivery turn; the test
# that every one is announced used to run first and sleep through it. It runs after the
# read-only page tests, before the first test that acknowledges or silences an alert, so
# it sees the alerts it saw when it ran first.
RUN_BEFORE = {
    "tests/dashboard/test_alert_delivery.py::"
    "test_every_firing_demo_alert_with_a_channel_is_announced_once": (
        "tests/dashboard/test_browser.py::test_acknowledge_changes_the_alert_in_the_api"
    ),
}


def _run_before(items: list[pytest.Item]) -> None:
    for moved, before in RUN_BEFORE.items():
        ids = [item.nodeid for item in items]
        if moved in ids and before in ids:
            item = items.pop(ids.index(moved))
            items.insert([i.nodeid for i in items].index(before), item)


# How long tests take, to send the longest units first (tests/durations.txt: a run's
# ``--durations`` table, seconds per test and phase). Without it, pytest-xdist orders units by
# their number of tests, and one-test units in collection order: a test of a minute could
# start when the other worker has nothing left to do, which then idles until it ends.
DURATIONS_FILE = Path(__file__).with_name("durations.txt")
DEFAULT_S = 0.25  # a test not in the table (the table's run: ~460 s over its ~1,980 others)


def read_durations(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """Seconds per node id (setup, call and teardown added) from ``--durations`` lines."""
    out: dict[str, float] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].endswith("s") and not line.startswith("#"):
            out[parts[2]] = out.get(parts[2], 0.0) + float(parts[0][:-1])
    return out


UNGROUPED = pytest.StashKey[str]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _run_before(items)
    for item in items:
        for name in getattr(item, "fixturenames", ()):
            group = SHARED_FIXTURES.get(name)
            if group is not None and GROUPS.get(_file_of(item.nodeid)) != group:
                item.stash[UNGROUPED] = (
                    f"{item.nodeid} uses the fixture {name!r}: add its file to GROUPS in "
                    f"tests/conftest.py as {group!r}, so pytest-xdist runs it where {name} is"
                )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if UNGROUPED in item.stash:  # failed here, not at collection: xdist shows the message
        pytest.fail(item.stash[UNGROUPED], pytrace=False)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` by ``GROUPS``: pytest-xdist's own reads ``xdist_group`` marks from
    node ids, which pytest 9.2 no longer lets a plugin change (pytest-xdist issue 1386)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    durations = read_durations()

    class SharedFixtureScheduling(LoadScopeScheduling):
        """Every test its own unit, except a group's tests (one unit); the units that take
        longest (by ``tests/durations.txt``) are sent first."""

        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return GROUPS.get(_file_of(nodeid), nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the queue is complete when the first unit is sent
                self.workqueue = OrderedDict(
                    sorted(
                        self.workqueue.items(),
                        key=lambda unit: -sum(durations.get(n, DEFAULT_S) for n in unit[1]),
                    )
                )
                self.ordered = True
            super()._assign_work_unit(node)

    return SharedFixtureScheduling(config, log)


@pytest.fixture(scope="session")
def metadata_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Metadata databases migrated once per session (``migrated_url`` copies them)."""
    with ExitStack() as stack:
        yield Templates(tmp_path_factory.mktemp("metadata-template"), stack)
