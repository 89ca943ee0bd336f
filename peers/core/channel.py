"""The secure peer channel (G-R15): a sans-I/O model of the IPsec between two Conductor peers.

Models the protected path between this peer and one configured peer: an IKE
main-mode-like handshake authenticated with the cluster's pre-shared key, then
AES-256-GCM records with sequence numbers and an anti-replay window, rekeyed
periodically. Byte layouts are in `peers.wire.channel`; this module holds keys,
state and timers. The driver feeds datagrams in (`receive_datagram`), sends what
`datagrams_to_send` returns and calls `on_timer` at `next_deadline()` (aioquic style).

Suite (one proposal, `PROPOSAL_ID`): Diffie-Hellman group 16 (RFC 3526 modp4096,
g = 2) with a 512-bit private exponent, 16-byte nonces, PRF HMAC-SHA-256,
HKDF-SHA-256, AES-256-GCM. DH, HKDF and AES-GCM come from `cryptography`.

Handshake (I = initiator, R = responder):

    M1 I->R SA_INIT  spi_i, version, proposal, Ni, g^x
    M2 R->I SA_RESP  spi_i, spi_r, proposal, Nr, g^y
    SKEYID = HMAC-SHA256(psk, Ni | Nr)
    K      = HKDF-SHA256(salt=SKEYID, ikm=g^xy (512 bytes), info="tplab peer channel v1" |
             spi_i | spi_r) -> enc_i(32) | enc_r(32) | salt_i(4) | salt_r(4) | auth(32)
    AUTH_X = HMAC-SHA256(auth, SHA256(M1 | M2) | "I" or "R" | ID_X)   (ID = packed IPv4)
    M3 I->R AUTH_I   AES-GCM(enc_i, nonce salt_i | 0^8, ID_i | AUTH_i, aad = header)
    M4 R->I AUTH_R   AES-GCM(enc_r, nonce salt_r | 0^8, ID_r | AUTH_r, aad = header)

A responder whose PSK differs derives other keys, so M3 does not decrypt: it
answers an unauthenticated NOTIFY AUTHENTICATION_FAILED and both sides fail with
`key_mismatch` (shown as "key mismatch" on System > Clustering). M3 that fails to
decrypt cannot be told apart from an altered M3; the half-open handshake is kept,
so a genuine M3 arriving afterwards still completes it, and an authenticated M4
overrides an earlier (unauthenticated) NOTIFY. The identity is the source address:
ID_i / ID_r must equal the datagram's source and the configured peer. A datagram
from an address that is not this channel's peer (or, in `ChannelSet`, not in the
peer list) is rejected with `unknown_peer` before any crypto work: no DH for
strangers. `ChannelSet` answers a stranger's well-formed SA_INIT with NOTIFY
UNKNOWN_PEER (no crypto, at most once per `UNKNOWN_PEER_NOTIFY_INTERVAL_S` per
address), so a peer missing from the other side's list shows `unknown_peer` (G-R12).

Retransmission: the initiator resends M1 (then M3) at 1, 2, 4, 8 s (doubling from
`retransmit_first_s`, `max_transmissions` in all) and fails with `unreachable`
when the last interval passes unanswered. Responders never retransmit: they answer
a byte-identical duplicate of M1 / M3 with their stored M2 / M4 (or NOTIFY), no
crypto; a half-open responder handshake expires after the same total time.
SA_INIT whose spi_i was already answered, duplicate M2 / M4 and any message that
belongs to no handshake in progress are ignored (duplicates) or rejected
(`unexpected`); they never change keys. Both peers may initiate: while our own
initiation is in progress and the peer's SA_INIT arrives, the peer with the lower
IPv4 address stays initiator (ignores it) and the higher one abandons its own
attempt and answers, so simultaneous starts converge on one SA.

After a failure the channel retries (if `connect` was called) after
`retry_after_s` plus up to 20 % jitter; `failure` keeps the last reason until the
next `Established`.

Records: RECORD type | spi | seq | AES-256-GCM(payload) | tag, nonce = salt | seq,
AAD = the 17-byte header; `spi` is the SPI the receiver chose (spi_r for I->R,
spi_i for R->I). Sequence numbers start at 1; a 64-entry sliding window rejects
`replayed` and `too_old` records before decryption and is advanced only after the
tag verifies. Truncated, malformed, unknown-SPI and tampered records are rejected
and counted; nothing from them is delivered. A payload larger than
`max_payload()` (MTU - 28 - `RECORD_OVERHEAD`) is refused with
`LocalProtocolError`: the channel never fragments (G-R14). Payloads sent before
the channel is established are queued (at most `max_queued`, oldest dropped).

Rekey: the SA's initiator starts a fresh handshake after `rekey_after_s` (the
responder after 1.1 x that, as a fallback) or once `rekey_after_records` records
were sent on the SA. Both sides switch sending to the new SA as soon as they hold
it (the responder after M3, the initiator after M4); records that reach the
initiator on the new SA before M4 are authenticated and held until M4 verifies.
The previous SA stays valid for inbound records for `rekey_grace_s`, so nothing in
flight is lost. An SA never sends more than 2 x `rekey_after_records` records
(and never past 2^64 - 1): beyond that payloads wait for the new SA, so sequence
numbers never wrap. A rekey that fails fails the channel (SAs dropped, retry).

States (`ChannelState`, transitions in `_TRANSITIONS`): IDLE -> HANDSHAKING ->
ESTABLISHED; HANDSHAKING / ESTABLISHED -> FAILED; FAILED -> HANDSHAKING (retry or
the peer's SA_INIT) or ESTABLISHED (a lingering handshake completes). A rekey
runs in the background of ESTABLISHED.

Randomness (SPIs, nonces, DH private exponents, retry jitter) comes only from the
injected `rng` (`getrandbits`), so a seeded `random.Random` makes simulated runs
reproducible; real processes inject `random.SystemRandom()`. The DH private key is
built from that exponent with `DHPrivateNumbers`, and g^x is computed by
`cryptography` as the shared secret with the public value g: one keygen and one
exchange per side per handshake. `cryptography` flags finite-field DH as
deprecated; the warning is silenced around those calls only (modp4096 is what
the product uses).

Invariants:
- `receive_datagram` never raises for any bytes; a datagram that is rejected
  yields a `Rejected` event, increments `rejected[reason]` and changes no keys,
  windows or delivered data;
- a payload is delivered at most once, only after its tag verified under an SA
  whose handshake authenticated the configured peer;
- an SA never reuses a (key, nonce) pair: records use seq >= 1, handshake
  encryption uses seq 0 once per direction;
- `now` is a parameter of every call; nothing here reads a clock.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import ipaddress
import warnings
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.utils import CryptographyDeprecationWarning

from peers.wire.channel import (
    DH_PUBLIC_BYTES,
    MAX_SEQ,
    MIN_MTU_BYTES,
    MODP4096_G,
    MODP4096_P,
    NONCE_BYTES,
    PROPOSAL_ID,
    PROTOCOL_VERSION,
    RECORD_OVERHEAD,
    SEQ_BYTES,
    SPI_BYTES,
    AuthI,
    AuthR,
    IdAuth,
    MsgType,
    Notify,
    NotifyCode,
    Record,
    SaInit,
    SaResp,
    decode_datagram,
    max_payload,
)
from peers.wire.errors import LocalProtocolError, RemoteProtocolError

with warnings.catch_warnings():
    # cryptography marks finite-field DH deprecated on attribute access; modp4096 is what
    # the product negotiates, so the notice is silenced here and around the DH calls only.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from cryptography.hazmat.primitives.asymmetric.dh import (
        DHParameterNumbers,
        DHPrivateKey,
        DHPrivateNumbers,
        DHPublicKey,
        DHPublicNumbers,
    )

__all__ = [
    "RECORD_OVERHEAD",
    "REPLAY_WINDOW",
    "UNKNOWN_PEER_NOTIFY_INTERVAL_S",
    "ChannelConfig",
    "ChannelCounters",
    "ChannelEvent",
    "ChannelSet",
    "ChannelState",
    "Established",
    "Failed",
    "FailureReason",
    "PayloadReceived",
    "PeerChannel",
    "RandomSource",
    "RejectReason",
    "Rejected",
    "Rekeyed",
    "max_payload",
]

REPLAY_WINDOW = 64
DH_PRIVATE_BITS = 512
UNKNOWN_PEER_NOTIFY_INTERVAL_S = 1.0
SEEN_SA_INIT = 16  # spi_i values of answered SA_INITs remembered (late duplicates ignored)
RESPONDER_REKEY_FACTOR = 1.1
RETRY_JITTER = 0.2
_KDF_INFO = b"tplab peer channel v1"
_KEY_BYTES = 32
_SALT_BYTES = 4
_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1
_HANDSHAKE_SEQ = bytes(SEQ_BYTES)  # seq 0: used once per direction, by M3 / M4


class RandomSource(Protocol):
    """What the channel needs of its randomness: `random.Random` and `SystemRandom` fit."""

    def getrandbits(self, k: int, /) -> int: ...


class ChannelState(enum.Enum):
    IDLE = "idle"
    HANDSHAKING = "handshaking"
    ESTABLISHED = "established"
    FAILED = "failed"


_TRANSITIONS: dict[ChannelState, frozenset[ChannelState]] = {
    ChannelState.IDLE: frozenset({ChannelState.HANDSHAKING}),
    ChannelState.HANDSHAKING: frozenset({ChannelState.ESTABLISHED, ChannelState.FAILED}),
    ChannelState.ESTABLISHED: frozenset({ChannelState.FAILED}),
    ChannelState.FAILED: frozenset({ChannelState.HANDSHAKING, ChannelState.ESTABLISHED}),
}


class FailureReason(enum.Enum):
    UNREACHABLE = "unreachable"
    KEY_MISMATCH = "key_mismatch"
    UNKNOWN_PEER = "unknown_peer"
    PROTOCOL_ERROR = "protocol_error"


class RejectReason(enum.Enum):
    UNKNOWN_PEER = "unknown_peer"  # source address is not the / a configured peer
    TRUNCATED = "truncated"  # shorter than its type requires
    MALFORMED = "malformed"  # does not parse, or values out of range
    UNKNOWN_SPI = "unknown_spi"  # record for no SA we hold
    REPLAYED = "replayed"  # record sequence number already received
    TOO_OLD = "too_old"  # record sequence number left of the replay window
    TAMPERED = "tampered"  # authentication tag does not verify
    KEY_MISMATCH = "key_mismatch"  # AUTH_I does not decrypt: the pre-shared keys differ
    BAD_IDENTITY = "bad_identity"  # ID in AUTH_I / AUTH_R is not the sender's address
    BAD_AUTH = "bad_auth"  # AUTH value does not verify
    NO_PROPOSAL = "no_proposal"  # unsupported version or proposal
    UNEXPECTED = "unexpected"  # handshake message for no handshake in this state
    BUFFER_FULL = "buffer_full"  # too many early records before AUTH_R


_REMOTE_REASONS = {"truncated": RejectReason.TRUNCATED}

#: NOTIFY codes the initiator accepts, by handshake stage, and the failure each means.
_NOTIFY_FAILURES: dict[str, dict[NotifyCode, FailureReason]] = {
    "await_m2": {
        NotifyCode.INVALID_MAJOR_VERSION: FailureReason.PROTOCOL_ERROR,
        NotifyCode.NO_PROPOSAL_CHOSEN: FailureReason.PROTOCOL_ERROR,
        NotifyCode.UNKNOWN_PEER: FailureReason.UNKNOWN_PEER,
    },
    "await_m4": {
        NotifyCode.AUTHENTICATION_FAILED: FailureReason.KEY_MISMATCH,
        NotifyCode.INVALID_ID: FailureReason.PROTOCOL_ERROR,
        NotifyCode.INVALID_SYNTAX: FailureReason.PROTOCOL_ERROR,
    },
}


# ------------------------------------------------------------------------ events
@dataclass(frozen=True, slots=True)
class Established:
    peer_ip: str


@dataclass(frozen=True, slots=True)
class Rekeyed:
    peer_ip: str


@dataclass(frozen=True, slots=True)
class PayloadReceived:
    peer_ip: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Rejected:
    """A datagram was refused; `peer_ip` is its source address. Log it (G-R15)."""

    peer_ip: str
    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class Failed:
    peer_ip: str
    reason: FailureReason


ChannelEvent = Established | Rekeyed | PayloadReceived | Rejected | Failed


# ------------------------------------------------------------------------ config
@dataclass(frozen=True, slots=True)
class ChannelConfig:
    mtu_bytes: int = 1500
    retransmit_first_s: float = 1.0
    max_transmissions: int = 4
    retry_after_s: float = 10.0
    rekey_after_s: float = 3600.0
    rekey_after_records: int = 1 << 32
    rekey_grace_s: float = 30.0
    max_queued: int = 1024
    max_early_records: int = 256

    def __post_init__(self) -> None:
        if self.mtu_bytes < MIN_MTU_BYTES:
            raise LocalProtocolError(f"mtu_bytes must be at least {MIN_MTU_BYTES}")
        if self.max_transmissions < 1:
            raise LocalProtocolError("max_transmissions must be at least 1")
        if min(self.retransmit_first_s, self.retry_after_s, self.rekey_after_s) <= 0:
            raise LocalProtocolError("intervals must be positive")
        if self.rekey_grace_s < 0:
            raise LocalProtocolError("rekey_grace_s must not be negative")
        if not 1 <= self.rekey_after_records < MAX_SEQ:
            raise LocalProtocolError("rekey_after_records must be in [1, 2^64 - 1)")
        if self.max_queued < 0 or self.max_early_records < 0:
            raise LocalProtocolError("queue sizes must not be negative")

    @property
    def handshake_timeout_s(self) -> float:
        """From the first transmission of a request to giving up on it (1+2+4+8 = 15 s)."""
        return self.retransmit_first_s * float(2**self.max_transmissions - 1)

    @property
    def send_limit(self) -> int:
        """Highest sequence number an SA may send (rekey comes first)."""
        return min(MAX_SEQ, 2 * self.rekey_after_records)


@dataclass(slots=True)
class ChannelCounters:
    records_sent: int = 0
    records_received: int = 0
    handshakes: int = 0
    rekeys: int = 0
    failures: int = 0
    retransmissions: int = 0
    duplicates: int = 0  # retransmitted handshake messages answered or ignored
    collisions: int = 0  # simultaneous SA_INITs resolved
    queue_dropped: int = 0


# ------------------------------------------------------------------------ crypto
@contextmanager
def _ffdh_allowed() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


@functools.cache
def _dh_parameter_numbers() -> DHParameterNumbers:
    return DHParameterNumbers(MODP4096_P, MODP4096_G)


@functools.cache
def _generator_key() -> DHPublicKey:
    with _ffdh_allowed():
        return DHPublicNumbers(MODP4096_G, _dh_parameter_numbers()).public_key()


def dh_keypair(rng: RandomSource) -> tuple[DHPrivateKey, int]:
    """Private key from the injected source; its public value g^x, computed by OpenSSL."""
    x = rng.getrandbits(DH_PRIVATE_BITS) | (1 << (DH_PRIVATE_BITS - 1))
    params = _dh_parameter_numbers()
    with _ffdh_allowed():
        # The public number given here is a placeholder: `exchange` uses x only.
        key = DHPrivateNumbers(x, DHPublicNumbers(MODP4096_G, params)).private_key()
        public = int.from_bytes(key.exchange(_generator_key()), "big")
    return key, public


def dh_shared(key: DHPrivateKey, peer_public: int) -> bytes | None:
    try:
        with _ffdh_allowed():
            peer = DHPublicNumbers(peer_public, _dh_parameter_numbers()).public_key()
            secret = key.exchange(peer)
    except ValueError:
        return None
    return int.from_bytes(secret, "big").to_bytes(DH_PUBLIC_BYTES, "big")


@dataclass(frozen=True, slots=True)
class _Keys:
    enc_i: bytes
    enc_r: bytes
    salt_i: bytes
    salt_r: bytes
    auth: bytes


def _derive_keys(
    psk: bytes, nonce_i: bytes, nonce_r: bytes, shared: bytes, spi_i: bytes, spi_r: bytes
) -> _Keys:
    skeyid = hmac.new(psk, nonce_i + nonce_r, hashlib.sha256).digest()
    sizes = (_KEY_BYTES, _KEY_BYTES, _SALT_BYTES, _SALT_BYTES, _KEY_BYTES)
    okm = HKDF(
        algorithm=hashes.SHA256(), length=sum(sizes), salt=skeyid, info=_KDF_INFO + spi_i + spi_r
    ).derive(shared)
    parts: list[bytes] = []
    at = 0
    for size in sizes:
        parts.append(okm[at : at + size])
        at += size
    return _Keys(*parts)


def _auth_value(keys: _Keys, m1: bytes, m2: bytes, role: bytes, ip: str) -> bytes:
    transcript = hashlib.sha256(m1 + m2).digest()
    packed = ipaddress.IPv4Address(ip).packed
    return hmac.new(keys.auth, transcript + role + packed, hashlib.sha256).digest()


def _random_bytes(rng: RandomSource, size: int) -> bytes:
    return rng.getrandbits(8 * size).to_bytes(size, "big")


class _SA:
    """One security association: keys for both directions, send counter, replay window."""

    __slots__ = (
        "_open",
        "_seal",
        "established_at",
        "in_salt",
        "in_spi",
        "initiator",
        "next_seq",
        "out_salt",
        "out_spi",
        "win_bits",
        "win_top",
    )

    def __init__(self, keys: _Keys, spi_i: bytes, spi_r: bytes, *, initiator: bool) -> None:
        self.initiator = initiator
        if initiator:
            self.in_spi, self.out_spi = spi_i, spi_r
            self._seal, self.out_salt = AESGCM(keys.enc_i), keys.salt_i
            self._open, self.in_salt = AESGCM(keys.enc_r), keys.salt_r
        else:
            self.in_spi, self.out_spi = spi_r, spi_i
            self._seal, self.out_salt = AESGCM(keys.enc_r), keys.salt_r
            self._open, self.in_salt = AESGCM(keys.enc_i), keys.salt_i
        self.next_seq = 1
        self.win_top = 0
        self.win_bits = 0
        self.established_at = 0.0

    def seal(self, payload: bytes) -> bytes:
        seq = self.next_seq
        self.next_seq += 1
        header = Record.header_for(self.out_spi, seq)
        nonce = self.out_salt + seq.to_bytes(SEQ_BYTES, "big")
        return header + self._seal.encrypt(nonce, payload, header)

    def check(self, seq: int) -> RejectReason | None:
        """Anti-replay check, before any decryption (RFC 4303 section 3.4.3 style)."""
        if seq == 0:
            return RejectReason.TOO_OLD
        if seq > self.win_top:
            return None
        offset = self.win_top - seq
        if offset >= REPLAY_WINDOW:
            return RejectReason.TOO_OLD
        if (self.win_bits >> offset) & 1:
            return RejectReason.REPLAYED
        return None

    def open(self, record: Record) -> bytes | None:
        nonce = self.in_salt + record.seq.to_bytes(SEQ_BYTES, "big")
        try:
            return self._open.decrypt(nonce, record.sealed, record.header)
        except InvalidTag:
            return None

    def accept(self, seq: int) -> None:
        """Mark `seq` received; only after its tag verified."""
        if seq > self.win_top:
            shift = seq - self.win_top
            self.win_bits = ((self.win_bits << shift) | 1) & _WINDOW_MASK
            self.win_top = seq
        else:
            self.win_bits |= 1 << (self.win_top - seq)


class _Role(enum.Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


class _Stage(enum.Enum):
    AWAIT_M2 = "await_m2"  # initiator, M1 sent
    AWAIT_M4 = "await_m4"  # initiator, M3 sent
    AWAIT_M3 = "await_m3"  # responder, M2 sent
    DONE = "done"


@dataclass(slots=True)
class _Handshake:
    role: _Role
    stage: _Stage
    spi_i: bytes
    m1: bytes
    spi_r: bytes = b""
    nonce_i: bytes = b""
    dh_key: DHPrivateKey | None = None
    m2: bytes = b""
    m3: bytes = b""
    m4: bytes = b""
    keys: _Keys | None = None
    sa: _SA | None = None
    last_sent: bytes = b""
    transmissions: int = 0
    next_at: float | None = None  # initiator: retransmit / give up; responder: expiry
    failed: bool = False  # failed but kept: a genuine late message may still complete it
    answer: bytes = b""  # responder: what a duplicate of `m3` gets (M4 or NOTIFY)
    early: list[bytes] = field(default_factory=list)  # initiator: payloads before M4

    @property
    def in_progress(self) -> bool:
        return self.stage is not _Stage.DONE and not self.failed


def _ipv4(value: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise LocalProtocolError(f"{what} must be an IPv4 address, got {value!r}") from None


def _psk_bytes(psk: bytes | str) -> bytes:
    key = psk.encode() if isinstance(psk, str) else bytes(psk)
    if not key:
        raise LocalProtocolError("the pre-shared key must not be empty")
    return key


# ----------------------------------------------------------------------- channel
class PeerChannel:
    """The channel between `local_ip` and one `peer_ip`, keyed by the pre-shared key."""

    def __init__(
        self,
        local_ip: str,
        peer_ip: str,
        psk: bytes | str,
        rng: RandomSource,
        config: ChannelConfig | None = None,
    ) -> None:
        self.local_ip = _ipv4(local_ip, "local_ip")
        self.peer_ip = _ipv4(peer_ip, "peer_ip")
        if self.local_ip == self.peer_ip:
            raise LocalProtocolError("a channel needs two different addresses")
        self.config = config or ChannelConfig()
        self.mtu_bytes = self.config.mtu_bytes
        self.rng = rng
        self._psk = _psk_bytes(psk)
        self._lower = ipaddress.IPv4Address(self.local_ip) < ipaddress.IPv4Address(self.peer_ip)
        self.state = ChannelState.IDLE
        self.failure: FailureReason | None = None
        self.rejected: Counter[RejectReason] = Counter()
        self.counters = ChannelCounters()
        self._active = False
        self._hs: _Handshake | None = None
        self._sa: _SA | None = None
        self._old_sa: _SA | None = None
        self._old_sa_until = 0.0
        self._rekey_at: float | None = None
        self._retry_at: float | None = None
        self._queue: deque[bytes] = deque()
        self._out: list[bytes] = []
        self._seen_spi_i: deque[bytes] = deque(maxlen=SEEN_SA_INIT)

    # ------------------------------------------------------------- queries
    @property
    def established(self) -> bool:
        return self.state is ChannelState.ESTABLISHED

    @property
    def rekeying(self) -> bool:
        return self.established and self._hs is not None and self._hs.in_progress

    def max_payload(self) -> int:
        """Largest payload `send` accepts at the current MTU (G-R14: never fragmented)."""
        return max_payload(self.mtu_bytes)

    def next_deadline(self) -> float | None:
        times: list[float] = []
        hs = self._hs
        if hs is not None and hs.next_at is not None:
            times.append(hs.next_at)
        if self._retry_at is not None and self.state is ChannelState.FAILED:
            times.append(self._retry_at)
        if self._rekey_at is not None and self.established and not self._handshaking():
            times.append(self._rekey_at)
        if self._old_sa is not None:
            times.append(self._old_sa_until)
        return min(times) if times else None

    # ------------------------------------------------------------ commands
    def connect(self, now: float) -> None:
        """Start (and keep) the channel up: initiate now, retry after failures."""
        self._active = True
        if self.state in (ChannelState.IDLE, ChannelState.FAILED) and not self._handshaking():
            self._start_initiator(now)

    def set_mtu(self, mtu_bytes: int) -> None:
        if mtu_bytes < MIN_MTU_BYTES:
            raise LocalProtocolError(f"MTU must be at least {MIN_MTU_BYTES} bytes")
        self.mtu_bytes = mtu_bytes

    def send(self, payload: bytes, now: float) -> None:
        """Seal `payload` into a record, or queue it until the channel is established."""
        limit = self.max_payload()
        if len(payload) > limit:
            raise LocalProtocolError(
                f"payload of {len(payload)} bytes exceeds {limit} bytes allowed by MTU "
                f"{self.mtu_bytes} (G-R14: records are never fragmented)"
            )
        self._queue.append(bytes(payload))
        self._flush(now)
        while len(self._queue) > self.config.max_queued:
            self._queue.popleft()
            self.counters.queue_dropped += 1

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def receive_datagram(self, data: bytes, src_ip: str, now: float) -> list[ChannelEvent]:
        events: list[ChannelEvent] = []
        if src_ip != self.peer_ip:
            self._reject(
                events, RejectReason.UNKNOWN_PEER, f"{src_ip} is not {self.peer_ip}", src_ip
            )
            return events
        try:
            msg = decode_datagram(data)
        except RemoteProtocolError as exc:
            reason = _REMOTE_REASONS.get(exc.reason, RejectReason.MALFORMED)
            self._reject(events, reason, str(exc))
            return events
        match msg:
            case Record():
                self._on_record(msg, now, events)
            case SaInit():
                self._on_sa_init(msg, data, now, events)
            case SaResp():
                self._on_sa_resp(msg, data, now, events)
            case AuthI():
                self._on_auth_i(msg, data, now, events)
            case AuthR():
                self._on_auth_r(msg, data, now, events)
            case Notify():
                self._on_notify(msg, now, events)
        self._flush(now)
        return events

    def on_timer(self, now: float) -> list[ChannelEvent]:
        events: list[ChannelEvent] = []
        hs = self._hs
        if hs is not None and hs.next_at is not None and now >= hs.next_at:
            if hs.role is _Role.INITIATOR:
                self._retransmit_or_give_up(hs, now, events)
            else:
                self._hs = None  # responders never retransmit; the half-open one expires
                if self.state is ChannelState.HANDSHAKING and not hs.failed:
                    self._fail(FailureReason.UNREACHABLE, now, events)
        if self._old_sa is not None and now >= self._old_sa_until:
            self._old_sa = None
        if (
            self.state is ChannelState.FAILED
            and self._retry_at is not None
            and now >= self._retry_at
        ):
            self._retry_at = None
            if self._active:
                self._start_initiator(now)
        if (
            self.established
            and self._rekey_at is not None
            and now >= self._rekey_at
            and not self._handshaking()
        ):
            self._start_initiator(now)
        self._flush(now)
        return events

    # ------------------------------------------------------------ internals
    def _set_state(self, state: ChannelState) -> None:
        if state is self.state:
            return
        if state not in _TRANSITIONS[self.state]:
            raise AssertionError(f"channel state {self.state.name} -> {state.name}")
        self.state = state

    def _reject(
        self, events: list[ChannelEvent], reason: RejectReason, detail: str, src: str = ""
    ) -> None:
        self.rejected[reason] += 1
        events.append(Rejected(src or self.peer_ip, reason, detail))

    def _handshaking(self) -> bool:
        return self._hs is not None and self._hs.in_progress

    def _initiating(self) -> bool:
        hs = self._hs
        return hs is not None and hs.in_progress and hs.role is _Role.INITIATOR

    def _new_spi(self) -> bytes:
        taken = {sa.in_spi for sa in (self._sa, self._old_sa) if sa is not None}
        while True:
            spi = _random_bytes(self.rng, SPI_BYTES)
            if any(spi) and spi not in taken:
                return spi

    def _send_handshake(self, hs: _Handshake, data: bytes, now: float) -> None:
        hs.last_sent = data
        hs.transmissions = 1
        hs.next_at = now + self.config.retransmit_first_s
        self._out.append(data)

    def _start_initiator(self, now: float) -> None:
        spi_i = self._new_spi()
        nonce = _random_bytes(self.rng, NONCE_BYTES)
        key, public = dh_keypair(self.rng)
        m1 = SaInit(spi_i, nonce, public).encode()
        hs = _Handshake(_Role.INITIATOR, _Stage.AWAIT_M2, spi_i, m1, nonce_i=nonce, dh_key=key)
        self._hs = hs
        self._retry_at = None
        self._send_handshake(hs, m1, now)
        if self.state in (ChannelState.IDLE, ChannelState.FAILED):
            self._set_state(ChannelState.HANDSHAKING)

    def _retransmit_or_give_up(
        self, hs: _Handshake, now: float, events: list[ChannelEvent]
    ) -> None:
        if hs.transmissions < self.config.max_transmissions:
            hs.next_at = now + self.config.retransmit_first_s * 2**hs.transmissions
            hs.transmissions += 1
            self.counters.retransmissions += 1
            self._out.append(hs.last_sent)
            return
        hs.next_at = None
        self._hs = None
        self._fail(FailureReason.UNREACHABLE, now, events)

    def _fail(self, reason: FailureReason, now: float, events: list[ChannelEvent]) -> None:
        hs = self._hs
        if hs is not None and hs.role is _Role.INITIATOR:
            hs.failed = True
            hs.next_at = None
            hs.early.clear()
        self._sa = None
        self._old_sa = None
        self._rekey_at = None
        self.failure = reason
        self.counters.failures += 1
        self._set_state(ChannelState.FAILED)
        jitter = self.rng.getrandbits(16) / 65536 * RETRY_JITTER
        self._retry_at = now + self.config.retry_after_s * (1 + jitter) if self._active else None
        events.append(Failed(self.peer_ip, reason))

    def _hs_failed(
        self, hs: _Handshake, reason: FailureReason, now: float, events: list[ChannelEvent]
    ) -> None:
        """A handshake failed. An initiator's failure fails the channel (a failed rekey
        too); a responder's only when no SA is up (the initiating peer reports its own)."""
        if hs.failed:
            return
        if hs.role is _Role.INITIATOR or not self.established:
            self._fail(reason, now, events)
        hs.failed = True

    def _complete(self, hs: _Handshake, now: float, events: list[ChannelEvent]) -> None:
        sa = hs.sa
        assert sa is not None
        sa.established_at = now
        hs.stage = _Stage.DONE
        hs.failed = False
        hs.dh_key = None
        if hs.role is _Role.INITIATOR:
            hs.next_at = None
        was_established = self.established
        if self._sa is not None:
            self._old_sa = self._sa
            self._old_sa_until = now + self.config.rekey_grace_s
        self._sa = sa
        factor = 1.0 if sa.initiator else RESPONDER_REKEY_FACTOR
        self._rekey_at = now + self.config.rekey_after_s * factor
        self._retry_at = None
        self.failure = None
        self.counters.handshakes += 1
        self._set_state(ChannelState.ESTABLISHED)
        if was_established:
            self.counters.rekeys += 1
            events.append(Rekeyed(self.peer_ip))
        else:
            events.append(Established(self.peer_ip))
        for payload in hs.early:
            self.counters.records_received += 1
            events.append(PayloadReceived(self.peer_ip, payload))
        hs.early.clear()

    def _flush(self, now: float) -> None:
        sa = self._sa
        if sa is None or not self.established:
            return
        limit = self.max_payload()
        send_limit = self.config.send_limit
        while self._queue and sa.next_seq <= send_limit:
            payload = self._queue.popleft()
            if len(payload) > limit:  # the MTU was lowered while it waited
                self.counters.queue_dropped += 1
                continue
            self._out.append(sa.seal(payload))
            self.counters.records_sent += 1
        if sa.next_seq > self.config.rekey_after_records and not self._handshaking():
            self._start_initiator(now)

    # ------------------------------------------------------------ records
    def _on_record(self, msg: Record, now: float, events: list[ChannelEvent]) -> None:
        early: _Handshake | None = None
        sa: _SA | None = None
        if self._sa is not None and msg.spi == self._sa.in_spi:
            sa = self._sa
        elif (
            self._old_sa is not None and msg.spi == self._old_sa.in_spi and now < self._old_sa_until
        ):
            sa = self._old_sa
        else:
            hs = self._hs
            if (
                hs is not None
                and hs.stage is _Stage.AWAIT_M4
                and hs.sa is not None
                and msg.spi == hs.sa.in_spi
            ):
                sa, early = hs.sa, hs
        if sa is None:
            self._reject(events, RejectReason.UNKNOWN_SPI, f"record for SPI {msg.spi.hex()}")
            return
        replay = sa.check(msg.seq)
        if replay is not None:
            self._reject(events, replay, f"record seq {msg.seq}")
            return
        if early is not None and len(early.early) >= self.config.max_early_records:
            self._reject(events, RejectReason.BUFFER_FULL, "records before AUTH_R")
            return
        payload = sa.open(msg)
        if payload is None:
            self._reject(events, RejectReason.TAMPERED, f"record seq {msg.seq}: bad tag")
            return
        sa.accept(msg.seq)
        if early is not None:
            early.early.append(payload)
            return
        self.counters.records_received += 1
        events.append(PayloadReceived(self.peer_ip, payload))

    # ------------------------------------------------------------ handshake
    def _on_sa_init(self, msg: SaInit, data: bytes, now: float, events: list[ChannelEvent]) -> None:
        hs = self._hs
        if hs is not None and hs.role is _Role.RESPONDER and data == hs.m1:
            self.counters.duplicates += 1
            if hs.stage is _Stage.AWAIT_M3 and not hs.failed:
                hs.next_at = now + self.config.handshake_timeout_s
                self._out.append(hs.m2)
            return
        if msg.spi_i in self._seen_spi_i:
            self.counters.duplicates += 1
            return
        if msg.version != PROTOCOL_VERSION or msg.proposal != PROPOSAL_ID:
            code = (
                NotifyCode.INVALID_MAJOR_VERSION
                if msg.version != PROTOCOL_VERSION
                else NotifyCode.NO_PROPOSAL_CHOSEN
            )
            self._out.append(Notify(msg.spi_i, bytes(SPI_BYTES), code).encode())
            self._reject(
                events,
                RejectReason.NO_PROPOSAL,
                f"SA_INIT version {msg.version} proposal {msg.proposal}",
            )
            return
        if self._initiating():
            self.counters.collisions += 1
            if self._lower:
                # The lower address stays initiator; the peer answers ours. Late copies
                # of this SA_INIT are duplicates from now on.
                self._seen_spi_i.append(msg.spi_i)
                return
        key, public = dh_keypair(self.rng)
        shared = dh_shared(key, msg.public)
        if shared is None:
            self._reject(events, RejectReason.MALFORMED, "SA_INIT public value refused")
            return
        self._seen_spi_i.append(msg.spi_i)
        spi_r = self._new_spi()
        nonce_r = _random_bytes(self.rng, NONCE_BYTES)
        keys = _derive_keys(self._psk, msg.nonce, nonce_r, shared, msg.spi_i, spi_r)
        m2 = SaResp(msg.spi_i, spi_r, nonce_r, public).encode()
        self._hs = _Handshake(
            _Role.RESPONDER,
            _Stage.AWAIT_M3,
            msg.spi_i,
            data,
            spi_r=spi_r,
            m2=m2,
            keys=keys,
            next_at=now + self.config.handshake_timeout_s,
        )
        self._out.append(m2)
        if self.state in (ChannelState.IDLE, ChannelState.FAILED):
            self._set_state(ChannelState.HANDSHAKING)

    def _on_sa_resp(self, msg: SaResp, data: bytes, now: float, events: list[ChannelEvent]) -> None:
        hs = self._hs
        if hs is None or hs.role is not _Role.INITIATOR or msg.spi_i != hs.spi_i:
            self._reject(events, RejectReason.UNEXPECTED, "SA_RESP for no SA_INIT of ours")
            return
        if hs.stage is not _Stage.AWAIT_M2 or hs.failed:
            if data == hs.m2:
                self.counters.duplicates += 1
                return
            self._reject(events, RejectReason.UNEXPECTED, f"SA_RESP in {hs.stage.value}")
            return
        if msg.proposal != PROPOSAL_ID:
            self._reject(events, RejectReason.NO_PROPOSAL, f"SA_RESP proposal {msg.proposal}")
            return
        assert hs.dh_key is not None
        shared = dh_shared(hs.dh_key, msg.public)
        if shared is None:
            self._reject(events, RejectReason.MALFORMED, "SA_RESP public value refused")
            return
        keys = _derive_keys(self._psk, hs.nonce_i, msg.nonce, shared, hs.spi_i, msg.spi_r)
        hs.spi_r, hs.m2, hs.keys, hs.dh_key = msg.spi_r, data, keys, None
        auth = _auth_value(keys, hs.m1, data, b"I", self.local_ip)
        header = AuthI.header_for(hs.spi_i, hs.spi_r)
        sealed = AESGCM(keys.enc_i).encrypt(
            keys.salt_i + _HANDSHAKE_SEQ, IdAuth(self.local_ip, auth).encode(), header
        )
        hs.m3 = header + sealed
        hs.sa = _SA(keys, hs.spi_i, hs.spi_r, initiator=True)
        hs.stage = _Stage.AWAIT_M4
        self._send_handshake(hs, hs.m3, now)

    def _on_auth_i(self, msg: AuthI, data: bytes, now: float, events: list[ChannelEvent]) -> None:
        hs = self._hs
        if (
            hs is None
            or hs.role is not _Role.RESPONDER
            or (msg.spi_i, msg.spi_r) != (hs.spi_i, hs.spi_r)
        ):
            self._reject(events, RejectReason.UNEXPECTED, "AUTH_I for no handshake in progress")
            return
        if hs.m3 and data == hs.m3:
            self.counters.duplicates += 1
            self._out.append(hs.answer)  # M4, or the NOTIFY it got the first time
            return
        if hs.stage is _Stage.DONE:
            self._reject(events, RejectReason.UNEXPECTED, "AUTH_I for a completed handshake")
            return
        keys = hs.keys
        assert keys is not None
        try:
            plain = AESGCM(keys.enc_i).decrypt(keys.salt_i + _HANDSHAKE_SEQ, msg.sealed, msg.header)
        except InvalidTag:
            self._refuse_auth_i(
                hs,
                data,
                events,
                now,
                RejectReason.KEY_MISMATCH,
                "AUTH_I does not decrypt: the pre-shared keys differ (or it was altered)",
                NotifyCode.AUTHENTICATION_FAILED,
                FailureReason.KEY_MISMATCH,
            )
            return
        try:
            ident = IdAuth.decode(plain)
        except RemoteProtocolError as exc:
            self._refuse_auth_i(
                hs,
                data,
                events,
                now,
                RejectReason.MALFORMED,
                f"AUTH_I: {exc}",
                NotifyCode.INVALID_SYNTAX,
                FailureReason.PROTOCOL_ERROR,
            )
            return
        if ident.ip != self.peer_ip:
            self._refuse_auth_i(
                hs,
                data,
                events,
                now,
                RejectReason.BAD_IDENTITY,
                f"AUTH_I names {ident.ip}, sent from {self.peer_ip}",
                NotifyCode.INVALID_ID,
                FailureReason.PROTOCOL_ERROR,
            )
            return
        expected = _auth_value(keys, hs.m1, hs.m2, b"I", self.peer_ip)
        if not hmac.compare_digest(expected, ident.auth):
            self._refuse_auth_i(
                hs,
                data,
                events,
                now,
                RejectReason.BAD_AUTH,
                "AUTH_I value does not verify",
                NotifyCode.AUTHENTICATION_FAILED,
                FailureReason.KEY_MISMATCH,
            )
            return
        auth = _auth_value(keys, hs.m1, hs.m2, b"R", self.local_ip)
        header = AuthR.header_for(hs.spi_i, hs.spi_r)
        sealed = AESGCM(keys.enc_r).encrypt(
            keys.salt_r + _HANDSHAKE_SEQ, IdAuth(self.local_ip, auth).encode(), header
        )
        hs.m3, hs.answer = data, header + sealed
        hs.next_at = None
        hs.sa = _SA(keys, hs.spi_i, hs.spi_r, initiator=False)
        self._out.append(hs.answer)
        self._complete(hs, now, events)

    def _refuse_auth_i(
        self,
        hs: _Handshake,
        data: bytes,
        events: list[ChannelEvent],
        now: float,
        reason: RejectReason,
        detail: str,
        code: NotifyCode,
        failure: FailureReason,
    ) -> None:
        hs.m3 = data
        hs.answer = Notify(hs.spi_i, hs.spi_r, code).encode()
        self._out.append(hs.answer)
        self._reject(events, reason, detail)
        self._hs_failed(hs, failure, now, events)

    def _on_auth_r(self, msg: AuthR, data: bytes, now: float, events: list[ChannelEvent]) -> None:
        hs = self._hs
        if (
            hs is None
            or hs.role is not _Role.INITIATOR
            or (msg.spi_i, msg.spi_r) != (hs.spi_i, hs.spi_r)
        ):
            self._reject(events, RejectReason.UNEXPECTED, "AUTH_R for no handshake in progress")
            return
        if hs.stage is _Stage.DONE and data == hs.m4:
            self.counters.duplicates += 1
            return
        if hs.stage is not _Stage.AWAIT_M4:
            self._reject(events, RejectReason.UNEXPECTED, f"AUTH_R in {hs.stage.value}")
            return
        keys = hs.keys
        assert keys is not None
        try:
            plain = AESGCM(keys.enc_r).decrypt(keys.salt_r + _HANDSHAKE_SEQ, msg.sealed, msg.header)
        except InvalidTag:
            # The responder sends AUTH_R only after AUTH_I decrypted under the same keys.
            self._reject(events, RejectReason.TAMPERED, "AUTH_R does not decrypt")
            return
        try:
            ident = IdAuth.decode(plain)
        except RemoteProtocolError as exc:
            self._reject(events, RejectReason.MALFORMED, f"AUTH_R: {exc}")
            self._hs_failed(hs, FailureReason.PROTOCOL_ERROR, now, events)
            return
        if ident.ip != self.peer_ip:
            self._reject(
                events,
                RejectReason.BAD_IDENTITY,
                f"AUTH_R names {ident.ip}, sent from {self.peer_ip}",
            )
            self._hs_failed(hs, FailureReason.PROTOCOL_ERROR, now, events)
            return
        expected = _auth_value(keys, hs.m1, hs.m2, b"R", self.peer_ip)
        if not hmac.compare_digest(expected, ident.auth):
            self._reject(events, RejectReason.BAD_AUTH, "AUTH_R value does not verify")
            self._hs_failed(hs, FailureReason.KEY_MISMATCH, now, events)
            return
        hs.m4 = data
        self._complete(hs, now, events)

    def _on_notify(self, msg: Notify, now: float, events: list[ChannelEvent]) -> None:
        hs = self._hs
        if hs is None or not hs.in_progress or hs.role is not _Role.INITIATOR:
            self._reject(events, RejectReason.UNEXPECTED, f"NOTIFY {msg.code.name} out of place")
            return
        expected_spi_r = bytes(SPI_BYTES) if hs.stage is _Stage.AWAIT_M2 else hs.spi_r
        failure = _NOTIFY_FAILURES[hs.stage.value].get(msg.code)
        if (msg.spi_i, msg.spi_r) != (hs.spi_i, expected_spi_r) or failure is None:
            self._reject(events, RejectReason.UNEXPECTED, f"NOTIFY {msg.code.name} out of place")
            return
        self._hs_failed(hs, failure, now, events)


# ------------------------------------------------------------------- dispatcher
class ChannelSet:
    """One `PeerChannel` per configured peer; routes datagrams by source address.

    `peers` is the peer list as configured (it may include `local_ip`, which is
    skipped). A datagram from any other address is rejected with `unknown_peer`
    before any crypto work.
    """

    def __init__(
        self,
        local_ip: str,
        peers: list[str],
        psk: bytes | str,
        rng: RandomSource,
        config: ChannelConfig | None = None,
    ) -> None:
        self.local_ip = _ipv4(local_ip, "local_ip")
        self.config = config or ChannelConfig()
        wanted = sorted({_ipv4(p, "peer address") for p in peers} - {self.local_ip})
        self.channels: dict[str, PeerChannel] = {
            ip: PeerChannel(self.local_ip, ip, psk, rng, self.config) for ip in wanted
        }
        self.rejected: Counter[RejectReason] = Counter()
        self._out: list[tuple[str, bytes]] = []
        self._notified: dict[str, float] = {}

    def channel(self, peer_ip: str) -> PeerChannel:
        try:
            return self.channels[peer_ip]
        except KeyError:
            raise LocalProtocolError(f"{peer_ip} is not a configured peer") from None

    def connect(self, now: float) -> None:
        for channel in self.channels.values():
            channel.connect(now)

    def send(self, peer_ip: str, payload: bytes, now: float) -> None:
        self.channel(peer_ip).send(payload, now)

    def receive_datagram(self, data: bytes, src_ip: str, now: float) -> list[ChannelEvent]:
        channel = self.channels.get(src_ip)
        if channel is not None:
            return channel.receive_datagram(data, src_ip, now)
        self.rejected[RejectReason.UNKNOWN_PEER] += 1
        self._answer_stranger(data, src_ip, now)
        return [Rejected(src_ip, RejectReason.UNKNOWN_PEER, f"{src_ip} is not in the peer list")]

    def _answer_stranger(self, data: bytes, src_ip: str, now: float) -> None:
        """NOTIFY UNKNOWN_PEER for a well-formed SA_INIT: parsing only, no crypto, rate-limited."""
        if not data or data[0] != MsgType.SA_INIT:
            return
        try:
            msg = decode_datagram(data)
        except RemoteProtocolError:
            return
        if not isinstance(msg, SaInit):
            return
        last = self._notified.get(src_ip)
        if last is not None and now - last < UNKNOWN_PEER_NOTIFY_INTERVAL_S:
            return
        if len(self._notified) >= 256:
            self._notified = {
                ip: at
                for ip, at in self._notified.items()
                if now - at < UNKNOWN_PEER_NOTIFY_INTERVAL_S
            }
            if len(self._notified) >= 256:
                return
        self._notified[src_ip] = now
        notify = Notify(msg.spi_i, bytes(SPI_BYTES), NotifyCode.UNKNOWN_PEER)
        self._out.append((src_ip, notify.encode()))

    def datagrams_to_send(self, now: float) -> list[tuple[str, bytes]]:
        """(destination address, datagram) pairs."""
        out, self._out = self._out, []
        for ip, channel in self.channels.items():
            out.extend((ip, data) for data in channel.datagrams_to_send(now))
        return out

    def next_deadline(self) -> float | None:
        times = [t for c in self.channels.values() if (t := c.next_deadline()) is not None]
        return min(times) if times else None

    def on_timer(self, now: float) -> list[ChannelEvent]:
        events: list[ChannelEvent] = []
        for channel in self.channels.values():
            deadline = channel.next_deadline()
            if deadline is not None and now >= deadline:
                events.extend(channel.on_timer(now))
        return events
