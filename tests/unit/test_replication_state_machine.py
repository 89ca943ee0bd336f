"""Hypothesis state machine over three replication cores on a faulty in-memory network:
random writes and deletes on random peers, partitions and heals, loss, duplication,
reordering, latency, peer kills and restarts (their entries are durable, in-flight work is
lost). After heal and quiescence every peer holds identical data, and each key holds the
newest write made to it anywhere (nothing acknowledged is lost unless superseded)."""

from __future__ import annotations

import os

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from peers.core.hlc import Version
from peers.core.replication import Replicator
from tests.unit.replication_net import Net

PEERS = ["a", "b", "c"]
KEYS = [f"k{i}" for i in range(6)]


class ReplicationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.net = Net(list(PEERS), seed=1, latency_s=0.002)
        #: the newest write made to each key anywhere: (version, deleted, value)
        self.latest: dict[str, tuple[Version, bool, object]] = {}
        self.healed = True

    def record(self, key: str, version: Version, deleted: bool, value: object) -> None:
        if key not in self.latest or version > self.latest[key][0]:
            self.latest[key] = (version, deleted, value)

    @rule(peer=st.sampled_from(PEERS), key=st.sampled_from(KEYS), value=st.integers(0, 99))
    def write(self, peer: str, key: str, value: int) -> None:
        entry = self.net.nodes[peer].write(key, value, self.net.wall_ms(peer), self.net.now)
        self.record(key, entry.version, False, value)

    @rule(peer=st.sampled_from(PEERS), key=st.sampled_from(KEYS))
    def delete(self, peer: str, key: str) -> None:
        entry = self.net.nodes[peer].delete(key, self.net.wall_ms(peer), self.net.now)
        self.record(key, entry.version, True, None)

    @rule(isolated=st.sampled_from(PEERS))
    def partition(self, isolated: str) -> None:
        self.net.groups = [{isolated}, set(PEERS) - {isolated}]
        self.healed = False

    @rule()
    def heal(self) -> None:
        self.net.groups = []
        self.healed = True

    @rule(
        loss=st.sampled_from([0.0, 0.1, 0.5]),
        duplicate=st.sampled_from([0.0, 0.2]),
        jitter_s=st.sampled_from([0.0, 0.005, 0.05]),
    )
    def impair(self, loss: float, duplicate: float, jitter_s: float) -> None:
        self.net.loss, self.net.duplicate, self.net.jitter_s = loss, duplicate, jitter_s

    @rule(peer=st.sampled_from(PEERS))
    def restart(self, peer: str) -> None:
        """Kill and restart: entries survive (they are in the store), the rest is lost."""
        old = self.net.nodes[peer]
        fresh = Replicator(
            peer,
            rng=old.rng,
            entries=list(old.entries.values()),
            max_payload=old.max_payload,
        )
        fresh.set_peers([p for p in PEERS if p != peer], self.net.now)
        self.net.nodes[peer] = fresh

    @rule(seconds=st.sampled_from([0.001, 0.05, 0.5, 3.0]))
    def wait(self, seconds: float) -> None:
        self.net.run(seconds)

    @precondition(lambda self: self.healed)
    @invariant()
    def nothing_newer_than_written(self) -> None:
        for node in self.net.nodes.values():
            for key, entry in node.entries.items():
                assert entry.version <= self.latest[key][0]

    def teardown(self) -> None:
        self.net.groups, self.net.loss, self.net.duplicate = [], 0.0, 0.0
        self.net.run(120.0)
        states = [dict(node.entries) for node in self.net.nodes.values()]
        assert states[0] == states[1] == states[2], "peers did not converge"
        for key, (version, deleted, value) in self.latest.items():
            entry = states[0][key]
            assert entry.version == version
            assert entry.deleted == deleted
            assert entry.value == value


ReplicationMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("TPLAB_REPLICATION_EXAMPLES", "200")),
    stateful_step_count=30,
    deadline=None,
)
test_replication_converges = ReplicationMachine.TestCase
