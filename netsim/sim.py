"""The simulated world: one asyncio event loop in virtual time and an in-memory network.

`VirtualTimeLoop` is a real asyncio event loop whose clock only moves when
every task is idle: it then jumps to the next timer. Nothing waits on the wall
clock, so a minute of simulated protocol runs in milliseconds. There are no
sockets, threads or DNS in it: an attempt to use them raises.

`SimWorld` builds a `World` on that loop and gives each host a `SimNetwork`
and a `SimRuntime` that satisfy `netsim.api` exactly as the real ones do, so
node code cannot tell the difference. Datagrams go through the world's
impairment table (the same code the proxy relay uses); streams are in-memory
transports shaped by `StreamDirection`, and TLS runs for real on top of them
through asyncio's own `start_tls`.

Determinism: all randomness comes from the seed (per-direction impairment RNGs,
per-node RNGs), ephemeral ports are allocated in order, and the loop runs
callbacks in a fixed order; the same seed and inputs give a byte-identical
event trace.
"""

from __future__ import annotations

import asyncio
import errno
import random
import ssl
import tempfile
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from netsim.api import (
    IPV4_UDP_OVERHEAD,
    Address,
    DatagramHandler,
    HostAddress,
    MessageTooLong,
    NodeRuntime,
    Proto,
    ProtocolFactory,
)
from netsim.core.impairments import ImpairmentTable
from netsim.core.routing import record_delivery, route_datagram
from netsim.core.stream import StreamDirection, connect_verdict
from netsim.core.toxics import Deliver, Drop, Reject
from netsim.core.trace import EventTrace
from netsim.topology import Topology
from netsim.world import IMPAIRMENTS, Capability, Support, World

T = TypeVar("T")

DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EPHEMERAL_FIRST_PORT = 49152
#: the client outside the topology (`SimWorld.outside_network`)
OUTSIDE_HOST = "outside"
OUTSIDE_IP = "127.0.0.1"
#: SYN retransmission delays (Linux tcp_syn_retries=6): a dropped connection attempt
#: is retried after 1, 2, 4, ... s and fails with ETIMEDOUT after about 127 s.
SYN_RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


class SimulationStalled(RuntimeError):
    """Every task waits and no timer is pending: virtual time cannot advance."""


class _VirtualSelector:
    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        if timeout is None:
            raise SimulationStalled(
                "the simulated world is idle: every task waits and no timer is pending"
            )
        if timeout > 0:
            self._loop._advance_to_next_timer()
        else:
            self._loop._advance_to_due_timer()
        return []

    def close(self) -> None:
        return None


class VirtualTimeLoop(asyncio.BaseEventLoop):
    """An asyncio loop whose `time()` is virtual and jumps to the next timer when idle."""

    def __init__(self, start_s: float = 0.0) -> None:
        super().__init__()
        self._now = start_s
        self._selector = _VirtualSelector(self)

    def time(self) -> float:
        return self._now

    def _advance_to_next_timer(self) -> None:
        scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
        if scheduled:
            self._now = max(self._now, scheduled[0].when())

    def _advance_to_due_timer(self) -> None:
        """asyncio runs a timer due within its clock resolution (1 ns) without waiting, so
        time must reach it too: a task that sleeps until a deadline 1e-14 s away and then
        checks `now >= deadline` would otherwise wake, find it false, and sleep again for
        ever without time moving (seen in the VCS's poller after an hour of virtual time)."""
        scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
        if scheduled:
            when = scheduled[0].when()
            if when < self._now + self._clock_resolution:  # type: ignore[attr-defined]
                self._now = max(self._now, when)

    def _process_events(self, event_list: list[Any]) -> None:
        return None

    def _write_to_self(self) -> None:
        return None

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., T], *args: Any
    ) -> Any:
        raise RuntimeError("the simulated world has no threads: run_in_executor is not available")

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EHOSTUNREACH, "the simulated world has no DNS: use host addresses")


def _feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    if isinstance(protocol, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]
    elif isinstance(protocol, asyncio.Protocol):
        protocol.data_received(data)


_FIN = object()


class SimTransport(asyncio.Transport):
    """One end of an in-memory stream; bytes go to the peer through the impairment table."""

    _start_tls_compatible = True

    def __init__(
        self,
        sim: SimWorld,
        direction: StreamDirection,
        local: Address,
        peer: Address,
        *,
        paused: bool = False,
    ) -> None:
        super().__init__()
        self._sim = sim
        self._direction = direction
        self._local = local
        self._peer_addr = peer
        self._protocol: asyncio.BaseProtocol = asyncio.Protocol()
        self.peer: SimTransport | None = None
        self._closing = False
        self._closed = False
        self._paused = paused
        self._inbox: deque[bytes | object] = deque()
        self._blocked: deque[bytes | object] = deque()
        #: sent by the peer, not yet arrived, oldest first
        self._in_flight: deque[bytes | object] = deque()

    # -- asyncio.Transport
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self._peer_addr, "sockname": self._local}.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def is_reading(self) -> bool:
        return not self._paused and not self._closed

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        if not self._paused:
            return
        self._paused = False
        while self._inbox and not self._paused and not self._closed:
            self._arrive(self._inbox.popleft())

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        return None

    def get_write_buffer_size(self) -> int:
        return sum(len(item) for item in self._blocked if isinstance(item, bytes))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        self._send(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if not self._closing:
            self._send(_FIN)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._send(_FIN)
        self._sim.loop.call_soon(self._lost, None)

    def abort(self) -> None:
        self._force_close(None)

    def _force_close(self, exc: Exception | None) -> None:
        """Close at once (asyncio's SSL protocol calls this on a failed handshake)."""
        if self._closed:
            return
        self._closing = True
        self._blocked.clear()
        peer = self.peer
        if peer is not None and not peer._closed:
            self._sim.loop.call_soon(peer._lost, ConnectionResetError("connection reset by peer"))
        self._sim.loop.call_soon(self._lost, exc)

    # -- moving bytes
    def _send(self, item: bytes | object) -> None:
        if self._blocked:
            self._blocked.append(item)
            return
        if not self._offer(item):
            self._blocked.append(item)
            self._sim.on_next_change(self._flush_blocked)

    def _offer(self, item: bytes | object) -> bool:
        size = len(item) if isinstance(item, bytes) else 0
        at = self._direction.offer(size, self._sim.loop.time())
        if at is None:
            return False
        peer = self.peer
        if peer is not None:
            # a stream is in order: each timer delivers the oldest item in flight, as
            # asyncio runs timers due at the same time in no particular order (a TLS
            # record arriving before the one sent ahead of it fails its MAC)
            peer._in_flight.append(item)
            self._sim.loop.call_at(at, peer._arrive_next)
        return True

    def _flush_blocked(self) -> None:
        while self._blocked:
            if not self._offer(self._blocked[0]):
                self._sim.on_next_change(self._flush_blocked)
                return
            self._blocked.popleft()

    def _arrive_next(self) -> None:
        self._arrive(self._in_flight.popleft())

    def _arrive(self, item: bytes | object) -> None:
        # a real transport stops reading when it is closed, before connection_lost
        # runs: nothing may reach the protocol in between (aiohttp's server would start
        # a request its connection_lost then tears down)
        if self._closing:
            return
        if self._paused:
            self._inbox.append(item)
            return
        if item is _FIN:
            keep_open = False
            if isinstance(self._protocol, asyncio.Protocol | asyncio.BufferedProtocol):
                keep_open = bool(self._protocol.eof_received())
            if not keep_open:
                self.close()
            return
        assert isinstance(item, bytes)
        _feed(self._protocol, item)

    def _lost(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._protocol.connection_lost(exc)


class SimDatagramEndpoint:
    def __init__(
        self, net: SimNetwork, port: int, handler: DatagramHandler, mtu_bytes: int
    ) -> None:
        self._net = net
        self._port = port
        self.handler = handler
        self._mtu_bytes = mtu_bytes
        self.closed = False

    @property
    def local(self) -> Address:
        return (self._net.host.ip, self._port)

    @property
    def mtu_bytes(self) -> int:
        return self._mtu_bytes

    def send(self, data: bytes, dest: Address) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "datagram endpoint is closed")
        size = len(data) + IPV4_UDP_OVERHEAD
        if size > self._mtu_bytes:
            raise MessageTooLong(size, self._mtu_bytes)
        self._net.sim.send_datagram(self._net.host.name, self.local, dest, bytes(data))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._net.sim.unbind(Proto.UDP, self.local)


class SimListener:
    def __init__(
        self,
        sim: SimWorld,
        address: Address,
        factory: ProtocolFactory,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self._sim = sim
        self.address = address
        self.factory = factory
        self.ssl_context = ssl_context
        self.closed = False

    @property
    def port(self) -> int:
        return self.address[1]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._sim.unbind(Proto.TCP, self.address)

    async def wait_closed(self) -> None:
        return None


class SimNetwork:
    def __init__(self, sim: SimWorld, host: HostAddress, mtu_bytes: int) -> None:
        self.sim = sim
        self._host = host
        self.mtu_bytes = mtu_bytes

    @property
    def host(self) -> HostAddress:
        return self._host

    async def open_datagram(self, port: int, handler: DatagramHandler) -> SimDatagramEndpoint:
        port = self.sim.bind(Proto.UDP, self._host.ip, port)
        endpoint = SimDatagramEndpoint(self, port, handler, self.mtu_bytes)
        self.sim.datagram_endpoints[(self._host.ip, port)] = endpoint
        return endpoint

    async def create_server(
        self,
        protocol_factory: ProtocolFactory,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> SimListener:
        port = self.sim.bind(Proto.TCP, self._host.ip, port)
        listener = SimListener(self.sim, (self._host.ip, port), protocol_factory, ssl_context)
        self.sim.listeners[(self._host.ip, port)] = listener
        return listener

    async def create_connection(
        self,
        protocol_factory: ProtocolFactory,
        address: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        return await self.sim.connect(
            self._host, protocol_factory, address, port, ssl_context, server_hostname
        )


class SimClock:
    def __init__(self, sim: SimWorld, host: str) -> None:
        self._sim = sim
        self._host = host

    def monotonic(self) -> float:
        return self._sim.loop.time()

    def wall(self) -> datetime:
        offset_s = self._sim.world.table.clock_offset_s(self._host)
        return self._sim.epoch + timedelta(seconds=self._sim.loop.time() + offset_s)


class SimRuntime(NodeRuntime):
    """A runtime in the simulated world: virtual clock, RNG from the world's seed."""

    def __init__(self, sim: SimWorld, host: str) -> None:
        spec = sim.world.topology.host(host)
        data_dir = sim.data_root / host
        data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            host=spec.address,
            clock=SimClock(sim, host),
            rng=random.Random(f"{sim.world.seed}:node:{host}"),
            network=SimNetwork(sim, spec.address, spec.mtu_bytes),
            data_dir=data_dir,
            database_url=f"sqlite:///{data_dir / 'store.sqlite'}",
        )


class SimBackend:
    """Everything is userspace in the simulated world; changes wake stalled streams."""

    name = "sim"

    def __init__(self) -> None:
        self.sim: SimWorld | None = None

    def capabilities(self) -> dict[str, Capability]:
        return {name: Capability(Support.USERSPACE) for name in IMPAIRMENTS}

    def apply(self, table: ImpairmentTable) -> None:
        if self.sim is not None:
            self.sim.changed()

    async def start(self, world: World) -> None:
        return None

    async def stop(self) -> None:
        return None


class SimWorld:
    """A whole world in one process: virtual time, in-memory network, one seed."""

    def __init__(
        self,
        topology: Topology,
        *,
        seed: int = 0,
        trace_packets: bool = True,
        data_root: Path | None = None,
        epoch: datetime = DEFAULT_EPOCH,
    ) -> None:
        self.loop = VirtualTimeLoop()
        self.loop.set_exception_handler(self._on_loop_error)
        self.errors: list[dict[str, Any]] = []
        backend = SimBackend()
        self.world = World(
            topology,
            seed=seed,
            now=self.loop.time,
            backend=backend,
            trace=EventTrace(packets=trace_packets),
        )
        backend.sim = self
        self.epoch = epoch
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tplab-sim-")
            data_root = Path(self._tmp.name)
        self.data_root = data_root
        self.datagram_endpoints: dict[Address, SimDatagramEndpoint] = {}
        self.listeners: dict[Address, SimListener] = {}
        self._bound: set[tuple[Proto, str, int]] = set()
        self._next_port: dict[str, int] = {}
        self._change_waiters: list[Callable[[], None]] = []
        self._runtimes: dict[str, SimRuntime] = {}
        self._outside: SimNetwork | None = None
        #: an empty table for the outside client's streams (never impaired)
        self._clear_table = ImpairmentTable([*topology.names, OUTSIDE_HOST], seed=seed)

    @property
    def trace(self) -> EventTrace:
        return self.world.trace

    def outside_network(self) -> SimNetwork:
        """A client outside the topology (an administrator's browser, a scenario runner):
        its connections to any host are never impaired, as the proxy backend relays a
        client that is not a host of the topology as is."""
        if self._outside is None:
            self._outside = SimNetwork(self, HostAddress(OUTSIDE_HOST, "outside", OUTSIDE_IP), 1500)
        return self._outside

    def runtime(self, host: str) -> SimRuntime:
        runtime = self._runtimes.get(host)
        if runtime is None:
            runtime = self._runtimes[host] = SimRuntime(self, host)
        return runtime

    # ------------------------------------------------------------- running
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` to completion in virtual time; raise if any callback failed."""
        result = self.loop.run_until_complete(coro)
        self.raise_errors()
        return result

    def run_for(self, seconds: float) -> None:
        self.run(asyncio.sleep(seconds))

    def raise_errors(self) -> None:
        if self.errors:
            first = self.errors[0]
            self.errors.clear()
            exc = first.get("exception")
            if isinstance(exc, BaseException):
                raise exc
            raise RuntimeError(first.get("message", "error in the simulated world"))

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def close(self) -> None:
        loop = self.loop
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # ------------------------------------------------------------- binding
    def bind(self, proto: Proto, ip: str, port: int) -> int:
        if port == 0:
            port = self._next_port.get(ip, EPHEMERAL_FIRST_PORT)
            while (proto, ip, port) in self._bound:
                port += 1
            self._next_port[ip] = port + 1
        if not 0 < port <= 65535:
            raise OSError(errno.EINVAL, f"invalid port {port}")
        if (proto, ip, port) in self._bound:
            raise OSError(errno.EADDRINUSE, f"{proto.value} {ip}:{port} is already in use")
        self._bound.add((proto, ip, port))
        return port

    def unbind(self, proto: Proto, address: Address) -> None:
        self._bound.discard((proto, address[0], address[1]))
        if proto is Proto.UDP:
            self.datagram_endpoints.pop(address, None)
        else:
            self.listeners.pop(address, None)

    # ------------------------------------------------------------- changes
    def on_next_change(self, callback: Callable[[], None]) -> None:
        self._change_waiters.append(callback)

    def changed(self) -> None:
        waiters, self._change_waiters = self._change_waiters, []
        for callback in waiters:
            self.loop.call_soon(callback)

    # ----------------------------------------------------------- datagrams
    def send_datagram(self, src_host: str, src: Address, dest: Address, data: bytes) -> None:
        trace = self.world.trace
        now = self.loop.time()
        dst_spec = self.world.topology.host_by_ip(dest[0])
        if dst_spec is None:
            if trace.packets:
                trace.record(now, "udp_drop", src=src_host, dst=dest[0], reason="no route to host")
            return
        times = route_datagram(
            self.world.table,
            trace,
            now,
            src=src_host,
            dst=dst_spec.name,
            sport=src[1],
            dport=dest[1],
            payload_bytes=len(data),
        )
        for at in times:
            self.loop.call_at(at, self._deliver_datagram, src_host, dst_spec.name, src, dest, data)

    def _deliver_datagram(
        self, src_host: str, dst_host: str, src: Address, dest: Address, data: bytes
    ) -> None:
        endpoint = self.datagram_endpoints.get(dest)
        trace = self.world.trace
        if endpoint is None:
            if trace.packets:
                trace.record(
                    self.loop.time(),
                    "udp_drop",
                    src=src_host,
                    dst=dst_host,
                    dport=dest[1],
                    reason="port unreachable",
                )
            return
        record_delivery(
            trace,
            self.loop.time(),
            src=src_host,
            dst=dst_host,
            sport=src[1],
            dport=dest[1],
            payload_bytes=len(data),
        )
        endpoint.handler.datagram_received(data, src)

    # -------------------------------------------------------------- streams
    async def connect(
        self,
        src: HostAddress,
        factory: ProtocolFactory,
        address: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        table = self.world.table if src.name != OUTSIDE_HOST else self._clear_table
        trace = self.world.trace
        dst_spec = self.world.topology.host_by_ip(address)
        if dst_spec is None:
            raise OSError(errno.EHOSTUNREACH, f"no route to host {address}")
        sport = self.bind(Proto.TCP, src.ip, 0)
        try:
            for retry_s in (*SYN_RETRY_DELAYS_S, None):
                now = self.loop.time()
                verdict = connect_verdict(table, src.name, dst_spec.name, sport, port, now)
                if isinstance(verdict, Deliver):
                    await asyncio.sleep(verdict.at - now)
                    back = connect_verdict(
                        table, dst_spec.name, src.name, port, sport, self.loop.time()
                    )
                    if isinstance(back, Deliver):
                        listener = self.listeners.get((address, port))
                        if listener is None:
                            raise ConnectionRefusedError(
                                errno.ECONNREFUSED, f"connection refused by {address}:{port}"
                            )
                        await asyncio.sleep(back.at - self.loop.time())
                        if trace.packets:
                            trace.record(
                                self.loop.time(),
                                "tcp_connect",
                                src=src.name,
                                dst=dst_spec.name,
                                dport=port,
                            )
                        return await self._establish(
                            src, sport, listener, factory, ssl_context, server_hostname, address
                        )
                    verdict = back
                if isinstance(verdict, Reject):
                    raise ConnectionRefusedError(
                        errno.ECONNREFUSED,
                        f"connection to {address}:{port} refused: {verdict.reason}",
                    )
                assert isinstance(verdict, Drop)
                if trace.packets:
                    trace.record(
                        self.loop.time(),
                        "tcp_syn_drop",
                        src=src.name,
                        dst=dst_spec.name,
                        dport=port,
                        reason=verdict.reason,
                    )
                if retry_s is None:
                    break
                await asyncio.sleep(retry_s)
            raise TimeoutError(errno.ETIMEDOUT, f"connection to {address}:{port} timed out")
        finally:
            self._bound.discard((Proto.TCP, src.ip, sport))

    async def _establish(
        self,
        src: HostAddress,
        sport: int,
        listener: SimListener,
        factory: ProtocolFactory,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        address: str,
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        dst_spec = self.world.topology.host_by_ip(address)
        assert dst_spec is not None
        table = self.world.table if src.name != OUTSIDE_HOST else self._clear_table
        local, remote = (src.ip, sport), listener.address
        client = SimTransport(
            self,
            StreamDirection(table, src.name, dst_spec.name, sport, remote[1]),
            local,
            remote,
            paused=ssl_context is not None,
        )
        server = SimTransport(
            self,
            StreamDirection(table, dst_spec.name, src.name, remote[1], sport),
            remote,
            local,
            paused=listener.ssl_context is not None,
        )
        client.peer, server.peer = server, client
        server_protocol = listener.factory()
        if listener.ssl_context is None:
            server.set_protocol(server_protocol)
            server_protocol.connection_made(server)
        else:
            self.loop.create_task(self._server_tls(server, server_protocol, listener.ssl_context))
        app = factory()
        if ssl_context is None:
            client.set_protocol(app)
            app.connection_made(client)
            return client, app
        try:
            tls = await self.loop.start_tls(
                client, app, ssl_context, server_hostname=server_hostname or address
            )
        except BaseException:
            client.abort()
            raise
        assert tls is not None
        app.connection_made(tls)
        return tls, app

    async def _server_tls(
        self, raw: SimTransport, protocol: asyncio.BaseProtocol, context: ssl.SSLContext
    ) -> None:
        try:
            tls = await self.loop.start_tls(raw, protocol, context, server_side=True)
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            if self.world.trace.packets:
                self.world.trace.record(self.loop.time(), "tls_failed", error=str(exc))
            raw.abort()
            return
        assert tls is not None
        protocol.connection_made(tls)
