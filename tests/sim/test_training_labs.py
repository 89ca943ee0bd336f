"""Every check of every shipped training lab fails before its fix and passes after it
(issue 9), in the simulated world: the same nodes, runner and grader as a live lab.

- Procedure labs (create-cluster: G-P1, G-P2, G-P3, G-P7; remove-peer: G-P5;
  backup-before-join: G-P4; rolling-upgrade: G-P6): from the lab's start state,
  task by task in the guide's order, every check of the task fails just before
  the task's solution steps run and passes right after; at the end every task has
  passed (the tasks that latch were seen passed on the way).
- Troubleshooting labs (troubleshoot-cluster: G-R3, G-R6, G-R12, G-R14, G-P3):
  each fault, once injected, leaves at least one task "not yet", and its
  solution makes every task pass; every check of the lab fails for at least one
  fault. Hints name the host, the page and the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from emulator.scenario.lab import SimLab
from emulator.scenario.model import Step
from emulator.scenario.runner import Runner
from emulator.training.exercise import (
    Draw,
    Exercise,
    draw,
    fault_steps,
    load_exercise,
    shipped_labs,
)
from emulator.training.grading import Grade, Grader

LABS = {path.stem: load_exercise(path) for path in shipped_labs()}
PROCEDURES = sorted(name for name, lab in LABS.items() if not lab.troubleshooting)
TROUBLESHOOTING = sorted(name for name, lab in LABS.items() if lab.troubleshooting)

Body = Callable[["LabDriver"], Awaitable[None]]


@dataclasses.dataclass
class LabDriver:
    exercise: Exercise
    runner: Runner
    grader: Grader
    latched: dict[str, str] = dataclasses.field(default_factory=dict)

    async def steps(self, steps: tuple[Step, ...], what: str) -> None:
        numbered = [dataclasses.replace(s, number=n) for n, s in enumerate(steps, start=1)]
        assert await self.runner.run_steps(numbered), f"{what}: {self.runner.trace.result.message}"

    async def grade(self) -> Grade:
        return await self.grader.grade(self.latched)


def run_lab(exercise: Exercise, chosen: Draw, body: Body, *, seed: int = 1) -> None:
    """Open the lab's topology in the simulated world, bring it into its start state (the
    setup, then the drawn fault) and run `body`."""
    lab = SimLab(exercise.topology, seed=seed)
    try:
        lab.run(lab.open())
        runner = Runner(exercise.scenario(), lab, poll_s=0.5)
        driver = LabDriver(exercise, runner, Grader(exercise, lab))

        async def go() -> None:
            await runner.begin()
            try:
                await driver.steps(exercise.setup, "setup")
                await driver.steps(fault_steps(exercise, chosen), f"fault {chosen.fault}")
                await body(driver)
            finally:
                await runner.end()

        lab.run(go())
    finally:
        lab.close()


def _results(grade: Grade, task_id: str) -> Any:
    return next(t for t in grade.tasks if t.id == task_id)


@pytest.mark.parametrize("name", PROCEDURES)
def test_every_check_of_a_procedure_lab_fails_before_its_task_and_passes_after(name: str) -> None:
    """G-P1, G-P2, G-P3 (create-cluster), G-P4 (backup-before-join), G-P5 (remove-peer),
    G-P6 (rolling-upgrade), G-P7 (clustering settings take effect on restart)."""
    exercise = LABS[name]

    async def body(driver: LabDriver) -> None:
        for task in exercise.tasks:
            before = _results(await driver.grade(), task.id)
            for result in before.checks:
                assert not result.passed, (
                    f"task {task.id}: check {result.check.text} passed before the task was done"
                )
                assert all(hint.strip() for hint in result.hints)
            await driver.steps(task.solution, f"solution of {task.id}")
            after = _results(await driver.grade(), task.id)
            failing = [(r.check.text, r.hints) for r in after.checks if not r.passed]
            assert not failing, f"task {task.id} still fails after its solution: {failing}"
        final = await driver.grade()
        assert final.passed, [t.to_dict() for t in final.tasks if not t.passed]
        latching = [t.id for t in exercise.tasks if t.latch]
        assert sorted(driver.latched) == sorted(latching)

    run_lab(exercise, draw(exercise, 1), body)


@pytest.mark.parametrize("name", TROUBLESHOOTING)
def test_every_fault_breaks_the_lab_and_its_fix_passes_every_check(name: str) -> None:
    """G-R3 (NTP), G-R6 (firewall), G-R12 (key and peer lists), G-R14 (MTU), G-P3 (the
    VCS's credentials): each fault leaves a task "not yet" with a hint naming the host
    and page; its solution makes every task pass; each check of the lab fails for at
    least one fault."""
    exercise = LABS[name]
    failed_checks: set[str] = set()
    hints_of: dict[str, list[str]] = {}
    for fault in sorted(exercise.faults):
        chosen = draw(exercise, 3, fault)

        async def body(driver: LabDriver, chosen: Draw = chosen) -> None:
            before = await driver.grade()
            assert not before.passed, f"fault {chosen.fault} breaks nothing the lab checks"
            for task in before.tasks:
                for result in task.checks:
                    if not result.passed:
                        failed_checks.add(result.check.text)
            hints_of[str(chosen.fault)] = [h for t in before.tasks for h in t.hints]
            steps = fault_steps(exercise, chosen, solution=True)
            await driver.steps(steps, f"solution of {chosen.fault}")
            after = await driver.grade()
            assert after.passed, (chosen, [t.to_dict() for t in after.tasks if not t.passed])

        run_lab(exercise, chosen, body)
    every = {check.text for task in exercise.tasks for check in task.checks}
    assert every - failed_checks == set(), "checks no fault makes fail"
    if name == "troubleshoot-cluster":
        _hints_name_page_and_field(exercise, hints_of)


def _hints_name_page_and_field(exercise: Exercise, hints_of: dict[str, list[str]]) -> None:
    victim = draw(exercise, 3, "peer-list-mismatch").victim
    assert any(
        hint.startswith(f"{victim}: System > Clustering: Peer 3 IP address 127.1.2.99")
        and "differs from conductor-initial's list" in hint
        for hint in hints_of["peer-list-mismatch"]
    ), hints_of["peer-list-mismatch"]
    victim = draw(exercise, 3, "key-mismatch").victim
    assert any(
        hint.startswith(f"{victim}: System > Clustering: Peer 1 ")
        and "pre-shared key mismatch" in hint
        for hint in hints_of["key-mismatch"]
    ), hints_of["key-mismatch"]
    victim = draw(exercise, 3, "ntp-unsynchronised").victim
    assert (
        f"{victim}: System > Time: NTP state is 'Not synchronized' (NTP server 1 is empty)"
        in (hints_of["ntp-unsynchronised"])
    )
    assert any("Status > Alarms: 20009" in h and "System > Ethernet" in h
               for h in hints_of["mtu-blackhole"])  # fmt: skip
    assert any("Failed: unreachable" in h and "4369-4380" in h
               for h in hints_of["firewall-blocks-replication"])  # fmt: skip
    assert any(h.startswith("vcs: Status > Policy services > Conductors: Server 1") and "401" in h
               for h in hints_of["default-passwords"])  # fmt: skip


def test_the_shipped_labs_cover_the_issue() -> None:
    """Issue 9's list: create a cluster and attach the VCS (G-P1..G-P3), remove a peer
    (G-P5), rolling upgrade (G-P6), back up before joining (G-P4), and troubleshooting
    with the MTU blackhole, key mismatch, peer list mismatch, unsynchronised NTP, a
    firewall blocking replication and the VCS on the default password."""
    assert {"create-cluster", "remove-peer", "rolling-upgrade", "backup-before-join"} <= set(
        PROCEDURES
    )
    ids = {i for lab in LABS.values() for i in lab.ids}
    assert {"G-P1", "G-P2", "G-P3", "G-P4", "G-P5", "G-P6"} <= ids
    faults = {f for name in TROUBLESHOOTING for f in LABS[name].faults}
    assert faults >= {
        "mtu-blackhole",
        "key-mismatch",
        "peer-list-mismatch",
        "ntp-unsynchronised",
        "firewall-blocks-replication",
        "default-passwords",
    }
    assert all(Path(lab.source).parent.name == "labs" for lab in LABS.values())
