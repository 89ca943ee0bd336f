"""The one decision path every backend's datagrams take (sim and proxy alike).

`route_datagram` asks the impairment table what happens to one datagram and
records the outcome in the trace (when packet tracing is on); the caller only
moves bytes at the returned delivery times.
"""

from __future__ import annotations

from netsim.api import IPV4_UDP_OVERHEAD, Proto
from netsim.core.impairments import ImpairmentTable
from netsim.core.toxics import Deliver, Reject, Segment
from netsim.core.trace import EventTrace


def route_datagram(
    table: ImpairmentTable,
    trace: EventTrace,
    now: float,
    *,
    src: str,
    dst: str,
    sport: int,
    dport: int,
    payload_bytes: int,
) -> list[float]:
    """Delivery times (world time) of the copies of one datagram; empty if it is lost."""
    seg = Segment(Proto.UDP, src, dst, sport, dport, payload_bytes + IPV4_UDP_OVERHEAD)
    outcomes = table.decide(seg, now)
    if trace.packets:
        trace.record(
            now, "udp_send", src=src, dst=dst, sport=sport, dport=dport, size=seg.size_bytes
        )
    times: list[float] = []
    for outcome in outcomes:
        if isinstance(outcome, Deliver):
            times.append(outcome.at)
        elif trace.packets:
            kind = "udp_reject" if isinstance(outcome, Reject) else "udp_drop"
            trace.record(now, kind, src=src, dst=dst, dport=dport, reason=outcome.reason)
    return times


def record_delivery(
    trace: EventTrace, now: float, *, src: str, dst: str, sport: int, dport: int, payload_bytes: int
) -> None:
    if trace.packets:
        trace.record(
            now,
            "udp_deliver",
            src=src,
            dst=dst,
            sport=sport,
            dport=dport,
            size=payload_bytes + IPV4_UDP_OVERHEAD,
        )
