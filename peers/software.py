"""The peer's installed software: the trusted release key, and the image in its data dir.

Maintenance > Upgrade (G-P6) verifies an uploaded image (`peers.core.image`),
installs it and restarts the peer, which then runs the image's version; peers on
different versions never cluster (G-R1).

The data dir holds `software.json` (the installed image's version, file name,
SHA-256, build and install times, the version it replaced) and
`software/<file name>`, the image itself. Only the current image is kept.
Installing writes the image, then `software.json`, each atomically (a temporary
file and `os.replace`), and only then removes older images: a crash at any point
leaves `software.json` naming an image that is there.

At every start the node reads `software.json` and verifies the image again; a
peer with no installed image runs the factory version (`peers.node.SOFTWARE_VERSION`).

Downgrades (an image older than the running version) and reinstalling the
running version are allowed, as the deployment guide does not forbid them; the
event log records a downgrade as such.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, fields
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from peers.core.image import Image, ImageError, public_key_from_pem, verify_image, version_key

if TYPE_CHECKING:
    from peers.node import PeerNode

RECORD = "software.json"
IMAGES = "software"
KEY_RESOURCE = "data/image-signing.pub"


@functools.cache
def trusted_key() -> Ed25519PublicKey:
    """The key images must be signed with (package data: `peers/data/image-signing.pub`)."""
    return public_key_from_pem(resources.files("peers").joinpath(KEY_RESOURCE).read_bytes())


def image_file_name(version: str) -> str:
    return f"tplab-conductor-{version}.img"


@dataclass(frozen=True, slots=True)
class Installed:
    """The image installed in a data dir: what the peer runs from its next start."""

    version: str
    file: str
    sha256: str
    built: str
    installed: str
    previous: str

    def to_dict(self) -> dict[str, str]:
        return {
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
            "built": self.built,
            "installed": self.installed,
            "previous": self.previous,
        }


def load_installed(data_dir: Path) -> Installed | None:
    """The installed image, verified again; None when the factory software runs.
    ImageError when `software.json` or its image is damaged."""
    record_path = data_dir / RECORD
    try:
        text = record_path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ImageError(f"{RECORD} cannot be read: {exc.strerror or exc}") from exc
    try:
        raw: Any = json.loads(text)
        record = Installed(**{f.name: str(raw[f.name]) for f in fields(Installed)})
    except (ValueError, TypeError, KeyError) as exc:
        raise ImageError(f"{RECORD} is damaged") from exc
    if Path(record.file).name != record.file:
        raise ImageError(f"{RECORD} names an image outside {IMAGES}/")
    try:
        data = (data_dir / IMAGES / record.file).read_bytes()
    except OSError as exc:
        raise ImageError(
            f"the installed image {record.file} cannot be read: {exc.strerror or exc}"
        ) from exc
    image = verify_image(data, trusted_key())
    if image.version != record.version:
        raise ImageError(f"the installed image holds {image.version}, not {record.version}")
    return record


def install(
    data_dir: Path, data: bytes, image: Image, *, wall: datetime, previous: str
) -> Installed:
    """Store a verified image as the one to run from the next start."""
    record = Installed(
        version=image.version,
        file=image_file_name(image.version),
        sha256=hashlib.sha256(data).hexdigest(),
        built=image.built.isoformat(timespec="seconds"),
        installed=wall.isoformat(timespec="seconds"),
        previous=previous,
    )
    images = data_dir / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    _write_atomically(images / record.file, data)
    _write_atomically(data_dir / RECORD, json.dumps(record.to_dict(), indent=1).encode())
    for old in images.iterdir():
        if old.name != record.file:
            old.unlink(missing_ok=True)
    return record


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def upgrade(node: PeerNode, data: bytes, *, user: str) -> Image:
    """Maintenance > Upgrade: verify the image, install it and restart the peer (exit 75
    as a process; in the simulated world the lab makes a new node), which then runs its
    version. A refused image changes nothing: ImageError, written to the event log."""
    try:
        image = verify_image(data, trusted_key())
    except ImageError as exc:
        node.store.log_event("upgrade_refused", level="warning", user=user, reason=str(exc))
        raise
    running = node.software_version
    install(node.runtime.data_dir, data, image, wall=node.runtime.clock.wall(), previous=running)
    node.store.log_event(
        "software_installed",
        user=user,
        version=image.version,
        previous=running,
        downgrade=version_key(image.version) < _key_or_zero(running),
    )
    node.request_restart(user=user)
    return image


def _key_or_zero(version: str) -> tuple[int, int, int]:
    """A running version given on the command line need not be well formed."""
    try:
        return version_key(version)
    except ImageError:
        return (0, 0, 0)
