"""The whole deployment in one seeded simulated world: three Conductor peers, the VCS,
a TelePresence Server and an MCU, set up as the guides describe.

`ConferenceLab` is a `PolicyLab` (clustered peers, the VCS's policy service and
search rule, passwords changed) plus a `BridgeNode` on each bridge host of the
default topology, configured on the cluster as conference bridges, one pool each,
a service preference TelePresence Server pool first then MCU pool, a template and
the `meet.N@example.com` alias naming it. Every method advances the simulated loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bridges.node import BridgeNode
from bridges.wire.xmlrpc import decode_result, encode_call
from tests.sim.cluster_lab import IPS
from tests.sim.vcs_lab import PolicyLab
from vcs_policy.core.calls import CallResult

BRIDGE_IPS = {"telepresence-server": "127.1.3.10", "mcu": "127.1.3.11"}
KINDS = {"telepresence-server": "ts", "mcu": "mcu"}
BRIDGE_PASSWORD = "Bridge-Pw1"


class ConferenceLab(PolicyLab):
    def __init__(
        self,
        seed: int = 1,
        hosts: tuple[str, ...] = tuple(IPS),
        data_root: Path | None = None,
        ports: dict[str, int] | None = None,
    ) -> None:
        super().__init__(seed=seed, hosts=hosts, data_root=data_root)
        ports = ports or {"telepresence-server": 12, "mcu": 12}
        self.bridges = {
            host: BridgeNode(
                self.sim.runtime(host), KINDS[host], password=BRIDGE_PASSWORD, ports=ports[host]
            )
            for host in BRIDGE_IPS
        }
        self._bridge_tasks: list[asyncio.Task[None]] = []

        async def start() -> None:
            loop = asyncio.get_running_loop()
            self._bridge_tasks = [loop.create_task(b.run()) for b in self.bridges.values()]
            await asyncio.sleep(0.5)

        self.sim.run(start())

    def setup_conferences(self, host: str = "conductor-initial") -> None:
        """Bridges, pools, preference, template on `host` (replicated to the cluster),
        and the conference alias's template."""
        objects: list[tuple[str, dict[str, Any]]] = [
            (
                "bridges",
                {"name": "ts1", "type": "telepresence_server", "address": BRIDGE_IPS[
                    "telepresence-server"], "protocol": "HTTPS", "username": "admin",
                 "password": BRIDGE_PASSWORD},
            ),
            (
                "bridges",
                {"name": "mcu1", "type": "telepresence_mcu", "address": BRIDGE_IPS["mcu"],
                 "protocol": "HTTP", "username": "admin", "password": BRIDGE_PASSWORD},
            ),
            ("pools", {"name": "TS pool", "type": "telepresence_server", "bridges": ["ts1"]}),
            ("pools", {"name": "MCU pool", "type": "telepresence_mcu", "bridges": ["mcu1"]}),
            ("preferences", {"name": "Meetings", "pools": ["TS pool", "MCU pool"]}),
            ("templates", {"name": "Meeting", "service_preference": "Meetings"}),
        ]  # fmt: skip
        for kind, body in objects:
            status, answer = self.api(host, "POST", f"/api/v1/conference/{kind}", body)
            assert status == 201, (kind, answer)
        status, answer = self.api(
            host, "PUT", "/api/v1/conference/aliases/meetings", {"template": "Meeting"}
        )
        assert status == 200, answer
        self.wait(6)  # replication, and a bridge poll on every peer

    # ---------------------------------------------------------------- calls
    def hang_up(self, result: CallResult) -> bool:
        return self.sim.run(self.vcs.hang_up(result.call_id))

    def participants(self) -> dict[str, dict[str, int]]:
        """Bridge host -> conference (id on the bridge) -> connected participants."""
        out: dict[str, dict[str, int]] = {}
        for host, bridge in self.bridges.items():
            counts: dict[str, int] = {}
            for call in bridge.active_calls():
                counts[call.conference] = counts.get(call.conference, 0) + 1
            out[host] = counts
        return out

    def bridge_name(self, ip: str) -> str:
        """The conference bridge entry's name for a bridge address."""
        return {BRIDGE_IPS["telepresence-server"]: "ts1", BRIDGE_IPS["mcu"]: "mcu1"}[ip]

    def xmlrpc(self, ip: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One XML-RPC call to a bridge over HTTPS, from the VCS host."""

        async def call() -> dict[str, Any]:
            assert self.session is not None
            async with self.session.post(
                f"https://{ip}:8443/RPC2",
                data=encode_call(method, params),
                headers={"Content-Type": "text/xml"},
                ssl=False,
            ) as response:
                return decode_result(await response.read())

        return self.sim.run(call())

    def close(self) -> None:
        async def stop() -> None:
            for bridge in self.bridges.values():
                bridge.stop()
            await asyncio.gather(*self._bridge_tasks, return_exceptions=True)

        self.sim.run(stop())
        super().close()
