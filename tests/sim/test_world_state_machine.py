"""Hypothesis state machine: any sequence of impairment changes, valid or not, while traffic
flows in the simulated world. Invalid changes are refused with nothing changed; the world keeps
running; after a reset every datagram gets through again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from netsim.api import MessageTooLong
from netsim.core.impairments import ImpairmentError
from netsim.sim import SimWorld
from netsim.topology import parse_topology
from tests.sim.conftest import TOPOLOGY
from tests.sim.helpers import Inbox

HOSTS = ["a", "b", "c", "nobody"]
IPS = {"a": "127.50.0.1", "b": "127.50.0.2", "c": "127.50.0.3"}
values = st.one_of(
    st.floats(-5, 2000, allow_nan=False),
    st.integers(-100, 70000),
    st.booleans(),
    st.none(),
    st.just("fast"),
)


class WorldMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = SimWorld(parse_topology(TOPOLOGY), seed=4)
        self.inboxes: dict[str, Inbox] = {}
        self.endpoints: dict[str, Any] = {}

        async def open_all() -> None:
            for host in IPS:
                runtime = self.sim.runtime(host)
                self.inboxes[host] = Inbox(runtime.clock)
                self.endpoints[host] = await runtime.network.open_datagram(500, self.inboxes[host])

        self.sim.run(open_all())

    def change(self, call: Any) -> None:
        before = self.sim.world.show()
        try:
            call()
        except ImpairmentError:
            assert self.sim.world.show() == before

    @rule(
        src=st.sampled_from(HOSTS),
        dst=st.sampled_from(HOSTS),
        field=st.sampled_from(
            [
                "latency_ms",
                "jitter_ms",
                "loss",
                "duplicate",
                "reorder",
                "rate_kbit",
                "mtu_bytes",
                "down",
                "bogus",
            ]
        ),
        value=values,
        both=st.booleans(),
    )
    def impair(self, src: str, dst: str, field: str, value: object, both: bool) -> None:
        self.change(lambda: self.sim.world.impair(src, dst, both=both, **{field: value}))

    @rule(groups=st.lists(st.lists(st.sampled_from(HOSTS), max_size=3), max_size=3))
    def partition(self, groups: list[list[str]]) -> None:
        self.change(lambda: self.sim.world.partition(*groups))

    @rule(
        proto=st.sampled_from(["udp", "tcp", "any", "icmp"]),
        ports=st.one_of(st.sampled_from(["500", "4369-4380", "9-1", "0", "x"]), st.integers()),
        action=st.sampled_from(["drop", "reject", "allow"]),
    )
    def firewall(self, proto: str, ports: object, action: str) -> None:
        self.change(lambda: self.sim.world.firewall_add(proto, ports, action=action))  # type: ignore[arg-type]

    @rule(host=st.sampled_from(HOSTS), offset=st.one_of(values, st.just(float("inf"))))
    def clock(self, host: str, offset: object) -> None:
        self.change(lambda: self.sim.world.set_clock_offset(host, offset))  # type: ignore[arg-type]

    @rule()
    def heal(self) -> None:
        self.sim.world.heal()

    @rule(src=st.sampled_from(list(IPS)), dst=st.sampled_from(list(IPS)), size=st.integers(0, 1400))
    def traffic(self, src: str, dst: str, size: int) -> None:
        endpoint = self.endpoints[src]
        if size + 28 > endpoint.mtu_bytes:  # G-R14: above the link MTU, refused at send
            with pytest.raises(MessageTooLong):
                endpoint.send(b"t" * size, (IPS[dst], 500))
            return
        endpoint.send(b"t" * size, (IPS[dst], 500))
        self.sim.run(asyncio.sleep(0.05))

    @invariant()
    def world_runs(self) -> None:
        self.sim.raise_errors()

    def teardown(self) -> None:
        try:
            self.sim.world.reset()
            self.sim.run(asyncio.sleep(3600))  # let datagrams still in flight land
            for host in IPS:
                self.inboxes[host].received.clear()
            for src in IPS:
                for dst in IPS:
                    self.endpoints[src].send(src.encode(), (IPS[dst], 500))
            self.sim.run(asyncio.sleep(1))
            for host in IPS:
                assert sorted(self.inboxes[host].payloads) == [b"a", b"b", b"c"]
        finally:
            self.sim.close()


WorldMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
test_world_state_machine = WorldMachine.TestCase
