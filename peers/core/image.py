"""tplab software images of the TelePresence Conductor: the file format, and its checks.

A peer upgrades (Maintenance > Upgrade, G-P6) only from an image this module
accepts; the version inside it is the one the peer runs after its restart, and
peers on different versions never cluster (G-R1).

Format version 1; integers are big-endian:

    offset      size  field
    0           8     magic b"TPLABIMG"
    8           2     format version (1)
    10          4     manifest length M (1 .. MAX_MANIFEST_BYTES)
    14          4     payload length P (0 .. MAX_PAYLOAD_BYTES)
    18          M     manifest: one JSON object, UTF-8
    18+M        P     payload (the release notes; any bytes)
    18+M+P      64    Ed25519 signature over bytes 0 .. 18+M+P (header, manifest, payload)

The manifest has exactly the fields `product` ("TelePresence Conductor"),
`version` (XC<major>.<minor>[.<patch>]), `built` (ISO 8601, UTC) and
`payload_sha256` (lower-case hex).

Invariants: `verify_image` returns an `Image` only for a file that is byte for
byte what the holder of the trusted key signed, for this product, with a
well-formed version; for any other bytes it raises `ImageError` with one sentence
for the administrator, never another exception. Checks run in order: structure
(magic, format version, lengths, exact size), manifest syntax, payload checksum
(so a damaged file is called corrupt), signature, and only then what the
manifest says (product, version): nothing in a manifest is believed before its
signature checks.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

MAGIC = b"TPLABIMG"
FORMAT_VERSION = 1
#: magic, format version, manifest length, payload length
HEADER = struct.Struct(">8sHII")
SIGNATURE_BYTES = 64
MAX_MANIFEST_BYTES = 4096
MAX_PAYLOAD_BYTES = 1024 * 1024
#: the largest file that can be an image: what an upload may carry
MAX_IMAGE_BYTES = HEADER.size + MAX_MANIFEST_BYTES + MAX_PAYLOAD_BYTES + SIGNATURE_BYTES
PRODUCT = "TelePresence Conductor"
MANIFEST_FIELDS = ("product", "version", "built", "payload_sha256")
VERSION_RE = re.compile(r"XC(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})(?:\.(0|[1-9][0-9]{0,3}))?")
VERSION_FORM = "XC<major>.<minor> or XC<major>.<minor>.<patch>, e.g. XC3.1"
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class ImageError(Exception):
    """The bytes are not a software image this peer may install; the message says why."""


@dataclass(frozen=True, slots=True)
class Image:
    """A verified image."""

    product: str
    version: str
    built: datetime
    payload_sha256: str
    payload: bytes
    format_version: int = FORMAT_VERSION

    @property
    def notes(self) -> str:
        """The payload as text (release notes)."""
        return self.payload.decode("utf-8", errors="replace")


# ------------------------------------------------------------------- versions
def check_version(text: str) -> str:
    """`text` if it is a well-formed software version, else ImageError."""
    if not isinstance(text, str) or VERSION_RE.fullmatch(text) is None:
        shown = repr(text[:40]) if isinstance(text, str) else type(text).__name__
        raise ImageError(f"malformed software version {shown}: a version is {VERSION_FORM}")
    return text


def version_key(text: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a well-formed version, for ordering (XC3.0 < XC3.0.1 <
    XC3.1 < XC10.0); ImageError if it is malformed."""
    match = VERSION_RE.fullmatch(check_version(text))
    assert match is not None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


# ------------------------------------------------------------------- building
def make_manifest(version: str, payload: bytes, built: datetime) -> dict[str, str]:
    """The manifest of an image of `version` (checked) carrying `payload`."""
    if built.tzinfo is None:
        raise ValueError("built must be an aware datetime")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ImageError(
            f"the payload is {len(payload)} bytes; an image carries {MAX_PAYLOAD_BYTES} at most"
        )
    return {
        "product": PRODUCT,
        "version": check_version(version),
        "built": built.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }


def encode_unsigned(
    manifest: Mapping[str, Any], payload: bytes, *, format_version: int = FORMAT_VERSION
) -> bytes:
    """Header, manifest and payload: the bytes the signature covers. The manifest is
    written as given (the builder passes `make_manifest`'s)."""
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    header = HEADER.pack(MAGIC, format_version, len(manifest_bytes), len(payload))
    return header + manifest_bytes + payload


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    """The trusted key from its PEM text (ValueError if it is not an Ed25519 key)."""
    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the image signing key is not an Ed25519 public key")
    return key


# ------------------------------------------------------------------- checking
def verify_image(data: bytes, trusted: Ed25519PublicKey) -> Image:
    """The image in `data`, signed with `trusted`; ImageError for anything else."""
    manifest_bytes, payload, signed, signature = _split(data)
    manifest = _parse_manifest(manifest_bytes)
    if hashlib.sha256(payload).hexdigest() != manifest["payload_sha256"]:
        raise ImageError("the image is corrupt: its payload does not match its checksum")
    try:
        trusted.verify(signature, signed)
    except InvalidSignature:
        raise ImageError(
            "the image is not signed with the TelePresence Conductor release key"
        ) from None
    if manifest["product"] != PRODUCT:
        raise ImageError(
            f"the image is for {manifest['product'][:60]!r}, not for {PRODUCT}; "
            "choose a TelePresence Conductor software image"
        )
    version = check_version(manifest["version"])
    return Image(
        product=manifest["product"],
        version=version,
        built=manifest["built_at"],
        payload_sha256=manifest["payload_sha256"],
        payload=payload,
    )


def _split(data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(manifest, payload, signed part, signature) by the header's lengths."""
    if not data:
        raise ImageError("not a software image: the file is empty")
    if len(data) < HEADER.size:
        if MAGIC.startswith(data[: len(MAGIC)]):
            raise ImageError(f"the image is truncated: {len(data)} bytes, not even a header")
        raise ImageError("not a TelePresence Conductor software image")
    magic, format_version, manifest_len, payload_len = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ImageError("not a TelePresence Conductor software image")
    if format_version != FORMAT_VERSION:
        raise ImageError(
            f"unknown image format version {format_version}; "
            f"this peer reads version {FORMAT_VERSION}"
        )
    if not 1 <= manifest_len <= MAX_MANIFEST_BYTES:
        raise ImageError(
            f"the image is corrupt: manifest length {manifest_len} is not "
            f"1 to {MAX_MANIFEST_BYTES} bytes"
        )
    if payload_len > MAX_PAYLOAD_BYTES:
        raise ImageError(
            f"the image is corrupt: payload length {payload_len} is over {MAX_PAYLOAD_BYTES} bytes"
        )
    signed_len = HEADER.size + manifest_len + payload_len
    expected = signed_len + SIGNATURE_BYTES
    if len(data) < expected:
        raise ImageError(f"the image is truncated: {len(data)} bytes of {expected}")
    if len(data) > expected:
        raise ImageError(f"the image is corrupt: {len(data) - expected} bytes follow its signature")
    manifest = data[HEADER.size : HEADER.size + manifest_len]
    payload = data[HEADER.size + manifest_len : signed_len]
    return manifest, payload, data[:signed_len], data[signed_len:]


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest's fields, typed; `built_at` added (the parsed `built`)."""
    try:
        value = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise ImageError("the image is corrupt: its manifest is not a JSON object")
    missing = [name for name in MANIFEST_FIELDS if name not in value]
    if missing:
        raise ImageError(f"the image is corrupt: its manifest lacks {', '.join(missing)}")
    unknown = sorted(set(value) - set(MANIFEST_FIELDS))
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise ImageError(f"the image is corrupt: unknown manifest field(s) {shown}")
    wrong = [name for name in MANIFEST_FIELDS if not isinstance(value[name], str)]
    if wrong:
        raise ImageError(f"the image is corrupt: manifest field(s) {', '.join(wrong)} not text")
    if _SHA256_RE.fullmatch(value["payload_sha256"]) is None:
        raise ImageError("the image is corrupt: payload_sha256 is not a SHA-256 in hex")
    value["built_at"] = _parse_built(value["built"])
    return value


def _parse_built(text: str) -> datetime:
    try:
        built = datetime.fromisoformat(text)
    except ValueError:
        built = None
    if built is None or built.tzinfo is None or built.utcoffset():
        raise ImageError("the image is corrupt: its build time is not an ISO 8601 UTC time")
    return built.astimezone(UTC)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate field {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")
