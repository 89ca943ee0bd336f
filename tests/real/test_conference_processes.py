"""Conferences end to end on real processes: three clustered Conductor peers, the VCS,
a TelePresence Server and an MCU, all started by the supervisor (G-S3, G-B1, G-R8).

30 participants dial 10 conference aliases through the VCS; each conference lives on
one bridge and every participant of it lands there; the peer in use is killed half
way and the next participants of the same conferences land on the same bridges
through another peer (G-S3: the cluster shares conference status); a TelePresence
Server that reports itself full sends new conferences to the MCU pool. Bridges are
checked with Python's own `xmlrpc.client`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import tempfile
import time
import xmlrpc.client
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.supervisor import DEFAULT_PASSWORD, same_process, signal_pids
from tests.real.test_cluster_processes import (
    HOSTS,
    POLL_S,
    WAIT_S,
    Admin,
    RealLab,
    add_peer,
    create_initial,
    free_port,
    tplab,
    until,
)

PASSWORD = "Conductor-Pw1"
_X = int.from_bytes(os.urandom(1), "big") % 250 + 1
ROLES = {"vcs": "vcs", "ts": "telepresence-server", "mcu": "mcu"}


@pytest.fixture
def conference_lab() -> Iterator[RealLab]:
    ips = {host: f"127.97.{_X}.{n}" for n, host in enumerate(HOSTS, start=1)}
    ips.update(vcs=f"127.97.{_X}.9", ts=f"127.97.{_X}.10", mcu=f"127.97.{_X}.11")
    with tempfile.TemporaryDirectory(prefix="tplab-conference-") as tmp:
        topology = Path(tmp) / "conference.yaml"
        topology.write_text(
            "version: 1\nname: conference-test\n"
            "services:\n"
            "  conductor: [tcp/8443, udp/500, udp/1719, udp/4369-4380]\n"
            "  vcs: [tcp/8443]\n"
            "  telepresence-server: [tcp/8443, tcp/8080, tcp/5060]\n"
            "  mcu: [tcp/8443, tcp/8080, tcp/5060]\n"
            "hosts:\n"
            + "".join(
                f"  - {{name: {name}, role: {ROLES.get(name, 'conductor')}, ip: {ip}}}\n"
                for name, ip in ips.items()
            )
        )
        lab = RealLab(Path(tmp) / "state", ips)
        try:
            up = tplab("up", "-d", "--topology", str(topology), "--state-dir",
                       str(lab.state_dir), "--control", f"127.0.0.1:{free_port()}")  # fmt: skip
            assert up.returncode == 0, up.stderr + up.stdout
            yield lab
        finally:
            with contextlib.suppress(Exception):
                tplab("down", "--state-dir", str(lab.state_dir))
            pids = lab.recorded_pids()
            signal_pids(pids, signal.SIGKILL)
            deadline = time.monotonic() + WAIT_S
            while any(same_process(p, s) for p, s in pids) and time.monotonic() < deadline:
                time.sleep(POLL_S)


class Api:
    def __init__(self, lab: RealLab, session: aiohttp.ClientSession) -> None:
        self.lab = lab
        self.session = session

    async def call(
        self, host: str, method: str, path: str, body: Any = None, password: str = PASSWORD
    ) -> Any:
        async with self.session.request(
            method,
            self.lab.url(host, path),
            json=body,
            ssl=False,
            headers={"Authorization": aiohttp.encode_basic_auth("admin", password)},
        ) as response:
            answer = await response.json()
            assert response.status in (200, 201, 202), (host, path, response.status, answer)
            return answer


def bridge_proxy(lab: RealLab, host: str) -> Any:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return xmlrpc.client.ServerProxy(f"https://{lab.ips[host]}:8443/RPC2", context=context)


def participants(lab: RealLab) -> dict[str, Counter[str]]:
    """Bridge -> conference -> connected participants, from the bridges' own APIs."""
    auth = {"authenticationUser": "admin", "authenticationPassword": ""}
    out: dict[str, Counter[str]] = {"ts": Counter(), "mcu": Counter()}
    for host, method, key in (("ts", "flex.participant.enumerate", "conferenceID"),
                              ("mcu", "participant.enumerate", "conferenceName")):  # fmt: skip
        with bridge_proxy(lab, host) as proxy:
            params: dict[str, Any] = dict(auth)
            for _ in range(100):
                page = getattr(proxy, method)(params)
                out[host].update(str(p[key]) for p in page.get("participants", []))
                if "enumerateID" not in page:
                    break
                params = {**auth, "enumerateID": page["enumerateID"]}
    return out


@pytest.fixture
async def api(conference_lab: RealLab) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield Api(conference_lab, session)


async def test_participants_land_on_their_conference_bridge_across_a_peer_kill(
    conference_lab: RealLab, api: Api
) -> None:
    """G-S3, G-B1: 30 participants of 10 conferences; kill the peer in use after 15;
    every participant of a conference is on the same bridge; a full TelePresence
    Server sends a new conference to the MCU pool (G-R8: MCU over HTTP, TS over HTTPS)."""
    lab = conference_lab
    ips = lab.ips
    auth = aiohttp.encode_basic_auth("admin", DEFAULT_PASSWORD)
    async with aiohttp.ClientSession(
        headers={"Authorization": auth}, timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        admin = Admin(lab, session)
        await create_initial(admin)
        await add_peer(admin, "conductor-2", ["conductor-initial", "conductor-2"])
        await add_peer(admin, "conductor-3", list(HOSTS))
        await admin.call("conductor-initial", "PUT", "/api/v1/users/admin/password",
                         {"new_password": PASSWORD, "confirm_password": PASSWORD})  # fmt: skip

    async def replicated() -> bool:
        try:
            await api.call("conductor-3", "GET", "/api/v1/status")
        except AssertionError:
            return False
        return True

    await until(replicated, "the new admin password did not reach conductor-3")
    for host in HOSTS:
        await api.call(host, "PUT", "/api/v1/users/root/password",
                       {"new_password": PASSWORD, "confirm_password": PASSWORD})  # fmt: skip
    initial = "conductor-initial"
    for kind, body in (
        ("bridges", {"name": "ts1", "type": "telepresence_server", "address": ips["ts"],
                     "protocol": "HTTPS", "username": "admin"}),
        ("bridges", {"name": "mcu1", "type": "telepresence_mcu", "address": ips["mcu"],
                     "protocol": "HTTP", "username": "admin"}),
        ("pools", {"name": "TS pool", "type": "telepresence_server", "bridges": ["ts1"]}),
        ("pools", {"name": "MCU pool", "type": "telepresence_mcu", "bridges": ["mcu1"]}),
        ("preferences", {"name": "Meetings", "pools": ["TS pool", "MCU pool"]}),
        ("templates", {"name": "Meeting", "service_preference": "Meetings"}),
        ("aliases", {"name": "meetings", "incoming_alias": r"meet\.(\d+)@example\.com",
                     "conference_name": r"meeting-\1", "template": "Meeting"}),
    ):  # fmt: skip
        await api.call(initial, "POST", f"/api/v1/conference/{kind}", body)
    await api.call(initial, "PUT", "/api/v1/conference/policy", {"bridge_poll_s": 1})
    service = {"name": "Conductors", "verify_certificate": False, "username": "admin",
               "password": PASSWORD, "servers": [ips[h] for h in HOSTS],
               "poll_interval_s": 1.0, "request_timeout_s": 2.0}  # fmt: skip
    await api.call("vcs", "POST", "/api/v1/policy-services", service, password=DEFAULT_PASSWORD)
    rule = {"name": "conductor", "pattern": r"meet\..*", "target": "Conductors"}
    await api.call("vcs", "POST", "/api/v1/search-rules", rule, password=DEFAULT_PASSWORD)

    async def all_active() -> bool:
        status = await api.call("vcs", "GET", "/api/v1/status/policy-services",
                                password=DEFAULT_PASSWORD)  # fmt: skip
        lines = [s["text"] for s in status["policy_services"][0]["servers"]]
        return len(lines) == 3 and all(line.startswith("Active") for line in lines)

    await until(all_active, "the VCS did not see all three peers Active")

    async def dial(i: int, conference: int | None = None) -> dict[str, Any]:
        number = i % 10 if conference is None else conference
        call: dict[str, Any] = await api.call(
            "vcs", "POST", "/api/v1/calls",
            {"source": f"user{i}@example.com", "destination": f"meet.{number}@example.com"},
            password=DEFAULT_PASSWORD,
        )  # fmt: skip
        assert call["outcome"] == "connected", call
        return call

    first = [await dial(i) for i in range(15)]
    assert {c["via"] for c in first} == {ips["conductor-initial"]}
    bridge_of = {c["destination"]: c["bridge"] for c in first}
    assert set(bridge_of.values()) == {ips["ts"]}  # the preferred pool, with room

    pid, start = lab.host_record("conductor-initial")["pid"], None
    assert same_process(pid, start)
    os.kill(pid, signal.SIGKILL)
    second = [await dial(i) for i in range(15, 30)]
    assert {c["via"] for c in second} == {ips["conductor-2"]}  # Server 2 (G-V4)
    for call in second:
        assert call["bridge"] == bridge_of[call["destination"]], call  # G-S3
    counts = participants(lab)
    assert sum(counts["ts"].values()) == 30
    assert sorted(counts["ts"].values()) == [3] * 10  # 10 conferences, 3 each
    assert not counts["mcu"]

    # the TelePresence Server reports itself full: a new conference goes to the MCU pool
    async with aiohttp.ClientSession() as session, session.put(
        f"http://{ips['ts']}:5060/api/v1/drill", json={"full": True},
        headers={"Authorization": aiohttp.encode_basic_auth("admin", "")},
    ) as response:  # fmt: skip
        assert response.status == 200, await response.text()

    async def ts_full() -> bool:
        answer = await api.call("conductor-2", "GET", "/api/v1/conference/bridges")
        ts = next(b for b in answer["bridges"] if b["name"] == "ts1")
        return not ts["status"]["ok"]

    await until(ts_full, "conductor-2 did not see the TelePresence Server full")
    overflow = await dial(30, conference=50)
    assert overflow["bridge"] == ips["mcu"], overflow
    counts = participants(lab)
    assert counts["mcu"] == Counter({"meeting-50": 1})
    assert sum(counts["ts"].values()) == 30  # the full bridge kept its conferences
