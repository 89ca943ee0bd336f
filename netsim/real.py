"""Runtime on real sockets: the node side of the proxy, off and kernel backends.

A node binds `bind_ip`: its public host address in the off and kernel
backends, its private loopback address in the proxy backend (the relay owns the
public one). Outgoing streams are bound to `bind_ip` too, so the relay knows
which host they come from. Datagram sockets set don't-fragment
(IP_MTU_DISCOVER = IP_PMTUDISC_DO), so a real link with a lower MTU refuses
oversized datagrams with EMSGSIZE, as the kernel backend needs for G-R14.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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

# Python 3.11's socket module lacks these names (machine-notes.md).
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2

Expose = Callable[[Proto, int], Awaitable[None]]


class FileClockOffset:
    """Reads this host's clock offset from the world's clock file (written by
    `World` on every change), checking the file at most every `interval_s`."""

    def __init__(self, path: Path, host: str, *, interval_s: float = 0.1) -> None:
        self.path = path
        self.host = host
        self.interval_s = interval_s
        self._checked = -1e9
        self._mtime_ns = -1
        self._offset = 0.0

    def __call__(self) -> float:
        now = time.monotonic()
        if now - self._checked >= self.interval_s:
            self._checked = now
            try:
                mtime_ns = self.path.stat().st_mtime_ns
                if mtime_ns != self._mtime_ns:
                    self._mtime_ns = mtime_ns
                    self._offset = float(json.loads(self.path.read_text()).get(self.host, 0.0))
            except (OSError, ValueError, TypeError, AttributeError):
                self._offset = 0.0
        return self._offset


class RealClock:
    def __init__(self, offset_s: Callable[[], float] = lambda: 0.0) -> None:
        self._offset_s = offset_s

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset_s())


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: DatagramHandler) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.handler.datagram_received(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        self.handler.error_received(exc)


class RealDatagramEndpoint:
    def __init__(self, transport: asyncio.DatagramTransport, local: Address, mtu_bytes: int):
        self._transport = transport
        self._local = local
        self._mtu_bytes = mtu_bytes

    @property
    def local(self) -> Address:
        return self._local

    @property
    def mtu_bytes(self) -> int:
        return self._mtu_bytes

    def send(self, data: bytes, dest: Address) -> None:
        size = len(data) + IPV4_UDP_OVERHEAD
        if size > self._mtu_bytes:
            raise MessageTooLong(size, self._mtu_bytes)
        self._transport.sendto(data, dest)

    def close(self) -> None:
        self._transport.close()


class RealListener:
    def __init__(self, server: asyncio.Server, port: int) -> None:
        self._server = server
        self._port = port

    @property
    def port(self) -> int:
        return self._port

    def close(self) -> None:
        self._server.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


SocketFactory = Callable[[socket.SocketKind], socket.socket]


def _plain_socket(kind: socket.SocketKind) -> socket.socket:
    return socket.socket(socket.AF_INET, kind)


class RealNetwork:
    """A host's network on real sockets. `socket_factory` makes every socket (the
    kernel backend's makes them inside the host's network namespace)."""

    def __init__(
        self,
        host: HostAddress,
        *,
        bind_ip: str | None = None,
        mtu_bytes: int = 1500,
        expose: Expose | None = None,
        socket_factory: SocketFactory = _plain_socket,
    ) -> None:
        self._host = host
        self.bind_ip = bind_ip or host.ip
        self.mtu_bytes = mtu_bytes
        self._expose = expose
        self._socket = socket_factory

    @property
    def host(self) -> HostAddress:
        return self._host

    async def open_datagram(self, port: int, handler: DatagramHandler) -> RealDatagramEndpoint:
        loop = asyncio.get_running_loop()
        sock = self._socket(socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)  # G-R14
            sock.bind((self.bind_ip, port))
            sock.setblocking(False)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(handler), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        bound_port = sock.getsockname()[1]
        if self._expose is not None:
            await self._expose(Proto.UDP, bound_port)
        return RealDatagramEndpoint(transport, (self._host.ip, bound_port), self.mtu_bytes)

    async def create_server(
        self,
        protocol_factory: ProtocolFactory,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> RealListener:
        loop = asyncio.get_running_loop()
        sock = self._socket(socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.bind_ip, port))
            sock.setblocking(False)
            server = await loop.create_server(protocol_factory, sock=sock, ssl=ssl_context)
        except BaseException:
            sock.close()
            raise
        bound_port = sock.getsockname()[1]
        if self._expose is not None:
            await self._expose(Proto.TCP, bound_port)
        return RealListener(server, bound_port)

    async def create_connection(
        self,
        protocol_factory: ProtocolFactory,
        address: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        loop = asyncio.get_running_loop()
        sock = self._socket(socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.bind((self.bind_ip, 0))
            await loop.sock_connect(sock, (address, port))
        except BaseException:
            sock.close()
            raise
        # from here the transport owns the socket and closes it, also when the TLS
        # handshake fails or is cancelled; closing it here as well would free its
        # descriptor number while the loop still maps it to that transport
        return await loop.create_connection(
            protocol_factory,
            sock=sock,
            ssl=ssl_context,
            server_hostname=server_hostname if ssl_context else None,
        )


class RealRuntime(NodeRuntime):
    """A runtime on real sockets: the real clock (with the host's clock offset), a
    seeded or system-seeded RNG, and a SQLite store in `data_dir` by default."""

    def __init__(
        self,
        host: HostAddress,
        network: RealNetwork,
        *,
        data_dir: Path,
        clock: RealClock | None = None,
        seed: int | None = None,
        database_url: str | None = None,
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            host=host,
            clock=clock or RealClock(),
            # unseeded real nodes draw keys from the OS (random.SystemRandom); seeded ones are
            # reproducible, for debugging only
            rng=(
                random.Random(f"{seed}:node:{host.name}")
                if seed is not None
                else random.SystemRandom()
            ),
            network=network,
            data_dir=data_dir,
            database_url=database_url or f"sqlite:///{data_dir / 'store.sqlite'}",
        )
