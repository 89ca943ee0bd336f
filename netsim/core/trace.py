"""The world's event trace: every impairment change, and optionally every packet.

An event is (t, kind, fields). `t` is the world's monotonic time in seconds:
virtual time in the simulated world, seconds since the world started otherwise.

Invariants:
- events are kept in the order they were recorded;
- the serialised form (`dumps`) is canonical JSON lines: sorted keys, times
  rounded to the microsecond, so two runs of the same seed and inputs in the
  simulated world give byte-identical traces;
- packet events are recorded only when `packets=True` (they dominate volume);
- a bounded trace keeps the most recent `limit` events and counts what it dropped.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TraceEvent:
    t: float
    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 6), "kind": self.kind, **self.fields}


class EventTrace:
    def __init__(self, *, packets: bool = False, limit: int | None = 100_000) -> None:
        self.packets = packets
        self._events: deque[TraceEvent] = deque(maxlen=limit)
        self.dropped = 0
        self.total = 0
        self._listeners: list[Callable[[TraceEvent], None]] = []

    def record(self, t: float, kind: str, **fields: Any) -> TraceEvent:
        event = TraceEvent(t, kind, fields)
        if self._events.maxlen is not None and len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self.total += 1
        for listener in self._listeners:
            listener(event)
        return event

    def subscribe(self, listener: Callable[[TraceEvent], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(list(self._events))

    def __len__(self) -> int:
        return len(self._events)

    def since(self, index: int) -> list[TraceEvent]:
        """Events with sequence number >= index (sequence = position among all recorded)."""
        first = self.total - len(self._events)
        return list(self._events)[max(0, index - first) :]

    def dumps(self) -> str:
        return "".join(
            json.dumps(e.to_dict(), sort_keys=True, separators=(",", ":")) + "\n"
            for e in self._events
        )
