"""Benchmark group `scenarios`: the shipped scenarios in both worlds, and a simulated hour.

Figures:
- `sim_wall_<name>` / `real_wall_<name>`: wall time of each shipped scenario in
  sim mode and in real mode (`run_scenario`, lab start and stop included), with
  its lab-time duration and result in the details;
- `speedup_peer_crash_failover`: real wall / sim wall of `peer-crash-failover`,
  measured in the same run (target >= 1: the simulated world is faster);
- `sim_hour_wall`: wall time of one simulated hour of the default lab (3 peers,
  VCS, 2 bridges) under 1,000 calls with 20 faults (peer crashes, partitions,
  latency, blocked replication, clock skew), target <= 10 s;
- a screenshot of the hour's report, `bench-results/scenario-report.png`, and
  its report and trace beside it.

Every run is bounded: real scenarios by the runner's own waits, the sim by its
virtual time. `scale` < 1 (the smoke test) runs create-cluster in sim mode only
and a shorter "hour", and starts no real lab.
"""

from __future__ import annotations

import time
from typing import Any

from emulator.bench import DEFAULT_OUT_DIR, BenchOptions, Figure, GroupResult, Target, bench_group
from emulator.paths import DEFAULT_TOPOLOGY, SCENARIOS_DIR
from emulator.scenario import load_scenario, shipped_scenarios
from emulator.scenario.loader import parse_steps
from emulator.scenario.model import Mode, Scenario, Step, Timing
from emulator.scenario.runner import run_scenario
from emulator.scenario.trace import Trace
from netsim.topology import load_topology

HOUR_S = 3600.0
HOUR_CALLS = 1000
HOUR_FAULTS = 20
HOUR_TARGET_S = 10.0
#: real labs of the bench run one at a time, on their own addresses
REAL_SUBNET = 90

#: the faults of the hour, cycled: (inject step, recover step), each a scenario step
_LINK = {"src": "conductor-initial", "dst": "conductor-3", "both": True}
_REST = ["conductor-initial", "conductor-2", "vcs", "telepresence-server", "mcu"]
_SYNC = {"proto": "udp", "ports": "4369-4380"}
FAULTS: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (
    ({"kill": "conductor-2"}, {"start": "conductor-2"}),
    ({"impair": {**_LINK, "latency_ms": 20}}, {"impair": {**_LINK, "latency_ms": 0}}),
    ({"partition": [["conductor-3"], _REST]}, {"heal": {}}),
    ({"firewall": {**_SYNC, "action": "drop"}}, {"firewall": {**_SYNC, "action": "remove"}}),
    (
        {"clock": {"host": "conductor-2", "offset_s": 30}},
        {"clock": {"host": "conductor-2", "offset_s": 0}},
    ),
    ({"kill": "conductor-initial"}, {"start": "conductor-initial"}),
)


def hour_steps(hour_s: float, calls: int, faults: int) -> list[dict[str, Any]]:
    """The simulated hour: the cluster, conferencing and the VCS set up, a call load
    spread over the hour, and `faults` faults at even intervals, each undone 30 s later."""
    steps: list[dict[str, Any]] = [
        {"include": "steps/cluster-of-three.yaml"},
        {"include": "steps/conferencing.yaml"},
        {"include": "steps/vcs-policy.yaml"},
        {
            "name": f"{calls} calls over the hour",
            "load": {
                "rate": calls / hour_s,
                "duration_s": hour_s,
                "aliases": "meet.{1-40}@example.com",
                "hold_s": 60,
            },
        },
    ]
    gap_s = hour_s / (faults + 1)
    for n in range(faults):
        inject, recover = FAULTS[n % len(FAULTS)]
        steps += [
            {"sleep_s": gap_s - 30},
            {"name": f"fault {n + 1}", **inject},
            {"sleep_s": 30},
            {"name": f"fault {n + 1} undone", **recover},
        ]
    steps.append({"sleep_s": gap_s})
    return steps


def hour_scenario(hour_s: float, calls: int, faults: int) -> Scenario:
    topology = load_topology(DEFAULT_TOPOLOGY)
    steps: tuple[Step, ...] = parse_steps(
        hour_steps(hour_s, calls, faults), topology, source="<hour>", base=SCENARIOS_DIR
    )
    return Scenario(
        name="simulated-hour",
        description=f"the default lab for {hour_s:g} s: {calls} calls, {faults} faults",
        source="<bench>",
        topology_file=DEFAULT_TOPOLOGY,
        topology=topology,
        steps=steps,
        seed=1,
        timing=Timing(vcs_poll_s=60, vcs_request_timeout_s=5, bridge_poll_s=5),
    )


def _calls(trace: Trace) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in trace.events:
        if event["kind"] == "load_finished":
            for outcome, count in event["by_outcome"].items():
                counts[outcome] = counts.get(outcome, 0) + int(count)
    return counts


def _timed(scenario: Scenario, mode: Mode, **kwargs: Any) -> tuple[float, Trace]:
    started = time.perf_counter()
    trace = run_scenario(scenario, mode, **kwargs)
    return time.perf_counter() - started, trace


def _run_figure(name: str, mode: Mode, wall_s: float, trace: Trace) -> Figure:
    result = trace.result
    return Figure(
        f"{mode.value}_wall_{name.replace('-', '_')}",
        wall_s,
        "s",
        f"wall time of scenario {name} in {mode.value} mode",
        "run_scenario: lab opened, every step run, lab closed; time.perf_counter",
        None,
        {
            "passed": result.passed,
            "steps": result.steps,
            "lab_time_s": round(result.duration_s, 1),
            "message": result.message,
        },
    )


@bench_group("scenarios", "scenarios: shipped scenarios sim vs real, a simulated hour")
def run_scenarios(options: BenchOptions) -> GroupResult:
    out_dir = DEFAULT_OUT_DIR
    full = options.scale >= 1.0
    result = GroupResult(group="scenarios")
    walls: dict[tuple[str, Mode], float] = {}
    paths = shipped_scenarios() if full else [SCENARIOS_DIR / "create-cluster.yaml"]
    for path in paths:
        scenario = load_scenario(path)
        for mode in (Mode.SIM, Mode.REAL) if full else (Mode.SIM,):
            if mode not in scenario.modes:
                continue
            extra = {"second_octet": REAL_SUBNET} if mode is Mode.REAL else {}
            wall_s, trace = _timed(scenario, mode, **extra)
            walls[(scenario.name, mode)] = wall_s
            result.figures.append(_run_figure(scenario.name, mode, wall_s, trace))
            if not trace.result.passed:
                result.notes.append(
                    f"{scenario.name} ({mode.value}) FAILED: {trace.result.message}"
                )
    crash = ("peer-crash-failover", Mode.SIM), ("peer-crash-failover", Mode.REAL)
    if all(key in walls for key in crash):
        sim_s, real_s = walls[crash[0]], walls[crash[1]]
        result.figures.append(
            Figure(
                "speedup_peer_crash_failover",
                real_s / sim_s,
                "x",
                "peer-crash-failover: real-mode wall time / sim-mode wall time, same run",
                "the two sim_wall/real_wall figures of this run",
                Target("min", 1.0),
                {"sim_s": round(sim_s, 2), "real_s": round(real_s, 2)},
            )
        )
    hour_s = HOUR_S if full else max(120.0, HOUR_S * options.scale)
    calls = HOUR_CALLS if full else max(20, round(HOUR_CALLS * options.scale))
    faults = HOUR_FAULTS if full else 2
    scenario = hour_scenario(hour_s, calls, faults)
    wall_s, trace = _timed(scenario, Mode.SIM, sample_s=10.0)
    by_outcome = _calls(trace)
    result.figures.append(
        Figure(
            "sim_hour_wall",
            wall_s,
            "s",
            f"wall time of {hour_s:g} simulated s of the default lab with {calls} calls "
            f"and {faults} faults",
            "run_scenario in sim mode (setup of cluster, conferencing and VCS included), "
            "sampling every 10 simulated s; time.perf_counter",
            Target("max", HOUR_TARGET_S) if full else None,
            {
                "passed": trace.result.passed,
                "message": trace.result.message,
                "lab_time_s": round(trace.result.duration_s, 1),
                "calls": by_outcome,
                "events": len(trace.events),
            },
        )
    )
    if full:
        directory = out_dir / "scenario-report"
        trace.write(directory / "trace.json")
        from emulator.scenario.report import write_report

        html = write_report(trace.to_dict(), directory)
        try:
            from emulator.scenario.screenshot import screenshot

            png = out_dir / "scenario-report.png"
            screenshot(html, png)
            result.notes.append(f"report of the simulated hour: {html}, screenshot {png}")
        except RuntimeError as exc:
            result.notes.append(f"no screenshot: {exc}")
    result.params = {
        "hour_s": hour_s,
        "hour_calls": calls,
        "hour_faults": faults,
        "real_subnet": REAL_SUBNET if full else None,
        "scenarios": [p.name for p in shipped_scenarios()],
    }
    return result
