"""One Conductor peer: its store, certificates, alarms and admin web server.

The node gets everything from its `Runtime` (clock, rng, network, data dir,
database URL), so it runs unchanged as a real process (`python -m peers`) and
inside the simulated world. A restart (Maintenance > Restart options) ends
`run()` with `RESTART`: the process exits with `EXIT_RESTART` and the
supervisor starts it again; in the simulated world the lab makes a new node.
Pending settings (G-P7) become active when the node starts.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import ssl
from typing import TYPE_CHECKING, Any

from aiohttp import web

from netsim.api import Runtime
from netsim.certs import make_certificates, server_ssl_context
from netsim.http import NetsimSite
from peers import backup
from peers.conferences import ConferenceService
from peers.core.image import ImageError
from peers.core.replication import Entry
from peers.policy import PolicyService
from peers.rules import PEER_KEYS
from peers.software import Installed, load_installed
from peers.store import ConfigStore, SaveOutcome

if TYPE_CHECKING:
    from peers.cluster import ClusterService

SOFTWARE_VERSION = "XC3.0"
DEFAULT_PORT = 8443
EXIT_RESTART = 75


class Outcome(enum.Enum):
    STOPPED = "stopped"
    RESTART = "restart"


class PeerNode:
    def __init__(
        self,
        runtime: Runtime,
        *,
        port: int = DEFAULT_PORT,
        software_version: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.port = port
        #: the image Maintenance > Upgrade installed (None: the factory software); an
        #: explicit `software_version` (tests, `--software-version`) wins over it (G-R1)
        self.installed_software: Installed | None = None
        self._software_problem = ""
        try:
            self.installed_software = load_installed(runtime.data_dir)
        except ImageError as exc:
            self._software_problem = str(exc)
        installed = self.installed_software
        self.software_version = software_version or (
            installed.version if installed is not None else SOFTWARE_VERSION
        )
        self.store = ConfigStore(runtime.database_url, wall=runtime.clock.wall, rng=runtime.rng)
        self._done: asyncio.Future[Outcome] | None = None
        self._runner: web.AppRunner | None = None
        self.cluster: ClusterService | None = None
        self._published: str | None = None
        self.started_wall = runtime.clock.wall()
        #: the policy service's aliases, counters and login throttle (memory only)
        self.policy = PolicyService(self.store, runtime.clock)
        #: bridge health, conference placement and the shared conference records
        self.conferences = ConferenceService(self)

    # ------------------------------------------------------------ lifecycle
    def _first_start(self) -> None:
        """Values only this host can know, written once (the factory set-up)."""
        settings = self.store.settings()
        first: dict[str, Any] = {}
        if not self.store.certificates():
            first["dns.host_name"] = self.runtime.host.name
            # the factory install carries a release key (full capacity); labs remove it
            # to practise G-R10 (Essentials cannot cluster)
            first["options.release_key"] = "RK-" + self.store.serial
        if settings["ip.lan1_address"] == "127.0.0.1" and self.runtime.host.ip != "127.0.0.1":
            first["ip.lan1_address"] = self.runtime.host.ip
        if first:
            self.store.save(first, user="system")
            self.store.apply_pending()

    def _ensure_certificates(self) -> None:
        if self.store.certificates():
            return
        settings = self.store.settings()
        fqdn = ".".join(p for p in (settings["dns.host_name"], settings["dns.domain"]) if p)
        certs = make_certificates(
            host_name=self.runtime.host.name,
            ip=self.runtime.host.ip,
            fqdn=fqdn,
            serial=self.store.serial,
            now=self.runtime.clock.wall(),
            rng=self.runtime.rng,
        )
        self.store.set_certificates(
            {
                "ca": (certs.ca_cert_pem, certs.ca_key_pem),
                "server": (certs.server_cert_pem, certs.server_key_pem),
            }
        )
        self.store.log_event("certificates_generated", ca=f"{self.runtime.host.name} CA")

    def server_ssl_context(self) -> ssl.SSLContext:
        certificates = self.store.certificates()
        cert_pem, key_pem, _ = certificates["server"]
        ca_pem = certificates["ca"][0]
        self.served_server_pem = cert_pem
        return server_ssl_context(cert_pem, key_pem, ca_pem, self.runtime.data_dir / "tls")

    async def start(self) -> None:
        backup.apply_staged_restore(self)  # G-P4: before anything reads the configuration
        self._first_start()
        before = self.store.settings()
        applied = self.store.apply_pending()
        self._decide_role(before, self.store.settings())
        self._ensure_certificates()
        if self._software_problem:
            self.store.log_event(
                "installed_software_unusable",
                level="warning",
                reason=self._software_problem,
                running=self.software_version,
            )
        self.store.log_event(
            "system_started", version=self.software_version, applied_pending=sorted(applied)
        )
        self.refresh_alarms()
        from peers.web import make_app

        app = make_app(self)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = NetsimSite(
            self._runner, self.runtime.network, self.port, ssl_context=self.server_ssl_context()
        )
        await site.start()
        from peers.cluster import ClusterService

        self.cluster = ClusterService(self)
        await self.cluster.start()
        await self.conferences.start()
        self._done = asyncio.get_running_loop().create_future()

    async def run(self) -> Outcome:
        """Start, serve until stopped or a restart is asked for, then clean up."""
        await self.start()
        assert self._done is not None
        try:
            return await self._done
        finally:
            await self.close()

    async def close(self) -> None:
        self.policy.close()
        await self.conferences.stop()
        if self.cluster is not None:
            await self.cluster.stop()
            self.cluster = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.store.close()

    def _decide_role(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """G-P2: a standalone peer that restarts into a cluster whose Peer 1 is another
        peer joins it: its shared configuration will be replaced by the cluster's. A peer
        that lists itself as Peer 1 seeds the cluster; a standalone peer is established."""
        own = self.runtime.host.ip
        others_before = {before[k] for k in PEER_KEYS if before[k]} - {own}
        others_after = {after[k] for k in PEER_KEYS if after[k]} - {own}
        if not others_after:
            if not self.store.established:
                self.store.set_established(True)
        elif not others_before and after["clustering.peer1"] != own:
            self.store.set_established(False)
            self.store.log_event("cluster_joining", initial_peer=after["clustering.peer1"])

    def saved(self, outcome: SaveOutcome) -> None:
        """After a save: replicate shared entries, apply the MTU at once (G-R14), alarms."""
        self.publish(outcome.entries)
        if self.cluster is not None:
            if "ethernet.mtu" in outcome.applied:
                self.cluster.set_mtu(int(outcome.applied["ethernet.mtu"]))
            if any(key in outcome.applied for key in PEER_KEYS):
                active = self.store.settings()
                self.cluster.keep_only({active[k] for k in PEER_KEYS if active[k]})
        self.refresh_alarms()

    def publish(self, entries: list[Entry]) -> None:
        if entries and self.cluster is not None:
            self.cluster.publish(entries)

    def request_restart(self, *, user: str) -> None:
        """Maintenance > Restart options > Restart."""
        self.store.log_event("restart_requested", user=user)
        if self._done is not None and not self._done.done():
            # let the answer to the restart request leave before the server goes
            asyncio.get_running_loop().call_later(0.2, self._finish, Outcome.RESTART)

    def stop(self) -> None:
        self._finish(Outcome.STOPPED)

    def _finish(self, outcome: Outcome) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(outcome)

    # -------------------------------------------------------------- status
    def bridge_status(self) -> dict[str, dict[str, Any]]:
        """Conference bridges page: each bridge as this peer last saw it (G-R8)."""
        return self.conferences.status()

    def ntp_state(self) -> str:
        """System > Time Status State (G-R3): Synchronized when an NTP server is configured."""
        return "Synchronized" if self.store.get("time.ntp_servers") else "Not synchronized"

    def refresh_alarms(self) -> None:
        wanted: list[tuple[int, str, str]] = []
        for name in self.store.default_passwords():
            code = 40009 if name == "admin" else 40010
            wanted.append(
                (code, name, f"The {name} account still has the factory default password")
            )
        pending = self.store.pending()
        if pending:
            wanted.append(
                (
                    20007,
                    "",
                    "Saved settings take effect after a restart: " + ", ".join(sorted(pending)),
                )
            )
        served = getattr(self, "served_server_pem", None)
        if served and self.store.certificates()["server"][0] != served:
            wanted.append(
                (20007, "certificates", "New security certificates are served after a restart")
            )
        if self.cluster is not None:
            wanted.extend(self.cluster.alarms())
        wanted.extend(backup.alarms(self))
        if not self.store.get("dns.servers"):
            wanted.append((25010, "", "No DNS server is configured (System > DNS)"))
        if not self.store.get("time.ntp_servers"):
            wanted.append((25002, "", "No NTP server is configured (System > Time)"))
        self.store.set_alarms(wanted)
        self.publish_status()

    def publish_status(self) -> None:
        """`status.json` in the data dir: what the supervisor's status table shows."""
        status = {
            "host": self.runtime.host.name,
            "url": f"https://{self.runtime.host.ip}:{self.port}/",
            "version": self.software_version,
            "serial": self.store.serial,
            "alarms": [
                {"id": a.code, "title": a.title, "subject": a.subject} for a in self.store.alarms()
            ],
            "restart_required": bool(self.store.pending()) or backup.restore_pending(self),
            "started": self.started_wall.isoformat(timespec="seconds"),
        }
        path = self.runtime.data_dir / "status.json"
        text = json.dumps(status, sort_keys=True, indent=1)
        if text == self._published:
            return
        self._published = text
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
