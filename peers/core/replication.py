"""Replication of shared data between cluster peers (G-S1, G-S3, G-P2, G-R14).

Models a last-writer-wins map replicated between up to three peers over the
secure channel. Each entry carries a hybrid-logical-clock `Version`; the
greater version wins everywhere, so every peer picks the same winner whatever
order messages arrive in. Deletes are tombstones (an entry with `deleted`).

Messages (payloads of the secure channel, never larger than `max_payload`,
which the driver derives from the peer's configured cluster interface MTU —
G-R14: a message is split into fragments of at most that size and never relies
on IP fragmentation):

- DIGEST: a hash of every (key, version) this peer holds; sent to each peer every
  `gossip_interval_s`. A peer whose digest differs answers with its SUMMARY.
- SUMMARY: (key, version) pairs of one key range; whoever holds something newer
  or missing on the other side PUSHes it. Summaries are unacknowledged (the next
  gossip round repeats them).
- PUSH: entries, fragmented, reliable: the receiver ACKs the whole message; the
  sender retransmits with back-off, re-fragmenting at the current `max_payload`,
  so lowering the MTU setting repairs a path that drops large packets.
- JOIN / SNAPSHOT: a peer that joins a cluster (G-P2) asks for the cluster's
  data and replaces its own shared data with it; until then it neither pushes
  nor answers summaries, so its old configuration never spreads.

Invariants:
- `merge` is commutative, associative and idempotent (LWW on versions);
- after peers can exchange messages for long enough, every established peer
  holds identical entries (anti-entropy);
- a message that fails to decode is rejected with a reason and applies nothing.
"""

from __future__ import annotations

import enum
import hashlib
import json
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from peers.core.hlc import HybridClock, Version

MSG_DIGEST = b"D"
MSG_SUMMARY = b"S"
MSG_FRAGMENT = b"F"
MSG_ACK = b"A"
MSG_JOIN = b"J"
_FRAG_HEADER = struct.Struct("!cQHH")  # type, message id, index, count
_ACK = struct.Struct("!cQ")
MIN_PAYLOAD = 64
MAX_FRAGMENTS = 4096
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
REASSEMBLY_TIMEOUT_S = 60.0
RETRANSMIT_FIRST_S = 0.5
RETRANSMIT_MAX_S = 8.0
STALLED_AFTER_ATTEMPTS = 5


class Role(enum.Enum):
    ESTABLISHED = "established"  # holds the cluster's data (the seed, or joined)
    JOINING = "joining"  # waits for a snapshot from an established peer (G-P2)


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    version: Version
    deleted: bool
    value: Any

    def to_list(self) -> list[Any]:
        return [self.key, self.version.to_list(), self.deleted, self.value]

    @classmethod
    def from_list(cls, raw: Any) -> Entry:
        if not isinstance(raw, list) or len(raw) != 4:
            raise ValueError(f"not an entry: {raw!r}")
        key, version, deleted, value = raw
        if not isinstance(key, str) or not key or len(key) > 256:
            raise ValueError("entry key must be a non-empty string of at most 256 characters")
        if not isinstance(deleted, bool):
            raise ValueError("entry deleted flag must be a boolean")
        return cls(key, Version.from_list(version), deleted, None if deleted else value)


@dataclass(frozen=True, slots=True)
class Applied:
    entry: Entry
    source: str


@dataclass(frozen=True, slots=True)
class Adopted:
    source: str
    entries: int


@dataclass(frozen=True, slots=True)
class Rejected:
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class Stalled:
    peer: str
    attempts: int
    max_payload: int


@dataclass(frozen=True, slots=True)
class Recovered:
    peer: str


Event = Applied | Adopted | Rejected | Stalled | Recovered


@dataclass
class _Outbound:
    peer: str
    body: bytes
    attempts: int = 0
    next_at: float = 0.0
    snapshot: bool = False


@dataclass
class _Reassembly:
    count: int
    parts: dict[int, bytes] = field(default_factory=dict)
    started: float = 0.0
    size: int = 0


class Replicator:
    def __init__(
        self,
        me: str,
        *,
        rng: random.Random,
        role: Role = Role.ESTABLISHED,
        max_payload: int = 1400,
        gossip_interval_s: float = 1.0,
        entries: Iterable[Entry] = (),
        clock: HybridClock | None = None,
    ) -> None:
        self.me = me
        self.rng = rng
        self.role = role
        self.max_payload = max_payload
        self.gossip_interval_s = gossip_interval_s
        self.entries: dict[str, Entry] = {e.key: e for e in entries}
        self.clock = clock or HybridClock(me)
        for entry in self.entries.values():
            self.clock.observe(entry.version, entry.version.wall_ms)
        self.peers: list[str] = []
        self._out: list[tuple[str, bytes]] = []
        self._unacked: dict[int, _Outbound] = {}
        self._reassembly: dict[tuple[str, int], _Reassembly] = {}
        self._completed: dict[tuple[str, int], float] = {}
        self._next_gossip: dict[str, float] = {}
        self._summary_sent: dict[str, float] = {}
        self._stalled: set[str] = set()
        self.rejected: dict[str, int] = {}
        self._digest_cache: bytes | None = None

    # --------------------------------------------------------------- queries
    def get(self, key: str) -> Any:
        entry = self.entries.get(key)
        return None if entry is None or entry.deleted else entry.value

    def live(self) -> dict[str, Any]:
        return {k: e.value for k, e in sorted(self.entries.items()) if not e.deleted}

    def digest(self) -> bytes:
        if self._digest_cache is None:
            h = hashlib.sha256()
            for key in sorted(self.entries):
                e = self.entries[key]
                h.update(json.dumps([key, e.version.to_list(), e.deleted]).encode())
            self._digest_cache = h.digest()
        return self._digest_cache

    def stalled(self, peer: str) -> bool:
        return peer in self._stalled

    # -------------------------------------------------------------- commands
    def set_peers(self, peers: Iterable[str], now: float) -> None:
        wanted = sorted(set(peers) - {self.me})
        for peer in list(self._next_gossip):
            if peer not in wanted:
                del self._next_gossip[peer]
                self._stalled.discard(peer)
        self._unacked = {k: o for k, o in self._unacked.items() if o.peer in wanted}
        self.peers = wanted
        for peer in wanted:
            self._next_gossip.setdefault(peer, now)

    def write(self, key: str, value: Any, wall_ms: int, now: float) -> Entry:
        return self._local(Entry(key, self.clock.tick(wall_ms), False, value), now)

    def delete(self, key: str, wall_ms: int, now: float) -> Entry:
        return self._local(Entry(key, self.clock.tick(wall_ms), True, None), now)

    def publish(self, entry: Entry, now: float) -> Entry:
        """An entry written locally by someone holding this replicator's clock (the store)."""
        return self._local(entry, now)

    def _local(self, entry: Entry, now: float) -> Entry:
        self.entries[entry.key] = entry
        self._digest_cache = None
        if self.role is Role.ESTABLISHED:
            for peer in self.peers:
                self._push(peer, [entry], now)
        return entry

    # -------------------------------------------------------------- merging
    def merge(self, entry: Entry, wall_ms: int) -> bool:
        """Apply `entry` if it is newer than what we hold (LWW). True when applied."""
        current = self.entries.get(entry.key)
        self.clock.observe(entry.version, wall_ms)
        if current is not None and current.version >= entry.version:
            return False
        self.entries[entry.key] = entry
        self._digest_cache = None
        return True

    # --------------------------------------------------------------- sending
    def _send(self, peer: str, data: bytes) -> None:
        self._out.append((peer, data))

    def _push(self, peer: str, entries: list[Entry], now: float, *, snapshot: bool = False) -> None:
        body = json.dumps(
            {"e": [e.to_list() for e in entries], "s": snapshot}, separators=(",", ":")
        ).encode()
        msg_id = self.rng.getrandbits(64)
        out = _Outbound(peer, body, snapshot=snapshot)
        self._unacked[msg_id] = out
        self._transmit(msg_id, out, now)

    def _transmit(self, msg_id: int, out: _Outbound, now: float) -> None:
        chunk = max(MIN_PAYLOAD, self.max_payload) - _FRAG_HEADER.size
        parts = [out.body[i : i + chunk] for i in range(0, len(out.body), chunk)] or [b""]
        for index, part in enumerate(parts):
            self._send(out.peer, _FRAG_HEADER.pack(MSG_FRAGMENT, msg_id, index, len(parts)) + part)
        out.attempts += 1
        delay = min(RETRANSMIT_MAX_S, RETRANSMIT_FIRST_S * 2 ** (out.attempts - 1))
        out.next_at = now + delay

    def outgoing(self) -> list[tuple[str, bytes]]:
        out, self._out = self._out, []
        return out

    def _summary(self, peer: str) -> None:
        items = sorted((k, e.version.to_list()) for k, e in self.entries.items())
        budget = max(MIN_PAYLOAD, self.max_payload) - 1
        chunk: list[Any] = []
        lo: str | None = None
        size = 64
        for key, version in items:
            item_size = len(json.dumps([key, version])) + 1
            if chunk and size + item_size > budget:
                hi = chunk[-1][0]
                self._send(peer, MSG_SUMMARY + _json({"lo": lo, "hi": hi, "i": chunk}))
                lo, chunk, size = hi, [], 64
            chunk.append([key, version])
            size += item_size
        self._send(peer, MSG_SUMMARY + _json({"lo": lo, "hi": None, "i": chunk}))

    # ------------------------------------------------------------- receiving
    def receive(self, peer: str, data: bytes, now: float, wall_ms: int) -> list[Event]:
        if peer not in self.peers:
            return self._reject(peer, "not a peer of this cluster")
        if not data:
            return self._reject(peer, "empty message")
        kind = data[:1]
        try:
            if kind == MSG_FRAGMENT:
                return self._on_fragment(peer, data, now, wall_ms)
            if kind == MSG_ACK:
                return self._on_ack(peer, data)
            if kind == MSG_DIGEST:
                return self._on_digest(peer, data, now)
            if kind == MSG_SUMMARY:
                return self._on_summary(peer, data, now)
            if kind == MSG_JOIN:
                return self._on_join(peer, now)
        except (ValueError, TypeError, KeyError, struct.error, RecursionError) as exc:
            return self._reject(peer, f"malformed {kind!r} message: {exc}")
        return self._reject(peer, f"unknown message type {kind!r}")

    def _reject(self, peer: str, reason: str) -> list[Event]:
        self.rejected[reason.split(":")[0]] = self.rejected.get(reason.split(":")[0], 0) + 1
        return [Rejected(peer, reason)]

    def _on_ack(self, peer: str, data: bytes) -> list[Event]:
        _, msg_id = _ACK.unpack(data)
        out = self._unacked.get(msg_id)
        if out is None or out.peer != peer:
            return []
        del self._unacked[msg_id]
        if peer in self._stalled and not any(o.peer == peer for o in self._unacked.values()):
            self._stalled.discard(peer)
            return [Recovered(peer)]
        return []

    def _on_digest(self, peer: str, data: bytes, now: float) -> list[Event]:
        body = _load(data[1:])
        digest = bytes.fromhex(str(body["d"]))
        if self.role is not Role.ESTABLISHED:
            return []
        if digest != self.digest() and now >= self._summary_sent.get(peer, -1e9) + (
            self.gossip_interval_s / 2
        ):
            self._summary_sent[peer] = now
            self._summary(peer)
        return []

    def _on_summary(self, peer: str, data: bytes, now: float) -> list[Event]:
        body = _load(data[1:])
        if self.role is not Role.ESTABLISHED:
            return []
        lo, hi, items = body["lo"], body["hi"], body["i"]
        if not (lo is None or isinstance(lo, str)) or not (hi is None or isinstance(hi, str)):
            raise ValueError("summary range bounds must be strings or null")
        if not isinstance(items, list):
            raise ValueError("summary items must be a list")
        theirs = {}
        for item in items:
            if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str):
                raise ValueError("summary item must be [key, version]")
            theirs[item[0]] = Version.from_list(item[1])
        newer = [
            e
            for k, e in sorted(self.entries.items())
            if (lo is None or k > lo)
            and (hi is None or k <= hi)
            and (k not in theirs or e.version > theirs[k])
        ]
        if newer:
            self._push(peer, newer, now)
        return []

    def _on_join(self, peer: str, now: float) -> list[Event]:
        if self.role is Role.ESTABLISHED:
            self._push(peer, list(self.entries.values()), now, snapshot=True)
        return []

    def _on_fragment(self, peer: str, data: bytes, now: float, wall_ms: int) -> list[Event]:
        _, msg_id, index, count = _FRAG_HEADER.unpack_from(data)
        if not 0 < count <= MAX_FRAGMENTS or index >= count:
            raise ValueError(f"fragment {index} of {count}")
        key = (peer, msg_id)
        if key in self._completed:
            self._send(peer, _ACK.pack(MSG_ACK, msg_id))  # our ACK was lost: again
            return []
        slot = self._reassembly.get(key)
        if slot is None:
            slot = self._reassembly[key] = _Reassembly(count, started=now)
        if slot.count != count:
            del self._reassembly[key]
            raise ValueError("fragment count changed within one message")
        part = data[_FRAG_HEADER.size :]
        if index not in slot.parts:
            slot.parts[index] = part
            slot.size += len(part)
        if slot.size > MAX_MESSAGE_BYTES:
            del self._reassembly[key]
            raise ValueError("message too large")
        if len(slot.parts) < count:
            return []
        del self._reassembly[key]
        body = _load(b"".join(slot.parts[i] for i in range(count)))
        raw_entries = body["e"]
        if not isinstance(raw_entries, list):
            raise ValueError("entries must be a list")
        entries = [Entry.from_list(raw) for raw in raw_entries]
        snapshot = body.get("s") is True
        self._completed[key] = now
        self._send(peer, _ACK.pack(MSG_ACK, msg_id))
        if snapshot:
            if self.role is not Role.JOINING:
                return []
            return self._adopt(peer, entries, wall_ms)
        if self.role is not Role.ESTABLISHED:
            return []
        return [Applied(e, peer) for e in entries if self.merge(e, wall_ms)]

    def _adopt(self, peer: str, entries: list[Entry], wall_ms: int) -> list[Event]:
        """G-P2: the joining peer's shared data is replaced by the cluster's."""
        self.entries = {}
        for entry in entries:
            self.merge(entry, wall_ms)
        self._digest_cache = None
        self.role = Role.ESTABLISHED
        return [Adopted(peer, len(entries))]

    # ---------------------------------------------------------------- timers
    def next_deadline(self) -> float | None:
        times = [o.next_at for o in self._unacked.values()]
        times += list(self._next_gossip.values())
        times += [r.started + REASSEMBLY_TIMEOUT_S for r in self._reassembly.values()]
        return min(times) if times else None

    def on_timer(self, now: float) -> list[Event]:
        events: list[Event] = []
        for msg_id, out in sorted(self._unacked.items(), key=lambda kv: kv[1].next_at):
            if out.next_at <= now:
                self._transmit(msg_id, out, now)
                if out.attempts > STALLED_AFTER_ATTEMPTS and out.peer not in self._stalled:
                    self._stalled.add(out.peer)
                    events.append(Stalled(out.peer, out.attempts, self.max_payload))
        for peer, due in sorted(self._next_gossip.items()):
            if due <= now:
                self._next_gossip[peer] = now + self.gossip_interval_s
                if self.role is Role.JOINING:
                    self._send(peer, MSG_JOIN)
                else:
                    self._send(peer, MSG_DIGEST + _json({"d": self.digest().hex()}))
        for key, slot in list(self._reassembly.items()):
            if slot.started + REASSEMBLY_TIMEOUT_S <= now:
                del self._reassembly[key]
        for key, at in list(self._completed.items()):
            if at + REASSEMBLY_TIMEOUT_S * 4 <= now:
                del self._completed[key]
        return events


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _load(raw: bytes) -> dict[str, Any]:
    body = json.loads(raw.decode("utf-8"))
    if not isinstance(body, dict):
        raise ValueError("message body must be a JSON object")
    return body
