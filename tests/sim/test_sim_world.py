"""Every impairment in the simulated world (virtual time, in-memory network, one seed)."""

from __future__ import annotations

import asyncio
import errno

import pytest

from netsim.api import MessageTooLong
from netsim.sim import SimulationStalled, SimWorld
from tests.sim.helpers import Inbox

A, B, C = ("127.50.0.1", 500), ("127.50.0.2", 500), ("127.50.0.3", 500)


def endpoints(sim: SimWorld, port: int = 500) -> dict[str, tuple[object, Inbox]]:
    async def open_all() -> dict[str, tuple[object, Inbox]]:
        out = {}
        for host in ("a", "b", "c"):
            runtime = sim.runtime(host)
            inbox = Inbox(runtime.clock)
            out[host] = (await runtime.network.open_datagram(port, inbox), inbox)
        return out

    return sim.run(open_all())


def send(
    sim: SimWorld,
    ends: dict[str, tuple[object, Inbox]],
    src: str,
    dest: tuple[str, int],
    payloads: list[bytes],
    *,
    spacing_s: float = 0.0,
) -> None:
    async def go() -> None:
        endpoint = ends[src][0]
        for payload in payloads:
            endpoint.send(payload, dest)  # type: ignore[attr-defined]
            if spacing_s:
                await asyncio.sleep(spacing_s)

    sim.run(go())
    sim.run_for(2.0)


def test_virtual_time_jumps_to_the_next_timer(sim: SimWorld) -> None:
    async def nap() -> float:
        await asyncio.sleep(3600)
        return sim.loop.time()

    assert sim.run(nap()) == 3600.0


def test_a_deadline_a_rounding_error_away_is_reached(sim: SimWorld) -> None:
    """A task sleeping until a deadline 1 ulp ahead (asyncio runs such a timer at once,
    within its clock resolution) sees time reach the deadline, even while another task
    keeps the loop busy; before, it woke with `now < deadline` for ever."""

    async def until(deadline: float) -> float:
        loop = asyncio.get_running_loop()
        for _ in range(1000):
            if loop.time() >= deadline:
                return loop.time()
            await asyncio.sleep(deadline - loop.time())
        raise AssertionError(f"time stuck at {loop.time()!r}, short of {deadline!r}")

    async def busy(stop: asyncio.Event) -> None:
        for _ in range(100_000):  # ready callbacks at every turn of the loop
            if stop.is_set():
                return
            await asyncio.sleep(0)

    async def scenario() -> float:
        await asyncio.sleep(124.49999999999999)
        stop = asyncio.Event()
        spinner = asyncio.ensure_future(busy(stop))
        reached = await until(124.5)
        stop.set()
        await spinner
        return reached

    assert sim.run(scenario()) == 124.5


def test_idle_world_with_nothing_pending_is_reported(sim: SimWorld) -> None:
    async def wait_forever() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(SimulationStalled, match="idle"):
        sim.run(wait_forever())


def test_unimpaired_datagram_keeps_boundaries_and_source(sim: SimWorld) -> None:
    ends = endpoints(sim)
    send(sim, ends, "a", B, [b"one", b"two"])
    inbox = ends["b"][1]
    assert inbox.payloads == [b"one", b"two"]
    assert inbox.received[0][2] == A


def test_latency_and_jitter(sim: SimWorld) -> None:
    ends = endpoints(sim)
    sim.world.impair("a", "b", latency_ms=15, jitter_ms=2)
    start = sim.loop.time()
    send(sim, ends, "a", B, [b"%d" % i for i in range(50)])
    delays = [t - start for t, _, _ in ends["b"][1].received]
    assert len(delays) == 50
    assert all(0.013 - 1e-9 <= d <= 0.017 + 1e-9 for d in delays)
    assert len(set(delays)) > 10


def test_loss_duplicate_and_reorder(sim: SimWorld) -> None:
    ends = endpoints(sim)
    sim.world.impair("a", "b", loss=0.2)
    send(sim, ends, "a", B, [b"%d" % i for i in range(500)])
    assert 300 < len(ends["b"][1].received) < 480
    sim.world.impair("a", "c", duplicate=0.3)
    send(sim, ends, "a", C, [b"%d" % i for i in range(200)])
    assert 220 < len(ends["c"][1].received) < 300
    sim.world.impair("b", "a", reorder=0.3, reorder_gap_ms=10)
    send(sim, ends, "b", A, [b"%03d" % i for i in range(100)], spacing_s=0.001)
    order = ends["a"][1].payloads
    assert sorted(order) == [b"%03d" % i for i in range(100)]
    assert order != sorted(order)


def test_bandwidth_serialises(sim: SimWorld) -> None:
    ends = endpoints(sim)
    sim.world.impair("a", "b", rate_kbit=80)  # 10,000 bytes/s
    start = sim.loop.time()
    send(sim, ends, "a", B, [b"x" * 972] * 10)  # 1000-byte IP packets
    last = ends["b"][1].received[-1][0] - start
    assert last == pytest.approx(1.0)


def test_path_mtu_drops_oversized_datagram_while_smaller_passes_g_r14(sim: SimWorld) -> None:
    """G-R14: a 1300-byte path MTU drops a 1301-byte packet (never fragments) and passes 1300."""
    ends = endpoints(sim)
    sim.world.impair("a", "b", mtu_bytes=1300)
    send(sim, ends, "a", B, [b"s" * (1300 - 28), b"L" * (1301 - 28)])
    assert ends["b"][1].payloads == [b"s" * 1272]
    drops = [e for e in sim.trace if e.kind == "udp_drop"]
    assert "exceeds path MTU 1300" in drops[-1].fields["reason"]


def test_send_above_own_link_mtu_raises_emsgsize_g_r14(sim: SimWorld) -> None:
    """G-R14: host c's link MTU is 1300: a larger datagram is refused at send."""
    ends = endpoints(sim)
    endpoint = ends["c"][0]
    with pytest.raises(MessageTooLong) as caught:
        endpoint.send(b"x" * 1273, A)  # type: ignore[attr-defined]
    assert caught.value.errno == errno.EMSGSIZE


def test_link_down_is_per_direction(sim: SimWorld) -> None:
    ends = endpoints(sim)
    sim.world.impair("a", "b", down=True)
    send(sim, ends, "a", B, [b"lost"])
    send(sim, ends, "b", A, [b"back"])
    assert ends["b"][1].payloads == []
    assert ends["a"][1].payloads == [b"back"]


def test_partition_and_heal(sim: SimWorld) -> None:
    ends = endpoints(sim)
    sim.world.partition(["a"], ["b", "c"])
    send(sim, ends, "a", B, [b"1"])
    send(sim, ends, "b", A, [b"2"])
    send(sim, ends, "b", C, [b"3"])
    assert ends["b"][1].payloads == []
    assert ends["a"][1].payloads == []
    assert ends["c"][1].payloads == [b"3"]
    sim.world.heal()
    send(sim, ends, "a", B, [b"4"])
    assert ends["b"][1].payloads == [b"4"]


def test_firewall_by_udp_port_range_g_r6(sim: SimWorld) -> None:
    """G-R6: drop udp 4369-4380: 4370 blocked, 5000 passes; removal restores."""

    async def open_ports() -> tuple[Inbox, Inbox]:
        runtime = sim.runtime("b")
        low, high = Inbox(runtime.clock), Inbox(runtime.clock)
        await runtime.network.open_datagram(4370, low)
        await runtime.network.open_datagram(5000, high)
        return low, high

    low, high = sim.run(open_ports())
    ends = endpoints(sim)
    rule = sim.world.firewall_add("udp", "4369-4380", action="drop")
    send(sim, ends, "a", ("127.50.0.2", 4370), [b"blocked"])
    send(sim, ends, "a", ("127.50.0.2", 5000), [b"open"])
    assert low.payloads == []
    assert high.payloads == [b"open"]
    sim.world.firewall_remove(rule.id)
    send(sim, ends, "a", ("127.50.0.2", 4370), [b"again"])
    assert low.payloads == [b"again"]


def test_clock_offset_visible_through_the_runtime_g_r3(sim: SimWorld) -> None:
    """G-R3: a host's clock offset shows in its runtime's wall clock, not its monotonic one."""
    a, b = sim.runtime("a"), sim.runtime("b")
    sim.world.set_clock_offset("b", 30)
    assert (b.clock.wall() - a.clock.wall()).total_seconds() == pytest.approx(30)
    assert b.clock.monotonic() == a.clock.monotonic()
    assert a.clock.wall().tzinfo is not None


def test_streams_stall_while_partitioned_and_resume_after_heal(sim: SimWorld) -> None:
    received: list[bytes] = []

    class Sink(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            received.append(data)

    async def scenario() -> float:
        server = await sim.runtime("b").network.create_server(Sink, 9000)
        transport, _ = await sim.runtime("a").network.create_connection(
            asyncio.Protocol, "127.50.0.2", 9000
        )
        sim.world.partition(["a"])
        transport.write(b"held")  # type: ignore[attr-defined]
        await asyncio.sleep(5)
        assert received == []
        sim.world.heal()
        await asyncio.sleep(0.1)
        transport.close()
        server.close()
        return sim.loop.time()

    sim.run(scenario())
    assert received == [b"held"]


def test_stream_writes_arrive_in_order_even_when_due_at_the_same_time(sim: SimWorld) -> None:
    """Many writes in one tick, with a timer pending before them: asyncio runs timers
    due at the same time in no particular order, a stream must not (TLS records)."""
    received: list[bytes] = []

    class Sink(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            received.append(data)

    async def scenario() -> None:
        server = await sim.runtime("b").network.create_server(Sink, 9001)
        transport, _ = await sim.runtime("a").network.create_connection(
            asyncio.Protocol, "127.50.0.2", 9001
        )
        asyncio.get_running_loop().call_later(0.5, lambda: None)
        for i in range(50):
            transport.write(b"%d," % i)  # type: ignore[attr-defined]
        await asyncio.sleep(1)
        transport.close()
        server.close()

    sim.run(scenario())
    assert b"".join(received) == b"".join(b"%d," % i for i in range(50))


def test_connection_attempts_refused_rejected_and_timed_out(sim: SimWorld) -> None:
    async def attempt() -> BaseException | None:
        try:
            transport, _ = await sim.runtime("a").network.create_connection(
                asyncio.Protocol, "127.50.0.2", 9001
            )
        except OSError as exc:
            return exc
        transport.close()
        return None

    assert isinstance(sim.run(attempt()), ConnectionRefusedError)  # nobody listens

    async def listen() -> None:
        await sim.runtime("b").network.create_server(asyncio.Protocol, 9001)

    sim.run(listen())
    sim.world.firewall_add("tcp", 9001, action="reject")
    assert isinstance(sim.run(attempt()), ConnectionRefusedError)
    sim.world.reset()
    sim.world.firewall_add("tcp", 9001, action="drop")
    start = sim.loop.time()
    assert isinstance(sim.run(attempt()), TimeoutError)
    assert sim.loop.time() - start == pytest.approx(127.0)  # SYN retries, virtual time
