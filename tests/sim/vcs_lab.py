"""A VCS and Conductor peers in one seeded simulated world, set up as the guide describes.

`PolicyLab` is a `ClusterLab` (peers of the default topology, restarted and killed
like processes) plus a `VcsNode` on the `vcs` host. `setup()` runs the guide's
procedure on every peer it is given: cluster them (G-P1, G-P2), change the
default admin and root passwords (G-P3), add a conference alias; and on the VCS a
policy service with the peers as Server 1..3 and a search rule that sends
`meet.*` calls to it (G-V1, G-V2). Every method advances the simulated loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.sim.cluster_lab import AUTH, IPS, ClusterLab
from vcs_policy.core.calls import CallResult
from vcs_policy.node import VcsNode

PASSWORD = "Conductor-Pw1"
VCS_IP = "127.1.2.10"
SERVICE = "Conductors"
ALIAS_PATTERN = r"meet\.(.+)@example\.com"


class PolicyLab(ClusterLab):
    def __init__(
        self, seed: int = 1, hosts: tuple[str, ...] = tuple(IPS), data_root: Path | None = None
    ) -> None:
        super().__init__(seed=seed, hosts=hosts, data_root=data_root)
        self.vcs = VcsNode(self.sim.runtime("vcs"))
        self._vcs_task: asyncio.Task[None] | None = None
        self.passwords = dict.fromkeys(hosts, "TANDBERG")

        async def start() -> None:
            self._vcs_task = asyncio.get_running_loop().create_task(self.vcs.run())
            await asyncio.sleep(0.5)

        self.sim.run(start())

    # ------------------------------------------------------------- requests
    def api(self, host: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A peer's API with the current admin password."""
        import base64

        password = self.passwords.get(host, "TANDBERG")
        auth = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        return self._request(f"https://{IPS[host]}:8443{path}", method, body, auth)

    def vcs_api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self._request(f"https://{VCS_IP}:8443{path}", method, body, AUTH)

    def _request(self, url: str, method: str, body: Any, auth: str) -> tuple[int, Any]:
        async def call() -> tuple[int, Any]:
            assert self.session is not None
            async with self.session.request(
                method, url, json=body, ssl=False, headers={"Authorization": auth}
            ) as response:
                return response.status, await response.json()

        return self.sim.run(call())

    # ---------------------------------------------------------------- setup
    def setup(
        self,
        *,
        cluster: bool = True,
        poll_interval_s: float = 2.0,
        request_timeout_s: float = 1.0,
        change_passwords: bool = True,
        servers: list[str] | None = None,
    ) -> None:
        hosts = list(self.nodes)
        if cluster and len(hosts) > 1:
            self.form_cluster(hosts)
        if change_passwords:
            for index, host in enumerate(hosts):
                # the admin account is shared (G-S1): in a cluster it is changed once
                accounts = ("admin", "root") if index == 0 or not cluster else ("root",)
                for account in accounts:
                    status, answer = self.api(
                        host,
                        "PUT",
                        f"/api/v1/users/{account}/password",
                        {"new_password": PASSWORD, "confirm_password": PASSWORD},
                    )
                    assert status == 200, answer
                    if account == "admin":
                        self.passwords[host] = PASSWORD
                if index == 0 and cluster:
                    self.wait(3)
                    self.passwords = dict.fromkeys(hosts, PASSWORD)
        alias = {
            "name": "meetings",
            "incoming_alias": ALIAS_PATTERN,
            "conference_name": r"meeting \1",
            "priority": 10,
        }
        for host in hosts if not cluster else hosts[:1]:
            status, answer = self.api(host, "POST", "/api/v1/conference/aliases", alias)
            assert status == 201, answer
        if cluster:
            self.wait(3)
        status, answer = self.vcs_api(
            "POST",
            "/api/v1/policy-services",
            {
                "name": SERVICE,
                "protocol": "HTTPS",
                "verify_certificate": False,
                "username": "admin",
                "password": PASSWORD if change_passwords else "TANDBERG",
                "servers": servers if servers is not None else [IPS[h] for h in hosts],
                "poll_interval_s": poll_interval_s,
                "request_timeout_s": request_timeout_s,
            },
        )
        assert status == 201, answer
        status, answer = self.vcs_api(
            "POST",
            "/api/v1/search-rules",
            {
                "name": "to conductor",
                "priority": 10,
                "pattern_type": "Regex",
                "pattern": r"meet\..*",
                "target": SERVICE,
                "on_match": "Stop",
            },
        )
        assert status == 201, answer
        self.wait(1)

    def form_cluster(self, hosts: list[str]) -> None:
        """The guide's procedure: initial peer (G-P1), then each new peer (G-P2)."""
        ips = [IPS[h] for h in hosts]
        peers = {f"peer{i}": ip for i, ip in enumerate(ips, start=1)}
        self.put(hosts[0], "clustering", {"key": "cluster-key", "peer1": ips[0]})
        self.restart(hosts[0])
        for host in hosts:
            self.put(host, "clustering", {"key": "cluster-key", **peers})
        for host in hosts:
            self.restart(host)
        self.wait(10)

    # ---------------------------------------------------------------- calls
    def call(self, destination: str, source: str = "alice@example.com") -> CallResult:
        return self.sim.run(self.vcs.place_call(source, destination))

    def server_lines(self) -> dict[str, str]:
        _, answer = self.vcs_api("GET", "/api/v1/status/policy-services")
        return {s["address"]: s["text"] for s in answer["policy_services"][0]["servers"]}

    def close(self) -> None:
        async def stop() -> None:
            self.vcs.stop()
            if self._vcs_task is not None:
                await asyncio.gather(self._vcs_task, return_exceptions=True)

        self.sim.run(stop())
        super().close()
