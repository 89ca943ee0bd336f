"""Scenario files: YAML validated against `scenarios/schema/scenario.schema.json`,
then checked against their topology (hosts exist and have the role the action
needs, conditions parse, partition groups are disjoint, port ranges are
ordered, placeholders name hosts).

Every error is a `ScenarioError` naming file, line and column, and for an error
inside a step `step N (action)`; no other exception escapes for any file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.paths import SCENARIO_SCHEMA, SCENARIOS_DIR
from emulator.scenario.conditions import (
    ANY_ROLE,
    CONDUCTOR,
    MANAGED,
    VCS,
    Condition,
    ConditionError,
    parse_condition,
)
from emulator.scenario.model import (
    PLACEHOLDER,
    Api,
    Backup,
    Call,
    Clock,
    Expect,
    Firewall,
    Heal,
    Impair,
    Kill,
    Load,
    Mode,
    Outcome,
    Partition,
    Phase,
    Restart,
    Restore,
    Scenario,
    SetValues,
    Sleep,
    Start,
    Step,
    Timing,
    Upgrade,
    Wait,
)
from emulator.scenario.pages import PageError, PageKind, password_body, resolve_page
from netsim.topology import Topology, TopologyError, load_topology
from netsim.yamldoc import LocatedError, Locator, compose, first_schema_error, read_source

if TYPE_CHECKING:
    import jsonschema


class ScenarioError(LocatedError):
    """A scenario file is unreadable or invalid: `FILE:LINE:COL: step N (action): message`."""


#: the roles of the hosts each action may name (call and load name the VCS they use)
ACTION_ROLES: Mapping[str, frozenset[str]] = {
    "set": MANAGED,
    "restart": CONDUCTOR,
    "backup": CONDUCTOR,
    "restore": CONDUCTOR,
    "upgrade": CONDUCTOR,
    "api": MANAGED,
    "kill": ANY_ROLE,
    "start": ANY_ROLE,
    "clock": ANY_ROLE,
    "impair": ANY_ROLE,
    "partition": ANY_ROLE,
    "firewall": ANY_ROLE,
    "call": VCS,
    "load": VCS,
}
ACTIONS = (
    "set",
    "restart",
    "kill",
    "start",
    "wait",
    "expect",
    "impair",
    "partition",
    "heal",
    "clock",
    "firewall",
    "call",
    "load",
    "backup",
    "restore",
    "upgrade",
    "phase",
    "api",
    "include",
    "sleep_s",
)
#: how deep step files may include step files
MAX_INCLUDE_DEPTH = 4
IMPAIRMENTS = (
    "latency_ms",
    "jitter_ms",
    "loss",
    "duplicate",
    "reorder",
    "rate_kbit",
    "mtu_bytes",
    "down",
)

Path_ = list[str | int]


@cache
def scenario_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCENARIO_SCHEMA.read_text())
    return schema


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    return parse_scenario(read_source(path, ScenarioError), source=str(path), base=path.parent)


def parse_scenario(
    text: str | bytes, *, source: str = "<string>", base: Path = SCENARIOS_DIR
) -> Scenario:
    """`base`: the directory the topology path is relative to (the shipped scenarios/
    directory is tried next)."""
    data, locate = _checked(
        text, source, scenario_schema(), "file is empty; expected a mapping with version and steps"
    )
    return _Builder(data, locate, base).build()


def _checked(
    text: str | bytes, source: str, schema: dict[str, Any], empty: str
) -> tuple[Any, Locator]:
    """A YAML document checked step by step (one action each) and against `schema`;
    the document and its locator, or a ScenarioError at the first problem."""
    node, data = compose(text, source, ScenarioError, empty)
    locate = Locator(node, source, ScenarioError)
    if isinstance(data, dict) and isinstance(data.get("steps"), list):
        for index, step in enumerate(data["steps"]):
            _check_step_shape(step, index, locate)
    found = first_schema_error(data, schema)
    if found is not None:
        raise _schema_error(locate, data, *found)
    return data, locate


def parse_steps(
    steps: list[Any] | str,
    topology: Topology,
    *,
    source: str = "<steps>",
    base: Path = SCENARIOS_DIR,
) -> tuple[Step, ...]:
    """Steps outside a scenario file (a test's own, through the pytest plugin): a list of
    step mappings, or the YAML text of a step file; the same checks and errors."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # the same step object twice is fine
            return True

    text = (
        steps
        if isinstance(steps, str)
        else yaml.dump({"steps": steps}, Dumper=_Dumper, sort_keys=False)
    )
    data, locate = _checked(
        text, source, fragment_schema(), "no steps; expected a mapping with steps"
    )
    return tuple(_Builder(data, locate, base, topology=topology).steps())


def _step_label(data: Any, index: int) -> str:
    step = data["steps"][index] if isinstance(data, dict) else None
    action = next((k for k in step if k in ACTIONS), None) if isinstance(step, dict) else None
    return f"step {index + 1} ({action})" if action else f"step {index + 1}"


def _check_step_shape(step: Any, index: int, locate: Locator) -> None:
    """Exactly one action key per step, said plainly rather than as a failed oneOf."""
    path: Path_ = ["steps", index]
    label = f"step {index + 1}"
    if not isinstance(step, dict):
        raise locate.error(
            path, f"{label}: expected a mapping with one action, e.g. {{kill: HOST}}"
        )
    for key in step:
        if key != "name" and key not in ACTIONS:
            raise _at_key(locate, [*path, key], f"{label}: unknown action {key!r} ({_actions()})")
    actions = [k for k in step if k != "name"]
    if not actions:
        raise locate.error(path, f"{label}: no action; give one of {_actions()}")
    if len(actions) > 1:
        raise _at_key(
            locate,
            [*path, actions[1]],
            f"{label}: more than one action ({', '.join(actions)}); give one per step",
        )


def _actions() -> str:
    return ", ".join(ACTIONS)


def _at_key(locate: Locator, path: Path_, message: str) -> LocatedError:
    node = locate.key_node(path)
    mark = node.start_mark
    return ScenarioError(locate.source, mark.line + 1, mark.column + 1, message)


def _schema_error(
    locate: Locator, data: Any, path: Path_, error: jsonschema.ValidationError
) -> LocatedError:
    message = str(error.message)
    target = path
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(str(k) for k in error.instance if k not in known)
        if extra:
            message = f"unknown key {extra[0]!r}"
            target = [*path, extra[0]]
    elif error.validator == "required" and isinstance(error.instance, dict):
        message = message.replace("is a required property", "is missing")
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        inner = "/".join(str(p) for p in path[3:])  # after steps/N/action
        prefix = f"{_step_label(data, path[1])}: "
        where = f"{prefix}{inner}: " if inner else prefix
    else:
        where = ("/".join(str(p) for p in path) or "top level") + ": "
    if target is not path:
        return _at_key(locate, target, where + message)
    return locate.error(path, where + message)


@cache
def fragment_schema() -> dict[str, Any]:
    """A step file: `description` and `steps`, each step as in a scenario."""
    schema = dict(scenario_schema())
    schema["properties"] = {
        "description": {"type": "string", "maxLength": 2000},
        "steps": schema["properties"]["steps"],
    }
    schema["required"] = ["steps"]
    schema["title"] = "tplab scenario step file"
    return schema


class _Builder:
    def __init__(
        self,
        data: dict[str, Any],
        locate: Locator,
        base: Path,
        *,
        topology: Topology | None = None,
        chain: tuple[Path, ...] = (),
    ) -> None:
        self.data = data
        self.locate = locate
        self.base = base
        self.topology = topology if topology is not None else self._topology()
        self.roles = {h.name: h.role for h in self.topology.hosts}
        self.label = ""
        self.path: Path_ = []
        self.chain = chain

    def fail(self, sub: Path_, message: str) -> LocatedError:
        return self.locate.error([*self.path, *sub], f"{self.label}: {message}")

    def _topology(self) -> Topology:
        name = self.data["topology"]
        candidates = [self.base / name, SCENARIOS_DIR / name]
        found = next((p for p in candidates if is_file(p)), None)
        if found is None:
            looked = " and ".join(dict.fromkeys(str(p.parent) for p in candidates))
            raise self.locate.error(["topology"], f"topology: no file {name!r} in {looked}")
        try:
            return load_topology(found)
        except TopologyError as exc:
            raise self.locate.error(["topology"], f"topology: {exc}") from exc

    def build(self) -> Scenario:
        data = self.data
        timing = data.get("timing", {})
        steps = tuple(
            dataclasses.replace(step, number=n) for n, step in enumerate(self.steps(), start=1)
        )
        return Scenario(
            name=data["name"],
            description=data["description"],
            source=self.locate.source,
            topology_file=Path(self.topology.source),
            topology=self.topology,
            steps=steps,
            modes=tuple(Mode(m) for m in data.get("modes", ("sim", "real"))),
            seed=data.get("seed"),
            timing=Timing(**timing),
        )

    def steps(self) -> list[Step]:
        """Every step in run order, included step files expanded in place."""
        out: list[Step] = []
        for index, raw in enumerate(self.data["steps"]):
            if "include" in raw:
                out += self._include(index, raw["include"])
            else:
                out.append(self._step(index, raw))
        return out

    def _include(self, index: int, name: str) -> list[Step]:
        self.label = f"step {index + 1} (include)"
        self.path = ["steps", index, "include"]
        candidates = [self.base / name, SCENARIOS_DIR / name]
        found = next((p for p in candidates if is_file(p)), None)
        if found is None:
            looked = " and ".join(dict.fromkeys(str(p.parent) for p in candidates))
            raise self.fail([], f"no step file {name!r} in {looked}")
        resolved = found.resolve()
        if resolved in self.chain:
            raise self.fail([], f"{name!r} includes itself (through {len(self.chain)} files)")
        if len(self.chain) >= MAX_INCLUDE_DEPTH:
            raise self.fail([], f"step files nest more than {MAX_INCLUDE_DEPTH} deep")
        data, locate = _checked(
            read_source(found, ScenarioError),
            str(found),
            fragment_schema(),
            "step file is empty; expected a mapping with steps",
        )
        child = _Builder(
            data,
            locate,
            found.parent,
            topology=self.topology,
            chain=(*self.chain, resolved),
        )
        return [
            dataclasses.replace(step, origin=found.name) if not step.origin else step
            for step in child.steps()
        ]

    def _step(self, index: int, raw: dict[str, Any]) -> Step:
        action = next(k for k in raw if k != "name")
        self.label = f"step {index + 1} ({action})"
        self.path = ["steps", index, action]
        body = raw[action]
        self._placeholders(body, [])
        common = {
            "number": index + 1,
            "line": self.locate.node(["steps", index]).start_mark.line + 1,
            "name": raw.get("name"),
        }
        build: Callable[[Any, dict[str, Any]], Step] = getattr(self, "_" + action)
        return build(body, common)

    # ------------------------------------------------------------- checks
    def _host(self, name: str, sub: Path_, action: str) -> str:
        if name not in self.roles:
            raise self.fail(sub, f"unknown host {name!r} (hosts: {', '.join(self.roles)})")
        roles = ACTION_ROLES[action]
        if self.roles[name] not in roles:
            raise self.fail(
                sub,
                f"{action} applies to {' and '.join(sorted(roles))} hosts; "
                f"{name!r} is a {self.roles[name]}",
            )
        return name

    def _vcs(self, body: dict[str, Any], action: str) -> str:
        if "vcs" in body:
            return self._host(body["vcs"], ["vcs"], action)
        vcses = [h for h, role in self.roles.items() if role == "vcs"]
        if len(vcses) != 1:
            raise self.fail(
                [],
                "the topology has no VCS host"
                if not vcses
                else f"the topology has several VCS hosts ({', '.join(vcses)}): name one with vcs:",
            )
        return vcses[0]

    def _condition(self, text: str, sub: Path_) -> Condition:
        try:
            return parse_condition(text, self.roles)
        except ConditionError as exc:
            raise self.fail(sub, str(exc)) from exc

    def _placeholders(self, value: Any, sub: Path_) -> None:
        if isinstance(value, str):
            for match in PLACEHOLDER.finditer(value):
                kind, _, host = match.group(1).partition(":")
                if kind != "ip" or not host:
                    raise self.fail(
                        sub, f"placeholder {match.group(0)!r}: only ${{ip:HOST}} is supported"
                    )
                if host not in self.roles:
                    raise self.fail(
                        sub, f"placeholder {match.group(0)!r} names no host of the topology"
                    )
        elif isinstance(value, dict):
            for key, item in value.items():
                self._placeholders(item, [*sub, key])
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._placeholders(item, [*sub, i])

    # ------------------------------------------------------------- actions
    def _set(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in body["values"].items()}
        host = self._host(body["host"], ["host"], "set")
        try:
            target = resolve_page(self.roles[host], body["page"])
            if target.kind is PageKind.PASSWORD:
                password_body(values)
        except PageError as exc:
            raise self.fail(["page"], str(exc)) from exc
        return SetValues(
            **common, host=host, page=body["page"], values=values, refused=body.get("refused")
        )

    def _api(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        host = self._host(body["host"], ["host"], "api")
        return Api(
            **common,
            host=host,
            method=body["method"],
            path=body["path"],
            body=body.get("body"),
            status=body.get("status"),
        )

    def _restart(self, body: str, common: dict[str, Any]) -> Step:
        return Restart(**common, host=self._host(body, [], "restart"))

    def _kill(self, body: str, common: dict[str, Any]) -> Step:
        return Kill(**common, host=self._host(body, [], "kill"))

    def _start(self, body: str, common: dict[str, Any]) -> Step:
        return Start(**common, host=self._host(body, [], "start"))

    def _wait(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        until = self._condition(body["until"], ["until"])
        return Wait(**common, until=until, within_s=body["within_s"])

    def _expect(self, body: str, common: dict[str, Any]) -> Step:
        return Expect(**common, condition=self._condition(body, []))

    def _impair(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        src = self._host(body["src"], ["src"], "impair")
        dst = self._host(body["dst"], ["dst"], "impair")
        if src == dst:
            raise self.fail(["dst"], f"src and dst are both {src!r}")
        changes = {k: body[k] for k in IMPAIRMENTS if k in body}
        if not changes:
            raise self.fail([], f"give at least one impairment: {', '.join(IMPAIRMENTS)}")
        return Impair(**common, src=src, dst=dst, both=body.get("both", False), changes=changes)

    def _partition(self, body: list[list[str]], common: dict[str, Any]) -> Step:
        seen: dict[str, int] = {}
        for g, group in enumerate(body):
            for h, host in enumerate(group):
                self._host(host, [g, h], "partition")
                if host in seen:
                    raise self.fail(
                        [g, h],
                        f"host {host!r} is in group {seen[host] + 1} and group {g + 1}; "
                        "groups must be disjoint",
                    )
                seen[host] = g
        return Partition(**common, groups=tuple(tuple(group) for group in body))

    def _heal(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        return Heal(**common)

    def _clock(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        host = self._host(body["host"], ["host"], "clock")
        return Clock(**common, host=host, offset_s=body["offset_s"])

    def _firewall(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        ports = str(body["ports"])
        lo_text, _, hi_text = ports.partition("-")
        lo = int(lo_text)
        hi = int(hi_text) if hi_text else lo
        if not 1 <= lo <= hi <= 65535:
            raise self.fail(
                ["ports"], f"port range {ports!r} must satisfy 1 <= low <= high <= 65535"
            )
        src = self._host(body["src"], ["src"], "firewall") if "src" in body else None
        dst = self._host(body["dst"], ["dst"], "firewall") if "dst" in body else None
        return Firewall(
            **common,
            proto=body["proto"],
            lo=lo,
            hi=hi,
            verdict=body["action"],
            src=src,
            dst=dst,
        )

    def _call(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        expect = Outcome(body["expect"]) if "expect" in body else None
        return Call(
            **common,
            vcs=self._vcs(body, "call"),
            source=body["from"],
            destination=body["to"],
            expect=expect,
        )

    def _load(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        # imported here: the VCS node (and aiohttp) only when a scenario places a load
        from vcs_policy.node import LoadError, check_alias_pattern

        vcs = self._vcs(body, "load")
        try:
            check_alias_pattern(body["aliases"])
        except LoadError as exc:
            raise self.fail(["aliases"], str(exc)) from exc
        return Load(
            **common,
            vcs=vcs,
            rate=body["rate"],
            duration_s=body["duration_s"],
            aliases=body["aliases"],
            source=body.get("from", "load@example.com"),
            hold_s=body.get("hold_s", 0.0),
            expect={Outcome(k): v for k, v in body.get("expect", {}).items()},
        )

    def _backup(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        host = self._host(body["host"], ["host"], "backup")
        return Backup(**common, host=host, password=body.get("password"))

    def _restore(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        host = self._host(body["host"], ["host"], "restore")
        source = self._host(body["from"], ["from"], "restore") if "from" in body else host
        return Restore(
            **common,
            host=host,
            source=source,
            password=body.get("password"),
            refused=body.get("refused"),
        )

    def _upgrade(self, body: dict[str, Any], common: dict[str, Any]) -> Step:
        host = self._host(body["host"], ["host"], "upgrade")
        return Upgrade(**common, host=host, version=body["version"])

    def _phase(self, body: str, common: dict[str, Any]) -> Step:
        return Phase(**common, label=body)

    def _sleep_s(self, body: float, common: dict[str, Any]) -> Step:
        return Sleep(**common, seconds=body)


def is_file(path: Path) -> bool:
    """`path.is_file()`, False where the path cannot even be looked at (a name longer
    than the file system allows, a component that is not a directory)."""
    try:
        return path.is_file()
    except OSError:
        return False


def shipped_scenarios(directory: Path = SCENARIOS_DIR) -> list[Path]:
    """The scenario files of a directory (its subdirectories hold topologies and the schema)."""
    return sorted(directory.glob("*.yaml"))


def load_all(paths: list[Path]) -> tuple[list[Scenario], list[ScenarioError]]:
    """Every file that loads, and the errors of the others; names must be unique."""
    scenarios: list[Scenario] = []
    errors: list[ScenarioError] = []
    names: dict[str, str] = {}
    for path in paths:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            errors.append(exc)
            continue
        if scenario.name in names:
            errors.append(
                ScenarioError(
                    str(path),
                    None,
                    None,
                    f"name {scenario.name!r} is already used by {names[scenario.name]}",
                )
            )
            continue
        names[scenario.name] = str(path)
        scenarios.append(scenario)
    return scenarios, errors
