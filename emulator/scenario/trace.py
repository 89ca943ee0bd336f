"""The JSON event trace of a scenario run: what happened, when, in lab time.

A trace file is one JSON object:

    {
      "format": "tplab-scenario-trace", "version": 1,
      "scenario": {"name", "description", "source", "topology",
                   "hosts": [{"name", "role", "ip"}, ...]},
      "mode": "sim" | "real", "seed": int | null,
      "result": {"passed": bool, "steps": int, "steps_passed": int,
                 "failed_step": int | null, "message": str, "duration_s": float},
      "events": [{"t": float, "kind": str, ...fields}, ...]
    }

`t` is seconds since the lab started: virtual seconds in sim mode, seconds of
the runner's monotonic clock in real mode, rounded to the millisecond.

Event kinds and their fields (every one is recorded by `emulator.scenario.runner`):

- `step_started`   number, action, title, line
- `step_passed`    number, action, title, detail
- `step_failed`    number, action, title, message
- `host_state`     host, state: up | killed | restarting | stopped
- `peer_status`    observer, peer (host name or address), slot (1-3), state, text
                   state: this | active | failed | empty | unreachable
                   (what `observer`'s System > Clustering says of Peer `slot`)
- `server_status`  vcs, server (1-3), address, state, text
                   state: active | failed | unknown | unreachable
                   (the VCS's policy service Server N line)
- `alarm_raised`   host, id, subject, description
- `alarm_cleared`  host, id, subject
- `fault_started`  fault, label         (an impairment window opens: link, partition,
- `fault_ended`    fault                 firewall rule, clock offset, host killed)
- `impairment`     action, and the change's own fields (what the world was asked)
- `call`           vcs, source, destination, outcome: connected | rejected | failed,
                   status, reason, via, bridge, setup_ms
- `load_started`   vcs, load_id, rate, duration_s, total
- `load_finished`  vcs, load_id, by_outcome {outcome: count}
- `expectation`    number, condition, held, observed
- `phase`          label                 (a named phase starts; it lasts until the next)

Invariants: events are in recording order and `t` never decreases; in sim mode
nothing in the trace depends on wall time, temporary paths or the machine, so
the same scenario and seed give a byte-identical `dumps()`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "tplab-scenario-trace"
VERSION = 1


@dataclass
class Result:
    passed: bool = False
    steps: int = 0
    steps_passed: int = 0
    failed_step: int | None = None
    message: str = ""
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "steps": self.steps,
            "steps_passed": self.steps_passed,
            "failed_step": self.failed_step,
            "message": self.message,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass
class Trace:
    scenario: dict[str, Any]
    mode: str
    seed: int | None
    now: Callable[[], float]
    result: Result = field(default_factory=Result)
    events: list[dict[str, Any]] = field(default_factory=list)
    listeners: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        t = round(self.now(), 3)
        if self.events and t < self.events[-1]["t"]:
            t = self.events[-1]["t"]
        event = {"t": t, "kind": kind, **fields}
        self.events.append(event)
        for listener in self.listeners:
            listener(event)
        return event

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "scenario": self.scenario,
            "mode": self.mode,
            "seed": self.seed,
            "result": self.result.to_dict(),
            "events": self.events,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=1) + "\n"

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.dumps())


def load_trace(path: Path) -> dict[str, Any]:
    """A trace file read back; raises ValueError if it is not one."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tplab scenario trace")
    if data.get("version") != VERSION:
        raise ValueError(
            f"{path}: trace version {data.get('version')!r}, this tplab reads {VERSION}"
        )
    return data
