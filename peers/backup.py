"""Maintenance > Backup and restore on a peer (G-P4): make a backup file, stage a restore.

The archive format and every check are in `peers.core.backup`; this driver
reads the store, writes the staged file and applies it.

A restore is staged, not applied: a file that passes every check is kept,
decrypted, as `restore-pending.tar.gz` in the peer's data dir (next to its
database, which holds the same secrets), and the peer raises alarm 20007
(*Restart required*). When the peer next starts, before it serves anything, it
checks the file again, replaces its configuration with the backup's (see
`ConfigStore.restore_configuration`) and deletes the file. A refused file
changes nothing: no file, no alarm, only a line in the event log. Uploading
another backup before the restart replaces the staged one; changes saved in the
meantime are overwritten at the restart.

Salt and nonce of encrypted files come from the operating system's random
source, never from the node's seeded `rng`: two labs with the same seed would
otherwise encrypt different backups under the same password, salt and nonce.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from peers.core.backup import Backup, BackupError, decode, encode, file_name
from peers.store import ConfigStore

if TYPE_CHECKING:
    from peers.node import PeerNode

PENDING_FILE = "restore-pending.tar.gz"
#: the 20007 alarm's subject and detail while a restore waits for a restart
ALARM_SUBJECT = "backup"
ALARM_DETAIL = "A restored system backup replaces this peer's configuration after a restart"


def backup_bytes(
    store: ConfigStore,
    *,
    software_version: str,
    wall: datetime | None = None,
    password: str | None = None,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> tuple[str, bytes]:
    """(file name, file bytes) of a system backup of `store`'s configuration."""
    wall = wall or datetime.now(UTC)
    data = encode(
        store.export_configuration(),
        software_version=software_version,
        serial=store.serial,
        wall=wall,
        password=password,
        random_bytes=random_bytes,
    )
    return file_name(software_version, store.serial, wall, encrypted=bool(password)), data


def restore_bytes(store: ConfigStore, data: bytes, *, password: str | None = None) -> Backup:
    """Check a backup file and replace `store`'s configuration with it at once (what a
    staged restore does at the next start). BackupError, with nothing changed, if the
    file is refused."""
    backup = decode(data, serial=store.serial, password=password)
    store.restore_configuration(backup.configuration, note=describe(backup))
    return backup


def describe(backup: Backup) -> str:
    manifest = backup.manifest
    return (
        f"system backup of {manifest.created.isoformat(timespec='seconds')} "
        f"(software version {manifest.software_version}, serial {manifest.serial})"
    )


# ------------------------------------------------------------------ the node
def create_backup(node: PeerNode, *, password: str | None, user: str) -> tuple[str, bytes]:
    """Maintenance > Backup and restore > Create system backup file."""
    name, data = backup_bytes(
        node.store,
        software_version=node.software_version,
        wall=node.runtime.clock.wall(),
        password=password,
    )
    node.store.log_event(
        "backup_created", user=user, file=name, encrypted=bool(password), bytes=len(data)
    )
    return name, data


def pending_path(node: PeerNode) -> Path:
    return node.runtime.data_dir / PENDING_FILE


def restore_pending(node: PeerNode) -> bool:
    """A checked backup waits for the next restart."""
    return pending_path(node).exists()


def staged(node: PeerNode) -> Backup | None:
    """The backup waiting for the next restart, or None."""
    try:
        data = pending_path(node).read_bytes()
    except FileNotFoundError:
        return None
    try:
        return decode(data, serial=node.store.serial)
    except BackupError:
        return None


def stage_restore(node: PeerNode, data: bytes, *, password: str | None, user: str) -> Backup:
    """Maintenance > Backup and restore > Restore: check the file, keep it for the next
    start. BackupError (logged) if it is refused; nothing changes then."""
    try:
        backup = decode(data, serial=node.store.serial, password=password)
    except BackupError as exc:
        node.store.log_event("backup_restore_refused", level="warning", user=user, reason=str(exc))
        raise
    path = pending_path(node)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(backup.plain)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    node.store.log_event(
        "backup_restore_staged",
        user=user,
        created=backup.manifest.created.isoformat(timespec="seconds"),
        software_version=backup.manifest.software_version,
        encrypted=backup.encrypted,
    )
    node.refresh_alarms()
    return backup


def apply_staged_restore(node: PeerNode) -> bool:
    """At start, before anything reads the configuration: apply a staged restore.
    A staged file that no longer passes the checks is dropped and logged."""
    path = pending_path(node)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    try:
        backup = restore_bytes(node.store, data)
    except BackupError as exc:
        node.store.log_event("backup_restore_failed", level="error", reason=str(exc))
        applied = False
    else:
        node.store.log_event(
            "backup_restored",
            created=backup.manifest.created.isoformat(timespec="seconds"),
            software_version=backup.manifest.software_version,
            settings=len(backup.configuration.settings),
            shared_entries=len(backup.configuration.shared),
        )
        applied = True
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return applied


def alarms(node: PeerNode) -> list[tuple[int, str, str]]:
    """20007 while a restore waits for a restart."""
    return [(20007, ALARM_SUBJECT, ALARM_DETAIL)] if restore_pending(node) else []
