"""The guide's clustering procedures in the simulated world, through the JSON API:
G-P1 (create the initial peer), G-P2 (add peers), G-P7 (nothing before Restart),
G-S1 (shared configuration replicated), key mismatch (G-R12 / G-R15)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sim.cluster_lab import IPS, ClusterLab

INITIAL, SECOND, THIRD = IPS["conductor-initial"], IPS["conductor-2"], IPS["conductor-3"]


@pytest.fixture
def lab() -> Iterator[ClusterLab]:
    lab = ClusterLab()
    yield lab
    lab.close()


def create_initial(lab: ClusterLab) -> None:
    lab.put("conductor-initial", "clustering", {"key": "cluster-secret", "peer1": INITIAL})
    lab.restart("conductor-initial")


def add_peer(lab: ClusterLab, host: str, peers: list[str], key: str = "cluster-secret") -> None:
    """G-P2: existing peers list the new one and restart; the new one joins and restarts."""
    fields = {f"peer{i + 1}": ip for i, ip in enumerate(peers)}
    for existing, ip in IPS.items():
        if ip in peers and existing != host and ip != IPS[host]:
            lab.put(existing, "clustering", fields)
            lab.restart(existing)
    lab.put(host, "clustering", {"key": key, **fields})
    lab.restart(host)


def test_create_initial_peer_g_p1_and_nothing_before_restart_g_p7(lab: ClusterLab) -> None:
    lab.put("conductor-initial", "clustering", {"key": "cluster-secret", "peer1": INITIAL})
    assert lab.statuses("conductor-initial") == {}  # G-P7: saved, not in force
    lab.restart("conductor-initial")
    assert lab.statuses("conductor-initial") == {INITIAL: "This system"}


def test_add_second_and_third_peer_g_p2_g_s1(lab: ClusterLab) -> None:
    create_initial(lab)
    lab.put("conductor-initial", "administration", {"system_name": "Cluster A"})
    lab.put("conductor-2", "administration", {"system_name": "left over on 2"})
    add_peer(lab, "conductor-2", [INITIAL, SECOND])
    lab.wait(10)
    assert lab.statuses("conductor-initial") == {
        INITIAL: "This system",
        SECOND: "Active as conductor-2",
    }
    assert lab.statuses("conductor-2") == {
        INITIAL: "Active as conductor-initial",
        SECOND: "This system",
    }
    # G-P2: the joining peer's shared configuration is replaced by the cluster's
    _, admin = lab.api("conductor-2", "GET", "/api/v1/system/administration")
    assert admin["settings"]["system_name"] == "Cluster A"
    # G-S1: a write on any peer reaches the others; peer-specific settings stay put (G-S2)
    lab.put("conductor-2", "administration", {"system_name": "Cluster B"})
    lab.put("conductor-2", "dns", {"domain": "only-two.example"})
    lab.wait(2)
    _, admin = lab.api("conductor-initial", "GET", "/api/v1/system/administration")
    assert admin["settings"]["system_name"] == "Cluster B"
    _, dns = lab.api("conductor-initial", "GET", "/api/v1/system/dns")
    assert dns["settings"]["domain"] != "only-two.example"

    add_peer(lab, "conductor-3", [INITIAL, SECOND, THIRD])
    lab.wait(20)
    for host, ip in IPS.items():
        statuses = lab.statuses(host)
        assert statuses[ip] == "This system"
        others = {p: s for p, s in statuses.items() if p != ip}
        assert all(s.startswith("Active as ") for s in others.values()), (host, statuses)
    _, admin = lab.api("conductor-3", "GET", "/api/v1/system/administration")
    assert admin["settings"]["system_name"] == "Cluster B"


def test_key_mismatch_is_shown_on_both_sides_g_r15(lab: ClusterLab) -> None:
    create_initial(lab)
    add_peer(lab, "conductor-2", [INITIAL, SECOND], key="not-the-same")
    lab.wait(20)
    assert lab.statuses("conductor-2")[INITIAL] == "Failed: cluster pre-shared key mismatch"
    assert lab.statuses("conductor-initial")[SECOND] == "Failed: cluster pre-shared key mismatch"
    assert 20004 in lab.alarm_ids("conductor-initial")
    lab.put("conductor-2", "clustering", {"key": "cluster-secret"})
    lab.restart("conductor-2")
    lab.wait(30)
    assert lab.statuses("conductor-2")[INITIAL] == "Active as conductor-initial"
