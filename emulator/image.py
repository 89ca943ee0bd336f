"""Builds tplab software images of the TelePresence Conductor (`tplab image build`).

The format and its checks are `peers.core.image`'s; this module adds the signature,
made with tplab's stand-in for the vendor's release key
(`emulator/data/image-signing-key.pem`). That key is published with tplab on
purpose and protects nothing: it lets the peers tell a tplab image from a damaged
or foreign file, as a real Conductor refuses an image Cisco did not sign. The peers
trust its public half (`peers/data/image-signing.pub`).
"""

from __future__ import annotations

import functools
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from peers.core.image import encode_unsigned, make_manifest
from peers.software import image_file_name

KEY_RESOURCE = "data/image-signing-key.pem"


@functools.cache
def signing_key() -> Ed25519PrivateKey:
    key = load_pem_private_key(
        resources.files("emulator").joinpath(KEY_RESOURCE).read_bytes(), password=None
    )
    assert isinstance(key, Ed25519PrivateKey)
    return key


def default_notes(version: str) -> str:
    return (
        f"tplab TelePresence Conductor {version}\n\n"
        "Release notes: an emulated software image. Peers in a cluster must all run the "
        "same version; upgrade a cluster as the deployment guide describes.\n"
    )


def sign(
    manifest: dict[str, Any], payload: bytes, *, key: Ed25519PrivateKey | None = None
) -> bytes:
    """An image of `manifest` (written as given, not checked) and `payload`, signed."""
    unsigned = encode_unsigned(manifest, payload)
    return unsigned + (key or signing_key()).sign(unsigned)


def build_image(
    version: str,
    *,
    built: datetime,
    notes: str | None = None,
    key: Ed25519PrivateKey | None = None,
) -> bytes:
    """A signed image of `version` whose payload is the release notes; ImageError for a
    malformed version or notes over the payload limit."""
    payload = (default_notes(version) if notes is None else notes).encode()
    return sign(make_manifest(version, payload, built), payload, key=key)


def write_image(version: str, out_dir: Path, *, built: datetime, notes: str | None = None) -> Path:
    """Build the image of `version` into `out_dir` (made if missing); its path."""
    data = build_image(version, built=built, notes=notes)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / image_file_name(version)
    path.write_bytes(data)
    return path
