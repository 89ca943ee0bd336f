"""The `tplab` command line: argument parsing, error messages and exit statuses, and
the `tplab net` client commands end to end against a real control server on loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from emulator.cli import (
    attempt_lines,
    cli,
    control_url,
    describe_call,
    describe_calls,
    describe_spec,
    format_event,
    listen_address,
)
from emulator.paths import DEFAULT_TOPOLOGY, REPO_ROOT
from emulator.supervisor import process_start_ticks
from netsim.control import make_app
from netsim.core.impairments import LinkSpec
from netsim.topology import load_topology
from netsim.world import World


@pytest.fixture(autouse=True)
def _no_control_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TPLAB_CONTROL", raising=False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


# ------------------------------------------------------------ parsing, errors
def test_loss_above_one_is_bad_input() -> None:
    result = run("net", "impair", "vcs", "mcu", "--loss", "2")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: Invalid value for '--loss': 2.0 is not in the range 0.0<=x<=1.0. "
        "(see 'tplab net impair --help')\n"
    )


def test_impair_without_an_impairment_is_bad_input() -> None:
    result = run("net", "impair", "vcs", "mcu")
    assert result.exit_code == 2
    assert "name at least one impairment, e.g. --latency-ms 20" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["net", "impair", "vcs", "mcu", "--mtu", "40"],
        ["net", "impair", "vcs", "--loss", "0.1"],
        ["net", "firewall", "add", "--ports", "500"],
        ["net", "firewall", "add", "--proto", "icmp", "--ports", "500"],
        ["net", "firewall", "remove", "one"],
        ["net", "clock", "vcs"],
        ["net", "partition"],
        ["net", "partition", "vcs,,mcu"],
        ["net", "trace", "--since", "-1"],
        ["net", "show", "--control", "ftp://127.0.0.1:1"],
        ["net", "frobnicate"],
    ],
)
def test_usage_errors_exit_2_with_a_message(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert len(result.stderr.splitlines()) == 1


def test_unreachable_world_exits_1_with_the_hint() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run("net", "show", "--control", url)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: no world is running at {url}; start one with `tplab net serve`"
    )


def test_control_url_comes_from_the_environment() -> None:
    address = f"127.0.0.1:{closed_port()}"
    result = run("net", "heal", env={"TPLAB_CONTROL": address})
    assert result.exit_code == 1
    assert f"no world is running at http://{address};" in result.stderr


def test_serve_refuses_a_bad_topology(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nhosts:\n  - {name: a, role: vcs, ip: 300.1.1.1}\n")
    result = run("net", "serve", "--topology", str(path), "--state-dir", str(tmp_path))
    assert result.exit_code == 2
    assert f"Error: {path}:3:" in result.stderr
    assert "is not an IPv4 address" in result.stderr


def test_serve_refuses_a_bad_control_address(tmp_path: Path) -> None:
    result = run("net", "serve", "--control", "ftp://x", "--state-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "--control" in result.stderr


def test_default_topology_is_in_the_repository() -> None:
    assert DEFAULT_TOPOLOGY == REPO_ROOT / "scenarios" / "topologies" / "default.yaml"
    assert DEFAULT_TOPOLOGY.is_file()


def test_addresses() -> None:
    assert control_url("127.0.0.1:7400") == "http://127.0.0.1:7400"
    assert control_url(" http://localhost:9/ ") == "http://localhost:9"
    assert listen_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert listen_address("http://127.0.0.2:81") == ("127.0.0.2", 81)
    assert listen_address("127.0.0.1") == ("127.0.0.1", 7400)
    for bad in ("127.0.0.1:99999", "http://[bad", "ftp://x:1", "http://x:1/path", ":80"):
        with pytest.raises(click.BadParameter):
            control_url(bad)
        with pytest.raises(click.BadParameter):
            listen_address(bad)


def test_formatting() -> None:
    spec = LinkSpec(latency_ms=20, loss=0.1, mtu_bytes=1300, down=True).to_dict()
    assert describe_spec(spec) == "latency 20 ms, loss 10%, mtu 1300 B, down"
    assert describe_spec(LinkSpec().to_dict()) == "not impaired"
    line = format_event({"seq": 3, "t": 1.5, "kind": "clock", "host": "vcs", "offset_s": 2.0})
    assert line.split() == ["3", "1.500000", "clock", 'host="vcs"', "offset_s=2.0"]


# ------------------------------------------------------------- end to end
class ServerThread:
    """The control API of `world`, served on 127.0.0.1 by its own event loop."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(make_app(self.world), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}"
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(timeout=30), "control server did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()


@pytest.fixture
def served() -> Iterator[ServerThread]:
    ticks = itertools.count()
    world = World(load_topology(DEFAULT_TOPOLOGY), seed=3, now=lambda: float(next(ticks)))
    with ServerThread(world) as server:
        yield server


def ok(*args: str, control: str) -> Result:
    result = run(*args, "--control", control)
    assert result.exit_code == 0, result.stderr
    return result


def test_client_commands_end_to_end(served: ServerThread) -> None:
    url, table = served.url, served.world.table
    impaired = ok(
        "net",
        "impair",
        "conductor-2",
        "conductor-3",
        "--latency-ms",
        "20",
        "--mtu",
        "1300",
        "--both",
        control=url,
    )
    assert impaired.stdout.strip() == "conductor-2 <-> conductor-3: latency 20 ms, mtu 1300 B"
    assert table.spec("conductor-3", "conductor-2") == LinkSpec(latency_ms=20, mtu_bytes=1300)

    state = json.loads(ok("net", "show", "--json", control=url).stdout)
    assert state["backend"] == "null"
    assert [(x["src"], x["dst"]) for x in state["links"]] == [
        ("conductor-2", "conductor-3"),
        ("conductor-3", "conductor-2"),
    ]

    ok("net", "partition", "conductor-initial,conductor-2", "conductor-3", control=url)
    assert table.partitioned("conductor-initial", "conductor-3")
    assert not table.partitioned("conductor-initial", "conductor-2")
    ok("net", "heal", control=url)
    assert table.partition == ()

    added = ok(
        "net",
        "firewall",
        "add",
        "--proto",
        "udp",
        "--ports",
        "4369-4380",
        "--dst",
        "conductor-3",
        control=url,
    )
    assert added.stdout.strip() == "rule 1: drop udp/4369-4380 from * to conductor-3"
    listed = json.loads(ok("net", "firewall", "list", "--json", control=url).stdout)
    assert [(r["id"], r["port_lo"], r["port_hi"]) for r in listed] == [(1, 4369, 4380)]
    assert "4369-4380" in ok("net", "firewall", "list", control=url).stdout
    ok("net", "firewall", "remove", "1", control=url)
    assert table.firewall == []

    assert ok("net", "clock", "vcs", "--offset-s", "-30", control=url).stdout.strip() == (
        "vcs: clock offset -30 s"
    )
    assert table.clock_offset_s("vcs") == -30.0

    shown = ok("net", "show", control=url).stdout
    for text in ("conductor-initial", "127.1.2.4", "-30 s", "latency 20 ms", "partition: none"):
        assert text in shown

    kinds = [
        json.loads(line)["kind"]
        for line in ok("net", "trace", "--json", control=url).stdout.splitlines()
    ]
    assert kinds == ["impair", "partition", "heal", "firewall_add", "firewall_remove", "clock"]

    ok("net", "clear", "conductor-2", "conductor-3", "--both", control=url)
    ok("net", "reset", control=url)
    assert table.links == {}
    assert table.clock_offsets == {}


def test_refusals_of_the_world_exit_2_with_its_message(served: ServerThread) -> None:
    before = served.world.show()
    cases = [
        (["net", "impair", "nope", "vcs", "--loss", "0.5"], "unknown host 'nope'"),
        (["net", "impair", "vcs", "vcs", "--loss", "0.5"], "same host 'vcs'"),
        (["net", "partition", "vcs", "vcs"], "host 'vcs' appears in more than one group"),
        (["net", "firewall", "add", "--proto", "udp", "--ports", "9-5"], "port range 9-5"),
        (["net", "firewall", "remove", "7"], "no firewall rule with id 7"),
        (["net", "clock", "vcs", "--offset-s", "1e12"], "within +-10 years"),
    ]
    for args, message in cases:
        result = run(*args, "--control", served.url)
        assert result.exit_code == 2, (args, result.stderr)
        assert result.stderr.startswith("Error: ")
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert served.world.show() == before


# -------------------------------------------------------- tplab net serve
@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`tplab net serve --backend off` as a subprocess on a free loopback port."""
    command = [sys.executable, "-m", "emulator.cli", "net", "serve", "--backend", "off"]
    command += ["--control", "127.0.0.1:0", "--state-dir", str(tmp_path)]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "TPLAB_CONTROL"},
    )
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            if "control API at " in line:
                url = line.split("control API at ")[1].split()[0]
                break
        assert url, f"serve did not start: {process.stderr.read() if process.stderr else ''}"
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_serve_runs_a_world_until_sigterm(
    serve_process: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    process, url = serve_process
    state = json.loads(ok("net", "show", "--json", control=url).stdout)
    assert state["backend"] == "off"
    assert state["capabilities"]["latency"]["support"] == "unavailable"

    ok("net", "clock", "conductor-2", "--offset-s", "30", control=url)
    clock_file = tmp_path / "netsim" / "clock.json"
    assert json.loads(clock_file.read_text()) == {"conductor-2": 30.0}

    refused = run("net", "impair", "vcs", "mcu", "--latency-ms", "20", "--control", url)
    assert refused.exit_code == 2
    assert "the off backend cannot apply latency" in refused.stderr

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "world stopped" in out
    assert run("net", "show", "--control", url).exit_code == 1


# ------------------------------------------------------- tplab call / load
def write_lab(state_dir: Path, hosts: list[dict[str, Any]]) -> None:
    """A lab.json as a running supervisor writes it; this test process stands in for
    the supervisor, so the lab counts as running."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lab = {
        "supervisor_pid": os.getpid(),
        "supervisor_start": process_start_ticks(os.getpid()),
        "state": "running",
        "error": "",
        "started": "2026-01-01T00:00:00+00:00",
        "state_dir": str(state_dir),
        "topology": "t.yaml",
        "topology_name": "t",
        "backend": "proxy",
        "control": "http://127.0.0.1:1",
        "namespaces": [],
        "hosts": [
            {"role": "vcs", "state": "up", "pid": None, "restarts": 0, "note": "", **host}
            for host in hosts
        ],
    }
    (state_dir / "lab.json").write_text(json.dumps(lab))


@pytest.fixture(autouse=True)
def _no_vcs_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TPLAB_VCS_PASSWORD", raising=False)


@pytest.mark.parametrize(
    "args", [["call", "a@x", "b@y"], ["load", "--rate", "1", "--duration", "1", "--aliases", "m"]]
)
def test_call_and_load_need_a_running_lab(tmp_path: Path, args: list[str]) -> None:
    result = run(*args, "--state-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: no lab is running on {tmp_path}; start one with `tplab up`\n")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        (["--rate", "0", "--duration", "1"], "--rate"),
        (["--rate", "-5", "--duration", "1"], "--rate"),
        (["--rate", "10001", "--duration", "1"], "--rate"),
        (["--rate", "many", "--duration", "1"], "--rate"),
        (["--rate", "1", "--duration", "0"], "--duration"),
        (["--rate", "1", "--duration", "86401"], "--duration"),
        (["--rate", "1"], "--duration"),
        (["--rate", "1", "--duration", "1", "--protocol", "ISDN"], "--protocol"),
    ],
)
def test_load_options_are_checked_before_anything_runs(
    tmp_path: Path, options: list[str], name: str
) -> None:
    result = run("load", *options, "--aliases", "m.{1-5}@x", "--state-dir", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert name in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_call_names_what_is_wrong_with_the_lab_s_vcs(tmp_path: Path) -> None:
    conductor = {"host": "c1", "role": "conductor", "url": "https://127.0.0.1:1/"}
    write_lab(tmp_path, [conductor])
    result = run("call", "a@x", "b@y", "--state-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the lab on {tmp_path} has no VCS: its topology t (t.yaml) has no host "
        "with role vcs\n"
    )

    failed = {"host": "vcs", "url": "https://127.0.0.1:1/", "state": "failed"}
    write_lab(tmp_path, [conductor, {**failed, "note": "exited with status 1"}])
    result = run("call", "a@x", "b@y", "--state-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "the VCS vcs is failed (exited with status 1), not up" in result.stderr

    url = f"http://127.0.0.1:{closed_port()}/"
    write_lab(tmp_path, [{"host": "vcs", "url": url}, {"host": "vcs-2", "url": url}])
    result = run(
        "load", "--rate", "1", "--duration", "1", "--aliases", "m", "--state-dir", str(tmp_path)
    )
    assert result.exit_code == 2
    assert "several VCS hosts (vcs, vcs-2); name one with --vcs" in result.stderr
    result = run("call", "a@x", "b@y", "--vcs", "nope", "--state-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "no VCS host named 'nope'; its VCS hosts: vcs, vcs-2" in result.stderr

    result = run("call", "a@x", "b@y", "--vcs", "vcs-2", "--state-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: the VCS at {url.rstrip('/')} is not answering: ")
    assert len(result.stderr.splitlines()) == 1


def test_status_shows_the_vcs_calls_and_policy_servers(tmp_path: Path) -> None:
    write_lab(tmp_path, [{"host": "vcs", "url": "https://127.0.0.1:1/"}])
    status = {
        "role": "vcs",
        "version": "X8.5.2",
        "calls": {
            "total": 5,
            "connected": 3,
            "rejected": 2,
            "failed": 0,
            "default_cpl": 1,
            "by_via": {"LocalZone": 3},
            "setup_ms_p50": 2.54,
            "setup_ms_p99": 9.0,
        },
        "policy_services": [
            {
                "name": "Conductors",
                "status": "Active",
                "servers": [
                    {
                        "slot": 1,
                        "address": "127.1.2.4",
                        "status": "Active",
                        "text": "Active. Last communication: 2026-01-01 10:00:00",
                        "reason": "",
                    },
                    {
                        "slot": 2,
                        "address": "127.1.2.32",
                        "status": "Failed",
                        "text": "Failed",
                        "reason": "no answer within 30 s",
                    },
                ],
            },
            {"name": "Empty", "status": "No servers", "servers": []},
        ],
    }
    (tmp_path / "hosts" / "vcs").mkdir(parents=True)
    (tmp_path / "hosts" / "vcs" / "status.json").write_text(json.dumps(status))

    shown = run("status", "--state-dir", str(tmp_path))
    assert shown.exit_code == 0, shown.stderr
    assert "3 ok / 2 rejected / 0 failed, p50 2.5 ms" in shown.stdout
    lines = shown.stdout.splitlines()
    for line in (
        "vcs policy service Conductors: Server 1 127.1.2.4 Active. Last communication: "
        "2026-01-01 10:00:00",
        "vcs policy service Conductors: Server 2 127.1.2.32 Failed (no answer within 30 s)",
        "vcs policy service Empty: No servers",
    ):
        assert line in lines

    host = json.loads(run("status", "--json", "--state-dir", str(tmp_path)).stdout)["hosts"][0]
    assert host["calls"] == status["calls"]
    assert host["policy_services"] == status["policy_services"]
    assert (host["alarms"], host["restart_required"]) == (None, None)


def test_call_formatting() -> None:
    connected = {
        "outcome": "connected",
        "target": "b@y",
        "via": "LocalZone",
        "rule": "local",
        "setup_ms": 2.04,
        "attempts": [],
    }
    assert describe_call(connected) == "connected to b@y via LocalZone (rule local, 2.0 ms)"
    assert attempt_lines(connected) == []
    rejected = {
        "outcome": "rejected",
        "status": 504,
        "reason": "Policy Service Unavailable",
        "default_cpl": True,
        "rule": "to-conductors",
        "via": "",
        "setup_ms": 61.25,
        "attempts": [
            {"service": "Conductors", "server": "127.1.2.4", "result": "failed: timed out"},
            {"service": "Conductors", "server": "", "result": "Default CPL: rejected 504"},
        ],
    }
    assert describe_call(rejected) == (
        "rejected 504 Policy Service Unavailable (Default CPL, rule to-conductors, 61.2 ms)"
    )
    assert attempt_lines(rejected) == [
        "  1. Conductors server 127.1.2.4: failed: timed out",
        "  2. Conductors: Default CPL: rejected 504",
    ]
    refused = {**rejected, "status": 403, "reason": "Forbidden", "default_cpl": False}
    assert describe_call({**refused, "via": "127.1.2.4"}).startswith(
        "rejected 403 Forbidden by 127.1.2.4 (rule to-conductors, "
    )
    assert describe_calls({"connected": 0, "rejected": 1, "failed": 0, "setup_ms_p50": None}) == (
        "0 ok / 1 rejected / 0 failed"
    )
