"""Conference placement: which conference bridge holds a conference (G-S3, G-B1, G-R8).

What it models (Conductor XC3.0 terms; the detail is UNCONFIRMED in the sources,
cisco-behaviour.md 2): a conference alias names a conference template; the
template names a service preference, an ordered list of conference bridge
pools; a pool is a set of bridges of one type (TelePresence Server or MCU).
A new conference goes to the first pool, in preference order, that has a usable
bridge with a free port; within a pool, the usable bridge with the most free
ports (ties by name). A conference that exists stays on its bridge while that
bridge is alive (G-S3: every peer answers alike, because the conference records
are replicated); when its bridge is gone the conference is placed again.

Usable (for a new conference): enabled, reachable and healthy at its last poll,
and not reported full. A bridge never polled yet counts as usable (the first
request tells). An existing conference stays on a full bridge; it is placed again
only when its bridge is disabled, unreachable or unhealthy.

The conference record is a replicated entry (`conference:<name>`), last writer
wins: after a partition in which two peers created the same conference on two
bridges, every peer keeps the same winner, and `reconcile` tells a peer which of
the conferences *it* created lost, so it destroys them on their bridge (their
participants are dropped; tplab's choice, see README).

Invariants: pure; `place` never chooses a bridge that is not usable or has no
free port; `conference_uri` gives what the VCS dials, the same on every peer.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

CONFERENCE_PREFIX = "conference:"
_URI_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BridgeKind(enum.Enum):
    TELEPRESENCE_SERVER = "TelePresence Server"
    MCU = "TelePresence MCU"


@dataclass(frozen=True, slots=True)
class Bridge:
    name: str
    kind: BridgeKind
    address: str
    protocol: str  # "HTTP" or "HTTPS" (G-R8: per bridge)
    port: int
    username: str
    password: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    kind: BridgeKind
    bridges: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServicePreference:
    name: str
    pools: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    service_preference: str
    conference_type: str = "meeting"  # meeting / lecture
    participant_limit: int = 0  # 0 = no limit


@dataclass(frozen=True, slots=True)
class BridgeHealth:
    """What this peer saw at its last poll of a bridge (not replicated)."""

    reachable: bool
    healthy: bool
    free_ports: int
    reason: str = ""

    @property
    def alive(self) -> bool:
        return self.reachable and self.healthy

    @property
    def usable(self) -> bool:
        """Alive and with a free port: may take a new conference."""
        return self.alive and self.free_ports > 0


@dataclass(frozen=True, slots=True)
class ConferenceRecord:
    """A conference the cluster knows (replicated)."""

    name: str
    bridge: str
    uri: str
    bridge_id: str  # MCU: the conference name; TelePresence Server: its conferenceID
    created_by: str  # the peer (host name) that created it

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "bridge": self.bridge,
            "uri": self.uri,
            "bridge_id": self.bridge_id,
            "created_by": self.created_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ConferenceRecord:
        return cls(**{k: str(data[k]) for k in ("name", "bridge", "uri", "bridge_id",
                                                 "created_by")})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Join:
    record: ConferenceRecord


@dataclass(frozen=True, slots=True)
class Create:
    bridge: Bridge
    uri: str


@dataclass(frozen=True, slots=True)
class NoCapacity:
    reason: str


Placement = Join | Create | NoCapacity


def conference_uri(name: str) -> str:
    """The alias part the VCS dials at the bridge (`<uri>@<bridge address>`)."""
    return _URI_UNSAFE.sub(".", name).strip(".").lower()[:31] or "conference"


def usable(bridge: Bridge, health: Mapping[str, BridgeHealth]) -> bool:
    seen = health.get(bridge.name)
    return bridge.enabled and (seen is None or seen.usable)


def place(
    conference: str,
    template: Template | None,
    *,
    records: Mapping[str, ConferenceRecord],
    bridges: Mapping[str, Bridge],
    pools: Mapping[str, Pool],
    preferences: Mapping[str, ServicePreference],
    health: Mapping[str, BridgeHealth],
) -> Placement:
    existing = records.get(conference)
    if existing is not None:
        bridge = bridges.get(existing.bridge)
        seen = health.get(existing.bridge)
        # a full bridge keeps its conferences (their new participants get its "full"
        # answer); only a bridge that is gone or unhealthy has them placed again
        if bridge is not None and bridge.enabled and (seen is None or seen.alive):
            return Join(existing)
    if template is None:
        return NoCapacity("the conference alias names no conference template")
    preference = preferences.get(template.service_preference)
    if preference is None:
        return NoCapacity(f"service preference {template.service_preference!r} does not exist")
    for pool_name in preference.pools:
        pool = pools.get(pool_name)
        if pool is None:
            continue
        candidates = [
            bridges[name]
            for name in pool.bridges
            if name in bridges and bridges[name].kind is pool.kind and usable(bridges[name], health)
        ]
        if candidates:
            best = min(candidates, key=lambda b: (-_free(b, health), b.name))
            return Create(best, conference_uri(conference))
    return NoCapacity("no conference bridge with free capacity in " + ", ".join(preference.pools))


def _free(bridge: Bridge, health: Mapping[str, BridgeHealth]) -> int:
    seen = health.get(bridge.name)
    return seen.free_ports if seen is not None else 1 << 30


def reconcile(
    me: str,
    created: Iterable[ConferenceRecord],
    records: Mapping[str, ConferenceRecord],
    ended: Collection[str] = (),
) -> list[ConferenceRecord]:
    """The conferences this peer (`me`) created that the cluster's records no longer
    point at: they lost to another peer's copy, or their record was ended (deleted:
    its name is in `ended`). No record at all is not enough: a peer that has just
    joined may not have the cluster's record yet, and another peer may already have
    adopted the conference (G-P6: destroying it then cut every later call off)."""
    losers = []
    for mine in created:
        if mine.created_by != me:
            continue
        winner = records.get(mine.name)
        if winner is None:
            if mine.name in ended:
                losers.append(mine)
        elif (winner.bridge, winner.bridge_id) != (mine.bridge, mine.bridge_id):
            losers.append(mine)
    return losers


def ended_from(entries: Sequence[tuple[str, bool]]) -> frozenset[str]:
    """Names of conferences whose replicated record was deleted (key, deleted) ->
    names; the key is `conference:<name>`."""
    return frozenset(
        key[len(CONFERENCE_PREFIX) :]
        for key, deleted in entries
        if deleted and key.startswith(CONFERENCE_PREFIX)
    )


def records_from(entries: Sequence[tuple[str, object]]) -> dict[str, ConferenceRecord]:
    """Replicated `conference:<name>` entries (key, value) -> records by name."""
    out: dict[str, ConferenceRecord] = {}
    for key, value in entries:
        if key.startswith(CONFERENCE_PREFIX) and isinstance(value, dict):
            record = ConferenceRecord.from_json(value)
            out[record.name] = record
    return out
