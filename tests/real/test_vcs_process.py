"""The VCS as a real process under the supervisor, driven by `tplab call` / `tplab load`.

One lab for the module (starting one costs seconds): a topology with only a VCS, on
127.95.X.1 (X drawn per session), in a temporary state dir with its control API on a
free port. `tplab up -d` and `down` run as processes of their own; the commands that
talk to the lab run in this process (click's runner), which saves an interpreter
start each. The tests share its VCS, so each one checks counts against what it saw
first and adds only search rules that do not match the others' aliases. The lab is
torn down at the end, then whatever lab.json still records as alive is killed by PID.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from emulator.cli import cli
from emulator.paths import REPO_ROOT
from emulator.supervisor import DEFAULT_PASSWORD, DEFAULT_USER, read_lab, same_process, signal_pids

WAIT_S = 60.0
POLL_S = 0.1
CLI_TIMEOUT_S = 120.0

_X = random.Random().randrange(1, 250)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def tplab_process(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the `tplab` command line in a process of its own (bounded)."""
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def tplab(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the `tplab` command line in this process; a traceback fails the test."""
    result = CliRunner().invoke(cli, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(autouse=True)
def _no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TPLAB_VCS_PASSWORD", raising=False)


@dataclass
class VcsLab:
    state_dir: Path
    ip: str

    @property
    def url(self) -> str:
        return f"https://{self.ip}:8443/"

    def args(self) -> list[str]:
        return ["--state-dir", str(self.state_dir)]

    def status(self) -> dict[str, Any]:
        result = tplab("status", "--json", *self.args())
        assert result.exit_code == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def vcs(self) -> dict[str, Any]:
        host: dict[str, Any] = next(h for h in self.status()["hosts"] if h["host"] == "vcs")
        return host

    def calls_become(self, expected: dict[str, int]) -> dict[str, Any]:
        """The VCS's published call summary once it holds `expected` (it publishes at most
        once a second)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            calls: dict[str, Any] = self.vcs()["calls"]
            if {k: calls[k] for k in expected} == expected:
                return calls
            assert time.monotonic() < deadline, (calls, expected)
            time.sleep(POLL_S)

    def api(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """The VCS's JSON API as its administrator (its certificate is its own CA's)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        credentials = base64.b64encode(f"{DEFAULT_USER}:{DEFAULT_PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            self.url + path.lstrip("/"),
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Basic {credentials}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read())


def recorded_pids(state_dir: Path) -> list[tuple[int, int | None]]:
    lab = read_lab(state_dir) or {}
    pids = [(lab["supervisor_pid"], lab.get("supervisor_start"))] if lab else []
    pids += [(h["pid"], h.get("pid_start")) for h in lab.get("hosts", []) if h.get("pid")]
    return pids


def wait_gone(pids: list[tuple[int, int | None]]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while any(same_process(pid, start) for pid, start in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


@pytest.fixture(scope="module")
def vcs_lab() -> Iterator[VcsLab]:
    with tempfile.TemporaryDirectory(prefix="tplab-vcs-") as tmp:
        lab = VcsLab(Path(tmp) / "state", f"127.95.{_X}.1")
        topology = Path(tmp) / "vcs.yaml"
        topology.write_text(
            "version: 1\nname: vcs-test\nservices:\n  vcs: [tcp/8443]\n"
            f"hosts:\n  - {{name: vcs, role: vcs, ip: {lab.ip}}}\n"
        )
        try:
            up = tplab_process(
                "up",
                "-d",
                "--topology",
                str(topology),
                "--control",
                f"127.0.0.1:{free_port()}",
                *lab.args(),
            )
            assert up.returncode == 0, up.stderr + up.stdout
            yield lab
        finally:
            # even on failure: stop the lab, then whatever it recorded that is still alive
            with contextlib.suppress(Exception):
                tplab_process("down", *lab.args())
            pids = recorded_pids(lab.state_dir)
            signal_pids(pids, signal.SIGKILL)
            wait_gone(pids)


def test_vcs_is_started_and_shown_with_its_calls(vcs_lab: VcsLab) -> None:
    vcs = vcs_lab.vcs()
    assert vcs["role"] == "vcs"
    assert vcs["state"] == "up"
    assert vcs["url"] == vcs_lab.url
    assert same_process(vcs["pid"], vcs["pid_start"])
    assert set(vcs["calls"]) >= {"total", "connected", "rejected", "failed", "setup_ms_p50"}
    assert isinstance(vcs["policy_services"], list)
    shown = tplab("status", *vcs_lab.args())
    assert shown.exit_code == 0, shown.stderr
    assert " ok / " in shown.stdout
    assert vcs_lab.url in shown.stdout


def test_call_and_load_through_the_cli(vcs_lab: VcsLab) -> None:
    """G-V2: with no search rule a call is rejected 404; a rule to LocalZone connects
    it; a load places rate x duration calls, every one connected; `tplab status` counts
    them."""
    code, live = vcs_lab.api("GET", "/api/v1/calls")  # status.json may lag a second
    assert code == 200, live
    before = live["stats"]

    rejected = tplab("call", "a@x", "b@y", *vcs_lab.args())
    assert rejected.exit_code == 1, rejected.stderr
    assert rejected.stdout.startswith("rejected 404 Not found: no search rule matches b@y (")

    code, rule = vcs_lab.api(
        "POST",
        "/api/v1/search-rules",
        {
            "name": "local",
            "pattern_type": "Regex",
            "pattern": ".*",
            "target": "LocalZone",
            "priority": 100,
        },
    )
    assert code == 201, rule
    connected = tplab("call", "a@x", "b@y", *vcs_lab.args())
    assert connected.exit_code == 0, connected.stderr
    assert connected.stdout.startswith("connected to b@y via LocalZone (rule local, ")
    as_json = tplab("call", "a@x", "b@y", "--protocol", "h323", "--json", *vcs_lab.args())
    assert as_json.exit_code == 0, as_json.stderr
    call = json.loads(as_json.stdout)
    assert (call["outcome"], call["protocol"], call["via"]) == ("connected", "H323", "LocalZone")

    load = tplab(
        "load",
        "--rate",
        "20",
        "--duration",
        "1",
        "--aliases",
        "meet.{1-5}@example.com",
        *vcs_lab.args(),
    )
    assert load.exit_code == 0, load.stderr + load.stdout
    assert "20 of 20 calls placed, 20 ended: 20 connected, 0 rejected, 0 failed" in load.stdout
    assert "setup p50 " in load.stdout

    calls = vcs_lab.calls_become(
        {
            "total": before["total"] + 23,
            "connected": before["connected"] + 22,
            "rejected": before["rejected"] + 1,
        }
    )
    assert calls["by_via"]["LocalZone"] >= 22
    assert calls["setup_ms_p50"] is not None
    shown = tplab("status", *vcs_lab.args())
    assert f"{calls['connected']} ok / {calls['rejected']} rejected / " in shown.stdout


def test_policy_service_lines_and_the_default_cpl(vcs_lab: VcsLab) -> None:
    """G-V4: a policy service whose only server does not answer: the call gets the
    Default CPL's 504 and `tplab call` lists the attempts; `tplab status` shows the
    server's line."""
    dead = f"127.95.{_X}.200"  # nothing listens there
    code, service = vcs_lab.api(
        "POST",
        "/api/v1/policy-services",
        {"name": "Conductors", "server1": dead, "verify_certificate": False},
    )
    assert code == 201, service
    code, rule = vcs_lab.api(
        "POST",
        "/api/v1/search-rules",
        {
            "name": "to-conductors",
            "pattern_type": "Regex",
            "pattern": r"conf\..*",
            "target": "Conductors",
            "priority": 10,
        },
    )
    assert code == 201, rule

    result = tplab("call", "a@x", "conf.1@example.com", *vcs_lab.args())
    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "rejected 504 Policy Service Unavailable (Default CPL, rule to-conductors, "
    )
    assert lines[1] == "policy requests:"
    assert lines[2].startswith(f"  1. Conductors server {dead}: failed: ")
    assert lines[-1] == "  2. Conductors: Default CPL: rejected 504 Policy Service Unavailable"

    deadline = time.monotonic() + WAIT_S
    expected = f"vcs policy service Conductors: Server 1 {dead} Failed ("
    while expected not in (shown := tplab("status", *vcs_lab.args())).stdout:
        assert time.monotonic() < deadline, shown.stdout
        time.sleep(POLL_S)


def test_refusals_of_the_vcs_are_one_line_errors(vcs_lab: VcsLab) -> None:
    wrong = tplab("call", "a@x", "b@y", "--password", "nope", *vcs_lab.args())
    assert wrong.exit_code == 2
    assert wrong.stderr == (
        "Error: the VCS vcs refused the credentials of 'admin' (401); "
        "give its password with --password or $TPLAB_VCS_PASSWORD\n"
    )
    from_env = tplab("call", "a@x", "b@y", *vcs_lab.args(), env={"TPLAB_VCS_PASSWORD": "nope"})
    assert from_env.exit_code == 2
    assert "(401)" in from_env.stderr

    bad = tplab("load", "--rate", "5", "--duration", "1", "--aliases", "m.{9-1}@x", *vcs_lab.args())
    assert bad.exit_code == 2
    assert bad.stderr == (
        "Error: the VCS vcs refused: aliases: in {LOW-HIGH}, LOW must not exceed HIGH\n"
    )
    spaces = tplab("call", "a b", "b@y", *vcs_lab.args())
    assert spaces.exit_code == 2
    assert len(spaces.stderr.splitlines()) == 1
    assert "may not contain spaces" in spaces.stderr


def test_a_malformed_content_type_is_refused_and_saves_nothing(vcs_lab: VcsLab) -> None:
    """A Content-Type header aiohttp's parser raised on (the VCS answered 500) is refused
    with 400 and the reason; no policy service is created."""
    status, before = vcs_lab.api("GET", "/api/v1/policy-services")
    assert status == 200
    body = {"name": "Malformed", "servers": ["127.0.0.1"]}
    status, answer = vcs_lab.api("POST", "/api/v1/policy-services", body, "a/b; ];jf$5*")
    assert status == 400
    assert answer == {"error": "the Content-Type header cannot be parsed"}
    assert vcs_lab.api("GET", "/api/v1/policy-services") == (200, before)
