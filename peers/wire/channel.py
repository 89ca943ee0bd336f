"""Byte layout of the secure peer channel (G-R15): handshake messages and records.

The channel is tplab's stand-in for the IPsec between Conductor peers (deployment
guide, "IPSec communications"): AES-256, SHA-256, a pre-shared key, peers identified
by IP address, a main-mode-like exchange with Diffie-Hellman group 16 (RFC 3526
modp4096). One suite, one proposal (`PROPOSAL_ID`). Every datagram starts with a
one-byte type; integers are big-endian; an SPI is 8 bytes and never zero, except the
responder SPI of a NOTIFY sent before the responder chose one.

    SA_INIT  0x01  type | version(1) | spi_i(8) | proposal(1) | Ni(16) | g^x(512)  539 B
    SA_RESP  0x02  type | spi_i(8) | spi_r(8) | proposal(1) | Nr(16) | g^y(512)    546 B
    AUTH_I   0x03  type | spi_i(8) | spi_r(8) | AES-GCM(ID_i(4) | AUTH_i(32)) + tag 69 B
    AUTH_R   0x04  type | spi_i(8) | spi_r(8) | AES-GCM(ID_r(4) | AUTH_r(32)) + tag 69 B
    NOTIFY   0x05  type | spi_i(8) | spi_r(8) | code(2)                             19 B
    RECORD   0x17  type | spi(8) | seq(8) | AES-GCM(payload) | tag(16)          33 B + n

Sizes are chosen so that every handshake datagram fits the smallest MTU a peer
accepts (576 bytes, the floor of System > Ethernet > MTU): 546 + 28 (IPv4 + UDP) =
574. That is why nonces are 16 bytes (128 bits: RFC 7296 section 2.10 asks for at
least 128 bits and at least half the PRF key size, 256 / 2); 32-byte nonces would
make SA_RESP 562 bytes, 590 on the wire, and the handshake could never complete
at MTU 576 because tplab never fragments (G-R14).

The sealed part of AUTH_I / AUTH_R and of a RECORD is authenticated with the
message's own header as associated data (the first 17 bytes in both cases). This
module only lays bytes out; keys, nonces and verification live in
`peers.core.channel`.

Invariants:
- `decode_datagram` takes any bytes and returns a message or raises
  `RemoteProtocolError` (`reason` "truncated" when too short for its type,
  "malformed" otherwise) - never another exception;
- decoding is canonical: `decode_datagram(b).encode() == b` whenever it succeeds,
  and `decode_datagram(m.encode()) == m` for every valid message `m`;
- constructing a message with a field of the wrong size raises `LocalProtocolError`.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass
from typing import ClassVar

from peers.wire.errors import LocalProtocolError, RemoteProtocolError

#: IPv4 header (20) + UDP header (8). Same value as `netsim.api.IPV4_UDP_OVERHEAD`,
#: repeated here so that the wire ring imports nothing that pulls in asyncio.
IPV4_UDP_OVERHEAD = 28
#: Smallest MTU a peer accepts (System > Ethernet > MTU); every handshake datagram fits it.
MIN_MTU_BYTES = 576

PROTOCOL_VERSION = 1
#: The only proposal: modp4096 / HMAC-SHA-256 PRF / HKDF-SHA-256 / AES-256-GCM.
PROPOSAL_ID = 1

SPI_BYTES = 8
NONCE_BYTES = 16
DH_PUBLIC_BYTES = 512
AUTH_BYTES = 32
ID_BYTES = 4
TAG_BYTES = 16
SEQ_BYTES = 8

#: RFC 3526 group 16, "4096-bit MODP Group"; generator 2.
MODP4096_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8"
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2"
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
    16,
)
MODP4096_G = 2


class MsgType(enum.IntEnum):
    SA_INIT = 0x01
    SA_RESP = 0x02
    AUTH_I = 0x03
    AUTH_R = 0x04
    NOTIFY = 0x05
    RECORD = 0x17


class NotifyCode(enum.IntEnum):
    """Unauthenticated error notifications (numbers after IKEv2; 8192+ are private use)."""

    INVALID_MAJOR_VERSION = 5
    INVALID_SYNTAX = 7
    NO_PROPOSAL_CHOSEN = 14
    AUTHENTICATION_FAILED = 24
    INVALID_ID = 8192  # the ID in AUTH_I / AUTH_R is not the sender's address
    UNKNOWN_PEER = 8193  # the sender's address is not in the receiver's peer list (G-R12)


_SA_INIT = struct.Struct(f"!BB{SPI_BYTES}sB{NONCE_BYTES}s{DH_PUBLIC_BYTES}s")
_SA_RESP = struct.Struct(f"!B{SPI_BYTES}s{SPI_BYTES}sB{NONCE_BYTES}s{DH_PUBLIC_BYTES}s")
_AUTH_HEADER = struct.Struct(f"!B{SPI_BYTES}s{SPI_BYTES}s")
_NOTIFY = struct.Struct(f"!B{SPI_BYTES}s{SPI_BYTES}sH")
_RECORD_HEADER = struct.Struct(f"!B{SPI_BYTES}sQ")
_ID_AUTH = struct.Struct(f"!{ID_BYTES}s{AUTH_BYTES}s")

ID_AUTH_BYTES = _ID_AUTH.size
AUTH_SEALED_BYTES = ID_AUTH_BYTES + TAG_BYTES
AUTH_MSG_BYTES = _AUTH_HEADER.size + AUTH_SEALED_BYTES
HANDSHAKE_HEADER_BYTES = _AUTH_HEADER.size
RECORD_HEADER_BYTES = _RECORD_HEADER.size
#: Bytes a record adds to its payload: header (type, SPI, sequence number) + GCM tag.
RECORD_OVERHEAD = RECORD_HEADER_BYTES + TAG_BYTES
#: Largest handshake datagram (SA_RESP); + IPV4_UDP_OVERHEAD it fits MIN_MTU_BYTES.
HANDSHAKE_MAX_BYTES = _SA_RESP.size
MAX_SEQ = (1 << 64) - 1
_ZERO_SPI = bytes(SPI_BYTES)


def max_payload(mtu_bytes: int) -> int:
    """Largest record payload whose datagram fits an IP packet of `mtu_bytes` (G-R14)."""
    return mtu_bytes - IPV4_UDP_OVERHEAD - RECORD_OVERHEAD


def _check_len(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise LocalProtocolError(f"{name} must be {size} bytes")


def _check_spi(name: str, value: bytes, *, zero_ok: bool = False) -> None:
    _check_len(name, value, SPI_BYTES)
    if value == _ZERO_SPI and not zero_ok:
        raise LocalProtocolError(f"{name} must not be zero")


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{name} must fit in one byte")


def dh_public_valid(value: int) -> bool:
    """1 < y < p - 1: rejects the values that leak or fix the shared secret."""
    return 1 < value < MODP4096_P - 1


def _check_public(value: int) -> None:
    if not dh_public_valid(value):
        raise LocalProtocolError("Diffie-Hellman public value out of range")


@dataclass(frozen=True, slots=True)
class SaInit:
    """M1, initiator -> responder: SPI, proposal, nonce Ni and public value g^x."""

    spi_i: bytes
    nonce: bytes
    public: int
    version: int = PROTOCOL_VERSION
    proposal: int = PROPOSAL_ID

    def __post_init__(self) -> None:
        _check_spi("spi_i", self.spi_i)
        _check_len("nonce", self.nonce, NONCE_BYTES)
        _check_public(self.public)
        _check_byte("version", self.version)
        _check_byte("proposal", self.proposal)

    def encode(self) -> bytes:
        return _SA_INIT.pack(
            MsgType.SA_INIT,
            self.version,
            self.spi_i,
            self.proposal,
            self.nonce,
            self.public.to_bytes(DH_PUBLIC_BYTES, "big"),
        )


@dataclass(frozen=True, slots=True)
class SaResp:
    """M2, responder -> initiator: both SPIs, the chosen proposal, Nr and g^y."""

    spi_i: bytes
    spi_r: bytes
    nonce: bytes
    public: int
    proposal: int = PROPOSAL_ID

    def __post_init__(self) -> None:
        _check_spi("spi_i", self.spi_i)
        _check_spi("spi_r", self.spi_r)
        _check_len("nonce", self.nonce, NONCE_BYTES)
        _check_public(self.public)
        _check_byte("proposal", self.proposal)

    def encode(self) -> bytes:
        return _SA_RESP.pack(
            MsgType.SA_RESP,
            self.spi_i,
            self.spi_r,
            self.proposal,
            self.nonce,
            self.public.to_bytes(DH_PUBLIC_BYTES, "big"),
        )


@dataclass(frozen=True, slots=True)
class _AuthBase:
    TYPE: ClassVar[MsgType]

    spi_i: bytes
    spi_r: bytes
    sealed: bytes  # AES-256-GCM of `IdAuth`, tag included; AAD = `header`

    def __post_init__(self) -> None:
        _check_spi("spi_i", self.spi_i)
        _check_spi("spi_r", self.spi_r)
        _check_len("sealed", self.sealed, AUTH_SEALED_BYTES)

    @classmethod
    def header_for(cls, spi_i: bytes, spi_r: bytes) -> bytes:
        return _AUTH_HEADER.pack(cls.TYPE, spi_i, spi_r)

    @property
    def header(self) -> bytes:
        return self.header_for(self.spi_i, self.spi_r)

    def encode(self) -> bytes:
        return self.header + self.sealed


@dataclass(frozen=True, slots=True)
class AuthI(_AuthBase):
    """M3, initiator -> responder, encrypted: ID_i (its IPv4 address) and AUTH_i."""

    TYPE = MsgType.AUTH_I


@dataclass(frozen=True, slots=True)
class AuthR(_AuthBase):
    """M4, responder -> initiator, encrypted: ID_r and AUTH_r."""

    TYPE = MsgType.AUTH_R


@dataclass(frozen=True, slots=True)
class Notify:
    """An unauthenticated error report about the handshake `spi_i` / `spi_r`."""

    spi_i: bytes
    spi_r: bytes
    code: NotifyCode

    def __post_init__(self) -> None:
        _check_spi("spi_i", self.spi_i)
        _check_spi("spi_r", self.spi_r, zero_ok=True)
        if not isinstance(self.code, NotifyCode):
            raise LocalProtocolError("code must be a NotifyCode")

    def encode(self) -> bytes:
        return _NOTIFY.pack(MsgType.NOTIFY, self.spi_i, self.spi_r, self.code)


@dataclass(frozen=True, slots=True)
class Record:
    """An encrypted payload on an established SA. `spi` is the receiver's inbound SPI."""

    spi: bytes
    seq: int
    sealed: bytes  # AES-256-GCM ciphertext + tag; AAD = `header`

    def __post_init__(self) -> None:
        _check_spi("spi", self.spi)
        if not 0 <= self.seq <= MAX_SEQ:
            raise LocalProtocolError("seq must fit in 8 bytes")
        if not isinstance(self.sealed, bytes) or len(self.sealed) < TAG_BYTES:
            raise LocalProtocolError(f"sealed must be at least {TAG_BYTES} bytes")

    @staticmethod
    def header_for(spi: bytes, seq: int) -> bytes:
        return _RECORD_HEADER.pack(MsgType.RECORD, spi, seq)

    @property
    def header(self) -> bytes:
        return self.header_for(self.spi, self.seq)

    def encode(self) -> bytes:
        return self.header + self.sealed


@dataclass(frozen=True, slots=True)
class IdAuth:
    """Plaintext inside AUTH_I / AUTH_R: the sender's IPv4 address and its AUTH value."""

    ip: str
    auth: bytes

    def __post_init__(self) -> None:
        try:
            ipaddress.IPv4Address(self.ip)
        except ValueError as exc:
            raise LocalProtocolError(f"ip must be an IPv4 address: {exc}") from None
        _check_len("auth", self.auth, AUTH_BYTES)

    def encode(self) -> bytes:
        return _ID_AUTH.pack(ipaddress.IPv4Address(self.ip).packed, self.auth)

    @classmethod
    def decode(cls, data: bytes) -> IdAuth:
        if len(data) != _ID_AUTH.size:
            raise RemoteProtocolError(
                f"ID/AUTH payload must be {_ID_AUTH.size} bytes, got {len(data)}"
            )
        raw_ip, auth = _ID_AUTH.unpack(data)
        return cls(str(ipaddress.IPv4Address(raw_ip)), auth)


Message = SaInit | SaResp | AuthI | AuthR | Notify | Record
HandshakeMessage = SaInit | SaResp | AuthI | AuthR | Notify


def _exact(data: bytes, size: int, name: str) -> None:
    if len(data) < size:
        raise RemoteProtocolError(
            f"{name} truncated: {len(data)} of {size} bytes", reason="truncated"
        )
    if len(data) > size:
        raise RemoteProtocolError(f"{name} has {len(data) - size} trailing bytes")


def _remote_spi(value: bytes, name: str, *, zero_ok: bool = False) -> bytes:
    if value == _ZERO_SPI and not zero_ok:
        raise RemoteProtocolError(f"{name} is zero")
    return value


def _remote_public(raw: bytes) -> int:
    value = int.from_bytes(raw, "big")
    if not dh_public_valid(value):
        raise RemoteProtocolError("Diffie-Hellman public value out of range")
    return value


def _decode_sa_init(data: bytes) -> SaInit:
    _exact(data, _SA_INIT.size, "SA_INIT")
    _, version, spi_i, proposal, nonce, public = _SA_INIT.unpack(data)
    return SaInit(_remote_spi(spi_i, "spi_i"), nonce, _remote_public(public), version, proposal)


def _decode_sa_resp(data: bytes) -> SaResp:
    _exact(data, _SA_RESP.size, "SA_RESP")
    _, spi_i, spi_r, proposal, nonce, public = _SA_RESP.unpack(data)
    return SaResp(
        _remote_spi(spi_i, "spi_i"),
        _remote_spi(spi_r, "spi_r"),
        nonce,
        _remote_public(public),
        proposal,
    )


def _decode_auth(data: bytes, cls: type[AuthI] | type[AuthR]) -> AuthI | AuthR:
    _exact(data, AUTH_MSG_BYTES, cls.TYPE.name)
    _, spi_i, spi_r = _AUTH_HEADER.unpack_from(data)
    return cls(
        _remote_spi(spi_i, "spi_i"),
        _remote_spi(spi_r, "spi_r"),
        data[_AUTH_HEADER.size :],
    )


def _decode_notify(data: bytes) -> Notify:
    _exact(data, _NOTIFY.size, "NOTIFY")
    _, spi_i, spi_r, code = _NOTIFY.unpack(data)
    try:
        notify_code = NotifyCode(code)
    except ValueError:
        raise RemoteProtocolError(f"unknown NOTIFY code {code}") from None
    return Notify(
        _remote_spi(spi_i, "spi_i"), _remote_spi(spi_r, "spi_r", zero_ok=True), notify_code
    )


def _decode_record(data: bytes) -> Record:
    if len(data) < RECORD_OVERHEAD:
        raise RemoteProtocolError(
            f"RECORD truncated: {len(data)} bytes, at least {RECORD_OVERHEAD}", reason="truncated"
        )
    _, spi, seq = _RECORD_HEADER.unpack_from(data)
    return Record(_remote_spi(spi, "spi"), seq, data[RECORD_HEADER_BYTES:])


def decode_datagram(data: bytes) -> Message:
    """Parse one datagram of the channel; raises `RemoteProtocolError` for anything else."""
    if not data:
        raise RemoteProtocolError("empty datagram", reason="truncated")
    kind = data[0]
    if kind == MsgType.RECORD:  # the hot path first
        return _decode_record(data)
    if kind == MsgType.SA_INIT:
        return _decode_sa_init(data)
    if kind == MsgType.SA_RESP:
        return _decode_sa_resp(data)
    if kind == MsgType.AUTH_I:
        return _decode_auth(data, AuthI)
    if kind == MsgType.AUTH_R:
        return _decode_auth(data, AuthR)
    if kind == MsgType.NOTIFY:
        return _decode_notify(data)
    raise RemoteProtocolError(f"unknown message type 0x{kind:02x}")
