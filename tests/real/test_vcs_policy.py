"""The VCS policy service against real processes: three Conductor peers and a VCS
started by the supervisor (G-V1..G-V4, G-R7, G-P3).

One lab per test (`real_lab` from test_cluster_processes); each peer is set up
through its JSON API, the VCS through its own. Polls are set to 1 s and the
per-attempt timeout to 2 s so the drill runs quickly; nothing asserts on durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator.supervisor import DEFAULT_PASSWORD, PEER_PORT, same_process
from tests.real.test_cluster_processes import (  # noqa: F401 - the fixture is used by name
    HOSTS,
    RealLab,
    real_lab,
    until,
)

PASSWORD = "Conductor-Pw1"
SERVICE = "Conductors"
POLL_S = 1.0


class Drill:
    def __init__(self, lab: RealLab, session: aiohttp.ClientSession) -> None:
        self.lab = lab
        self.session = session
        self.peer_passwords = dict.fromkeys(HOSTS, DEFAULT_PASSWORD)
        self.started: list[subprocess.Popen[bytes]] = []

    async def call(
        self, host: str, method: str, path: str, body: Any = None, password: str | None = None
    ) -> tuple[int, Any]:
        if password is None:
            password = self.peer_passwords.get(host, DEFAULT_PASSWORD)
        async with self.session.request(
            method,
            f"https://{self.lab.ips[host]}:{PEER_PORT}{path}",
            json=body,
            ssl=False,
            headers={"Authorization": aiohttp.encode_basic_auth("admin", password)},
        ) as response:
            return response.status, await response.json()

    async def ok(self, host: str, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.call(host, method, path, body)
        assert status in (200, 201, 202), (host, path, status, answer)
        return answer

    async def change_passwords(self, host: str) -> None:
        for account in ("admin", "root"):
            body = {"new_password": PASSWORD, "confirm_password": PASSWORD}
            await self.ok(host, "PUT", f"/api/v1/users/{account}/password", body)
            if account == "admin":
                self.peer_passwords[host] = PASSWORD

    async def lines(self) -> dict[str, str]:
        answer = await self.ok("vcs", "GET", "/api/v1/status/policy-services")
        return {s["address"]: s["text"] for s in answer["policy_services"][0]["servers"]}

    async def lines_become(self, expected: dict[str, str], message: str) -> None:
        async def shown() -> bool:
            lines = await self.lines()
            return all(lines.get(a, "").startswith(t) for a, t in expected.items())

        await until(shown, message)

    async def place(self, destination: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.ok(
            "vcs",
            "POST",
            "/api/v1/calls",
            {"source": "alice@example.com", "destination": destination},
        )
        return result

    def pid(self, host: str) -> tuple[int, int | None]:
        record = self.lab.host_record(host)
        return record["pid"], record.get("pid_start")

    def restart_process(self, host: str) -> None:
        """Power the peer on again after a kill: the same command the supervisor ran
        (from its process.log), as a process of this test, ended by PID at cleanup."""
        log = self.lab.state_dir / "hosts" / host / "process.log"
        line = next(
            line for line in reversed(log.read_text().splitlines()) if " starting: " in line
        )
        argv = line.split(" starting: ", 1)[1].split(" ")
        self.started.append(
            subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
async def drill(real_lab: RealLab) -> AsyncIterator[Drill]:  # noqa: F811
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        d = Drill(real_lab, session)
        try:
            yield d
        finally:
            d.cleanup()


async def test_g_v1_to_g_v4_failover_drill_against_real_peers(drill: Drill) -> None:
    """G-P3: default passwords -> Failed; wrong credentials -> Failed; changed -> Active.
    G-R7: certificate verification against the trusted CAs. G-V4: kill the peer in use
    during a call load: it turns Failed within one poll and no call fails; restore it:
    Active again. All peers down -> the Default CPL."""
    ips = drill.lab.ips
    servers = [ips[h] for h in HOSTS]
    alias = {"name": "meetings", "incoming_alias": r"meet\..*@example\.com",
             "conference_name": "m", "priority": 10}  # fmt: skip
    for host in HOSTS:
        await drill.ok(host, "POST", "/api/v1/conference/aliases", alias)
    service = {
        "name": SERVICE,
        "verify_certificate": False,
        "username": "admin",
        "password": DEFAULT_PASSWORD,
        "servers": servers,
        "poll_interval_s": POLL_S,
        "request_timeout_s": 2.0,
    }
    await drill.ok("vcs", "POST", "/api/v1/policy-services", service)
    rule = {"name": "conductor", "pattern": r"meet\..*", "target": SERVICE, "priority": 10}
    await drill.ok("vcs", "POST", "/api/v1/search-rules", rule)

    # G-P3: the peers still have their default admin/root passwords -> Failed
    await drill.lines_become(dict.fromkeys(servers, "Failed"), "default passwords not Failed")
    answer = await drill.ok("vcs", "GET", "/api/v1/status/policy-services")
    assert all("HTTP 403" in s["reason"] for s in answer["policy_services"][0]["servers"])
    call = await drill.place("meet.1@example.com")
    assert call["outcome"] == "rejected"
    assert call["status"] == 504
    assert call["default_cpl"]

    # the VCS now has peer 1's new password; peers 2 and 3 refuse it (wrong credentials)
    await drill.change_passwords(HOSTS[0])
    await drill.ok(
        "vcs", "PUT", f"/api/v1/policy-services/{SERVICE}", {**service, "password": PASSWORD}
    )
    await drill.lines_become(
        {servers[0]: "Active. Last communication:", servers[1]: "Failed", servers[2]: "Failed"},
        "wrong credentials not Failed",
    )
    answer = await drill.ok("vcs", "GET", "/api/v1/status/policy-services")
    assert "HTTP 401" in answer["policy_services"][0]["servers"][1]["reason"]
    for host in HOSTS[1:]:
        await drill.change_passwords(host)
    await drill.lines_become(dict.fromkeys(servers, "Active"), "changed passwords not Active")

    # G-R7: with certificate verification on, only peers whose CA is trusted are Active
    verified = {**service, "password": PASSWORD, "verify_certificate": True}
    await drill.ok("vcs", "PUT", f"/api/v1/policy-services/{SERVICE}", verified)
    await drill.lines_become(dict.fromkeys(servers, "Failed"), "untrusted peers not Failed")
    cas = [
        (await drill.ok(h, "GET", "/api/v1/maintenance/certificates"))["trusted_ca"]["pem"]
        for h in HOSTS
    ]
    await drill.ok("vcs", "PUT", "/api/v1/maintenance/trusted-cas", {"pem": "".join(cas)})
    await drill.lines_become(dict.fromkeys(servers, "Active"), "trusted peers not Active")
    first = await drill.place("meet.2@example.com")
    assert first["outcome"] == "connected", first
    assert first["via"] == servers[0], first

    # G-V4: a call load; kill the peer in use half way through
    load_body = {"rate": 20, "duration_s": 4, "aliases": "meet.{1-9}@example.com"}
    load = await drill.ok("vcs", "POST", "/api/v1/calls/load", load_body)
    await asyncio.sleep(1.5)
    pid, start = drill.pid(HOSTS[0])
    assert same_process(pid, start)
    os.kill(pid, signal.SIGKILL)

    async def finished() -> bool:
        state = await drill.ok("vcs", "GET", f"/api/v1/calls/load/{load['id']}")
        return bool(state["finished"])

    await until(finished, "the call load did not finish")
    state = await drill.ok("vcs", "GET", f"/api/v1/calls/load/{load['id']}")
    assert state["by_outcome"] == {"connected": 80}, state
    await drill.lines_become({servers[0]: "Failed"}, "killed peer not Failed")
    later = await drill.place("meet.3@example.com")
    assert later["outcome"] == "connected", later
    assert later["via"] == servers[1], later

    # restore: Active again, and Server 1 is in use again
    drill.restart_process(HOSTS[0])
    await drill.lines_become({servers[0]: "Active"}, "restored peer not Active")
    back = await drill.place("meet.4@example.com")
    assert back["via"] == servers[0], back

    # every peer down (frozen: they accept nothing) -> the Default CPL
    frozen = [drill.pid(h) for h in HOSTS[1:]]
    restored = drill.started[-1]
    try:
        restored.send_signal(signal.SIGSTOP)
        for pid, _ in frozen:
            os.kill(pid, signal.SIGSTOP)
        down = await drill.place("meet.5@example.com")
        assert down["outcome"] == "rejected", down
        assert down["default_cpl"], down
        assert (down["status"], down["reason"]) == (504, "Policy Service Unavailable")
        assert len(down["attempts"]) == 4  # three servers tried, then the Default CPL
    finally:
        with contextlib.suppress(ProcessLookupError):
            restored.send_signal(signal.SIGCONT)
        for pid, start in frozen:
            if same_process(pid, start):
                os.kill(pid, signal.SIGCONT)
