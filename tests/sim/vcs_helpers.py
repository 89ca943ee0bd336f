"""A VCS in a seeded simulated world, driven over HTTPS from another host.

`VcsPageLab` runs one `VcsNode` on the `vcs` host of a small topology and talks
to it from `admin-pc`'s network through `NetsimConnector`, as a browser (login
session, CSRF tokens, forms) and as an API client (HTTP Basic). `conductor-a`
can serve a policy server's Status path (`serve_status`); nothing listens on
`conductor-b`. Methods are plain functions that advance the simulated loop, so
hypothesis tests can call them from `@given` bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
from aiohttp import web

from netsim.http import NetsimConnector, NetsimSite
from netsim.sim import SimWorld
from netsim.topology import parse_topology
from tests.sim.peer_helpers import Browser, Reply, basic_auth
from vcs_policy.core.config import PolicyService, SearchRule
from vcs_policy.node import VcsNode
from vcs_policy.store import DEFAULT_PASSWORD

VCS_IP = "127.61.0.10"
CONDUCTOR_IP = "127.61.0.1"
SILENT_IP = "127.61.0.2"
CLIENT_IP = "127.61.0.9"
STATUS_PORT = 8080  # tplab's default port for an HTTP policy service
TOPOLOGY = f"""\
version: 1
hosts:
  - {{name: conductor-a, role: conductor, ip: {CONDUCTOR_IP}}}
  - {{name: conductor-b, role: conductor, ip: {SILENT_IP}}}
  - {{name: admin-pc, role: conductor, ip: {CLIENT_IP}}}
  - {{name: vcs, role: vcs, ip: {VCS_IP}}}
"""
#: virtual seconds for the VCS's site to come up (nothing real waits)
START_S = 0.5


class VcsPageLab(Browser):
    def __init__(self, seed: int = 7) -> None:
        self.sim = SimWorld(parse_topology(TOPOLOGY, source="vcs-pages"), seed=seed)
        self.base = f"https://{VCS_IP}:8443"
        self.admin_password = DEFAULT_PASSWORD
        self.node = VcsNode(self.sim.runtime("vcs"))
        self._task: asyncio.Task[None] | None = None
        self.session: aiohttp.ClientSession | None = None
        self._status_servers: dict[str, web.AppRunner] = {}
        self.sim.run(self._start())

    # ------------------------------------------------------------ lifecycle
    async def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.node.run())
        await asyncio.sleep(START_S)
        client = self.sim.runtime("admin-pc").network
        self.session = aiohttp.ClientSession(
            connector=NetsimConnector(client, ssl_context=None),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )

    def close(self) -> None:
        async def stop() -> None:
            self.node.stop()
            if self._task is not None:
                await self._task
            if self.session is not None:
                await self.session.close()
            for runner in self._status_servers.values():
                await runner.cleanup()

        try:
            self.sim.run(stop())
        finally:
            self.sim.close()

    def serve_status(self, host: str = "conductor-a", port: int = STATUS_PORT) -> None:
        """A minimal policy server on `host`: GET of any path answers 200 (its Status path)."""

        async def ok(request: web.Request) -> web.Response:
            return web.Response(text="OK")

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/{tail:.*}", ok)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await NetsimSite(runner, self.sim.runtime(host).network, port).start()
            self._status_servers[host] = runner

        self.sim.run(start())

    def stop_status(self, host: str = "conductor-a") -> None:
        """The policy server on `host` stops: its port refuses connections."""
        self.sim.run(self._status_servers.pop(host).cleanup())

    def advance(self, seconds: float) -> None:
        self.sim.run_for(seconds)

    # ------------------------------------------------------------- requests
    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        password: str | None = None,
        user: str = "admin",
    ) -> Reply:
        authorization = basic_auth(user, self.admin_password if password is None else password)
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        return self.request(method, path, headers={"Authorization": authorization}, **kwargs)

    # ---------------------------------------------------------------- state
    def snapshot(self) -> tuple[list[PolicyService], list[SearchRule], str]:
        """The configuration a refused form must leave alone."""
        store = self.node.store
        return store.services(), store.rules(), store.trusted_cas()


@contextmanager
def vcs_lab(seed: int = 7) -> Iterator[VcsPageLab]:
    lab = VcsPageLab(seed)
    try:
        yield lab
    finally:
        lab.close()
