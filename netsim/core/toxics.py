"""Toxics: one-method impairments applied to one direction of one host pair.

A toxic sees one `Segment` (a datagram, or a chunk of a stream) that would be
delivered at time `at` and answers with zero or more outcomes: `Deliver(at')`
(possibly later, possibly twice), `Drop(reason)` or `Reject(reason)`. A chain
of toxics is folded left to right; drops and rejects pass through untouched.

Invariants:
- pure and sans-I/O: time is a parameter, randomness an injected `random.Random`
  (seeded by the world), so the same seed and inputs give the same outcomes;
- a Deliver is never earlier than the `at` it was given;
- the only state is the bandwidth toxic's "link busy until" time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from netsim.api import Proto


@dataclass(frozen=True, slots=True)
class Segment:
    proto: Proto
    src: str
    dst: str
    src_port: int
    dst_port: int
    #: IP packet size for datagrams (payload + 28), payload bytes for stream chunks.
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Deliver:
    at: float


@dataclass(frozen=True, slots=True)
class Drop:
    toxic: str
    reason: str


@dataclass(frozen=True, slots=True)
class Reject:
    toxic: str
    reason: str


Outcome = Deliver | Drop | Reject


class Toxic(Protocol):
    @property
    def name(self) -> str: ...

    def pipe(self, at: float, seg: Segment) -> Sequence[Outcome]: ...


@dataclass(frozen=True, slots=True)
class FirewallToxic:
    """Drops or rejects by protocol and destination port range (G-R6)."""

    rules: tuple[tuple[int, str, int, int, str], ...]  # (id, proto|"any", lo, hi, action)
    name: str = "firewall"

    def pipe(self, at: float, seg: Segment) -> Sequence[Outcome]:
        for rule_id, proto, lo, hi, action in self.rules:
            if proto in ("any", seg.proto.value) and lo <= seg.dst_port <= hi:
                reason = f"firewall rule {rule_id} {action}s {seg.proto.value}/{seg.dst_port}"
                return [
                    Reject(self.name, reason) if action == "reject" else Drop(self.name, reason)
                ]
        return [Deliver(at)]


@dataclass(frozen=True, slots=True)
class BlackholeToxic:
    """Link down or partition: nothing passes."""

    reason: str
    name: str = "down"

    def pipe(self, at: float, seg: Segment) -> Sequence[Outcome]:
        return [Drop(self.name, self.reason)]


@dataclass(frozen=True, slots=True)
class MtuToxic:
    """Path MTU with don't-fragment: an oversized datagram is dropped, never split (G-R14)."""

    mtu_bytes: int
    name: str = "mtu"

    def pipe(self, at: float, seg: Segment) -> Sequence[Outcome]:
        if seg.proto is Proto.UDP and seg.size_bytes > self.mtu_bytes:
            return [
                Drop(
                    self.name,
                    f"{seg.size_bytes}-byte packet exceeds path MTU {self.mtu_bytes} (DF set)",
                )
            ]
        return [Deliver(at)]


@dataclass(frozen=True, slots=True)
class LossToxic:
    probability: float
    rng: random.Random
    name: str = "loss"

    def pipe(self, at: float, seg: Segment) -> Sequence[Outcome]:
        if seg.proto is Proto.UDP and self.rng.random() < self.probability:
            return [Drop(self.name, f"random loss p={self.probability}")]
        return [Deliver(at)]


@dataclass(slots=True)
class BandwidthToxic:
    """Serialises segments at `rate_kbit`; a segment waits for the ones before it."""

    rate_kbit: float
    busy_until: float = 0.0
    name: str = "bandwidth"

    def pipe(self, at: float, seg: Segment) -> Sequence[Outcome]:
        start = max(at, self.busy_until)
        self.busy_until = start + seg.size_bytes * 8 / (self.rate_kbit * 1000.0)
        return [Deliver(self.busy_until)]


@dataclass(frozen=True, slots=True)
class LatencyToxic:
    """Fixed delay plus uniform jitter in [-jitter, +jitter], never negative."""

    latency_ms: float
    jitter_ms: float
    rng: random.Random
    name: str = "latency"

    def pipe(self, at: float, seg: Segment) -> Sequence[Outcome]:
        delay_ms = self.latency_ms
        if self.jitter_ms:
            delay_ms += self.rng.uniform(-self.jitter_ms, self.jitter_ms)
        return [Deliver(at + max(0.0, delay_ms) / 1000.0)]


@dataclass(frozen=True, slots=True)
class ReorderToxic:
    """With probability p a datagram is held back `gap_ms`, so later ones overtake it."""

    probability: float
    gap_ms: float
    rng: random.Random
    name: str = "reorder"

    def pipe(self, at: float, seg: Segment) -> Sequence[Outcome]:
        if seg.proto is Proto.UDP and self.rng.random() < self.probability:
            return [Deliver(at + self.gap_ms / 1000.0)]
        return [Deliver(at)]


@dataclass(frozen=True, slots=True)
class DuplicateToxic:
    probability: float
    rng: random.Random
    name: str = "duplicate"

    def pipe(self, at: float, seg: Segment) -> Sequence[Outcome]:
        if seg.proto is Proto.UDP and self.rng.random() < self.probability:
            return [Deliver(at), Deliver(at)]
        return [Deliver(at)]


def run_chain(chain: Sequence[Toxic], at: float, seg: Segment) -> list[Outcome]:
    """Fold `seg` through `chain`; the empty chain delivers at once."""
    outcomes: list[Outcome] = [Deliver(at)]
    for toxic in chain:
        folded: list[Outcome] = []
        for outcome in outcomes:
            if isinstance(outcome, Deliver):
                folded.extend(toxic.pipe(outcome.at, seg))
            else:
                folded.append(outcome)
        outcomes = folded
    return outcomes
