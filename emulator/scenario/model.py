"""A validated scenario: frozen dataclasses, one per step action.

Invariants (enforced by `emulator.scenario.loader`): every host a step names
exists in the topology and has a role the action applies to; conditions are
parsed; partition groups are disjoint; `${ip:HOST}` placeholders name hosts of
the topology (they stay in the strings; `resolve_placeholders` fills them in).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from emulator.scenario.conditions import Condition, Value
from netsim.topology import Topology

SettingValue = Value | tuple[Value, ...]

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


class Mode(enum.Enum):
    SIM = "sim"
    REAL = "real"


class Outcome(enum.Enum):
    CONNECTED = "connected"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Timing:
    """Timer overrides; None keeps the node's default."""

    vcs_poll_s: float | None = None
    vcs_request_timeout_s: float | None = None
    bridge_poll_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class StepBase:
    action: ClassVar[str]
    #: 1-based position in the file's step list, and the line the step starts on
    number: int
    line: int
    name: str | None = None
    #: the step file it came from through `include` ("" for the scenario's own steps)
    origin: str = ""

    @property
    def title(self) -> str:
        label = f"step {self.number} ({self.action})"
        if self.origin:
            label += f" [{self.origin}:{self.line}]"
        return f"{label}: {self.name}" if self.name else label


@dataclass(frozen=True, kw_only=True)
class SetValues(StepBase):
    action: ClassVar[str] = "set"
    host: str
    page: str
    values: Mapping[str, SettingValue]
    #: when given, the save must be refused with a message containing this text
    refused: str | None = None


@dataclass(frozen=True, kw_only=True)
class Api(StepBase):
    action: ClassVar[str] = "api"
    host: str
    method: str
    path: str
    body: object = None
    #: the status the answer must have; None: any 2xx
    status: int | None = None


@dataclass(frozen=True, kw_only=True)
class Restart(StepBase):
    action: ClassVar[str] = "restart"
    host: str


@dataclass(frozen=True, kw_only=True)
class Kill(StepBase):
    action: ClassVar[str] = "kill"
    host: str


@dataclass(frozen=True, kw_only=True)
class Start(StepBase):
    action: ClassVar[str] = "start"
    host: str


@dataclass(frozen=True, kw_only=True)
class Wait(StepBase):
    action: ClassVar[str] = "wait"
    until: Condition
    within_s: float


@dataclass(frozen=True, kw_only=True)
class Expect(StepBase):
    action: ClassVar[str] = "expect"
    condition: Condition


@dataclass(frozen=True, kw_only=True)
class Impair(StepBase):
    action: ClassVar[str] = "impair"
    src: str
    dst: str
    both: bool
    #: the impairments given, in the world's terms (latency_ms, mtu_bytes, down...)
    changes: Mapping[str, float | int | bool]


@dataclass(frozen=True, kw_only=True)
class Partition(StepBase):
    action: ClassVar[str] = "partition"
    groups: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, kw_only=True)
class Heal(StepBase):
    action: ClassVar[str] = "heal"


@dataclass(frozen=True, kw_only=True)
class Clock(StepBase):
    action: ClassVar[str] = "clock"
    host: str
    offset_s: float


@dataclass(frozen=True, kw_only=True)
class Firewall(StepBase):
    action: ClassVar[str] = "firewall"
    proto: str
    lo: int
    hi: int
    verdict: str  # drop | reject
    src: str | None = None
    dst: str | None = None


@dataclass(frozen=True, kw_only=True)
class Call(StepBase):
    action: ClassVar[str] = "call"
    vcs: str
    source: str
    destination: str
    expect: Outcome | None = None


@dataclass(frozen=True, kw_only=True)
class Load(StepBase):
    action: ClassVar[str] = "load"
    vcs: str
    rate: float
    duration_s: float
    aliases: str
    source: str = "load@example.com"
    hold_s: float = 0.0
    expect: Mapping[Outcome, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Backup(StepBase):
    action: ClassVar[str] = "backup"
    host: str
    password: str | None = None


@dataclass(frozen=True, kw_only=True)
class Restore(StepBase):
    action: ClassVar[str] = "restore"
    host: str
    #: whose backup (taken earlier by a backup step of this scenario)
    source: str
    password: str | None = None
    refused: str | None = None


@dataclass(frozen=True, kw_only=True)
class Upgrade(StepBase):
    action: ClassVar[str] = "upgrade"
    host: str
    version: str


@dataclass(frozen=True, kw_only=True)
class Phase(StepBase):
    action: ClassVar[str] = "phase"
    label: str


@dataclass(frozen=True, kw_only=True)
class Sleep(StepBase):
    action: ClassVar[str] = "sleep_s"
    seconds: float


Step = (
    SetValues
    | Restart
    | Kill
    | Start
    | Wait
    | Expect
    | Impair
    | Partition
    | Heal
    | Clock
    | Firewall
    | Call
    | Load
    | Backup
    | Restore
    | Upgrade
    | Phase
    | Api
    | Sleep
)

ALL_MODES = (Mode.SIM, Mode.REAL)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    topology_file: Path
    topology: Topology
    steps: tuple[Step, ...]
    modes: tuple[Mode, ...] = ALL_MODES
    seed: int | None = None
    timing: Timing = Timing()


def resolve_placeholders(text: str, topology: Topology) -> str:
    """`${ip:HOST}` -> the host's address (the loader has checked every placeholder)."""
    return PLACEHOLDER.sub(lambda m: topology.host(m.group(1).removeprefix("ip:")).ip, text)
