"""Several Conductor peers in one seeded simulated world, driven through their JSON API.

`ClusterLab` runs one `PeerNode` per conductor host of the default topology, restarts
a node when it asks for it (as the supervisor does), and talks to every peer over
HTTPS from the `vcs` host. Every method advances the simulated loop and returns.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import aiohttp

from netsim.http import NetsimConnector
from netsim.sim import SimWorld
from netsim.topology import load_topology
from peers.node import Outcome, PeerNode
from peers.store import DEFAULT_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
IPS = {"conductor-initial": "127.1.2.4", "conductor-2": "127.1.2.32", "conductor-3": "127.1.2.33"}
AUTH = "Basic " + base64.b64encode(f"admin:{DEFAULT_PASSWORD}".encode()).decode()


class ClusterLab:
    def __init__(
        self,
        seed: int = 1,
        hosts: tuple[str, ...] = tuple(IPS),
        versions: dict[str, str] | None = None,
        data_root: Path | None = None,
    ) -> None:
        self.sim = SimWorld(
            load_topology(ROOT / "scenarios/topologies/default.yaml"),
            seed=seed,
            data_root=data_root,
        )
        self.versions = dict(versions or {})
        self.nodes: dict[str, PeerNode] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.session: aiohttp.ClientSession | None = None
        self.sim.run(self._start(hosts))

    async def _start(self, hosts: tuple[str, ...]) -> None:
        for host in hosts:
            self._tasks[host] = asyncio.get_running_loop().create_task(self._supervise(host))
        self.session = aiohttp.ClientSession(
            connector=NetsimConnector(self.sim.runtime("vcs").network)
        )
        await asyncio.sleep(1.0)

    async def _supervise(self, host: str) -> None:
        while True:
            # no version given: the one installed by Maintenance > Upgrade, else the
            # factory one, as `python -m peers` does (G-P6)
            version = self.versions.get(host)
            node = self.nodes[host] = PeerNode(self.sim.runtime(host), software_version=version)
            if await node.run() is not Outcome.RESTART:
                return

    def kill(self, host: str) -> None:
        """The peer dies (its committed data survives, like a killed process's)."""

        async def cancel() -> None:
            task = self._tasks.pop(host)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        self.sim.run(cancel())

    def start(self, host: str, *, version: str | None = None, settle_s: float = 1.0) -> None:
        if version is not None:
            self.versions[host] = version

        async def start() -> None:
            self._tasks[host] = asyncio.get_running_loop().create_task(self._supervise(host))
            await asyncio.sleep(settle_s)

        self.sim.run(start())

    def wait(self, seconds: float) -> None:
        self.sim.run(asyncio.sleep(seconds))

    def api(self, host: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async def call() -> tuple[int, Any]:
            assert self.session is not None
            async with self.session.request(
                method,
                f"https://{IPS[host]}:8443{path}",
                json=body,
                ssl=False,
                headers={"Authorization": AUTH},
            ) as response:
                return response.status, await response.json()

        return self.sim.run(call())

    def put(self, host: str, page: str, body: dict[str, Any]) -> Any:
        status, answer = self.api(host, "PUT", f"/api/v1/system/{page}", body)
        assert status == 200, answer
        return answer

    def restart(self, host: str, *, settle_s: float = 1.0) -> None:
        status, _ = self.api(host, "POST", "/api/v1/maintenance/restart")
        assert status == 202
        self.wait(settle_s)

    def statuses(self, host: str) -> dict[str, str]:
        """Peer N IP address -> status text on `host`'s Clustering page (JSON twin)."""
        _, answer = self.api(host, "GET", "/api/v1/system/clustering")
        settings = answer["settings"]
        peer_status = answer["status"]["peer_status"]
        return {
            settings[f"peer{i}"]: peer_status[f"clustering.peer{i}"]["text"]
            for i in (1, 2, 3)
            if settings[f"peer{i}"]
        }

    def alarm_ids(self, host: str) -> set[int]:
        _, answer = self.api(host, "GET", "/api/v1/status/alarms")
        return {alarm["id"] for alarm in answer["alarms"]}

    def close(self) -> None:
        async def stop() -> None:
            for node in self.nodes.values():
                node.stop()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._tasks.clear()
            if self.session is not None:
                await self.session.close()

        try:
            self.sim.run(stop())
        finally:
            self.sim.close()
