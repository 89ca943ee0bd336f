"""Software images (G-R1, G-P6): the builder's images verify, and every other file is
refused with `ImageError` and a clear message, never another exception."""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from emulator.cli import cli
from emulator.image import build_image, sign, signing_key, write_image
from peers.core.image import (
    FORMAT_VERSION,
    HEADER,
    MAGIC,
    MAX_IMAGE_BYTES,
    MAX_PAYLOAD_BYTES,
    SIGNATURE_BYTES,
    ImageError,
    check_version,
    encode_unsigned,
    make_manifest,
    verify_image,
    version_key,
)
from peers.software import image_file_name, install, load_installed, trusted_key

BUILT = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)
KEY = trusted_key()
IMAGE = build_image("XC3.1", built=BUILT, notes="XC3.1 release notes")


def refused(data: bytes) -> str:
    with pytest.raises(ImageError) as info:
        verify_image(data, KEY)
    return str(info.value)


# ------------------------------------------------------------- round trip
def test_built_image_verifies_with_its_manifest_and_payload() -> None:
    """G-P6: what `tplab image build` writes is what a peer accepts."""
    image = verify_image(IMAGE, KEY)
    assert (image.product, image.version, image.built) == ("TelePresence Conductor", "XC3.1", BUILT)
    assert image.notes == "XC3.1 release notes"
    assert image.payload_sha256 == hashlib.sha256(b"XC3.1 release notes").hexdigest()
    assert image.format_version == FORMAT_VERSION


def test_default_notes_and_write_image(tmp_path: Path) -> None:
    path = write_image("XC3.1.2", tmp_path / "out", built=BUILT)
    assert path == tmp_path / "out" / "tplab-conductor-XC3.1.2.img"
    image = verify_image(path.read_bytes(), KEY)
    assert image.version == "XC3.1.2"
    assert "XC3.1.2" in image.notes


def test_the_builders_key_is_the_one_the_peers_trust() -> None:
    assert signing_key().public_key().public_bytes_raw() == KEY.public_bytes_raw()


def test_builds_are_reproducible_for_the_same_inputs() -> None:
    """Ed25519 signatures are deterministic: same version, notes and time, same bytes."""
    assert build_image("XC3.1", built=BUILT, notes="XC3.1 release notes") == IMAGE


# ----------------------------------------------------------------- versions
@pytest.mark.parametrize("version", ["XC3.0", "XC3.1", "XC3.1.2", "XC10.0", "XC0.0.0"])
def test_well_formed_versions(version: str) -> None:
    assert check_version(version) == version


@pytest.mark.parametrize(
    "version",
    ["", "XC3", "3.1", "xc3.1", "XC3.1.2.3", "XC03.1", "XC3.1-beta", "X8.1", "XC3.1 ", "XC3..1"],
)
def test_malformed_versions_refused_by_the_builder(version: str) -> None:
    with pytest.raises(ImageError, match="malformed software version"):
        build_image(version, built=BUILT)


def test_versions_order_numerically() -> None:
    ordered = ["XC0.9", "XC3.0", "XC3.0.1", "XC3.1", "XC3.10", "XC10.0"]
    assert sorted(ordered, key=version_key) == ordered
    assert version_key("XC3.0") == version_key("XC3.0.0")


def test_notes_over_the_payload_limit_refused() -> None:
    with pytest.raises(ImageError, match="at most"):
        build_image("XC3.1", built=BUILT, notes="x" * (MAX_PAYLOAD_BYTES + 1))
    largest = build_image("XC3.1", built=BUILT, notes="x" * MAX_PAYLOAD_BYTES)
    assert len(largest) <= MAX_IMAGE_BYTES
    assert verify_image(largest, KEY).version == "XC3.1"


# ----------------------------------------------------------------- refusals
def manifest(**changes: object) -> dict[str, object]:
    base: dict[str, object] = dict(make_manifest("XC3.1", b"notes", BUILT))
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"TPLAB", "truncated"),
        (b"PK\x03\x04 a zip file, not an image at all", "not a TelePresence Conductor software"),
        (b"hello", "not a TelePresence Conductor software image"),
        (IMAGE[:-1], "truncated"),
        (IMAGE[: HEADER.size + 3], "truncated"),
        (IMAGE + b"\0", "1 bytes follow its signature"),
    ],
)
def test_not_an_image_or_truncated(data: bytes, message: str) -> None:
    assert message in refused(data)


def test_unknown_format_version() -> None:
    data = IMAGE[:8] + struct.pack(">H", 2) + IMAGE[10:]
    assert refused(data) == "unknown image format version 2; this peer reads version 1"


def test_lengths_out_of_range_are_corrupt() -> None:
    magic, version, _, payload_len = HEADER.unpack_from(IMAGE)
    no_manifest = HEADER.pack(magic, version, 0, payload_len) + IMAGE[HEADER.size :]
    assert "manifest length 0" in refused(no_manifest)
    huge = HEADER.pack(magic, version, 10, MAX_PAYLOAD_BYTES + 1) + IMAGE[HEADER.size :]
    assert "payload length" in refused(huge)


def test_corrupt_payload_fails_its_checksum() -> None:
    data = bytearray(IMAGE)
    data[-SIGNATURE_BYTES - 1] ^= 0x20
    assert refused(bytes(data)) == ("the image is corrupt: its payload does not match its checksum")


def test_signed_image_with_a_wrong_checksum_refused() -> None:
    data = sign(manifest(payload_sha256="0" * 64), b"notes")
    assert "does not match its checksum" in refused(data)


def test_signed_by_another_key_refused() -> None:
    """A real Conductor refuses an image Cisco did not sign; tplab's peers one not signed
    with tplab's release key."""
    foreign = build_image("XC3.1", built=BUILT, key=Ed25519PrivateKey.generate())
    assert refused(foreign) == (
        "the image is not signed with the TelePresence Conductor release key"
    )


def test_bad_signature_bytes_refused() -> None:
    data = IMAGE[:-SIGNATURE_BYTES] + bytes(SIGNATURE_BYTES)
    assert "not signed with the TelePresence Conductor release key" in refused(data)


def test_another_product_refused() -> None:
    data = sign(manifest(product="TelePresence Video Communication Server"), b"notes")
    assert refused(data) == (
        "the image is for 'TelePresence Video Communication Server', not for "
        "TelePresence Conductor; choose a TelePresence Conductor software image"
    )


def test_malformed_version_in_a_signed_image_refused() -> None:
    data = sign(manifest(version="XC3"), b"notes")
    assert "malformed software version 'XC3'" in refused(data)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": None}, "lacks version"),
        ({"extra": "x"}, "unknown manifest field(s) 'extra'"),
        ({"version": 3.1}, "version not text"),
        ({"payload_sha256": "ABC"}, "payload_sha256 is not a SHA-256"),
        ({"built": "yesterday"}, "build time"),
        ({"built": "2026-01-05T10:00:00"}, "build time"),
        ({"built": "2026-01-05T10:00:00+01:00"}, "build time"),
    ],
)
def test_malformed_manifests_refused(changes: dict[str, object], message: str) -> None:
    assert message in refused(sign(manifest(**changes), b"notes"))


@pytest.mark.parametrize(
    "raw",
    [b"[1, 2]", b"not json", b"\xff\xfe", b'{"a": 1, "a": 2}', b'{"a": NaN}', b"[" * 3000],
)
def test_manifest_that_is_not_a_json_object_refused(raw: bytes) -> None:
    header = HEADER.pack(MAGIC, FORMAT_VERSION, len(raw), 0)
    unsigned = header + raw
    data = unsigned + signing_key().sign(unsigned)
    assert refused(data) == "the image is corrupt: its manifest is not a JSON object"


def test_encode_unsigned_writes_the_manifest_as_given() -> None:
    unsigned = encode_unsigned({"b": "1", "a": "2"}, b"xy")
    magic, version, manifest_len, payload_len = HEADER.unpack_from(unsigned)
    assert (magic, version, payload_len) == (MAGIC, FORMAT_VERSION, 2)
    assert unsigned[HEADER.size : HEADER.size + manifest_len] == b'{"a":"2","b":"1"}'


# ---------------------------------------------------------------- hypothesis
@given(st.data())
def test_any_byte_mutation_is_refused(data: st.DataObject) -> None:
    """G-P6: change any byte of a valid image and it is refused with ImageError."""
    index = data.draw(st.integers(0, len(IMAGE) - 1), label="index")
    flip = data.draw(st.integers(1, 255), label="xor")
    mutated = bytearray(IMAGE)
    mutated[index] ^= flip
    with pytest.raises(ImageError):
        verify_image(bytes(mutated), KEY)


@given(
    st.integers(0, len(IMAGE)),
    st.integers(0, 40),
    st.binary(max_size=40),
)
def test_any_splice_is_refused(at: int, cut: int, insert: bytes) -> None:
    """Cut bytes out of a valid image and put others in: refused, unless it is the same."""
    spliced = IMAGE[:at] + insert + IMAGE[at + cut :]
    if spliced == IMAGE:
        return
    with pytest.raises(ImageError):
        verify_image(spliced, KEY)


@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_raise_image_error(data: bytes) -> None:
    with pytest.raises(ImageError):
        verify_image(data, KEY)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_behind_a_valid_header_raise_image_error(body: bytes) -> None:
    data = MAGIC + struct.pack(">H", FORMAT_VERSION) + body
    with pytest.raises(ImageError):
        verify_image(data, KEY)


# -------------------------------------------------------- installed software
def test_install_then_load_installed(tmp_path: Path) -> None:
    """G-P6: the data dir keeps the image and what runs from the next start."""
    assert load_installed(tmp_path) is None
    first = install(tmp_path, IMAGE, verify_image(IMAGE, KEY), wall=BUILT, previous="XC3.0")
    assert load_installed(tmp_path) == first
    assert (first.version, first.previous, first.file) == (
        "XC3.1",
        "XC3.0",
        image_file_name("XC3.1"),
    )
    newer = build_image("XC3.2", built=BUILT)
    second = install(tmp_path, newer, verify_image(newer, KEY), wall=BUILT, previous="XC3.1")
    assert load_installed(tmp_path) == second
    assert [p.name for p in (tmp_path / "software").iterdir()] == [second.file]


def test_damaged_installation_raises_image_error(tmp_path: Path) -> None:
    record = install(tmp_path, IMAGE, verify_image(IMAGE, KEY), wall=BUILT, previous="XC3.0")
    image_path = tmp_path / "software" / record.file
    image_path.write_bytes(IMAGE[:-1])
    with pytest.raises(ImageError, match="truncated"):
        load_installed(tmp_path)
    image_path.unlink()
    with pytest.raises(ImageError, match="cannot be read"):
        load_installed(tmp_path)
    (tmp_path / "software.json").write_text("{not json")
    with pytest.raises(ImageError, match="damaged"):
        load_installed(tmp_path)


# ---------------------------------------------------------------------- CLI
def test_cli_image_build_writes_a_verifiable_image(tmp_path: Path) -> None:
    """G-P6: `tplab image build --version XC3.1 --out DIR` prints the image's path."""
    out = tmp_path / "images"
    result = CliRunner().invoke(
        cli, ["image", "build", "--version", "XC3.1", "--out", str(out), "--notes", "hello"]
    )
    assert result.exit_code == 0, result.output
    path = out / "tplab-conductor-XC3.1.img"
    assert result.stdout.strip() == str(path)
    image = verify_image(path.read_bytes(), KEY)
    assert (image.version, image.notes) == ("XC3.1", "hello")

    shown = CliRunner().invoke(cli, ["image", "show", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "TelePresence Conductor XC3.1" in shown.stdout
    assert "signed with the release key" in shown.stdout


@pytest.mark.parametrize("version", ["XC3", "3.1", "XC3.1-rc1"])
def test_cli_image_build_bad_version_exits_2(tmp_path: Path, version: str) -> None:
    result = CliRunner().invoke(
        cli, ["image", "build", "--version", version, "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert f"Error: malformed software version {version!r}" in result.stderr
    assert "XC<major>.<minor>" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_image_build_needs_a_version() -> None:
    result = CliRunner().invoke(cli, ["image", "build"])
    assert result.exit_code == 2
    assert "--version" in result.stderr


def test_cli_image_show_refuses_a_foreign_image(tmp_path: Path) -> None:
    path = tmp_path / "foreign.img"
    path.write_bytes(build_image("XC3.1", built=BUILT, key=Ed25519PrivateKey.generate()))
    result = CliRunner().invoke(cli, ["image", "show", str(path)])
    assert result.exit_code == 2
    assert "not signed with the TelePresence Conductor release key" in result.stderr
