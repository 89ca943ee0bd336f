"""The guide's clustering procedures against real peer processes (G-P1, G-P2, G-P5, G-P7).

Each test starts its own lab with the supervisor (`tplab up -d`): three conductors
and a VCS on 127.94.X.{1,2,3,9} (X drawn per session), a state dir of its own and a
free control port, so it runs beside a live `make run` lab and other sessions. The
finalizer runs `tplab down` and then signals, by PID, whatever lab.json still
records as alive. The tests speak HTTPS to each peer's JSON API (admin / TANDBERG)
and poll with bounded waits; nothing asserts on durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.paths import REPO_ROOT
from emulator.supervisor import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    PEER_PORT,
    read_lab,
    same_process,
    signal_pids,
)

#: bound on every wait for something that should happen (generous: shared cores)
WAIT_S = 30.0
POLL_S = 0.1
CLI_TIMEOUT_S = 120.0
KEY = "cluster-secret"
NTP = ["127.0.0.53"]
HOSTS = ("conductor-initial", "conductor-2", "conductor-3")

_X = random.Random().randrange(1, 250)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def tplab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


@dataclass
class RealLab:
    state_dir: Path
    ips: dict[str, str]

    def url(self, host: str, path: str) -> str:
        return f"https://{self.ips[host]}:{PEER_PORT}{path}"

    def recorded_pids(self) -> list[tuple[int, int | None]]:
        lab = read_lab(self.state_dir) or {}
        pids = [(lab["supervisor_pid"], lab.get("supervisor_start"))] if lab else []
        pids += [(h["pid"], h.get("pid_start")) for h in lab.get("hosts", []) if h.get("pid")]
        return pids

    def host_record(self, host: str) -> dict[str, Any]:
        lab = read_lab(self.state_dir)
        assert lab is not None
        record: dict[str, Any] = next(h for h in lab["hosts"] if h["host"] == host)
        return record


def role(host: str) -> str:
    return "vcs" if host == "vcs" else "conductor"


@pytest.fixture
def real_lab() -> Iterator[RealLab]:
    ips = {host: f"127.94.{_X}.{n}" for n, host in enumerate(HOSTS, start=1)}
    ips["vcs"] = f"127.94.{_X}.9"
    with tempfile.TemporaryDirectory(prefix="tplab-cluster-") as tmp:
        topology = Path(tmp) / "cluster.yaml"
        topology.write_text(
            "version: 1\nname: cluster-test\n"
            "services:\n"
            "  conductor: [tcp/8443, udp/500, udp/1719, udp/4369-4380]\n"
            "  vcs: [tcp/8443]\n"
            "hosts:\n"
            + "".join(
                f"  - {{name: {name}, role: {role(name)}, ip: {ip}}}\n" for name, ip in ips.items()
            )
        )
        lab = RealLab(Path(tmp) / "state", ips)
        try:
            up = tplab(
                "up",
                "-d",
                "--topology",
                str(topology),
                "--state-dir",
                str(lab.state_dir),
                "--control",
                f"127.0.0.1:{free_port()}",
            )
            assert up.returncode == 0, up.stderr + up.stdout
            yield lab
        finally:
            # even on failure: stop the lab, then whatever it recorded that is still alive
            with contextlib.suppress(Exception):
                tplab("down", "--state-dir", str(lab.state_dir))
            pids = lab.recorded_pids()
            signal_pids(pids, signal.SIGKILL)
            deadline = time.monotonic() + WAIT_S
            while any(same_process(p, s) for p, s in pids) and time.monotonic() < deadline:
                time.sleep(POLL_S)


class Admin:
    """The administrator at every peer's JSON API, over HTTPS."""

    def __init__(self, lab: RealLab, session: aiohttp.ClientSession) -> None:
        self.lab = lab
        self.session = session

    async def call(self, host: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(
            method, self.lab.url(host, path), json=body, ssl=False
        ) as response:
            return response.status, await response.json()

    async def put(self, host: str, page: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = await self.call(host, "PUT", f"/api/v1/system/{page}", body)
        assert status == 200, (host, page, answer)
        result: dict[str, Any] = answer
        return result

    async def get(self, host: str, path: str) -> dict[str, Any]:
        status, answer = await self.call(host, "GET", path)
        assert status == 200, (host, path, answer)
        result: dict[str, Any] = answer
        return result

    async def setting(self, host: str, page: str, name: str) -> Any:
        return (await self.get(host, f"/api/v1/system/{page}"))["settings"][name]

    async def restart(self, host: str) -> None:
        """Maintenance > Restart options > Restart; returns once a new process answers."""
        old_pid = self.lab.host_record(host)["pid"]
        status, _ = await self.call(host, "POST", "/api/v1/maintenance/restart")
        assert status == 202

        async def back() -> bool:
            record = self.lab.host_record(host)
            assert record["state"] != "failed", record
            return bool(record["state"] == "up" and record["pid"] != old_pid)

        await until(back, f"{host} did not come back after Restart")

    async def statuses(self, host: str) -> dict[str, str]:
        """Peer N IP address -> status text beside it on System > Clustering."""
        page = await self.get(host, "/api/v1/system/clustering")
        settings, peer_status = page["settings"], page["status"]["peer_status"]
        return {
            settings[f"peer{i}"]: peer_status[f"clustering.peer{i}"]["text"]
            for i in (1, 2, 3)
            if settings[f"peer{i}"]
        }

    async def alarms(self, host: str) -> list[dict[str, Any]]:
        alarms: list[dict[str, Any]] = (await self.get(host, "/api/v1/status/alarms"))["alarms"]
        return alarms

    async def statuses_become(self, host: str, expected: dict[str, str]) -> None:
        async def shown() -> bool:
            return await self.statuses(host) == expected

        await until(shown, f"{host} did not show {expected}")


async def until(check: Callable[[], Awaitable[bool]], message: str) -> None:
    """Poll `check` until it is true, at most WAIT_S; then fail with `message`."""
    deadline = time.monotonic() + WAIT_S
    while not await check():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(POLL_S)


@pytest.fixture
async def admin(real_lab: RealLab) -> AsyncIterator[Admin]:
    auth = aiohttp.encode_basic_auth(DEFAULT_USER, DEFAULT_PASSWORD)
    async with aiohttp.ClientSession(
        headers={"Authorization": auth}, timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        yield Admin(real_lab, session)


def fields(peers: list[str]) -> dict[str, str]:
    return {f"peer{i}": peers[i - 1] if i <= len(peers) else "" for i in (1, 2, 3)}


async def create_initial(admin: Admin) -> None:
    """G-P1: NTP synchronised (Task 1), key and Peer 1 = own address, Save, Restart."""
    ip = admin.lab.ips["conductor-initial"]
    for host in HOSTS:
        await admin.put(host, "time", {"ntp_servers": NTP})
    await admin.put("conductor-initial", "clustering", {"key": KEY, **fields([ip])})
    await admin.restart("conductor-initial")
    await admin.statuses_become("conductor-initial", {ip: "This system"})


async def add_peer(admin: Admin, new: str, members: list[str]) -> None:
    """G-P2 Task 3 (existing peers list the new address, Save, Restart) and Task 5 (the
    new peer: same key, the same list, Save, Restart)."""
    ips = admin.lab.ips
    peer_list = [ips[h] for h in members]
    for existing in members:
        if existing != new:
            await admin.put(existing, "clustering", fields(peer_list))
            await admin.restart(existing)
    await admin.put(new, "clustering", {"key": KEY, **fields(peer_list)})
    await admin.restart(new)
    for host in members:
        await admin.statuses_become(
            host,
            {
                ips[h]: "This system" if h == host else f"Active as {h}"  # host name = h
                for h in members
            },
        )


# ------------------------------------------------------------------------- tests
async def test_g_p1_create_initial_peer_and_g_p7_nothing_before_restart(admin: Admin) -> None:
    """G-P1: key and Peer 1 = own address, Save, Restart: "This system" beside it.
    G-P7: after Save (before Restart) nothing is in force: the page lists no peer, the
    overview says standalone, the same process runs, and the change waits as pending."""
    ip = admin.lab.ips["conductor-initial"]
    await admin.put("conductor-initial", "time", {"ntp_servers": NTP})
    pid = admin.lab.host_record("conductor-initial")["pid"]
    saved = await admin.put("conductor-initial", "clustering", {"key": KEY, "peer1": ip})
    assert saved["pending"] == ["key", "peer1"]
    assert saved["restart_required"] is True

    page = await admin.get("conductor-initial", "/api/v1/system/clustering")
    assert page["settings"]["peer1"] == ""
    assert page["pending"] == {"key": "(set)", "peer1": ip}
    assert page["status"]["peer_status"] == {}
    overview = await admin.get("conductor-initial", "/api/v1/status")
    assert overview["cluster"]["clustered"] is False
    assert overview["cluster"]["changes_pending"] is True
    assert 20007 in {a["id"] for a in await admin.alarms("conductor-initial")}
    assert admin.lab.host_record("conductor-initial")["pid"] == pid

    await admin.restart("conductor-initial")
    assert await admin.statuses("conductor-initial") == {ip: "This system"}
    page = await admin.get("conductor-initial", "/api/v1/system/clustering")
    assert page["pending"] == {}
    assert page["settings"]["key_set"] is True
    assert 20007 not in {a["id"] for a in await admin.alarms("conductor-initial")}


async def test_g_p2_add_second_and_third_peer_both_sides_show_it(admin: Admin) -> None:
    """G-P2: the existing peer lists the new one and restarts (the new one is not Active
    yet: normal); the new peer joins; both show "This system" / "Active as NAME", and
    the new peer's shared configuration is replaced by the cluster's. Then a third."""
    ips = admin.lab.ips
    initial, second = ips["conductor-initial"], ips["conductor-2"]
    await create_initial(admin)
    await admin.put("conductor-initial", "administration", {"system_name": "Cluster A"})
    await admin.put("conductor-2", "administration", {"system_name": "Left over on 2"})

    await admin.put("conductor-initial", "clustering", fields([initial, second]))
    await admin.restart("conductor-initial")
    not_yet = (await admin.statuses("conductor-initial"))[second]
    assert not not_yet.startswith("Active"), not_yet  # Task 3 step 5: normal at this stage

    await admin.put("conductor-2", "clustering", {"key": KEY, **fields([initial, second])})
    await admin.restart("conductor-2")
    await admin.statuses_become(
        "conductor-initial", {initial: "This system", second: "Active as conductor-2"}
    )
    await admin.statuses_become(
        "conductor-2", {initial: "Active as conductor-initial", second: "This system"}
    )

    async def adopted() -> bool:
        name = await admin.setting("conductor-2", "administration", "system_name")
        return bool(name == "Cluster A")

    await until(adopted, "conductor-2 did not take the cluster's shared configuration")

    await add_peer(admin, "conductor-3", list(HOSTS))
    assert await admin.setting("conductor-3", "administration", "system_name") == "Cluster A"
    for host in HOSTS:  # alarms are refreshed every second: they follow the statuses

        async def no_cluster_alarm(host: str = host) -> bool:
            ids = {a["id"] for a in await admin.alarms(host)}
            return not ids & {20004, 20007, 20008, 20009, 20012, 20030}

        await until(no_cluster_alarm, f"{host} kept a cluster alarm")


async def test_g_p5_remove_a_live_peer_and_then_a_dead_peer(admin: Admin) -> None:
    """G-P5: a live peer goes standalone (delete key and peers, Save, Restart) and the
    others delete its address and Save: it is gone from their statuses and alarms, and
    it keeps its shared configuration. Then a peer process dies (SIGKILL): the other
    shows it Failed with alarm 20004 until its address is deleted and saved."""
    ips = admin.lab.ips
    initial, second, third = (ips[h] for h in HOSTS)
    await create_initial(admin)
    await add_peer(admin, "conductor-2", ["conductor-initial", "conductor-2"])
    await add_peer(admin, "conductor-3", list(HOSTS))
    await admin.put("conductor-2", "administration", {"system_name": "Cluster B"})

    async def replicated() -> bool:
        name = await admin.setting("conductor-3", "administration", "system_name")
        return bool(name == "Cluster B")

    await until(replicated, "the shared configuration did not reach conductor-3")

    # the live peer: standalone mode
    await admin.put("conductor-3", "clustering", {"key": "", **fields([])})
    await admin.restart("conductor-3")
    assert await admin.statuses("conductor-3") == {}
    overview = await admin.get("conductor-3", "/api/v1/status")
    assert overview["cluster"]["text"] == "Standalone (not clustered)"
    for host in ("conductor-initial", "conductor-2"):
        await admin.put(host, "clustering", {"peer3": ""})
    for host, other in (("conductor-initial", "conductor-2"), ("conductor-2", "conductor-initial")):
        await admin.statuses_become(
            host, {ips[host]: "This system", ips[other]: f"Active as {other}"}
        )

        async def no_alarm_about_third(host: str = host) -> bool:
            return not [a for a in await admin.alarms(host) if a["subject"] == third]

        await until(no_alarm_about_third, f"{host} still has an alarm about {third}")
    assert await admin.setting("conductor-3", "administration", "system_name") == "Cluster B"

    # the dead peer: conductor-2's process is killed by its recorded PID
    record = admin.lab.host_record("conductor-2")
    assert signal_pids([(record["pid"], record["pid_start"])], signal.SIGKILL) == [record["pid"]]

    async def failed_with_alarm() -> bool:
        shown = (await admin.statuses("conductor-initial"))[second]
        alarms = await admin.alarms("conductor-initial")
        return shown.startswith("Failed: unreachable") and any(
            a["id"] == 20004 and a["subject"] == second for a in alarms
        )

    await until(failed_with_alarm, f"conductor-initial did not show {second} as failed")
    await admin.put("conductor-initial", "clustering", {"peer2": ""})
    assert await admin.statuses("conductor-initial") == {initial: "This system"}

    async def no_alarm_about_second() -> bool:
        return not [a for a in await admin.alarms("conductor-initial") if a["subject"] == second]

    await until(no_alarm_about_second, f"conductor-initial still has an alarm about {second}")
