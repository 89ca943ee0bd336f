"""System backup files of a Conductor peer (Maintenance > Backup and restore, G-P4).

What it models: the file *Create system backup file* hands out and *Restore*
takes back. Bytes in, bytes out: the wall time and the random source (salt and
nonce of an encrypted file) are passed in; nothing here reads a clock, a file
or the network.

The plain file (`<version>_<serial>_<date>_<time>_backup.tar.gz`) is an
ordinary gzip-compressed tar archive that `tar xzf` opens. Its gzip header is
always the same (RFC 1952, FEXTRA set, MTIME 0, OS 255) with one extra
subfield `TP`: the format version (1 byte) and the SHA-256 of everything after
the header, so any change to the file, however small, is refused (gzip's own
CRC-32 does not cover its header, and inflate ignores the padding bits of the
last byte). The tar members, in this order, all regular files, mode 0600,
owner 0, mtime = creation time:

- `manifest.json`: format name and version, software version, hardware serial
  number, creation time (UTC), and the SHA-256 and size of every other member;
- `settings.json`: the peer-specific settings as stored (G-S2);
- `shared.json`: the shared configuration (G-S1): every live replicated entry
  by key (shared settings, the admin account, conference aliases, templates,
  service preferences, pools, bridges), with their values only;
- `users.json`: the peer's own accounts (root): password hash, whether it is
  the factory default, when it changed;
- `certificates.json`: the trusted CA and the server certificate, with their
  private keys.

Left out: the event log and the configuration log ("Log files are not included
in the system backup file"), alarms (they follow the state), and the conference
records (`conference:` entries) and other runtime state: which conferences
exist on which bridge is not configuration.

With an encryption password the file (`.tar.gz.enc`) is a 41-byte header —
magic `TPLABENC`, format version, KDF id (1 = scrypt), log2 N, r, p, 16-byte
salt, 12-byte nonce — followed by AES-256-GCM of the plain file under a key
derived with scrypt (N = 2**15, r = 8, p = 1) from the password's UTF-8 bytes;
the header is the associated data, so it cannot be changed either.

Invariants: `decode` either answers a `Backup` whose every member was checked
or raises `BackupError` with a message for the administrator, for any bytes;
`encode` only writes what `decode` accepts (the same checks run on the way
out); sizes are bounded before anything is decompressed or derived; nothing is
extracted to disk (members are read in memory by name).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import tarfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from peers.core.placement import CONFERENCE_PREFIX
from peers.core.settings import SETTINGS, Scope, SettingError

FORMAT_NAME = "tplab-conductor-backup"
FORMAT_VERSION = 1
#: a backup file is at most this large: it fits in one upload of the admin page (the
#: web server's 2 MiB request limit) and in memory, where aiohttp keeps uploaded files
#: up to 1 MiB; a configuration with 1,000 conference aliases makes about 12 KB
MAX_ARCHIVE_BYTES = 1024 * 1024
#: bounds on what a file may decompress to (a gzip bomb is refused, not inflated)
MAX_TAR_BYTES = 32 * 1024 * 1024
MAX_MEMBER_BYTES = 16 * 1024 * 1024
PASSWORD_MAX = 1024
SUFFIX = ".tar.gz"
ENCRYPTED_SUFFIX = ".tar.gz.enc"

MANIFEST = "manifest.json"
SETTINGS_MEMBER = "settings.json"
SHARED_MEMBER = "shared.json"
USERS_MEMBER = "users.json"
CERTIFICATES_MEMBER = "certificates.json"
#: every member, in the order they are written
MEMBERS = (MANIFEST, SETTINGS_MEMBER, SHARED_MEMBER, USERS_MEMBER, CERTIFICATES_MEMBER)

#: shared entries that are runtime state, not configuration: never backed up, and left
#: as they are by a restore
RUNTIME_PREFIXES = (CONFERENCE_PREFIX,)
#: the store's keys of shared settings and of the admin account (`peers.store`)
SETTING_PREFIX = "setting:"
ADMIN_ENTRY = "user:admin"
#: the peer's own (not replicated) accounts (`peers.store.USERS`)
PEER_ACCOUNTS = ("root",)
CERTIFICATE_KINDS = ("ca", "server")
SHARED_KEY_MAX = 256  # the store's key column

# -- gzip framing: fixed header with the format version and a SHA-256 of the rest
_GZIP_MAGIC = b"\x1f\x8b"
_TP_DATA_BYTES = 1 + 32
_GZIP_PREFIX = (
    _GZIP_MAGIC
    + b"\x08"  # CM: deflate
    + b"\x04"  # FLG: FEXTRA only
    + b"\x00\x00\x00\x00"  # MTIME: none (the manifest has the time)
    + b"\x00\xff"  # XFL, OS: unknown
    + struct.pack("<H", 4 + _TP_DATA_BYTES)  # XLEN
    + b"TP"
    + struct.pack("<H", _TP_DATA_BYTES)
)
_GZIP_HEADER_BYTES = len(_GZIP_PREFIX) + _TP_DATA_BYTES

# -- encryption
ENC_MAGIC = b"TPLABENC"
KDF_SCRYPT = 1
SCRYPT_LOG2_N = 15
SCRYPT_R = 8
SCRYPT_P = 1
#: scrypt parameters a file may ask for: at most this much memory, and p <= 4
SCRYPT_MAX_MEMORY_BYTES = 64 * 1024 * 1024
SALT_BYTES = 16
NONCE_BYTES = 12
_ENC_HEADER = struct.Struct(f">8sBBBBB{SALT_BYTES}s{NONCE_BYTES}s")
GCM_TAG_BYTES = 16

_PASSWORD_HASH = re.compile(r"scrypt\$[A-Za-z0-9+/=]{4,88}\$[A-Za-z0-9+/=]{4,88}")
_SAFE_NAME_PART = re.compile(r"[^A-Za-z0-9.+-]+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SERIAL = re.compile(r"[\x21-\x7e]{1,64}")


class BackupError(ValueError):
    """A backup file is refused (or cannot be made); the message says why, in words an
    administrator can act on. Nothing has been changed."""


@dataclass(frozen=True)
class Configuration:
    """Everything a system backup holds (G-P4)."""

    #: peer-specific settings as stored, by setting key (G-S2)
    settings: Mapping[str, Any]
    #: live shared entries by key, runtime state (conference records) left out (G-S1)
    shared: Mapping[str, Any]
    #: the peer's own accounts: {"hash", "default", "changed"}
    users: Mapping[str, Mapping[str, Any]]
    #: kind ("ca", "server") -> {"cert_pem", "key_pem", "created"}
    certificates: Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class Manifest:
    format_version: int
    software_version: str
    serial: str
    created: datetime
    #: member name -> SHA-256 (hex) of its bytes
    members: Mapping[str, str]


@dataclass(frozen=True)
class Backup:
    manifest: Manifest
    configuration: Configuration
    #: the plain (decrypted) file: what a restore keeps until the next start
    plain: bytes
    encrypted: bool


# ------------------------------------------------------------------ names
def file_name(software_version: str, serial: str, wall: datetime, *, encrypted: bool) -> str:
    """`<software version>_<hardware serial>_<date>_<time>_backup.tar.gz[.enc]`, the date
    and time in UTC as `YYYY-MM-DD_HH-MM-SS` (the guide does not say; this sorts by time
    and has no character a file system or a Content-Disposition header minds)."""
    stamp = wall.astimezone(UTC).strftime("%Y-%m-%d_%H-%M-%S")
    parts = (_safe(software_version), _safe(serial), stamp)
    return "_".join(parts) + "_backup" + (ENCRYPTED_SUFFIX if encrypted else SUFFIX)


def _safe(text: str) -> str:
    return _SAFE_NAME_PART.sub("-", text).strip("-") or "unknown"


# ---------------------------------------------------------------- encoding
def encode(
    configuration: Configuration,
    *,
    software_version: str,
    serial: str,
    wall: datetime,
    password: str | None = None,
    random_bytes: Callable[[int], bytes] | None = None,
) -> bytes:
    """The backup file of `configuration`: plain, or encrypted when `password` is given
    (not empty); `random_bytes(n)` then supplies the salt and the nonce, and must not
    repeat (the driver passes the system's random source)."""
    check_configuration(configuration)
    if wall.tzinfo is None:
        raise ValueError("wall must be an aware datetime")
    if not _SERIAL.fullmatch(serial):
        raise BackupError(f"the hardware serial number {serial!r} cannot name a backup")
    created = wall.astimezone(UTC).replace(microsecond=0)
    contents = {
        SETTINGS_MEMBER: _json_bytes(dict(configuration.settings)),
        SHARED_MEMBER: _json_bytes(dict(configuration.shared)),
        USERS_MEMBER: _json_bytes({k: dict(v) for k, v in configuration.users.items()}),
        CERTIFICATES_MEMBER: _json_bytes(
            {k: dict(v) for k, v in configuration.certificates.items()}
        ),
    }
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "software_version": software_version,
        "serial": serial,
        "created": created.isoformat(),
        "members": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in contents.items()
        },
        "not_included": "event log, configuration log, alarms, conference records",
    }
    tar = _tar({MANIFEST: _json_bytes(manifest), **contents}, mtime=int(created.timestamp()))
    if len(tar) > MAX_TAR_BYTES:
        raise BackupError("the configuration is too large for a backup file")
    plain = _gzip(tar)
    if password:
        _check_password(password)
        if random_bytes is None:
            raise ValueError("an encrypted backup needs a random source")
        data = _encrypt(plain, password, random_bytes)
    else:
        data = plain
    if len(data) > MAX_ARCHIVE_BYTES:
        raise BackupError(
            f"the configuration is too large for a backup file ({len(data)} bytes; at most "
            f"{MAX_ARCHIVE_BYTES})"
        )
    return data


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, indent=1).encode("utf-8") + b"\n"


def _tar(members: Mapping[str, bytes], *, mtime: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in MEMBERS:
            data = members[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o600  # private keys and password hashes
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(data) + compressor.flush()
    body += struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    digest = hashlib.sha256(body).digest()
    return _GZIP_PREFIX + bytes([FORMAT_VERSION]) + digest + body


def _check_password(password: str) -> bytes:
    if len(password) > PASSWORD_MAX:
        raise BackupError(f"the encryption password must be at most {PASSWORD_MAX} characters")
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BackupError("the encryption password is not valid text (UTF-8)") from exc


def _key(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    secret = _check_password(password)
    return Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p).derive(secret)


def _encrypt(plain: bytes, password: str, random_bytes: Callable[[int], bytes]) -> bytes:
    salt, nonce = random_bytes(SALT_BYTES), random_bytes(NONCE_BYTES)
    if len(salt) != SALT_BYTES or len(nonce) != NONCE_BYTES:
        raise ValueError("the random source answered the wrong number of bytes")
    header = _ENC_HEADER.pack(
        ENC_MAGIC, FORMAT_VERSION, KDF_SCRYPT, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, salt, nonce
    )
    key = _key(password, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    return header + AESGCM(key).encrypt(nonce, plain, header)


# ---------------------------------------------------------------- decoding
def is_encrypted(data: bytes) -> bool:
    return data.startswith(ENC_MAGIC)


def decode(data: bytes, *, serial: str, password: str | None = None) -> Backup:
    """Check a backup file for a restore on the peer with hardware serial `serial`.

    Checks, in this order: size; a tplab backup of a known format version; for an
    encrypted file, the password (given, and right: the GCM tag); the checksum of the
    file; gzip and tar; each member (regular file, expected name, size) and its
    checksum in the manifest; the serial number (G-P4: only the peer that made a
    backup restores it); the contents. A password given for a plain file is not
    needed and not used."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise BackupError(
            f"the file is too large for a tplab backup ({len(data)} bytes; at most "
            f"{MAX_ARCHIVE_BYTES})"
        )
    encrypted = is_encrypted(data)
    plain = _decrypt(data, password) if encrypted else data
    members = _members(_gunzip(plain))
    manifest = _manifest(members)
    if manifest.serial != serial:
        raise BackupError(
            f"this backup was made on peer {manifest.serial}; a system backup can only be "
            f"restored to the peer from which it was taken (this peer is {serial})"
        )
    configuration = Configuration(
        settings=_object(members, SETTINGS_MEMBER),
        shared=_object(members, SHARED_MEMBER),
        users=_object(members, USERS_MEMBER),
        certificates=_object(members, CERTIFICATES_MEMBER),
    )
    return Backup(manifest, check_configuration(configuration), plain, encrypted)


def _decrypt(data: bytes, password: str | None) -> bytes:
    if len(data) < _ENC_HEADER.size:
        raise BackupError("the file is truncated (its encryption header is incomplete)")
    _magic, version, kdf, log2_n, r, p, salt, nonce = _ENC_HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise BackupError(
            f"unknown backup format version {version} (this software reads version "
            f"{FORMAT_VERSION})"
        )
    if not password:
        raise BackupError(
            "this backup file is encrypted: give the encryption password it was made with"
        )
    if (
        kdf != KDF_SCRYPT
        or log2_n < SCRYPT_LOG2_N
        or r < 1
        or not 1 <= p <= 4
        or 128 * r * 2**log2_n > SCRYPT_MAX_MEMORY_BYTES
    ):
        raise BackupError(
            "the file asks for an unknown key derivation (not a tplab backup file, or "
            "a newer format)"
        )
    if len(data) < _ENC_HEADER.size + GCM_TAG_BYTES:
        raise BackupError("the file is truncated (it ends before its encrypted contents)")
    header = data[: _ENC_HEADER.size]
    key = _key(password, salt, log2_n, r, p)
    try:
        plain = AESGCM(key).decrypt(nonce, data[_ENC_HEADER.size :], header)
    except InvalidTag as exc:
        raise BackupError("wrong encryption password, or the file was changed") from exc
    if not plain.startswith(_GZIP_MAGIC):
        raise BackupError("not a tplab backup file (its encrypted contents are not one)")
    return plain


def _gunzip(data: bytes) -> bytes:
    if not data.startswith(_GZIP_MAGIC):
        raise BackupError(
            "not a tplab backup file (a backup is a .tar.gz file, or a .tar.gz.enc file "
            "when it was made with an encryption password)"
        )
    if len(data) < _GZIP_HEADER_BYTES:
        raise BackupError("the file is truncated (its gzip header is incomplete)")
    if not data.startswith(_GZIP_PREFIX):
        raise BackupError("not a tplab backup file (a gzip file, but not one tplab wrote)")
    version = data[len(_GZIP_PREFIX)]
    if version != FORMAT_VERSION:
        raise BackupError(
            f"unknown backup format version {version} (this software reads version "
            f"{FORMAT_VERSION})"
        )
    body = data[_GZIP_HEADER_BYTES:]
    if hashlib.sha256(body).digest() != data[len(_GZIP_PREFIX) + 1 : _GZIP_HEADER_BYTES]:
        raise BackupError(
            "the file is truncated or corrupt: its SHA-256 checksum does not match "
            "(it was changed after it was made)"
        )
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        tar = inflater.decompress(body, MAX_TAR_BYTES + 1)
    except zlib.error as exc:
        raise BackupError(f"the file is corrupt (gzip: {exc})") from exc
    if len(tar) > MAX_TAR_BYTES or inflater.unconsumed_tail:
        raise BackupError(f"the archive is too large (more than {MAX_TAR_BYTES} bytes unpacked)")
    if not inflater.eof:
        raise BackupError("the file is truncated (the gzip stream ends early)")
    trailer = inflater.unused_data
    if len(trailer) != 8:
        raise BackupError("the file is truncated or corrupt (bad gzip trailer)")
    crc, size = struct.unpack("<II", trailer)
    if crc != zlib.crc32(tar) or size != len(tar) & 0xFFFFFFFF:
        raise BackupError("the file is corrupt (gzip CRC or length mismatch)")
    return tar


def _members(tar: bytes) -> dict[str, bytes]:
    """Every member's bytes, read in memory: only regular files with expected names."""
    members: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
            for info in archive:
                name = info.name
                if info.issym() or info.islnk():
                    raise BackupError(f"the archive member {name!r} is a link; refused")
                if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                    raise BackupError(f"the archive member {name!r} is not a regular file")
                path = PurePosixPath(name)
                if path.is_absolute() or ".." in path.parts or "\\" in name:
                    raise BackupError(f"the archive member name {name!r} is unsafe; refused")
                if name not in MEMBERS:
                    raise BackupError(f"the archive has an unexpected member {name!r}")
                if name in members:
                    raise BackupError(f"the archive has the member {name!r} twice")
                if info.size > MAX_MEMBER_BYTES:
                    raise BackupError(
                        f"the archive member {name!r} is too large ({info.size} bytes; at "
                        f"most {MAX_MEMBER_BYTES})"
                    )
                total += info.size
                if total > MAX_TAR_BYTES:
                    raise BackupError("the archive is too large")
                stream = archive.extractfile(info)
                content = b"" if stream is None else stream.read()
                if len(content) != info.size:
                    raise BackupError(f"the archive member {name!r} is truncated")
                members[name] = content
    except BackupError:
        raise
    except Exception as exc:  # tarfile raises many kinds of error on crafted headers
        raise BackupError(f"the archive is corrupt (tar: {exc})") from exc
    missing = [name for name in MEMBERS if name not in members]
    if missing:
        raise BackupError(f"the archive lacks {', '.join(missing)}; not a complete backup")
    return members


def _parse(members: Mapping[str, bytes], name: str) -> Any:
    try:
        return json.loads(members[name].decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BackupError(f"the archive member {name} is not valid JSON") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _object(members: Mapping[str, bytes], name: str) -> dict[str, Any]:
    value = _parse(members, name)
    if not isinstance(value, dict):
        raise BackupError(f"the archive member {name} is not a JSON object")
    return value


def _manifest(members: Mapping[str, bytes]) -> Manifest:
    raw = _parse(members, MANIFEST)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise BackupError("not a tplab backup file (its manifest is not a tplab manifest)")
    version = raw.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise BackupError(
            f"unknown backup format version {version!r} (this software reads version "
            f"{FORMAT_VERSION})"
        )
    software_version, serial, created_text = (
        raw.get("software_version"),
        raw.get("serial"),
        raw.get("created"),
    )
    if not isinstance(software_version, str) or not 0 < len(software_version) <= 64:
        raise BackupError("the manifest has no valid software version")
    if not isinstance(serial, str) or not _SERIAL.fullmatch(serial):
        raise BackupError("the manifest has no valid hardware serial number")
    try:
        created = datetime.fromisoformat(created_text) if isinstance(created_text, str) else None
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        raise BackupError("the manifest has no valid creation time")
    listed = raw.get("members")
    if not isinstance(listed, dict) or set(listed) != set(MEMBERS[1:]):
        raise BackupError("the manifest does not list the archive's members")
    digests: dict[str, str] = {}
    for name in MEMBERS[1:]:
        entry = listed[name]
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("bytes") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise BackupError(f"the manifest has no valid checksum for {name}")
        data = members[name]
        if size != len(data) or hashlib.sha256(data).hexdigest() != digest:
            raise BackupError(
                f"the checksum of {name} does not match the manifest; the archive was changed"
            )
        digests[name] = digest
    return Manifest(version, software_version, serial, created.astimezone(UTC), digests)


# ---------------------------------------------------------------- contents
def check_configuration(configuration: Configuration) -> Configuration:
    """The configuration with every value checked as the pages would (settings
    canonical); BackupError naming the first problem. Run on the way out too, so a
    backup that was made can be restored."""
    return Configuration(
        settings=_check_settings(configuration.settings),
        shared=_check_shared(configuration.shared),
        users=_check_users(configuration.users),
        certificates=_check_certificates(configuration.certificates),
    )


def _setting(key: Any, value: Any, scope: Scope) -> Any:
    setting = SETTINGS.get(key) if isinstance(key, str) else None
    if setting is None or setting.scope is not scope:
        raise BackupError(f"the backup has an unknown {scope.value} setting {key!r}")
    try:
        return setting.validate(value)
    except (SettingError, TypeError) as exc:
        raise BackupError(f"the backup's setting {key}: {exc}") from exc


def _check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _setting(key, value, Scope.PEER) for key, value in sorted(settings.items())}


def _check_shared(shared: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sorted(shared.items()):
        if not isinstance(key, str) or not 0 < len(key) <= SHARED_KEY_MAX:
            raise BackupError(f"the backup has a shared entry with an invalid key {key!r}")
        if key.startswith(RUNTIME_PREFIXES):
            raise BackupError(f"the backup holds runtime state ({key!r}), not configuration")
        if key.startswith(SETTING_PREFIX):
            out[key] = _setting(key[len(SETTING_PREFIX) :], value, Scope.SHARED)
        elif key == ADMIN_ENTRY:
            out[key] = _account(key, value, ("hash", "default"))
        else:
            out[key] = value
    if ADMIN_ENTRY not in out:
        raise BackupError("the backup has no admin account")
    return out


def _account(name: str, value: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    if (
        not isinstance(value, dict)
        or set(value) != set(fields)
        or not isinstance(value["hash"], str)
        or not _PASSWORD_HASH.fullmatch(value["hash"])
        or not isinstance(value["default"], bool)
        or ("changed" in fields and not _short_text(value["changed"]))
    ):
        raise BackupError(f"the backup's account {name!r} is invalid")
    return dict(value)


def _short_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 40


def _check_users(users: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    if set(users) != set(PEER_ACCOUNTS):
        raise BackupError(
            f"the backup's accounts are {sorted(map(str, users))}; expected {list(PEER_ACCOUNTS)}"
        )
    return {name: _account(name, users[name], ("hash", "default", "changed")) for name in users}


def _check_certificates(
    certificates: Mapping[str, Mapping[str, str]],
) -> dict[str, dict[str, str]]:
    if set(certificates) != set(CERTIFICATE_KINDS):
        raise BackupError("the backup does not hold the trusted CA and server certificates")
    out: dict[str, dict[str, str]] = {}
    for kind in CERTIFICATE_KINDS:
        pair = certificates[kind]
        if (
            not isinstance(pair, dict)
            or set(pair) != {"cert_pem", "key_pem", "created"}
            or not all(isinstance(v, str) for v in pair.values())
            or not _short_text(pair["created"])
        ):
            raise BackupError(f"the backup's {kind} certificate is invalid")
        try:
            cert = x509.load_pem_x509_certificate(pair["cert_pem"].encode("utf-8"))
            key = serialization.load_pem_private_key(pair["key_pem"].encode("utf-8"), None)
            matches = _public(cert.public_key()) == _public(key.public_key())
        except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
            raise BackupError(f"the backup's {kind} certificate or key cannot be read") from exc
        if not matches:
            raise BackupError(f"the backup's {kind} private key does not match its certificate")
        out[kind] = dict(pair)
    return out


def _public(key: Any) -> bytes:
    data: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data
