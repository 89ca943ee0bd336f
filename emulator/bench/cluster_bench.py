"""The `cluster` benchmark group: a cluster of three real Conductor peer processes.

The default topology is brought up with `tplab up -d` (proxy backend, a fresh
temporary state dir, a free control port) and clustered through the peers' JSON
API as the guide does it (G-P1, then G-P2 twice). Measurements (every wait is
bounded; every figure comes from HTTPS requests made by this process):

1. replication latency: a write on one peer
   (`PUT /api/v1/system/administration {"system_name": "v<N>"}`, the writer rotating
   over the three peers), then both other peers polled with `GET` on the same page
   back to back (about every `POLL_S`) until each shows the value. A sample is the
   time from the PUT's 200 answer to the later of the two first GETs showing it
   (visible on both others). Median and p99 (target p99 <= 20 ms). The time from
   sending the PUT is in the details too.
2. forming and re-forming time: from `POST /api/v1/maintenance/restart` of the
   joining peer until every peer shows every other one "Active as NAME" (the two
   joins of forming the cluster, then `RESTARTS` restarts of one peer of the formed
   cluster); for the restarts also from the restarted process answering HTTPS again,
   which is the network part: channel handshake (modp4096) plus the first HELLOs.
   The channel core handshake alone (in memory, no network; what the `channel` group
   measures) is given beside it.
3. writes/s: sequential PUTs on one peer for `WRITE_S`, writes per second, then the
   time from the last PUT's answer until all three peers hold the last value.

Every run ends with `tplab down`; the PIDs lab.json recorded are then checked to be
gone and any left is killed by PID (and noted). When a lab already answers on the
default topology's addresses, the group records NaN figures and a note instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from emulator.bench import BenchOptions, Figure, GroupResult, Target, bench_group, quantile
from emulator.bench.channel_bench import ChannelParams, measure_handshakes
from emulator.bench.labkit import (
    add_run_notes,
    lab_already_there,
    lab_params,
    lab_up,
    poll_until,
    rounded,
    temporary_lab,
)
from emulator.paths import DEFAULT_TOPOLOGY
from emulator.supervisor import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    PEER_PORT,
)
from netsim.topology import load_topology

REPLICATION_P99_TARGET_MS = 20.0
SAMPLES = 200
RESTARTS = 3
WRITE_S = 3.0
POLL_S = 0.001
STATUS_POLL_S = 0.02
REQUEST_TIMEOUT_S = 10.0
FORM_LIMIT_S = 60.0
VISIBLE_LIMIT_S = 10.0
KEY = "bench-cluster-key"
NTP = ["127.0.0.53"]


@dataclass(frozen=True, slots=True)
class ClusterParams:
    samples: int = SAMPLES
    restarts: int = RESTARTS
    write_s: float = WRITE_S

    @classmethod
    def scaled(cls, scale: float) -> ClusterParams:
        return cls(
            samples=max(5, round(SAMPLES * scale)),
            restarts=max(1, round(RESTARTS * min(1.0, scale))),
            write_s=max(0.3, WRITE_S * scale),
        )


class Peers:
    """The administrator at the three peers' JSON API (HTTPS, keep-alive, Basic auth)."""

    def __init__(self, session: aiohttp.ClientSession, ips: dict[str, str]) -> None:
        self.session = session
        self.ips = ips
        self.hosts = list(ips)

    def url(self, host: str, path: str) -> str:
        return f"https://{self.ips[host]}:{PEER_PORT}{path}"

    async def call(self, host: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(
            method, self.url(host, path), json=body, ssl=False
        ) as response:
            return response.status, await response.json()

    async def put(self, host: str, page: str, body: dict[str, Any]) -> None:
        status, answer = await self.call(host, "PUT", f"/api/v1/system/{page}", body)
        if status != 200:
            raise RuntimeError(f"PUT {page} on {host} answered {status}: {answer}")

    async def system_name(self, host: str) -> str:
        status, answer = await self.call(host, "GET", "/api/v1/system/administration")
        if status != 200:
            raise RuntimeError(f"GET administration on {host} answered {status}")
        name: str = answer["settings"]["system_name"]
        return name

    async def answers(self, host: str) -> bool:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            status, _ = await self.call(host, "GET", "/api/v1/status")
            return bool(status == 200)
        return False

    async def statuses(self, host: str) -> dict[str, str]:
        status, page = await self.call(host, "GET", "/api/v1/system/clustering")
        if status != 200:
            return {}
        settings, shown = page["settings"], page["status"]["peer_status"]
        return {
            settings[f"peer{i}"]: shown[f"clustering.peer{i}"]["text"]
            for i in (1, 2, 3)
            if settings[f"peer{i}"]
        }

    async def all_active(self, members: list[str]) -> bool:
        for host in members:
            try:
                shown = await self.statuses(host)
            except (aiohttp.ClientError, OSError, TimeoutError):
                return False
            for other in members:
                expected = "This system" if other == host else f"Active as {other}"
                if shown.get(self.ips[other]) != expected:
                    return False
        return True

    async def restart(self, host: str) -> float:
        """POST Restart; returns the perf_counter time the request was answered."""
        status, _ = await self.call(host, "POST", "/api/v1/maintenance/restart")
        if status != 202:
            raise RuntimeError(f"restart of {host} answered {status}")
        return time.perf_counter()


def fields(peers: list[str]) -> dict[str, str]:
    return {f"peer{i}": peers[i - 1] if i <= len(peers) else "" for i in (1, 2, 3)}


async def form_cluster(peers: Peers) -> list[float]:
    """G-P1 then G-P2 for each further peer; seconds from each joining peer's restart
    until every member shows every other one Active."""
    hosts = peers.hosts
    for host in hosts:
        await peers.put(host, "time", {"ntp_servers": NTP})
    initial = hosts[0]
    await peers.put(initial, "clustering", {"key": KEY, **fields([peers.ips[initial]])})
    await peers.restart(initial)
    await asyncio.sleep(0.3)  # the old process leaves first (it answers for 0.2 s more)
    await poll_until(lambda: peers.all_active([initial]), FORM_LIMIT_S, interval_s=STATUS_POLL_S)
    joins: list[float] = []
    for n in range(2, len(hosts) + 1):
        members = hosts[:n]
        peer_list = [peers.ips[h] for h in members]
        for existing in members[:-1]:
            await peers.put(existing, "clustering", fields(peer_list))
            await peers.restart(existing)
            await asyncio.sleep(0.3)
            await poll_until(
                functools.partial(peers.answers, existing), FORM_LIMIT_S, interval_s=STATUS_POLL_S
            )
        await peers.put(members[-1], "clustering", {"key": KEY, **fields(peer_list)})
        started = await peers.restart(members[-1])
        await poll_until(
            functools.partial(peers.all_active, members), FORM_LIMIT_S, interval_s=STATUS_POLL_S
        )
        joins.append(time.perf_counter() - started)
    return joins


async def reform_after_restart(peers: Peers, host: str) -> tuple[float, float]:
    """Restart one peer of the formed cluster: (restart -> all Active, process answering
    -> all Active) in seconds."""
    started = await peers.restart(host)
    await asyncio.sleep(0.3)
    await poll_until(lambda: peers.answers(host), FORM_LIMIT_S, interval_s=STATUS_POLL_S)
    answering = time.perf_counter()
    await poll_until(lambda: peers.all_active(peers.hosts), FORM_LIMIT_S, interval_s=STATUS_POLL_S)
    done = time.perf_counter()
    return done - started, done - answering


async def replication_sample(peers: Peers, writer: str, value: str) -> dict[str, Any]:
    """Write on `writer`; ms from the PUT's answer (and from sending it) until each
    other peer's GET shows the value."""
    others = [h for h in peers.hosts if h != writer]
    sent = time.perf_counter()
    await peers.put(writer, "administration", {"system_name": value})
    answered = time.perf_counter()

    async def first_seen(host: str) -> float:
        deadline = answered + VISIBLE_LIMIT_S
        while await peers.system_name(host) != value:
            if time.perf_counter() > deadline:
                return math.inf
            await asyncio.sleep(POLL_S)
        return time.perf_counter()

    seen = await asyncio.gather(*(first_seen(h) for h in others))
    return {
        "from_answer_ms": (max(seen) - answered) * 1000.0,
        "from_send_ms": (max(seen) - sent) * 1000.0,
        "put_ms": (answered - sent) * 1000.0,
        "per_peer_ms": {h: (t - answered) * 1000.0 for h, t in zip(others, seen, strict=True)},
    }


async def sustained_writes(peers: Peers, duration_s: float) -> dict[str, float]:
    """Sequential PUTs on the first peer for `duration_s`; then the time until all
    peers hold the last value."""
    writer = peers.hosts[0]
    count = 0
    started = time.perf_counter()
    value = ""
    while time.perf_counter() - started < duration_s:
        count += 1
        value = f"w{count}"
        await peers.put(writer, "administration", {"system_name": value})
    last_answer = time.perf_counter()
    elapsed = last_answer - started

    async def everywhere() -> bool:
        names = await asyncio.gather(*(peers.system_name(h) for h in peers.hosts))
        return all(name == value for name in names)

    await poll_until(everywhere, VISIBLE_LIMIT_S, interval_s=POLL_S)
    return {
        "writes": count,
        "elapsed_s": elapsed,
        "per_s": count / elapsed if elapsed > 0 else math.nan,
        "converged_ms": (time.perf_counter() - last_answer) * 1000.0,
    }


async def measure(params: ClusterParams) -> dict[str, Any]:
    topology = load_topology(DEFAULT_TOPOLOGY)
    ips = {h.name: h.ip for h in topology.hosts if h.role == "conductor"}
    busy = lab_already_there({name: f"https://{ip}:{PEER_PORT}/" for name, ip in ips.items()})
    if busy:
        return {"skipped": busy}
    notes: list[str] = []
    data: dict[str, Any] = {}
    async with temporary_lab("tplab-bench-cluster-", notes) as state_dir:
        await lab_up(state_dir)
        auth = {"Authorization": aiohttp.encode_basic_auth(DEFAULT_USER, DEFAULT_PASSWORD)}
        async with aiohttp.ClientSession(
            headers=auth, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        ) as session:
            peers = Peers(session, ips)
            data["joins_s"] = await form_cluster(peers)
            restarts = [
                await reform_after_restart(peers, peers.hosts[1 + i % 2])
                for i in range(params.restarts)
            ]
            data["restart_to_active_s"] = [r[0] for r in restarts]
            data["answering_to_active_s"] = [r[1] for r in restarts]
            for host in peers.hosts:  # warm every connection and password cache
                await peers.system_name(host)
            data["replication"] = [
                await replication_sample(peers, peers.hosts[n % 3], f"v{n}")
                for n in range(params.samples)
            ]
            data["writes"] = await sustained_writes(peers, params.write_s)
    data["notes"] = notes
    return data


def _ms_summary(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "no samples"
    lost = len(values) - len(finite)
    text = f"n={len(values)}, min {min(finite):.2f} ms, max {max(finite):.2f} ms"
    return text + (f", {lost} never visible" if lost else "")


def _s_text(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + " s" if values else "none"


REPLICATION_METHOD = (
    'PUT /api/v1/system/administration {"system_name": "v<N>"} on one peer (writer '
    "rotating), then GET of that page on both other peers back to back, "
    f"{POLL_S * 1000:g} ms apart, until each shows the value; time from the PUT's 200 to "
    "the later first sighting; HTTPS keep-alive, 3 real peer processes on loopback"
)
FORM_METHOD = (
    "perf_counter from the 202 of POST /api/v1/maintenance/restart of the joining (or "
    "restarted) peer until every peer's System > Clustering shows This system / Active "
    f"as NAME for all, polled every {STATUS_POLL_S * 1000:g} ms"
)


def figures(data: dict[str, Any], params: ClusterParams, channel_ms: list[float]) -> list[Figure]:
    samples = data.get("replication", [])
    latency = [s["from_answer_ms"] for s in samples]
    from_send = [s["from_send_ms"] for s in samples]
    put_ms = [s["put_ms"] for s in samples]
    joins = data.get("joins_s", [])
    restart = data.get("restart_to_active_s", [])
    answering = data.get("answering_to_active_s", [])
    writes = data.get("writes", {})
    median = statistics.median
    return [
        Figure(
            "replication_ms_median",
            quantile(latency, 0.5),
            "ms",
            "a write on one peer until visible through the API of both other peers, median",
            REPLICATION_METHOD,
            None,
            {
                "summary": _ms_summary(latency),
                "from_put_sent_median_ms": quantile(from_send, 0.5),
                "put_answer_median_ms": quantile(put_ms, 0.5),
            },
        ),
        Figure(
            "replication_ms_p99",
            quantile(latency, 0.99),
            "ms",
            "a write on one peer until visible through the API of both other peers, p99",
            REPLICATION_METHOD,
            Target("max", REPLICATION_P99_TARGET_MS),
            {
                "summary": _ms_summary(latency),
                "from_put_sent_p99_ms": quantile(from_send, 0.99),
                "samples": len(latency),
            },
        ),
        Figure(
            "join_to_active_s",
            median(joins) if joins else math.nan,
            "s",
            "G-P2: joining peer's Restart until all peers show each other Active, median",
            FORM_METHOD + "; the joins of the 2nd and 3rd peer",
            None,
            {"runs_s": joins, "summary": f"joins {_s_text(joins)}"},
        ),
        Figure(
            "restart_to_active_s",
            median(restart) if restart else math.nan,
            "s",
            "one peer of the formed cluster restarted until all Active again, median",
            FORM_METHOD,
            None,
            {"runs_s": restart, "summary": f"runs {_s_text(restart)}"},
        ),
        Figure(
            "answering_to_active_s",
            median(answering) if answering else math.nan,
            "s",
            "restarted peer answering HTTPS until all Active (handshake + first HELLOs), median",
            "as restart_to_active_s, from the restarted process's first 200 on GET "
            "/api/v1/status; the channel handshake over the proxied network is part of it",
            None,
            {"runs_s": answering, "summary": f"runs {_s_text(answering)}"},
        ),
        Figure(
            "channel_core_handshake_ms_median",
            quantile(channel_ms, 0.5),
            "ms",
            "the channel core's handshake alone (in memory, as the channel group), median",
            "emulator.bench.channel_bench.measure_handshakes: two in-memory PeerChannels, "
            "M1..M4 with modp4096, no network",
            None,
            {"summary": _ms_summary(channel_ms)},
        ),
        Figure(
            "writes_per_s",
            float(writes.get("per_s", math.nan)),
            "msg/s",
            "sequential PUTs on one peer of the cluster, per second",
            f"PUT /api/v1/system/administration one after another for {params.write_s:g} s",
            None,
            {
                "summary": f"{writes.get('writes', 0)} writes",
                "writes": writes.get("writes", 0),
            },
        ),
        Figure(
            "writes_converged_ms",
            float(writes.get("converged_ms", math.nan)),
            "ms",
            "after the sustained writes: last PUT answered until all peers hold its value",
            "GET on all three peers together, repeated until all show the last value",
            None,
            {},
        ),
    ]


@bench_group("cluster", "cluster: replication latency, join/re-form time, writes/s (3 peers)")
def run_cluster_bench(options: BenchOptions) -> GroupResult:
    params = ClusterParams.scaled(options.scale)
    result = GroupResult(
        group="cluster",
        params=lab_params(dataclasses.asdict(params), poll_s=POLL_S),
    )
    data = asyncio.run(measure(params))
    add_run_notes(result, data)
    channel_ms = measure_handshakes(ChannelParams.scaled(options.scale), options.seed)
    result.figures = rounded(figures(data, params, channel_ms))
    return result
