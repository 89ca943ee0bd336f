"""The `lab` benchmark group: how fast `tplab up -d` brings the default lab up, and how
much memory a Conductor peer process takes.

Measurements (every run and every wait is bounded):

1. up to answering: wall time from starting `tplab up -d` (default topology, proxy
   backend, a fresh temporary state dir, a free control port) until all three
   Conductor peers answer HTTPS `GET /login` with 200, probed from this process every
   `PROBE_INTERVAL_S`, independently of the CLI. "cold": a new state dir (each peer
   makes its database and certificates); "warm": `tplab up -d` again on the same state
   dir after `tplab down` (what a second `make run` does). Median of the runs.
2. detach return: until `tplab up -d` returns (it waits for the supervisor to see every
   peer answer, then prints the table).
3. RSS: VmRSS of each peer process (/proc/PID/status) once the lab is up, each peer
   has answered one authenticated API request (a password check) and `SETTLE_S`
   passed, and of the supervisor; in MiB (KiB / 1024, the unit ps and top call MB;
   the 10^6-byte figure is in the details).

Every run ends with `tplab down`; the PIDs lab.json recorded are then checked to be
gone, and any left is killed by PID (and noted). The default topology uses the
addresses 127.1.2.x: when a lab already answers there, the group records NaN figures
and a note instead of running.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from emulator.bench import BenchOptions, Figure, GroupResult, Target, bench_group
from emulator.bench.labkit import (
    add_run_notes,
    free_port,
    lab_already_there,
    lab_params,
    rounded,
    tear_down_lab,
    tplab_argv,
)
from emulator.paths import DEFAULT_TOPOLOGY, REPO_ROOT
from emulator.supervisor import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    PEER_PORT,
    read_lab,
)
from netsim.topology import load_topology

UP_TARGET_S = 2.0
RSS_TARGET_MIB = 80.0
RUNS = 3
PROBE_INTERVAL_S = 0.02
PROBE_TIMEOUT_S = 2.0
RUN_LIMIT_S = 90.0
SETTLE_S = 0.5


def rss_mib(pid: int) -> float:
    """Resident set size of `pid` in MiB (VmRSS, KiB / 1024, as ps and top show it);
    NaN when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def conductor_urls() -> dict[str, str]:
    topology = load_topology(DEFAULT_TOPOLOGY)
    return {h.name: f"https://{h.ip}:{PEER_PORT}/" for h in topology.hosts if h.role == "conductor"}


async def _probe_until_up(session: aiohttp.ClientSession, url: str, t0: float) -> float:
    while True:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(url + "login", ssl=False, allow_redirects=False) as response:
                await response.read()
                if response.status == 200:
                    return time.perf_counter() - t0
        await asyncio.sleep(PROBE_INTERVAL_S)


async def one_run(state_dir: Path, urls: dict[str, str]) -> dict[str, Any]:
    """`tplab up -d`, time to every peer answering, RSS, then always `tplab down`."""
    control = f"127.0.0.1:{free_port()}"
    argv = [*tplab_argv(), "up", "-d", "--state-dir", str(state_dir), "--control", control]
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    result: dict[str, Any] = {}
    notes: list[str] = []
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), timeout=timeout
        ) as session:
            t0 = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=REPO_ROOT,
            )
            probes = [asyncio.create_task(_probe_until_up(session, u, t0)) for u in urls.values()]
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), RUN_LIMIT_S)
                returned_s = time.perf_counter() - t0
                if proc.returncode != 0:
                    raise RuntimeError(f"tplab up -d failed ({proc.returncode}):\n{out.decode()}")
                answered = await asyncio.wait_for(asyncio.gather(*probes), RUN_LIMIT_S)
            finally:
                for task in probes:
                    task.cancel()
                await asyncio.gather(*probes, return_exceptions=True)
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            # what an admin's first API call costs each peer (a password check), then settle
            auth = {"Authorization": aiohttp.encode_basic_auth(DEFAULT_USER, DEFAULT_PASSWORD)}
            for url in urls.values():
                async with session.get(url + "api/v1/status/alarms", headers=auth, ssl=False) as r:
                    await r.read()
                    if r.status != 200:
                        notes.append(f"{url}api/v1/status/alarms answered {r.status}")
        await asyncio.sleep(SETTLE_S)
        lab = read_lab(state_dir) or {}
        hosts = {h["host"]: h for h in lab.get("hosts", []) if h.get("url")}
        result = {
            "up_to_answering_s": max(answered),
            "per_host_answer_s": dict(zip(urls, (round(a, 4) for a in answered), strict=True)),
            "detach_return_s": returned_s,
            "peer_rss_mib": {name: rss_mib(h["pid"]) for name, h in hosts.items()},
            "supervisor_rss_mib": rss_mib(lab["supervisor_pid"]) if lab else math.nan,
        }
    finally:
        notes.extend(await tear_down_lab(state_dir))
    result["notes"] = notes
    return result


async def measure(runs: int) -> dict[str, Any]:
    urls = conductor_urls()
    busy = lab_already_there(urls)
    if busy:
        return {"skipped": busy}
    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    for _ in range(runs):
        state_dir = Path(tempfile.mkdtemp(prefix="tplab-bench-lab-"))
        try:
            cold.append(await one_run(state_dir, urls))
            warm.append(await one_run(state_dir, urls))
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
    return {"cold": cold, "warm": warm, "hosts": list(urls)}


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def _runs_text(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + " s"


UP_METHOD = (
    "perf_counter from spawning `tplab up -d` (default topology, proxy backend, free control "
    "port) until GET /login answers 200 on every Conductor peer, probed every "
    f"{PROBE_INTERVAL_S * 1000:g} ms from this process; median of the runs"
)
RSS_METHOD = (
    "VmRSS of each peer process from /proc/PID/status, after one authenticated API request "
    f"to each and {SETTLE_S:g} s of rest "
    "in MiB (KiB / 1024, as ps and top show it; x 1.048576 for 10^6-byte MB); every peer "
    "of every run (cold and warm)"
)


def figures(data: dict[str, Any]) -> list[Figure]:
    cold, warm = data.get("cold", []), data.get("warm", [])
    cold_up = [r["up_to_answering_s"] for r in cold]
    warm_up = [r["up_to_answering_s"] for r in warm]
    returns = [r["detach_return_s"] for r in cold]
    rss = [v for r in (*cold, *warm) for v in r["peer_rss_mib"].values()]
    sup_rss = [r["supervisor_rss_mib"] for r in (*cold, *warm)]
    return [
        Figure(
            "lab_up_to_answering_cold",
            _median(cold_up),
            "s",
            "tplab up -d on a new state dir until all three Conductor peers answer HTTPS",
            UP_METHOD,
            Target("max", UP_TARGET_S),
            {
                "runs_s": cold_up,
                "per_host_s": [r["per_host_answer_s"] for r in cold],
                "summary": f"runs {_runs_text(cold_up)}",
            },
        ),
        Figure(
            "lab_up_to_answering_warm",
            _median(warm_up),
            "s",
            "tplab up -d again on the same state dir (database and certificates exist)",
            UP_METHOD,
            Target("max", UP_TARGET_S),
            {"runs_s": warm_up, "summary": f"runs {_runs_text(warm_up)}"},
        ),
        Figure(
            "lab_up_detach_return_cold",
            _median(returns),
            "s",
            "tplab up -d until the command returns (after the supervisor saw every peer answer)",
            "perf_counter from spawning `tplab up -d` until it exits; median of the cold runs",
            None,
            {"runs_s": returns, "summary": f"runs {_runs_text(returns)}"},
        ),
        Figure(
            "peer_rss_max",
            max(rss) if rss else math.nan,
            "MiB",
            "largest resident set of a Conductor peer process",
            RSS_METHOD,
            Target("max", RSS_TARGET_MIB),
            {
                "per_run": [r["peer_rss_mib"] for r in (*cold, *warm)],
                "max_mb_1e6": max(rss) * 1.048576 if rss else math.nan,
                "summary": f"{len(rss)} samples, median {_median(rss):.1f} MiB",
            },
        ),
        Figure(
            "peer_rss_median",
            _median(rss),
            "MiB",
            "median resident set of a Conductor peer process",
            RSS_METHOD,
            None,
            {"samples": len(rss)},
        ),
        Figure(
            "supervisor_rss",
            _median(sup_rss),
            "MiB",
            "resident set of the supervisor (world, proxy relay, control API)",
            "VmRSS of the supervisor process at the same moments; median",
            None,
            {"samples": sup_rss},
        ),
    ]


@bench_group("lab", "lab: tplab up -d to every Conductor peer answering, RSS per peer")
def run_lab(options: BenchOptions) -> GroupResult:
    runs = max(1, round(RUNS * options.scale))
    result = GroupResult(
        group="lab",
        params=lab_params({"runs": runs}, probe_interval_s=PROBE_INTERVAL_S, settle_s=SETTLE_S),
    )
    data = asyncio.run(measure(runs))
    add_run_notes(result, data)
    for run in (*data.get("cold", []), *data.get("warm", [])):
        result.notes += run["notes"]
    result.figures = rounded(figures(data))
    return result
