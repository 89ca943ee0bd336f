"""A running lab a scenario drives: the same operations in both worlds.

`Lab` is what `emulator.scenario.runner` sees: the hosts' public JSON APIs over
HTTPS (`request`), host processes killed and started (`kill`, `start`), and the
world's impairments (`impair`, `partition`, `heal`, `clock`, `firewall_add`).

- `SimLab` runs every node of the topology (`PeerNode`, `VcsNode`, `BridgeNode`,
  the same classes `python -m peers|vcs_policy|bridges` run) as tasks of one
  `netsim.sim.SimWorld`: virtual time, in-memory network, one seed. A peer that
  asks for a restart is started again at once, as the supervisor does. The
  runner's requests come from outside the topology (never impaired).
- `RealLab` runs a `Supervisor` (one real process per host, the proxy backend)
  in this process and drives it only through public interfaces: the nodes'
  HTTPS APIs and the lab's REST control API (`netsim.control.ControlClient`:
  impairments, and the supervisor's `POST /api/v1/hosts/NAME/kill|start`).

`Lab.run(coro)` runs a coroutine to completion in the lab's loop: in sim mode
the virtual-time loop (time moves only while it runs); in real mode a loop on
a thread of its own, so the relay keeps moving traffic between calls.

Invariants: `now()` is seconds since the lab opened, never decreasing; `close`
stops every node and process the lab started and removes its temporary state.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from emulator.scenario.model import Mode
from netsim.topology import Topology

T = TypeVar("T")

#: every node serves its admin pages and JSON API here
API_PORT = 8443
REQUEST_TIMEOUT_S = 30.0


def decode_json(raw: bytes) -> Any:
    """An answer's JSON, or None when it is empty or not JSON."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class LabError(RuntimeError):
    """The lab cannot do what a step asked (start failed, host unknown, not running)."""


def relocate(topology: Topology, second_octet: int) -> Topology:
    """The topology with every 127.A.B.C host address moved to 127.`second_octet`.B.C, so
    several real labs can run side by side (the proxy's private addresses add 128)."""
    if not 1 <= second_octet <= 127:
        raise ValueError("second_octet must be 1..127 (the proxy backend uses 128..255)")
    hosts = []
    for host in topology.hosts:
        octets = host.ip.split(".")
        if octets[0] != "127":
            raise ValueError(f"{host.name}: only 127.0.0.0/8 addresses can be moved")
        octets[1] = str(second_octet)
        hosts.append(dataclasses.replace(host, ip=".".join(octets)))
    return dataclasses.replace(topology, hosts=tuple(hosts))


class Lab(abc.ABC):
    mode: Mode

    def __init__(self, topology: Topology, *, seed: int) -> None:
        self.topology = topology
        self.seed = seed
        self.session: aiohttp.ClientSession | None = None

    # ----------------------------------------------------------- the loop
    @abc.abstractmethod
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` in the lab's loop and return its result."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop everything the lab started (safe to call twice)."""

    @abc.abstractmethod
    def now(self) -> float:
        """Seconds since the lab opened (virtual in sim mode)."""

    @abc.abstractmethod
    def wall(self) -> datetime:
        """The lab's wall clock (the simulated world's epoch plus virtual time in sim mode)."""

    # ----------------------------------------------------------- in the loop
    @abc.abstractmethod
    async def open(self) -> None:
        """Start every host; return once each answers."""

    async def request(
        self,
        host: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        password: str,
        user: str = "admin",
        timeout_s: float = REQUEST_TIMEOUT_S,
        scheme: str = "https",
        port: int = API_PORT,
    ) -> tuple[int, Any]:
        """One call to a host's JSON API (HTTP Basic); (status, decoded JSON or None).
        Raises OSError, TimeoutError or aiohttp.ClientError when the host does not answer."""
        status, raw, _ = await self.request_raw(
            host, method, path, json=body, password=password, user=user,
            timeout_s=timeout_s, scheme=scheme, port=port,
        )  # fmt: skip
        return status, decode_json(raw)

    async def request_raw(
        self,
        host: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        password: str,
        user: str = "admin",
        timeout_s: float = REQUEST_TIMEOUT_S,
        scheme: str = "https",
        port: int = API_PORT,
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """The same with a raw body (a file upload) or a raw answer (a download)."""
        assert self.session is not None
        url = f"{scheme}://{self.topology.host(host).ip}:{port}{path}"
        sent = {**(headers or {}), "Authorization": aiohttp.encode_basic_auth(user, password)}
        async with asyncio.timeout(timeout_s):
            for attempt in (1, 2):
                try:
                    async with self.session.request(
                        method, url, json=json, data=data, headers=sent, ssl=scheme != "https"
                    ) as response:
                        return response.status, await response.read(), dict(response.headers)
                except aiohttp.ServerDisconnectedError:
                    # a kept-alive connection the host closed (it restarted): the request
                    # never reached it, so it is sent once more on a new connection
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    @abc.abstractmethod
    async def kill(self, host: str) -> None: ...

    @abc.abstractmethod
    async def start(self, host: str) -> None: ...

    @abc.abstractmethod
    def host_state(self, host: str) -> str:
        """starting | up | restarting | killed | failed | stopped"""

    @abc.abstractmethod
    def restarts(self, host: str) -> int:
        """How many times the host's process restarted on request."""

    @abc.abstractmethod
    async def impair(
        self, src: str, dst: str, *, both: bool, changes: Mapping[str, Any]
    ) -> None: ...

    @abc.abstractmethod
    async def partition(self, groups: Iterable[Iterable[str]]) -> None: ...

    @abc.abstractmethod
    async def heal(self) -> None: ...

    @abc.abstractmethod
    async def clock(self, host: str, offset_s: float) -> None: ...

    @abc.abstractmethod
    async def firewall_add(
        self, proto: str, lo: int, hi: int, verdict: str, src: str | None, dst: str | None
    ) -> int: ...

    @abc.abstractmethod
    async def firewall_remove(self, rule_id: int) -> None: ...


# ======================================================================= sim
def _sim_node(runtime: Any, role: str) -> Any:
    """The node a process of `role` runs, with the same defaults as its `__main__`."""
    if role == "conductor":
        from peers.node import PeerNode

        return PeerNode(runtime)
    if role == "vcs":
        from vcs_policy.node import VcsNode

        return VcsNode(runtime)
    from bridges.node import BridgeNode

    return BridgeNode(runtime, "mcu" if role == "mcu" else "ts")


BUILT_ROLES = ("conductor", "vcs", "mcu", "telepresence-server")


class SimLab(Lab):
    mode = Mode.SIM

    def __init__(self, topology: Topology, *, seed: int, data_root: Path | None = None) -> None:
        super().__init__(topology, seed=seed)
        from netsim.sim import SimWorld

        self.sim = SimWorld(topology, seed=seed, trace_packets=False, data_root=data_root)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._states: dict[str, str] = {}
        self._restarts: dict[str, int] = {}
        self._nodes: dict[str, Any] = {}
        self._closed = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.sim.run(coro)

    def now(self) -> float:
        return self.sim.loop.time()

    def wall(self) -> datetime:
        return self.sim.epoch + timedelta(seconds=self.sim.loop.time())

    async def open(self) -> None:
        from netsim.http import NetsimConnector

        self.session = aiohttp.ClientSession(connector=NetsimConnector(self.sim.outside_network()))
        for host in self.topology.hosts:
            if host.role in BUILT_ROLES:
                self._launch(host.name)
        await asyncio.sleep(1.0)

    def _launch(self, host: str) -> None:
        self._states[host] = "starting"
        self._tasks[host] = asyncio.get_running_loop().create_task(self._supervise(host))

    async def _supervise(self, host: str) -> None:
        from peers.node import Outcome

        role = self.topology.host(host).role
        while True:
            node = self._nodes[host] = _sim_node(self.sim.runtime(host), role)
            self._states[host] = "up"
            outcome = await node.run()
            if outcome is not Outcome.RESTART:
                self._states[host] = "stopped"
                return
            self._restarts[host] = self._restarts.get(host, 0) + 1
            self._states[host] = "restarting"

    def _check_built(self, host: str) -> None:
        role = self.topology.host(host).role
        if role not in BUILT_ROLES:
            raise LabError(f"{host} is a {role}: not built yet")

    async def kill(self, host: str) -> None:
        self._check_built(host)
        task = self._tasks.pop(host, None)
        if task is None or task.done():
            raise LabError(f"{host} is not running ({self.host_state(host)})")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._states[host] = "killed"

    async def start(self, host: str) -> None:
        self._check_built(host)
        task = self._tasks.get(host)
        if task is not None and not task.done():
            raise LabError(f"{host} is already running")
        self._launch(host)
        await asyncio.sleep(0.5)

    def host_state(self, host: str) -> str:
        self.topology.host(host)
        return self._states.get(host, "not built yet")

    def restarts(self, host: str) -> int:
        return self._restarts.get(host, 0)

    def _world(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One change of the world; its refusal becomes a LabError with its message."""
        from netsim.core.impairments import ImpairmentError

        try:
            return getattr(self.sim.world, method)(*args, **kwargs)
        except (ImpairmentError, KeyError, ValueError) as exc:
            raise LabError(str(exc)) from exc

    async def impair(self, src: str, dst: str, *, both: bool, changes: Mapping[str, Any]) -> None:
        self._world("impair", src, dst, both=both, **changes)

    async def partition(self, groups: Iterable[Iterable[str]]) -> None:
        self._world("partition", *groups)

    async def heal(self) -> None:
        self._world("heal")

    async def clock(self, host: str, offset_s: float) -> None:
        self._world("set_clock_offset", host, offset_s)

    async def firewall_add(
        self, proto: str, lo: int, hi: int, verdict: str, src: str | None, dst: str | None
    ) -> int:
        rule = self._world(
            "firewall_add", proto, (lo, hi), action=verdict, src=src or "*", dst=dst or "*"
        )
        return int(rule.id)

    async def firewall_remove(self, rule_id: int) -> None:
        self._world("firewall_remove", rule_id)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def stop() -> None:
            for node in self._nodes.values():
                node.stop()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            if self.session is not None:
                await self.session.close()

        try:
            with contextlib.suppress(Exception):
                self.sim.run(stop())
        finally:
            self.sim.close()


# ====================================================================== real
class RealLab(Lab):
    mode = Mode.REAL

    def __init__(
        self,
        topology: Topology,
        *,
        seed: int,
        topology_path: Path,
        state_dir: Path | None = None,
        start_timeout_s: float = 60.0,
        on_event: Any = None,
    ) -> None:
        super().__init__(topology, seed=seed)
        self._own_dir = state_dir is None
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="tplab-scenario-"))
        self.topology_path = topology_path
        self.start_timeout_s = start_timeout_s
        self.on_event = on_event or (lambda message: None)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._started = time.monotonic()
        self._supervisor: Any = None
        self._supervisor_task: asyncio.Task[None] | None = None
        self._control: Any = None
        self._closed = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            with contextlib.suppress(concurrent.futures.CancelledError, Exception):
                future.result(timeout=10)
            raise

    def now(self) -> float:
        return time.monotonic() - self._started

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def open(self) -> None:
        from emulator.supervisor import LabConfig, Supervisor, SupervisorError
        from netsim.control import ControlClient

        config = LabConfig(
            topology_path=self.topology_path,
            state_dir=self.state_dir,
            backend="proxy",
            seed=self.seed,
            control_port=0,
            start_timeout_s=self.start_timeout_s,
        )
        self._supervisor = Supervisor(config, self.topology, on_event=self.on_event)
        ready = asyncio.get_running_loop().create_future()

        def on_ready(_: Any) -> None:
            if not ready.done():
                ready.set_result(None)

        async def supervise() -> None:
            try:
                await self._supervisor.run(on_ready)
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(
                        LabError(str(exc)) if isinstance(exc, SupervisorError) else exc
                    )
                raise

        self._supervisor_task = asyncio.get_running_loop().create_task(supervise())
        await ready
        self._control = ControlClient(self._supervisor.control_url)
        self.session = aiohttp.ClientSession()

    async def _world(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One call of the control API; its refusal becomes a LabError with its message."""
        from netsim.control import ControlError

        try:
            return await getattr(self._control, method)(*args, **kwargs)
        except ControlError as exc:
            raise LabError(exc.message) from exc

    async def kill(self, host: str) -> None:
        await self._world("request", "POST", f"/api/v1/hosts/{host}/kill")

    async def start(self, host: str) -> None:
        await self._world("request", "POST", f"/api/v1/hosts/{host}/start")

    def host_state(self, host: str) -> str:
        state: str = self._supervisor.host_state(host)
        return state

    def restarts(self, host: str) -> int:
        count: int = self._supervisor.children[host].restarts
        return count

    async def impair(self, src: str, dst: str, *, both: bool, changes: Mapping[str, Any]) -> None:
        await self._world("impair", src, dst, both=both, **changes)

    async def partition(self, groups: Iterable[Iterable[str]]) -> None:
        await self._world("partition", *[list(g) for g in groups])

    async def heal(self) -> None:
        await self._world("heal")

    async def clock(self, host: str, offset_s: float) -> None:
        await self._world("set_clock_offset", host, offset_s)

    async def firewall_add(
        self, proto: str, lo: int, hi: int, verdict: str, src: str | None, dst: str | None
    ) -> int:
        rule = await self._world(
            "firewall_add", proto, f"{lo}-{hi}", action=verdict, src=src or "*", dst=dst or "*"
        )
        return int(rule["id"])

    async def firewall_remove(self, rule_id: int) -> None:
        await self._world("firewall_remove", rule_id)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def stop() -> None:
            if self.session is not None:
                await self.session.close()
            if self._control is not None:
                await self._control.close()
            if self._supervisor is not None:
                self._supervisor.request_stop()
            if self._supervisor_task is not None:
                await asyncio.gather(self._supervisor_task, return_exceptions=True)

        try:
            self.run(stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()
            if self._own_dir:
                shutil.rmtree(self.state_dir, ignore_errors=True)


def open_lab(
    topology: Topology,
    mode: Mode,
    *,
    seed: int,
    topology_path: Path,
    on_event: Any = None,
) -> Lab:
    """A started lab of `topology` in `mode` (the caller closes it)."""
    lab: Lab
    if mode is Mode.SIM:
        lab = SimLab(topology, seed=seed)
    else:
        lab = RealLab(topology, seed=seed, topology_path=topology_path, on_event=on_event)
    try:
        lab.run(lab.open())
    except BaseException:
        lab.close()
        raise
    return lab


# ================================================================== attached
class AttachedLab(RealLab):
    """A real lab that a supervisor in another process runs (`tplab up -d`,
    `tplab lab start`): reached through its nodes' APIs and its control API, its hosts'
    states read from the supervisor's `lab.json`. Closing it leaves the lab running."""

    def __init__(self, state_dir: Path) -> None:
        from emulator.supervisor import read_lab, supervisor_alive
        from netsim.topology import TopologyError, load_topology

        lab = read_lab(state_dir)
        if lab is None or not supervisor_alive(lab):
            raise LabError(f"no lab is running on {state_dir}")
        try:
            topology = load_topology(Path(lab["topology"]))
        except (TopologyError, OSError, KeyError) as exc:
            raise LabError(f"the lab on {state_dir} has no readable topology: {exc}") from exc
        if lab.get("subnet"):
            topology = relocate(topology, int(lab["subnet"]))
        super().__init__(
            topology,
            seed=int(lab.get("seed") or 0),
            topology_path=Path(lab["topology"]),
            state_dir=state_dir,
        )
        self.control_url = str(lab["control"])

    async def open(self) -> None:
        from netsim.control import ControlClient

        self._control = ControlClient(self.control_url)
        self.session = aiohttp.ClientSession()

    def _host(self, host: str) -> dict[str, Any]:
        from emulator.supervisor import read_lab

        self.topology.host(host)
        for entry in (read_lab(self.state_dir) or {}).get("hosts", []):
            if entry.get("host") == host:
                return dict(entry)
        return {}

    def host_state(self, host: str) -> str:
        return str(self._host(host).get("state", "stopped"))

    def restarts(self, host: str) -> int:
        return int(self._host(host).get("restarts", 0))
