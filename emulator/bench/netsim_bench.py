"""The `netsim` benchmark group: what the proxy relay costs, how exact its delay is, how
much it carries, and how fast the simulated world runs.

Measurements (every loop is bounded in count and in wall time):

1. proxy pass-through added delay: a ping-pong of small datagrams through the relay
   with no impairment, interleaved sample by sample with the same ping-pong on two
   plain loopback sockets; added one-way delay = (RTT through relay - direct RTT) / 2.
2. latency accuracy: 15 ms one-way latency on the relay; the delivered one-way delay
   (send and receive timestamps on one clock, in one process) against 15 ms.
3. datagrams/s through one relay: a windowed sender (capacity, no overload) and an
   unpaced blast (overload shows as drops) from a separate process.
4. sim throughput: simulated datagrams per wall second in `SimWorld`, ping-pong flows
   over links with 1 ms latency and jitter, packet tracing off and on.

Placement: in `tplab up` the relay runs in the supervisor process and the nodes in
their own processes. The "subproc" figures put both endpoints in one spawned child
process (its own event loop, its own core on a 2-core machine) and the relay alone in
this process; the "inproc" figures run relay and endpoints on one event loop.

Addresses: the proxy hosts are 127.88.0.1-2 (private side 127.216.0.1-2), the direct
sockets 127.88.1.1-2, the simulated hosts 127.88.2.x, away from a running lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import multiprocessing
import random
import select
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from emulator.bench import BenchOptions, Figure, GroupResult, Target, bench_group, quantile
from netsim.api import Address, DatagramEndpoint, HostAddress, Proto
from netsim.core.impairments import LinkSpec
from netsim.launch import open_world
from netsim.proxy import ProxyBackend, private_ip
from netsim.real import RealNetwork
from netsim.sim import SimWorld
from netsim.topology import HostSpec, Topology
from netsim.world import World

PROXY_A = "127.88.0.1"
PROXY_B = "127.88.0.2"
DIRECT_A = "127.88.1.1"
DIRECT_B = "127.88.1.2"
SIM_NET = "127.88.2."

ADDED_DELAY_TARGET_MS = 0.3
LATENCY_MS = 15.0
LATENCY_ERROR_TARGET_MS = 1.0
SIM_TARGET_MSG_PER_S = 100_000.0
SIM_LATENCY_MS = 1.0
SIM_JITTER_MS = 0.2
SIM_HOSTS = 4

CHILD_START_BUDGET_S = 20.0
RELAY_STALL_S = 0.05
RELAY_BURST = 16
WINDOWED_SLICES = 8


# --------------------------------------------------------------------- parameters
@dataclass(frozen=True, slots=True)
class NetsimParams:
    pingpong_samples: int = 2000
    pingpong_warmup: int = 200
    pingpong_time_limit_s: float = 10.0
    latency_samples: int = 1000
    latency_interval_ms: float = 2.0
    latency_time_limit_s: float = 5.0
    relay_window: int = 32
    relay_windowed_s: float = 2.0
    relay_blast_s: float = 1.0
    sim_messages: int = 200_000
    sim_flows: int = 8
    sim_time_limit_s: float = 8.0
    payload_bytes: int = 64

    @classmethod
    def scaled(cls, scale: float) -> NetsimParams:
        base = cls()

        def count(value: int, least: int) -> int:
            return max(least, round(value * scale))

        def seconds(value: float, least: float) -> float:
            return max(least, value * scale)

        return dataclasses.replace(
            base,
            pingpong_samples=count(base.pingpong_samples, 10),
            pingpong_warmup=count(base.pingpong_warmup, 2),
            latency_samples=count(base.latency_samples, 10),
            relay_windowed_s=seconds(base.relay_windowed_s, 0.05),
            relay_blast_s=seconds(base.relay_blast_s, 0.05),
            sim_messages=count(base.sim_messages, 200),
            # larger runs get proportionally longer bounds; smaller ones keep the defaults
            pingpong_time_limit_s=base.pingpong_time_limit_s * max(1.0, scale),
            latency_time_limit_s=base.latency_time_limit_s * max(1.0, scale),
            sim_time_limit_s=base.sim_time_limit_s * max(1.0, scale),
        )


# ------------------------------------------------------------------------ helpers
def _stats_ms(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "median": _r(quantile(values, 0.5)),
        "p90": _r(quantile(values, 0.9)),
        "p99": _r(quantile(values, 0.99)),
        "min": _r(min(values)) if values else None,
        "max": _r(max(values)) if values else None,
    }


def _r(value: float, digits: int = 4) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def free_udp_port(ips: Sequence[str], rng: random.Random, attempts: int = 200) -> int:
    """A port that is free on every one of `ips` right now."""
    for _ in range(attempts):
        port = rng.randrange(20_000, 60_000)
        socks: list[socket.socket] = []
        try:
            for ip in ips:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((ip, port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return port
    raise OSError(f"no UDP port free on all of {', '.join(ips)} after {attempts} attempts")


def udp_rcvbuf_errors() -> int | None:
    """The kernel's count of UDP datagrams dropped for a full receive buffer (all sockets)."""
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return None
    rows = [line.split() for line in lines if line.startswith("Udp:")]
    if len(rows) < 2 or "RcvbufErrors" not in rows[0]:
        return None
    return int(rows[1][rows[0].index("RcvbufErrors")])


@dataclass(frozen=True, slots=True)
class UdpPair:
    """Two endpoints A and B: where each binds, and the address the other sends to."""

    a_bind: Address
    b_bind: Address
    a_public: Address
    b_public: Address


async def _open(bind: Address, public: Address, handler: Any) -> DatagramEndpoint:
    """Open through `RealNetwork`, the same code a node's runtime uses."""
    network = RealNetwork(HostAddress("bench", "bench", public[0]), bind_ip=bind[0])
    return await network.open_datagram(bind[1], handler)


class _Echo:
    """B side of a ping-pong: sends every datagram straight back."""

    def __init__(self) -> None:
        self.endpoint: DatagramEndpoint | None = None

    def datagram_received(self, data: bytes, src: Address) -> None:
        if self.endpoint is not None:
            self.endpoint.send(data, src)

    def error_received(self, exc: Exception) -> None:
        return None


class _Pinger:
    """A side of a ping-pong: timestamps the reply the moment it arrives."""

    def __init__(self) -> None:
        self.waiter: asyncio.Future[int] | None = None
        self.tag = b""

    def datagram_received(self, data: bytes, src: Address) -> None:
        now_ns = time.perf_counter_ns()
        waiter = self.waiter
        if waiter is not None and not waiter.done() and data[:8] == self.tag:
            waiter.set_result(now_ns)

    def error_received(self, exc: Exception) -> None:
        return None


class ChildJob(Protocol):
    def run(self) -> dict[str, Any]: ...


def _child_main(conn: Connection, job: ChildJob) -> None:
    try:
        conn.send(("ok", job.run()))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


async def run_in_child(job: ChildJob, timeout_s: float) -> dict[str, Any]:
    """Run `job.run()` in a spawned process while this event loop (the relay) keeps running."""
    ctx = multiprocessing.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child_main, args=(writer, job), daemon=True)
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(reader.fileno(), readable)
    try:
        process.start()
        writer.close()
        await asyncio.wait_for(ready, timeout_s)
        try:
            status, payload = reader.recv()
        except EOFError as exc:
            raise RuntimeError(f"benchmark child exited with code {process.exitcode}") from exc
        if status != "ok":
            raise RuntimeError(f"benchmark child failed: {payload}")
        result: dict[str, Any] = payload
        return result
    finally:
        loop.remove_reader(reader.fileno())
        reader.close()
        if process.pid is not None:
            process.join(timeout=2.0)
            if process.is_alive():
                process.terminate()
                process.join(timeout=2.0)


# ------------------------------------------------------------ 1. ping-pong RTT
@dataclass(frozen=True, slots=True)
class PingPongJob:
    """Interleaved RTT samples: one through the relay, one direct, alternating which first."""

    proxy: UdpPair
    direct: UdpPair
    samples: int
    warmup: int
    payload_bytes: int
    time_limit_s: float
    timeout_s: float = 0.5

    def run(self) -> dict[str, Any]:
        return asyncio.run(self.arun())

    async def arun(self) -> dict[str, Any]:
        paths: dict[str, tuple[DatagramEndpoint, _Pinger, Address]] = {}
        opened: list[DatagramEndpoint] = []
        try:
            for name, pair in (("proxy", self.proxy), ("direct", self.direct)):
                pinger, echo = _Pinger(), _Echo()
                a = await _open(pair.a_bind, pair.a_public, pinger)
                opened.append(a)
                echo.endpoint = await _open(pair.b_bind, pair.b_public, echo)
                opened.append(echo.endpoint)
                paths[name] = (a, pinger, pair.b_public)
            rtts: dict[str, list[float]] = {"proxy": [], "direct": []}
            lost = {"proxy": 0, "direct": 0}
            deadline = time.perf_counter() + self.time_limit_s
            pad = b"\0" * max(0, self.payload_bytes - 8)
            done = 0
            for i in range(self.warmup + self.samples):
                if time.perf_counter() > deadline:
                    break
                order = ("proxy", "direct") if i % 2 == 0 else ("direct", "proxy")
                for name in order:
                    endpoint, pinger, dest = paths[name]
                    rtt_ns = await self._one(endpoint, pinger, dest, i, pad)
                    if i < self.warmup:
                        continue
                    if rtt_ns is None:
                        lost[name] += 1
                    else:
                        rtts[name].append(rtt_ns / 1e6)
                if i >= self.warmup:
                    done += 1
            return {"rtt_ms": rtts, "lost": lost, "samples": done, "planned": self.samples}
        finally:
            for endpoint in opened:
                endpoint.close()

    async def _one(
        self, endpoint: DatagramEndpoint, pinger: _Pinger, dest: Address, seq: int, pad: bytes
    ) -> int | None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        pinger.tag = seq.to_bytes(8, "big")
        pinger.waiter = waiter
        timer = loop.call_later(self.timeout_s, waiter.cancel)
        sent_ns = time.perf_counter_ns()
        endpoint.send(pinger.tag + pad, dest)
        try:
            received_ns = await waiter
        except asyncio.CancelledError:
            if not waiter.cancelled():
                raise
            return None
        finally:
            timer.cancel()
            pinger.waiter = None
        return received_ns - sent_ns


# ------------------------------------------------------- 2. one-way latency
class _OneWayReceiver:
    def __init__(self) -> None:
        self.delays_ms: list[float] = []
        self.expected: int | None = None
        self.all_in = asyncio.Event()

    def datagram_received(self, data: bytes, src: Address) -> None:
        now_ns = time.perf_counter_ns()
        self.delays_ms.append((now_ns - int.from_bytes(data[8:16], "big")) / 1e6)
        self.check()

    def check(self) -> None:
        if self.expected is not None and len(self.delays_ms) >= self.expected:
            self.all_in.set()

    def error_received(self, exc: Exception) -> None:
        return None


class _Ignore:
    def datagram_received(self, data: bytes, src: Address) -> None:
        return None

    def error_received(self, exc: Exception) -> None:
        return None


@dataclass(frozen=True, slots=True)
class OneWayJob:
    """A sends timestamped datagrams to B at irregular intervals; B computes each delay."""

    pair: UdpPair
    samples: int
    interval_s: float
    payload_bytes: int
    time_limit_s: float
    seed: int
    settle_s: float = 0.2

    def run(self) -> dict[str, Any]:
        return asyncio.run(self.arun())

    async def arun(self) -> dict[str, Any]:
        receiver = _OneWayReceiver()
        rng = random.Random(self.seed)
        a = await _open(self.pair.a_bind, self.pair.a_public, _Ignore())
        b: DatagramEndpoint | None = None
        try:
            b = await _open(self.pair.b_bind, self.pair.b_public, receiver)
            pad = b"\0" * max(0, self.payload_bytes - 16)
            deadline = time.perf_counter() + self.time_limit_s
            sent = 0
            for seq in range(self.samples):
                if time.perf_counter() > deadline:
                    break
                a.send(
                    seq.to_bytes(8, "big") + time.perf_counter_ns().to_bytes(8, "big") + pad,
                    self.pair.b_public,
                )
                sent += 1
                # irregular spacing so sends do not phase-lock with the relay's timers
                await asyncio.sleep(self.interval_s * rng.uniform(0.5, 1.5))
            receiver.expected = sent
            receiver.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.all_in.wait(), self.settle_s)
            return {"delays_ms": receiver.delays_ms, "sent": sent}
        finally:
            a.close()
            if b is not None:
                b.close()


# ---------------------------------------------------------- 3. relay capacity
@dataclass(frozen=True, slots=True)
class RelayLoadJob:
    """Plain non-blocking sockets in one process (no event loop), so the sender and the
    counter cost little next to the relay.

    windowed: at most `window` datagrams in flight (sent - received - presumed lost);
    when nothing arrives for `stall_s` the ones in flight are presumed lost.
    blast: bursts of `burst` datagrams as fast as the sender can, draining the receiver
    between bursts; the relay cannot keep up, so its socket buffer overflows (drops).
    """

    pair: UdpPair
    window: int
    windowed_s: float
    blast_s: float
    payload_bytes: int
    stall_s: float = RELAY_STALL_S
    burst: int = RELAY_BURST
    drain_s: float = 0.2

    def run(self) -> dict[str, Any]:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tx.bind(self.pair.a_bind)
            rx.bind(self.pair.b_bind)
            tx.setblocking(False)
            rx.setblocking(False)
            payload = b"x" * self.payload_bytes
            self._settle(rx)
            windowed = self._windowed(tx, rx, payload)
            self._settle(rx)
            blast = self._blast(tx, rx, payload)
            return {"windowed": windowed, "blast": blast}
        finally:
            tx.close()
            rx.close()

    def _drain(self, rx: socket.socket) -> int:
        n = 0
        while n < 4096:
            try:
                rx.recv(2048)
            except BlockingIOError:
                break
            n += 1
        return n

    def _settle(self, rx: socket.socket) -> None:
        """Empty the receiver until nothing has arrived for a while (bounded)."""
        end = time.perf_counter() + self.drain_s
        while time.perf_counter() < end:
            if not select.select([rx], [], [], 0.02)[0]:
                return
            self._drain(rx)

    def _windowed(self, tx: socket.socket, rx: socket.socket, payload: bytes) -> dict[str, Any]:
        dest = self.pair.b_public
        sent = received = presumed_lost = 0
        kernel_before = udp_rcvbuf_errors()
        start = last_progress = time.perf_counter()
        end = start + self.windowed_s
        now = start
        # delivered/s per slice of the run, to show how steady the rate was
        slice_s = self.windowed_s / WINDOWED_SLICES
        slice_end, slice_received, slice_rates = start + slice_s, 0, []
        while now < end:
            if now >= slice_end:
                slice_rates.append((received - slice_received) / (now - slice_end + slice_s))
                slice_end, slice_received = now + slice_s, received
            while sent - received - presumed_lost < self.window:
                try:
                    tx.sendto(payload, dest)
                except BlockingIOError:
                    break
                sent += 1
            got = self._drain(rx)
            now = time.perf_counter()
            if got:
                received += got
                last_progress = now
                continue
            select.select([rx], [], [], 0.002)
            now = time.perf_counter()
            if now - last_progress > self.stall_s:
                presumed_lost = sent - received
                last_progress = now
        elapsed = now - start
        tail_end = time.perf_counter() + self.drain_s
        while received < sent and time.perf_counter() < tail_end:
            if select.select([rx], [], [], 0.01)[0]:
                received += self._drain(rx)
        result = _load_result(sent, received, elapsed, kernel_before)
        result["slice_delivered_per_s"] = [round(rate) for rate in slice_rates]
        return result

    def _blast(self, tx: socket.socket, rx: socket.socket, payload: bytes) -> dict[str, Any]:
        dest = self.pair.b_public
        sent = received = 0
        kernel_before = udp_rcvbuf_errors()
        start = time.perf_counter()
        end = start + self.blast_s
        now = start
        while now < end:
            for _ in range(self.burst):
                try:
                    tx.sendto(payload, dest)
                except BlockingIOError:
                    break
                sent += 1
            received += self._drain(rx)
            now = time.perf_counter()
        elapsed = now - start
        tail_end = time.perf_counter() + self.drain_s
        while received < sent and time.perf_counter() < tail_end:
            if not select.select([rx], [], [], 0.02)[0]:
                break
            received += self._drain(rx)
        return _load_result(sent, received, elapsed, kernel_before)


def _load_result(
    sent: int, received: int, elapsed: float, kernel_before: int | None
) -> dict[str, Any]:
    kernel_after = udp_rcvbuf_errors()
    return {
        "sent": sent,
        "received": received,
        "elapsed_s": elapsed,
        "offered_per_s": sent / elapsed if elapsed > 0 else math.nan,
        "delivered_per_s": received / elapsed if elapsed > 0 else math.nan,
        "loss_fraction": (sent - received) / sent if sent else math.nan,
        "kernel_rcvbuf_drops": None
        if kernel_before is None or kernel_after is None
        else kernel_after - kernel_before,
    }


# ------------------------------------------------------ proxy orchestration
async def _expose_pair(backend: ProxyBackend, rng: random.Random) -> UdpPair:
    ports = []
    for host, ip in (("bench-a", PROXY_A), ("bench-b", PROXY_B)):
        port = free_udp_port([ip, private_ip(ip)], rng)
        await backend.expose(host, Proto.UDP, port)
        ports.append(port)
    pa, pb = ports
    return UdpPair(
        a_bind=(private_ip(PROXY_A), pa),
        b_bind=(private_ip(PROXY_B), pb),
        a_public=(PROXY_A, pa),
        b_public=(PROXY_B, pb),
    )


def _direct_pair(rng: random.Random) -> UdpPair:
    pa = free_udp_port([DIRECT_A], rng)
    pb = free_udp_port([DIRECT_B], rng)
    return UdpPair((DIRECT_A, pa), (DIRECT_B, pb), (DIRECT_A, pa), (DIRECT_B, pb))


@contextlib.asynccontextmanager
async def proxy_world(seed: int) -> AsyncIterator[tuple[World, ProxyBackend]]:
    topology = Topology(
        name="bench-proxy",
        hosts=(HostSpec("bench-a", "bench", PROXY_A), HostSpec("bench-b", "bench", PROXY_B)),
    )
    with tempfile.TemporaryDirectory(prefix="tplab-bench-") as tmp:
        async with open_world(topology, backend="proxy", seed=seed, state_dir=Path(tmp)) as world:
            assert isinstance(world.backend, ProxyBackend)
            yield world, world.backend


async def proxy_measurements(params: NetsimParams, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    async with proxy_world(seed) as (world, backend):
        pingpong = PingPongJob(
            proxy=await _expose_pair(backend, rng),
            direct=_direct_pair(rng),
            samples=params.pingpong_samples,
            warmup=params.pingpong_warmup,
            payload_bytes=params.payload_bytes,
            time_limit_s=params.pingpong_time_limit_s,
        )
        out["pingpong_inproc"] = await pingpong.arun()
        out["pingpong_subproc"] = await run_in_child(
            pingpong, CHILD_START_BUDGET_S + params.pingpong_time_limit_s
        )

        latency_pair = await _expose_pair(backend, rng)
        world.impair("bench-a", "bench-b", latency_ms=LATENCY_MS)
        one_way = OneWayJob(
            pair=latency_pair,
            samples=params.latency_samples,
            interval_s=params.latency_interval_ms / 1000.0,
            payload_bytes=params.payload_bytes,
            time_limit_s=params.latency_time_limit_s,
            seed=seed,
        )
        out["latency_inproc"] = await one_way.arun()
        out["latency_subproc"] = await run_in_child(
            one_way, CHILD_START_BUDGET_S + params.latency_time_limit_s
        )
        world.clear("bench-a", "bench-b")

        load = RelayLoadJob(
            pair=await _expose_pair(backend, rng),
            window=params.relay_window,
            windowed_s=params.relay_windowed_s,
            blast_s=params.relay_blast_s,
            payload_bytes=params.payload_bytes,
        )
        out["relay_load"] = await run_in_child(
            load, CHILD_START_BUDGET_S + params.relay_windowed_s + params.relay_blast_s + 2.0
        )
        out["relay_errors"] = list(backend.errors)
    return out


# ------------------------------------------------------------ 4. sim throughput
class _SimCounter:
    def __init__(self, limit: int, wall_deadline: float, done: asyncio.Future[None]) -> None:
        self.limit = limit
        self.wall_deadline = wall_deadline
        self.done = done
        self.count = 0
        self.final = 0
        self.wall_end = 0.0


class _SimBouncer:
    """Both ends of a flow: bounce every datagram back until the counter says stop."""

    def __init__(self, counter: _SimCounter) -> None:
        self.counter = counter
        self.endpoint: DatagramEndpoint | None = None

    def datagram_received(self, data: bytes, src: Address) -> None:
        counter = self.counter
        counter.count += 1
        if counter.done.done():
            return
        if counter.count >= counter.limit or (
            counter.count & 1023 == 0 and time.perf_counter() > counter.wall_deadline
        ):
            counter.wall_end = time.perf_counter()
            counter.final = counter.count
            counter.done.set_result(None)
            return
        assert self.endpoint is not None
        self.endpoint.send(data, src)

    def error_received(self, exc: Exception) -> None:
        return None


async def _sim_flows(
    sim: SimWorld,
    hosts: Sequence[HostSpec],
    messages: int,
    flows: int,
    time_limit_s: float,
    payload_bytes: int,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    counter = _SimCounter(messages, time.perf_counter() + time_limit_s, done)
    starts: list[tuple[DatagramEndpoint, Address]] = []
    for flow in range(flows):
        a_host = hosts[flow % len(hosts)]
        b_host = hosts[(flow + 1) % len(hosts)]
        a, b = _SimBouncer(counter), _SimBouncer(counter)
        a.endpoint = await sim.runtime(a_host.name).network.open_datagram(0, a)
        b.endpoint = await sim.runtime(b_host.name).network.open_datagram(0, b)
        starts.append((a.endpoint, b.endpoint.local))
    virtual_start = loop.time()
    wall_start = time.perf_counter()
    payload = b"p" * payload_bytes
    for endpoint, dest in starts:
        endpoint.send(payload, dest)
    await done
    wall_s = counter.wall_end - wall_start
    return {
        "messages": counter.final,
        "wall_s": wall_s,
        "virtual_s": loop.time() - virtual_start,
        "msg_per_s": counter.final / wall_s if wall_s > 0 else math.nan,
        "trace_events": sim.trace.total,
    }


def sim_throughput(
    *,
    messages: int,
    flows: int,
    trace_packets: bool,
    time_limit_s: float,
    seed: int,
    payload_bytes: int = 64,
) -> dict[str, Any]:
    hosts = tuple(HostSpec(f"sim-{i}", "bench", f"{SIM_NET}{i + 1}") for i in range(SIM_HOSTS))
    topology = Topology(
        name="bench-sim",
        hosts=hosts,
        link_defaults=LinkSpec(latency_ms=SIM_LATENCY_MS, jitter_ms=SIM_JITTER_MS),
    )
    sim = SimWorld(topology, seed=seed, trace_packets=trace_packets)
    try:
        return sim.run(_sim_flows(sim, hosts, messages, flows, time_limit_s, payload_bytes))
    finally:
        sim.close()


# ------------------------------------------------------------------ the group
PINGPONG_METHOD = (
    "ping-pong of {payload}-byte datagrams between two asyncio endpoints opened with "
    "netsim.real.RealNetwork (A times the RTT with perf_counter_ns, B echoes at once); "
    "each sample through the proxy relay (no impairment) is interleaved with one on two "
    "plain loopback sockets (direct), alternating which goes first, after {warmup} "
    "warm-up pairs; added one-way delay = (quantile of relay RTT - same quantile of "
    "direct RTT) / 2, i.e. round trip halved. {placement}"
)
PLACEMENT_SUB = (
    "Placement: both endpoints in one spawned child process with its own event loop; the "
    "relay alone on the parent's loop (as in tplab up: relay in the supervisor, nodes in "
    "their own processes)."
)
PLACEMENT_IN = "Placement: relay and both endpoints on one event loop in one process."
LATENCY_METHOD = (
    "world.impair(a, b, latency_ms=15) on the proxy relay; A sends timestamped "
    "(perf_counter_ns) datagrams to B at irregular {interval} ms +-50 % intervals; B, in "
    "the same process as A (one clock), takes delay = arrival - send timestamp; error = "
    "delay - 15 ms. {placement}"
)
LOAD_METHOD = (
    "relay in this process, sender and receiver on plain non-blocking sockets in one "
    "spawned child process (no event loop); {payload}-byte datagrams A -> B through one "
    "relay, no impairment. {mode}"
)
WINDOWED_MODE = (
    "Windowed: at most {window} datagrams in flight (sent - received), so the rate follows "
    "the relay's capacity without overloading it; in flight for {stall_ms:g} ms without "
    "progress = presumed lost. delivered/s over {seconds:g} s."
)
BLAST_MODE = (
    "Blast: bursts of {burst} sent as fast as the sender can, receiver drained between "
    "bursts, for {seconds:g} s; the relay is overloaded, so drops at its socket buffer."
)
SIM_METHOD = (
    "SimWorld, {hosts} hosts, link defaults latency {lat:g} ms jitter {jit:g} ms; {flows} "
    "ping-pong flows of {payload}-byte datagrams (each delivery bounces straight back) "
    "until {messages} deliveries or {limit:g} s wall; msg/s = deliveries / wall seconds."
)


def _added_delay(pp: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    proxy, direct = pp["rtt_ms"]["proxy"], pp["rtt_ms"]["direct"]
    median = (quantile(proxy, 0.5) - quantile(direct, 0.5)) / 2
    p99 = (quantile(proxy, 0.99) - quantile(direct, 0.99)) / 2
    paired = [(p - d) / 2 for p, d in zip(proxy, direct, strict=False)]
    details = {
        "samples": pp["samples"],
        "planned": pp["planned"],
        "lost": pp["lost"],
        "rtt_proxy_ms": _stats_ms(proxy),
        "rtt_direct_ms": _stats_ms(direct),
        "paired_added_one_way_ms": _stats_ms(paired),
    }
    return median, p99, details


def _pingpong_figures(
    pp: dict[str, Any], suffix: str, placement: str, params: NetsimParams
) -> list[Figure]:
    median, p99, details = _added_delay(pp)
    method = PINGPONG_METHOD.format(
        payload=params.payload_bytes, warmup=params.pingpong_warmup, placement=placement
    )
    rtt_p, rtt_d = details["rtt_proxy_ms"], details["rtt_direct_ms"]
    summary = (
        f"RTT median relay {rtt_p['median']} / direct {rtt_d['median']} ms; n={details['samples']}"
    )
    return [
        Figure(
            f"proxy_added_delay_median{suffix}",
            median,
            "ms",
            "added one-way delay of the proxy relay, no impairment (RTT halved), median",
            method,
            Target("max", ADDED_DELAY_TARGET_MS),
            {**details, "summary": summary},
        ),
        Figure(
            f"proxy_added_delay_p99{suffix}",
            p99,
            "ms",
            "added one-way delay of the proxy relay, no impairment (RTT halved), p99",
            method,
            None,
            {
                "summary": f"RTT p99 relay {rtt_p['p99']} / direct {rtt_d['p99']} ms",
            },
        ),
    ]


def _latency_figures(
    lat: dict[str, Any], suffix: str, placement: str, params: NetsimParams
) -> list[Figure]:
    errors = [d - LATENCY_MS for d in lat["delays_ms"]]
    method = LATENCY_METHOD.format(interval=params.latency_interval_ms, placement=placement)
    err = _stats_ms(errors)
    details = {
        "sent": lat["sent"],
        "received": len(errors),
        "error_ms": err,
        "delay_ms": _stats_ms(lat["delays_ms"]),
    }
    return [
        Figure(
            f"latency_15ms_error_median{suffix}",
            quantile(errors, 0.5),
            "ms",
            "delivered one-way delay minus the injected 15 ms, median",
            method,
            Target("abs_max", LATENCY_ERROR_TARGET_MS),
            {**details, "summary": f"n={len(errors)} of {lat['sent']} sent"},
        ),
        Figure(
            f"latency_15ms_error_p99{suffix}",
            quantile(errors, 0.99),
            "ms",
            "delivered one-way delay minus the injected 15 ms, p99",
            method,
            None,
            {"summary": f"min {err['min']} ms, max {err['max']} ms"},
        ),
    ]


def _load_figures(load: dict[str, Any], params: NetsimParams) -> list[Figure]:
    figures: list[Figure] = []
    for mode, mode_text in (
        (
            "windowed",
            WINDOWED_MODE.format(
                window=params.relay_window,
                stall_ms=RELAY_STALL_S * 1000,
                seconds=params.relay_windowed_s,
            ),
        ),
        ("blast", BLAST_MODE.format(burst=RELAY_BURST, seconds=params.relay_blast_s)),
    ):
        r = load[mode]
        method = LOAD_METHOD.format(payload=params.payload_bytes, mode=mode_text)
        details = {k: (_r(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
        figures.append(
            Figure(
                f"relay_{mode}_delivered_per_s",
                r["delivered_per_s"],
                "datagrams/s",
                f"datagrams/s delivered through one relay ({mode})",
                method,
                None,
                {**details, "summary": _load_summary(r)},
            )
        )
        figures.append(
            Figure(
                f"relay_{mode}_loss_fraction",
                r["loss_fraction"],
                "fraction",
                f"fraction of datagrams lost in the relay ({mode})",
                method,
                None,
                {
                    "sent": r["sent"],
                    "received": r["received"],
                    "summary": f"kernel rcvbuf drops {r['kernel_rcvbuf_drops']}",
                },
            )
        )
    return figures


def _load_summary(r: dict[str, Any]) -> str:
    text = f"offered {r['offered_per_s']:,.0f}/s"
    slices = r.get("slice_delivered_per_s") or []
    if slices:
        text += f"; per {len(slices)} slices {min(slices):,}-{max(slices):,}/s"
    return text


def _sim_figure(result: dict[str, Any], trace: bool, params: NetsimParams) -> Figure:
    method = SIM_METHOD.format(
        hosts=SIM_HOSTS,
        lat=SIM_LATENCY_MS,
        jit=SIM_JITTER_MS,
        flows=params.sim_flows,
        payload=params.payload_bytes,
        messages=params.sim_messages,
        limit=params.sim_time_limit_s,
    )
    label = "on" if trace else "off"
    details = {k: (_r(v, 6) if isinstance(v, float) else v) for k, v in result.items()}
    return Figure(
        f"sim_msg_per_s_trace_{label}",
        result["msg_per_s"],
        "msg/s",
        f"simulated datagrams delivered per wall second, packet tracing {label}",
        method + f" trace_packets={trace}.",
        Target("min", SIM_TARGET_MSG_PER_S),
        {
            **details,
            "summary": f"{result['messages']:,} msgs in {result['wall_s']:.2f} s wall, "
            f"{result['virtual_s']:.1f} s virtual",
        },
    )


@bench_group(
    "netsim",
    "netsim: proxy relay added delay and latency accuracy, relay capacity, sim throughput",
)
def run_netsim(options: BenchOptions) -> GroupResult:
    params = NetsimParams.scaled(options.scale)
    result = GroupResult(group="netsim", params=dataclasses.asdict(params))
    proxy = asyncio.run(proxy_measurements(params, options.seed))
    result.figures += _pingpong_figures(proxy["pingpong_subproc"], "", PLACEMENT_SUB, params)
    result.figures += _pingpong_figures(proxy["pingpong_inproc"], "_inproc", PLACEMENT_IN, params)
    result.figures += _latency_figures(proxy["latency_subproc"], "", PLACEMENT_SUB, params)
    result.figures += _latency_figures(proxy["latency_inproc"], "_inproc", PLACEMENT_IN, params)
    result.figures += _load_figures(proxy["relay_load"], params)
    for trace in (False, True):
        sim = sim_throughput(
            messages=params.sim_messages,
            flows=params.sim_flows,
            trace_packets=trace,
            time_limit_s=params.sim_time_limit_s,
            seed=options.seed,
            payload_bytes=params.payload_bytes,
        )
        result.figures.append(_sim_figure(sim, trace, params))
    if proxy["relay_errors"]:
        result.notes.append(f"relay reported {len(proxy['relay_errors'])} error(s)")
        result.params["relay_errors"] = proxy["relay_errors"][:20]
    return result
