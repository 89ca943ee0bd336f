"""Rules that span several settings or depend on the peer's state.

They run before a save, on pages and in the JSON API alike, and raise
`SettingErrors` naming each offending field by its label, with nothing saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from peers.core.membership import config_problems
from peers.core.settings import SETTINGS, SettingError, SettingErrors, validate_changes

if TYPE_CHECKING:
    from peers.node import PeerNode

PEER_KEYS = ("clustering.peer1", "clustering.peer2", "clustering.peer3")


def clustered(settings: Mapping[str, Any]) -> bool:
    """Part of a cluster: a pre-shared key or any peer address is in force."""
    return bool(settings["clustering.key"]) or any(settings[k] for k in PEER_KEYS)


def check_changes(node: PeerNode, changes: Mapping[str, Any]) -> None:
    clean = validate_changes(changes)  # field errors first, every one of them
    active = node.store.settings()
    after = {**node.store.effective(), **clean}
    errors: list[SettingError] = []
    seen: dict[str, str] = {}
    for key in PEER_KEYS:
        address = after[key]
        if not address:
            continue
        if address in seen:  # G-R4: every peer has a unique address
            errors.append(
                SettingError(
                    key,
                    SETTINGS[key].label,
                    f"{address} is already {SETTINGS[seen[address]].label}; "
                    "every peer must have a unique IP address",
                )
            )
        seen.setdefault(address, key)
    for problem in config_problems(
        [after[k] for k in PEER_KEYS], after["options.capacity"], bool(after["options.release_key"])
    ):  # G-R10, G-R2
        fallback = "options.release_key" if "release key" in problem else "options.capacity"
        key = next((k for k in PEER_KEYS if clean.get(k)), fallback)
        errors.append(SettingError(key, SETTINGS[key].label, problem))
    new_lan = clean.get("ip.lan1_address")
    if new_lan is not None and new_lan != active["ip.lan1_address"] and clustered(active):
        # G-R13: never change the LAN 1 address of a clustered peer
        errors.append(
            SettingError(
                "ip.lan1_address",
                SETTINGS["ip.lan1_address"].label,
                "cannot be changed while this peer is part of a cluster; place it in "
                "standalone mode first (only additional IPv4 addresses may change)",
            )
        )
    if after["policy.policy_path"] == after["policy.status_path"]:
        key, other = "policy.status_path", "policy.policy_path"
        if key not in clean:
            key, other = other, key
        errors.append(
            SettingError(key, SETTINGS[key].label, f"must differ from the {SETTINGS[other].label}")
        )
    if errors:
        raise SettingErrors(errors)
