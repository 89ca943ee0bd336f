"""The contract every node (Conductor peer, VCS, bridge) sees of the world it runs in.

A node receives one `Runtime` and nothing else: a clock, seeded randomness, the
network of its host, and where to keep its data. The same node code runs on
real sockets (proxy, kernel and off backends) and in the simulated world
(virtual time, in-memory network); only the `Runtime` differs.

The stream side mirrors asyncio's own `create_server` / `create_connection` so
that protocol implementations written for asyncio (aiohttp's server and client
among them, see `netsim.http`) plug in unchanged. The datagram side keeps
message boundaries and never fragments: a datagram larger than the local link
MTU is refused at `send` with `MessageTooLong`, and one larger than the path
MTU is dropped on the way (don't-fragment semantics, G-R14).
"""

from __future__ import annotations

import asyncio
import enum
import errno
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

#: IPv4 header (20) + UDP header (8): a datagram of N payload bytes is an IP packet
#: of N + 28 bytes, which is what link and path MTUs are compared against.
IPV4_UDP_OVERHEAD = 28
#: Smallest MTU an IPv4 link may have (RFC 791).
MIN_IPV4_MTU = 68
MAX_IPV4_PACKET = 65535

Address = tuple[str, int]


class Proto(enum.Enum):
    UDP = "udp"
    TCP = "tcp"


@dataclass(frozen=True, slots=True)
class HostAddress:
    """A named host of the topology and its public IPv4 address."""

    name: str
    role: str
    ip: str


class MessageTooLong(OSError):
    """A datagram does not fit the local link MTU and may not be fragmented."""

    def __init__(self, size_bytes: int, mtu_bytes: int) -> None:
        super().__init__(
            errno.EMSGSIZE,
            f"datagram of {size_bytes} bytes (IP packet) exceeds the link MTU of "
            f"{mtu_bytes} bytes and may not be fragmented",
        )
        self.size_bytes = size_bytes
        self.mtu_bytes = mtu_bytes


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never jumps, unaffected by clock offsets."""

    def wall(self) -> datetime:
        """Aware UTC datetime as this host believes it is (includes its clock offset, G-R3)."""


class DatagramHandler(Protocol):
    def datagram_received(self, data: bytes, src: Address) -> None: ...

    def error_received(self, exc: Exception) -> None: ...


@runtime_checkable
class DatagramEndpoint(Protocol):
    @property
    def local(self) -> Address: ...

    @property
    def mtu_bytes(self) -> int:
        """MTU of the host's link; `send` refuses larger IP packets (G-R14)."""

    def send(self, data: bytes, dest: Address) -> None:
        """Send one datagram. Raises `MessageTooLong` above the link MTU."""

    def close(self) -> None: ...


class Listener(Protocol):
    @property
    def port(self) -> int: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class Network(Protocol):
    """The network as one host sees it."""

    @property
    def host(self) -> HostAddress: ...

    async def open_datagram(self, port: int, handler: DatagramHandler) -> DatagramEndpoint:
        """Bind a datagram endpoint on this host's address (port 0 = any free port)."""

    async def create_server(
        self,
        protocol_factory: ProtocolFactory,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Listener:
        """Listen for streams on this host's address."""

    async def create_connection(
        self,
        protocol_factory: ProtocolFactory,
        address: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        """Open a stream from this host to `address:port` (a public host address)."""


@dataclass(slots=True)
class NodeRuntime:
    """The plain `Runtime` every world hands its nodes (real and simulated alike)."""

    host: HostAddress
    clock: Clock
    rng: random.Random
    network: Network
    data_dir: Path
    database_url: str


class Runtime(Protocol):
    """Everything a node may use of the outside world."""

    @property
    def host(self) -> HostAddress: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def rng(self) -> random.Random:
        """This node's own seeded random source; never use `random`'s globals."""

    @property
    def network(self) -> Network: ...

    @property
    def data_dir(self) -> Path:
        """A directory private to this node, kept across restarts."""

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of this node's store (SQLite file in `data_dir` by default)."""
