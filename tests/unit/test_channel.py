"""The secure peer channel core (G-R15, G-R14, G-R12): two or three cores wired together
in memory by `Net`, which shuttles `datagrams_to_send` between them while the test
advances `now`. No event loop, no sockets, no clock."""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from peers.core.channel import (
    RECORD_OVERHEAD,
    REPLAY_WINDOW,
    ChannelConfig,
    ChannelEvent,
    ChannelSet,
    ChannelState,
    Established,
    Failed,
    FailureReason,
    PayloadReceived,
    PeerChannel,
    Rejected,
    RejectReason,
    Rekeyed,
    max_payload,
)
from peers.wire.channel import (
    HANDSHAKE_MAX_BYTES,
    IPV4_UDP_OVERHEAD,
    MIN_MTU_BYTES,
    AuthI,
    AuthR,
    MsgType,
    Notify,
    NotifyCode,
    Record,
    SaInit,
    SaResp,
    decode_datagram,
)
from peers.wire.errors import LocalProtocolError, RemoteProtocolError

A_IP = "10.0.0.1"
B_IP = "10.0.0.2"
C_IP = "10.0.0.3"
STRANGER_IP = "10.0.0.66"
PSK = b"cluster pre-shared key"

Node = PeerChannel | ChannelSet
Filter = Callable[[str, str, bytes], bool]


def _outgoing(node: Node, now: float) -> list[tuple[str, bytes]]:
    if isinstance(node, PeerChannel):
        return [(node.peer_ip, data) for data in node.datagrams_to_send(now)]
    return node.datagrams_to_send(now)


@dataclass
class Net:
    """An in-memory network of channel cores under a test-controlled clock.

    `drop(src, dst, data)` returning True loses a datagram; every datagram sent is
    kept in `sent` (before loss) and every event in `events[ip]`.
    """

    nodes: dict[str, Node]
    latency_s: float = 0.005
    now: float = 0.0
    drop: Filter = field(default=lambda src, dst, data: False)
    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    events: dict[str, list[ChannelEvent]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._flight: list[tuple[float, int, str, str, bytes]] = []
        self._seq = 0
        for ip in self.nodes:
            self.events.setdefault(ip, [])

    @classmethod
    def of(cls, *nodes: Node, **kw: object) -> Net:
        return cls({n.local_ip: n for n in nodes}, **kw)  # type: ignore[arg-type]

    def flush(self) -> None:
        for src, node in self.nodes.items():
            for dst, data in _outgoing(node, self.now):
                self.sent.append((src, dst, data))
                if self.drop(src, dst, data) or dst not in self.nodes:
                    continue
                self._seq += 1
                heapq.heappush(self._flight, (self.now + self.latency_s, self._seq, src, dst, data))

    def deliver(self, dst: str, data: bytes, src: str) -> list[ChannelEvent]:
        """Hand one datagram to `dst` now, as if it came from `src`."""
        events = self.nodes[dst].receive_datagram(data, src, self.now)
        self.events[dst].extend(events)
        return events

    def run(self, duration_s: float) -> None:
        until = self.now + duration_s
        for _ in range(1_000_000):
            self.flush()
            deadlines = [d for n in self.nodes.values() if (d := n.next_deadline()) is not None]
            next_timer = min(deadlines) if deadlines else None
            next_msg = self._flight[0][0] if self._flight else None
            due = [t for t in (next_timer, next_msg) if t is not None and t <= until]
            if not due:
                self.now = until
                return
            self.now = max(self.now, min(due))
            if next_msg is not None and next_msg <= self.now:
                _, _, src, dst, data = heapq.heappop(self._flight)
                self.deliver(dst, data, src)
                continue
            for ip, node in self.nodes.items():
                deadline = node.next_deadline()
                if deadline is not None and deadline <= self.now:
                    self.events[ip].extend(node.on_timer(self.now))
        raise AssertionError("network did not settle")

    def payloads(self, ip: str) -> list[bytes]:
        return [e.payload for e in self.events[ip] if isinstance(e, PayloadReceived)]

    def of_type(self, ip: str, kind: type) -> list[ChannelEvent]:
        return [e for e in self.events[ip] if isinstance(e, kind)]

    def rejected(self, ip: str) -> Counter[RejectReason]:
        return Counter(e.reason for e in self.events[ip] if isinstance(e, Rejected))

    def sent_of(self, src: str, kind: MsgType) -> list[bytes]:
        return [data for s, _, data in self.sent if s == src and data[0] == kind]


def channel(
    local: str, peer: str, *, psk: bytes = PSK, seed: int = 1, **config: Any
) -> PeerChannel:
    return PeerChannel(local, peer, psk, random.Random(f"{seed}:{local}"), ChannelConfig(**config))


def established_pair(seed: int = 1, **config: Any) -> Net:
    net = Net.of(channel(A_IP, B_IP, seed=seed, **config), channel(B_IP, A_IP, seed=seed, **config))
    net.nodes[A_IP].connect(net.now)
    net.run(1.0)
    a, b = net.nodes[A_IP], net.nodes[B_IP]
    assert isinstance(a, PeerChannel)
    assert isinstance(b, PeerChannel)
    assert a.established
    assert b.established
    return net


def state_of(ch: PeerChannel) -> ChannelState:
    return ch.state  # read through a call: the state changes under the type checker's feet


def chan(net: Net, ip: str) -> PeerChannel:
    node = net.nodes[ip]
    assert isinstance(node, PeerChannel)
    return node


def _record(data: bytes) -> Record:
    msg = decode_datagram(data)
    assert isinstance(msg, Record)
    return msg


def sealed_records(net: Net, src: str, dst: str, payloads: list[bytes]) -> list[bytes]:
    """Seal `payloads` at `src` and return the datagrams without delivering them."""
    sender = chan(net, src)
    for payload in payloads:
        sender.send(payload, net.now)
    datagrams = sender.datagrams_to_send(net.now)
    assert len(datagrams) == len(payloads)
    return datagrams


# ------------------------------------------------------------------- handshake
def test_handshake_establishes_and_carries_payloads_both_ways_G_R15() -> None:
    net = Net.of(channel(A_IP, B_IP), channel(B_IP, A_IP))
    a, b = chan(net, A_IP), chan(net, B_IP)
    assert a.state is b.state is ChannelState.IDLE
    a.send(b"queued before the handshake", net.now)
    a.connect(net.now)
    assert state_of(a) is ChannelState.HANDSHAKING
    net.run(1.0)
    assert state_of(a) is state_of(b) is ChannelState.ESTABLISHED
    assert a.failure is None
    assert b.failure is None
    assert net.of_type(A_IP, Established) == [Established(B_IP)]
    assert net.of_type(B_IP, Established) == [Established(A_IP)]
    assert net.payloads(B_IP) == [b"queued before the handshake"]
    for i in range(5):
        a.send(b"a->b %d" % i, net.now)
        b.send(b"b->a %d" % i, net.now)
    b.send(b"", net.now)
    net.run(1.0)
    assert net.payloads(B_IP)[1:] == [b"a->b %d" % i for i in range(5)]
    assert net.payloads(A_IP) == [b"b->a %d" % i for i in range(5)] + [b""]
    assert not net.rejected(A_IP)
    assert not net.rejected(B_IP)
    # four handshake messages, each sent once: M1, M2, M3, M4
    kinds = [data[0] for _, _, data in net.sent if data[0] != MsgType.RECORD]
    assert kinds == [MsgType.SA_INIT, MsgType.SA_RESP, MsgType.AUTH_I, MsgType.AUTH_R]


def test_handshake_datagrams_fit_the_smallest_mtu_G_R14() -> None:
    """Every handshake datagram fits MTU 576 (the floor of the MTU setting) with its
    IPv4 + UDP headers: the handshake never needs fragmentation either."""
    net = established_pair()
    sizes = {MsgType(data[0]): len(data) for _, _, data in net.sent}
    assert sizes[MsgType.SA_INIT] == 539
    assert sizes[MsgType.SA_RESP] == HANDSHAKE_MAX_BYTES == 546
    assert sizes[MsgType.AUTH_I] == sizes[MsgType.AUTH_R] == 69
    assert max(sizes.values()) + IPV4_UDP_OVERHEAD <= MIN_MTU_BYTES


def test_same_seed_same_bytes() -> None:
    """All randomness comes from the injected source: seeded runs are reproducible."""
    first = [data for _, _, data in established_pair(seed=7).sent]
    again = [data for _, _, data in established_pair(seed=7).sent]
    other = [data for _, _, data in established_pair(seed=8).sent]
    assert first == again
    assert first != other


def test_wire_overhead_constant_matches_netsim() -> None:
    from netsim.api import IPV4_UDP_OVERHEAD as NETSIM_OVERHEAD

    assert IPV4_UDP_OVERHEAD == NETSIM_OVERHEAD


# --------------------------------------------------------------- key mismatch
def test_wrong_psk_both_sides_fail_with_key_mismatch_nothing_delivered_G_R15() -> None:
    net = Net.of(channel(A_IP, B_IP, psk=b"key one"), channel(B_IP, A_IP, psk=b"key two"))
    a, b = chan(net, A_IP), chan(net, B_IP)
    a.send(b"secret", net.now)
    b.send(b"secret too", net.now)
    a.connect(net.now)
    b.connect(net.now)
    net.run(2.0)
    assert a.state is b.state is ChannelState.FAILED
    assert a.failure is b.failure is FailureReason.KEY_MISMATCH
    assert net.of_type(A_IP, Failed) == [Failed(B_IP, FailureReason.KEY_MISMATCH)]
    assert net.of_type(B_IP, Failed) == [Failed(A_IP, FailureReason.KEY_MISMATCH)]
    # the responder (the higher address) could not decrypt AUTH_I and said so
    assert b.rejected[RejectReason.KEY_MISMATCH] == 1
    assert net.sent_of(B_IP, MsgType.NOTIFY) == [
        Notify(
            decode_datagram(net.sent_of(A_IP, MsgType.AUTH_I)[0]).spi_i,  # type: ignore[union-attr]
            decode_datagram(net.sent_of(A_IP, MsgType.AUTH_I)[0]).spi_r,  # type: ignore[union-attr]
            NotifyCode.AUTHENTICATION_FAILED,
        ).encode()
    ]
    # they keep retrying and keep failing the same way; nothing is ever delivered
    net.run(120.0)
    assert a.failure is b.failure is FailureReason.KEY_MISMATCH
    assert not a.established
    assert not b.established
    assert len(net.of_type(A_IP, Failed)) >= 3
    failures = net.of_type(A_IP, Failed) + net.of_type(B_IP, Failed)
    assert {e.reason for e in failures if isinstance(e, Failed)} == {FailureReason.KEY_MISMATCH}
    assert net.payloads(A_IP) == net.payloads(B_IP) == []
    assert not net.sent_of(A_IP, MsgType.RECORD)
    assert not net.sent_of(B_IP, MsgType.RECORD)


def test_key_fixed_after_mismatch_recovers_when_peer_restarts_G_R15() -> None:
    """G-R12 / G-R15: B restarts with the right key; the channel comes up."""
    net = Net.of(channel(A_IP, B_IP), channel(B_IP, A_IP, psk=b"typo"))
    chan(net, A_IP).connect(net.now)
    chan(net, B_IP).connect(net.now)
    net.run(5.0)
    assert chan(net, A_IP).failure is FailureReason.KEY_MISMATCH
    net.nodes[B_IP] = channel(B_IP, A_IP, seed=2)
    chan(net, B_IP).connect(net.now)
    net.run(2.0)
    assert chan(net, A_IP).established
    assert chan(net, B_IP).established
    assert chan(net, A_IP).failure is None


# --------------------------------------------------------------- unknown peers
class CountingRandom(random.Random):
    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.bits_drawn = 0

    def getrandbits(self, k: int, /) -> int:
        self.bits_drawn += k
        return super().getrandbits(k)


def test_unknown_source_rejected_before_any_crypto_G_R15() -> None:
    rng = CountingRandom(1)
    cluster = ChannelSet(A_IP, [A_IP, B_IP, C_IP], PSK, rng)
    assert sorted(cluster.channels) == [B_IP, C_IP]
    stranger = channel(STRANGER_IP, A_IP)  # a well-formed SA_INIT, from outside the list
    stranger.connect(0.0)
    (sa_init,) = stranger.datagrams_to_send(0.0)
    for data in (sa_init, b"", b"\x17" + bytes(40), bytes(range(256))):
        events = cluster.receive_datagram(data, STRANGER_IP, 0.0)
        assert [(e.peer_ip, e.reason) for e in events] == [  # type: ignore[union-attr]
            (STRANGER_IP, RejectReason.UNKNOWN_PEER)
        ]
    assert rng.bits_drawn == 0  # no nonce, no SPI, no DH private value: no crypto work
    assert cluster.rejected[RejectReason.UNKNOWN_PEER] == 4
    assert all(c.state is ChannelState.IDLE for c in cluster.channels.values())
    # a well-formed SA_INIT gets one unauthenticated NOTIFY UNKNOWN_PEER (rate-limited)
    out = cluster.datagrams_to_send(0.0)
    notify = Notify(decode_datagram(sa_init).spi_i, bytes(8), NotifyCode.UNKNOWN_PEER)  # type: ignore[union-attr]
    assert out == [(STRANGER_IP, notify.encode())]
    cluster.receive_datagram(sa_init, STRANGER_IP, 0.5)
    assert cluster.datagrams_to_send(0.5) == []
    events = stranger.receive_datagram(out[0][1], A_IP, 0.1)
    assert events == [Failed(A_IP, FailureReason.UNKNOWN_PEER)]


def test_peer_channel_rejects_any_other_source() -> None:
    a = channel(A_IP, B_IP)
    assert a.receive_datagram(b"\x01", C_IP, 0.0) == [
        Rejected(C_IP, RejectReason.UNKNOWN_PEER, f"{C_IP} is not {B_IP}")
    ]
    assert a.rejected == Counter({RejectReason.UNKNOWN_PEER: 1})


def test_peer_missing_from_the_other_list_fails_unknown_peer_G_R12() -> None:
    """A lists B, B lists only C: A's channel to B shows `unknown_peer`, B logs A."""
    a = ChannelSet(A_IP, [A_IP, B_IP], PSK, random.Random(1))
    b = ChannelSet(B_IP, [B_IP, C_IP], PSK, random.Random(2))
    net = Net.of(a, b)
    a.connect(net.now)
    net.run(2.0)
    assert a.channel(B_IP).failure is FailureReason.UNKNOWN_PEER
    assert net.of_type(A_IP, Failed) == [Failed(B_IP, FailureReason.UNKNOWN_PEER)]
    assert net.rejected(B_IP) == Counter({RejectReason.UNKNOWN_PEER: 1})


def test_three_peer_cluster_all_pairs_establish() -> None:
    ips = [A_IP, B_IP, C_IP]
    sets = [ChannelSet(ip, ips, PSK, random.Random(ip)) for ip in ips]
    net = Net.of(*sets)
    for s in sets:
        s.connect(net.now)
    net.run(3.0)
    for s in sets:
        assert all(c.established for c in s.channels.values())
        for peer in s.channels:
            s.send(peer, f"{s.local_ip}->{peer}".encode(), net.now)
    net.run(1.0)
    for ip in ips:
        assert sorted(net.payloads(ip)) == sorted(f"{o}->{ip}".encode() for o in ips if o != ip)
        assert not net.rejected(ip)


# ------------------------------------------------------------------- records
def test_tampered_record_any_byte_flipped_is_rejected_and_counted_G_R15() -> None:
    net = established_pair()
    b = chan(net, B_IP)
    (record,) = sealed_records(net, A_IP, B_IP, [b"x" * 40])
    for i in range(len(record)):
        for mask in (0x01, 0x80):
            bad = bytearray(record)
            bad[i] ^= mask
            events = net.deliver(B_IP, bytes(bad), A_IP)
            (rejected,) = events
            assert isinstance(rejected, Rejected), (i, events)
            assert rejected.reason in {
                RejectReason.TAMPERED,
                RejectReason.UNKNOWN_SPI,
                RejectReason.MALFORMED,
                RejectReason.TRUNCATED,
                RejectReason.TOO_OLD,
            }
    assert sum(b.rejected.values()) == 2 * len(record)
    # type byte: another (malformed) message; SPI: unknown SPI; sequence number 1 -> 0:
    # left of the window; any other bit: the tag does not verify
    assert b.rejected[RejectReason.UNKNOWN_SPI] == 2 * 8
    assert b.rejected[RejectReason.TOO_OLD] == 1
    assert b.rejected[RejectReason.TAMPERED] == 2 * len(record) - 2 - 16 - 1
    assert net.payloads(B_IP) == []
    # the genuine record still goes through afterwards, once
    assert net.deliver(B_IP, record, A_IP) == [PayloadReceived(A_IP, b"x" * 40)]


def test_truncated_record_is_rejected_G_R15() -> None:
    net = established_pair()
    (record,) = sealed_records(net, A_IP, B_IP, [b"y" * 20])
    for n in range(len(record)):
        (event,) = net.deliver(B_IP, record[:n], A_IP)
        assert isinstance(event, Rejected)
        expected = RejectReason.TRUNCATED if n < RECORD_OVERHEAD else RejectReason.TAMPERED
        assert event.reason is expected, n
    assert chan(net, B_IP).rejected[RejectReason.TRUNCATED] == RECORD_OVERHEAD
    assert net.payloads(B_IP) == []
    assert net.deliver(B_IP, record, A_IP) == [PayloadReceived(A_IP, b"y" * 20)]


def test_replayed_record_is_rejected_G_R15() -> None:
    net = established_pair()
    (record,) = sealed_records(net, A_IP, B_IP, [b"once"])
    assert net.deliver(B_IP, record, A_IP) == [PayloadReceived(A_IP, b"once")]
    for _ in range(3):
        (event,) = net.deliver(B_IP, record, A_IP)
        assert isinstance(event, Rejected)
        assert event.reason is RejectReason.REPLAYED
    assert chan(net, B_IP).rejected == Counter({RejectReason.REPLAYED: 3})
    assert net.payloads(B_IP) == [b"once"]


def test_record_with_unknown_spi_is_rejected_G_R15() -> None:
    net = established_pair(seed=1)
    other = established_pair(seed=2)  # another session between the same addresses
    (foreign,) = sealed_records(other, A_IP, B_IP, [b"from another SA"])
    (event,) = net.deliver(B_IP, foreign, A_IP)
    assert isinstance(event, Rejected)
    assert event.reason is RejectReason.UNKNOWN_SPI
    assert net.payloads(B_IP) == []


def test_reordering_within_the_window_accepted_once_each_G_R15() -> None:
    net = established_pair()
    payloads = [b"%03d" % i for i in range(REPLAY_WINDOW + 10)]
    records = sealed_records(net, A_IP, B_IP, payloads)
    window = list(range(10, len(records)))  # the last 64 sequence numbers, shuffled
    random.Random(3).shuffle(window)
    for i in window:
        assert net.deliver(B_IP, records[i], A_IP) == [PayloadReceived(A_IP, payloads[i])]
    assert sorted(net.payloads(B_IP)) == payloads[10:]
    for i in window:  # every one a second time: replays
        (event,) = net.deliver(B_IP, records[i], A_IP)
        assert isinstance(event, Rejected)
        assert event.reason is RejectReason.REPLAYED
    for i in range(10):  # left of the window: too old, even though never received
        (event,) = net.deliver(B_IP, records[i], A_IP)
        assert isinstance(event, Rejected)
        assert event.reason is RejectReason.TOO_OLD
    assert len(net.payloads(B_IP)) == REPLAY_WINDOW


def test_record_header_tamper_cannot_move_a_payload_to_another_sequence_number() -> None:
    net = established_pair()
    first, second = sealed_records(net, A_IP, B_IP, [b"first", b"second"])
    moved = Record(_record(first).spi, 3, _record(first).sealed).encode()
    (event,) = net.deliver(B_IP, moved, A_IP)
    assert isinstance(event, Rejected)
    assert event.reason is RejectReason.TAMPERED
    assert net.deliver(B_IP, second, A_IP) == [PayloadReceived(A_IP, b"second")]
    assert net.deliver(B_IP, first, A_IP) == [PayloadReceived(A_IP, b"first")]


# --------------------------------------------------------------- loss, timers
@pytest.mark.parametrize("lost", list(MsgType)[:4])
def test_lost_handshake_message_recovered_by_retransmission(lost: MsgType) -> None:
    dropped: list[bytes] = []

    def drop_first(src: str, dst: str, data: bytes) -> bool:
        if data[0] == lost and not dropped:
            dropped.append(data)
            return True
        return False

    net = Net.of(channel(A_IP, B_IP), channel(B_IP, A_IP), drop=drop_first)
    chan(net, A_IP).connect(net.now)
    net.run(5.0)
    assert dropped
    assert chan(net, A_IP).established
    assert chan(net, B_IP).established
    assert chan(net, A_IP).counters.retransmissions == 1
    assert len(net.of_type(A_IP, Established)) == len(net.of_type(B_IP, Established)) == 1


def test_lossy_link_handshake_still_completes() -> None:
    rng = random.Random(5)
    net = Net.of(
        channel(A_IP, B_IP), channel(B_IP, A_IP), drop=lambda s, d, data: rng.random() < 0.4
    )
    chan(net, A_IP).connect(net.now)
    chan(net, B_IP).connect(net.now)
    net.run(120.0)
    assert chan(net, A_IP).established
    assert chan(net, B_IP).established


def test_silent_peer_is_unreachable_after_the_retry_schedule() -> None:
    a = channel(A_IP, B_IP)
    a.connect(0.0)
    sent_at = [0.0]
    assert len(a.datagrams_to_send(0.0)) == 1
    events: list[ChannelEvent] = []
    for _ in range(10):
        deadline = a.next_deadline()
        assert deadline is not None
        events += a.on_timer(deadline)
        if events:
            break
        assert len(a.datagrams_to_send(deadline)) == 1
        sent_at.append(deadline)
    assert sent_at == [0.0, 1.0, 3.0, 7.0]  # 1 s, doubling, 4 transmissions
    assert events == [Failed(B_IP, FailureReason.UNREACHABLE)]
    retry_at = a.next_deadline()
    assert retry_at is not None
    assert retry_at >= 15.0 + 10.0
    assert a.state is ChannelState.FAILED
    assert a.failure is FailureReason.UNREACHABLE
    # it retries later (connect was called), and fails again while B stays silent
    deadline = a.next_deadline()
    assert deadline is not None
    a.on_timer(deadline)
    assert state_of(a) is ChannelState.HANDSHAKING
    assert a.failure is FailureReason.UNREACHABLE  # kept until established


@pytest.mark.parametrize("first", [A_IP, B_IP])
def test_simultaneous_initiation_converges_on_one_sa(first: str) -> None:
    net = Net.of(channel(A_IP, B_IP), channel(B_IP, A_IP))
    a, b = chan(net, A_IP), chan(net, B_IP)
    for node in (a, b) if first == A_IP else (b, a):
        node.connect(net.now)
    net.run(2.0)
    assert a.established
    assert b.established
    assert len(net.of_type(A_IP, Established)) == len(net.of_type(B_IP, Established)) == 1
    assert a.counters.collisions + b.counters.collisions >= 1
    assert len(net.sent_of(A_IP, MsgType.AUTH_I)) == 1  # the lower address initiated
    assert net.sent_of(B_IP, MsgType.AUTH_I) == []
    a.send(b"ping", net.now)
    b.send(b"pong", net.now)
    net.run(1.0)
    assert net.payloads(B_IP) == [b"ping"]
    assert net.payloads(A_IP) == [b"pong"]


def test_duplicated_handshake_messages_are_harmless() -> None:
    net = Net.of(channel(A_IP, B_IP), channel(B_IP, A_IP))
    net.latency_s = 0.0
    chan(net, A_IP).connect(net.now)
    net.run(1.0)
    handshake = [(s, d, data) for s, d, data in net.sent if data[0] != MsgType.RECORD]
    for src, dst, data in handshake * 2:
        for event in net.deliver(dst, data, src):
            assert not isinstance(event, Established | Rekeyed | Failed | PayloadReceived)
    assert chan(net, A_IP).established
    assert chan(net, B_IP).established
    a_before = len(net.sent_of(A_IP, MsgType.RECORD))
    chan(net, A_IP).send(b"still fine", net.now)
    net.run(1.0)
    assert net.payloads(B_IP) == [b"still fine"]
    assert len(net.sent_of(A_IP, MsgType.RECORD)) == a_before + 1


def test_peer_restart_is_recovered() -> None:
    net = established_pair()
    net.nodes[B_IP] = channel(B_IP, A_IP, seed=9)  # B lost its state
    chan(net, B_IP).connect(net.now)
    chan(net, A_IP).send(b"in flight to the old B", net.now)
    net.run(2.0)
    assert chan(net, A_IP).established
    assert chan(net, B_IP).established
    chan(net, A_IP).send(b"to the new B", net.now)
    net.run(1.0)
    assert net.payloads(B_IP) == [b"to the new B"]
    assert net.rejected(B_IP) == Counter({RejectReason.UNKNOWN_SPI: 1})


# ------------------------------------------------------------------- rekey
def test_rekey_happens_and_traffic_continues_with_nothing_lost_G_R15() -> None:
    net = established_pair(rekey_after_s=20.0, rekey_grace_s=5.0)
    net.latency_s = 0.05
    a, b = chan(net, A_IP), chan(net, B_IP)
    for i in range(1000):  # a record each way every 0.1 s for 100 s
        a.send(b"a%d" % i, net.now)
        b.send(b"b%d" % i, net.now)
        net.run(0.1)
    net.run(1.0)
    assert len(net.of_type(A_IP, Rekeyed)) >= 4
    assert len(net.of_type(B_IP, Rekeyed)) >= 4
    assert a.counters.rekeys == len(net.of_type(A_IP, Rekeyed))
    assert net.payloads(B_IP) == [b"a%d" % i for i in range(1000)]
    assert net.payloads(A_IP) == [b"b%d" % i for i in range(1000)]
    assert not net.rejected(A_IP)
    assert not net.rejected(B_IP)
    assert a.established
    assert b.established


def test_rekey_under_reordering_nothing_lost() -> None:
    """Records cross the rekey on both SAs; early ones wait for AUTH_R, late ones use
    the old SA's grace period."""
    rng = random.Random(11)
    net = established_pair(rekey_after_s=5.0, rekey_grace_s=2.0)
    original_flush = net.flush

    def jittery_flush() -> None:
        net.latency_s = 0.005 + rng.random() * 0.2
        original_flush()

    net.flush = jittery_flush  # type: ignore[method-assign]
    a, b = chan(net, A_IP), chan(net, B_IP)
    for i in range(400):
        a.send(b"a%d" % i, net.now)
        b.send(b"b%d" % i, net.now)
        net.run(0.05)
    net.run(2.0)
    assert len(net.of_type(A_IP, Rekeyed)) >= 3
    assert sorted(net.payloads(B_IP)) == sorted(b"a%d" % i for i in range(400))
    assert sorted(net.payloads(A_IP)) == sorted(b"b%d" % i for i in range(400))


def test_rekey_after_records_sequence_numbers_never_wrap() -> None:
    net = established_pair(rekey_after_records=5)
    a = chan(net, A_IP)
    for i in range(60):
        a.send(b"%d" % i, net.now)
        if i % 7 == 0:
            net.run(0.5)
    net.run(2.0)
    assert net.payloads(B_IP) == [b"%d" % i for i in range(60)]
    seqs = [_record(d).seq for d in net.sent_of(A_IP, MsgType.RECORD)]
    assert max(seqs) <= 10  # 2 x rekey_after_records: then payloads wait for the new SA
    assert a.counters.rekeys >= 5


# --------------------------------------------------------------------- MTU
def test_oversize_payload_refused_per_mtu_never_fragmented_G_R14() -> None:
    net = established_pair()
    a = chan(net, A_IP)
    assert RECORD_OVERHEAD == 33
    assert a.max_payload() == max_payload(1500) == 1500 - 28 - RECORD_OVERHEAD
    with pytest.raises(LocalProtocolError, match="G-R14"):
        a.send(b"z" * (a.max_payload() + 1), net.now)
    a.send(b"z" * a.max_payload(), net.now)
    (datagram,) = a.datagrams_to_send(net.now)
    assert len(datagram) + IPV4_UDP_OVERHEAD == 1500
    a.set_mtu(1300)
    assert a.max_payload() == 1300 - 28 - 33
    with pytest.raises(LocalProtocolError):
        a.send(b"z" * (1300 - 28 - 33 + 1), net.now)
    with pytest.raises(LocalProtocolError):
        a.set_mtu(500)
    assert a.counters.records_sent == 1


def test_queued_payload_too_big_after_mtu_lowered_is_dropped_not_fragmented_G_R14() -> None:
    a = channel(A_IP, B_IP)
    a.send(b"q" * 1400, 0.0)
    a.set_mtu(1200)
    b = channel(B_IP, A_IP)
    net = Net.of(a, b)
    a.connect(net.now)
    net.run(1.0)
    assert a.established
    assert net.payloads(B_IP) == []
    assert a.counters.queue_dropped == 1


# ---------------------------------------------------------------- local errors
@pytest.mark.parametrize(
    ("local", "peer", "psk"),
    [
        ("10.0.0.1", "10.0.0.1", PSK),
        ("nope", "10.0.0.2", PSK),
        ("10.0.0.1", "::1", PSK),
        (A_IP, B_IP, b""),
    ],
)
def test_invalid_configuration_is_a_local_protocol_error(local: str, peer: str, psk: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        PeerChannel(local, peer, psk, random.Random(0))


def test_invalid_config_values_are_local_protocol_errors() -> None:
    with pytest.raises(LocalProtocolError):
        ChannelConfig(mtu_bytes=575)
    with pytest.raises(LocalProtocolError):
        ChannelConfig(max_transmissions=0)
    with pytest.raises(LocalProtocolError):
        ChannelConfig(rekey_after_records=0)
    assert ChannelConfig().handshake_timeout_s == 15.0


# --------------------------------------------------------------------- wire
def test_wire_messages_round_trip() -> None:
    net = established_pair()
    chan(net, A_IP).send(b"hello", net.now)
    net.run(1.0)
    kinds = set()
    for _, _, data in net.sent:
        msg = decode_datagram(data)
        kinds.add(type(msg))
        assert msg.encode() == data
        assert decode_datagram(msg.encode()) == msg
    assert kinds == {SaInit, SaResp, AuthI, AuthR, Record}
    notify = Notify(b"\x01" * 8, bytes(8), NotifyCode.UNKNOWN_PEER)
    assert decode_datagram(notify.encode()) == notify


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x01" + bytes(100), "truncated"),
        (b"\x02" + bytes(600), "malformed"),
        (b"\x99", "malformed"),
        (b"\x05" + b"\x01" * 16 + b"\x00\x01", "malformed"),  # unknown NOTIFY code
        (b"\x17" + bytes(8) + bytes(8) + bytes(16), "malformed"),  # zero SPI
    ],
)
def test_decoder_errors_are_remote_protocol_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_datagram(data)
    assert info.value.reason == reason


def test_sa_init_with_out_of_range_public_value_is_malformed() -> None:
    good = SaInit(b"\x01" * 8, b"\x02" * 16, 5).encode()
    for public in (0, 1, (1 << 4096) - 1):
        bad = good[:27] + public.to_bytes(512, "big")
        with pytest.raises(RemoteProtocolError, match="out of range"):
            decode_datagram(bad)
    with pytest.raises(LocalProtocolError):
        SaInit(b"\x01" * 8, b"\x02" * 16, 1)
    with pytest.raises(LocalProtocolError):
        SaInit(bytes(8), b"\x02" * 16, 5)


def test_unsupported_version_or_proposal_answered_with_notify() -> None:
    b = channel(B_IP, A_IP)
    m1 = SaInit(b"\x01" * 8, b"\x02" * 16, 5, version=2)
    (event,) = b.receive_datagram(m1.encode(), A_IP, 0.0)
    assert isinstance(event, Rejected)
    assert event.reason is RejectReason.NO_PROPOSAL
    assert b.datagrams_to_send(0.0) == [
        Notify(m1.spi_i, bytes(8), NotifyCode.INVALID_MAJOR_VERSION).encode()
    ]
    assert b.state is ChannelState.IDLE


# ------------------------------------------------------------------- bench
def test_channel_bench_tiny_run_has_expected_figures() -> None:
    from emulator.bench import BenchOptions
    from emulator.bench.channel_bench import run_channel_bench

    result = run_channel_bench(BenchOptions(scale=0.01))
    names = {f.name for f in result.figures}
    assert {"handshake_ms_median", "handshake_ms_p99", "records_per_s_1kb"} <= names
    for figure in result.figures:
        assert figure.value > 0, figure.name
        assert figure.method


# ------------------------------------------------------- tampered handshake
def _step_to_auth_i() -> tuple[PeerChannel, PeerChannel, bytes, bytes]:
    """A -> B up to AUTH_I: returns both channels, M1 and M3 (M3 not yet delivered)."""
    a, b = channel(A_IP, B_IP), channel(B_IP, A_IP)
    a.connect(0.0)
    (m1,) = a.datagrams_to_send(0.0)
    assert b.receive_datagram(m1, A_IP, 0.0) == []
    (m2,) = b.datagrams_to_send(0.0)
    assert a.receive_datagram(m2, B_IP, 0.0) == []
    (m3,) = a.datagrams_to_send(0.0)
    return a, b, m1, m3


def test_altered_auth_i_reads_as_key_mismatch_but_genuine_one_still_completes_G_R15() -> None:
    """An altered AUTH_I cannot be told from a wrong key: the responder says
    AUTHENTICATION_FAILED. The half-open handshake is kept, so the genuine AUTH_I
    still completes it, and the authenticated AUTH_R overrides the NOTIFY."""
    a, b, _, m3 = _step_to_auth_i()
    bad = bytearray(m3)
    bad[-1] ^= 0x01
    events = b.receive_datagram(bytes(bad), A_IP, 0.1)
    assert [type(e) for e in events] == [Rejected, Failed]
    assert b.failure is FailureReason.KEY_MISMATCH
    (notify,) = b.datagrams_to_send(0.1)
    assert a.receive_datagram(notify, B_IP, 0.1) == [Failed(B_IP, FailureReason.KEY_MISMATCH)]
    assert b.receive_datagram(m3, A_IP, 0.2) == [Established(A_IP)]
    (m4,) = b.datagrams_to_send(0.2)
    assert a.receive_datagram(m4, B_IP, 0.2) == [Established(B_IP)]
    assert a.failure is None
    assert b.failure is None


def test_altered_auth_r_is_rejected_and_the_genuine_one_completes_G_R15() -> None:
    a, b, _, m3 = _step_to_auth_i()
    b.receive_datagram(m3, A_IP, 0.0)
    (m4,) = b.datagrams_to_send(0.0)
    for i in (0, 5, 20, 40, len(m4) - 1):
        bad = bytearray(m4)
        bad[i] ^= 0x04
        (event,) = a.receive_datagram(bytes(bad), B_IP, 0.0)
        assert isinstance(event, Rejected)
        assert event.reason in (
            RejectReason.TAMPERED,
            RejectReason.UNEXPECTED,
            RejectReason.MALFORMED,
        )
    assert a.state is ChannelState.HANDSHAKING
    assert a.receive_datagram(m4, B_IP, 0.0) == [Established(B_IP)]


def test_sa_init_replayed_later_starts_nothing() -> None:
    """An old SA_INIT (captured, or a late duplicate) is never answered with new keys."""
    _a, b, m1, m3 = _step_to_auth_i()
    b.receive_datagram(m3, A_IP, 0.0)
    b.datagrams_to_send(0.0)
    assert b.established
    assert b.receive_datagram(m1, A_IP, 50.0) == []
    assert b.datagrams_to_send(50.0) == []
    assert b.counters.duplicates == 1
