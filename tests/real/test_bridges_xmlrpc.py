"""Both bridge kinds as real processes, driven with Python's own XML-RPC client
(`xmlrpc.client.ServerProxy`, a client tplab did not write) over HTTP and HTTPS
(G-B1, G-R8).

One `python -m bridges` process per kind (`--netsim off`) on private loopback
addresses 127.96.X.10 (TelePresence Server, no password) and 127.96.X.11 (MCU,
with a password), X drawn per session, in a temporary state dir, for the whole
module. Each test uses conference names of its own. At the end both are stopped by
their PIDs (SIGTERM, then SIGKILL if one does not exit).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import random
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.paths import REPO_ROOT

WAIT_S = 30.0
STOP_WAIT_S = 10.0
_X = random.Random().randrange(1, 250)
IPS = {"ts": f"127.96.{_X}.10", "mcu": f"127.96.{_X}.11"}
PASSWORDS = {"ts": "", "mcu": "Mcu-Pw1"}
PORTS = {"ts": 6, "mcu": 6}


def _no_verify() -> ssl.SSLContext:
    # made once: loading the system's trusted CAs for every call would cost more
    # than the call
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


NO_VERIFY = _no_verify()


def no_verify() -> ssl.SSLContext:
    return NO_VERIFY


@dataclass
class Bridges:
    state_dir: Path
    procs: dict[str, subprocess.Popen[bytes]]

    def url(self, kind: str, scheme: str = "https", path: str = "/RPC2") -> str:
        port = {"https": 8443, "http": 8080, "sip": 5060}[scheme]
        return f"{'https' if scheme == 'https' else 'http'}://{IPS[kind]}:{port}{path}"

    def proxy(self, kind: str, scheme: str = "https") -> xmlrpc.client.ServerProxy:
        context = no_verify() if scheme == "https" else None
        return xmlrpc.client.ServerProxy(self.url(kind, scheme), context=context)

    def auth(self, kind: str) -> dict[str, str]:
        return {"authenticationUser": "admin", "authenticationPassword": PASSWORDS[kind]}

    def call(self, kind: str, method: str, scheme: str = "https", **params: Any) -> Any:
        with self.proxy(kind, scheme) as proxy:
            return getattr(proxy, method)({**self.auth(kind), **params})

    def fault(self, kind: str, method: str, **params: Any) -> int:
        with pytest.raises(xmlrpc.client.Fault) as caught:
            self.call(kind, method, **params)
        return int(caught.value.faultCode)

    def request(
        self, method: str, url: str, body: Any = None, *, kind: str = "", raw: bytes | None = None
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(url, method=method, data=data)
        if kind:
            token = base64.b64encode(f"admin:{PASSWORDS[kind]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10, context=no_verify()) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def signal_call(self, kind: str, call_id: str, to: str) -> tuple[int, Any]:
        status, body = self.request(
            "POST",
            self.url(kind, "sip", "/calls"),
            {"call_id": call_id, "from": "alice@example.com", "to": to, "protocol": "SIP"},
        )
        return status, json.loads(body)


def start(kind: str, state_dir: Path) -> subprocess.Popen[bytes]:
    host = "mcu" if kind == "mcu" else "telepresence-server"
    argv = [
        sys.executable, "-m", "bridges", "--kind", kind, "--host", host, "--ip", IPS[kind],
        "--mtu", "1500", "--state-dir", str(state_dir), "--netsim", "off", "--port", "8443",
        "--seed", "3", "--ports", str(PORTS[kind]), "--password", PASSWORDS[kind],
    ]  # fmt: skip
    log = (state_dir / f"{kind}.log").open("ab")
    with log:
        return subprocess.Popen(
            argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )


def wait_answering(bridges: Bridges) -> None:
    deadline = time.monotonic() + WAIT_S
    for kind, proc in bridges.procs.items():
        while True:
            assert proc.poll() is None, (bridges.state_dir / f"{kind}.log").read_text()
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = bridges.request("GET", bridges.url(kind, "https", "/login"))
                if status == 200:
                    break
            assert time.monotonic() < deadline, f"{kind} does not answer"
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


@pytest.fixture(scope="module")
def bridges() -> Iterator[Bridges]:
    with tempfile.TemporaryDirectory(prefix="tplab-bridges-") as tmp:
        state_dir = Path(tmp)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for kind in IPS:
                procs[kind] = start(kind, state_dir)
            lab = Bridges(state_dir, procs)
            wait_answering(lab)
            yield lab
        finally:
            codes = {kind: stop(proc) for kind, proc in procs.items()}
        assert codes == dict.fromkeys(procs, 0), codes  # SIGTERM is a clean stop


# ------------------------------------------------------------------ methods
@pytest.mark.parametrize("scheme", ["https", "http"])
def test_g_b1_mcu_every_method(bridges: Bridges, scheme: str) -> None:
    """G-B1, G-R8: the MCU API over HTTPS and over plain HTTP, with ServerProxy."""
    name = f"board-{scheme}"

    def mcu(method: str, **params: Any) -> Any:
        return bridges.call("mcu", method, scheme, **params)

    query = mcu("device.query")
    assert query["apiVersion"] == "2.9"
    assert query["totalVideoPorts"] == PORTS["mcu"]
    assert query["serial"].startswith("SM")
    assert query["healthy"] is True
    assert mcu("device.health.query")["operationalStatus"] == "active"
    ok = {"status": "operation successful"}
    assert (
        mcu(
            "conference.create",
            conferenceName=name,
            numericId=f"9{len(scheme)}",
            startTime=xmlrpc.client.DateTime("20260101T09:00:00"),
        )
        == ok
    )
    assert mcu("conference.modify", conferenceName=name, pin="4321", maximumVideoPorts=3) == ok
    status = mcu("conference.status", conferenceName=name)
    assert (status["pin"], status["maximumVideoPorts"]) == ("4321", 3)
    assert status["startTime"] == xmlrpc.client.DateTime("20260101T09:00:00")
    names = [c["conferenceName"] for c in mcu("conference.enumerate")["conferences"]]
    assert name in names
    assert (
        mcu(
            "participant.add",
            conferenceName=name,
            participantName="room",
            address="room@example.com",
            participantProtocol="sip",
        )
        == ok
    )
    participants = mcu("participant.enumerate", operationScope=["currentState"])["participants"]
    (room,) = [p for p in participants if p["conferenceName"] == name]
    assert room["currentState"]["callState"] == "connected"
    assert mcu("participant.remove", conferenceName=name, participantName="room") == ok
    assert mcu("conference.destroy", conferenceName=name) == ok
    assert name not in [c["conferenceName"] for c in mcu("conference.enumerate")["conferences"]]


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_g_b1_ts_every_method(bridges: Bridges, scheme: str) -> None:
    """G-B1, G-R8: the TelePresence Server's remotely managed API over HTTPS and HTTP."""

    def ts(method: str, **params: Any) -> Any:
        return bridges.call("ts", method, scheme, **params)

    assert ts("system.info")["operationMode"] == "flexible"
    assert ts("device.query")["totalVideoPorts"] == PORTS["ts"]
    assert ts("device.health.query")["healthy"] is True
    conference_id = ts(
        "flex.conference.create",
        conferenceName=f"weekly-{scheme}",
        URIs=[{"URI": f"meet.{scheme}@example.com", "PIN": "11"}],
    )["conferenceID"]
    entries = ts("flex.conference.enumerate")["conferences"]
    (entry,) = [c for c in entries if c["conferenceID"] == conference_id]
    assert entry["URIs"] == [{"URI": f"meet.{scheme}@example.com", "PIN": "11"}]
    participant_id = ts(
        "flex.participant.create",
        conferenceID=conference_id,
        calls=[{"remoteAddress": "10.0.0.5", "protocol": "sip"}],
        cascadeRole="cascadeSlave",
    )["participantID"]
    (mine,) = ts("flex.participant.enumerate", conferenceID=conference_id)["participants"]
    assert mine["participantID"] == participant_id
    assert mine["state"] == "connected"
    assert ts("flex.participant.destroy", participantID=participant_id) == {}
    assert ts("flex.conference.destroy", conferenceID=conference_id) == {}
    ids = [c["conferenceID"] for c in ts("flex.conference.enumerate")["conferences"]]
    assert conference_id not in ids


def test_paging_with_enumerate_id(bridges: Bridges) -> None:
    """Enumerations come in pages of 10; enumerateID carries on; absent = last page;
    a used or invented ID is fault 16."""
    for index in range(23):
        bridges.call("mcu", "conference.create", conferenceName=f"page-{index:02}")
    seen, sizes, enumerate_id = [], [], None
    while True:
        extra = {} if enumerate_id is None else {"enumerateID": enumerate_id}
        result = bridges.call("mcu", "conference.enumerate", **extra)
        sizes.append(len(result["conferences"]))
        seen += [c["conferenceName"] for c in result["conferences"]]
        if "enumerateID" not in result:
            break
        used, enumerate_id = enumerate_id, result["enumerateID"]
    assert all(size == 10 for size in sizes[:-1])
    assert sizes[-1] <= 10
    assert [n for n in seen if n.startswith("page-")] == [f"page-{i:02}" for i in range(23)]
    assert used is not None
    assert bridges.fault("mcu", "conference.enumerate", enumerateID=used) == 16
    assert bridges.fault("mcu", "conference.enumerate", enumerateID="nope") == 16
    for index in range(23):
        bridges.call("mcu", "conference.destroy", conferenceName=f"page-{index:02}")
    ids = [
        bridges.call("ts", "flex.conference.create", conferenceName=f"page-{i}")["conferenceID"]
        for i in range(12)
    ]
    first = bridges.call("ts", "flex.conference.enumerate")
    second = bridges.call("ts", "flex.conference.enumerate", enumerateID=first["enumerateID"])
    listed = [c["conferenceID"] for c in first["conferences"] + second["conferences"]]
    assert "enumerateID" not in second
    assert set(ids) <= set(listed)
    for conference_id in ids:
        bridges.call("ts", "flex.conference.destroy", conferenceID=conference_id)


def test_every_fault_code_input_can_trigger(bridges: Bridges) -> None:
    """Each fault code the bridges give, from real requests."""
    mcu, ts = "mcu", "ts"
    f = bridges.fault
    bridges.call(
        mcu, "conference.create", conferenceName="faults", numericId="5555", maximumVideoPorts=1
    )
    bridges.call(mcu, "participant.add", conferenceName="faults", participantName="p", address="x")
    assert f(mcu, "no.such.method") == 1
    assert f(mcu, "conference.create", conferenceName="faults") == 2
    assert f(mcu, "participant.add", conferenceName="faults", participantName="p", address="x") == 3
    assert f(mcu, "conference.status", conferenceName="none") == 4
    assert f(mcu, "participant.remove", conferenceName="faults", participantName="q") == 5
    assert f(mcu, "participant.add", conferenceName="faults", participantName="q", address="x") == 7
    assert f(mcu, "conference.status") == 8
    assert f(mcu, "participant.remove", conferenceName="faults") == 9
    assert f(mcu, "participant.add", conferenceName="faults", participantName="q") == 10
    assert (
        f(
            mcu,
            "conference.create",
            conferenceName="t",
            startTime=xmlrpc.client.DateTime("20261399T00:00:00"),
        )
        == 11
    )
    assert f(mcu, "conference.create", conferenceName="t", durationSeconds=-1) == 12
    assert f(mcu, "conference.create", conferenceName="t", pin="abc") == 13
    assert f(mcu, "conference.enumerate", enumerateID="0") == 16
    assert f(mcu, "conference.create", conferenceName="t", reservedVideoPorts=80) == 17
    assert f(mcu, "conference.create", conferenceName="t", numericId="5555") == 18
    assert (
        f(
            mcu,
            "participant.add",
            conferenceName="faults",
            participantName="q",
            address="x",
            participantProtocol="vnc",
        )
        == 19
    )
    assert (
        f(
            mcu,
            "participant.add",
            conferenceName="faults",
            participantName="q",
            address="x",
            participantType="by_name",
        )
        == 20
    )
    assert f(mcu, "conference.create", conferenceName="t", templateName="x") == 27
    assert (
        f(mcu, "conference.create", conferenceName="t", maximumVideoPorts=2, reservedVideoPorts=3)
        == 104
    )
    assert f(mcu, "conference.create", conferenceName="t" * 32) == 102
    assert f(mcu, "conference.create", conferenceName=["t"]) == 103
    assert f(ts, "flex.conference.destroy") == 101
    assert f(ts, "flex.conference.create", conferenceName="n" * 81) == 35
    with xmlrpc.client.ServerProxy(bridges.url(mcu), context=no_verify()) as proxy:
        with pytest.raises(xmlrpc.client.Fault) as caught:
            proxy.device.query({"authenticationUser": "admin", "authenticationPassword": "no"})
        assert caught.value.faultCode == 15
        with pytest.raises(xmlrpc.client.Fault) as caught:
            proxy.device.query()  # no struct parameter
        assert caught.value.faultCode == 103
    # too many conferences: fill the TelePresence Server up to its 200, then one more
    # (over plain HTTP with one connection: 400 calls)
    with xmlrpc.client.ServerProxy(bridges.url(ts, "http")) as proxy:
        auth = bridges.auth(ts)
        count = len(proxy.flex.conference.enumerate(auth)["conferences"])
        ids = [
            proxy.flex.conference.create({**auth, "conferenceName": f"many-{i}"})["conferenceID"]
            for i in range(200 - count)
        ]
        assert f(ts, "flex.conference.create", conferenceName="one-too-many") == 6
        for conference_id in ids:
            proxy.flex.conference.destroy({**auth, "conferenceID": conference_id})
    status, body = bridges.request("POST", bridges.url(ts), raw=b"<x>" + b" " * 300_000 + b"</x>")
    assert status == 200
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(body)
    assert caught.value.faultCode == 105
    status, body = bridges.request("POST", bridges.url(ts, "http"), raw=b"not xml at all")
    assert status == 200
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(body)
    assert caught.value.faultCode == 201
    bridges.call(mcu, "conference.destroy", conferenceName="faults")


def test_port_limit_below_active_is_fault_25(bridges: Bridges) -> None:
    bridges.call("mcu", "conference.create", conferenceName="limit25")
    for name in ("a", "b"):
        bridges.call(
            "mcu", "participant.add", conferenceName="limit25", participantName=name, address="x"
        )
    assert (
        bridges.fault("mcu", "conference.modify", conferenceName="limit25", maximumVideoPorts=1)
        == 25
    )
    bridges.call("mcu", "conference.destroy", conferenceName="limit25")


def test_wrong_credentials(bridges: Bridges) -> None:
    """authenticationUser is case-sensitive; the MCU's password is checked; the TS
    user has no password, so any password is accepted."""
    for kind, params in (
        ("mcu", {"authenticationUser": "ADMIN", "authenticationPassword": PASSWORDS["mcu"]}),
        ("mcu", {"authenticationUser": "admin", "authenticationPassword": "wrong"}),
        ("mcu", {"authenticationUser": "admin"}),
        ("ts", {"authenticationUser": "root", "authenticationPassword": ""}),
    ):
        with (
            xmlrpc.client.ServerProxy(bridges.url(kind), context=no_verify()) as proxy,
            pytest.raises(xmlrpc.client.Fault) as caught,
        ):
            proxy.device.query(params)
        assert caught.value.faultCode == 15
    with xmlrpc.client.ServerProxy(bridges.url("ts"), context=no_verify()) as proxy:
        assert proxy.device.query({"authenticationUser": "admin", "authenticationPassword": "x"})
    status, _ = bridges.request("GET", bridges.url("mcu", path="/api/v1/drill"))
    assert status == 401


def test_g_r8_https_verifies_against_the_bridge_ca(bridges: Bridges) -> None:
    """G-R8: a client that trusts the bridge's CA verifies its HTTPS (IP in the
    certificate); one that does not, refuses it."""
    for kind in IPS:
        identity = json.loads(
            (
                bridges.state_dir
                / "hosts"
                / ("mcu" if kind == "mcu" else "telepresence-server")
                / "identity.json"
            ).read_text()
        )
        trusting = ssl.create_default_context(cadata=identity["ca"])
        with xmlrpc.client.ServerProxy(bridges.url(kind), context=trusting) as proxy:
            assert proxy.device.query(bridges.auth(kind))["serial"]
        with (
            xmlrpc.client.ServerProxy(
                bridges.url(kind), context=ssl.create_default_context()
            ) as proxy,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            proxy.device.query(bridges.auth(kind))


# --------------------------------------------------------------- signalling
def test_signalled_calls_join_and_leave(bridges: Bridges) -> None:
    """A call (POST /calls) appears in participant.enumerate, connected; hanging up
    (DELETE /calls/{id}) removes it. 404 no conference, 486 conference full, 503 no
    free port."""
    ip = IPS["mcu"]
    bridges.call(
        "mcu", "conference.create", conferenceName="calls", numericId="7700", maximumVideoPorts=2
    )
    status, answer = bridges.signal_call("mcu", "real-call-1", f"7700@{ip}")
    assert status == 200, answer
    assert answer["conference"] == "calls"
    (entry,) = [
        p
        for p in bridges.call("mcu", "participant.enumerate")["participants"]
        if p["conferenceName"] == "calls"
    ]
    assert entry["participantName"] == answer["participant"]
    assert entry["callID"] == "real-call-1"
    assert entry["currentState"]["callState"] == "connected"
    assert entry["currentState"]["address"] == "alice@example.com"
    assert bridges.signal_call("mcu", "real-call-2", f"calls@{ip}")[0] == 200
    status, refused = bridges.signal_call("mcu", "real-call-3", f"calls@{ip}")
    assert (status, refused["reason"]) == (486, "conference_full")
    status, refused = bridges.signal_call("mcu", "real-call-3", f"nothing@{ip}")
    assert (status, refused["reason"]) == (404, "no_such_conference")
    status, _ = bridges.request("DELETE", bridges.url("mcu", "sip", "/calls/real-call-1"))
    assert status == 200
    names = [
        p["participantName"]
        for p in bridges.call("mcu", "participant.enumerate")["participants"]
        if p["conferenceName"] == "calls"
    ]
    assert answer["participant"] not in names
    assert len(names) == 1
    assert bridges.request("DELETE", bridges.url("mcu", "sip", "/calls/real-call-1"))[0] == 404
    bridges.call("mcu", "conference.destroy", conferenceName="calls")

    ts_ip = IPS["ts"]
    conference_id = bridges.call(
        "ts",
        "flex.conference.create",
        conferenceName="ts-calls",
        URIs=[{"URI": "meet.calls@example.com"}],
    )["conferenceID"]
    ids = []
    for index in range(PORTS["ts"]):
        status, answer = bridges.signal_call("ts", f"ts-call-{index}", f"meet.calls@{ts_ip}")
        assert status == 200
        assert answer["conference"] == conference_id
        ids.append(answer["participant"])
    status, refused = bridges.signal_call("ts", "ts-call-x", f"meet.calls@{ts_ip}")
    assert (status, refused["reason"]) == (503, "bridge_full")
    listed = bridges.call("ts", "flex.participant.enumerate", conferenceID=conference_id)
    assert [p["participantID"] for p in listed["participants"]] == ids
    assert listed["participants"][0]["calls"][0]["callID"] == "ts-call-0"
    assert bridges.request("DELETE", bridges.url("ts", "sip", "/calls/ts-call-0"))[0] == 200
    listed = bridges.call("ts", "flex.participant.enumerate", conferenceID=conference_id)
    assert len(listed["participants"]) == PORTS["ts"] - 1
    bridges.call("ts", "flex.conference.destroy", conferenceID=conference_id)


def test_drill_full_healthy_and_listeners(bridges: Bridges) -> None:
    """The drill API: `full` refuses calls (503) and participants (fault 7); `healthy`
    shows in the health query; `http` off closes the HTTP listener (G-R8)."""
    drill = bridges.url("mcu", path="/api/v1/drill")
    status, body = bridges.request("PUT", drill, {"full": True, "healthy": False}, kind="mcu")
    assert status == 200
    assert json.loads(body)["full"] is True
    bridges.call("mcu", "conference.create", conferenceName="drill")
    assert (
        bridges.fault(
            "mcu", "participant.add", conferenceName="drill", participantName="p", address="x"
        )
        == 7
    )
    status, refused = bridges.signal_call("mcu", "drill-1", f"drill@{IPS['mcu']}")
    assert (status, refused["reason"]) == (503, "bridge_full")
    assert bridges.call("mcu", "device.health.query")["healthy"] is False
    query = bridges.call("mcu", "device.query")
    assert query["usedVideoPorts"] == query["totalVideoPorts"]
    status, _ = bridges.request("PUT", drill, {"http": False}, kind="mcu")
    assert status == 200
    with pytest.raises(ConnectionRefusedError):
        bridges.call("mcu", "device.query", "http")
    assert bridges.call("ts", "device.query", "http")  # the other bridge keeps its HTTP
    status, body = bridges.request(
        "PUT",
        bridges.url("mcu", "sip", "/api/v1/drill"),
        {"http": True, "full": False, "healthy": True},
        kind="mcu",
    )
    assert status == 200
    assert json.loads(body) == {"full": False, "healthy": True, "http": True, "https": True}
    assert bridges.call("mcu", "device.query", "http")["healthy"] is True
    bridges.call("mcu", "conference.destroy", conferenceName="drill")


def test_status_json_is_published(bridges: Bridges) -> None:
    path = bridges.state_dir / "hosts" / "mcu" / "status.json"
    bridges.call("mcu", "conference.create", conferenceName="published")
    deadline = time.monotonic() + WAIT_S
    while True:
        with contextlib.suppress(OSError, ValueError):
            status = json.loads(path.read_text())
            if status["conferences"] >= 1:
                break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["kind"] == "mcu"
    assert status["ports"]["total"] == PORTS["mcu"]
    assert set(status["drill"]) == {"full", "healthy", "http", "https"}
    bridges.call("mcu", "conference.destroy", conferenceName="published")
