"""Shaping one direction of a stream (TCP-like) connection.

A stream keeps its bytes in order and never loses them: loss, duplication and
reordering are datagram impairments (TCP hides them as delay). What applies to
a stream chunk is the firewall, link down / partition (the stream stalls until
the path is back, as TCP's retransmissions would make it), bandwidth, and
latency with jitter.

Invariants:
- delivery times of one direction never go backwards (in-order delivery);
- `offer` returns None while the path is blocked; the caller retries after the
  next impairment change and nothing is consumed meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netsim.api import Proto
from netsim.core.impairments import ImpairmentTable
from netsim.core.toxics import Deliver, Drop, Reject, Segment


@dataclass(slots=True)
class StreamDirection:
    table: ImpairmentTable
    src: str
    dst: str
    src_port: int
    dst_port: int
    last_at: float = field(default=0.0)

    def offer(self, size_bytes: int, now: float) -> float | None:
        seg = Segment(Proto.TCP, self.src, self.dst, self.src_port, self.dst_port, size_bytes)
        delivered = [o.at for o in self.table.decide(seg, now) if isinstance(o, Deliver)]
        if not delivered:
            return None
        self.last_at = max(self.last_at, delivered[0], now)
        return self.last_at


def connect_verdict(
    table: ImpairmentTable, src: str, dst: str, src_port: int, dst_port: int, now: float
) -> Deliver | Drop | Reject:
    """What happens to a connection attempt (the SYN): delivered at some time, dropped
    (the attempt waits and retries) or rejected (connection refused)."""
    seg = Segment(Proto.TCP, src, dst, src_port, dst_port, 0)
    outcomes = table.decide(seg, now)
    for outcome in outcomes:
        if isinstance(outcome, Deliver):
            return outcome
    for outcome in outcomes:
        if isinstance(outcome, Reject):
            return outcome
    return outcomes[0]
