"""Conditions of `wait.until` and `expect`: `HOST: PROBE OP VALUE`.

PROBE is one of the dotted names of `PROBES`, the one table of what a scenario
can observe; each probe says which host roles have it and what kind of value it
reads, which decides the operators and values that make sense. Parsing is pure:
`parse_condition` returns a `Condition` or raises `ConditionError` with a
message meant for the scenario's author.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

CONDUCTOR = frozenset({"conductor"})
VCS = frozenset({"vcs"})
BRIDGES = frozenset({"telepresence-server", "mcu"})
MANAGED = CONDUCTOR | VCS
ANY_ROLE = CONDUCTOR | VCS | BRIDGES

Value = str | int | float | bool


class Kind(enum.Enum):
    TEXT = "text"  # a status string
    NUMBER = "number"
    SET = "set"  # a set of ids or names
    SETTING = "setting"  # whatever type the setting has


class Op(enum.Enum):
    EQ = "=="
    NE = "!="
    GE = ">="
    LE = "<="
    GT = ">"
    LT = "<"
    CONTAINS = "contains"
    EXCLUDES = "excludes"  # not contains: an alarm has cleared, a text is gone


ORDERING = frozenset({Op.GE, Op.LE, Op.GT, Op.LT})
MEMBERSHIP = frozenset({Op.CONTAINS, Op.EXCLUDES})

OPS_BY_KIND: Mapping[Kind, frozenset[Op]] = {
    Kind.TEXT: frozenset({Op.EQ, Op.NE}) | MEMBERSHIP,
    Kind.NUMBER: frozenset({Op.EQ, Op.NE}) | ORDERING,
    Kind.SET: MEMBERSHIP,
    Kind.SETTING: frozenset(Op),
}


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    #: how the probe is written in the documentation
    name: str
    pattern: re.Pattern[str]
    roles: frozenset[str]
    kind: Kind
    doc: str


def _probe(name: str, pattern: str, roles: frozenset[str], kind: Kind, doc: str) -> ProbeSpec:
    return ProbeSpec(name, re.compile(pattern), roles, kind, doc)


#: everything a condition can read, by dotted name
PROBES: tuple[ProbeSpec, ...] = (
    _probe(
        "clustering.peer1..3",
        r"clustering\.peer[1-3]",
        CONDUCTOR,
        Kind.TEXT,
        "status of Peer N on System > Clustering: 'This system', 'Active as NAME', "
        "'Failed: ...', or '' when the peer address is empty (G-P1, G-P2)",
    ),
    _probe(
        "alarms", r"alarms", CONDUCTOR, Kind.SET, "ids of the raised alarms, e.g. 20009 (G-R12)"
    ),
    _probe("alarms.count", r"alarms\.count", CONDUCTOR, Kind.NUMBER, "number of raised alarms"),
    _probe(
        "alarms.text",
        r"alarms\.text",
        CONDUCTOR,
        Kind.TEXT,
        "every raised alarm as 'ID SUBJECT: DESCRIPTION', joined by '; ' (G-R12 names the "
        "differing address)",
    ),
    _probe(
        "setting.PAGE.FIELD",
        r"setting\.[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*",
        CONDUCTOR,
        Kind.SETTING,
        "active value of a setting, e.g. setting.clustering.peer1 (PAGE as in set)",
    ),
    _probe(
        "status.PAGE.FIELD",
        r"status\.[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*",
        CONDUCTOR,
        Kind.SETTING,
        "a status field of a settings page's JSON twin, e.g. status.time.ntp_state (G-R3)",
    ),
    _probe(
        "software_version",
        r"software_version",
        CONDUCTOR,
        Kind.TEXT,
        "the software version the peer runs, e.g. 'XC3.1' (Maintenance > Upgrade; G-R1, G-P6)",
    ),
    _probe(
        "restart_required",
        r"restart_required",
        CONDUCTOR,
        Kind.SETTING,
        "true while saved settings wait for a restart (G-P7)",
    ),
    _probe(
        "vcs.server1..3",
        r"vcs\.server[1-3]",
        VCS,
        Kind.TEXT,
        "status line of Server N of the VCS's policy service: "
        "'Active. Last communication: TIME' or 'Failed (reason)' (G-P3, G-V4)",
    ),
    _probe(
        "vcs.calls.connected|rejected|failed|total",
        r"vcs\.calls\.(connected|rejected|failed|total)",
        VCS,
        Kind.NUMBER,
        "calls the VCS has placed so far, by outcome",
    ),
    _probe(
        "bridge.conferences",
        r"bridge\.conferences",
        BRIDGES,
        Kind.NUMBER,
        "conferences on the bridge",
    ),
    _probe(
        "bridge.participants",
        r"bridge\.participants",
        BRIDGES,
        Kind.NUMBER,
        "participants connected to the bridge",
    ),
    _probe(
        "host.state",
        r"host\.state",
        ANY_ROLE,
        Kind.TEXT,
        "the host's process: starting, up, restarting, failed or stopped",
    ),
)


class ConditionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Condition:
    host: str
    probe: str
    op: Op
    value: Value
    spec: ProbeSpec
    text: str

    def __str__(self) -> str:
        return self.text


FORM = "'HOST: PROBE OP VALUE', e.g. \"conductor-2: alarms contains 20009\""
_SHAPE = re.compile(r"^\s*([^:]*?)\s*:\s*(\S+)\s+(\S+)\s+(.*?)\s*$", re.DOTALL)
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_QUOTED = re.compile(r"""^(?:'([^']*)'|"([^"]*)")$""")


def find_probe(name: str) -> ProbeSpec | None:
    for spec in PROBES:
        if spec.pattern.fullmatch(name):
            return spec
    return None


def parse_value(text: str) -> Value:
    quoted = _QUOTED.match(text)
    if quoted:
        return quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.match(text):
        return float(text) if "." in text else int(text)
    raise ConditionError(f"value {text!r} must be a quoted string, a number, true or false")


def parse_condition(text: str, roles: Mapping[str, str]) -> Condition:
    """`roles` maps every host of the topology to its role."""
    shape = _SHAPE.match(text)
    if shape is None:
        raise ConditionError(f"condition {text!r} is not {FORM}")
    host, probe, op_text, value_text = shape.groups()
    if host not in roles:
        raise ConditionError(f"unknown host {host!r} (hosts: {', '.join(roles)})")
    try:
        op = Op(op_text)
    except ValueError:
        ops = " ".join(o.value for o in Op)
        raise ConditionError(f"unknown operator {op_text!r} (one of {ops})") from None
    spec = find_probe(probe)
    if spec is None:
        names = ", ".join(p.name for p in PROBES)
        raise ConditionError(f"unknown probe {probe!r} (probes: {names})")
    role = roles[host]
    if role not in spec.roles:
        raise ConditionError(
            f"probe {probe!r} applies to {' and '.join(sorted(spec.roles))} hosts; "
            f"{host!r} is a {role}"
        )
    value = parse_value(value_text)
    if op not in OPS_BY_KIND[spec.kind]:
        ops = " ".join(o.value for o in Op if o in OPS_BY_KIND[spec.kind])
        raise ConditionError(
            f"operator {op.value!r} does not apply to {spec.kind.value} probe {probe!r} (use {ops})"
        )
    _check_value(spec, probe, op, value)
    return Condition(host, probe, op, value, spec, text.strip())


def _check_value(spec: ProbeSpec, probe: str, op: Op, value: Value) -> None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if spec.kind is Kind.TEXT and not isinstance(value, str):
        raise ConditionError(f"probe {probe!r} reads text: quote the value")
    if spec.kind is Kind.NUMBER and not is_number:
        raise ConditionError(f"probe {probe!r} reads a number: {value!r} is not one")
    if spec.kind is Kind.SET and isinstance(value, bool):
        raise ConditionError(f"probe {probe!r} reads a set of ids or names: {value!r} is neither")
    if op in ORDERING and not is_number:
        raise ConditionError(f"operator {op.value!r} compares numbers: {value!r} is not one")


def probe_table() -> list[tuple[str, str, str, str]]:
    """(name, roles, operators, description) of every probe, for help texts."""
    return [
        (
            spec.name,
            ", ".join(sorted(spec.roles)),
            " ".join(o.value for o in Op if o in OPS_BY_KIND[spec.kind]),
            spec.doc,
        )
        for spec in PROBES
    ]
