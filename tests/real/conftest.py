"""Real-socket worlds on loopback for the proxy and off backends.

Every lab is a three-host world (alpha, bravo, charlie) on public addresses of
its own, 127.77.X.Y: X is drawn once per test session and Y is never reused
within it, so tests running next to a live lab (which uses the default
topology's 127.1.x.y) or next to another test session do not collide on
addresses or ports. charlie's own link has a small MTU (1000 bytes) for the
link-MTU tests (G-R14).

`Lab` bundles what the tests need and closes all of it: each host's
`RealNetwork` (from `backend.network_for`), datagram endpoints with an `Inbox`,
an aiohttp server per host on the netsim network, HTTP requests through a
`NetsimConnector`, and bounded waits on the world's packet trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from netsim.api import Address
from netsim.core.trace import TraceEvent
from netsim.http import NetsimConnector, NetsimSite
from netsim.launch import open_world
from netsim.real import RealDatagramEndpoint, RealNetwork
from netsim.topology import Topology, parse_topology
from netsim.world import World

HOSTS = ("alpha", "bravo", "charlie")
CHARLIE_MTU_BYTES = 1000
#: bound on every wait for something that should happen (generous: 2 shared cores)
WAIT_S = 10.0


class AddressPool:
    """Fresh public loopback addresses 127.77.X.Y, never the same twice in a session."""

    def __init__(self, rng: random.Random) -> None:
        start = rng.randrange(1, 250)
        self._blocks = ((x, y) for x in range(start, 255) for y in range(1, 252, 3))

    def take(self) -> list[str]:
        """Three consecutive addresses, one per host of a lab."""
        x, y = next(self._blocks)
        return [f"127.77.{x}.{y + i}" for i in range(len(HOSTS))]


def lab_topology(ips: list[str]) -> Topology:
    alpha, bravo, charlie = ips
    text = f"""\
version: 1
name: real-test
hosts:
  - {{name: alpha, role: conductor, ip: {alpha}}}
  - {{name: bravo, role: conductor, ip: {bravo}}}
  - {{name: charlie, role: vcs, ip: {charlie}, mtu_bytes: {CHARLIE_MTU_BYTES}}}
"""
    return parse_topology(text, source="tests/real")


@dataclass(frozen=True, slots=True)
class Received:
    at: float  # time.monotonic() on arrival
    data: bytes
    src: Address


@dataclass
class Inbox:
    """A DatagramHandler that keeps every datagram with its arrival time."""

    received: list[Received] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def datagram_received(self, data: bytes, src: Address) -> None:
        self.received.append(Received(time.monotonic(), data, src))
        self._arrived.set()

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)
        self._arrived.set()

    @property
    def payloads(self) -> list[bytes]:
        return [r.data for r in self.received]

    async def until(self, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        async def wait() -> None:
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(wait(), timeout_s)

    async def first(self, data: bytes, timeout_s: float = WAIT_S) -> Received:
        """The first arrival of exactly `data`."""
        await self.until(lambda: data in self.payloads, timeout_s)
        return next(r for r in self.received if r.data == data)


class Lab:
    """One world on real sockets and the hosts' networks, endpoints and servers."""

    def __init__(self, world: World, state_dir: Path) -> None:
        self.world = world
        self.state_dir = state_dir
        network_for = world.backend.network_for  # type: ignore[attr-defined]
        self.nets: dict[str, RealNetwork] = {name: network_for(name) for name in HOSTS}
        self._endpoints: list[RealDatagramEndpoint] = []
        self._runners: list[web.AppRunner] = []

    def ip(self, host: str) -> str:
        return self.world.topology.host(host).ip

    async def udp(self, host: str, port: int = 0) -> tuple[RealDatagramEndpoint, Inbox]:
        inbox = Inbox()
        endpoint = await self.nets[host].open_datagram(port, inbox)
        self._endpoints.append(endpoint)
        return endpoint, inbox

    async def http_server(self, host: str) -> int:
        """Serve GET / on `host` (any free port): JSON naming the host and the client address."""

        async def whoami(request: web.Request) -> web.Response:
            return web.json_response({"host": host, "remote": request.remote})

        app = web.Application()
        app.router.add_get("/", whoami)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        site = NetsimSite(runner, self.nets[host], 0)
        await site.start()
        return site.port

    async def http_get(self, src: str, dst: str, port: int, *, timeout_s: float) -> dict[str, Any]:
        """GET http://dst:port/ from `src` through the netsim network; raises on failure."""
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        connector = NetsimConnector(self.nets[src])
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.get(f"http://{self.ip(dst)}:{port}/") as response,
        ):
            response.raise_for_status()
            body: dict[str, Any] = await response.json()
            return body

    def events(self, kind: str, **match: Any) -> list[TraceEvent]:
        """Trace events of `kind` whose fields include `match`."""
        return [
            e
            for e in self.world.trace
            if e.kind == kind and all(e.fields.get(k) == v for k, v in match.items())
        ]

    async def wait_events(
        self, kind: str, count: int, *, timeout_s: float = WAIT_S, **match: Any
    ) -> list[TraceEvent]:
        """Wait (bounded) until the trace holds at least `count` matching events."""
        recorded = asyncio.Event()
        unsubscribe = self.world.trace.subscribe(lambda _event: recorded.set())

        async def wait() -> list[TraceEvent]:
            while len(found := self.events(kind, **match)) < count:
                recorded.clear()
                await recorded.wait()
            return found

        try:
            return await asyncio.wait_for(wait(), timeout_s)
        finally:
            unsubscribe()

    async def close(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        for endpoint in self._endpoints:
            endpoint.close()
        await asyncio.sleep(0)  # let the transports finish closing


LabFactory = Callable[..., AbstractAsyncContextManager[Lab]]


@contextlib.asynccontextmanager
async def open_lab(
    pool: AddressPool, *, backend: str = "proxy", seed: int = 7, trace_packets: bool = True
) -> AsyncIterator[Lab]:
    topology = lab_topology(pool.take())
    with tempfile.TemporaryDirectory(prefix="tplab-real-") as tmp:
        state_dir = Path(tmp)
        async with open_world(
            topology, backend=backend, seed=seed, state_dir=state_dir, trace_packets=trace_packets
        ) as world:
            lab = Lab(world, state_dir)
            try:
                yield lab
            finally:
                await lab.close()


@pytest.fixture(scope="session")
def address_pool() -> AddressPool:
    return AddressPool(random.Random())


@pytest.fixture(scope="session")
def lab_factory(address_pool: AddressPool) -> LabFactory:
    """`async with lab_factory(backend=...) as lab:` (for hypothesis, one world per example)."""

    def factory(**kwargs: Any) -> AbstractAsyncContextManager[Lab]:
        return open_lab(address_pool, **kwargs)

    return factory


@pytest.fixture
async def proxy_lab(lab_factory: LabFactory) -> AsyncIterator[Lab]:
    async with lab_factory(backend="proxy") as lab:
        yield lab


@pytest.fixture
async def off_lab(lab_factory: LabFactory) -> AsyncIterator[Lab]:
    async with lab_factory(backend="off") as lab:
        yield lab


def numbered(prefix: str, count: int, size_bytes: int = 0) -> list[bytes]:
    """Distinct payloads `prefix:i:`, padded with dots to `size_bytes` when given."""
    return [f"{prefix}:{i}:".encode().ljust(size_bytes, b".") for i in range(count)]
