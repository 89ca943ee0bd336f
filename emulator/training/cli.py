"""`tplab lab`: training labs on real processes.

`list` shows the shipped labs; `start NAME` starts the lab's processes (the
same detached supervisor as `tplab up -d`), brings them into the lab's start
state, and prints the URLs, the accounts, the lab home page and the first task;
`check` grades the running lab (exit 0 only when every task passed); `reset`
stops it and starts the same exercise (same seed, same fault) from scratch;
`tplab down` stops it.

Exit status as the rest of `tplab`: 2 for bad input (an unknown lab or fault),
1 when the lab cannot start or be reached, and for `check` 1 while a task has
not passed.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import click

from emulator.cli import (
    CliError,
    CliFailure,
    TplabGroup,
    _console,
    _down_hint,
    _env_control,
    _refuse_running_lab,
    _state_dir_option,
    _up_detached,
    down,
    listen_address,
    start_timeout_option,
)
from emulator.paths import DEFAULT_CONTROL
from emulator.training.exercise import (
    Draw,
    Exercise,
    ExerciseError,
    draw,
    find_lab,
    load_exercise,
    shipped_labs,
)
from emulator.training.grading import Grade
from emulator.training.session import (
    TrainingError,
    exercise_of,
    grade_lab,
    new_state,
    read_state,
    set_up,
    write_state,
)

#: what `tplab lab start` removes from a state dir before it starts (a fresh lab)
FRESH = ("hosts", "images", "exercise.json", "lab.json", "status.json")


@click.group(cls=TplabGroup)
def lab() -> None:
    """Training labs: the guide's procedures and failures, done in the admin pages
    and graded."""


@lab.command("list")
def list_labs() -> None:
    """Show every shipped lab: name, kind, checklist ids and title."""
    from rich.table import Table

    table = Table(title="training labs", title_justify="left")
    for column in ("name", "kind", "ids", "tasks", "title"):
        table.add_column(column, no_wrap=column == "name")
    for path in shipped_labs():
        try:
            exercise = load_exercise(path)
        except ExerciseError as exc:
            raise CliError(str(exc)) from exc
        kind = exercise.kind
        if exercise.troubleshooting:
            kind += f" ({len(exercise.faults)} faults)"
        table.add_row(
            exercise.name, kind, " ".join(exercise.ids), str(len(exercise.tasks)), exercise.title
        )
    _console().print(table)


def _load(name: str) -> Exercise:
    try:
        return load_exercise(find_lab(name))
    except ExerciseError as exc:
        raise CliError(str(exc)) from exc


@lab.command("start")
@click.argument("name")
@click.option(
    "--seed",
    type=int,
    default=None,
    help="picks the fault of a troubleshooting lab [default: from the clock]",
)
@click.option(
    "--fault", default=None, help="the fault to inject (troubleshooting labs) instead of the seed's"
)
@click.option(
    "--subnet",
    type=click.IntRange(1, 127),
    default=None,
    help="move every 127.A.B.C host address to 127.SUBNET.B.C (labs side by side)",
)
@click.option(
    "--control",
    "control",
    metavar="HOST:PORT",
    default=None,
    help=f"address of the lab home page and control API [default: {DEFAULT_CONTROL}]",
)
@start_timeout_option
@_state_dir_option
def start(
    name: str,
    seed: int | None,
    fault: str | None,
    subnet: int | None,
    control: str | None,
    start_timeout_s: float,
    state_dir: Path,
) -> None:  # fmt: skip
    """Start lab NAME: its hosts as real processes, in the lab's start state."""
    exercise = _load(name)
    chosen_seed = seed if seed is not None else int(datetime.now(UTC).timestamp()) % 1_000_000
    try:
        chosen = draw(exercise, chosen_seed, fault)
    except ExerciseError as exc:
        raise CliError(exc.message) from exc
    address = control or _env_control() or DEFAULT_CONTROL
    try:
        host, port = listen_address(address)
    except click.BadParameter as exc:
        raise CliError(f"--control: {exc.format_message()}") from exc
    _refuse_running_lab(state_dir)
    _start(exercise, chosen, seed=chosen_seed, subnet=subnet, host=host, port=port,
           start_timeout_s=start_timeout_s, state_dir=state_dir)  # fmt: skip


def _start(
    exercise: Exercise,
    chosen: Draw,
    *,
    seed: int,
    subnet: int | None,
    host: str,
    port: int,
    start_timeout_s: float,
    state_dir: Path,
) -> None:
    from emulator.supervisor import LabConfig

    for entry in FRESH:
        path = state_dir / entry
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    state = new_state(exercise, chosen, seed=seed, subnet=subnet, control=f"http://{host}:{port}")
    write_state(state_dir, state)
    images = _write_images(exercise, state_dir)
    config = LabConfig(
        topology_path=exercise.topology_file,
        state_dir=state_dir,
        backend="proxy",
        seed=seed,
        control_host=host,
        control_port=port,
        start_timeout_s=start_timeout_s,
        subnet=subnet,
    )
    _up_detached(config, show_logins=False)
    click.echo(f"setting up lab {exercise.name} (seed {seed})")
    try:
        set_up(state_dir, exercise, chosen, on_step=click.echo)
    except TrainingError as exc:
        write_state(state_dir, {**state, "state": "failed", "message": str(exc)})
        click.echo(f"error: {exc}; stopping the lab", err=True)
        click.get_current_context().invoke(down, state_dir=state_dir)
        raise CliFailure(str(exc)) from exc
    write_state(state_dir, {**state, "state": "ready"})
    _welcome(exercise, state_dir, images)


def _write_images(exercise: Exercise, state_dir: Path) -> list[Path]:
    from emulator.image import write_image

    return [
        write_image(version, state_dir / "images", built=datetime.now(UTC))
        for version in exercise.images
    ]


def _welcome(exercise: Exercise, state_dir: Path, images: list[Path]) -> None:
    state = read_state(state_dir) or {}
    click.echo("")
    click.echo(f"lab {exercise.name} is ready: {exercise.title}")
    click.echo(f"lab home page (hosts, instructions, live checks): {state.get('control')}/")
    for role, accounts in exercise.accounts.items():
        listed = ", ".join(f"{name} / {password}" for name, password in accounts.items())
        click.echo(f"{role} accounts: {listed}")
    for image in images:
        click.echo(f"software image: {image}")
    first = exercise.tasks[0]
    click.echo("")
    click.echo(f"task 1 of {len(exercise.tasks)}: {first.title}")
    click.echo(first.instructions.rstrip())
    click.echo("")
    hint = "" if state_dir.resolve() == _default_state_dir() else f" --state-dir {state_dir}"
    click.echo(f"check your work with `tplab lab check{hint}`; stop with `{_down_hint(state_dir)}`")


def _default_state_dir() -> Path:
    from emulator.paths import DEFAULT_STATE_DIR

    return DEFAULT_STATE_DIR.resolve()


@lab.command("check")
@_state_dir_option
@click.option("--json", "as_json", is_flag=True, help="print the grade as JSON")
def check(state_dir: Path, as_json: bool) -> None:
    """Grade the running lab: each task passed or not yet, with hints (exit 1 while a
    task has not passed)."""
    state = read_state(state_dir)
    if state is not None and state.get("state") != "ready":
        raise CliFailure(f"the lab on {state_dir} is {state.get('state')}: {state.get('message')}")
    try:
        grade = grade_lab(state_dir)
    except TrainingError as exc:
        raise CliFailure(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(grade.to_dict(), indent=2))
    else:
        _print_grade(grade)
    if not grade.passed:
        raise SystemExit(1)


def _print_grade(grade: Grade) -> None:
    console = _console()
    for number, task in enumerate(grade.tasks, start=1):
        verdict = "[green]passed[/]" if task.passed else "[red]not yet[/]"
        console.print(f"task {number} {task.title}: {verdict}", highlight=False)
        if task.latched:
            console.print(f"  (seen passed at {task.latched}; it stays passed)", highlight=False)
            continue
        for hint in task.hints:
            console.print(f"  - {hint}", highlight=False, markup=False)
    passed = sum(1 for t in grade.tasks if t.passed)
    console.print(
        f"{passed} of {len(grade.tasks)} tasks passed"
        + (": the lab is done" if grade.passed else ""),
        highlight=False,
    )


@lab.command("reset")
@_state_dir_option
def reset(state_dir: Path) -> None:
    """Stop the lab and start the same exercise again from scratch (same seed, same
    fault)."""
    try:
        exercise, state = exercise_of(state_dir)
    except TrainingError as exc:
        raise CliFailure(str(exc)) from exc
    click.get_current_context().invoke(down, state_dir=state_dir)
    control = str(state.get("control") or f"http://{DEFAULT_CONTROL}")
    try:
        host, port = listen_address(control.removeprefix("http://"))
    except click.BadParameter as exc:
        raise CliFailure(f"the recorded control address {control!r} is unusable") from exc
    chosen = Draw(state.get("fault"), state.get("victim"), state.get("other"))
    if chosen.fault is not None and chosen.fault not in exercise.faults:
        raise CliFailure(f"lab {exercise.name} no longer has fault {chosen.fault!r}")
    _start(exercise, chosen, seed=int(state.get("seed") or 0), subnet=state.get("subnet"),
           host=host, port=port, start_timeout_s=60.0, state_dir=state_dir)  # fmt: skip
