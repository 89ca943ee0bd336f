"""Fixtures for seeded simulated worlds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netsim.sim import SimWorld
from netsim.topology import Topology, parse_topology

TOPOLOGY = """\
version: 1
hosts:
  - {name: a, role: conductor, ip: 127.50.0.1}
  - {name: b, role: conductor, ip: 127.50.0.2}
  - {name: c, role: conductor, ip: 127.50.0.3, mtu_bytes: 1300}
"""


@pytest.fixture
def topology() -> Topology:
    return parse_topology(TOPOLOGY, source="sim-test")


@pytest.fixture
def sim(topology: Topology) -> Iterator[SimWorld]:
    world = SimWorld(topology, seed=11)
    yield world
    world.close()
