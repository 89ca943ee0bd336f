"""Every shipped scenario passes in the simulated world (issue 7), and a run is
deterministic: the same scenario and seed give a byte-identical JSON trace.

The scenarios name their checklist ids in their headers: create-cluster (G-P1,
G-P2, G-P3), peer-crash-failover (G-V4, G-S3), and the failure drills.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.scenario import load_scenario, shipped_scenarios
from emulator.scenario.model import Mode
from emulator.scenario.runner import run_scenario

SIM_SCENARIOS = [p for p in shipped_scenarios() if Mode.SIM in load_scenario(p).modes]


@pytest.mark.parametrize("path", SIM_SCENARIOS, ids=[p.stem for p in SIM_SCENARIOS])
def test_shipped_scenario_passes_in_the_simulated_world(path: Path) -> None:
    trace = run_scenario(load_scenario(path), Mode.SIM)
    result = trace.result
    assert result.passed, result.message
    assert result.steps_passed == result.steps == len(load_scenario(path).steps)
    kinds = {event["kind"] for event in trace.events}
    assert {"step_started", "step_passed", "host_state", "peer_status"} <= kinds


def test_same_seed_gives_an_identical_trace_and_another_seed_still_passes() -> None:
    """Sim determinism: two runs of peer-crash-failover with seed 7 are byte-identical
    (statuses, alarms, calls and their times); seed 8 differs but passes too."""
    scenario = load_scenario(Path("scenarios/peer-crash-failover.yaml"))
    first = run_scenario(scenario, Mode.SIM, seed=7)
    second = run_scenario(scenario, Mode.SIM, seed=7)
    assert first.result.passed, first.result.message
    assert first.dumps() == second.dumps()
    assert sum(1 for e in first.events if e["kind"] == "call") >= 100
    other = run_scenario(scenario, Mode.SIM, seed=8)
    assert other.result.passed, other.result.message
    assert other.dumps() != first.dumps()


def test_a_failing_expectation_fails_the_run_at_that_step_and_stops(tmp_path: Path) -> None:
    """A scenario whose expectation does not hold fails at that step with the observed
    value; later steps do not run; the trace names the step."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "version: 1\nname: t\ndescription: d\ntopology: topologies/default.yaml\nsteps:\n"
        "  - expect: \"conductor-2: clustering.peer1 == 'This system'\"\n"
        "  - kill: conductor-3\n"
    )
    trace = run_scenario(load_scenario(path), Mode.SIM)
    assert not trace.result.passed
    assert trace.result.failed_step == 1
    assert trace.result.message == (
        "step 1 (expect): conductor-2: clustering.peer1 == 'This system' does not hold: "
        "clustering.peer1 is ''"
    )
    assert not [e for e in trace.events if e["kind"] == "step_started" and e["number"] == 2]
