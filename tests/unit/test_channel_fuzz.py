"""Hypothesis fuzzing of the secure channel's decoder and state machine (G-R15).

Any bytes - random, or valid handshake messages and records mutated by bit flips,
truncation, extension, insertion and splicing - fed to a channel in every state are
rejected cleanly: `receive_datagram` never raises, a datagram that is not
byte-identical to a genuine one never yields `Established`, `Rekeyed` or
`PayloadReceived`, only payloads the peer really sent are ever delivered and each at
most once, and afterwards the channel still completes its work (handshake, then a
fresh payload each way).

Cost: every example replays a seeded, scripted handshake (a few modp4096
operations, milliseconds); the pool of genuine datagrams is computed once.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from peers.core.channel import (
    ChannelEvent,
    ChannelSet,
    ChannelState,
    Established,
    PayloadReceived,
    PeerChannel,
    Rejected,
    RejectReason,
    Rekeyed,
)
from peers.wire.channel import MsgType, decode_datagram
from peers.wire.errors import RemoteProtocolError
from tests.unit.test_channel import A_IP, B_IP, C_IP, PSK, Net, channel

SEED = 4
REKEY_AT_S = 100.0
CONFIG: dict[str, Any] = {"rekey_after_s": REKEY_AT_S}

# ------------------------------------------------------------------ scenarios
#: Where the scripted run stops, which side the fuzz input is fed to, and what that
#: side expects next (mutations of those get past the parsers to the crypto).
CHECKPOINTS: dict[str, tuple[str, tuple[MsgType, ...]]] = {
    "responder_idle": (B_IP, (MsgType.SA_INIT,)),
    "initiator_await_sa_resp": (A_IP, (MsgType.SA_RESP, MsgType.NOTIFY)),
    "responder_await_auth_i": (B_IP, (MsgType.AUTH_I,)),
    "initiator_await_auth_r": (A_IP, (MsgType.AUTH_R, MsgType.NOTIFY)),
    "initiator_await_auth_r_early_record": (A_IP, (MsgType.AUTH_R, MsgType.RECORD)),
    "established_initiator": (A_IP, (MsgType.RECORD,)),
    "established_responder": (B_IP, (MsgType.RECORD, MsgType.SA_INIT)),
    "rekey_initiator_await_sa_resp": (A_IP, (MsgType.SA_RESP, MsgType.RECORD)),
    "rekey_responder_await_auth_i": (B_IP, (MsgType.AUTH_I, MsgType.RECORD)),
    "failed_unreachable": (A_IP, (MsgType.SA_RESP, MsgType.SA_INIT)),
}


@dataclass
class Scenario:
    a: PeerChannel
    b: PeerChannel
    now: float
    pending: list[tuple[str, bytes, str]]  # (dst, data, src): genuine, not yet delivered
    sent: list[bytes]  # every datagram of the script up to here (pending included)
    sent_to: dict[str, list[bytes]]  # payloads handed to `send`, by destination
    payloads: dict[str, list[bytes]]  # payloads delivered so far, by receiver

    def node(self, ip: str) -> PeerChannel:
        return self.a if ip == A_IP else self.b


def _script(stop: str | None, seed: int = SEED) -> Scenario:
    """A handshake, records, a rekey and more records, one deterministic step at a time."""
    a = channel(A_IP, B_IP, seed=seed, **CONFIG)
    b = channel(B_IP, A_IP, seed=seed, **CONFIG)
    sc = Scenario(a, b, 0.0, [], [], {A_IP: [], B_IP: []}, {A_IP: [], B_IP: []})

    def out(src: PeerChannel) -> list[bytes]:
        data = src.datagrams_to_send(sc.now)
        sc.sent.extend(data)
        return data

    def send(src: PeerChannel, payload: bytes) -> None:
        src.send(payload, sc.now)
        sc.sent_to[src.peer_ip].append(payload)

    def give(dst: PeerChannel, datagrams: list[bytes]) -> None:
        src = A_IP if dst is b else B_IP
        for data in datagrams:
            for event in dst.receive_datagram(data, src, sc.now):
                assert not isinstance(event, Rejected), event
                if isinstance(event, PayloadReceived):
                    sc.payloads[dst.local_ip].append(event.payload)

    def hold(dst: PeerChannel, datagrams: list[bytes]) -> Scenario:
        src = A_IP if dst is b else B_IP
        sc.pending = [(dst.local_ip, data, src) for data in datagrams]
        return sc

    if stop == "failed_unreachable":
        a.connect(sc.now)
        out(a)
        while not a.failure:
            deadline = a.next_deadline()
            assert deadline is not None
            sc.now = deadline
            a.on_timer(sc.now)
            out(a)
        return sc
    a.connect(sc.now)
    m1 = out(a)
    if stop in ("responder_idle", "initiator_await_sa_resp"):
        return hold(b, m1)
    give(b, m1)
    m2 = out(b)
    if stop == "responder_await_auth_i":
        return hold(a, m2)
    give(a, m2)
    m3 = out(a)
    if stop == "initiator_await_auth_r":
        return hold(b, m3)
    give(b, m3)
    send(b, b"early from B")  # sealed on the new SA before A holds AUTH_R
    m4_and_early = out(b)
    if stop == "initiator_await_auth_r_early_record":
        return hold(a, m4_and_early)
    give(a, m4_and_early)
    for i in range(3):
        send(a, b"from A %d" % i)
        send(b, b"from B %d" % i)
    give(b, out(a))
    give(a, out(b))
    if stop in ("established_initiator", "established_responder"):
        return sc
    sc.now = REKEY_AT_S
    a.on_timer(sc.now)
    r1 = out(a)
    if stop == "rekey_initiator_await_sa_resp":
        return hold(b, r1)
    give(b, r1)
    r2 = out(b)
    if stop == "rekey_responder_await_auth_i":
        return hold(a, r2)
    give(a, r2)
    give(b, out(a))
    send(b, b"after rekey from B")
    give(a, out(b))
    send(a, b"after rekey from A")
    give(b, out(a))
    return sc


@functools.cache
def _foreign() -> tuple[bytes, ...]:
    """Every datagram of another session between the same two addresses."""
    return tuple(_script(None, seed=SEED + 1).sent)


@functools.cache
def _handshake_messages() -> tuple[bytes, ...]:
    """The handshake datagrams of the whole scripted session (records excluded)."""
    return tuple(d for d in _script(None).sent if d[0] != MsgType.RECORD)


@functools.cache
def _material(
    checkpoint: str,
) -> tuple[tuple[bytes, ...], tuple[bytes, ...], frozenset[bytes], frozenset[bytes]]:
    """Fuzz material for a checkpoint: the pool to mutate, the focus (what the target
    expects next, or its records), the genuine datagrams and the payloads the target
    may legitimately receive.

    Genuine: what this session sent up to the checkpoint, plus the handshake
    messages of the whole session (a peer sends the same bytes whenever it gets
    there). Records sealed after the checkpoint are not genuine: in this seeded
    replay the peer will seal other payloads under those sequence numbers."""
    sc = _script(checkpoint)
    genuine = dict.fromkeys(sc.sent + list(_handshake_messages()))
    pool = tuple(dict.fromkeys([*genuine, *_foreign()]))
    target, expects = CHECKPOINTS[checkpoint]
    focus = tuple(d for d in genuine if d[0] in expects)
    return pool, focus or pool, frozenset(genuine), frozenset(sc.sent_to[target])


# ------------------------------------------------------------------ strategies
_TYPES = [int(t) for t in MsgType]


#: Length-preserving edits weigh more: they get past the length checks to the crypto.
_OPS = ["flip"] * 5 + ["set"] * 2 + ["truncate", "extend", "insert", "delete", "splice"]


@st.composite
def _mutation(draw: st.DrawFn, pool: tuple[bytes, ...]) -> bytes:
    data = bytearray(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(_OPS))
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and data:
            i = draw(st.integers(0, len(data) - 1))
            del data[i : i + draw(st.integers(1, 16))]
        elif op == "splice":
            other = draw(st.sampled_from(pool))
            cut = draw(st.integers(0, len(data)))
            data = data[:cut] + bytearray(other[draw(st.integers(0, len(other))) :])
    return bytes(data)


def _datagrams(pool: tuple[bytes, ...], focus: tuple[bytes, ...]) -> st.SearchStrategy[list[bytes]]:
    typed = st.builds(
        lambda t, rest: bytes([t]) + rest, st.sampled_from(_TYPES), st.binary(max_size=600)
    )
    one = st.one_of(
        st.binary(max_size=700),
        typed,
        st.sampled_from(pool),  # verbatim: out of place, again, or from another session
        _mutation(pool),
        _mutation(focus),
        _mutation(focus),
    )
    return st.lists(one, min_size=1, max_size=6)


# ------------------------------------------------------------------------ tests
@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=800))
def test_decoder_any_bytes_parse_or_remote_protocol_error_G_R15(data: bytes) -> None:
    try:
        msg = decode_datagram(data)
    except RemoteProtocolError as exc:
        reason = exc.reason
    else:
        assert msg.encode() == data  # canonical: nothing ignored, nothing implied
        return
    assert reason in ("truncated", "malformed")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_decoder_mutations_parse_or_remote_protocol_error(data: st.DataObject) -> None:
    datagram = data.draw(_mutation(_foreign()))
    try:
        msg = decode_datagram(datagram)
    except RemoteProtocolError:
        return
    assert msg.encode() == datagram


def _check_events(
    events: list[ChannelEvent],
    datagram: bytes,
    genuine: frozenset[bytes],
    genuine_payloads: frozenset[bytes],
) -> list[bytes]:
    delivered = [e.payload for e in events if isinstance(e, PayloadReceived)]
    if datagram not in genuine:
        assert not any(isinstance(e, Established | Rekeyed | PayloadReceived) for e in events), (
            events
        )
    assert set(delivered) <= genuine_payloads
    return delivered


@pytest.mark.parametrize("checkpoint", list(CHECKPOINTS))
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_channel_rejects_fuzz_in_every_state_and_still_works_G_R15(
    checkpoint: str, data: st.DataObject
) -> None:
    pool, focus, genuine, genuine_payloads = _material(checkpoint)
    target_ip = CHECKPOINTS[checkpoint][0]
    peer_ip = B_IP if target_ip == A_IP else A_IP
    sc = _script(checkpoint)
    target = sc.node(target_ip)
    delivered = Counter(sc.payloads[target_ip])
    for datagram in data.draw(_datagrams(pool, focus), label="datagrams"):
        rejected_before = sum(target.rejected.values())
        events = target.receive_datagram(datagram, peer_ip, sc.now)
        delivered.update(_check_events(events, datagram, genuine, genuine_payloads))
        rejections = [e for e in events if isinstance(e, Rejected)]
        for e in events:
            note_event(e.reason.value if isinstance(e, Rejected) else type(e).__name__)
        assert sum(target.rejected.values()) == rejected_before + len(rejections)
    assert all(n == 1 for n in delivered.values()), delivered

    # Afterwards the pair still completes its work: whatever the fuzz input did,
    # both ends come up and carry a fresh payload each way.
    net = Net.of(sc.a, sc.b)
    net.now = sc.now
    for dst, datagram, src in sc.pending:
        net.deliver(dst, datagram, src)
    sc.a.connect(net.now)
    sc.b.connect(net.now)
    for _ in range(30):
        net.run(10.0)
        if sc.a.established and sc.b.established:
            break
    assert (sc.a.state, sc.b.state) == (ChannelState.ESTABLISHED, ChannelState.ESTABLISHED)
    sc.a.send(b"fresh from A", net.now)
    sc.b.send(b"fresh from B", net.now)
    net.run(1.0)
    assert b"fresh from A" in net.payloads(B_IP)
    assert b"fresh from B" in net.payloads(A_IP)
    delivered.update(net.payloads(target_ip))
    assert all(n == 1 for n in delivered.values()), delivered
    assert set(delivered) <= genuine_payloads | {b"fresh from A", b"fresh from B"}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=700), st.sampled_from(["10.0.0.9", "192.0.2.1", "10.0.0.1"]))
def test_channel_set_rejects_strangers_whatever_they_send_G_R15(data: bytes, src: str) -> None:
    cluster = ChannelSet(B_IP, [A_IP, B_IP, C_IP], PSK, _NoRandom())
    events = cluster.receive_datagram(data, src, 0.0)
    if src == A_IP:
        # a configured peer: parsed, and anything but a well-formed SA_INIT is refused
        assert not any(isinstance(e, Established | Rekeyed | PayloadReceived) for e in events)
        if data[:1] != bytes([MsgType.SA_INIT]):
            assert [type(e) for e in events] == [Rejected]
        return
    assert [(type(e), e.reason) for e in events] == [(Rejected, RejectReason.UNKNOWN_PEER)]  # type: ignore[union-attr]
    assert cluster.rejected[RejectReason.UNKNOWN_PEER] == 1


class _NoRandom:
    """A random source that must not be used: strangers and garbage cost no crypto."""

    def getrandbits(self, k: int, /) -> int:
        raise AssertionError("randomness drawn for a rejected datagram")
