"""The pytest plugin (issue 7): a failover test in a few lines with the `tplab_lab`
fixture, in the simulated world. G-V4: the VCS skips a killed peer; G-R12: a peer list
mismatch named in the status. A failing step raises StepFailed with the runner's
message, and the plugin writes a report on request."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.pytest_plugin import OpenLab, StepFailed


def test_failover_in_a_few_lines(tplab_lab: OpenLab) -> None:
    """The README's example: G-V4 on a clustered lab with conferencing."""
    lab = tplab_lab(timing={"vcs_poll_s": 2, "vcs_request_timeout_s": 1, "bridge_poll_s": 2})
    lab.include("steps/cluster-of-three.yaml")
    lab.include("steps/conferencing.yaml")
    lab.include("steps/vcs-policy.yaml")
    lab.kill("conductor-initial")
    lab.wait("vcs: vcs.server1 contains 'Failed'", within_s=30)
    assert lab.call("alice@example.com", "meet.1@example.com", expect="connected").startswith(
        f"connected via {lab.ip('conductor-2')}"
    )
    lab.expect("vcs: vcs.calls.failed == 0")
    assert lab.trace.result.passed is False  # still running: the result is set at close


def test_a_failing_step_raises_with_the_runner_message(tplab_lab: OpenLab) -> None:
    """G-R12 through the fixture: a stranger in conductor-2's list is named."""
    lab = tplab_lab()
    lab.include("steps/cluster-of-three.yaml")
    lab.set("conductor-2", "clustering", peer3="127.1.2.99")
    lab.restart("conductor-2")
    lab.wait("conductor-initial: clustering.peer2 contains 'peer list mismatch'", within_s=60)
    lab.wait("conductor-initial: alarms.text contains '127.1.2.99'", within_s=30)
    with pytest.raises(StepFailed, match=r"step \d+ \(expect\): conductor-2: .* does not hold"):
        lab.expect("conductor-2: clustering.peer3 == 'This system'")
    status, answer = lab.api("conductor-2", "GET", "/api/v1/system/clustering")
    assert status == 200
    assert answer["settings"]["peer3"] == "127.1.2.99"


def test_bad_steps_are_refused_before_anything_runs(tplab_lab: OpenLab) -> None:
    lab = tplab_lab()
    from emulator.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="unknown host 'conductor-9'"):
        lab.kill("conductor-9")
    with pytest.raises(ScenarioError, match="unknown probe 'nope'"):
        lab.wait("vcs: nope == 1")
    assert lab.trace.events[-1]["kind"] != "step_started"


def test_report_option_writes_a_report(pytester: pytest.Pytester) -> None:
    """`--tplab-report DIR` writes each lab's trace.json and report.html."""
    pytester.makepyfile(
        """
        def test_lab(tplab_lab):
            lab = tplab_lab()
            lab.set("conductor-2", "administration", system_name="Lab two")
            lab.expect("conductor-2: setting.administration.system_name == 'Lab two'")
        """
    )
    result = pytester.runpytest_subprocess("--tplab-report", "out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    reports = list(Path(pytester.path, "out").glob("*/report.html"))
    assert len(reports) == 1
    assert "PASSED" in reports[0].read_text()
