"""Hypothesis state machine over a real three-peer cluster in the simulated world.

Random writes and deletes of shared items on random peers, peer-specific writes,
partitions and heals, loss, duplication, reordering and latency, peer kills and
restarts. After heal and quiescence: every peer holds identical shared data (G-S1),
every acknowledged write is present unless a later write to the same item superseded
it, and peer-specific settings never leak to another peer (G-S2).

Each example starts from a copy of one cluster formed once through the guide's
procedure (G-P1, G-P2), so examples stay cheap.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from peers.core.hlc import Version
from tests.sim.cluster_lab import IPS, ClusterLab

HOSTS = list(IPS)
ITEMS = [f"test:item{i}" for i in range(5)]


@cache
def formed_cluster() -> Path:
    """Data dirs of a formed 3-peer cluster (made once per test session)."""
    root = Path(tempfile.mkdtemp(prefix="tplab-cluster-template-"))
    atexit.register(shutil.rmtree, root, True)  # made once per test session
    lab = ClusterLab(data_root=root)
    try:
        initial, second, third = IPS["conductor-initial"], IPS["conductor-2"], IPS["conductor-3"]
        lab.put("conductor-initial", "clustering", {"key": "k", "peer1": initial})
        lab.restart("conductor-initial")
        for host in ("conductor-initial", "conductor-2", "conductor-3"):
            lab.put(host, "clustering", {"key": "k", "peer1": initial, "peer2": second,
                                          "peer3": third})  # fmt: skip
        lab.restart("conductor-initial")
        lab.restart("conductor-2")
        lab.restart("conductor-3")
        lab.wait(20)
        for host, ip in IPS.items():
            statuses = lab.statuses(host)
            assert all(s.startswith("Active as") for p, s in statuses.items() if p != ip), statuses
    finally:
        lab.close()
    return root


class ClusterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="tplab-cluster-example-")
        shutil.copytree(formed_cluster(), self.tmp, dirs_exist_ok=True)
        self.lab = ClusterLab(data_root=Path(self.tmp))
        self.latest: dict[str, tuple[Version, bool, object]] = {}
        self.domains: dict[str, str] = {}
        self.alive = set(HOSTS)

    def node(self, host: str):  # type: ignore[no-untyped-def]
        return self.lab.nodes[host]

    @rule(host=st.sampled_from(HOSTS), item=st.sampled_from(ITEMS), value=st.integers(0, 999))
    def write(self, host: str, item: str, value: int) -> None:
        if host not in self.alive:
            return
        entry = self.node(host).store.put_shared(item, value)  # acknowledged: committed
        self.node(host).publish([entry])
        self.record(entry.key, entry.version, False, value)

    @rule(host=st.sampled_from(HOSTS), item=st.sampled_from(ITEMS))
    def delete(self, host: str, item: str) -> None:
        if host not in self.alive:
            return
        entry = self.node(host).store.delete_shared(item)
        self.node(host).publish([entry])
        self.record(entry.key, entry.version, True, None)

    def record(self, key: str, version: Version, deleted: bool, value: object) -> None:
        if key not in self.latest or version > self.latest[key][0]:
            self.latest[key] = (version, deleted, value)

    @rule(host=st.sampled_from(HOSTS), n=st.integers(0, 99))
    def peer_specific_write(self, host: str, n: int) -> None:
        if host not in self.alive:
            return
        domain = f"{host}-{n}.example"
        self.node(host).store.save({"dns.domain": domain}, user="test")
        self.domains[host] = domain

    @rule(isolated=st.sampled_from(HOSTS))
    def partition(self, isolated: str) -> None:
        self.lab.sim.world.partition([isolated])

    @rule()
    def heal(self) -> None:
        self.lab.sim.world.heal()

    @rule(
        a=st.sampled_from(HOSTS),
        b=st.sampled_from(HOSTS),
        loss=st.sampled_from([0.0, 0.2, 0.5]),
        duplicate=st.sampled_from([0.0, 0.3]),
        reorder=st.sampled_from([0.0, 0.3]),
        latency_ms=st.sampled_from([0, 5, 40]),
    )
    def impair(
        self, a: str, b: str, loss: float, duplicate: float, reorder: float, latency_ms: int
    ) -> None:
        if a != b:
            self.lab.sim.world.impair(
                a, b, loss=loss, duplicate=duplicate, reorder=reorder, latency_ms=latency_ms,
                jitter_ms=latency_ms / 4,
            )  # fmt: skip

    @rule(host=st.sampled_from(HOSTS))
    def kill(self, host: str) -> None:
        if host in self.alive and len(self.alive) > 1:
            self.lab.kill(host)
            self.alive.discard(host)

    @rule(host=st.sampled_from(HOSTS))
    def start(self, host: str) -> None:
        if host not in self.alive:
            self.lab.start(host)
            self.alive.add(host)

    @rule(seconds=st.sampled_from([0.05, 0.5, 3.0, 15.0]))
    def wait(self, seconds: float) -> None:
        self.lab.wait(seconds)

    def teardown(self) -> None:
        try:
            self.lab.sim.world.reset()
            for host in HOSTS:
                if host not in self.alive:
                    self.lab.start(host)
            self.lab.wait(120)
            shared = {h: self.node(h).store.shared_entries() for h in HOSTS}
            first = shared[HOSTS[0]]
            for host in HOSTS[1:]:
                assert shared[host] == first, f"{host} did not converge"
            held = {e.key: e for e in first}
            for key, (version, deleted, value) in self.latest.items():
                assert held[key].version == version
                assert held[key].deleted is deleted
                assert held[key].value == value
            for host, domain in self.domains.items():
                assert self.node(host).store.get("dns.domain") == domain
                for other in HOSTS:
                    if other != host:
                        assert self.node(other).store.get("dns.domain") != domain  # G-S2
        finally:
            self.lab.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


ClusterMachine.TestCase.settings = settings(
    # 30 in the default run (make test's budget: about 50 s on a busy machine); soak: 10,000
    max_examples=int(os.environ.get("TPLAB_CLUSTER_EXAMPLES", "30")),
    stateful_step_count=15,
    deadline=None,
)
test_cluster_converges = ClusterMachine.TestCase
