"""Training lab files: what a lab starts as, what the trainee is asked to do, how it
is graded.

A lab file (`scenarios/labs/*.yaml`, schema `scenarios/schema/lab.schema.json`)
names a topology, the scenario steps that bring the hosts into the lab's
starting state (`setup`), the tasks (Markdown instructions, in the guide's
order) and each task's checks (`emulator.training.grading`). A troubleshooting
lab also lists `faults`: the seed picks one, and a host among its `victims`,
whose steps then break the lab (`${victim}` in them is that host), so two
trainees with different seeds do not meet the same problem.

Invariants (enforced by `load_exercise`): every step of the setup and of every
fault with every victim parses as a scenario step of the topology; every host a
check names exists with the role the check reads; condition checks parse;
task ids are unique. Every error is an `ExerciseError` naming file, line and
column; no other exception escapes for any file.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from emulator.paths import LAB_SCHEMA, LABS_DIR, SCENARIOS_DIR
from emulator.scenario.conditions import ConditionError, parse_condition
from emulator.scenario.loader import ScenarioError, is_file, parse_steps
from emulator.scenario.model import Scenario, Step
from netsim.topology import Topology, TopologyError, load_topology
from netsim.yamldoc import (
    LocatedError,
    Locator,
    compose,
    first_schema_error,
    read_source,
    schema_message,
)

VICTIM = "${victim}"
#: another host of the fault's victims (one that is not the victim), from the seed
OTHER = "${other}"
#: the accounts every lab host has unless its file says otherwise: the factory ones
FACTORY_PASSWORD = "TANDBERG"
#: which role each check's host fields must have
CHECK_ROLES: Mapping[str, Mapping[str, str]] = {
    "clustered": {"peers": "conductor"},
    "standalone": {"peer": "conductor"},
    "no_bridges": {"peer": "conductor"},
    "vcs_servers": {"vcs": "vcs", "peers": "conductor"},
    "same_setting": {"peers": "conductor"},
    "no_alarms": {"hosts": "conductor"},
    "synchronised": {"hosts": "conductor"},
    "software_version": {"hosts": "conductor"},
    "backup_before_joining": {"peer": "conductor"},
}
_STEP_NUMBER = re.compile(r"step (\d+)")


class ExerciseError(LocatedError):
    """A lab file is unreadable or invalid: `FILE:LINE:COL: message`."""


@dataclass(frozen=True, slots=True)
class Check:
    kind: str
    params: Mapping[str, Any]
    #: `kind: {params}` as written, for listings
    text: str


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    title: str
    instructions: str
    checks: tuple[Check, ...]
    #: steps that do the task (never shown to the trainee; tests and demos run them)
    solution: tuple[Step, ...] = ()
    #: once seen passed, stays passed (a later task changes the state it checks)
    latch: bool = False


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    description: str
    victims: tuple[str, ...]
    #: the raw steps that break the lab and that fix it, `${victim}` not yet filled in
    #: (`fault_steps` does it)
    raw_steps: tuple[Any, ...]
    raw_solution: tuple[Any, ...]


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    kind: str
    ids: tuple[str, ...]
    introduction: str
    source: str
    topology_file: Path
    topology: Topology
    accounts: Mapping[str, Mapping[str, str]]
    setup: tuple[Step, ...]
    faults: Mapping[str, Fault]
    tasks: tuple[Task, ...]
    #: versions of the signed images the lab gives the trainee
    images: tuple[str, ...] = ()

    @property
    def troubleshooting(self) -> bool:
        return self.kind == "troubleshooting"

    def scenario(self, steps: tuple[Step, ...] = (), topology: Topology | None = None) -> Scenario:
        """The lab as a scenario of `steps` (what the runner takes), on `topology` (the
        lab's, or a relocated copy)."""
        return Scenario(
            name=self.name,
            description=self.title,
            source=self.source,
            topology_file=self.topology_file,
            topology=topology or self.topology,
            steps=steps,
        )

    def password(self, role: str, account: str = "admin") -> str:
        return self.accounts.get(role, {}).get(account, FACTORY_PASSWORD)

    def passwords(self) -> list[str]:
        """Every password the lab's hosts may have (the factory one first)."""
        found = [FACTORY_PASSWORD]
        for accounts in self.accounts.values():
            found += [p for p in accounts.values() if p not in found]
        return found


@dataclass(frozen=True, slots=True)
class Draw:
    """What a seed picked in a troubleshooting lab (nothing in a procedure lab)."""

    fault: str | None = None
    victim: str | None = None
    other: str | None = None


# ------------------------------------------------------------------ loading
@cache
def lab_schema() -> dict[str, Any]:
    import json

    schema: dict[str, Any] = json.loads(LAB_SCHEMA.read_text())
    return schema


def shipped_labs(directory: Path = LABS_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def find_lab(name: str, directory: Path = LABS_DIR) -> Path:
    """The file of the shipped lab `name`, or a path given as is; ExerciseError if none."""
    given = Path(name)
    if given.suffix in (".yaml", ".yml") and is_file(given):
        return given
    path = directory / f"{name}.yaml"
    if is_file(path):
        return path
    known = ", ".join(p.stem for p in shipped_labs(directory)) or "none"
    raise ExerciseError(name, None, None, f"no lab named {name!r} (labs: {known})")


def load_exercise(path: str | Path) -> Exercise:
    path = Path(path)
    return parse_exercise(read_source(path, ExerciseError), source=str(path), base=path.parent)


def parse_exercise(text: str | bytes, *, source: str = "<lab>", base: Path = LABS_DIR) -> Exercise:
    node, data = compose(text, source, ExerciseError, "file is empty; expected a lab mapping")
    locate = Locator(node, source, ExerciseError)
    found = first_schema_error(data, lab_schema())
    if found is not None:
        path, error = found
        where = "/".join(str(p) for p in path) or "top level"
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            extra = sorted(str(k) for k in error.instance if k not in known)
            if extra:
                mark = locate.key_node([*path, extra[0]]).start_mark
                message = f"{where}: unknown key {extra[0]!r}"
                raise ExerciseError(source, mark.line + 1, mark.column + 1, message)
        raise locate.error(path, f"{where}: {schema_message(error)}")
    return _Builder(data, locate, base).build()


class _Builder:
    def __init__(self, data: dict[str, Any], locate: Locator, base: Path) -> None:
        self.data = data
        self.locate = locate
        self.base = base

    def fail(self, path: list[str | int], message: str) -> LocatedError:
        return self.locate.error(path, message)

    def build(self) -> Exercise:
        data = self.data
        topology_file, topology = self._topology()
        setup = self._steps(data.get("setup", []), ["setup"], topology)
        faults = self._faults(topology)
        if data["kind"] == "troubleshooting" and not faults:
            raise self.fail(["kind"], "a troubleshooting lab lists its faults (faults:)")
        if data["kind"] == "procedure" and faults:
            raise self.fail(["faults"], "faults: only a troubleshooting lab has faults")
        return Exercise(
            name=data["name"],
            title=data["title"],
            kind=data["kind"],
            ids=tuple(data["ids"]),
            introduction=data["introduction"],
            source=self.locate.source,
            topology_file=topology_file,
            topology=topology,
            accounts={role: dict(a) for role, a in data.get("accounts", {}).items()},
            setup=setup,
            faults=faults,
            tasks=self._tasks(topology),
            images=tuple(data.get("images", ())),
        )

    def _topology(self) -> tuple[Path, Topology]:
        name = self.data["topology"]
        candidates = [self.base / name, SCENARIOS_DIR / name]
        found = next((p for p in candidates if is_file(p)), None)
        if found is None:
            looked = " and ".join(dict.fromkeys(str(p.parent) for p in candidates))
            raise self.fail(["topology"], f"topology: no file {name!r} in {looked}")
        try:
            return found, load_topology(found)
        except TopologyError as exc:
            raise self.fail(["topology"], f"topology: {exc}") from exc

    def _steps(self, raw: list[Any], path: list[str | int], topology: Topology) -> tuple[Step, ...]:
        """Scenario steps; an error is placed on the step it is about."""
        label = "/".join(str(p) for p in path)
        if not raw:
            return ()
        try:
            return parse_steps(raw, topology, source=label, base=self.base)
        except ScenarioError as exc:
            if exc.source != label:
                # in a step file the setup includes: its own file, line and column
                raise ExerciseError(exc.source, exc.line, exc.column,
                                    f"{label}: {exc.message}") from exc  # fmt: skip
            number = _STEP_NUMBER.search(exc.message)
            where = [*path, int(number.group(1)) - 1] if number else path
            raise self.fail(where, f"{label}: {exc.message}") from exc

    def _faults(self, topology: Topology) -> dict[str, Fault]:
        faults: dict[str, Fault] = {}
        for name, body in self.data.get("faults", {}).items():
            victims = tuple(body.get("victims", ()))
            for index, victim in enumerate(victims):
                if victim not in {h.name for h in topology.hosts}:
                    raise self.fail(
                        ["faults", name, "victims", index],
                        f"faults/{name}/victims: unknown host {victim!r} "
                        f"(hosts: {', '.join(h.name for h in topology.hosts)})",
                    )
            fault = Fault(
                name, body["description"], victims, tuple(body["setup"]), tuple(body["solution"])
            )
            for key in ("setup", "solution"):
                if VICTIM in repr(body[key]) and not victims:
                    raise self.fail(
                        ["faults", name, key],
                        f"faults/{name}/{key}: its steps name ${{victim}} but it lists no victims",
                    )
                if OTHER in repr(body[key]) and len(victims) < 2:
                    raise self.fail(
                        ["faults", name, key],
                        f"faults/{name}/{key}: ${{other}} needs at least two victims",
                    )
                for victim in victims or (None,):
                    for other in [v for v in victims if v != victim] or [None]:
                        self._steps(fill_victim(list(body[key]), victim, other),
                                    ["faults", name, key], topology)  # fmt: skip
            faults[name] = fault
        return faults

    def _tasks(self, topology: Topology) -> tuple[Task, ...]:
        roles = {h.name: h.role for h in topology.hosts}
        tasks: list[Task] = []
        seen: set[str] = set()
        for index, raw in enumerate(self.data["tasks"]):
            if raw["id"] in seen:
                raise self.fail(["tasks", index, "id"], f"tasks: id {raw['id']!r} is used twice")
            seen.add(raw["id"])
            checks = tuple(
                self._check(raw_check, ["tasks", index, "checks", n], roles)
                for n, raw_check in enumerate(raw["checks"])
            )
            solution = self._steps(raw.get("solution", []), ["tasks", index, "solution"], topology)
            if self.data["kind"] == "procedure" and not solution:
                raise self.fail(
                    ["tasks", index],
                    f"tasks/{index}: a procedure lab's task has a solution (the steps that "
                    "do it; tests run them)",
                )
            if self.data["kind"] == "troubleshooting" and solution:
                raise self.fail(
                    ["tasks", index, "solution"],
                    f"tasks/{index}/solution: a troubleshooting lab's solutions are its "
                    "faults' (faults/NAME/solution)",
                )
            tasks.append(
                Task(
                    raw["id"], raw["title"], raw["instructions"], checks, solution,
                    latch=bool(raw.get("latch", False)),
                )
            )  # fmt: skip
        return tuple(tasks)

    def _check(self, raw: dict[str, Any], path: list[str | int], roles: Mapping[str, str]) -> Check:
        ((kind, params),) = raw.items()
        label = f"task {path[1] + 1 if isinstance(path[1], int) else path[1]} check {kind}"
        if kind == "expect":
            try:
                parse_condition(params["condition"], roles)
            except ConditionError as exc:
                raise self.fail([*path, kind, "condition"], f"{label}: {exc}") from exc
        for key, role in CHECK_ROLES.get(kind, {}).items():
            value = params.get(key)
            hosts = value if isinstance(value, list) else [value]
            for host in hosts:
                if host not in roles:
                    raise self.fail(
                        [*path, kind, key],
                        f"{label}: unknown host {host!r} (hosts: {', '.join(roles)})",
                    )
                if roles[host] != role:
                    raise self.fail(
                        [*path, kind, key], f"{label}: {host!r} is a {roles[host]}, not a {role}"
                    )
        text = f"{kind}: " + ", ".join(f"{k}={v}" for k, v in params.items())
        return Check(kind, dict(params), text)


# --------------------------------------------------------------- the draw
def fill_victim(raw: Any, victim: str | None, other: str | None = None) -> Any:
    """`raw` with every `${victim}` (and `${other}`) in its strings replaced."""
    if victim is None:
        return raw
    if isinstance(raw, str):
        return raw.replace(VICTIM, victim).replace(OTHER, other or victim)
    if isinstance(raw, list):
        return [fill_victim(item, victim, other) for item in raw]
    if isinstance(raw, dict):
        return {key: fill_victim(value, victim, other) for key, value in raw.items()}
    return raw


def draw(exercise: Exercise, seed: int, fault: str | None = None) -> Draw:
    """The fault and victim `seed` picks (or the fault named, its victim still from the
    seed); ExerciseError for a fault the lab does not have."""
    if not exercise.troubleshooting:
        if fault is not None:
            message = f"{exercise.name} is not a troubleshooting lab: it has no faults"
            raise ExerciseError(exercise.source, None, None, message)
        return Draw()
    rng = random.Random(f"{exercise.name}:{seed}")
    names = sorted(exercise.faults)
    picked = rng.choice(names)
    if fault is not None:
        if fault not in exercise.faults:
            raise ExerciseError(
                exercise.source, None, None,
                f"{exercise.name} has no fault {fault!r} (faults: {', '.join(names)})",
            )  # fmt: skip
        picked = fault
    victims = exercise.faults[picked].victims
    if not victims:
        return Draw(picked)
    victim = rng.choice(victims)
    others = [v for v in victims if v != victim]
    return Draw(picked, victim, rng.choice(others) if others else None)


def fault_steps(exercise: Exercise, chosen: Draw, *, solution: bool = False) -> tuple[Step, ...]:
    """The steps that break the lab for `chosen` (or, with `solution`, that fix it); none
    for a procedure lab."""
    if chosen.fault is None:
        return ()
    fault = exercise.faults[chosen.fault]
    raw = fill_victim(
        list(fault.raw_solution if solution else fault.raw_steps), chosen.victim, chosen.other
    )
    base = Path(exercise.source).parent
    return parse_steps(raw, exercise.topology, source=f"faults/{fault.name}", base=base)
