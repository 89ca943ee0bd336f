"""The proxy backend (default, no privileges) and the off backend (no impairments).

Proxy: every host has a public address (the topology's, e.g. 127.1.2.4) and a
private one (second octet + 128: 127.129.2.4). Nodes bind the private address;
the relay binds the public one on each port a node serves, and moves traffic
through the world's impairment table:

- datagrams: a datagram from private S:sp to public D:dp is relayed from the
  relay socket on public S:sp to private D:dp, so D sees the sender's public
  address and its reply takes the symmetric path through S's relay. Relay
  sockets for a sender's port are made on first use.
- streams: the relay accepts on public D:dp, learns S from the client's bound
  private address, applies the connection verdict (drop = the attempt hangs and
  is retried like a SYN, reject = reset), connects to private D:dp from public
  S, and pumps each direction through a `StreamDirection` (in order, stalled
  while the path is down, delayed by latency and bandwidth). A client that is not
  a host of the topology (an administrator's browser, the CLI) is relayed as is.

UDP "reject" behaves as drop in the proxy: userspace cannot send the ICMP
error, and an unconnected UDP sender would not see it anyway.

Off: nodes bind their public addresses and talk directly; nothing can be impaired
except clock offsets (which live in the nodes' runtimes).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
import struct
from collections.abc import Callable
from typing import Any

from netsim.api import Proto
from netsim.core.impairments import ImpairmentTable
from netsim.core.routing import record_delivery, route_datagram
from netsim.core.stream import StreamDirection, connect_verdict
from netsim.core.toxics import Deliver, Reject
from netsim.real import IP_MTU_DISCOVER, IP_PMTUDISC_DO, RealNetwork
from netsim.topology import HostSpec, Topology
from netsim.world import IMPAIRMENTS, Capability, Support, World

SYN_RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
STREAM_CHUNK_BYTES = 65536
#: asyncio's epoll selector rounds each timeout up to a whole millisecond (CPython 3.11
#: sometimes twice: a 9 ms timeout sleeps 10 ms), so a timer fires 0-1 ms late, on average
#: 0.4-0.9 ms (make bench: latency_15ms_error). Delayed traffic is woken this much early
#: and waits out the rest with call_soon, so it is never delivered early.
TIMER_EARLY_S = 0.0005


def private_ip(public_ip: str) -> str:
    """127.A.B.C -> 127.(A+128 mod 256).B.C: where a node binds behind the relay."""
    octets = public_ip.split(".")
    return ".".join([octets[0], str((int(octets[1]) + 128) % 256), octets[2], octets[3]])


class _UdpRelay(asyncio.DatagramProtocol):
    """One relay socket: public address of `host` : `port`; traffic arriving here from
    another host goes to `host`'s private address at `target_port`."""

    def __init__(self, backend: ProxyBackend, host: HostSpec, target_port: int) -> None:
        self.backend = backend
        self.host = host
        self.target_port = target_port

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.backend.relay_datagram(self.host, self.target_port, data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        self.backend.note_error(f"udp relay {self.host.name}:{self.target_port}: {exc}")


class ProxyBackend:
    name = "proxy"

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.world: World | None = None
        self._by_private: dict[str, HostSpec] = {}
        self._udp: dict[
            tuple[str, int], tuple[socket.socket, asyncio.DatagramTransport | None]
        ] = {}
        self._tcp: dict[tuple[str, int], asyncio.Server] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()
        self._stopping = False
        self.errors: list[str] = []
        for host in topology.hosts:
            address = ipaddress.IPv4Address(host.ip)
            if not address.is_loopback:
                raise ValueError(
                    f"the proxy backend needs every host on 127.0.0.0/8; host {host.name!r} has "
                    f"{host.ip} (use the kernel backend for other addresses)"
                )
            private = private_ip(host.ip)
            if topology.host_by_ip(private) is not None:
                raise ValueError(
                    f"private address {private} of host {host.name!r} is a public address in "
                    "the topology; choose addresses whose second octet is below 128"
                )
            self._by_private[private] = host

    # ------------------------------------------------------------------ Backend
    def capabilities(self) -> dict[str, Capability]:
        caps = {name: Capability(Support.USERSPACE) for name in IMPAIRMENTS}
        caps["firewall"] = Capability(
            Support.USERSPACE, "UDP reject acts as drop (no ICMP from userspace)"
        )
        for name in ("loss", "duplicate", "reorder"):
            caps[name] = Capability(Support.USERSPACE, "datagrams only; streams are reliable")
        caps["clock_offset"] = Capability(Support.USERSPACE, "nodes read the world's clock file")
        return caps

    def apply(self, table: ImpairmentTable) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def start(self, world: World) -> None:
        self.world = world
        try:
            for host in self.topology.hosts:
                for ports in host.ports:
                    for port in ports.ports():
                        await self.expose(host.name, ports.proto, port)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self._stopping = True
        for server in self._tcp.values():
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._tcp.values():
            await server.wait_closed()
        for sock, transport in self._udp.values():
            if transport is not None:
                transport.close()
            else:
                sock.close()
        self._tcp.clear()
        self._udp.clear()

    # ------------------------------------------------------------------- nodes
    def network_for(self, host_name: str) -> RealNetwork:
        host = self.topology.host(host_name)

        async def expose(proto: Proto, port: int) -> None:
            await self.expose(host.name, proto, port)

        return RealNetwork(
            host.address, bind_ip=private_ip(host.ip), mtu_bytes=host.mtu_bytes, expose=expose
        )

    async def expose(self, host_name: str, proto: Proto, port: int) -> None:
        """Relay `host`'s public address on `port` to its private address."""
        host = self.topology.host(host_name)
        if proto is Proto.UDP:
            if (host.name, port) not in self._udp:
                self._open_udp(host, port, bind_port=port)
                await self._attach_udp(host, port)
            return
        if (host.name, port) in self._tcp:
            return

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # stop() cancels relayed streams; Python 3.11 would log the cancelled callback task
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_stream(host, port, reader, writer)

        self._tcp[(host.name, port)] = await asyncio.start_server(
            accepted, host.ip, port, reuse_address=True
        )

    def note_error(self, message: str) -> None:
        self.errors.append(message)
        if self.world is not None:
            self.world.trace.record(self.world.now(), "relay_error", error=message)

    # ---------------------------------------------------------------- datagrams
    def _open_udp(self, host: HostSpec, target_port: int, *, bind_port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            try:
                sock.bind((host.ip, bind_port))
            except OSError as exc:
                if bind_port == 0 or exc.errno != errno.EADDRINUSE:
                    raise
                sock.bind((host.ip, 0))  # port taken: relay from another port of the host
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._udp[(host.name, target_port)] = (sock, None)
        return sock

    async def _attach_udp(self, host: HostSpec, target_port: int) -> None:
        sock, _ = self._udp[(host.name, target_port)]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpRelay(self, host, target_port), sock=sock
        )
        self._udp[(host.name, target_port)] = (sock, transport)

    def relay_datagram(self, dst: HostSpec, dport: int, data: bytes, addr: tuple[str, int]) -> None:
        world = self.world
        if world is None or self._stopping:
            return
        src = self._by_private.get(addr[0])
        now = world.now()
        if src is None:
            if world.trace.packets:
                world.trace.record(
                    now,
                    "udp_drop",
                    src=addr[0],
                    dst=dst.name,
                    dport=dport,
                    reason="source is not a host of the topology",
                )
            return
        times = route_datagram(
            world.table,
            world.trace,
            now,
            src=src.name,
            dst=dst.name,
            sport=addr[1],
            dport=dport,
            payload_bytes=len(data),
        )
        for at in times:
            if at <= now:
                self._forward_datagram(src, addr[1], dst, dport, data)
            else:
                self._at_world_time(at, self._forward_datagram, src, addr[1], dst, dport, data)

    def _at_world_time(self, at: float, callback: Callable[..., None], *args: Any) -> None:
        """Call `callback(*args)` at world time `at`, never before (see TIMER_EARLY_S)."""
        assert self.world is not None
        world = self.world
        loop = asyncio.get_running_loop()

        def fire() -> None:
            if world.now() < at:
                loop.call_soon(fire)
            else:
                callback(*args)

        loop.call_later(max(0.0, at - world.now() - TIMER_EARLY_S), fire)

    async def _sleep_until(self, at: float) -> None:
        due: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not due.done():
                due.set_result(None)

        self._at_world_time(at, wake)
        await due

    def _forward_datagram(
        self, src: HostSpec, sport: int, dst: HostSpec, dport: int, data: bytes
    ) -> None:
        if self._stopping or self.world is None:
            return
        entry = self._udp.get((src.name, sport))
        if entry is None:
            try:
                sock = self._open_udp(src, sport, bind_port=sport)
            except OSError as exc:
                self.note_error(f"cannot open relay socket for {src.name}:{sport}: {exc}")
                return
            task = asyncio.get_running_loop().create_task(self._attach_udp(src, sport))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            sock = entry[0]
        try:
            sock.sendto(data, (private_ip(dst.ip), dport))
        except OSError as exc:
            self.note_error(f"relay {src.name}:{sport} -> {dst.name}:{dport}: {exc}")
            return
        record_delivery(
            self.world.trace,
            self.world.now(),
            src=src.name,
            dst=dst.name,
            sport=sport,
            dport=dport,
            payload_bytes=len(data),
        )

    # ------------------------------------------------------------------ streams
    async def _wait_change(self, timeout_s: float | None = None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):  # not wait_for: it can swallow a cancel
                await self._changed.wait()

    async def _relay_stream(
        self,
        dst: HostSpec,
        dport: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        assert self.world is not None
        self._tasks.add(task)
        world = self.world
        peer = writer.get_extra_info("peername")
        src = self._by_private.get(peer[0])
        upstream: asyncio.StreamWriter | None = None
        try:
            if src is None:
                # a client outside the topology (an admin's browser, the CLI): relayed as is
                world.trace.record(
                    world.now(), "tcp_external", src=peer[0], dst=dst.name, dport=dport
                )
                up_reader, upstream = await asyncio.open_connection(private_ip(dst.ip), dport)
                await asyncio.gather(
                    self._pump(reader, upstream, None), self._pump(up_reader, writer, None)
                )
                return
            sport = int(peer[1])
            for retry_s in (*SYN_RETRY_DELAYS_S, None):
                now = world.now()
                verdict = connect_verdict(world.table, src.name, dst.name, sport, dport, now)
                if isinstance(verdict, Deliver):
                    await asyncio.sleep(max(0.0, verdict.at - now))
                    break
                if isinstance(verdict, Reject) or retry_s is None or reader.at_eof():
                    world.trace.record(
                        world.now(),
                        "tcp_refused",
                        src=src.name,
                        dst=dst.name,
                        dport=dport,
                        reason=verdict.reason,
                    )
                    _reset(writer)
                    return
                await self._wait_change(retry_s)
            try:
                up_reader, upstream = await asyncio.open_connection(
                    private_ip(dst.ip), dport, local_addr=(src.ip, 0)
                )
            except OSError:
                _reset(writer)
                return
            forward = StreamDirection(world.table, src.name, dst.name, sport, dport)
            backward = StreamDirection(world.table, dst.name, src.name, dport, sport)
            await asyncio.gather(
                self._pump(reader, upstream, forward), self._pump(up_reader, writer, backward)
            )
        except (ConnectionError, OSError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    w.close()
            self._tasks.discard(task)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: StreamDirection | None,
    ) -> None:
        """Copy one direction; a writer task delivers each chunk at its time, in order."""
        assert self.world is not None
        world = self.world
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                at, data = item
                if at > world.now():
                    await self._sleep_until(at)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        delivering = asyncio.get_running_loop().create_task(deliver())
        try:
            while data := await reader.read(STREAM_CHUNK_BYTES):
                if direction is None:
                    queue.put_nowait((0.0, data))
                    continue
                while (at := direction.offer(len(data), world.now())) is None:
                    await self._wait_change()
                queue.put_nowait((at, data))
            queue.put_nowait(None)
            await delivering
        except (ConnectionError, OSError):
            delivering.cancel()
            writer.close()
        finally:
            if not delivering.done():
                delivering.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await delivering


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, as a refused or rejected connection looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class OffBackend:
    """No relay: nodes bind their public addresses; zero overhead, no impairments."""

    name = "off"

    def __init__(self, topology: Topology | None = None) -> None:
        self.topology = topology

    def capabilities(self) -> dict[str, Capability]:
        caps = {
            name: Capability(Support.UNAVAILABLE, "netsim is off: hosts talk directly")
            for name in IMPAIRMENTS
        }
        caps["clock_offset"] = Capability(Support.USERSPACE, "nodes read the world's clock file")
        return caps

    def apply(self, table: ImpairmentTable) -> None:
        return None

    async def start(self, world: World) -> None:
        self.topology = world.topology

    async def stop(self) -> None:
        return None

    def network_for(self, host_name: str) -> RealNetwork:
        assert self.topology is not None
        host = self.topology.host(host_name)
        return RealNetwork(host.address, mtu_bytes=host.mtu_bytes)
