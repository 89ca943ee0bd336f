"""Both bridge kinds in a seeded simulated world, driven over HTTP(S) from a client host.

`BridgeLab` runs a `BridgeNode` of each kind (`mcu` on 127.62.0.11, `ts` on
127.62.0.10) and talks to them from `client`'s network through `NetsimConnector`.
Methods are plain functions that advance the simulated loop, so hypothesis tests
can call them from `@given` bodies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from bridges.node import BridgeNode
from netsim.http import NetsimConnector
from netsim.sim import SimWorld
from netsim.topology import parse_topology

IPS = {"mcu": "127.62.0.11", "ts": "127.62.0.10"}
CLIENT_IP = "127.62.0.9"
TOPOLOGY = f"""\
version: 1
hosts:
  - {{name: mcu, role: mcu, ip: {IPS["mcu"]}}}
  - {{name: ts, role: telepresence-server, ip: {IPS["ts"]}}}
  - {{name: client, role: vcs, ip: {CLIENT_IP}}}
"""
#: virtual seconds for the bridges' listeners to come up (nothing real waits)
START_S = 0.5


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class BridgeLab:
    def __init__(self, seed: int = 5, ports: int = 8) -> None:
        self.sim = SimWorld(parse_topology(TOPOLOGY, source="bridge-lab"), seed=seed)
        self.nodes = {kind: BridgeNode(self.sim.runtime(kind), kind, ports=ports) for kind in IPS}
        self._tasks: list[asyncio.Task[None]] = []
        self.session: aiohttp.ClientSession | None = None
        self.sim.run(self._start())

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(node.run()) for node in self.nodes.values()]
        await asyncio.sleep(START_S)
        self.session = aiohttp.ClientSession(
            connector=NetsimConnector(self.sim.runtime("client").network)
        )

    def close(self) -> None:
        async def stop() -> None:
            for node in self.nodes.values():
                node.stop()
            await asyncio.gather(*self._tasks)
            if self.session is not None:
                await self.session.close()

        try:
            self.sim.run(stop())
        finally:
            self.sim.close()

    def url(self, kind: str, scheme: str = "https", path: str = "/RPC2") -> str:
        port = {"https": 8443, "http": 8080, "sip": 5060}[scheme]
        return f"{'https' if scheme == 'https' else 'http'}://{IPS[kind]}:{port}{path}"

    async def _request(self, method: str, url: str, **kwargs: Any) -> Reply:
        assert self.session is not None
        async with self.session.request(method, url, ssl=False, **kwargs) as response:
            return Reply(
                response.status, response.headers.get("Content-Type", ""), await response.read()
            )

    def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        return self.sim.run(self._request(method, url, **kwargs))

    def post_rpc(self, kind: str, body: bytes, scheme: str = "https") -> Reply:
        return self.request("POST", self.url(kind, scheme), data=body)

    def connects(self, kind: str, scheme: str) -> bool:
        """Whether a request to that listener gets any answer."""
        try:
            self.request("GET", self.url(kind, scheme, "/login"))
        except aiohttp.ClientConnectionError:
            return False
        return True


@contextmanager
def bridge_lab(seed: int = 5, ports: int = 8) -> Iterator[BridgeLab]:
    lab = BridgeLab(seed, ports)
    try:
        yield lab
    finally:
        lab.close()
