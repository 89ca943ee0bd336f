"""Cluster membership: what each peer tells the others, and the status shown beside it.

Every peer sends each configured peer a HELLO over the secure channel every
`hello_interval_s`: its system host name, software version, licence (release
key present, full capacity or Select), NTP state, clock, its configured peer
list, whether clustering changes wait for a restart, and an echo of the last
HELLO it received (for the round-trip time).

`PeerView` turns the HELLOs received from one peer into the status shown on
System > Clustering, and `cluster_alarms` into Status > Alarms:

- "This system" for the own address;
- "Active as <system host name>" when everything matches;
- red failure states naming the reason: unreachable, key mismatch, peer list
  mismatch (G-R12, naming the difference), software version mismatch (G-R1),
  not licensed / capacity mismatch (G-R10, G-R2), waiting for restart.

The round-trip time is measured continuously; over `RTT_LIMIT_MS` (G-R5) an
alarm is raised. A peer's clock further than `CLOCK_SKEW_LIMIT_S` from ours,
or a peer whose NTP state is not synchronised, raises an alarm too (G-R3).

Invariants: pure functions of their inputs (time is a parameter); a status is
computed from the newest HELLO only; the order of a peer list never matters.
"""

from __future__ import annotations

import enum
import json
import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

RTT_LIMIT_MS = 30.0  # G-R5: 15 ms one way, 30 ms round trip
CLOCK_SKEW_LIMIT_S = 2.0  # G-R3 (tplab's choice: the guide says "very closely synchronized")
DEAD_AFTER_S = 10.0
RTT_SAMPLES = 20


class PeerState(enum.Enum):
    THIS_SYSTEM = "this_system"
    ACTIVE = "active"
    UNREACHABLE = "unreachable"
    KEY_MISMATCH = "key_mismatch"
    PEER_LIST_MISMATCH = "peer_list_mismatch"
    VERSION_MISMATCH = "version_mismatch"
    NOT_LICENSED = "not_licensed"
    WAITING_FOR_RESTART = "waiting_for_restart"


@dataclass(frozen=True, slots=True)
class Hello:
    host_name: str
    version: str
    licensed: bool
    capacity: str  # "full" | "select"
    ntp_synchronized: bool
    wall_ms: int
    peers: tuple[str, ...]
    restart_pending: bool
    sent_at: float  # sender's monotonic clock
    echo_sent_at: float | None = None  # the sent_at of the last HELLO the sender got from us
    echo_hold_s: float = 0.0  # how long the sender held it before answering

    def encode(self) -> bytes:
        return (
            b"H"
            + json.dumps(
                {
                    "n": self.host_name,
                    "v": self.version,
                    "l": self.licensed,
                    "c": self.capacity,
                    "t": self.ntp_synchronized,
                    "w": self.wall_ms,
                    "p": list(self.peers),
                    "r": self.restart_pending,
                    "s": self.sent_at,
                    "e": self.echo_sent_at,
                    "h": self.echo_hold_s,
                },
                separators=(",", ":"),
            ).encode()
        )

    @classmethod
    def decode(cls, data: bytes) -> Hello:
        """Parse a HELLO; ValueError for anything else."""
        if data[:1] != b"H":
            raise ValueError("not a HELLO")
        body = json.loads(data[1:].decode("utf-8"))
        if not isinstance(body, dict):
            raise ValueError("HELLO body must be an object")

        def typed(name: str, kind: type | tuple[type, ...]) -> Any:
            value = body.get(name)
            if not isinstance(value, kind) or (
                isinstance(value, bool) and bool not in _kinds(kind)
            ):
                raise ValueError(f"HELLO field {name!r} has the wrong type")
            return value

        peers = typed("p", list)
        if len(peers) > 3 or not all(isinstance(p, str) and len(p) <= 15 for p in peers):
            raise ValueError("HELLO peer list must hold at most 3 addresses")
        capacity = typed("c", str)
        if capacity not in ("full", "select"):
            raise ValueError("HELLO capacity must be full or select")
        echo = body.get("e")
        if echo is not None and (isinstance(echo, bool) or not isinstance(echo, int | float)):
            raise ValueError("HELLO echo must be a number")
        return cls(
            host_name=typed("n", str)[:64],
            version=typed("v", str)[:32],
            licensed=typed("l", bool),
            capacity=capacity,
            ntp_synchronized=typed("t", bool),
            wall_ms=typed("w", int),
            peers=tuple(sorted(peers)),
            restart_pending=typed("r", bool),
            sent_at=float(typed("s", (int, float))),
            echo_sent_at=None if echo is None else float(echo),
            echo_hold_s=float(typed("h", (int, float))),
        )


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


@dataclass(frozen=True, slots=True)
class LocalFacts:
    """What this peer knows of itself (active settings, after the last restart)."""

    ip: str
    host_name: str
    version: str
    licensed: bool
    capacity: str
    ntp_synchronized: bool
    peers: tuple[str, ...]  # the configured list, own address included
    restart_pending: bool


@dataclass(frozen=True, slots=True)
class Status:
    state: PeerState
    text: str

    @property
    def ok(self) -> bool:
        return self.state in (PeerState.THIS_SYSTEM, PeerState.ACTIVE)


@dataclass
class PeerView:
    ip: str
    last: Hello | None = None
    last_at: float | None = None
    channel_failure: str | None = None  # from the secure channel: "key_mismatch", ...
    rtt_ms: deque[float] = field(default_factory=lambda: deque(maxlen=RTT_SAMPLES))
    clock_offset_s: float | None = None
    #: when the secure channel to the peer was last established: a HELLO made before
    #: then waited for the handshake, so its echo measures the handshake, not the path
    channel_up_at: float | None = None

    def channel_established(self, now: float) -> None:
        self.channel_failure = None
        self.channel_up_at = now

    def received(self, hello: Hello, now: float, my_wall_ms: int) -> None:
        self.last, self.last_at, self.channel_failure = hello, now, None
        echo = hello.echo_sent_at
        fresh = echo is not None and (self.channel_up_at is None or echo >= self.channel_up_at)
        if echo is not None and fresh and echo <= now:
            rtt_s = now - echo - max(0.0, hello.echo_hold_s)
            if rtt_s >= 0:
                self.rtt_ms.append(rtt_s * 1000.0)
        one_way_s = (statistics.median(self.rtt_ms) / 2000.0) if self.rtt_ms else 0.0
        self.clock_offset_s = (hello.wall_ms - my_wall_ms) / 1000.0 + one_way_s

    @property
    def rtt_median_ms(self) -> float | None:
        return statistics.median(self.rtt_ms) if self.rtt_ms else None

    def status(self, me: LocalFacts, now: float) -> Status:
        if self.channel_failure == "key_mismatch":
            return Status(PeerState.KEY_MISMATCH, "Failed: cluster pre-shared key mismatch")
        if self.channel_failure == "unknown_peer":  # G-R12: the peer does not list us
            return Status(
                PeerState.PEER_LIST_MISMATCH,
                f"Failed: peer list mismatch (this peer, {me.ip}, is not in the peer's list)",
            )
        hello = self.last
        if hello is None or self.last_at is None or now - self.last_at > DEAD_AFTER_S:
            reason = "no answer" if hello is None else "no answer for over 10 s"
            return Status(PeerState.UNREACHABLE, f"Failed: unreachable ({reason})")
        if hello.version != me.version:  # G-R1
            return Status(
                PeerState.VERSION_MISMATCH,
                f"Failed: software version mismatch ({me.version} here, {hello.version} on peer)",
            )
        if not hello.licensed or not me.licensed:  # G-R10
            where = "this peer" if not me.licensed else "the peer"
            return Status(
                PeerState.NOT_LICENSED,
                f"Failed: not licensed ({where} has no release key: clustering is not supported)",
            )
        if hello.capacity != me.capacity:  # G-R2: no mixing
            return Status(
                PeerState.NOT_LICENSED,
                f"Failed: not licensed (capacity mismatch: {_capacity(me.capacity)} here, "
                f"{_capacity(hello.capacity)} on peer)",
            )
        mine, theirs = set(me.peers), set(hello.peers)
        if mine != theirs:  # G-R12
            parts = []
            if mine - theirs:
                parts.append("missing on peer: " + ", ".join(sorted(mine - theirs)))
            if theirs - mine:
                parts.append("only on peer: " + ", ".join(sorted(theirs - mine)))
            return Status(
                PeerState.PEER_LIST_MISMATCH,
                "Failed: peer list mismatch (" + "; ".join(parts) + ")",
            )
        if hello.restart_pending:
            return Status(PeerState.WAITING_FOR_RESTART, "Failed: waiting for restart")
        return Status(PeerState.ACTIVE, f"Active as {hello.host_name}")


def _capacity(capacity: str) -> str:
    return "full capacity" if capacity == "full" else "Select"


def cluster_alarms(
    me: LocalFacts, views: Iterable[PeerView], now: float
) -> list[tuple[int, str, str]]:
    """(code, subject, detail) of every cluster alarm that should be active."""
    alarms: list[tuple[int, str, str]] = []
    if me.peers and me.ip not in me.peers:
        alarms.append((20015, "", f"This peer's address {me.ip} is not in its own peer list"))
    for view in views:
        status = view.status(me, now)
        if status.state is PeerState.UNREACHABLE or status.state is PeerState.KEY_MISMATCH:
            alarms.append((20004, view.ip, f"Peer {view.ip}: {status.text}"))
        elif status.state is PeerState.PEER_LIST_MISMATCH:
            alarms.append((20012, view.ip, f"Peer {view.ip}: {status.text}"))
        elif status.state is PeerState.VERSION_MISMATCH:
            alarms.append((20008, view.ip, f"Peer {view.ip}: {status.text}"))
        elif status.state is PeerState.NOT_LICENSED:
            alarms.append((20030, view.ip, f"Peer {view.ip}: {status.text}"))
        if not status.ok:
            continue
        rtt = view.rtt_median_ms
        if rtt is not None and rtt > RTT_LIMIT_MS:  # G-R5
            alarms.append(
                (
                    20031,
                    view.ip,
                    f"Round trip to {view.ip} is {rtt:.1f} ms (limit {RTT_LIMIT_MS:g} ms)",
                )
            )
        offset = view.clock_offset_s
        if offset is not None and abs(offset) > CLOCK_SKEW_LIMIT_S:  # G-R3
            alarms.append(
                (20032, view.ip, f"Clock of {view.ip} differs from this peer's by {offset:+.1f} s")
            )
        if view.last is not None and not view.last.ntp_synchronized:  # G-R3
            alarms.append((20033, view.ip, f"Peer {view.ip} reports its NTP state unsynchronised"))
    return alarms


def config_problems(peers: Sequence[str], capacity: str, licensed: bool) -> list[str]:
    """Why a clustering configuration is refused at Save (G-R2, G-R10)."""
    configured = [p for p in peers if p]
    if not configured:
        return []
    problems = []
    if not licensed:
        problems.append(
            "clustering is not supported without a release key (TelePresence Conductor Essentials)"
        )
    if capacity == "select" and len(configured) > 2:
        problems.append("TelePresence Conductor Select can be clustered with at most 2 peers")
    return problems
