"""The `bridges` benchmark group: the bridges' XML-RPC API, and participants placed
through VCS -> Conductor -> bridge.

The default topology is brought up with `tplab up -d` (proxy backend, a fresh
temporary state dir, a free control port): three Conductor peers, the VCS, a
TelePresence Server and an MCU, each a real process started by the supervisor with
its default arguments (no password on the bridges' admin account; the ports each
kind has by default, read back with `device.query`). Every loop is bounded in count
and time.

1. XML-RPC calls/s: `device.query` (with the admin account) against each bridge
   process at its bind address (not through the lab's relay), over HTTP (8080) and
   HTTPS (8443), by two clients in the same run:
   - "aiohttp": tplab's client, an aiohttp session per bridge and scheme, keep-alive,
     at most `CONCURRENCY` calls in flight, each body made by
     `bridges.wire.xmlrpc.encode_call` and each answer read by `decode_result`;
   - "serverproxy": Python's own `xmlrpc.client.ServerProxy`, one thread, one call
     after another (its transport keeps the connection alive), the reference.
   Rounds of `rpc_calls` calls alternate aiohttp, serverproxy, per bridge and scheme,
   `rpc_pairs` times after a warm-up of each; calls/s = calls / wall time over all of
   a client's rounds; the ratio is aiohttp's over serverproxy's. Only answers that
   decode to a result (no fault, HTTP 200) count: a round with anything else makes
   its figures NaN, with a note.
2. participants placed/s: on conductor-initial (alone: the peers are not clustered,
   so only one peer places conferences) the admin and root passwords are changed
   from the factory default (G-P3), both bridges are added (TelePresence Server over
   HTTPS, MCU over HTTP: both of G-R8's ways), one pool each, and two service
   preferences and templates, "TS first" (TS pool, then MCU pool) and "MCU first"
   (the other way round), so that both bridges take conferences: the conference
   alias `meet.N@example.com` for odd N names the "TS first" template, for even N
   "MCU first". The VCS gets a policy service with conductor-initial as its only
   server and a search rule sending `meet.*@example.com` to it; the group waits for
   the peer to see both bridges Active and the VCS to see its server Active, and
   places `CALL_WARMUP` calls (then hangs them up). Then `rounds` call loads
   (`POST /api/v1/calls/load`, `hold_s` 0: calls stay up), each of `participants`
   calls offered at `load_rate` calls/s to 20 new conferences (round r:
   `meet.{20r+1-20r+20}@example.com`, so every round mixes creating conferences and
   joining them alike). A round places at most as many calls as the smaller bridge
   has ports, so no bridge can run out whatever the split; after each round every
   call of it is hung up (`DELETE /api/v1/calls/{id}`). From the VCS's recent calls:
   participants placed/s = calls connected / wall time, the wall time of a round
   being from the start of its first call to the end of the last one to finish
   (`started_s` + `setup_ms`, the VCS's own clock), summed over rounds; setup p50 and
   p99 of the connected calls (`setup_ms`: the dial to the bridge's answer); and the
   bridge each call landed on (checked against what each bridge's `device.query`
   says is in use before the hang-up).

Every run ends with `tplab down` (then SIGKILL by recorded PID of whatever outlived
it). When a lab already answers on the default topology's addresses, the group
records NaN figures and a note instead of running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import ssl
import time
import xmlrpc.client
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp

from bridges.node import DEFAULT_HTTP_PORT, DEFAULT_HTTPS_PORT
from bridges.wire.errors import BridgeFault, RemoteProtocolError
from bridges.wire.xmlrpc import CONTENT_TYPE, decode_result, encode_call
from emulator.bench import BenchOptions, Figure, GroupResult, bench_group, quantile
from emulator.bench.labkit import (
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
from emulator.bench.policy_bench import configure_vcs
from emulator.paths import DEFAULT_TOPOLOGY
from emulator.supervisor import PEER_PORT
from netsim.topology import load_topology

KINDS = ("mcu", "ts")
#: topology role -> kind
ROLE_KINDS = {"mcu": "mcu", "telepresence-server": "ts"}
SCHEMES = ("http", "https")
CLIENTS = ("aiohttp", "serverproxy")
BRIDGE_USER = "admin"
BRIDGE_PASSWORD = ""  # python -m bridges' default
CONCURRENCY = 16
RPC_CALLS = 1000
RPC_PAIRS = 3
RPC_WARMUP = 100
PARTICIPANTS = 40
ROUNDS = 5
CONFERENCES_PER_ROUND = 20
LOAD_RATE = 400.0
CALL_WARMUP = 4
REQUEST_TIMEOUT_S = 30.0
READY_LIMIT_S = 30.0
ROUND_LIMIT_S = 120.0
LOAD_GRACE_S = 30.0
LOAD_POLL_S = 0.1
NOT_CONNECTED_SHOWN = 10

#: conference configuration on conductor-initial, in the order it is created
BRIDGE_ENTRIES: dict[str, dict[str, Any]] = {
    "ts": {"name": "ts1", "type": "telepresence_server", "protocol": "HTTPS"},
    "mcu": {"name": "mcu1", "type": "telepresence_mcu", "protocol": "HTTP"},
}
POOLS: list[dict[str, Any]] = [
    {"name": "TS pool", "type": "telepresence_server", "bridges": ["ts1"]},
    {"name": "MCU pool", "type": "telepresence_mcu", "bridges": ["mcu1"]},
]
PREFERENCES: list[dict[str, Any]] = [
    {"name": "TS first", "pools": ["TS pool", "MCU pool"]},
    {"name": "MCU first", "pools": ["MCU pool", "TS pool"]},
]
TEMPLATES: list[dict[str, Any]] = [
    {"name": "TS meeting", "service_preference": "TS first"},
    {"name": "MCU meeting", "service_preference": "MCU first"},
]
ALIASES: list[dict[str, Any]] = [
    {
        "name": "meet odd",
        "incoming_alias": r"meet\.(\d*[13579])@example\.com",
        "conference_name": r"meet-\1",
        "priority": 10,
        "template": "TS meeting",
    },
    {
        "name": "meet even",
        "incoming_alias": r"meet\.(\d*[02468])@example\.com",
        "conference_name": r"meet-\1",
        "priority": 11,
        "template": "MCU meeting",
    },
]
WARMUP_DESTINATION = "meet.{n}@example.com"
WARMUP_FIRST = 1_000_001


@dataclass(frozen=True, slots=True)
class BridgeParams:
    rpc_calls: int = RPC_CALLS
    rpc_pairs: int = RPC_PAIRS
    rpc_warmup: int = RPC_WARMUP
    concurrency: int = CONCURRENCY
    participants: int = PARTICIPANTS
    rounds: int = ROUNDS
    load_rate: float = LOAD_RATE

    @classmethod
    def scaled(cls, scale: float) -> BridgeParams:
        return cls(
            rpc_calls=max(50, round(RPC_CALLS * scale)),
            rpc_pairs=max(1, round(RPC_PAIRS * min(1.0, scale))),
            rpc_warmup=max(CONCURRENCY, round(RPC_WARMUP * scale)),
            participants=max(10, round(PARTICIPANTS * min(1.0, scale))),
            rounds=max(1, round(ROUNDS * min(1.0, scale))),
        )


# -------------------------------------------------------- 1. XML-RPC calls/s
def no_verify() -> ssl.SSLContext:
    """A client context that does not verify (the bridges sign with their own CA)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _TimedTransport(xmlrpc.client.Transport):
    """ServerProxy's HTTP transport with a socket timeout (it has none of its own)."""

    def make_connection(self, host: Any) -> Any:
        connection = super().make_connection(host)
        connection.timeout = REQUEST_TIMEOUT_S
        return connection


class _TimedSafeTransport(xmlrpc.client.SafeTransport):
    def make_connection(self, host: Any) -> Any:
        connection = super().make_connection(host)
        connection.timeout = REQUEST_TIMEOUT_S
        return connection


def rpc_url(ip: str, scheme: str) -> str:
    port = DEFAULT_HTTPS_PORT if scheme == "https" else DEFAULT_HTTP_PORT
    return f"{scheme}://{ip}:{port}/RPC2"


def auth_params(password: str = BRIDGE_PASSWORD) -> dict[str, str]:
    return {"authenticationUser": BRIDGE_USER, "authenticationPassword": password}


@dataclass(slots=True)
class RpcRound:
    kind: str
    scheme: str
    client: str
    calls: int
    elapsed_s: float
    outcomes: Counter[str]

    @property
    def ok(self) -> bool:
        return self.outcomes.get("result", 0) == self.calls

    @property
    def per_s(self) -> float:
        return self.calls / self.elapsed_s if self.elapsed_s > 0 else math.nan


async def drive_aiohttp(
    session: aiohttp.ClientSession, url: str, n: int, concurrency: int, password: str
) -> tuple[float, Counter[str]]:
    """`n` device.query calls, at most `concurrency` in flight; (seconds, outcomes)."""
    outcomes: Counter[str] = Counter()
    headers = {"Content-Type": CONTENT_TYPE}
    params = auth_params(password)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            next_index += 1
            try:
                body = encode_call("device.query", params)
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                    if response.status != 200:
                        outcomes[f"http {response.status}"] += 1
                        continue
                decode_result(answer)
                outcomes["result"] += 1
            except BridgeFault as fault:
                outcomes[f"fault {fault.code}"] += 1
            except RemoteProtocolError:
                outcomes["not XML-RPC"] += 1
            except (aiohttp.ClientError, OSError, TimeoutError):
                outcomes["no answer"] += 1

    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(min(concurrency, n)))), ROUND_LIMIT_S
    )
    return time.perf_counter() - started, outcomes


def drive_serverproxy(url: str, n: int, password: str) -> tuple[float, Counter[str]]:
    """`n` device.query calls one after another through one `ServerProxy` (blocking;
    stops early, with the calls not made counted "not made", after `ROUND_LIMIT_S`)."""
    outcomes: Counter[str] = Counter()
    transport = (
        _TimedSafeTransport(context=no_verify()) if url.startswith("https:") else _TimedTransport()
    )
    params = auth_params(password)
    started = time.perf_counter()
    with xmlrpc.client.ServerProxy(url, transport=transport) as proxy:
        for index in range(n):
            if time.perf_counter() - started > ROUND_LIMIT_S:
                outcomes["not made"] += n - index
                break
            try:
                proxy.device.query(params)
                outcomes["result"] += 1
            except xmlrpc.client.Fault as fault:
                outcomes[f"fault {fault.faultCode}"] += 1
            except xmlrpc.client.ProtocolError as exc:
                outcomes[f"http {exc.errcode}"] += 1
            except (OSError, xmlrpc.client.ResponseError):
                outcomes["no answer"] += 1
    return time.perf_counter() - started, outcomes


async def device_query(
    session: aiohttp.ClientSession, url: str, password: str = BRIDGE_PASSWORD
) -> dict[str, Any]:
    async with session.post(
        url, data=encode_call("device.query", auth_params(password)), ssl=False
    ) as response:
        return decode_result(await response.read())


async def measure_xmlrpc(
    ips: dict[str, str], params: BridgeParams, password: str = BRIDGE_PASSWORD
) -> dict[str, Any]:
    """Both clients against each bridge (kind -> IP to reach it at) over each scheme."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    series = [(kind, scheme) for kind in ips for scheme in SCHEMES]
    sessions: dict[tuple[str, str], aiohttp.ClientSession] = {}
    device: dict[str, dict[str, Any]] = {}
    rounds: list[RpcRound] = []
    warmup: dict[str, dict[str, int]] = {}
    try:
        for kind, scheme in series:
            sessions[kind, scheme] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=params.concurrency,
                    limit_per_host=params.concurrency,
                    ssl=no_verify() if scheme == "https" else False,
                ),
                timeout=timeout,
            )
        for kind, ip in ips.items():
            # what each bridge is, checked once outside the timing (a fault raises)
            info = await device_query(sessions[kind, "http"], rpc_url(ip, "http"), password)
            device[kind] = {
                key: info.get(key)
                for key in ("model", "softwareVersion", "serial", "totalVideoPorts")
            }

        async def one_round(kind: str, scheme: str, client: str, n: int) -> RpcRound:
            url = rpc_url(ips[kind], scheme)
            if client == "aiohttp":
                elapsed, outcomes = await drive_aiohttp(
                    sessions[kind, scheme], url, n, params.concurrency, password
                )
            else:
                elapsed, outcomes = await asyncio.to_thread(drive_serverproxy, url, n, password)
            return RpcRound(kind, scheme, client, n, elapsed, outcomes)

        for kind, scheme in series:
            for client in CLIENTS:
                done = await one_round(kind, scheme, client, params.rpc_warmup)
                warmup[f"{kind} {scheme} {client}"] = dict(done.outcomes)
        for _ in range(params.rpc_pairs):
            for kind, scheme in series:
                for client in CLIENTS:
                    rounds.append(await one_round(kind, scheme, client, params.rpc_calls))
    finally:
        for session in sessions.values():
            await session.close()
    return {"device": device, "rounds": rounds, "warmup_outcomes": warmup}


def xmlrpc_summary(rounds: list[RpcRound]) -> dict[str, Any]:
    """(kind, scheme, client) -> calls/s over all its rounds (NaN if any round had an
    answer that is not a result); ratios aiohttp / serverproxy."""
    per_s: dict[str, float] = {}
    for kind, scheme, client in {(r.kind, r.scheme, r.client) for r in rounds}:
        mine = [r for r in rounds if (r.kind, r.scheme, r.client) == (kind, scheme, client)]
        ok = all(r.ok for r in mine)
        per_s[f"{kind} {scheme} {client}"] = (
            sum(r.calls for r in mine) / sum(r.elapsed_s for r in mine) if ok else math.nan
        )
    ratios = {}
    for key, value in per_s.items():
        kind, scheme, client = key.split()
        if client == "aiohttp":
            reference = per_s.get(f"{kind} {scheme} serverproxy", math.nan)
            ratios[f"{kind} {scheme}"] = value / reference if reference > 0 else math.nan
    return {
        "per_s": dict(sorted(per_s.items())),
        "ratios": dict(sorted(ratios.items())),
        "rounds": [
            {
                "series": f"{r.kind} {r.scheme} {r.client}",
                "calls": r.calls,
                "elapsed_s": r.elapsed_s,
                "per_s": r.per_s,
                "outcomes": dict(sorted(r.outcomes.items())),
            }
            for r in rounds
        ],
    }


# ---------------------------------------------------- 2. participants placed/s
async def configure_conferences(peer: Node, addresses: dict[str, str]) -> None:
    """Passwords off the factory default (admin, then root), then the bridges, pools,
    preferences, templates and aliases (G-P3, G-B1, G-R8)."""
    await change_passwords(peer)
    for kind in ("ts", "mcu"):
        bridge = {
            **BRIDGE_ENTRIES[kind],
            "address": addresses[kind],
            "username": BRIDGE_USER,
            "password": BRIDGE_PASSWORD,
        }
        await peer.call("POST", "/api/v1/conference/bridges", bridge, ok=201)
    for section, bodies in (
        ("pools", POOLS),
        ("preferences", PREFERENCES),
        ("templates", TEMPLATES),
        ("aliases", ALIASES),
    ):
        for body in bodies:
            await peer.call("POST", f"/api/v1/conference/{section}", body, ok=201)

    async def bridges_active() -> bool:
        answer = await peer.call("GET", "/api/v1/conference/bridges")
        texts = [str(b.get("status", {}).get("text", "")) for b in answer["bridges"]]
        return len(texts) == len(BRIDGE_ENTRIES) and all(t.startswith("Active") for t in texts)

    await poll_until(bridges_active, READY_LIMIT_S, "the peer seeing both bridges Active")


async def hang_up_all(vcs: Node, call_ids: list[str]) -> Counter[int]:
    """DELETE each call, one after another; statuses (200 hung up, 404 not up)."""
    statuses: Counter[int] = Counter()
    for call_id in call_ids:
        try:
            await vcs.call("DELETE", f"/api/v1/calls/{call_id}")
            statuses[200] += 1
        except RuntimeError:
            statuses[404] += 1
    return statuses


async def warm_up_calls(vcs: Node) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    ids = []
    for n in range(WARMUP_FIRST, WARMUP_FIRST + CALL_WARMUP):
        body = {"source": "bench@example.com", "destination": WARMUP_DESTINATION.format(n=n)}
        result = await vcs.call("POST", "/api/v1/calls", body)
        outcomes[result["outcome"]] += 1
        if result["outcome"] == "connected":
            ids.append(result["call_id"])
    hung_up = await hang_up_all(vcs, ids)
    return {"outcomes": dict(outcomes), "hang_ups": dict(hung_up)}


async def run_round(
    vcs: Node,
    session: aiohttp.ClientSession,
    rpc_urls: dict[str, str],
    index: int,
    calls: int,
    rate: float,
) -> dict[str, Any]:
    """One call load of `calls` calls to `CONFERENCES_PER_ROUND` new conferences; what
    the VCS recorded of it, what the bridges say is in use; then every call hung up."""
    low = index * CONFERENCES_PER_ROUND + 1
    aliases = f"meet.{{{low}-{low + CONFERENCES_PER_ROUND - 1}}}@example.com"
    before = (await vcs.call("GET", "/api/v1/calls"))["stats"]
    used_before = {
        kind: int((await device_query(session, url)).get("usedVideoPorts", 0))
        for kind, url in rpc_urls.items()
    }
    body = {
        "rate": rate,
        "duration_s": calls / rate,
        "aliases": aliases,
        "source": "load@example.com",
        "hold_s": 0,
    }
    sent = time.perf_counter()
    load = await vcs.call("POST", "/api/v1/calls/load", body, ok=202)
    if load["total"] != calls:
        raise RuntimeError(f"the VCS plans {load['total']} calls, not {calls}: {load}")
    load_path = f"/api/v1/calls/load/{load['id']}"
    finished_in_time = await await_load(vcs, load_path, calls / rate + LOAD_GRACE_S, LOAD_POLL_S)
    client_s = time.perf_counter() - sent
    answer = await vcs.call("GET", "/api/v1/calls")
    used_after = {
        kind: int((await device_query(session, url)).get("usedVideoPorts", 0))
        for kind, url in rpc_urls.items()
    }
    mine = calls_since(answer, before)
    connected = [c for c in mine if c["outcome"] == "connected"]
    starts = [float(c["started_s"]) for c in mine]
    ends = [float(c["started_s"]) + float(c["setup_ms"]) / 1000.0 for c in mine]
    not_connected: Counter[str] = Counter(
        f"{c['outcome']} {c.get('status')}: {str(c.get('reason', ''))[:200]}"
        for c in mine
        if c["outcome"] != "connected"
    )
    hung_up = await hang_up_all(vcs, [c["call_id"] for c in connected])
    return {
        "aliases": aliases,
        "calls": calls,
        "recorded": len(mine),
        "finished_in_time": finished_in_time,
        "connected": len(connected),
        "wall_s": max(ends) - min(starts) if mine else math.nan,
        "client_s": client_s,
        "setup_ms": [float(c["setup_ms"]) for c in connected],
        "by_bridge_address": dict(Counter(c.get("bridge", "") for c in connected)),
        "ports_used_by_round": {k: used_after[k] - used_before[k] for k in rpc_urls},
        "not_connected": dict(not_connected.most_common(NOT_CONNECTED_SHOWN)),
        "hang_ups": dict(hung_up),
    }


# -------------------------------------------------------------------- a run
async def measure(params: BridgeParams) -> dict[str, Any]:
    topology = load_topology(DEFAULT_TOPOLOGY)
    conductor = next(h for h in topology.hosts if h.role == "conductor")
    vcs_host = next(h for h in topology.hosts if h.role == "vcs")
    bridge_hosts = {ROLE_KINDS[h.role]: h for h in topology.hosts if h.role in ROLE_KINDS}
    if set(bridge_hosts) != set(KINDS):
        raise RuntimeError(f"the default topology has bridges {sorted(bridge_hosts)}")
    probe = {h.name: f"https://{h.ip}:{PEER_PORT}/" for h in topology.hosts}
    busy = lab_already_there(probe)
    if busy:
        return {"skipped": busy}
    notes: list[str] = []
    data: dict[str, Any] = {}
    clock = PhaseClock()
    phase = clock.phase
    async with temporary_lab("tplab-bench-bridges-", notes) as state_dir:
        await lab_up(state_dir)
        phase("tplab up -d")
        backend, started = lab_hosts(state_dir)
        missing = [h.name for h in (vcs_host, *bridge_hosts.values()) if h.name not in started]
        if missing:
            raise RuntimeError(f"the supervisor did not start {', '.join(missing)}")
        binds = {kind: bind_address(h.ip, backend) for kind, h in bridge_hosts.items()}
        data["rpc_targets"] = {kind: rpc_url(ip, "http") for kind, ip in binds.items()}
        rpc = await measure_xmlrpc(binds, params)
        data["device"] = rpc["device"]
        data["xmlrpc"] = xmlrpc_summary(rpc["rounds"])
        data["xmlrpc"]["warmup_outcomes"] = rpc["warmup_outcomes"]
        phase("XML-RPC calls/s")
        ports = {kind: int(d.get("totalVideoPorts") or 0) for kind, d in data["device"].items()}
        calls = min(params.participants, *ports.values())
        if calls < params.participants:
            notes.append(
                f"{calls} calls a round, not {params.participants}: the smaller bridge has "
                f"{min(ports.values())} ports ({ports})"
            )
        data["calls_per_round"] = calls
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        ) as session:
            vcs = Node.factory_admin(session, vcs_host.name, vcs_host.ip)
            peer = Node.factory_admin(session, conductor.name, conductor.ip)
            await configure_conferences(peer, {k: h.ip for k, h in bridge_hosts.items()})
            phase("peer configuration")
            await configure_vcs(vcs, [conductor.ip])
            phase("VCS configuration")
            data["warmup_calls"] = await warm_up_calls(vcs)
            http_urls = {kind: rpc_url(ip, "http") for kind, ip in binds.items()}
            data["rounds"] = []
            for index in range(params.rounds):
                data["rounds"].append(
                    await run_round(vcs, session, http_urls, index, calls, params.load_rate)
                )
            phase("call loads")
        names = {h.ip: kind for kind, h in bridge_hosts.items()}
        for one in data["rounds"]:
            one["by_bridge"] = {
                names.get(address, address): count
                for address, count in one.pop("by_bridge_address").items()
            }
    phase("tplab down")
    data["notes"] = notes
    data["phases_s"] = clock.phases
    return data


# ------------------------------------------------------------------ figures
def placement_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    connected = sum(r["connected"] for r in rounds)
    wall_s = sum(r["wall_s"] for r in rounds if math.isfinite(r["wall_s"]))
    setup = [ms for r in rounds for ms in r["setup_ms"]]
    by_bridge: Counter[str] = Counter()
    ports_used: Counter[str] = Counter()
    for r in rounds:
        by_bridge.update(r["by_bridge"])
        ports_used.update(r["ports_used_by_round"])
    return {
        "calls": sum(r["calls"] for r in rounds),
        "connected": connected,
        "wall_s": wall_s,
        "per_s": connected / wall_s if wall_s > 0 else math.nan,
        "setup_ms": setup,
        "by_bridge": {kind: by_bridge.get(kind, 0) for kind in KINDS},
        "ports_used": {kind: ports_used.get(kind, 0) for kind in KINDS},
        "per_round": [
            {
                "aliases": r["aliases"],
                "connected": r["connected"],
                "wall_s": r["wall_s"],
                "per_s": r["connected"] / r["wall_s"] if r["wall_s"] > 0 else math.nan,
                "client_s": r["client_s"],
                "by_bridge": r["by_bridge"],
                "ports_used": r["ports_used_by_round"],
                "not_connected": r["not_connected"],
                "hang_ups": r["hang_ups"],
            }
            for r in rounds
        ],
    }


KIND_TEXT = {"mcu": "TelePresence MCU", "ts": "TelePresence Server"}


def figures(data: dict[str, Any], params: BridgeParams) -> list[Figure]:
    rpc = data.get("xmlrpc", {})
    per_s = rpc.get("per_s", {})
    ratios = rpc.get("ratios", {})
    rpc_method = (
        "device.query (admin account) at the bridge process's bind address (not through the "
        "lab's relay), HTTP 8080 or HTTPS 8443. aiohttp: one session per bridge and scheme, "
        f"keep-alive, at most {params.concurrency} calls in flight, bodies by "
        "bridges.wire.xmlrpc.encode_call, answers read by decode_result. serverproxy: "
        "xmlrpc.client.ServerProxy in one thread, sequential, keep-alive. Rounds of "
        f"{params.rpc_calls} calls alternate aiohttp/serverproxy per bridge and scheme, "
        f"{params.rpc_pairs} of each after {params.rpc_warmup} warm-up calls each; calls/s "
        "= calls / wall time over all of a client's rounds. Only results count (a fault or "
        "an HTTP error makes the figure NaN). The client runs on the same machine"
    )
    out: list[Figure] = []
    for kind in KINDS:
        device = data.get("device", {}).get(kind, {})
        rounds = [r for r in rpc.get("rounds", []) if r["series"].startswith(kind + " ")]
        summary = (
            f"x{ratios.get(f'{kind} http', math.nan):.2f} of ServerProxy "
            f"({per_s.get(f'{kind} http serverproxy', math.nan):,.0f}/s)"
        )
        out += [
            Figure(
                f"xmlrpc_calls_per_s_{kind}",
                float(per_s.get(f"{kind} http aiohttp", math.nan)),
                "calls/s",
                f"device.query calls/s answered by the {KIND_TEXT[kind]} process over HTTP "
                f"(aiohttp client, {params.concurrency} in flight)",
                rpc_method,
                None,
                {"summary": summary, "device": device, "rounds": rounds},
            ),
            Figure(
                f"xmlrpc_calls_per_s_{kind}_serverproxy",
                float(per_s.get(f"{kind} http serverproxy", math.nan)),
                "calls/s",
                f"device.query calls/s of the {KIND_TEXT[kind]} over HTTP through Python's "
                "xmlrpc.client.ServerProxy, sequential (the reference, same run)",
                rpc_method,
                None,
                {},
            ),
            Figure(
                f"xmlrpc_ratio_{kind}",
                float(ratios.get(f"{kind} http", math.nan)),
                "ratio",
                f"{KIND_TEXT[kind]} over HTTP: aiohttp client's calls/s over ServerProxy's",
                rpc_method,
                None,
                {"summary": f"HTTPS: x{ratios.get(f'{kind} https', math.nan):.2f}"},
            ),
            Figure(
                f"xmlrpc_calls_per_s_{kind}_https",
                float(per_s.get(f"{kind} https aiohttp", math.nan)),
                "calls/s",
                f"device.query calls/s answered by the {KIND_TEXT[kind]} process over HTTPS "
                f"(aiohttp client, {params.concurrency} in flight)",
                rpc_method,
                None,
                {
                    "summary": (
                        f"x{ratios.get(f'{kind} https', math.nan):.2f} of ServerProxy "
                        f"({per_s.get(f'{kind} https serverproxy', math.nan):,.0f}/s)"
                    ),
                    "ratio": ratios.get(f"{kind} https", math.nan),
                },
            ),
            Figure(
                f"xmlrpc_calls_per_s_{kind}_https_serverproxy",
                float(per_s.get(f"{kind} https serverproxy", math.nan)),
                "calls/s",
                f"device.query calls/s of the {KIND_TEXT[kind]} over HTTPS through "
                "xmlrpc.client.ServerProxy, sequential (the reference, same run)",
                rpc_method,
                None,
                {},
            ),
        ]
    placed = placement_summary(data.get("rounds", []))
    calls = data.get("calls_per_round", params.participants)
    setup = placed["setup_ms"]
    place_method = (
        f"{params.rounds} call loads on the VCS (POST /api/v1/calls/load, hold_s 0), each "
        f"of {calls} calls offered at {params.load_rate:g} calls/s to "
        f"{CONFERENCES_PER_ROUND} new conferences (round r: meet.{{20r+1-20r+20}}@example.com"
        "; odd N: template TS first, even N: MCU first); each call: VCS -> policy request "
        "to conductor-initial (HTTPS through the lab's relay) -> conference created or "
        "joined on a bridge (XML-RPC) -> CPL redirect -> the VCS dials the bridge (tplab's "
        "signalling on 5060). From the VCS's recent calls: connected calls / wall time, the "
        "wall time of a round from the start of its first call to the end of its last "
        "(started_s + setup_ms), summed over rounds; all calls of a round are hung up "
        "before the next"
    )
    by_bridge = placed["by_bridge"]
    bridge_summary = ", ".join(f"{k} {v}" for k, v in by_bridge.items())
    out += [
        Figure(
            "participants_placed_per_s",
            float(placed["per_s"]),
            "participants/s",
            "participants placed (calls connected to a conference on a bridge) per second "
            "through VCS -> Conductor -> bridge",
            place_method,
            None,
            {
                "summary": (
                    f"{placed['connected']}/{placed['calls']} connected in "
                    f"{placed['wall_s']:.2f} s; {bridge_summary}"
                ),
                "offered_rate": params.load_rate,
                "connected": placed["connected"],
                "calls": placed["calls"],
                "wall_s": placed["wall_s"],
                "rounds": placed["per_round"],
                "warmup_calls": data.get("warmup_calls"),
            },
        ),
        Figure(
            "participant_setup_ms_p50",
            quantile(setup, 0.5),
            "ms",
            "setup of a participant's call (VCS's setup_ms: dial to the bridge's answer), median",
            place_method,
            None,
            {"summary": f"n={len(setup)}", "samples": len(setup)},
        ),
        Figure(
            "participant_setup_ms_p99",
            quantile(setup, 0.99),
            "ms",
            "setup of a participant's call (VCS's setup_ms: dial to the bridge's answer), p99",
            place_method,
            None,
            {"summary": f"max {max(setup, default=math.nan):.1f} ms", "samples": len(setup)},
        ),
    ]
    for kind in KINDS:
        out.append(
            Figure(
                f"participants_on_{kind}",
                float(by_bridge.get(kind, 0)) if data.get("rounds") else math.nan,
                "participants",
                f"participants of the loads that landed on the {KIND_TEXT[kind]}",
                place_method + "; the bridge each connected call names, checked against the "
                "ports the bridge's device.query says each round took",
                None,
                {
                    "summary": f"the bridge counted {placed['ports_used'][kind]}",
                    "ports_used_by_the_loads": placed["ports_used"][kind],
                    "ports": data.get("device", {}).get(kind, {}).get("totalVideoPorts"),
                },
            )
        )
    return out


@bench_group("bridges", "bridges: XML-RPC calls/s vs ServerProxy, participants placed/s")
def run_bridge_bench(options: BenchOptions) -> GroupResult:
    params = BridgeParams.scaled(options.scale)
    result = GroupResult(
        group="bridges",
        params=lab_params(dataclasses.asdict(params)),
    )
    data = asyncio.run(measure(params))
    add_run_notes(result, data)
    bad = [
        r
        for r in data.get("xmlrpc", {}).get("rounds", [])
        if r["outcomes"] != {"result": r["calls"]}
    ]
    if bad:
        result.notes.append(f"XML-RPC rounds with answers other than results: {bad}")
    for index, one in enumerate(data.get("rounds", [])):
        trouble = []
        if not one["finished_in_time"]:
            trouble.append(f"not finished {LOAD_GRACE_S:g} s after its end")
        if one["recorded"] != one["calls"] or one["connected"] != one["calls"]:
            trouble.append(
                f"{one['connected']} of {one['calls']} connected ({one['recorded']} recorded): "
                f"{one['not_connected']}"
            )
        landed = {kind: one["by_bridge"].get(kind, 0) for kind in one["ports_used_by_round"]}
        if landed != one["ports_used_by_round"] or sum(landed.values()) != one["connected"]:
            trouble.append(
                f"the bridges count {one['ports_used_by_round']} ports taken, the VCS "
                f"{one['by_bridge']} calls"
            )
        if trouble:
            result.notes.append(f"call load {index + 1}: " + "; ".join(trouble))
    placed = placement_summary(data.get("rounds", []))
    if math.isfinite(placed["per_s"]) and placed["per_s"] >= 0.9 * params.load_rate:
        result.notes.append(
            f"participants_placed_per_s is within 10% of the offered rate "
            f"({params.load_rate:g}/s): it measures the load, not the path"
        )
    with contextlib.suppress(KeyError):
        result.params["calls_per_round"] = data["calls_per_round"]
    result.figures = rounded(figures(data, params))
    return result
