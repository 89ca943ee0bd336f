"""Contract test of aiohttp on netsim networks (NetsimSite + NetsimConnector).

aiohttp's minor version is pinned because these adapters use its extension points;
this test is the one that must fail first if an upgrade breaks them. It runs the
same client and server code in the simulated world and on real loopback sockets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from netsim.api import Network
from netsim.http import NetsimConnector, NetsimSite
from netsim.proxy import OffBackend
from netsim.real import RealNetwork
from netsim.sim import SimWorld
from netsim.topology import Topology
from tests.sim.helpers import client_context, self_signed, server_context

Scenario = Callable[[Network, Network, str], Awaitable[None]]


async def exercise(client: Network, server: Network, server_ip: str, tmp: Path) -> None:
    cert, key = self_signed(tmp, server_ip)
    (tmp / "other").mkdir()
    other_cert, _ = self_signed(tmp / "other", server_ip)
    app = web.Application()

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {"remote": request.remote, "len": len(body), "secure": request.secure}
        )

    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    plain = NetsimSite(runner, server, 8080)
    secure = NetsimSite(runner, server, 8443, ssl_context=server_context(cert, key))
    await plain.start()
    await secure.start()
    try:
        payload = b"z" * 200_000
        async with (
            aiohttp.ClientSession(connector=NetsimConnector(client)) as session,
            session.post(f"http://{server_ip}:8080/echo", data=payload) as response,
        ):
            assert response.status == 200
            body = await response.json()
            assert body == {"remote": client.host.ip, "len": 200_000, "secure": False}
        trusted = NetsimConnector(client, ssl_context=client_context(cert))
        async with (
            aiohttp.ClientSession(connector=trusted) as session,
            session.post(f"https://{server_ip}:8443/echo", data=b"abc") as response,
        ):
            assert (await response.json())["secure"] is True
        untrusted = NetsimConnector(client, ssl_context=client_context(other_cert))
        async with aiohttp.ClientSession(connector=untrusted) as session:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.post(f"https://{server_ip}:8443/echo", data=b"abc")
        async with aiohttp.ClientSession(connector=NetsimConnector(client)) as session:
            unverified = await session.post(f"https://{server_ip}:8443/echo", ssl=False)
            assert unverified.status == 200
            unverified.release()
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get(f"http://{server_ip}:8081/")
    finally:
        await runner.cleanup()


def test_http_and_https_in_the_simulated_world(topology: Topology, tmp_path: Path) -> None:
    sim = SimWorld(topology, seed=3)
    try:
        sim.world.impair("a", "b", latency_ms=3, rate_kbit=50_000, both=True)
        sim.run(
            exercise(sim.runtime("a").network, sim.runtime("b").network, "127.50.0.2", tmp_path)
        )
    finally:
        sim.close()


async def test_http_and_https_on_real_sockets(topology: Topology, tmp_path: Path) -> None:
    backend = OffBackend(topology)
    client, server = backend.network_for("a"), backend.network_for("b")
    assert isinstance(client, RealNetwork)
    await exercise(client, server, "127.50.0.2", tmp_path)
