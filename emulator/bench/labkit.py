"""What the groups that bring up a real lab share (`lab`, `cluster`, `policy`, `bridges`).

- the lab's processes: the `tplab` CLI run with a bound (`run_tplab`), `tplab up -d`
  on a state dir with a free control port (`lab_up`), `tplab down` then SIGKILL by
  recorded PID of whatever outlived it (`tear_down_lab`), a fresh temporary state
  dir that always ends with both (`temporary_lab`), and whether a lab already
  answers on the default topology's addresses (`lab_already_there`);
- an administrator at a node's JSON API (`Node`), the factory passwords changed
  (`change_passwords`), bounded polling (`poll_until`), a VCS call load awaited
  (`await_load`) and its calls picked from the VCS's recent ones (`calls_since`);
- the group's result: its parameters (`lab_params`), the notes of a run
  (`add_run_notes`, with the phases a `PhaseClock` timed) and figure details
  rounded for JSON (`round_details`, `rounded`).

Invariant: every wait and every process run here is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

from emulator.bench import Figure, GroupResult
from emulator.paths import DEFAULT_TOPOLOGY, REPO_ROOT
from emulator.supervisor import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    PEER_PORT,
    read_lab,
    same_process,
    signal_pids,
)
from netsim.proxy import private_ip

CLI_LIMIT_S = 90.0
DOWN_LIMIT_S = 60.0
DOWN_POLL_S = 0.05
POLL_S = 0.05

#: the peers' admin and root passwords once changed from the factory default (G-P3)
PEER_PASSWORD = "Bench-policy-1"
ROOT_PASSWORD = "Bench-root-1"


# ---------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def tplab_argv() -> list[str]:
    """The `tplab` script of this environment (what `make run` uses), else the module."""
    script = Path(sys.executable).parent / "tplab"
    return [str(script)] if script.exists() else [sys.executable, "-m", "emulator.cli"]


def lab_already_there(urls: dict[str, str]) -> str | None:
    for name, url in urls.items():
        host = url.split("//", 1)[1].split(":", 1)[0]
        with socket.socket() as sock:
            sock.settimeout(0.3)
            if sock.connect_ex((host, PEER_PORT)) == 0:
                return f"{name} ({host}:{PEER_PORT}) already answers: is a lab running?"
    return None


async def run_tplab(*args: str, limit_s: float = DOWN_LIMIT_S) -> tuple[int, str]:
    """Run the `tplab` CLI, killed (by its PID) if it outlives `limit_s`."""
    proc = await asyncio.create_subprocess_exec(
        *tplab_argv(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit_s)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def recorded_pids(state_dir: Path) -> list[tuple[int, int | None]]:
    lab = read_lab(state_dir) or {}
    pids = [(lab["supervisor_pid"], lab.get("supervisor_start"))] if lab else []
    return pids + [(h["pid"], h.get("pid_start")) for h in lab.get("hosts", []) if h.get("pid")]


async def tear_down_lab(state_dir: Path, *, limit_s: float = DOWN_LIMIT_S) -> list[str]:
    """`tplab down`, then SIGKILL (by recorded PID) whatever outlived it; notes of trouble."""
    notes: list[str] = []
    pids = recorded_pids(state_dir)
    code, down_out = await run_tplab("down", "--state-dir", str(state_dir), limit_s=limit_s)
    if code != 0:
        notes.append(f"tplab down exited {code}: {down_out.strip()}")
    for _ in range(int(DOWN_LIMIT_S / DOWN_POLL_S)):
        if not any(same_process(pid, start) for pid, start in pids):
            break
        await asyncio.sleep(DOWN_POLL_S)
    left = signal_pids(pids, signal.SIGKILL)
    if left:
        notes.append(f"processes left after tplab down, killed: {left}")
    return notes


async def lab_up(state_dir: Path) -> None:
    """`tplab up -d` on `state_dir` with a free control port; raises if it fails."""
    code, out = await run_tplab(
        "up",
        "-d",
        "--state-dir",
        str(state_dir),
        "--control",
        f"127.0.0.1:{free_port()}",
        limit_s=CLI_LIMIT_S,
    )
    if code != 0:
        raise RuntimeError(f"tplab up -d failed ({code}):\n{out}")


@contextlib.asynccontextmanager
async def temporary_lab(prefix: str, notes: list[str]) -> AsyncIterator[Path]:
    """A fresh temporary state dir; on the way out, always `tear_down_lab` (its notes
    added to `notes`) and the dir removed."""
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield state_dir
    finally:
        notes.extend(await tear_down_lab(state_dir, limit_s=CLI_LIMIT_S))
        shutil.rmtree(state_dir, ignore_errors=True)


def lab_hosts(state_dir: Path) -> tuple[str, set[str]]:
    """(netsim backend, hosts the supervisor started) from lab.json."""
    lab = read_lab(state_dir) or {}
    backend = str(lab.get("backend", "proxy"))
    return backend, {h["host"] for h in lab.get("hosts", []) if h.get("pid")}


def bind_address(ip: str, backend: str) -> str:
    """Where a host's process listens: its private address behind the proxy relay."""
    return private_ip(ip) if backend == "proxy" else ip


# ------------------------------------------------------------ the JSON API
async def poll_until(
    check: Callable[[], Awaitable[bool]],
    limit_s: float,
    what: str = "",
    interval_s: float = POLL_S,
) -> None:
    deadline = time.perf_counter() + limit_s
    while not await check():
        if time.perf_counter() > deadline:
            reached = f"not reached within {limit_s:g} s"
            raise TimeoutError(f"{what}: {reached}" if what else reached)
        await asyncio.sleep(interval_s)


class Node:
    """An administrator at one node's JSON API (HTTPS, keep-alive, HTTP Basic)."""

    def __init__(self, session: aiohttp.ClientSession, name: str, url: str, password: str):
        self.session = session
        self.name = name
        self.url = url.rstrip("/")
        self.password = password

    @classmethod
    def factory_admin(cls, session: aiohttp.ClientSession, name: str, ip: str) -> Node:
        """The node at `ip`, with the factory default password."""
        return cls(session, name, f"https://{ip}:{PEER_PORT}", DEFAULT_PASSWORD)

    async def call(self, method: str, path: str, body: Any = None, *, ok: int = 200) -> Any:
        auth = {"Authorization": aiohttp.encode_basic_auth(DEFAULT_USER, self.password)}
        async with self.session.request(
            method, self.url + path, json=body, headers=auth, ssl=False
        ) as response:
            answer = await response.json(content_type=None)
            if response.status != ok:
                raise RuntimeError(f"{method} {path} on {self.name}: {response.status} {answer}")
            return answer

    async def answers(self) -> bool:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with self.session.get(self.url + "/login", ssl=False) as response:
                await response.read()
                return response.status == 200
        return False


async def change_passwords(peer: Node) -> None:
    """A peer's passwords off the factory default (admin, then root; G-P3)."""
    for account, password in (("admin", PEER_PASSWORD), ("root", ROOT_PASSWORD)):
        body = {"new_password": password, "confirm_password": password}
        await peer.call("PUT", f"/api/v1/users/{account}/password", body)
        if account == "admin":
            peer.password = PEER_PASSWORD


async def await_load(vcs: Node, load_path: str, limit_s: float, interval_s: float) -> bool:
    """Poll the VCS's call load at `load_path` until it has finished; whether it did
    within `limit_s`."""

    async def finished() -> bool:
        return bool((await vcs.call("GET", load_path))["finished"])

    try:
        await poll_until(finished, limit_s, "the call load", interval_s)
    except TimeoutError:
        return False
    return True


def calls_since(calls: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls the VCS placed since its call statistics were `before`: the most recent
    ones of `GET /api/v1/calls` (newest first; nothing else places calls meanwhile)."""
    recent: list[dict[str, Any]] = calls["recent"]
    return recent[: max(0, calls["stats"]["total"] - before["total"])]


# ------------------------------------------------------------------ results
class PhaseClock:
    """Seconds each phase of a run took, each from the end of the one before."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._mark = time.perf_counter()

    def phase(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = now - self._mark
        self._mark = now


def lab_params(first: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A lab group's parameters: its own, the topology and backend, `extra`, the CPUs."""
    return {
        **first,
        "topology": str(DEFAULT_TOPOLOGY.relative_to(REPO_ROOT)),
        "backend": "proxy",
        **extra,
        "cpus_usable": len(os.sched_getaffinity(0)),
    }


def add_run_notes(result: GroupResult, data: dict[str, Any]) -> None:
    """Why nothing was measured (a lab already there), the run's notes, its phases."""
    if "skipped" in data:
        result.notes.append(f"not measured: {data['skipped']}")
    result.notes += data.get("notes", [])
    phases = data.get("phases_s", {})
    if phases:
        result.notes.append(
            "phases: " + ", ".join(f"{name} {s:.1f} s" for name, s in phases.items())
        )


def round_details(value: Any) -> Any:
    """Numbers rounded, NaN as None (strict JSON), recursively."""
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: round_details(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [round_details(v) for v in value]
    return value


def rounded(figures: Iterable[Figure]) -> list[Figure]:
    """The figures with their details through `round_details`."""
    return [dataclasses.replace(f, details=round_details(f.details)) for f in figures]
