"""The `policy` benchmark group: the Conductor's policy service, alone and behind the VCS.

The default topology is brought up with `tplab up -d` (proxy backend, a fresh
temporary state dir, a free control port): three Conductor peers and the VCS, each
a real process. Each peer is configured through its JSON API on its own (no
cluster: every peer answers policy requests from its own store): admin and root
passwords changed from the factory default (a peer answers 403 until then, G-P3)
and one conference alias, `meet\\.(\\d+)@example\\.com` -> `meet-\\1`. The VCS gets a
policy service whose servers are the three peers (Server 1 = conductor-initial,
HTTPS, HTTP Basic with the peers' admin account, certificate verification off) and
a search rule sending `meet.*@example.com` to it. Measurements (every loop is
bounded in count and time; every figure comes from HTTPS requests of this process):

1. policy requests/s: `POST /pdp/policy` (form-encoded `PolicyRequest` of a SIP
   INVITE to a matching alias, HTTP Basic) straight at one peer process (its bind
   address, not through the lab's relay), against a bare aiohttp HTTPS endpoint
   (`emulator.bench.cpl_server`, its own process on loopback, same TLS: an ECDSA
   P-256 certificate from `netsim.certs`) that answers the allow CPL without
   authenticating or deciding anything. The same client drives both: an aiohttp
   session per endpoint, identically configured, keep-alive, at most `CONCURRENCY`
   requests in flight, `requests` per round. Rounds alternate peer, bare, peer,
   bare ... (`pairs` of each) after a warm-up of each; the ratio is the peer's
   requests/s over all its rounds divided by the bare endpoint's. Only 200 answers
   count: a round with any other answer makes the figures NaN, with a note.
2. call setup: `POST /api/v1/calls` to the VCS one after another (after a few
   warm-up calls); each answer's `setup_ms` is the VCS's own measure from the dial
   to the routing decision (policy request to Server 1 through the lab's relay, the
   peer's decision, the CPL evaluated). p50 and p99.
3. calls lost while the peer in use dies: a call load on the VCS
   (`POST /api/v1/calls/load`, `load_rate` calls/s for `load_duration_s`), and
   halfway through it SIGKILL of Server 1's process (its PID from lab.json, checked
   against its start time). A call is lost when it does not end connected (or has
   not ended `LOAD_GRACE_S` after the load's end); the VCS should move each request
   on to Server 2 at once (G-V4). The same load with every peer up runs just before
   it, as the baseline: what is lost there is not the failover's doing. Calls per
   server come from the VCS's call statistics before and after each load.

Every run ends with `tplab down` (then SIGKILL by recorded PID of whatever outlived
it); the bare endpoint (and a VCS this group had to start itself, for a supervisor
that does not start one) are ended by PID. When a lab already answers on the default
topology's addresses, the group records NaN figures and a note instead of running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import math
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from emulator.bench import BenchOptions, Figure, GroupResult, Target, bench_group, quantile
from emulator.bench.labkit import (
    PEER_PASSWORD,
    Node,
    PhaseClock,
    add_run_notes,
    await_load,
    bind_address,
    calls_since,
    change_passwords,
    lab_already_there,
    lab_hosts,
    lab_params,
    lab_up,
    poll_until,
    rounded,
    temporary_lab,
)
from emulator.paths import DEFAULT_TOPOLOGY, REPO_ROOT
from emulator.supervisor import (
    DEFAULT_USER,
    PEER_PORT,
    read_lab,
    same_process,
)
from netsim.topology import load_topology
from vcs_policy.wire import Action, PolicyRequest, evaluate_cpl
from vcs_policy.wire.policy import CONTENT_TYPE as FORM_CONTENT_TYPE

RATIO_TARGET = 0.5
LOST_TARGET = 0
CONCURRENCY = 16
RPS_REQUESTS = 3000
RPS_PAIRS = 3
RPS_WARMUP = 300
CALL_SAMPLES = 300
CALL_WARMUP = 3
LOAD_RATE = 50.0
LOAD_DURATION_S = 6.0
#: the VCS's per-attempt timeout for the benchmark's policy service (product: 30 s)
SERVICE_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
READY_LIMIT_S = 30.0
ROUND_LIMIT_S = 120.0
LOAD_GRACE_S = 3 * SERVICE_TIMEOUT_S + 10.0
STOP_LIMIT_S = 10.0
LOAD_POLL_S = 0.25
NOT_CONNECTED_SHOWN = 10

SERVICE = "Conductors"
RULE = "To Conductors"
ALIAS = {
    "name": "meet",
    "incoming_alias": r"meet\.(\d+)@example\.com",
    "conference_name": r"meet-\1",
    "priority": 10,
}
RULE_PATTERN = r"meet\..*@example\.com"
LOAD_ALIASES = "meet.{1-1000}@example.com"
DESTINATION = "meet.{n}@example.com"


@dataclass(frozen=True, slots=True)
class PolicyParams:
    requests: int = RPS_REQUESTS
    pairs: int = RPS_PAIRS
    warmup: int = RPS_WARMUP
    concurrency: int = CONCURRENCY
    call_samples: int = CALL_SAMPLES
    load_rate: float = LOAD_RATE
    load_duration_s: float = LOAD_DURATION_S

    @classmethod
    def scaled(cls, scale: float) -> PolicyParams:
        return cls(
            requests=max(50, round(RPS_REQUESTS * scale)),
            pairs=max(2, round(RPS_PAIRS * min(1.0, scale))),
            warmup=max(CONCURRENCY, round(RPS_WARMUP * scale)),
            call_samples=max(10, round(CALL_SAMPLES * scale)),
            load_rate=LOAD_RATE,
            load_duration_s=max(1.0, LOAD_DURATION_S * scale),
        )


def policy_request(n: int) -> PolicyRequest:
    call = f"bench-{n}"
    return PolicyRequest(
        POLICY_TYPE="SEARCH",
        METHOD="INVITE",
        PROTOCOL="SIP",
        DESTINATION_ALIAS=DESTINATION.format(n=n),
        UNAUTHENTICATED_SOURCE_ALIAS="bench@example.com",
        AUTHENTICATED="FALSE",
        LOCAL_CALL_SERIAL_NUMBER=call,
        GLOBAL_CALL_SERIAL_NUMBER=call,
        NETWORK_TYPE="IPV4",
        SOURCE_IP="127.1.2.10",
        ZONE_NAME="DefaultSubZone",
        CLUSTER_NAME="vcs",
        UTCTIME="2024-01-01 00:00:00",
    )


async def configure_peer(peer: Node) -> None:
    """Passwords off the factory default (admin, then root), and the conference alias."""
    await change_passwords(peer)
    await peer.call("POST", "/api/v1/conference/aliases", ALIAS, ok=201)


async def configure_vcs(vcs: Node, servers: list[str]) -> None:
    service = {
        "name": SERVICE,
        "protocol": "HTTPS",
        "verify_certificate": False,
        "username": DEFAULT_USER,
        "password": PEER_PASSWORD,
        "servers": servers,
        "request_timeout_s": SERVICE_TIMEOUT_S,
    }
    await vcs.call("POST", "/api/v1/policy-services", service, ok=201)
    rule = {
        "name": RULE,
        "priority": 10,
        "pattern_type": "Regex",
        "pattern": RULE_PATTERN,
        "target": SERVICE,
        "on_match": "Stop",
    }
    await vcs.call("POST", "/api/v1/search-rules", rule, ok=201)

    async def all_active() -> bool:
        answer = await vcs.call("GET", "/api/v1/status/policy-services")
        for service in answer["policy_services"]:
            if service["name"] == SERVICE:
                states = [s["status"] for s in service["servers"]]
                return len(states) == len(servers) and all(s == "Active" for s in states)
        return False

    await poll_until(all_active, READY_LIMIT_S, "the VCS seeing every policy server Active")


# ------------------------------------------------------------ 1. requests/s
@dataclass(slots=True)
class Round:
    target: str
    requests: int
    elapsed_s: float
    statuses: Counter[int]

    @property
    def ok(self) -> bool:
        return self.statuses.get(200, 0) == self.requests

    @property
    def per_s(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else math.nan


async def drive(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], headers: dict[str, str], n: int
) -> tuple[float, Counter[int]]:
    """`n` POSTs, at most the session's connection limit in flight; (seconds, statuses)."""
    statuses: Counter[int] = Counter()
    workers = session.connector.limit if session.connector is not None else CONCURRENCY
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            index = next_index
            next_index += 1
            try:
                async with session.post(
                    url, data=bodies[index % len(bodies)], headers=headers, ssl=False
                ) as response:
                    await response.read()
                    statuses[response.status] += 1
            except (aiohttp.ClientError, OSError, TimeoutError):
                statuses[0] += 1

    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(min(workers, n)))), ROUND_LIMIT_S
    )
    return time.perf_counter() - started, statuses


def rps_session(concurrency: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


async def measure_rps(peer_url: str, bare_url: str, params: PolicyParams) -> dict[str, Any]:
    requests = [policy_request(n) for n in range(1, 101)]
    bodies = [r.encode() for r in requests]
    headers = {
        "Content-Type": FORM_CONTENT_TYPE,
        "Authorization": aiohttp.encode_basic_auth(DEFAULT_USER, PEER_PASSWORD),
    }
    targets = {"peer": peer_url, "bare": bare_url}
    async with rps_session(params.concurrency) as peer_s, rps_session(params.concurrency) as bare_s:
        sessions = {"peer": peer_s, "bare": bare_s}
        # the peer decides allow for the alias: checked once, outside the timing
        async with peer_s.post(peer_url, data=bodies[0], headers=headers, ssl=False) as response:
            text = await response.read()
            if response.status != 200:
                raise RuntimeError(
                    f"the peer's policy endpoint answered {response.status}: {text!r}"
                )
            decision = evaluate_cpl(text, requests[0])
            if decision.action is not Action.ALLOW:
                raise RuntimeError(f"the peer did not allow a matching alias: {decision}")
        warmup = {}
        for name in targets:
            _, statuses = await drive(sessions[name], targets[name], bodies, headers, params.warmup)
            warmup[name] = dict(statuses)
        rounds: list[Round] = []
        for _ in range(params.pairs):
            for name in ("peer", "bare"):
                elapsed, statuses = await drive(
                    sessions[name], targets[name], bodies, headers, params.requests
                )
                rounds.append(Round(name, params.requests, elapsed, statuses))
    return {"rounds": rounds, "warmup_statuses": warmup}


def rps_summary(rounds: list[Round]) -> dict[str, Any]:
    def total(name: str) -> float:
        mine = [r for r in rounds if r.target == name]
        if not mine or not all(r.ok for r in mine):
            return math.nan
        return sum(r.requests for r in mine) / sum(r.elapsed_s for r in mine)

    peer, bare = total("peer"), total("bare")
    pair_ratios = [
        a.per_s / b.per_s for a, b in zip(rounds[0::2], rounds[1::2], strict=True) if a.ok and b.ok
    ]
    return {
        "peer_per_s": peer,
        "bare_per_s": bare,
        "ratio": peer / bare if bare > 0 else math.nan,
        "pair_ratios": pair_ratios,
        "rounds": [
            {
                "target": r.target,
                "requests": r.requests,
                "elapsed_s": r.elapsed_s,
                "per_s": r.per_s,
                "statuses": {str(k): v for k, v in sorted(r.statuses.items())},
            }
            for r in rounds
        ],
    }


# ---------------------------------------------------------------- processes
async def start_bare(tls_dir: Path) -> tuple[asyncio.subprocess.Process, str]:
    """The bare CPL endpoint in its own process; (process, URL) once it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulator.bench.cpl_server",
        "--ip",
        "127.0.0.1",
        "--tls-dir",
        str(tls_dir),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), READY_LIMIT_S)
        word, _, port = line.decode().strip().partition(" ")
        if word != "READY" or not port.isdigit():
            raise RuntimeError(f"the bare CPL endpoint did not start: {line!r}")
    except BaseException:
        await stop_process(proc)
        raise
    return proc, f"https://127.0.0.1:{port}/pdp/policy"


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM to the process by its PID, SIGKILL if it outlives `STOP_LIMIT_S`."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_LIMIT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()


async def start_own_vcs(
    state_dir: Path, name: str, ip: str, backend: str
) -> asyncio.subprocess.Process:
    """A VCS process as the supervisor would start it (for a supervisor that does not)."""
    log = (state_dir / f"bench-{name}.log").open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vcs_policy",
            "--host",
            name,
            "--ip",
            ip,
            "--state-dir",
            str(state_dir),
            "--netsim",
            backend,
            "--port",
            str(PEER_PORT),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    finally:
        log.close()


def kill_recorded(state_dir: Path, host: str) -> int | None:
    """SIGKILL `host`'s process by the PID lab.json recorded (if it is still that
    process); the PID killed, or None."""
    lab = read_lab(state_dir) or {}
    for entry in lab.get("hosts", []):
        pid = entry.get("pid")
        if entry.get("host") == host and pid and same_process(pid, entry.get("pid_start")):
            os.kill(pid, signal.SIGKILL)
            return int(pid)
    return None


# ------------------------------------------------------------ 2. and 3. calls
async def call_setups(vcs: Node, params: PolicyParams) -> dict[str, Any]:
    setup_ms: list[float] = []
    client_ms: list[float] = []
    outcomes: Counter[str] = Counter()
    via: Counter[str] = Counter()
    for n in range(-CALL_WARMUP, params.call_samples):
        body = {"source": "bench@example.com", "destination": DESTINATION.format(n=abs(n) + 1)}
        sent = time.perf_counter()
        result = await vcs.call("POST", "/api/v1/calls", body)
        if n < 0:
            continue
        client_ms.append((time.perf_counter() - sent) * 1000.0)
        outcomes[result["outcome"]] += 1
        if result["outcome"] == "connected":
            setup_ms.append(float(result["setup_ms"]))
            via[result["via"]] += 1
    return {
        "setup_ms": setup_ms,
        "client_ms": client_ms,
        "outcomes": dict(outcomes),
        "via": dict(via),
    }


async def run_load(
    vcs: Node, params: PolicyParams, kill: Callable[[], int | None] | None = None
) -> dict[str, Any]:
    """A call load on the VCS; with `kill`, called at half the duration (it answers the
    PID it killed). Calls the load had not finished `LOAD_GRACE_S` after its end count
    as not connected."""
    before = (await vcs.call("GET", "/api/v1/calls"))["stats"]
    body = {
        "rate": params.load_rate,
        "duration_s": params.load_duration_s,
        "aliases": LOAD_ALIASES,
        "source": "load@example.com",
    }
    load = await vcs.call("POST", "/api/v1/calls/load", body, ok=202)
    started = time.perf_counter()
    load_path = f"/api/v1/calls/load/{load['id']}"
    killed: dict[str, Any] = {}
    if kill is not None:
        await asyncio.sleep(params.load_duration_s / 2)
        killed["killed_pid"] = kill()
        killed["killed_at_s"] = time.perf_counter() - started
        if killed["killed_pid"] is None:
            raise RuntimeError("the process to kill is not recorded in lab.json as running")
    limit_s = params.load_duration_s + LOAD_GRACE_S
    finished_in_time = await await_load(vcs, load_path, limit_s, LOAD_POLL_S)
    calls = await vcs.call("GET", "/api/v1/calls")
    load = await vcs.call("GET", load_path)
    after = calls["stats"]
    # the load's calls among the VCS's most recent ones
    mine = calls_since(calls, before)
    setups = [float(c["setup_ms"]) for c in mine]
    not_connected: dict[tuple[str, Any, str], dict[str, Any]] = {}
    for c in mine:
        if c["outcome"] != "connected":
            key = (c["outcome"], c.get("status"), str(c.get("reason", ""))[:200])
            kind = not_connected.setdefault(
                key,
                {
                    "outcome": key[0],
                    "status": key[1],
                    "reason": key[2],
                    "calls": 0,
                    "example_attempts": c.get("attempts", []),
                },
            )
            kind["calls"] += 1
    by_via = {
        server: after["by_via"].get(server, 0) - before["by_via"].get(server, 0)
        for server in sorted(set(after["by_via"]) | set(before["by_via"]))
    }
    expected = max(1, round(params.load_rate * params.load_duration_s))
    connected = int(load["by_outcome"].get("connected", 0))
    return {
        "expected": expected,
        "placed": load["placed"],
        "done": load["done"],
        "finished_in_time": finished_in_time,
        "by_outcome": load["by_outcome"],
        "lost": expected - connected,
        "by_via": {k: v for k, v in by_via.items() if v},
        "default_cpl": after["default_cpl"] - before["default_cpl"],
        **killed,
        "recent_calls": len(mine),
        "recent_setup_ms_p50": quantile(setups, 0.5),
        "recent_setup_ms_max": max(setups, default=math.nan),
        "not_connected": sorted(not_connected.values(), key=lambda k: -int(k["calls"]))[
            :NOT_CONNECTED_SHOWN
        ],
    }


# -------------------------------------------------------------------- a run
async def measure(params: PolicyParams) -> dict[str, Any]:
    topology = load_topology(DEFAULT_TOPOLOGY)
    conductors = {h.name: h.ip for h in topology.hosts if h.role == "conductor"}
    vcs_host = next(h for h in topology.hosts if h.role == "vcs")
    urls = {name: f"https://{ip}:{PEER_PORT}/" for name, ip in conductors.items()}
    busy = lab_already_there({**urls, vcs_host.name: f"https://{vcs_host.ip}:{PEER_PORT}/"})
    if busy:
        return {"skipped": busy}
    notes: list[str] = []
    data: dict[str, Any] = {}
    bare: asyncio.subprocess.Process | None = None
    own_vcs: asyncio.subprocess.Process | None = None
    clock = PhaseClock()
    phase = clock.phase
    async with temporary_lab("tplab-bench-policy-", notes) as state_dir:
        try:
            bare, bare_url = await start_bare(state_dir / "bare-tls")
            phase("bare endpoint start")
            await lab_up(state_dir)
            phase("tplab up -d")
            backend, started = lab_hosts(state_dir)
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
            ) as session:
                vcs = Node.factory_admin(session, vcs_host.name, vcs_host.ip)
                if vcs_host.name not in started:
                    notes.append("the supervisor did not start the VCS: this group started it")
                    own_vcs = await start_own_vcs(state_dir, vcs_host.name, vcs_host.ip, backend)
                    await poll_until(vcs.answers, READY_LIMIT_S, "the VCS answering")
                peers = [Node.factory_admin(session, name, ip) for name, ip in conductors.items()]
                await asyncio.gather(*(configure_peer(peer) for peer in peers))
                phase("peer configuration")
                first = next(iter(conductors))
                bind = bind_address(conductors[first], backend)
                data["rps_target"] = f"{first} at https://{bind}:{PEER_PORT}/pdp/policy"
                rps = await measure_rps(f"https://{bind}:{PEER_PORT}/pdp/policy", bare_url, params)
                data["rps"] = rps_summary(rps["rounds"])
                data["rps"]["warmup_statuses"] = rps["warmup_statuses"]
                await stop_process(bare)
                phase("requests/s")
                await configure_vcs(vcs, list(conductors.values()))
                phase("VCS configuration")
                data["calls"] = await call_setups(vcs, params)
                phase("call setup")
                data["steady"] = await run_load(vcs, params)
                phase("load")
                data["kill"] = await run_load(
                    vcs, params, functools.partial(kill_recorded, state_dir, first)
                )
                phase("load with kill")
                for key in ("steady", "kill"):
                    data[key]["by_server"] = {
                        name: data[key]["by_via"].get(ip, 0) for name, ip in conductors.items()
                    }
        finally:
            for proc in (bare, own_vcs):
                if proc is not None:
                    await stop_process(proc)
    phase("tplab down")
    data["notes"] = notes
    data["phases_s"] = clock.phases
    return data


# ------------------------------------------------------------------ figures
def _ms_summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return f"n={len(values)}, min {min(values):.2f} ms, max {max(values):.2f} ms"


def _load_details(load: dict[str, Any]) -> dict[str, Any]:
    by_server = load.get("by_server", {})
    servers = ", ".join(f"{name} {count}" for name, count in by_server.items())
    return {
        "summary": f"{load.get('placed', 0)} placed; via {servers or 'none'}",
        "expected": load.get("expected"),
        "placed": load.get("placed"),
        "by_outcome": load.get("by_outcome", {}),
        "by_server": by_server,
        "default_cpl": load.get("default_cpl"),
        "finished_in_time": load.get("finished_in_time"),
        "recent_calls": load.get("recent_calls"),
        "recent_setup_ms_p50": load.get("recent_setup_ms_p50"),
        "recent_setup_ms_max": load.get("recent_setup_ms_max"),
        "not_connected": load.get("not_connected", []),
    }


def figures(data: dict[str, Any], params: PolicyParams) -> list[Figure]:
    rps = data.get("rps", {})
    calls = data.get("calls", {})
    steady, kill = data.get("steady", {}), data.get("kill", {})
    setup = calls.get("setup_ms", [])
    client = calls.get("client_ms", [])
    rps_method = (
        f"POST /pdp/policy (form-encoded SIP INVITE policy request to a matching alias, HTTP "
        f"Basic) from one aiohttp session per endpoint, keep-alive, at most "
        f"{params.concurrency} in flight, {params.requests} requests a round; rounds "
        f"peer/bare alternating, {params.pairs} of each after {params.warmup} warm-up "
        "requests each; requests/s = requests / wall time over all of an endpoint's rounds. "
        "Peer: one Conductor peer process at its bind address (not through the lab's relay). "
        "Bare: emulator.bench.cpl_server, an aiohttp HTTPS endpoint in its own process "
        "answering the allow CPL, same TLS (ECDSA P-256 from netsim.certs). Only 200 answers "
        "count"
    )
    setup_method = (
        f"POST /api/v1/calls to the VCS one after another ({params.call_samples} calls to "
        f"matching aliases after {CALL_WARMUP} warm-up calls); setup_ms of each answer is the "
        "VCS's own measure, dial to routing decision: policy request to Server 1 (a real "
        "peer, HTTPS through the lab's proxy relay), the peer's decision, the CPL evaluated"
    )
    load_method = (
        f"POST /api/v1/calls/load ({params.load_rate:g} calls/s for "
        f"{params.load_duration_s:g} s, aliases {LOAD_ALIASES}); lost = calls the load "
        "should place - calls that ended connected (calls unfinished "
        f"{LOAD_GRACE_S:g} s after the load's end included); calls per server from the "
        "VCS's by-server call counts before and after the load"
    )
    pair_ratios = rps.get("pair_ratios", [])
    return [
        Figure(
            "policy_rps_ratio",
            float(rps.get("ratio", math.nan)),
            "ratio",
            "policy requests/s of a Conductor peer over a bare HTTPS endpoint answering a "
            "fixed CPL (same client, TLS, concurrency, same run)",
            rps_method,
            Target("min", RATIO_TARGET),
            {
                "summary": "per pair " + ", ".join(f"{r:.2f}" for r in pair_ratios),
                "pair_ratios": pair_ratios,
                "peer": data.get("rps_target", ""),
            },
        ),
        Figure(
            "policy_rps_peer",
            float(rps.get("peer_per_s", math.nan)),
            "req/s",
            "policy requests/s answered by one Conductor peer process (allow CPL)",
            rps_method,
            None,
            {"rounds": rps.get("rounds", []), "warmup_statuses": rps.get("warmup_statuses")},
        ),
        Figure(
            "policy_rps_bare",
            float(rps.get("bare_per_s", math.nan)),
            "req/s",
            "requests/s of the bare aiohttp HTTPS endpoint answering a fixed CPL",
            rps_method,
            None,
            {},
        ),
        Figure(
            "call_setup_ms_p50",
            quantile(setup, 0.5),
            "ms",
            "call setup through VCS -> Conductor policy service -> answer, median",
            setup_method,
            None,
            {
                "summary": _ms_summary(setup),
                "outcomes": calls.get("outcomes", {}),
                "via": calls.get("via", {}),
                "client_round_trip_p50_ms": quantile(client, 0.5),
            },
        ),
        Figure(
            "call_setup_ms_p99",
            quantile(setup, 0.99),
            "ms",
            "call setup through VCS -> Conductor policy service -> answer, p99",
            setup_method,
            None,
            {
                "summary": _ms_summary(setup),
                "samples": len(setup),
                "client_round_trip_p99_ms": quantile(client, 0.99),
            },
        ),
        Figure(
            "calls_lost_without_kill",
            float(steady.get("lost", math.nan)),
            "calls",
            "calls of the same load not connected with every peer up (the baseline of "
            "calls_lost_during_kill, measured just before it)",
            load_method,
            None,
            _load_details(steady),
        ),
        Figure(
            "calls_lost_during_kill",
            float(kill.get("lost", math.nan)),
            "calls",
            "calls of a load not connected when Server 1's peer process is SIGKILLed midway",
            load_method + "; SIGKILL of Server 1 (conductor-initial, its PID from lab.json "
            "checked against its start time) at half the duration",
            Target("max", LOST_TARGET),
            {
                **_load_details(kill),
                "killed_pid": kill.get("killed_pid"),
                "killed_at_s": kill.get("killed_at_s"),
            },
        ),
    ]


@bench_group("policy", "policy: peer policy requests/s vs bare HTTPS, call setup, peer kill")
def run_policy_bench(options: BenchOptions) -> GroupResult:
    params = PolicyParams.scaled(options.scale)
    result = GroupResult(
        group="policy",
        params=lab_params(dataclasses.asdict(params), service_timeout_s=SERVICE_TIMEOUT_S),
    )
    data = asyncio.run(measure(params))
    add_run_notes(result, data)
    for key, what in (("steady", "the call load"), ("kill", "the call load with the kill")):
        load = data.get(key, {})
        if load and not load["finished_in_time"]:
            result.notes.append(
                f"{what} had not finished {LOAD_GRACE_S:g} s after its end (when last read: "
                f"{load['placed']} placed, {load['done']} done); calls in progress count as lost"
            )
    rounds = data.get("rps", {}).get("rounds", [])
    bad = [r for r in rounds if r["statuses"] != {"200": r["requests"]}]
    if bad:
        result.notes.append(f"rounds with answers other than 200: {bad}")
    result.figures = rounded(figures(data, params))
    return result
