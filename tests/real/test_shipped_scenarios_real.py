"""Every shipped scenario passes in real mode (issue 7): one real process per host,
the proxy backend, real time; the same pass/fail as in the simulated world. `make
test` runs four of them (`IN_MAKE_TEST`), `make soak` every one.

Each scenario runs as `tplab scenario run FILE --mode real --subnet N --report DIR`
(the CLI a user runs), on its own addresses 127.N.x.x so several run side by side:
a real lab spends most of its time waiting for timers, so `CONCURRENCY` labs at a
time keep the suite short. Every process is started by the `tplab` child, which
stops its lab when it ends; a child that outlives its bound is killed by PID (its
session: the lab's processes with it). Reports go to test-artifacts/scenarios-real/.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from emulator.paths import REPO_ROOT
from emulator.scenario import load_scenario, shipped_scenarios
from emulator.scenario.model import Mode

#: the longest first, so that no long one starts last and runs alone at the end
LONGEST = (
    "rolling-upgrade",
    "backup-restore",
    "rolling-upgrade-skip-task-1",
    "peer-crash-failover",
    "mtu-blackhole",
)
#: run in real mode by `make test` (the others by `make soak` only, to keep `make test`
#: within its 10 minutes; every scenario's sim run is in make test): the guide's cluster
#: creation, a peer killed under calls, and the two failures that depend most on the real
#: network path (MTU, firewall). Other real tests show the rest on real processes
#: (test_cluster_processes, test_upgrade_process, test_vcs_policy, the training labs).
IN_MAKE_TEST = (
    "peer-crash-failover",
    "mtu-blackhole",
    "firewall-blocks-replication",
    "create-cluster",
)
EVERY = os.environ.get("TPLAB_REAL_SCENARIOS") == "all"
REAL = sorted(
    (
        p
        for p in shipped_scenarios()
        if Mode.REAL in load_scenario(p).modes and (EVERY or p.stem in IN_MAKE_TEST)
    ),
    key=lambda p: LONGEST.index(p.stem) if p.stem in LONGEST else len(LONGEST),
)
CONCURRENCY = 4
#: second octets of the labs' addresses (127.N.x.x), one per scenario run at a time
SUBNETS = range(60, 60 + CONCURRENCY)
LIMIT_S = 420.0
ARTIFACTS = REPO_ROOT / "test-artifacts" / "scenarios-real"


async def run_one(path: Path, subnets: asyncio.Queue[int]) -> tuple[str, int, str, dict]:
    subnet = await subnets.get()
    report = ARTIFACTS / path.stem
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "emulator.cli", "scenario", "run", str(path),
            "--mode", "real", "--subnet", str(subnet), "--report", str(report),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=REPO_ROOT, start_new_session=True,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), LIMIT_S)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)  # our child's own session
            out = b"killed: still running after the limit"
            await proc.wait()
        assert proc.returncode is not None
        result: dict = {}
        trace = report / "trace.json"
        if trace.exists():
            result = json.loads(trace.read_text())["result"]
        return path.stem, proc.returncode, out.decode(errors="replace"), result
    finally:
        subnets.put_nowait(subnet)


async def test_every_shipped_scenario_passes_in_real_mode() -> None:
    """All shipped scenarios (their headers name the checklist ids) pass with real
    processes: exit status 0, every step passed, a trace and an HTML report written."""
    subnets: asyncio.Queue[int] = asyncio.Queue()
    for subnet in SUBNETS:
        subnets.put_nowait(subnet)
    outcomes = await asyncio.gather(*(run_one(path, subnets) for path in REAL))
    failed = [
        f"{name}: exit {code}\n{out[-3000:]}"
        for name, code, out, result in outcomes
        if code != 0 or not result.get("passed")
    ]
    assert not failed, "\n\n".join(failed)
    for name, _, _, result in outcomes:
        assert result["steps_passed"] == result["steps"], name
        assert (ARTIFACTS / name / "report.html").exists()
