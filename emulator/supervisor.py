"""The lab supervisor: one world, its control API, and one process per host.

`Supervisor.run()` opens the world (`netsim.launch.open_world`) and serves its
REST control API in this process, starts one process for every host whose role
has an implementation (`PROCESS_MODULES`: `python -m peers` for a Conductor,
`python -m vcs_policy` for the VCS, `python -m bridges --kind ROLE` for a
TelePresence Server or MCU; inside the host's namespace with the kernel
backend), waits until each answers HTTPS `GET /login` with 200 (the Conductor
peers first, then the other hosts, which use them), and then watches them:

- a child that exits with `EXIT_RESTART` (75, Maintenance > Restart; only
  Conductor peers do) is started again at once and recorded as "restarted on
  request";
- a child that exits any other way while the lab runs is marked failed with
  its exit status; it is not restarted;
- on request (`kill_host`, `start_host`, or `POST /api/v1/hosts/NAME/kill` and
  `.../start` on the control API, for failover scenarios) a running child is
  killed with SIGKILL and left "killed", and a killed, failed or stopped child
  is started again;
- on `request_stop()` (Ctrl-C, SIGTERM, `tplab down`) every child is stopped
  by its PID (SIGTERM, then SIGKILL after `stop_timeout_s`) and the world is
  torn down.

Hosts whose role has no process implementation yet are listed as
"not built yet". Each child's stdout and stderr go to
`state_dir/hosts/NAME/process.log`; the lab's state (supervisor PID, every
child's PID and state, URLs, start time) is rewritten atomically to
`state_dir/lab.json` on every change, which is what `tplab status` and
`tplab down` read from another shell. `python -m emulator.supervisor` runs a
supervisor in the foreground of its own process (what `tplab up -d` detaches).

Invariants:
- one supervisor per state dir: it holds an exclusive `flock` on
  `state_dir/lab.lock` for its whole life, so a second one is refused;
- it signals only processes it started, by PID, and only while it has not
  reaped them (`asyncio.subprocess.Process.send_signal`); other shells check a
  recorded PID against its recorded start time before signalling it;
- every wait is bounded (`start_timeout_s`, `stop_timeout_s`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import errno
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web

from netsim.api import Network, Proto
from netsim.topology import HostSpec, Topology, TopologyError, load_topology
from netsim.world import World

#: exit status of a peer whose admin asked for a restart (`peers.node.EXIT_RESTART`;
#: not imported, to keep the CLI and the supervisor quick to start; a test keeps them equal)
EXIT_RESTART = 75
#: the port every node process serves its admin pages and API on
#: (`peers.node.DEFAULT_PORT`, `vcs_policy.node.DEFAULT_PORT`)
PEER_PORT = 8443
#: the factory default account of every node (`peers.store.DEFAULT_PASSWORD`; the VCS's too)
DEFAULT_USER = "admin"
DEFAULT_PASSWORD = "TANDBERG"
#: roles that have a process implementation: the module that runs one and its own
#: arguments; every module also takes the same common arguments (`Supervisor._argv`)
PROCESS_MODULES: dict[str, tuple[str, ...]] = {
    "conductor": ("peers",),
    "vcs": ("vcs_policy",),
    "mcu": ("bridges", "--kind", "mcu"),
    "telepresence-server": ("bridges", "--kind", "telepresence-server"),
}

#: environment defaults of every child (the caller's environment wins). A peer hashes
#: passwords with scrypt (N=2^14, r=8: 16 MiB per hash or check); with glibc's dynamic
#: mmap threshold the second such block comes from the heap and stays resident (~+18 MB
#: per peer). A fixed threshold (glibc's default value, 128 KiB) keeps big blocks in
#: mmap, returned to the system when freed. Other C libraries ignore the variable.
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}

LAB_FILE = "lab.json"
LOCK_FILE = "lab.lock"
SUPERVISOR_LOG = "supervisor.log"
PROCESS_LOG = "process.log"
STATUS_FILE = "status.json"

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
PROBE_INTERVAL_S = 0.05
PROBE_TIMEOUT_S = 2.0
LOG_TAIL_LINES = 15


class SupervisorError(RuntimeError):
    """The lab cannot start (or another lab holds the state dir), or a request to kill or
    start a host cannot be met; the message says why."""


class UnknownHostError(SupervisorError):
    """A request named a host the topology does not have."""


class LabState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class ChildState(enum.Enum):
    NOT_BUILT = "not built yet"
    STARTING = "starting"
    UP = "up"
    RESTARTING = "restarting"
    FAILED = "failed"
    KILLED = "killed"
    STOPPING = "stopping"
    STOPPED = "stopped"


# ------------------------------------------------------------------ processes
def process_start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, /proc/PID/stat field 22), or None when
    there is no such live process (zombies count as gone: nobody may reap them here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) is in parentheses and may itself contain spaces
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def same_process(pid: int | None, start_ticks: int | None) -> bool:
    """True while `pid` is alive and is the process that started at `start_ticks`
    (guards against signalling a recycled PID)."""
    if pid is None or pid <= 0:
        return False
    ticks = process_start_ticks(pid)
    return ticks is not None and (start_ticks is None or ticks == start_ticks)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file (empty when it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def peer_seed(seed: int, host: str) -> int:
    """A distinct, reproducible seed per host (equal seeds would give equal serials)."""
    digest = hashlib.sha256(f"{seed}:{host}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def _wall() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` atomically with `data` (readers see the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------- state
@dataclass(frozen=True, slots=True)
class LabConfig:
    topology_path: Path
    state_dir: Path
    backend: str = "proxy"
    seed: int | None = None
    control_host: str = "127.0.0.1"
    control_port: int = 7400
    start_timeout_s: float = START_TIMEOUT_S
    stop_timeout_s: float = STOP_TIMEOUT_S
    #: the topology's 127.A.B.C addresses were moved to 127.`subnet`.B.C (side-by-side labs)
    subnet: int | None = None


@dataclass(eq=False)
class Child:
    """One host of the topology and (for built roles) its current process."""

    host: HostSpec
    log_path: Path
    state: ChildState
    pid: int | None = None
    pid_start: int | None = None
    restarts: int = 0
    exit_code: int | None = None
    note: str = ""
    detail: str = ""
    started: str = ""
    proc: asyncio.subprocess.Process | None = field(default=None, repr=False)
    settled: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    #: set by `Supervisor.kill_host` before it sends SIGKILL: the exit that follows is
    #: the one asked for, not a failure
    kill_requested: bool = field(default=False, repr=False)

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def url(self) -> str:
        return f"https://{self.host.ip}:{PEER_PORT}/"

    @property
    def built(self) -> bool:
        return self.state is not ChildState.NOT_BUILT

    def fail(self, note: str) -> None:
        """Failed: `note` says how; `detail` keeps the end of the process log."""
        self.state = ChildState.FAILED
        self.note = note
        self.detail = log_tail(self.log_path)

    def failure(self) -> str:
        return f"{self.name} {self.note}; last lines of {self.log_path}:\n{self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.name,
            "role": self.host.role,
            "ip": self.host.ip,
            "url": self.url if self.built else None,
            "state": self.state.value,
            "pid": self.pid,
            "pid_start": self.pid_start,
            "restarts": self.restarts,
            "exit_code": self.exit_code,
            "note": self.note,
            "detail": self.detail,
            "started": self.started,
            "log": str(self.log_path) if self.built else None,
        }


EventSink = Callable[[str], None]


def print_event(message: str) -> None:
    print(f"{_wall()} {message}", flush=True)


class Supervisor:
    def __init__(
        self, config: LabConfig, topology: Topology, *, on_event: EventSink = print_event
    ) -> None:
        self.config = config
        self.topology = topology
        self.state_dir = config.state_dir.resolve()
        self.topology_path = config.topology_path.resolve()
        self.on_event = on_event
        self.state = LabState.STARTING
        self.error = ""
        self.started = _wall()
        self.control_url = f"http://{config.control_host}:{config.control_port}"
        self.children: dict[str, Child] = {
            host.name: Child(
                host,
                self.state_dir / "hosts" / host.name / PROCESS_LOG,
                ChildState.STARTING if host.role in PROCESS_MODULES else ChildState.NOT_BUILT,
            )
            for host in topology.hosts
        }
        self._world: World | None = None
        #: the `_supervise` task of each child started so far (the latest one per host)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()
        self._stopping = False
        self._lock_file: IO[str] | None = None
        self._pid_start = process_start_ticks(os.getpid())

    # ---------------------------------------------------------------- public
    @property
    def world(self) -> World | None:
        """The running world (None before it is up and after it is torn down)."""
        return self._world

    def request_stop(self) -> None:
        """Stop every child and tear the world down (safe to call at any time, repeatedly)."""
        self._stop.set()

    def host_state(self, name: str) -> str:
        """The state of host `name` (a `ChildState` value); UnknownHostError if none."""
        return self._child(name).state.value

    async def kill_host(self, name: str) -> None:
        """SIGKILL the process of host `name` and return once it is reaped; the host is
        left "killed" (not failed, not restarted) until `start_host`. SupervisorError
        when the lab or the host is not running."""
        child = self._built_child(name)
        self._check_lab_running()
        proc = child.proc
        task = self._tasks.get(name)
        if (
            proc is None
            or proc.returncode is not None
            or task is None
            or child.kill_requested
            or child.state not in (ChildState.STARTING, ChildState.RESTARTING, ChildState.UP)
        ):
            killing = child.kill_requested and child.state is not ChildState.KILLED
            raise SupervisorError(
                f"{name} is not running ({'being killed' if killing else child.state.value})"
            )
        child.kill_requested = True
        self.on_event(f"{name}: killing pid {proc.pid} on request")
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        # `_supervise` reaps it, records the state and writes lab.json
        done, _ = await asyncio.wait({task}, timeout=self.config.stop_timeout_s)
        if not done:
            raise SupervisorError(
                f"{name} (pid {proc.pid}) was not reaped within "
                f"{self.config.stop_timeout_s:g} s of SIGKILL"
            )

    async def start_host(self, name: str) -> None:
        """Start the process of a killed, failed or stopped host `name` again and return
        once it answers; SupervisorError when it cannot start (the failure and the end of
        its log), is already running, or the lab is not running."""
        child = self._built_child(name)
        self._check_lab_running()
        if child.state not in (ChildState.KILLED, ChildState.FAILED, ChildState.STOPPED):
            raise SupervisorError(f"{name} is already running ({child.state.value})")
        old = self._tasks.get(name)
        if old is not None and not old.done():
            # failed, but its process is still being ended (bounded by the stop timeout)
            raise SupervisorError(
                f"{name} is {child.state.value} but its process is still being stopped; "
                "try again in a moment"
            )
        child.kill_requested = False
        child.state = ChildState.STARTING
        child.note = "started on request"
        child.detail = ""
        child.settled.clear()
        self._write()
        self.on_event(f"{name}: starting it on request")
        task = asyncio.create_task(self._supervise(child))
        self._tasks[name] = task
        # `_supervise` bounds the start (start timeout, then the stop timeout to end a
        # process that does not answer); the margin covers spawning
        bound_s = self.config.start_timeout_s + 2 * self.config.stop_timeout_s + 10.0
        settled = asyncio.ensure_future(child.settled.wait())
        try:
            await asyncio.wait(
                {settled, task}, timeout=bound_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            settled.cancel()
            await asyncio.gather(settled, return_exceptions=True)
        if child.state is ChildState.UP:
            return
        if child.state is ChildState.FAILED:
            raise SupervisorError(child.failure())
        raise SupervisorError(f"{name} did not come up ({child.state.value})")

    def snapshot(self) -> dict[str, Any]:
        """What `lab.json` holds."""
        namespaces: list[str] = []
        if self._world is not None:
            namespaces = list(getattr(self._world.backend, "namespaces", ()))
        return {
            "supervisor_pid": os.getpid(),
            "supervisor_start": self._pid_start,
            "state": self.state.value,
            "error": self.error,
            "started": self.started,
            "updated": _wall(),
            "state_dir": str(self.state_dir),
            "topology": str(self.topology_path),
            "topology_name": self.topology.name,
            "backend": self.config.backend,
            "seed": self.config.seed,
            "subnet": self.config.subnet,
            "control": self.control_url,
            "namespaces": namespaces,
            "hosts": [child.to_dict() for child in self.children.values()],
        }

    async def run(self, on_ready: Callable[[Supervisor], None] | None = None) -> None:
        """Run the lab until `request_stop()`; raises SupervisorError if it cannot start."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            await self._run(on_ready)
        except SupervisorError as exc:
            self.state, self.error = LabState.FAILED, str(exc)
            raise
        except BaseException as exc:
            self.state, self.error = LabState.FAILED, f"supervisor crashed: {exc!r}"
            raise
        finally:
            if self.state is not LabState.FAILED:
                self.state = LabState.STOPPED
            self._world = None
            self._write()
            self._release_lock()

    # ------------------------------------------------------------- lifecycle
    async def _run(self, on_ready: Callable[[Supervisor], None] | None) -> None:
        from netsim.launch import open_world

        config = self.config
        async with contextlib.AsyncExitStack() as stack:
            try:
                self._world = await stack.enter_async_context(
                    open_world(
                        self.topology,
                        backend=config.backend,
                        seed=config.seed or 0,
                        state_dir=self.state_dir,
                    )
                )
            except ImportError as exc:
                raise SupervisorError(
                    f"the {config.backend} backend is unavailable: {exc}"
                ) from exc
            except (OSError, RuntimeError, ValueError) as exc:
                hint = (
                    "; is another lab or world using these addresses?"
                    if getattr(exc, "errno", None) == errno.EADDRINUSE
                    else ""
                )
                raise SupervisorError(
                    f"cannot start the {config.backend} backend: {exc}{hint}"
                ) from exc
            self.on_event(f"world {self.topology.name} is up on the {config.backend} backend")
            await self._expose_peer_ports()
            await self._serve_control(stack)
            self._write()
            built = [child for child in self.children.values() if child.built]
            if self._stop.is_set():  # stopped while the world was starting
                built = []
            try:
                # the Conductor peers first (what an admin uses first, and what the VCS
                # polls), then the hosts that use them: on two cores six processes
                # importing at once delayed every one of them
                for wave in _waves(built):
                    if self._stop.is_set() or any(
                        child.state is ChildState.FAILED for child in built
                    ):
                        break
                    for child in wave:
                        self._tasks[child.name] = asyncio.create_task(self._supervise(child))
                    await self._wait_settled(wave)
                failed = [child for child in built if child.state is ChildState.FAILED]
                if failed:
                    raise SupervisorError("\n".join(child.failure() for child in failed))
                if not self._stop.is_set():
                    self.state = LabState.RUNNING
                    self._write()
                    self.on_event(
                        f"lab {self.topology.name} is running: "
                        + ", ".join(f"{c.name} {c.url}" for c in built)
                    )
                    if on_ready is not None:
                        on_ready(self)
                    await self._stop.wait()
            finally:
                self.state = LabState.STOPPING
                self._write()
                await self._stop_children(built, list(self._tasks.values()))
                for child in built:
                    if child.pid is None and child.state is ChildState.STARTING:
                        child.state = ChildState.STOPPED
                        child.note = "not started: the lab stopped first"
                self._write()
                self.on_event("stopping the world")

    def _child(self, name: str) -> Child:
        child = self.children.get(name)
        if child is None:
            raise UnknownHostError(f"unknown host {name!r}; hosts: {', '.join(self.children)}")
        return child

    def _built_child(self, name: str) -> Child:
        child = self._child(name)
        if not child.built:
            raise SupervisorError(
                f"{name} has no process: its role {child.host.role} is not built yet"
            )
        return child

    def _check_lab_running(self) -> None:
        # before RUNNING the start-up waves own the children; once stopping, the stop does
        if self.state is not LabState.RUNNING or self._stopping:
            raise SupervisorError(f"the lab is not running ({self.state.value})")

    async def _wait_settled(self, children: list[Child]) -> None:
        """Until every child answered or failed once, or a stop is requested."""
        stop = asyncio.ensure_future(self._stop.wait())
        pending = {asyncio.ensure_future(child.settled.wait()) for child in children}
        try:
            while pending and not stop.done():
                _, pending = await asyncio.wait(
                    pending | {stop}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stop)
        finally:
            for future in (*pending, stop):
                future.cancel()
            await asyncio.gather(*pending, stop, return_exceptions=True)

    async def _expose_peer_ports(self) -> None:
        """The proxy relays only the ports the topology names; the nodes' port is a must."""
        assert self._world is not None
        expose = getattr(self._world.backend, "expose", None)
        if self.config.backend != "proxy" or expose is None:
            return
        for child in self.children.values():
            if child.built:
                try:
                    await expose(child.name, Proto.TCP, PEER_PORT)
                except OSError as exc:
                    raise SupervisorError(
                        f"cannot relay {child.host.ip}:{PEER_PORT} for {child.name}: {exc}; "
                        "is another lab or world using this address?"
                    ) from exc

    async def _serve_control(self, stack: contextlib.AsyncExitStack) -> None:
        from netsim.control import make_app

        assert self._world is not None
        app = make_app(self._world)
        app[SUPERVISOR] = self
        app.router.add_get("/api/v1/hosts", _get_hosts)
        app.router.add_post("/api/v1/hosts/{name}/kill", _post_kill)
        app.router.add_post("/api/v1/hosts/{name}/start", _post_start)
        from emulator.training.home import add_routes

        add_routes(app, self)  # the lab home page, GET /
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        host, port = self.config.control_host, self.config.control_port
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            hint = (
                "; is another lab or world running? (use --control to pick another port)"
                if exc.errno == errno.EADDRINUSE
                else ""
            )
            raise SupervisorError(
                f"cannot serve the control API on {host}:{port}: {exc.strerror or exc}{hint}"
            ) from exc
        bound_host, bound_port = runner.addresses[0][:2]
        self.control_url = f"http://{bound_host}:{bound_port}"
        self.on_event(f"control API at {self.control_url}")

    # ----------------------------------------------------------------- children
    def _argv(self, child: Child) -> list[str]:
        prefix: list[str] = []
        if self.config.backend == "kernel":
            assert self._world is not None
            prefix = list(self._world.backend.exec_prefix(child.name))  # type: ignore[attr-defined]
        argv = [
            *prefix,
            sys.executable,
            "-m",
            *PROCESS_MODULES[child.host.role],
            "--host",
            child.name,
            "--ip",
            child.host.ip,
            "--mtu",
            str(child.host.mtu_bytes),
            "--state-dir",
            str(self.state_dir),
            "--netsim",
            self.config.backend,
            "--port",
            str(PEER_PORT),
        ]
        if self.config.seed is not None:
            argv += ["--seed", str(peer_seed(self.config.seed, child.name))]
        return argv

    async def _spawn(self, child: Child) -> asyncio.subprocess.Process:
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = self._argv(child)
        with child.log_path.open("ab") as log:
            log.write(f"--- {_wall()} starting: {' '.join(argv)}\n".encode())
            log.flush()
            # a session of its own: Ctrl-C in the supervisor's terminal reaches only the
            # supervisor, which then stops the children in order
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**CHILD_ENV, **os.environ, "PYTHONUNBUFFERED": "1"},
            )
        child.proc = proc
        child.pid = proc.pid
        child.pid_start = process_start_ticks(proc.pid)
        child.started = _wall()
        child.exit_code = None
        if child.state is not ChildState.RESTARTING:
            child.state = ChildState.STARTING
        self._write()
        self.on_event(f"{child.name}: started pid {proc.pid}")
        return proc

    async def _supervise(self, child: Child) -> None:
        """Start the child, wait until it answers, and start it again when it asks to."""
        try:
            while True:
                proc = await self._spawn(child)
                exited = asyncio.ensure_future(proc.wait())
                try:
                    if self._stopping:
                        proc.send_signal(signal.SIGTERM)
                    elif not (
                        await self._wait_answer(child, exited) or exited.done() or self._stopping
                    ):
                        # timed out: the process runs but does not answer
                        child.fail(
                            f"did not answer {child.url}login within "
                            f"{self.config.start_timeout_s:g} s"
                        )
                        self._write()
                        self.on_event(f"{child.name}: {child.note}; stopping it")
                        await self._terminate(proc)
                        child.exit_code = proc.returncode
                        return
                    code = await exited
                finally:
                    if proc.returncode is None:
                        await asyncio.shield(self._terminate(proc))
                child.exit_code = code
                if child.kill_requested:
                    # checked first: the exit asked for, whatever status the process had
                    # reached (a restart request or a stop racing the SIGKILL)
                    child.state = ChildState.KILLED
                    child.note = "killed on request"
                    self.on_event(f"{child.name}: killed on request ({describe_exit(code)})")
                    return
                if self._stopping:
                    child.state = ChildState.STOPPED
                    self.on_event(f"{child.name}: stopped ({describe_exit(code)})")
                    return
                if code == EXIT_RESTART:
                    child.restarts += 1
                    child.state = ChildState.RESTARTING
                    child.note = "restarted on request"
                    self._write()
                    self.on_event(f"{child.name}: restart requested; starting it again")
                    continue
                child.fail(describe_exit(code))
                self.on_event(f"{child.name}: failed, {child.note} (not restarted)")
                return
        finally:
            child.proc = None
            child.settled.set()
            self._write()

    async def _wait_answer(self, child: Child, exited: asyncio.Future[int]) -> bool:
        """Probe GET /login until it answers 200 (True), or the process exits, the
        start timeout passes or a stop is requested (False)."""
        deadline = time.monotonic() + self.config.start_timeout_s
        async with self._probe_session(child) as session:
            while not exited.done() and not self._stopping:
                if await _answers(session, child.url + "login"):
                    child.state = ChildState.UP
                    child.settled.set()
                    self._write()
                    self.on_event(f"{child.name}: up at {child.url} (pid {child.pid})")
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                await asyncio.wait([exited], timeout=min(PROBE_INTERVAL_S, remaining))
        return False

    def _probe_session(self, child: Child) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
        connector: aiohttp.BaseConnector
        if self.config.backend == "kernel":
            # the host's address exists only inside its namespace: probe from there
            from netsim.http import NetsimConnector

            assert self._world is not None
            network: Network = self._world.backend.network_for(child.name)  # type: ignore[attr-defined]
            connector = NetsimConnector(network, force_close=True)
        else:
            connector = aiohttp.TCPConnector(force_close=True)
        return aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM, then SIGKILL after the stop timeout; returns once reaped."""
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.config.stop_timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _stop_children(self, children: list[Child], tasks: list[asyncio.Task[None]]) -> None:
        self._stopping = True
        for child in children:
            proc = child.proc
            if proc is not None and proc.returncode is None:
                child.state = ChildState.STOPPING
                self.on_event(f"{child.name}: stopping pid {proc.pid}")
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        self._write()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.config.stop_timeout_s)
        if pending:
            for child in children:
                proc = child.proc
                if proc is not None and proc.returncode is None:
                    child.note = (
                        f"killed: still running {self.config.stop_timeout_s:g} s after SIGTERM"
                    )
                    self.on_event(f"{child.name}: {child.note}")
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            _, pending = await asyncio.wait(pending, timeout=self.config.stop_timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ----------------------------------------------------------- lab.json, lock
    def _write(self) -> None:
        write_json(self.state_dir / LAB_FILE, self.snapshot())

    def _take_lock(self) -> None:
        lock = (self.state_dir / LOCK_FILE).open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.close()
            holder = read_lab(self.state_dir) or {}
            pid = holder.get("supervisor_pid", "?")
            raise SupervisorError(
                f"a lab is already running on {self.state_dir} (supervisor pid {pid}); "
                f"stop it with `tplab down --state-dir {self.state_dir}`"
            ) from exc
        self._lock_file = lock

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


# ---------------------------------------------- host routes of the control API
#: the supervisor behind the control app (its host routes; the world's are netsim.control's)
SUPERVISOR = web.AppKey("supervisor", Supervisor)


def _json_error(status: int, message: str) -> web.Response:
    """The control API's error shape (`netsim.control`): `{"error": "<message>"}`."""
    return web.json_response({"error": message}, status=status)


async def _get_hosts(request: web.Request) -> web.Response:
    children = request.app[SUPERVISOR].children.values()
    return web.json_response([child.to_dict() for child in children])


async def _host_action(
    request: web.Request, action: Callable[[Supervisor, str], Awaitable[None]]
) -> web.Response:
    """200 with the host after `action`; 404 for an unknown host, 409 for a host (or lab)
    whose state does not allow it or a host that did not come up."""
    supervisor = request.app[SUPERVISOR]
    name = request.match_info["name"]
    try:
        await action(supervisor, name)
    except UnknownHostError as exc:
        return _json_error(404, str(exc))
    except SupervisorError as exc:
        return _json_error(409, str(exc))
    return web.json_response(supervisor.children[name].to_dict())


async def _post_kill(request: web.Request) -> web.Response:
    return await _host_action(request, Supervisor.kill_host)


async def _post_start(request: web.Request) -> web.Response:
    return await _host_action(request, Supervisor.start_host)


def _waves(children: list[Child]) -> list[list[Child]]:
    """Start order: Conductor peers, then every other host (empty waves dropped)."""
    peers = [c for c in children if c.host.role == "conductor"]
    others = [c for c in children if c.host.role != "conductor"]
    return [wave for wave in (peers, others) if wave]


async def _answers(session: aiohttp.ClientSession, url: str) -> bool:
    # the peer's certificate is signed by its own CA: this probe checks liveness, not trust
    try:
        async with session.get(url, ssl=False, allow_redirects=False) as response:
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


async def run_until_signalled(
    supervisor: Supervisor, on_ready: Callable[[Supervisor], None] | None = None
) -> None:
    """`supervisor.run()` with SIGINT, SIGTERM and SIGHUP asking it to stop."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in signals:
        loop.add_signal_handler(sig, supervisor.request_stop)
    try:
        await supervisor.run(on_ready)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


# ------------------------------------------------------------ other shells
def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when there is none (missing, unreadable, not
    JSON, or not an object)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_lab(state_dir: Path) -> dict[str, Any] | None:
    """The last `lab.json` of `state_dir`, or None when there is none (or it is unreadable)."""
    return read_json(state_dir / LAB_FILE)


def supervisor_alive(lab: dict[str, Any]) -> bool:
    return same_process(lab.get("supervisor_pid"), lab.get("supervisor_start"))


def live_children(lab: dict[str, Any]) -> list[dict[str, Any]]:
    """Hosts whose recorded process is still the one the supervisor started."""
    return [h for h in lab.get("hosts", []) if same_process(h.get("pid"), h.get("pid_start"))]


def peer_status(state_dir: Path, host: str) -> dict[str, Any] | None:
    """What the node (a peer or the VCS) last published in `hosts/NAME/status.json`."""
    return read_json(state_dir / "hosts" / host / STATUS_FILE)


def with_peer_status(lab: dict[str, Any], state_dir: Path) -> dict[str, Any]:
    """Add to each host of `lab` what its node last published: alarms (a count),
    restart_required, version and serial; for the VCS, calls (its call summary) and
    policy_services (each service with its per-server lines). A field the node does not
    publish (a VCS has no alarms), and every field of a host without a process, is None."""
    for host in lab.get("hosts", []):
        status = peer_status(state_dir, host["host"]) if host.get("url") else None
        if status is None:
            host.update(
                alarms=None,
                restart_required=None,
                version=None,
                serial=None,
                calls=None,
                policy_services=None,
            )
            continue
        alarms = status.get("alarms")
        host["alarms"] = len(alarms) if isinstance(alarms, list) else None
        required = status.get("restart_required")
        host["restart_required"] = None if required is None else bool(required)
        host["version"] = status.get("version")
        host["serial"] = status.get("serial")
        calls, services = status.get("calls"), status.get("policy_services")
        host["calls"] = calls if isinstance(calls, dict) else None
        host["policy_services"] = services if isinstance(services, list) else None
    return lab


def lab_status(state_dir: Path) -> dict[str, Any] | None:
    """`lab.json` with `running` (the supervisor is alive) and each peer's published
    status; None when the state dir never held a lab."""
    lab = read_lab(state_dir)
    if lab is None:
        return None
    lab["running"] = supervisor_alive(lab)
    return with_peer_status(lab, state_dir)


def signal_pids(pids: Iterable[tuple[int, int | None]], sig: signal.Signals) -> list[int]:
    """Send `sig` to each (pid, start ticks) that is still that process; the PIDs signalled."""
    sent = []
    for pid, start in pids:
        if same_process(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                sent.append(pid)
    return sent


# -------------------------------------------------------------------- main
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulator.supervisor",
        description="Run a lab in the foreground of this process (what `tplab up -d` starts).",
    )
    parser.add_argument("--topology", type=Path, required=True)
    parser.add_argument("--netsim", choices=("proxy", "off", "kernel"), default="proxy")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--control-host", default="127.0.0.1")
    parser.add_argument("--control-port", type=int, default=7400)
    parser.add_argument("--start-timeout", type=float, default=START_TIMEOUT_S)
    parser.add_argument(
        "--subnet", type=int, default=None, help="move 127.A.B.C host addresses to 127.SUBNET.B.C"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        topology = load_topology(args.topology)
        if args.subnet is not None:
            from emulator.scenario.lab import relocate

            topology = relocate(topology, args.subnet)
    except (TopologyError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = LabConfig(
        topology_path=args.topology,
        state_dir=args.state_dir,
        backend=args.netsim,
        seed=args.seed,
        control_host=args.control_host,
        control_port=args.control_port,
        start_timeout_s=args.start_timeout,
        subnet=args.subnet,
    )

    async def go() -> None:
        await run_until_signalled(Supervisor(config, topology))

    try:
        asyncio.run(go())
    except SupervisorError as exc:
        print_event(f"error: {exc}")
        return 1
    print_event("lab stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
