"""Hybrid logical clocks: versions every peer orders the same way.

A version is (wall_ms, counter, origin). `wall_ms` follows the peer's wall
clock but never goes backwards and never falls behind a version it has seen;
`counter` orders events within one millisecond; `origin` (the peer's id) breaks
the last ties, so two peers always agree on which of two writes is newer
(last-writer-wins, G-S1).

Invariants: `tick` and `observe` return strictly increasing versions on one
peer; after `observe(v)` every later `tick` is greater than `v`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: versions from further in the future than this are refused (a peer with a broken clock
#: could otherwise win every conflict for ever)
MAX_DRIFT_MS = 24 * 3600 * 1000


@dataclass(frozen=True, order=True, slots=True)
class Version:
    wall_ms: int
    counter: int
    origin: str

    def to_list(self) -> list[Any]:
        return [self.wall_ms, self.counter, self.origin]

    @classmethod
    def from_list(cls, raw: Any) -> Version:
        if (
            not isinstance(raw, list)
            or len(raw) != 3
            or not isinstance(raw[0], int)
            or isinstance(raw[0], bool)
            or not isinstance(raw[1], int)
            or isinstance(raw[1], bool)
            or not isinstance(raw[2], str)
            or raw[0] < 0
            or raw[1] < 0
            or not raw[2]
            or len(raw[2]) > 64
        ):
            raise ValueError(f"not a version: {raw!r}")
        return cls(raw[0], raw[1], raw[2])


ZERO = Version(0, 0, "")


class HybridClock:
    def __init__(self, origin: str, last: Version = ZERO) -> None:
        self.origin = origin
        self.last = last

    def tick(self, wall_ms: int) -> Version:
        """A version for a local event at wall time `wall_ms`."""
        if wall_ms > self.last.wall_ms:
            self.last = Version(wall_ms, 0, self.origin)
        else:
            self.last = Version(self.last.wall_ms, self.last.counter + 1, self.origin)
        return self.last

    def observe(self, seen: Version, wall_ms: int) -> None:
        """Move past a version received from another peer."""
        if seen.wall_ms > wall_ms + MAX_DRIFT_MS:
            return
        if seen > self.last:
            self.last = Version(seen.wall_ms, seen.counter, self.origin)
