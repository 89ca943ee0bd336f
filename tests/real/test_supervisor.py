"""`tplab up -d` / `status` / `down` end to end: a real supervisor, real peer and VCS
processes.

The lab is a topology of its own (two conductors and a VCS on 127.93.X.1-3, X drawn
per session), in a temporary state dir, with its control API on a free port, so it
runs beside a live `make run` lab and other test sessions. Every test tears its lab
down in `finally` and then signals, by PID, whatever lab.json still records as alive.
The tests of `kill_host` / `start_host` also run a supervisor inside the test process
(its lab has one more host, an MCU, whose role is taken out of `PROCESS_MODULES` to
stand for a role with no process yet); their teardown stops it and signals only the
children's PIDs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.paths import REPO_ROOT
from emulator.supervisor import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    EXIT_RESTART,
    PEER_PORT,
    PROCESS_MODULES,
    LabConfig,
    LabState,
    Supervisor,
    SupervisorError,
    UnknownHostError,
    read_lab,
    same_process,
    signal_pids,
)
from netsim.topology import load_topology

#: bound on every wait (generous: two shared cores, peers generate keys on first start)
WAIT_S = 60.0
POLL_S = 0.1
CLI_TIMEOUT_S = 120.0

_X = random.Random().randrange(1, 250)


def test_supervisor_constants_match_the_nodes() -> None:
    """The supervisor does not import the nodes (start-up time); its copies must agree."""
    from peers.node import DEFAULT_PORT
    from peers.node import EXIT_RESTART as PEER_EXIT_RESTART
    from peers.store import DEFAULT_PASSWORD as PEER_PASSWORD
    from vcs_policy.node import DEFAULT_PORT as VCS_PORT
    from vcs_policy.store import DEFAULT_PASSWORD as VCS_PASSWORD

    assert (EXIT_RESTART, PEER_PORT, PEER_PORT, DEFAULT_PASSWORD, DEFAULT_PASSWORD) == (
        PEER_EXIT_RESTART,
        DEFAULT_PORT,
        VCS_PORT,
        PEER_PASSWORD,
        VCS_PASSWORD,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


async def tplab(*args: str) -> CliResult:
    """Run the `tplab` command line in a process of its own (bounded)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulator.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())


@dataclass
class LabDir:
    state_dir: Path
    topology: Path
    ips: dict[str, str]
    control: str

    def args(self) -> list[str]:
        return ["--state-dir", str(self.state_dir)]

    async def status(self) -> dict[str, Any]:
        result = await tplab("status", "--json", *self.args())
        assert result.returncode == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def recorded_pids(self) -> list[tuple[int, int | None]]:
        """Every PID lab.json records: the supervisor's and each child's."""
        lab = read_lab(self.state_dir) or {}
        pids = [(lab["supervisor_pid"], lab.get("supervisor_start"))] if lab else []
        pids += [(h["pid"], h.get("pid_start")) for h in lab.get("hosts", []) if h.get("pid")]
        return pids


@pytest.fixture
async def lab_dir() -> AsyncIterator[LabDir]:
    ips = {
        "conductor-a": f"127.93.{_X}.1",
        "conductor-b": f"127.93.{_X}.2",
        "vcs": f"127.93.{_X}.3",
    }
    with tempfile.TemporaryDirectory(prefix="tplab-sup-") as tmp:
        topology = Path(tmp) / "lab.yaml"
        topology.write_text(lab_topology_text(ips))
        lab = LabDir(Path(tmp) / "state", topology, ips, f"127.0.0.1:{free_port()}")
        try:
            yield lab
        finally:
            # even on failure: stop the lab, then whatever it recorded that is still alive
            with contextlib.suppress(Exception):
                await tplab("down", *lab.args())
            pids = lab.recorded_pids()
            signal_pids(pids, signal.SIGKILL)
            await wait_gone(pids)


async def wait_gone(pids: list[tuple[int, int | None]]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while any(same_process(pid, start) for pid, start in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


def api_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Authorization": aiohttp.encode_basic_auth(DEFAULT_USER, DEFAULT_PASSWORD)},
        timeout=aiohttp.ClientTimeout(total=10),
    )


async def api(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    async with session.request(method, url, json=body, ssl=False) as response:
        return response.status, await response.json()


def hosts_by_name(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {host["host"]: host for host in status["hosts"]}


async def answers(url: str) -> bool:
    """True when the node at `url` answers GET /login with 200 (bounded)."""
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url + "login", ssl=False, allow_redirects=False) as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


def lab_topology_text(ips: dict[str, str]) -> str:
    return "version: 1\nname: sup-test\n" + (
        "services:\n  conductor: [tcp/8443]\n  vcs: [tcp/8443]\nhosts:\n"
        + "".join(
            f"  - {{name: {name}, role: {name.split('-')[0]}, ip: {ip}}}\n"
            for name, ip in ips.items()
        )
    )


async def test_up_status_restart_down(lab_dir: LabDir) -> None:
    """G-P7: a clustering change saved before Maintenance > Restart is active after it;
    the supervisor starts the peer again at once (new PID); the VCS runs beside the peers
    with its call summary in `tplab status`; `tplab down` stops every process it started."""
    result = await tplab(
        "up",
        "-d",
        "--topology",
        str(lab_dir.topology),
        "--control",
        lab_dir.control,
        *lab_dir.args(),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"{DEFAULT_USER} / {DEFAULT_PASSWORD}" in result.stdout

    status = await lab_dir.status()
    assert status["running"] is True
    assert status["control"] == f"http://{lab_dir.control}"
    hosts = hosts_by_name(status)
    for name in ("conductor-a", "conductor-b"):
        assert hosts[name]["state"] == "up"
        assert hosts[name]["url"] == f"https://{lab_dir.ips[name]}:8443/"
        assert same_process(hosts[name]["pid"], hosts[name]["pid_start"])
        assert hosts[name]["restart_required"] is False
    vcs = hosts["vcs"]
    assert vcs["state"] == "up"
    assert vcs["url"] == f"https://{lab_dir.ips['vcs']}:8443/"
    assert same_process(vcs["pid"], vcs["pid_start"])
    assert vcs["calls"]["total"] == 0
    assert vcs["policy_services"] == []
    assert (vcs["alarms"], vcs["restart_required"]) == (None, None)  # a VCS publishes neither

    url = hosts["conductor-a"]["url"]
    old_pid, old_start = hosts["conductor-a"]["pid"], hosts["conductor-a"]["pid_start"]
    other_pid = hosts["conductor-b"]["pid"]
    peers = {"peer1": lab_dir.ips["conductor-a"], "peer2": lab_dir.ips["conductor-b"]}
    async with api_session() as session:
        code, saved = await api(session, "PUT", url + "api/v1/system/clustering", peers)
        assert code == 200, saved
        assert saved["pending"] == ["peer1", "peer2"]
        assert hosts_by_name(await lab_dir.status())["conductor-a"]["restart_required"] is True
        code, _ = await api(session, "POST", url + "api/v1/maintenance/restart")
        assert code == 202

        deadline = time.monotonic() + WAIT_S
        while True:
            host = hosts_by_name(await lab_dir.status())["conductor-a"]
            if host["state"] == "up" and host["pid"] != old_pid:
                break
            assert host["state"] != "failed", host
            assert time.monotonic() < deadline, f"conductor-a did not come back: {host}"
            await asyncio.sleep(POLL_S)
        assert host["restarts"] == 1
        assert host["note"] == "restarted on request"
        assert not same_process(old_pid, old_start)

        code, page = await api(session, "GET", url + "api/v1/system/clustering")
        assert code == 200
        assert {k: page["settings"][k] for k in peers} == peers
        assert page["pending"] == {}
        assert page["restart_required"] is False

    status = await lab_dir.status()
    assert hosts_by_name(status)["conductor-b"]["pid"] == other_pid  # untouched
    pids = lab_dir.recorded_pids()
    assert len(pids) == 4  # the supervisor, two conductors and the VCS

    result = await tplab("down", *lab_dir.args())
    assert result.returncode == 0, result.stderr
    assert "conductor-a" in result.stdout
    assert "conductor-b" in result.stdout
    assert "vcs" in result.stdout
    assert await wait_gone(pids), [p for p, s in pids if same_process(p, s)]
    final = read_lab(lab_dir.state_dir)
    assert final is not None
    assert final["state"] == "stopped"
    assert {h["state"] for h in final["hosts"]} == {"stopped"}

    again = await tplab("status", *lab_dir.args())
    assert again.returncode == 1
    assert "no lab is running" in again.stderr
    again = await tplab("down", *lab_dir.args())
    assert again.returncode == 0
    assert "no lab is running" in again.stdout


async def test_second_lab_on_the_same_state_dir_is_refused(lab_dir: LabDir) -> None:
    up = ["up", "-d", "--topology", str(lab_dir.topology), *lab_dir.args()]
    first = await tplab(*up, "--control", lab_dir.control)
    assert first.returncode == 0, first.stderr
    second = await tplab(*up, "--control", f"127.0.0.1:{free_port()}")
    assert second.returncode == 1
    assert "a lab is already running" in second.stderr
    assert (await lab_dir.status())["state"] == "running"


async def test_down_and_status_without_a_lab(lab_dir: LabDir) -> None:
    down = await tplab("down", *lab_dir.args())
    assert down.returncode == 0
    assert "no lab is running" in down.stdout
    status = await tplab("status", "--json", *lab_dir.args())
    assert status.returncode == 1
    assert "no lab is running" in status.stderr


async def test_a_peer_that_cannot_start_fails_up_with_its_log(lab_dir: LabDir) -> None:
    """`up -d` names the host that did not come up and shows the end of its log; the
    lab it began is stopped (no process left)."""
    from netsim.proxy import private_ip

    with socket.socket() as taken:  # conductor-b's port behind the proxy is in use
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier tests' TIME_WAIT
        taken.bind((private_ip(lab_dir.ips["conductor-b"]), PEER_PORT))
        taken.listen()
        result = await tplab(
            "up",
            "-d",
            "--topology",
            str(lab_dir.topology),
            "--control",
            lab_dir.control,
            *lab_dir.args(),
        )
    assert result.returncode == 1
    assert "conductor-b exited with status 1" in result.stderr
    assert "process.log" in result.stderr
    assert "error:" in result.stderr  # the peer's own message, from the end of its log
    lab = read_lab(lab_dir.state_dir)
    assert lab is not None
    assert lab["state"] == "failed"
    assert await wait_gone(lab_dir.recorded_pids())


async def test_down_after_the_supervisor_was_killed(lab_dir: LabDir) -> None:
    """With the supervisor gone (SIGKILL), `status` and `up` point at the processes it
    left, and `down` stops them by the PIDs lab.json recorded."""
    up = ["up", "-d", "--topology", str(lab_dir.topology), "--control", lab_dir.control]
    result = await tplab(*up, *lab_dir.args())
    assert result.returncode == 0, result.stderr
    lab = read_lab(lab_dir.state_dir)
    assert lab is not None
    supervisor = [(lab["supervisor_pid"], lab["supervisor_start"])]
    assert signal_pids(supervisor, signal.SIGKILL) == [lab["supervisor_pid"]]
    assert await wait_gone(supervisor)
    children = [(h["pid"], h["pid_start"]) for h in lab["hosts"] if h["pid"]]
    assert len(children) == 3
    assert all(same_process(pid, start) for pid, start in children)

    status = await tplab("status", *lab_dir.args())
    assert status.returncode == 1
    assert "the supervisor of the lab" in status.stderr
    again = await tplab(*up, *lab_dir.args())
    assert again.returncode == 1
    assert "still run" in again.stderr

    down = await tplab("down", *lab_dir.args())
    assert down.returncode == 0, down.stderr
    assert "is gone; stopping what it left" in down.stdout
    assert await wait_gone(children)


@dataclass
class InProcessLab:
    """A supervisor running in the test's event loop, ready (its lab is running)."""

    supervisor: Supervisor
    run: asyncio.Task[None]
    state_dir: Path
    events: list[str]
    #: every child (pid, start ticks) seen, for the teardown: lab.json keeps the latest only
    seen: set[tuple[int, int | None]] = field(default_factory=set)

    def host(self, name: str) -> dict[str, Any]:
        host = hosts_by_name(self.supervisor.snapshot())[name]
        if host["pid"]:
            self.seen.add((host["pid"], host["pid_start"]))
        return host


@pytest.fixture
async def in_process_lab(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[InProcessLab]:
    # every role of the topology schema has a process now: drop one to get "not built yet"
    monkeypatch.delitem(PROCESS_MODULES, "mcu")
    ips = {
        "conductor-a": f"127.93.{_X}.1",
        "conductor-b": f"127.93.{_X}.2",
        "vcs": f"127.93.{_X}.3",
        "mcu": f"127.93.{_X}.4",
    }
    with tempfile.TemporaryDirectory(prefix="tplab-sup-") as tmp:
        topology = Path(tmp) / "lab.yaml"
        topology.write_text(lab_topology_text(ips))
        state_dir = Path(tmp) / "state"
        config = LabConfig(topology, state_dir, control_port=free_port())
        events: list[str] = []
        supervisor = Supervisor(config, load_topology(topology), on_event=events.append)
        ready = asyncio.Event()
        run = asyncio.create_task(supervisor.run(lambda _: ready.set()))
        lab = InProcessLab(supervisor, run, state_dir, events)
        try:
            ready_wait = asyncio.ensure_future(ready.wait())
            await asyncio.wait(
                {ready_wait, run}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED
            )
            ready_wait.cancel()
            assert ready.is_set(), events
            for name in ips:
                lab.host(name)
            yield lab
        finally:
            # never `tplab down` here: lab.json names this test process as the supervisor
            supervisor.request_stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run, WAIT_S)
            recorded = (read_lab(state_dir) or {}).get("hosts", [])
            pids = lab.seen | {(h["pid"], h["pid_start"]) for h in recorded if h["pid"]}
            signal_pids(pids, signal.SIGKILL)
            await wait_gone(list(pids))


async def test_kill_and_start_a_peer_in_process(in_process_lab: InProcessLab) -> None:
    """A killed peer is left "killed" (not failed, not restarted) while the rest of the
    lab runs on; started again it answers with a new PID; stopping the lab afterwards
    leaves no process."""
    lab = in_process_lab
    supervisor = lab.supervisor
    killed = lab.host("conductor-b")
    others = {name: lab.host(name) for name in ("conductor-a", "vcs")}

    await supervisor.kill_host("conductor-b")
    assert supervisor.host_state("conductor-b") == "killed"
    host = lab.host("conductor-b")
    assert (host["note"], host["exit_code"]) == ("killed on request", -signal.SIGKILL)
    assert host["restarts"] == 0
    assert not same_process(killed["pid"], killed["pid_start"])
    assert not await answers(killed["url"])
    assert supervisor.state is LabState.RUNNING
    recorded = read_lab(lab.state_dir)
    assert recorded is not None
    assert recorded["state"] == "running"
    assert hosts_by_name(recorded)["conductor-b"]["state"] == "killed"
    for name, before in others.items():
        assert supervisor.host_state(name) == "up"
        assert lab.host(name)["pid"] == before["pid"]
        assert same_process(before["pid"], before["pid_start"])
        assert await answers(before["url"])

    await supervisor.start_host("conductor-b")
    assert supervisor.host_state("conductor-b") == "up"
    host = lab.host("conductor-b")
    assert host["pid"] != killed["pid"]
    assert same_process(host["pid"], host["pid_start"])
    assert host["note"] == "started on request"
    assert await answers(host["url"])
    recorded = read_lab(lab.state_dir)
    assert recorded is not None
    assert hosts_by_name(recorded)["conductor-b"]["state"] == "up"

    supervisor.request_stop()
    await asyncio.wait_for(lab.run, WAIT_S)
    assert await wait_gone(list(lab.seen)), [p for p, s in lab.seen if same_process(p, s)]
    assert len(lab.seen) == 4  # conductor-a, vcs and both processes of conductor-b
    final = read_lab(lab.state_dir)
    assert final is not None
    assert final["state"] == "stopped"
    assert {h["host"]: h["state"] for h in final["hosts"]} == {
        "conductor-a": "stopped",
        "conductor-b": "stopped",
        "vcs": "stopped",
        "mcu": "not built yet",
    }


async def test_kill_and_start_refusals_in_process(in_process_lab: InProcessLab) -> None:
    """Unknown hosts, hosts with no process and hosts in the wrong state are refused
    with a message that says which and why; nothing changes."""
    supervisor = in_process_lab.supervisor
    for call in (supervisor.kill_host, supervisor.start_host):
        with pytest.raises(UnknownHostError, match=r"^unknown host 'nope'; hosts: conductor-a"):
            await call("nope")
        with pytest.raises(SupervisorError, match=r"^mcu has no process: .*not built yet$"):
            await call("mcu")
    with pytest.raises(UnknownHostError, match="unknown host 'nope'"):
        supervisor.host_state("nope")
    assert supervisor.host_state("mcu") == "not built yet"
    with pytest.raises(SupervisorError, match=r"^vcs is already running \(up\)$"):
        await supervisor.start_host("vcs")

    await supervisor.kill_host("vcs")
    with pytest.raises(SupervisorError, match=r"^vcs is not running \(killed\)$"):
        await supervisor.kill_host("vcs")
    assert supervisor.host_state("vcs") == "killed"
    assert {name: supervisor.host_state(name) for name in ("conductor-a", "conductor-b")} == {
        "conductor-a": "up",
        "conductor-b": "up",
    }


async def test_control_api_kills_and_starts_hosts(lab_dir: LabDir) -> None:
    """POST /api/v1/hosts/NAME/kill and .../start on the lab's control API (200 with the
    host, 404 unknown host, 409 wrong state), GET /api/v1/hosts, `tplab status` showing
    the killed host, and `tplab down` afterwards leaving no process."""
    up = ["up", "-d", "--topology", str(lab_dir.topology), "--control", lab_dir.control]
    result = await tplab(*up, *lab_dir.args())
    assert result.returncode == 0, result.stderr + result.stdout
    control = f"http://{lab_dir.control}/api/v1/hosts"
    timeout = aiohttp.ClientTimeout(total=CLI_TIMEOUT_S)  # a start waits until it answers
    async with aiohttp.ClientSession(timeout=timeout) as session:
        code, listed = await api(session, "GET", control)
        assert code == 200
        assert [(h["host"], h["state"]) for h in listed] == [
            ("conductor-a", "up"),
            ("conductor-b", "up"),
            ("vcs", "up"),
        ]
        before = {h["host"]: h for h in listed}
        old = before["conductor-a"]

        for action in ("kill", "start"):
            code, body = await api(session, "POST", f"{control}/nope/{action}")
            assert code == 404
            assert body["error"].startswith("unknown host 'nope'")
        code, body = await api(session, "GET", f"{control}/conductor-a/kill")
        assert code == 405
        assert set(body) == {"error"}

        code, body = await api(session, "POST", f"{control}/conductor-a/kill")
        assert code == 200, body
        assert (body["host"], body["state"], body["note"]) == (
            "conductor-a",
            "killed",
            "killed on request",
        )
        assert body["pid"] == old["pid"]
        assert not same_process(old["pid"], old["pid_start"])
        code, body = await api(session, "POST", f"{control}/conductor-a/kill")
        assert (code, body) == (409, {"error": "conductor-a is not running (killed)"})

        status = await lab_dir.status()
        assert status["running"] is True
        assert status["state"] == "running"
        assert {h["host"]: h["state"] for h in status["hosts"]} == {
            "conductor-a": "killed",
            "conductor-b": "up",
            "vcs": "up",
        }
        table = await tplab("status", *lab_dir.args())
        assert table.returncode == 0, table.stderr
        assert "killed" in table.stdout

        code, body = await api(session, "POST", f"{control}/vcs/start")
        assert (code, body) == (409, {"error": "vcs is already running (up)"})
        code, body = await api(session, "POST", f"{control}/conductor-a/start")
        assert code == 200, body
        assert (body["state"], body["note"]) == ("up", "started on request")
        assert body["pid"] != old["pid"]
        assert same_process(body["pid"], body["pid_start"])
        assert await answers(body["url"])
        code, listed = await api(session, "GET", control)
        assert code == 200
        assert {h["host"]: h["state"] for h in listed} == dict.fromkeys(before, "up")
        for name in ("conductor-b", "vcs"):
            assert {h["host"]: h["pid"] for h in listed}[name] == before[name]["pid"]

    pids = lab_dir.recorded_pids()
    assert len(pids) == 4  # the supervisor, the new conductor-a, conductor-b and the VCS
    down = await tplab("down", *lab_dir.args())
    assert down.returncode == 0, down.stderr
    assert await wait_gone(pids), [p for p, s in pids if same_process(p, s)]
    final = read_lab(lab_dir.state_dir)
    assert final is not None
    assert {h["state"] for h in final["hosts"]} == {"stopped"}


async def test_lab_home_page_lists_hosts_and_lets_the_network_team_remove_a_rule(
    in_process_lab: InProcessLab,
) -> None:
    """The lab home page (issue 9) on the control address: every host with a link to its
    admin pages; the world's firewall rules, each removable by its form (a form of
    another origin is refused, nothing changes); no grade while no training lab runs;
    a broken exercise record is shown as an error, not a crash."""
    lab = in_process_lab
    control = lab.supervisor.control_url
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{control}/api/firewall",
            json={"proto": "udp", "ports": "4369-4380", "action": "drop"},
        ) as answer:
            assert answer.status == 201, await answer.text()
            rule = (await answer.json())["id"]
        async with session.get(f"{control}/") as answer:
            assert answer.status == 200
            html = await answer.text()
        for name in ("conductor-a", "conductor-b", "vcs"):
            assert f'<a href="{lab.host(name)["url"]}">{name} admin pages</a>' in html
        assert "mcu</th>" in html
        assert ">none<" in html
        assert f"Remove rule {rule}</button>" in html
        removal = f"{control}/lab/firewall/{rule}/remove"
        async with session.post(removal, headers={"Origin": "http://evil.example"}) as answer:
            assert answer.status == 403
            assert "cannot change this lab's firewall" in await answer.text()
        world = lab.supervisor.world
        assert world is not None
        assert [r.id for r in world.table.firewall] == [rule]
        async with session.post(removal, allow_redirects=False) as answer:
            assert answer.status == 303
            assert answer.headers["Location"] == "/#network"
        assert world.table.firewall == []
        async with session.post(removal) as answer:
            assert answer.status == 404
        async with session.get(f"{control}/lab/grade") as answer:
            assert answer.status == 409
            assert (await answer.json())["error"] == "no training lab runs here"
        (lab.state_dir / "exercise.json").write_text(json.dumps({"file": "/nonexistent.yaml"}))
        async with session.get(f"{control}/") as answer:
            assert answer.status == 200
            assert "cannot be read" in await answer.text()
