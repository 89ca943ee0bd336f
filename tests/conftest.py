"""Shared test settings: hypothesis profiles dev (default), ci and soak."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "soak", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

#: the longest test files, started first: `make test` hands whole files to its two
#: workers in collection order (--no-loadscope-reorder: by default xdist would start the
#: files with most tests first), so a long file collected last would run alone at the end
LONG_FILES_FIRST = (
    "tests/real/test_shipped_scenarios_real.py",
    "tests/sim/test_cluster_state_machine.py",
    "tests/real/test_peer_api_fuzz.py",
    "tests/real/test_conference_processes.py",
    "tests/real/test_cluster_processes.py",
    "tests/sim/test_shipped_scenarios.py",
    "tests/browser/test_lab_create_cluster.py",
    "tests/sim/test_training_labs.py",
    "tests/browser/test_lab_troubleshoot.py",
    "tests/real/test_lab_cli.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONG_FILES_FIRST.index(path) if path in LONG_FILES_FIRST else len(LONG_FILES_FIRST)

    items.sort(key=rank)  # stable: the order inside each file and of the rest is kept
