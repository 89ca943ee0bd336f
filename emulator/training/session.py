"""A training lab on a state dir: which exercise runs there, with which seed and fault,
its start state applied, and its grading.

`tplab lab start` starts the lab's processes (a detached supervisor), records
the exercise in `state_dir/exercise.json`, then brings the lab into its start
state by running the exercise's setup steps and the drawn fault's steps through
the scenario runner against the running lab (`AttachedLab`). `tplab lab check`
and the lab home page grade it with `grade_lab`, the same function.

`exercise.json`: `{"lab", "file", "seed", "fault", "victim", "subnet",
"control", "state": "setting up" | "ready" | "failed", "message", "started"}`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator.scenario.lab import AttachedLab, LabError
from emulator.scenario.runner import Runner
from emulator.supervisor import read_json, write_json
from emulator.training.exercise import Draw, Exercise, fault_steps, load_exercise
from emulator.training.grading import Grade, Grader

EXERCISE_FILE = "exercise.json"


class TrainingError(RuntimeError):
    """The lab cannot be set up, checked or reset; the message says why."""


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """The exercise recorded on `state_dir`, or None."""
    return read_json(state_dir / EXERCISE_FILE)


def write_state(state_dir: Path, data: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    write_json(state_dir / EXERCISE_FILE, data)


def new_state(
    exercise: Exercise, chosen: Draw, *, seed: int, subnet: int | None, control: str
) -> dict[str, Any]:
    return {
        "lab": exercise.name,
        "file": str(Path(exercise.source).resolve()),
        "seed": seed,
        "fault": chosen.fault,
        "victim": chosen.victim,
        "other": chosen.other,
        "subnet": subnet,
        "control": control,
        "state": "setting up",
        "message": "",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def exercise_of(state_dir: Path) -> tuple[Exercise, dict[str, Any]]:
    """The exercise recorded on `state_dir` and its record; TrainingError if none."""
    from emulator.training.exercise import ExerciseError

    state = read_state(state_dir)
    if state is None:
        raise TrainingError(
            f"no training lab on {state_dir}; start one with `tplab lab start NAME`"
        )
    try:
        path = Path(state["file"])
        return _load(str(path), path.stat().st_mtime_ns), state
    except (ExerciseError, KeyError, TypeError, OSError) as exc:
        raise TrainingError(f"the lab recorded on {state_dir} cannot be read: {exc}") from exc


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> Exercise:
    """A lab file, loaded once per version of it: the home page and its grader (every
    10 s) ask for it again and again, and loading one checks every fault's steps."""
    return load_exercise(path)


def set_up(
    state_dir: Path,
    exercise: Exercise,
    chosen: Draw,
    *,
    on_step: Callable[[str], None] = lambda line: None,
) -> None:
    """Bring the running lab into the exercise's start state (its setup, then the drawn
    fault); TrainingError naming the step that failed."""
    steps = (*exercise.setup, *fault_steps(exercise, chosen))
    numbered = tuple(dataclasses.replace(step, number=n) for n, step in enumerate(steps, 1))
    scenario = exercise.scenario(numbered)

    def listen(event: dict[str, Any]) -> None:
        if event.get("kind") == "step_passed":
            on_step(f"  set up: {event.get('title')}")

    with _attached(state_dir) as lab:
        runner = Runner(scenario, lab, sample_s=10.0, poll_s=0.5, listeners=[listen])
        trace = lab.run(runner.run())
    if not trace.result.passed:
        raise TrainingError(f"setting up the lab failed: {trace.result.message}")


def grade_lab(state_dir: Path) -> Grade:
    """Grade the training lab running on `state_dir` as it is now; tasks that latch and
    passed are recorded in `exercise.json` (`latched`: task id -> when first seen)."""
    exercise, state = exercise_of(state_dir)
    latched = dict(state.get("latched") or {})
    with _attached(state_dir) as lab:
        grade = lab.run(Grader(exercise, lab).grade(latched))
    if latched != (state.get("latched") or {}):
        # the CLI and the home page's grader may both record: one at a time, the
        # newest state file read under the lock
        with _locked(state_dir):
            current = read_state(state_dir) or state
            merged = {**latched, **(current.get("latched") or {})}
            write_state(state_dir, {**current, "latched": merged})
    return grade


@contextlib.contextmanager
def _attached(state_dir: Path) -> Iterator[AttachedLab]:
    """The lab running on `state_dir`, opened, and closed again on the way out (the lab
    goes on running); TrainingError when none runs."""
    try:
        lab = AttachedLab(state_dir)
    except LabError as exc:
        raise TrainingError(str(exc)) from exc
    try:
        lab.run(lab.open())
        yield lab
    finally:
        lab.close()


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    with (state_dir / ".exercise.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
