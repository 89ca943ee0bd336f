"""What pages show beside the settings: peer statuses, NTP state, restart notices.

Each function returns plain JSON-able data, so a page and its JSON twin show
the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from peers.backup import restore_pending
from peers.core.settings import SETTINGS
from peers.rules import PEER_KEYS, clustered

if TYPE_CHECKING:
    from peers.node import PeerNode

ESSENTIALS = "TelePresence Conductor Essentials: clustering is not supported"
RELEASE_KEY_INSTALLED = "Release key installed"
CAPACITY_TEXT = {"full": "Full capacity", "select": "TelePresence Conductor Select"}


def fqdn(settings: Mapping[str, Any]) -> str:
    """G-R11: <System host name>.<Domain name> is the FQDN of this peer."""
    return ".".join(p for p in (settings["dns.host_name"], settings["dns.domain"]) if p)


def peer_statuses(node: PeerNode) -> dict[str, dict[str, str]]:
    """Status beside each Peer N IP address of System > Clustering (active settings):
    green "This system" / "Active as NAME", red "Failed: <why>"."""
    active = node.store.settings()
    own = node.runtime.host.ip
    cluster = node.cluster
    statuses: dict[str, dict[str, str]] = {}
    for key in PEER_KEYS:
        address = active[key]
        if not address:
            continue
        if address == own:
            statuses[key] = {"text": "This system", "state": "ok"}
            continue
        status = cluster.status_of(address) if cluster is not None and cluster.enabled else None
        if status is not None:
            statuses[key] = {"text": status.text, "state": "ok" if status.ok else "failed"}
        elif not active["clustering.key"]:
            statuses[key] = {"text": "Failed: no cluster pre-shared key", "state": "failed"}
        elif own not in {active[k] for k in PEER_KEYS}:
            statuses[key] = {
                "text": f"Failed: this peer's address {own} is not in the peer list",
                "state": "failed",
            }
        else:
            statuses[key] = {"text": "Failed: clustering is not running", "state": "failed"}
    return statuses


def cluster_summary(node: PeerNode) -> dict[str, Any]:
    """Status > Overview: standalone or clustered, each peer with its status."""
    active = node.store.settings()
    statuses = peer_statuses(node)
    peers = [
        {
            "label": SETTINGS[key].label,
            "address": active[key],
            "status": statuses[key]["text"],
            "state": statuses[key]["state"],
        }
        for key in PEER_KEYS
        if active[key]
    ]
    is_clustered = clustered(active)
    pending = node.store.pending()
    return {
        "clustered": is_clustered,
        "text": f"Clustered: {len(peers)} peer(s)"
        if is_clustered
        else "Standalone (not clustered)",
        "peers": peers,
        "changes_pending": any(SETTINGS[k].page == "clustering" for k in pending),
    }


def option_status(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Maintenance > Option keys: Essentials without a release key (G-R10), capacity."""
    installed = bool(settings["options.release_key"])
    return {
        "release_key_installed": installed,
        "edition": RELEASE_KEY_INSTALLED if installed else ESSENTIALS,
        "clustering_supported": installed,
        "capacity": CAPACITY_TEXT[settings["options.capacity"]],
    }


def overview(node: PeerNode) -> dict[str, Any]:
    """Status > Overview and `GET /api/v1/status`."""
    settings = node.store.settings()
    pending = node.store.pending()
    return {
        "system_host_name": settings["dns.host_name"],
        "system_name": settings["administration.system_name"] or node.runtime.host.name,
        "fqdn": fqdn(settings),
        "lan1_address": settings["ip.lan1_address"],
        "software_version": node.software_version,
        "serial_number": node.store.serial,
        "time": node.runtime.clock.wall().isoformat(timespec="seconds"),
        "time_zone": settings["time.zone"],
        "started": node.started_wall.isoformat(timespec="seconds"),
        "alarm_count": len(node.store.alarms()),
        "restart_required": bool(pending) or restore_pending(node),
        "pending": sorted(SETTINGS[k].label for k in pending if k in SETTINGS),
        "cluster": cluster_summary(node),
        "option_keys": option_status(settings),
        "policy_service": node.policy.status(),
    }


def page_status(node: PeerNode, page: str) -> dict[str, Any]:
    if page == "clustering":
        return {"peer_status": peer_statuses(node)}
    if page == "time":
        return {"ntp_state": node.ntp_state(), "wall": node.runtime.clock.wall().isoformat()}
    if page == "dns":
        settings = node.store.settings()
        return {"fqdn": fqdn(settings), "dns_missing": not settings["dns.servers"]}
    if page == "options":
        return option_status(node.store.settings())
    if page == "policy":
        # what to type into the VCS's policy service (cisco-behaviour.md 1.2)
        policy_path, status_path = node.policy.paths()
        base = f"https://{node.runtime.host.ip}:{node.port}"
        return {"policy_url": base + policy_path, "status_url": base + status_path}
    return {}
