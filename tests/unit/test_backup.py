"""System backup files (G-P4): the archive format, every refusal, the store's export and
restore, and hypothesis mutations of whole files (plain and encrypted)."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import struct
import tarfile
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.certs import make_certificates
from netsim.storekit import hash_password
from peers import store as store_module
from peers.backup import backup_bytes, restore_bytes
from peers.core.backup import (
    ADMIN_ENTRY,
    ENC_MAGIC,
    MAX_ARCHIVE_BYTES,
    MEMBERS,
    PEER_ACCOUNTS,
    SETTING_PREFIX,
    BackupError,
    Configuration,
    decode,
    encode,
    file_name,
)
from peers.core.settings import Scope
from peers.store import ConfigStore

SERIAL = "1A2B3C4D"
OTHER_SERIAL = "99887766"
VERSION = "XC3.0"
WALL = datetime(2026, 11, 30, 13, 45, 2, 500000, tzinfo=UTC)
PASSWORD = "backup-secret-1"


def counter_bytes(seed: int = 0) -> Callable[[int], bytes]:
    """A deterministic random source for tests (the driver uses os.urandom)."""
    rng = random.Random(seed)
    return rng.randbytes


@cache
def configuration() -> Configuration:
    certs = make_certificates(
        host_name="conductor-a",
        ip="127.60.0.1",
        fqdn="conductor-a.example.com",
        serial=SERIAL,
        now=WALL,
        rng=random.Random(3),
    )
    admin_hash = hash_password("Conductor-admin-1", b"a" * 16)
    root_hash = hash_password("TANDBERG", b"r" * 16)
    return Configuration(
        settings={"dns.domain": "example.com", "dns.host_name": "x032", "ethernet.mtu": 1400},
        shared={
            SETTING_PREFIX + "administration.system_name": "X032",
            ADMIN_ENTRY: {"hash": admin_hash, "default": False},
            "conference_alias:meet": {"name": "meet", "incoming_alias": "meet@.*"},
        },
        users={
            "root": {"hash": root_hash, "default": True, "changed": "2026-11-01T00:00:00+00:00"}
        },
        certificates={
            "ca": {
                "cert_pem": certs.ca_cert_pem,
                "key_pem": certs.ca_key_pem,
                "created": "2026-11-01T00:00:00+00:00",
            },
            "server": {
                "cert_pem": certs.server_cert_pem,
                "key_pem": certs.server_key_pem,
                "created": "2026-11-01T00:00:00+00:00",
            },
        },
    )


@cache
def plain_file() -> bytes:
    return encode(configuration(), software_version=VERSION, serial=SERIAL, wall=WALL)


@cache
def encrypted_file() -> bytes:
    return encode(
        configuration(),
        software_version=VERSION,
        serial=SERIAL,
        wall=WALL,
        password=PASSWORD,
        random_bytes=counter_bytes(),
    )


# ------------------------------------------- the documented layout, rebuilt here
def frame(tar: bytes, *, version: int = 1) -> bytes:
    """A plain backup file around `tar`, built from the layout the module documents:
    gzip header with FEXTRA subfield TP = version + SHA-256 of the rest."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(tar) + compressor.flush()
    body += struct.pack("<II", zlib.crc32(tar), len(tar) & 0xFFFFFFFF)
    extra = b"TP" + struct.pack("<H", 33) + bytes([version]) + hashlib.sha256(body).digest()
    header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + struct.pack("<H", len(extra)) + extra
    return header + body


def members_of(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        out = {}
        for info in archive:
            stream = archive.extractfile(info)
            assert stream is not None
            out[info.name] = stream.read()
        return out


def tar_of(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def regular(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o600
    return info


def crafted(
    changes: Mapping[str, Any] | None = None,
    *,
    manifest: Mapping[str, Any] | None = None,
    keep_checksums: bool = False,
) -> bytes:
    """The plain backup with members replaced (JSON values) and the manifest's fields
    overridden; checksums recomputed unless `keep_checksums`."""
    members = members_of(plain_file())
    for name, value in (changes or {}).items():
        members[name] = json.dumps(value).encode()
    listed = json.loads(members["manifest.json"])
    if not keep_checksums:
        for name in MEMBERS[1:]:
            listed["members"][name] = {
                "sha256": hashlib.sha256(members[name]).hexdigest(),
                "bytes": len(members[name]),
            }
    listed.update(manifest or {})
    members["manifest.json"] = json.dumps(listed).encode()
    return frame(tar_of([(regular(name), members[name]) for name in MEMBERS]))


def refused(data: bytes, words: str, **kwargs: Any) -> None:
    kwargs.setdefault("serial", SERIAL)
    with pytest.raises(BackupError) as caught:
        decode(data, **kwargs)
    assert words in str(caught.value), str(caught.value)


# -------------------------------------------------------------- round trips
def test_plain_round_trip_g_p4() -> None:
    """G-P4: what is backed up comes back; the file is an ordinary .tar.gz."""
    backup = decode(plain_file(), serial=SERIAL)
    assert backup.configuration == configuration()
    assert not backup.encrypted
    assert backup.plain == plain_file()
    manifest = backup.manifest
    assert (manifest.format_version, manifest.software_version, manifest.serial) == (
        1,
        VERSION,
        SERIAL,
    )
    assert manifest.created == WALL.replace(microsecond=0)
    with tarfile.open(fileobj=io.BytesIO(plain_file()), mode="r:gz") as archive:
        infos = archive.getmembers()
    assert [i.name for i in infos] == list(MEMBERS)
    assert all(i.isreg() and i.mode == 0o600 for i in infos)
    assert all(i.mtime == int(WALL.timestamp()) for i in infos)
    listed = json.loads(members_of(plain_file())["manifest.json"])
    assert set(listed["members"]) == set(MEMBERS[1:])
    assert "log" in listed["not_included"]


def test_the_file_is_deterministic_and_follows_the_documented_layout_g_p4() -> None:
    again = encode(configuration(), software_version=VERSION, serial=SERIAL, wall=WALL)
    assert again == plain_file()
    with tarfile.open(fileobj=io.BytesIO(plain_file()), mode="r:gz") as archive:
        assert archive.fileobj is not None
    tar = zlib.decompress(plain_file()[49:-8], -zlib.MAX_WBITS)
    assert frame(tar) == plain_file()


def test_encrypted_round_trip_g_p4() -> None:
    """G-P4: with an encryption password the file is .tar.gz.enc and needs it back."""
    data = encrypted_file()
    assert data.startswith(ENC_MAGIC)
    assert b"BEGIN" not in data  # nothing readable
    backup = decode(data, serial=SERIAL, password=PASSWORD)
    assert backup.encrypted
    assert backup.configuration == configuration()
    assert backup.plain == plain_file()  # the same plain file inside
    magic, version, kdf, log2_n, r, p = struct.unpack(">8sBBBBB", data[:13])
    assert (magic, version, kdf, log2_n, r, p) == (ENC_MAGIC, 1, 1, 15, 8, 1)


def test_salt_and_nonce_come_from_the_random_source_g_p4() -> None:
    one = encode(
        configuration(),
        software_version=VERSION,
        serial=SERIAL,
        wall=WALL,
        password=PASSWORD,
        random_bytes=counter_bytes(1),
    )
    assert one[13:41] != encrypted_file()[13:41]
    assert decode(one, serial=SERIAL, password=PASSWORD).plain == plain_file()


def test_a_password_given_for_a_plain_file_is_not_needed_g_p4() -> None:
    assert decode(plain_file(), serial=SERIAL, password="anything").configuration


def test_empty_password_means_a_plain_file_g_p4() -> None:
    data = encode(configuration(), software_version=VERSION, serial=SERIAL, wall=WALL, password="")
    assert data == plain_file()


def test_unicode_password_g_p4() -> None:
    data = encode(
        configuration(),
        software_version=VERSION,
        serial=SERIAL,
        wall=WALL,
        password="pässwörd-✓",
        random_bytes=counter_bytes(),
    )
    assert decode(data, serial=SERIAL, password="pässwörd-✓").configuration == configuration()


# ---------------------------------------------------------------- file name
def test_file_name_format_g_p4() -> None:
    """<software version>_<hardware serial>_<date>_<time>_backup.tar.gz[.enc], UTC."""
    assert (
        file_name(VERSION, SERIAL, WALL, encrypted=False)
        == "XC3.0_1A2B3C4D_2026-11-30_13-45-02_backup.tar.gz"
    )
    assert (
        file_name(VERSION, SERIAL, WALL, encrypted=True)
        == "XC3.0_1A2B3C4D_2026-11-30_13-45-02_backup.tar.gz.enc"
    )
    paris = WALL.astimezone(timezone(timedelta(hours=1)))
    assert file_name(VERSION, SERIAL, paris, encrypted=False).startswith(
        "XC3.0_1A2B3C4D_2026-11-30_13-45-02"
    )
    odd = file_name('XC 4.0 "beta"/x', SERIAL, WALL, encrypted=False)
    assert re.fullmatch(r"[A-Za-z0-9.+-]+_1A2B3C4D_2026-11-30_13-45-02_backup\.tar\.gz", odd)


# ---------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"\x00" * 100, b"PK\x03\x04zip file"],
    ids=["empty", "text", "zeros", "zip"],
)
def test_not_a_backup_g_p4(data: bytes) -> None:
    refused(data, "not a tplab backup file")


def test_an_ordinary_tar_gz_is_not_a_tplab_backup_g_p4() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.addfile(regular("manifest.json"), io.BytesIO(b""))
    refused(buffer.getvalue(), "not a tplab backup file (a gzip file, but not one tplab wrote)")


def test_unknown_format_version_g_p4() -> None:
    data = bytearray(plain_file())
    data[16] = 2  # the version byte of the TP subfield
    refused(bytes(data), "unknown backup format version 2")
    encrypted = bytearray(encrypted_file())
    encrypted[8] = 9
    refused(bytes(encrypted), "unknown backup format version 9", password=PASSWORD)
    refused(crafted(manifest={"format_version": 3}), "unknown backup format version 3")
    refused(crafted(manifest={"format": "something-else"}), "not a tplab backup file")


def test_encrypted_without_a_password_g_p4() -> None:
    refused(encrypted_file(), "this backup file is encrypted")
    refused(encrypted_file(), "this backup file is encrypted", password="")


def test_wrong_password_g_p4() -> None:
    refused(encrypted_file(), "wrong encryption password, or the file was changed", password="x")


@pytest.mark.parametrize(
    ("position", "what"),
    [(13, "salt"), (29, "nonce"), (60, "ciphertext"), (-1, "tag")],
)
def test_tampered_encrypted_file_g_p4(position: int, what: str) -> None:
    data = bytearray(encrypted_file())
    data[position] ^= 0x01
    refused(bytes(data), "wrong encryption password, or the file was changed", password=PASSWORD)


@pytest.mark.parametrize(("log2_n", "r", "p"), [(10, 8, 1), (20, 8, 1), (15, 64, 1), (15, 8, 9)])
def test_weak_or_costly_key_derivation_is_refused_before_deriving_g_p4(
    log2_n: int, r: int, p: int
) -> None:
    data = bytearray(encrypted_file())
    data[10:13] = bytes([log2_n, r, p])
    refused(bytes(data), "unknown key derivation", password=PASSWORD)


def test_truncated_g_p4() -> None:
    refused(plain_file()[:30], "truncated (its gzip header is incomplete)")
    refused(plain_file()[:-1], "truncated or corrupt")
    refused(plain_file()[:200], "truncated or corrupt")
    refused(encrypted_file()[:20], "truncated", password=PASSWORD)
    refused(encrypted_file()[:45], "truncated", password=PASSWORD)
    refused(
        encrypted_file()[:-5],
        "wrong encryption password, or the file was changed",
        password=PASSWORD,
    )


def test_corrupt_gzip_with_a_matching_checksum_g_p4() -> None:
    """The SHA-256 is right but the deflate stream is not (a crafted file)."""
    good = frame(b"x" * 10)
    body = b"\xff" * 40
    digest = hashlib.sha256(body).digest()
    refused(good[:17] + digest + body, "the file is corrupt (gzip")
    stream = good[49:-8]
    body = stream[:-2]  # a deflate stream that ends early
    refused(good[:17] + hashlib.sha256(body).digest() + body, "truncated")
    body = good[49:] + b"extra"
    refused(good[:17] + hashlib.sha256(body).digest() + body, "truncated or corrupt")
    body = good[49:-8] + struct.pack("<II", 1, 10)  # wrong CRC
    refused(good[:17] + hashlib.sha256(body).digest() + body, "CRC")


def test_corrupt_tar_g_p4() -> None:
    refused(frame(b"not a tar archive" * 40), "the archive is corrupt")
    refused(frame(b""), "the archive")


def test_gzip_bomb_is_refused_unpacked_size_bounded_g_p4() -> None:
    bomb = frame(b"\x00" * (33 * 1024 * 1024))
    assert len(bomb) < MAX_ARCHIVE_BYTES
    refused(bomb, "the archive is too large")


def test_file_too_large_g_p4() -> None:
    refused(plain_file() + b"\x00" * MAX_ARCHIVE_BYTES, "too large")


def test_member_checksum_mismatch_g_p4() -> None:
    changed = crafted({"settings.json": {"dns.domain": "evil.example"}}, keep_checksums=True)
    refused(changed, "the checksum of settings.json does not match the manifest")
    listed = json.loads(members_of(plain_file())["manifest.json"])["members"]
    del listed["users.json"]
    refused(crafted(manifest={"members": listed}), "does not list the archive's members")


def test_another_peers_backup_is_refused_g_p4() -> None:
    """G-P4: a system backup can only be restored to the peer from which it was taken."""
    refused(
        plain_file(),
        f"this backup was made on peer {SERIAL}; a system backup can only be restored to "
        "the peer from which it was taken",
        serial=OTHER_SERIAL,
    )
    refused(encrypted_file(), f"made on peer {SERIAL}", serial=OTHER_SERIAL, password=PASSWORD)


def link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_unsafe_members_are_refused_g_p4() -> None:
    """Only regular files with the expected names; nothing is ever extracted to disk."""
    members = members_of(plain_file())
    good = [(regular(name), members[name]) for name in MEMBERS]
    cases: list[tuple[list[tuple[tarfile.TarInfo, bytes]], str]] = [
        ([(link("settings.json", "/etc/passwd", tarfile.SYMTYPE), b""), *good], "is a link"),
        ([(link("settings.json", "manifest.json", tarfile.LNKTYPE), b""), *good], "is a link"),
        ([(regular("/etc/cron.d/x"), b"x"), *good], "unsafe"),
        ([(regular("../../x"), b"x"), *good], "unsafe"),
        ([(regular("extra.json"), b"{}"), *good], "unexpected member 'extra.json'"),
        ([*good, (regular("users.json"), b"{}")], "twice"),
        (good[:-1], "lacks certificates.json"),
    ]
    directory = tarfile.TarInfo("settings.d")
    directory.type = tarfile.DIRTYPE
    cases.append(([(directory, b""), *good], "not a regular file"))
    for members_list, words in cases:
        refused(frame(tar_of(members_list)), words)


def test_a_member_too_large_is_refused_g_p4() -> None:
    members = members_of(plain_file())
    big = [(regular(name), members[name]) for name in MEMBERS[:-1]]
    big.append((regular("certificates.json"), b" " * (17 * 1024 * 1024)))
    refused(frame(tar_of(big)), "is too large")


@pytest.mark.parametrize(
    ("member", "value", "words"),
    [
        ("settings.json", {"no.such": 1}, "unknown peer setting 'no.such'"),
        ("settings.json", {"administration.system_name": "x"}, "unknown peer setting"),
        ("settings.json", {"ethernet.mtu": 99999}, "ethernet.mtu"),
        ("settings.json", [], "not a JSON object"),
        ("shared.json", {"conference:x": {}}, "runtime state"),
        ("shared.json", {"setting:dns.domain": "x"}, "unknown shared setting"),
        ("users.json", {}, "accounts"),
        ("users.json", {"root": {"hash": "plain", "default": False, "changed": ""}}, "root"),
        ("certificates.json", {}, "trusted CA and server certificates"),
    ],
)
def test_invalid_contents_are_refused_g_p4(member: str, value: Any, words: str) -> None:
    refused(crafted({member: value}), words)


def test_missing_admin_account_and_mismatched_key_are_refused_g_p4() -> None:
    shared = dict(configuration().shared)
    del shared[ADMIN_ENTRY]
    refused(crafted({"shared.json": shared}), "no admin account")
    certificates = {k: dict(v) for k, v in configuration().certificates.items()}
    certificates["server"]["key_pem"] = certificates["ca"]["key_pem"]
    refused(crafted({"certificates.json": certificates}), "does not match its certificate")
    certificates["server"]["cert_pem"] = "-----BEGIN CERTIFICATE-----\nxx\n"
    refused(crafted({"certificates.json": certificates}), "cannot be read")
    refused(frame(tar_of([(regular(n), b"\xff") for n in MEMBERS])), "not valid JSON")


def test_encode_refuses_what_decode_would_g_p4() -> None:
    """A backup that was made can be restored: the same checks on the way out."""
    with pytest.raises(BackupError, match="at most 1024 characters"):
        encode(
            configuration(),
            software_version=VERSION,
            serial=SERIAL,
            wall=WALL,
            password="p" * 1025,
            random_bytes=counter_bytes(),
        )
    with pytest.raises(BackupError, match="no admin account"):
        encode(
            Configuration({}, {}, configuration().users, configuration().certificates),
            software_version=VERSION,
            serial=SERIAL,
            wall=WALL,
        )
    huge = Configuration(
        configuration().settings,
        {**configuration().shared, "blob": random.Random(1).randbytes(1_200_000).hex()},
        configuration().users,
        configuration().certificates,
    )
    with pytest.raises(BackupError, match="too large for a backup file"):
        encode(huge, software_version=VERSION, serial=SERIAL, wall=WALL)


def test_the_core_agrees_with_the_store_g_p4() -> None:
    assert SETTING_PREFIX == store_module.SETTING_PREFIX
    assert ADMIN_ENTRY == store_module.ADMIN_ENTRY
    assert set(PEER_ACCOUNTS) == {n for n, s in store_module.USERS.items() if s is Scope.PEER}


# ------------------------------------------------------- hypothesis mutations
def mutations(original: bytes) -> st.SearchStrategy[bytes]:
    """Flip bits of a byte, delete a run, insert bytes, truncate, append."""
    n = len(original)
    position = st.integers(min_value=0, max_value=n - 1)
    flip = st.tuples(position, st.integers(min_value=1, max_value=255)).map(
        lambda pm: original[: pm[0]] + bytes([original[pm[0]] ^ pm[1]]) + original[pm[0] + 1 :]
    )
    delete = st.tuples(position, st.integers(min_value=1, max_value=64)).map(
        lambda pl: original[: pl[0]] + original[pl[0] + pl[1] :]
    )
    insert = st.tuples(
        st.integers(min_value=0, max_value=n), st.binary(min_size=1, max_size=64)
    ).map(lambda pb: original[: pb[0]] + pb[1] + original[pb[0] :])
    truncate = st.integers(min_value=0, max_value=n - 1).map(lambda k: original[:k])
    return st.one_of(flip, delete, insert, truncate)


def decodes_or_refuses(data: bytes, password: str | None) -> None:
    assert data != plain_file()
    assert data != encrypted_file()
    with pytest.raises(BackupError):
        decode(data, serial=SERIAL, password=password)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.deferred(lambda: mutations(plain_file())))
def test_hypothesis_every_mutation_of_a_plain_file_is_refused_g_p4(data: bytes) -> None:
    """Any change to a plain backup, however small, is refused with BackupError."""
    decodes_or_refuses(data, None)


@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # each candidate costs one scrypt derivation (~0.1-0.3 s)
    max_examples=max(10, settings.default.max_examples // 4),
)
@given(data=st.deferred(lambda: mutations(encrypted_file())))
def test_hypothesis_every_mutation_of_an_encrypted_file_is_refused_g_p4(data: bytes) -> None:
    """Any change to an encrypted backup is refused with BackupError, never another error."""
    decodes_or_refuses(data, PASSWORD)


@cache
def plain_tar() -> bytes:
    return zlib.decompress(plain_file()[49:-8], -zlib.MAX_WBITS)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tar=st.deferred(lambda: mutations(plain_tar())))
def test_hypothesis_a_changed_tar_in_a_valid_frame_is_read_or_refused_g_p4(tar: bytes) -> None:
    """A crafted file (checksums made to match): tar, JSON and content checks answer a
    backup or BackupError, never another error (a change in tar padding is harmless)."""
    try:
        backup = decode(frame(tar), serial=SERIAL)
    except BackupError:
        return
    assert backup.configuration == configuration()


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=200))
def test_hypothesis_any_bytes_decode_or_raise_backup_error_g_p4(data: bytes) -> None:
    with pytest.raises(BackupError):
        decode(ENC_MAGIC[: len(data) % 9] + data, serial=SERIAL, password=PASSWORD)


# ------------------------------------------------------- the store (driver)
def open_store(path: Path) -> ConfigStore:
    store = ConfigStore(f"sqlite:///{path / 'store.sqlite'}", rng=random.Random(1))
    certs = make_certificates(
        host_name="a",
        ip="127.60.0.1",
        fqdn="a",
        serial=store.serial,
        now=WALL,
        rng=random.Random(2),
    )
    store.set_certificates(
        {
            "ca": (certs.ca_cert_pem, certs.ca_key_pem),
            "server": (certs.server_cert_pem, certs.server_key_pem),
        }
    )
    return store


def aliases(store: ConfigStore) -> dict[str, Any]:
    return {
        e.key: e.value
        for e in store.shared_entries()
        if e.key.startswith("conference_alias:") and not e.deleted
    }


def test_store_export_and_restore_g_p4(tmp_path: Path) -> None:
    """The restore replaces the configuration exactly: peer-specific settings, shared
    entries as new versions (and tombstones for those the backup lacks), the root
    account and certificates; pending settings are dropped; conference records, the
    event log and the configuration log stay."""
    store = open_store(tmp_path)
    store.save({"dns.domain": "example.com", "administration.system_name": "Before"}, user="a")
    store.write_shared({"conference_alias:keep": {"name": "keep"}}, user="a")
    store.put_shared("conference:running", {"bridge": "ts1"})
    name, data = backup_bytes(store, software_version=VERSION, wall=WALL)
    assert name.startswith(f"XC3.0_{store.serial}_2026-11-30_13-45-02")
    settings_before = store.settings()
    certificates_before = store.certificates()
    exported = store.export_configuration()
    assert "conference:running" not in exported.shared
    versions_before = {e.key: e.version for e in store.shared_entries()}

    store.save({"dns.domain": "after.example", "administration.system_name": "After"}, user="a")
    store.save({"clustering.peer1": "127.60.0.1"}, user="a")  # pending (G-P7)
    store.set_password("root", "Root-password-2", user="a")
    store.set_password("admin", "Admin-password-2", user="a")
    store.write_shared({"conference_alias:new": {"name": "new"}}, user="a")
    store.put_shared("conference:running", {"bridge": "ts2"})
    store.set_certificates({"server": ("x", "y")})
    events_before = store.events(1000)

    backup = restore_bytes(store, data)
    assert store.settings() == settings_before
    assert store.pending() == {}
    assert store.certificates() == certificates_before
    assert store.verify_password("admin", "TANDBERG")
    assert store.verify_password("root", "TANDBERG")
    assert store.default_passwords() == ["admin", "root"]
    assert aliases(store) == {"conference_alias:keep": {"name": "keep"}}
    entries = {e.key: e for e in store.shared_entries()}
    assert entries["conference_alias:new"].deleted  # a tombstone: the delete replicates
    assert entries["conference:running"].value == {"bridge": "ts2"}  # runtime state stays
    for key, version in versions_before.items():
        if not key.startswith("conference:"):
            assert entries[key].version > version, key  # newer than anything before
    assert store.export_configuration() == exported
    assert store.events(1000) == events_before  # logs are not part of a backup
    assert store.config_log(1)[0]["setting"] == "backup.restore"
    assert backup.manifest.serial == store.serial


def test_store_restore_refused_changes_nothing_g_p4(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    _, data = backup_bytes(store, software_version=VERSION, wall=WALL)
    store.save({"dns.domain": "after.example"}, user="a")
    before = (store.settings(), store.shared_entries(), store.certificates())
    with pytest.raises(BackupError):
        restore_bytes(store, data[:-3])
    other = ConfigStore(f"sqlite:///{tmp_path / 'other.sqlite'}", rng=random.Random(9))
    with pytest.raises(BackupError, match="made on peer"):
        restore_bytes(other, data)
    assert (store.settings(), store.shared_entries(), store.certificates()) == before


def test_a_thousand_aliases_fit_and_round_trip_g_p4(tmp_path: Path) -> None:
    """What the bench measures: 1,000 conference aliases backed up and restored."""
    store = open_store(tmp_path)
    store.write_shared(
        {
            f"conference_alias:a{i}": {"name": f"a{i}", "incoming_alias": f"meet{i}@.*"}
            for i in range(1000)
        },
        user="a",
    )
    _, data = backup_bytes(store, software_version=VERSION, password=PASSWORD)
    assert len(data) < MAX_ARCHIVE_BYTES // 10
    restore_bytes(store, data, password=PASSWORD)
    assert len(aliases(store)) == 1000
