"""Call results and running call statistics of the VCS.

A call ends `connected` (routed: to its destination, or to the location a policy
service redirected it to), `rejected` (a policy service or the Default CPL
rejected it, or no search rule matched), or `failed` (the VCS could not process
it). Setup latency runs from the dial to the routing decision, and for a call
routed to a conference bridge, to the bridge's answer.

Invariants: counts add up to `total`; percentiles come from the last
`SAMPLE_LIMIT` connected calls; memory stays bounded however many calls run.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

SAMPLE_LIMIT = 10_000
RECENT_LIMIT = 200


class Outcome(enum.Enum):
    CONNECTED = "connected"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One policy request of a call: which server, and what came of it."""

    service: str
    server: str
    result: str  # "answered: allowed" / "failed: connection refused" ...


@dataclass(frozen=True, slots=True)
class CallResult:
    call_id: str
    source: str
    destination: str
    protocol: str
    outcome: Outcome
    status: int | None = None
    reason: str = ""
    target: str = ""  # where the call was routed (alias or address)
    via: str = ""  # the policy server that decided, or the zone
    bridge: str = ""  # the conference bridge that took the call
    participant: str = ""  # its name for the call there
    rule: str = ""
    default_cpl: bool = False
    attempts: tuple[Attempt, ...] = ()
    setup_ms: float = 0.0
    started: str = ""
    started_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data

    def describe(self) -> str:
        if self.outcome is Outcome.CONNECTED:
            return f"connected to {self.target} via {self.via}"
        return f"{self.outcome.value} {self.status or ''} {self.reason}".replace("  ", " ").strip()


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class CallStats:
    total: int = 0
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_via: Counter[str] = field(default_factory=Counter)
    default_cpl: int = 0
    hung_up: int = 0
    setup_ms: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLE_LIMIT))
    recent: deque[CallResult] = field(default_factory=lambda: deque(maxlen=RECENT_LIMIT))

    def record(self, result: CallResult) -> None:
        self.total += 1
        self.by_outcome[result.outcome.value] += 1
        if result.outcome is Outcome.CONNECTED:
            self.by_via[result.via] += 1
            self.setup_ms.append(result.setup_ms)
        if result.default_cpl:
            self.default_cpl += 1
        self.recent.append(result)

    def summary(self) -> dict[str, Any]:
        samples = list(self.setup_ms)
        return {
            "total": self.total,
            "connected": self.by_outcome[Outcome.CONNECTED.value],
            "rejected": self.by_outcome[Outcome.REJECTED.value],
            "failed": self.by_outcome[Outcome.FAILED.value],
            "default_cpl": self.default_cpl,
            "hung_up": self.hung_up,
            "by_via": dict(sorted(self.by_via.items())),
            "setup_ms_p50": percentile(samples, 0.5),
            "setup_ms_p99": percentile(samples, 0.99),
        }
