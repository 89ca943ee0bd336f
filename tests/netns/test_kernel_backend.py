"""The kernel backend through real sockets inside the namespaces it builds.

Each test starts its own small world (one namespace per host plus a router)
and talks only between the topology's addresses inside those namespaces.
Something that must not arrive is shown either by a later datagram on the same
path arriving first (the path keeps order: no netem here) or by a short,
bounded wait.
"""

from __future__ import annotations

import asyncio
import errno
import shutil
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import netns

from netsim.api import IPV4_UDP_OVERHEAD, Address, MessageTooLong
from netsim.kernel import (
    NETEM_IMPAIRMENTS,
    KernelBackend,
    KernelBackendError,
    NamespacedNetwork,
)
from netsim.launch import open_world
from netsim.real import IP_MTU_DISCOVER, IP_PMTUDISC_DO, FileClockOffset, RealClock, RealRuntime
from netsim.topology import Topology, parse_topology
from netsim.world import ImpairmentUnsupported, Support, World

pytestmark = pytest.mark.netns

#: how long a datagram that should arrive may take, at most
ARRIVAL_TIMEOUT_S = 5.0
#: how long to watch for a datagram that should not arrive
SILENCE_S = 0.3

TOPOLOGY = """\
version: 1
name: netns-test
hosts:
  - {name: a, role: conductor, ip: 127.60.0.1}
  - {name: b, role: conductor, ip: 127.60.0.2}
  - {name: c, role: vcs, ip: 127.60.1.3}
"""
A_IP, B_IP, C_IP = "127.60.0.1", "127.60.0.2", "127.60.1.3"

#: the `kernel_world` fixture (conftest.py): `async with kernel_world(topology) as world`
WorldFactory = Callable[[Topology], AbstractAsyncContextManager[World]]


def topology(text: str = TOPOLOGY) -> Topology:
    return parse_topology(text, source="netns-test")


def kernel(world: World) -> KernelBackend:
    backend: Any = world.backend
    assert isinstance(backend, KernelBackend)
    return backend


class Inbox:
    """A datagram handler that queues what it receives."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.errors: list[Exception] = []

    def datagram_received(self, data: bytes, src: Address) -> None:
        self.queue.put_nowait((data, src))

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)

    async def next(self) -> tuple[bytes, Address]:
        return await asyncio.wait_for(self.queue.get(), ARRIVAL_TIMEOUT_S)

    async def silent(self) -> bool:
        """True when nothing arrives within SILENCE_S."""
        try:
            await asyncio.wait_for(self.queue.get(), SILENCE_S)
        except TimeoutError:
            return True
        return False


def payload(ip_packet_bytes: int, fill: bytes = b"x") -> bytes:
    """A UDP payload whose IPv4 packet is exactly `ip_packet_bytes` long."""
    return fill * (ip_packet_bytes - IPV4_UDP_OVERHEAD)


async def test_g_r14_path_mtu_drops_oversized_datagrams_never_fragments(
    kernel_world: WorldFactory,
) -> None:
    """G-R14: above the path MTU a datagram is dropped whole; at the MTU it passes."""
    async with kernel_world(topology()) as world:
        backend = kernel(world)
        inbox_b, inbox_a = Inbox(), Inbox()
        rx = await backend.network_for("b").open_datagram(5000, inbox_b)
        tx = await backend.network_for("a").open_datagram(5001, inbox_a)
        try:
            world.impair("a", "b", mtu_bytes=1300)
            tx.send(payload(1300), (B_IP, 5000))
            data, src = await inbox_b.next()
            assert (len(data) + IPV4_UDP_OVERHEAD, src) == (1300, (A_IP, 5001))

            tx.send(payload(1301, b"y"), (B_IP, 5000))
            tx.send(b"marker", (B_IP, 5000))
            data, _ = await inbox_b.next()
            assert data == b"marker"  # the 1301-byte packet did not arrive, whole or in pieces
            assert await inbox_b.silent()

            # one direction only: b -> a still carries the full link MTU
            rx.send(payload(1500), (A_IP, 5001))
            data, _ = await inbox_a.next()
            assert len(data) + IPV4_UDP_OVERHEAD == 1500

            world.clear("a", "b")
            tx.send(payload(1400), (B_IP, 5000))
            data, _ = await inbox_b.next()
            assert len(data) + IPV4_UDP_OVERHEAD == 1400
        finally:
            tx.close()
            rx.close()


async def test_g_r14_host_link_mtu_refuses_larger_datagrams_with_emsgsize(
    kernel_world: WorldFactory,
) -> None:
    """G-R14: a host's own link MTU (HostSpec.mtu_bytes) is its veth MTU; larger sends fail."""
    small_a = TOPOLOGY.replace("ip: 127.60.0.1}", "ip: 127.60.0.1, mtu_bytes: 1280}")
    async with kernel_world(topology(small_a)) as world:
        backend = kernel(world)
        network = backend.network_for("a")
        assert network.mtu_bytes == 1280
        inbox = Inbox()
        rx = await backend.network_for("b").open_datagram(5000, inbox)
        tx = await network.open_datagram(0, Inbox())
        try:
            with pytest.raises(MessageTooLong) as refused:
                tx.send(payload(1281), (B_IP, 5000))
            assert refused.value.errno == errno.EMSGSIZE
            tx.send(payload(1280), (B_IP, 5000))
            data, _ = await inbox.next()
            assert len(data) + IPV4_UDP_OVERHEAD == 1280
        finally:
            tx.close()
            rx.close()

        # the kernel itself refuses it too: a don't-fragment socket made inside a's namespace
        with backend.in_namespace("a"):
            raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with raw:
            raw.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            raw.bind((A_IP, 0))
            with pytest.raises(OSError, match="too long") as kernel_refused:
                raw.sendto(payload(1281), (B_IP, 5000))
            assert kernel_refused.value.errno == errno.EMSGSIZE


async def test_partition_cuts_across_groups_and_heal_restores(kernel_world: WorldFactory) -> None:
    async with kernel_world(topology()) as world:
        backend = kernel(world)
        inboxes = {name: Inbox() for name in ("a", "b", "c")}
        ends = {
            name: await backend.network_for(name).open_datagram(6000, inbox)
            for name, inbox in inboxes.items()
        }
        try:
            world.partition(["a"], ["b", "c"])
            ends["a"].send(b"a->b", (B_IP, 6000))
            ends["b"].send(b"b->a", (A_IP, 6000))
            ends["b"].send(b"b->c", (C_IP, 6000))
            assert (await inboxes["c"].next())[0] == b"b->c"
            assert await inboxes["b"].silent()
            assert await inboxes["a"].silent()

            world.heal()
            ends["a"].send(b"a->b again", (B_IP, 6000))
            ends["b"].send(b"b->a again", (A_IP, 6000))
            assert (await inboxes["b"].next())[0] == b"a->b again"
            assert (await inboxes["a"].next())[0] == b"b->a again"
        finally:
            for end in ends.values():
                end.close()


async def test_g_r6_firewall_drops_udp_port_range_and_removal_restores(
    kernel_world: WorldFactory,
) -> None:
    """G-R6: a drop rule on udp 4369-4380 blocks 4370, not 5000; removing it restores 4370."""
    async with kernel_world(topology()) as world:
        backend = kernel(world)
        in_range, outside = Inbox(), Inbox()
        rx_range = await backend.network_for("b").open_datagram(4370, in_range)
        rx_outside = await backend.network_for("b").open_datagram(5000, outside)
        tx = await backend.network_for("a").open_datagram(0, Inbox())
        try:
            rule = world.firewall_add("udp", "4369-4380")
            tx.send(b"replication", (B_IP, 4370))
            tx.send(b"other", (B_IP, 5000))
            assert (await outside.next())[0] == b"other"
            assert await in_range.silent()

            world.firewall_remove(rule.id)
            tx.send(b"replication again", (B_IP, 4370))
            assert (await in_range.next())[0] == b"replication again"
        finally:
            tx.close()
            rx_range.close()
            rx_outside.close()


async def test_g_r6_firewall_reject_refuses_connected_udp_and_tcp(
    kernel_world: WorldFactory,
) -> None:
    """G-R6: reject answers UDP with ICMP port unreachable and TCP with a reset."""
    async with kernel_world(topology()) as world:
        backend = kernel(world)
        network_a = backend.network_for("a")
        listening = await backend.network_for("b").open_datagram(4370, Inbox())
        server = await backend.network_for("b").create_server(asyncio.Protocol, 8443)
        loop = asyncio.get_running_loop()
        try:
            world.firewall_add("udp", 4370, action="reject", dst="b")
            with network_a.socket(socket.SOCK_DGRAM) as connected:
                connected.setblocking(False)
                connected.bind((A_IP, 0))
                connected.connect((B_IP, 4370))
                connected.send(b"hello")
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.wait_for(loop.sock_recv(connected, 100), ARRIVAL_TIMEOUT_S)

            rule = world.firewall_add("tcp", 8443, action="reject", src="a")
            with pytest.raises(ConnectionRefusedError):
                await asyncio.wait_for(
                    network_a.create_connection(asyncio.Protocol, B_IP, 8443), ARRIVAL_TIMEOUT_S
                )
            world.firewall_remove(rule.id)
            transport, _ = await asyncio.wait_for(
                network_a.create_connection(asyncio.Protocol, B_IP, 8443), ARRIVAL_TIMEOUT_S
            )
            transport.close()
        finally:
            listening.close()
            server.close()
            await server.wait_closed()


async def test_link_down_is_per_direction(kernel_world: WorldFactory) -> None:
    async with kernel_world(topology()) as world:
        backend = kernel(world)
        inbox_a, inbox_b = Inbox(), Inbox()
        end_a = await backend.network_for("a").open_datagram(7000, inbox_a)
        end_b = await backend.network_for("b").open_datagram(7000, inbox_b)
        try:
            world.impair("a", "b", down=True)
            end_a.send(b"a->b", (B_IP, 7000))
            end_b.send(b"b->a", (A_IP, 7000))
            assert (await inbox_a.next())[0] == b"b->a"
            assert await inbox_b.silent()

            world.impair("a", "b", down=False)
            end_a.send(b"a->b up", (B_IP, 7000))
            assert (await inbox_b.next())[0] == b"a->b up"
        finally:
            end_a.close()
            end_b.close()


async def test_loss_drops_a_share_of_datagrams(kernel_world: WorldFactory) -> None:
    sent = 200
    async with kernel_world(topology()) as world:
        backend = kernel(world)
        inbox = Inbox()
        rx = await backend.network_for("b").open_datagram(7100, inbox)
        tx = await backend.network_for("a").open_datagram(0, Inbox())
        try:
            world.impair("a", "b", loss=0.5)
            for number in range(sent):
                tx.send(number.to_bytes(2, "big"), (B_IP, 7100))
            received = 0
            for _ in range(sent):  # bounded: stops at the first quiet SILENCE_S
                if await inbox.silent():
                    break
                received += 1
            # binomial(200, 0.5): mean 100, sd about 7; these bounds are over 8 sd wide
            assert 40 <= received <= 160
        finally:
            tx.close()
            rx.close()


async def test_bandwidth_limit_applies_and_clears_with_traffic_flowing(
    kernel_world: WorldFactory,
) -> None:
    async with kernel_world(topology()) as world:
        backend = kernel(world)
        inbox = Inbox()
        rx = await backend.network_for("c").open_datagram(7200, inbox)
        tx = await backend.network_for("a").open_datagram(0, Inbox())
        try:
            world.impair("a", "c", rate_kbit=2000, both=True)
            world.impair("b", "c", rate_kbit=500)
            tx.send(b"shaped", (C_IP, 7200))
            assert (await inbox.next())[0] == b"shaped"
            world.reset()
            tx.send(b"unshaped", (C_IP, 7200))
            assert (await inbox.next())[0] == b"unshaped"
        finally:
            tx.close()
            rx.close()


async def test_g_r3_clock_offset_reaches_a_real_runtime(
    kernel_world: WorldFactory, tmp_path: Path
) -> None:
    """G-R3: a host's clock offset shows in its RealRuntime's wall clock, via the clock file."""
    async with kernel_world(topology()) as world:
        backend = kernel(world)
        assert world.clock_file is not None
        world.set_clock_offset("a", 30)
        runtimes = {
            name: RealRuntime(
                world.topology.host(name).address,
                backend.network_for(name),
                data_dir=tmp_path / name,
                clock=RealClock(FileClockOffset(world.clock_file, name)),
            )
            for name in ("a", "b")
        }
        skew_a = (runtimes["a"].clock.wall() - datetime.now(UTC)).total_seconds()
        skew_b = (runtimes["b"].clock.wall() - datetime.now(UTC)).total_seconds()
        assert 29 < skew_a < 31
        assert abs(skew_b) < 1
        assert isinstance(runtimes["a"].network, NamespacedNetwork)


async def test_capabilities_report_netem_impairments_unavailable_and_refuse_them(
    kernel_world: WorldFactory,
) -> None:
    async with kernel_world(topology()) as world:
        caps = world.capabilities()
        for name in NETEM_IMPAIRMENTS:
            assert caps[name].support is Support.UNAVAILABLE
            assert "netem" in caps[name].note
        for name in ("mtu", "down", "partition", "firewall", "loss", "bandwidth"):
            assert caps[name].support is Support.KERNEL, caps[name]
        assert caps["clock_offset"].support is Support.USERSPACE

        before = world.show()
        with pytest.raises(ImpairmentUnsupported, match="latency"):
            world.impair("a", "b", latency_ms=5)
        assert world.show() == before

        backend = kernel(world)
        inbox = Inbox()
        rx = await backend.network_for("b").open_datagram(7300, inbox)
        tx = await backend.network_for("a").open_datagram(0, Inbox())
        try:
            tx.send(b"still flowing", (B_IP, 7300))
            assert (await inbox.next())[0] == b"still flowing"
        finally:
            tx.close()
            rx.close()


async def test_open_world_teardown_leaves_no_namespaces(
    kernel_available: None, tmp_path: Path
) -> None:
    async with open_world(topology(), backend="kernel", state_dir=tmp_path) as world:
        backend = kernel(world)
        made = backend.namespaces
        assert len(made) == 4  # three hosts and the router
        assert set(made) <= set(netns.listnetns())
        assert backend.exec_prefix("a") == ["ip", "netns", "exec", backend.namespace("a")]
    assert not set(made) & set(netns.listnetns())
    await backend.stop()  # idempotent
    assert backend.namespaces == ()


async def test_start_refusing_an_unsupported_default_cleans_up(
    kernel_available: None, tmp_path: Path
) -> None:
    """A topology whose default link needs netem fails loudly at start and leaves nothing."""
    delayed = topology(TOPOLOGY.replace("hosts:", "links: {latency_ms: 20}\nhosts:"))
    backend = KernelBackend(delayed)
    world = World(delayed, now=lambda: 0.0, backend=backend)
    with pytest.raises(ImpairmentUnsupported, match="latency"):
        await backend.start(world)
    assert backend.namespaces == ()
    assert not [name for name in netns.listnetns() if name.startswith(backend.prefix)]


async def test_start_without_nft_fails_with_a_clear_error(
    kernel_available: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    backend = KernelBackend(topology())
    world = World(backend.topology, now=lambda: 0.0, backend=backend)
    with pytest.raises(KernelBackendError, match="nft binary"):
        await backend.start(world)
    assert backend.namespaces == ()
