"""What pages show beside the settings: peer statuses, NTP state, restart notices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peers.rules import PEER_KEYS

if TYPE_CHECKING:
    from peers.node import PeerNode


def peer_statuses(node: PeerNode) -> dict[str, dict[str, str]]:
    """Status beside each Peer N IP address of System > Clustering (active settings).

    Standalone here: the peer's own address shows "This system"; other peers are
    reported by the clustering layer once it exists (a later issue)."""
    active = node.store.settings()
    own = active["ip.lan1_address"]
    statuses: dict[str, dict[str, str]] = {}
    for key in PEER_KEYS:
        address = active[key]
        if not address:
            continue
        if address == own:
            statuses[key] = {"text": "This system", "state": "ok"}
        else:
            statuses[key] = {"text": "Not active: clustering is not running", "state": "failed"}
    return statuses


def page_status(node: PeerNode, page: str) -> dict[str, Any]:
    if page == "clustering":
        return {"peer_status": peer_statuses(node)}
    if page == "time":
        return {"ntp_state": node.ntp_state(), "wall": node.runtime.clock.wall().isoformat()}
    if page == "dns":
        settings = node.store.settings()
        fqdn = ".".join(p for p in (settings["dns.host_name"], settings["dns.domain"]) if p)
        return {"fqdn": fqdn, "dns_missing": not settings["dns.servers"]}
    return {}
