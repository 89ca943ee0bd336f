"""The guide's cluster rules broken and then fixed, in the simulated world (ClusterLab).

One test per rule: netsim impairments or settings break the rule, every peer shows
why (status beside the peer address on System > Clustering, alarm on Status >
Alarms), the guide's fix makes the peers Active again and the alarms clear.
G-R1, G-R2, G-R3, G-R4, G-R5, G-R6, G-R10, G-R12, G-R13, G-R14; G-P5 (removing a
live peer and a dead peer). Virtual time is free: the tests wait generously.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from peers.node import SOFTWARE_VERSION
from tests.sim.cluster_lab import IPS, ClusterLab

INITIAL, SECOND, THIRD = IPS["conductor-initial"], IPS["conductor-2"], IPS["conductor-3"]
HOST_OF = {ip: host for host, ip in IPS.items()}
KEY = "cluster-secret"
NTP = ["127.1.9.1"]
#: long enough for HELLOs to settle, RTT samples to fill, a dead peer to be declared
SETTLE_S = 30.0


@pytest.fixture
def lab() -> Iterator[ClusterLab]:
    lab = ClusterLab()
    yield lab
    lab.close()


# ------------------------------------------------------------------ helpers
def prepare(lab: ClusterLab, host: str) -> None:
    """Guide Task 4: a working NTP server on the peer before it joins (G-R3)."""
    lab.put(host, "time", {"ntp_servers": NTP})


def peer_fields(peers: list[str]) -> dict[str, str]:
    fields = {f"peer{i + 1}": ip for i, ip in enumerate(peers)}
    return {f"peer{i}": fields.get(f"peer{i}", "") for i in (1, 2, 3)}


def form_cluster(lab: ClusterLab, hosts: list[str]) -> None:
    """G-P1 on the first host, then G-P2 for each further host."""
    for host in hosts:
        prepare(lab, host)
    lab.put(hosts[0], "clustering", {"key": KEY, "peer1": IPS[hosts[0]]})
    lab.restart(hosts[0])
    for n in range(2, len(hosts) + 1):
        members = [IPS[h] for h in hosts[:n]]
        for existing in hosts[: n - 1]:
            lab.put(existing, "clustering", peer_fields(members))
            lab.restart(existing)
        lab.put(hosts[n - 1], "clustering", {"key": KEY, **peer_fields(members)})
        lab.restart(hosts[n - 1])
    lab.wait(SETTLE_S)
    for host in hosts:
        assert all_active(lab, host), (host, lab.statuses(host))


def all_active(lab: ClusterLab, host: str) -> bool:
    statuses = lab.statuses(host)
    return statuses.pop(IPS[host]) == "This system" and all(
        text.startswith("Active as ") for text in statuses.values()
    )


def alarms(lab: ClusterLab, host: str) -> dict[tuple[int, str], str]:
    """(alarm id, subject) -> description, as Status > Alarms lists them."""
    status, answer = lab.api(host, "GET", "/api/v1/status/alarms")
    assert status == 200
    return {(a["id"], a["subject"]): a["description"] for a in answer["alarms"]}


def cluster_alarm_ids(lab: ClusterLab, host: str) -> set[int]:
    """Cluster alarm ids only (not the default-password / DNS ones every fresh peer has)."""
    return {code for code, _ in alarms(lab, host) if 20000 <= code < 21000}


def setting(lab: ClusterLab, host: str, page: str, name: str) -> Any:
    status, answer = lab.api(host, "GET", f"/api/v1/system/{page}")
    assert status == 200
    return answer["settings"][name]


def refused(lab: ClusterLab, host: str, path: str, body: dict[str, Any]) -> dict[str, str]:
    """PUT that must be refused: 400 and the offending fields ("Label: message")."""
    status, answer = lab.api(host, "PUT", path, body)
    assert status == 400, answer
    fields: dict[str, str] = answer["fields"]
    return fields


# -------------------------------------------------------------------- rules
def test_g_r1_other_software_version_refused_on_both_sides_until_same_version() -> None:
    """G-R1: a peer on another software version refuses to join: it is not Active, both
    sides say why (alarm 20008) and replication is paused (neither side's data changes);
    once it runs the same version it is Active as NAME and holds the cluster's data."""
    lab = ClusterLab(versions={"conductor-2": "XC3.1"})
    try:
        for host in ("conductor-initial", "conductor-2"):
            prepare(lab, host)
        lab.put("conductor-initial", "administration", {"system_name": "Cluster A"})
        lab.put("conductor-2", "administration", {"system_name": "Left over on 2"})
        lab.put("conductor-initial", "clustering", {"key": KEY, "peer1": INITIAL})
        lab.restart("conductor-initial")
        lab.put("conductor-initial", "clustering", {"peer2": SECOND})
        lab.restart("conductor-initial")
        lab.put("conductor-2", "clustering", {"key": KEY, "peer1": INITIAL, "peer2": SECOND})
        lab.restart("conductor-2")
        lab.wait(SETTLE_S)

        mismatch = "Failed: software version mismatch"
        on_initial = lab.statuses("conductor-initial")[SECOND]
        on_second = lab.statuses("conductor-2")[INITIAL]
        assert on_initial == f"{mismatch} ({SOFTWARE_VERSION} here, XC3.1 on peer)"
        assert on_second == f"{mismatch} (XC3.1 here, {SOFTWARE_VERSION} on peer)"
        assert "software version mismatch" in alarms(lab, "conductor-initial")[(20008, SECOND)]
        assert "software version mismatch" in alarms(lab, "conductor-2")[(20008, INITIAL)]
        assert setting(lab, "conductor-2", "administration", "system_name") == "Left over on 2"
        lab.put("conductor-2", "administration", {"system_name": "Written on XC3.1"})
        lab.wait(10)
        assert setting(lab, "conductor-initial", "administration", "system_name") == "Cluster A"

        lab.kill("conductor-2")  # upgrade (here: reinstall) to the cluster's version
        lab.start("conductor-2", version=SOFTWARE_VERSION)
        lab.wait(SETTLE_S)
        assert lab.statuses("conductor-initial")[SECOND] == "Active as conductor-2"
        assert lab.statuses("conductor-2")[INITIAL] == "Active as conductor-initial"
        assert 20008 not in cluster_alarm_ids(lab, "conductor-initial")
        assert 20008 not in cluster_alarm_ids(lab, "conductor-2")
        for host in ("conductor-initial", "conductor-2"):  # G-P2: the cluster's data wins
            assert setting(lab, host, "administration", "system_name") == "Cluster A"
    finally:
        lab.close()


def test_g_r2_full_and_select_do_not_mix_and_select_clusters_two_peers(lab: ClusterLab) -> None:
    """G-R2: a full capacity peer and a Select peer are not Active together (not licensed:
    capacity mismatch, alarm 20030) until both have the same capacity; a Select cluster
    refuses a third peer at Save."""
    form_cluster(lab, ["conductor-initial", "conductor-2"])
    lab.api("conductor-2", "PUT", "/api/v1/maintenance/option-keys", {"capacity": "select"})
    lab.wait(SETTLE_S)
    assert lab.statuses("conductor-initial")[SECOND] == (
        "Failed: not licensed (capacity mismatch: full capacity here, Select on peer)"
    )
    assert lab.statuses("conductor-2")[INITIAL] == (
        "Failed: not licensed (capacity mismatch: Select here, full capacity on peer)"
    )
    assert "capacity mismatch" in alarms(lab, "conductor-initial")[(20030, SECOND)]
    assert "capacity mismatch" in alarms(lab, "conductor-2")[(20030, INITIAL)]

    status, _ = lab.api(
        "conductor-initial", "PUT", "/api/v1/maintenance/option-keys", {"capacity": "select"}
    )
    assert status == 200
    lab.wait(SETTLE_S)
    assert all_active(lab, "conductor-initial")
    assert all_active(lab, "conductor-2")
    assert 20030 not in cluster_alarm_ids(lab, "conductor-initial")
    assert 20030 not in cluster_alarm_ids(lab, "conductor-2")

    fields = refused(lab, "conductor-initial", "/api/v1/system/clustering", {"peer3": THIRD})
    assert fields == {
        "peer3": "Peer 3 IP address: TelePresence Conductor Select can be clustered "
        "with at most 2 peers"
    }
    assert setting(lab, "conductor-initial", "clustering", "peer3") == ""


def test_g_r3_clock_skew_and_unsynchronised_ntp_raise_alarms_until_fixed(lab: ClusterLab) -> None:
    """G-R3: a peer's clock 30 s off raises 20032 on the others, cleared once the clocks
    agree; a peer without an NTP server shows Time state not Synchronized and raises
    20033 on the others, cleared when it gets one."""
    form_cluster(lab, ["conductor-initial", "conductor-2", "conductor-3"])
    world = lab.sim.world

    world.set_clock_offset("conductor-2", 30)
    lab.wait(SETTLE_S)
    for host in ("conductor-initial", "conductor-3"):
        description = alarms(lab, host)[(20032, SECOND)]
        assert description.startswith(f"Clock of {SECOND} differs from this peer's by +30")
    world.set_clock_offset("conductor-2", 0)
    lab.wait(SETTLE_S)
    for host in IPS:
        assert 20032 not in cluster_alarm_ids(lab, host), host

    lab.put("conductor-3", "time", {"ntp_servers": []})
    lab.wait(SETTLE_S)
    _, time_page = lab.api("conductor-3", "GET", "/api/v1/system/time")
    assert time_page["status"]["ntp_state"] == "Not synchronized"
    for host in ("conductor-initial", "conductor-2"):
        assert alarms(lab, host)[(20033, THIRD)] == (
            f"Peer {THIRD} reports its NTP state unsynchronised"
        )
    lab.put("conductor-3", "time", {"ntp_servers": NTP})
    lab.wait(SETTLE_S)
    _, time_page = lab.api("conductor-3", "GET", "/api/v1/system/time")
    assert time_page["status"]["ntp_state"] == "Synchronized"
    for host in IPS:
        assert 20033 not in cluster_alarm_ids(lab, host), host


def test_g_r4_duplicate_peer_address_refused_with_its_label(lab: ClusterLab) -> None:
    """G-R4: every peer has a unique IP address: a duplicate is refused at Save, naming
    the field by its label, and nothing is saved; unique addresses are accepted."""
    prepare(lab, "conductor-initial")
    fields = refused(
        lab,
        "conductor-initial",
        "/api/v1/system/clustering",
        {"key": KEY, "peer1": INITIAL, "peer2": SECOND, "peer3": INITIAL},
    )
    assert fields == {
        "peer3": f"Peer 3 IP address: {INITIAL} is already Peer 1 IP address; "
        "every peer must have a unique IP address"
    }
    _, page = lab.api("conductor-initial", "GET", "/api/v1/system/clustering")
    assert page["pending"] == {}
    assert page["settings"]["peer1"] == ""

    lab.put(
        "conductor-initial",
        "clustering",
        {"key": KEY, "peer1": INITIAL, "peer2": SECOND, "peer3": THIRD},
    )
    lab.restart("conductor-initial")
    assert lab.statuses("conductor-initial")[INITIAL] == "This system"


def test_g_r5_round_trip_over_30_ms_raises_alarm_until_latency_goes(lab: ClusterLab) -> None:
    """G-R5: 20 ms each way (40 ms round trip) between two peers is measured and raises
    20031 on both; the alarm clears when the latency goes."""
    form_cluster(lab, ["conductor-initial", "conductor-2", "conductor-3"])
    world = lab.sim.world
    world.impair("conductor-initial", "conductor-2", latency_ms=20, both=True)
    lab.wait(60)
    description = alarms(lab, "conductor-initial")[(20031, SECOND)]
    assert description.startswith(f"Round trip to {SECOND} is 4")
    assert description.endswith("(limit 30 ms)")
    assert (20031, INITIAL) in alarms(lab, "conductor-2")
    assert 20031 not in cluster_alarm_ids(lab, "conductor-3")  # its paths are fine
    assert all_active(lab, "conductor-initial")  # slow, not broken

    world.impair("conductor-initial", "conductor-2", latency_ms=0, both=True)
    lab.wait(60)
    for host in IPS:
        assert 20031 not in cluster_alarm_ids(lab, host), host


def test_g_r6_blocked_cluster_ports_fail_visibly_and_recover_with_outage_writes(
    lab: ClusterLab,
) -> None:
    """G-R6: dropping UDP 4369-4380 breaks the cluster visibly ("Failed: unreachable",
    alarm 20004); a write made during the outage replicates once the ports are open."""
    form_cluster(lab, ["conductor-initial", "conductor-2", "conductor-3"])
    world = lab.sim.world
    rule = world.firewall_add("udp", "4369-4380", action="drop")
    lab.wait(SETTLE_S)
    for host, ip in IPS.items():
        statuses = lab.statuses(host)
        for other, text in statuses.items():
            if other != ip:
                assert text.startswith("Failed: unreachable"), (host, statuses)
                assert (20004, other) in alarms(lab, host)

    lab.put("conductor-initial", "administration", {"system_name": "Written in the outage"})
    lab.wait(5)
    assert setting(lab, "conductor-2", "administration", "system_name") == ""

    world.firewall_remove(rule.id)
    lab.wait(60)
    for host in IPS:
        assert all_active(lab, host), (host, lab.statuses(host))
        assert setting(lab, host, "administration", "system_name") == "Written in the outage"
        assert not {20004, 20009} & cluster_alarm_ids(lab, host), (host, alarms(lab, host))


def test_g_r10_no_release_key_means_no_clustering(lab: ClusterLab) -> None:
    """G-R10: without a release key (Essentials) the Clustering page refuses peers with
    the reason; a clustered peer cannot drop its key; reinstalling the key lets it join."""
    form_cluster(lab, ["conductor-initial", "conductor-2"])
    _, options = lab.api("conductor-3", "GET", "/api/v1/maintenance/option-keys")
    key_of_3 = options["settings"]["release_key"]
    fields = refused(lab, "conductor-2", "/api/v1/maintenance/option-keys", {"release_key": ""})
    assert fields == {
        "release_key": "Release key: clustering is not supported without a release key "
        "(TelePresence Conductor Essentials)"
    }

    prepare(lab, "conductor-3")
    status, _ = lab.api(
        "conductor-3", "PUT", "/api/v1/maintenance/option-keys", {"release_key": ""}
    )
    assert status == 200
    _, options = lab.api("conductor-3", "GET", "/api/v1/maintenance/option-keys")
    assert options["status"]["edition"] == (
        "TelePresence Conductor Essentials: clustering is not supported"
    )
    for existing in ("conductor-initial", "conductor-2"):
        lab.put(existing, "clustering", peer_fields([INITIAL, SECOND, THIRD]))
        lab.restart(existing)
    fields = refused(
        lab,
        "conductor-3",
        "/api/v1/system/clustering",
        {"key": KEY, **peer_fields([INITIAL, SECOND, THIRD])},
    )
    assert fields == {
        "peer1": "Peer 1 IP address: clustering is not supported without a release key "
        "(TelePresence Conductor Essentials)"
    }
    lab.wait(SETTLE_S)
    assert lab.statuses("conductor-initial")[THIRD] == "Failed: unreachable (no answer)"

    status, _ = lab.api(
        "conductor-3", "PUT", "/api/v1/maintenance/option-keys", {"release_key": key_of_3}
    )
    assert status == 200
    lab.put("conductor-3", "clustering", {"key": KEY, **peer_fields([INITIAL, SECOND, THIRD])})
    lab.restart("conductor-3")
    lab.wait(SETTLE_S)
    for host in IPS:
        assert all_active(lab, host), (host, lab.statuses(host))


def test_g_r12_peer_lists_differ_named_in_status_and_alarm_until_identical(
    lab: ClusterLab,
) -> None:
    """G-R12: a peer whose list differs is not Active; the status and alarm 20012 name
    the differing address; identical lists (in any order) make everyone Active."""
    form_cluster(lab, ["conductor-initial", "conductor-2", "conductor-3"])
    stranger = "127.1.2.99"
    lab.put("conductor-2", "clustering", {"peer3": stranger})
    lab.restart("conductor-2")
    lab.wait(SETTLE_S)

    expected = f"Failed: peer list mismatch (missing on peer: {THIRD}; only on peer: {stranger})"
    assert lab.statuses("conductor-initial")[SECOND] == expected
    assert alarms(lab, "conductor-initial")[(20012, SECOND)] == f"Peer {SECOND}: {expected}"
    on_third = lab.statuses("conductor-3")[SECOND]
    assert on_third == f"Failed: peer list mismatch (this peer, {THIRD}, is not in the peer's list)"
    assert (20012, SECOND) in alarms(lab, "conductor-3")

    # the same addresses in another order are identical lists
    lab.put("conductor-2", "clustering", {"peer1": THIRD, "peer2": INITIAL, "peer3": SECOND})
    lab.restart("conductor-2")
    lab.wait(SETTLE_S)
    for host in IPS:
        assert all_active(lab, host), (host, lab.statuses(host))
        assert 20012 not in cluster_alarm_ids(lab, host)


def test_g_r13_lan1_address_fixed_while_clustered_changeable_when_standalone(
    lab: ClusterLab,
) -> None:
    """G-R13: the LAN 1 IPv4 address of a clustered peer cannot be changed (refused with
    the reason); once the peer is standalone the change is accepted."""
    form_cluster(lab, ["conductor-initial", "conductor-2"])
    fields = refused(lab, "conductor-2", "/api/v1/system/ip", {"lan1_address": "127.1.2.40"})
    assert list(fields) == ["lan1_address"]
    assert fields["lan1_address"].startswith(
        "LAN 1 IPv4 address: cannot be changed while this peer is part of a cluster"
    )
    assert setting(lab, "conductor-2", "ip", "lan1_address") == SECOND

    lab.put("conductor-2", "clustering", {"key": "", **peer_fields([])})
    lab.restart("conductor-2")
    status, answer = lab.api(
        "conductor-2", "PUT", "/api/v1/system/ip", {"lan1_address": "127.1.2.40"}
    )
    assert status == 200, answer
    assert answer["pending"] == ["lan1_address"]


def test_g_r14_path_mtu_below_sync_packets_breaks_replication_until_mtu_lowered(
    lab: ClusterLab,
) -> None:
    """G-R14: with a 1300-byte path MTU between two peers a large change (a ~5000-char
    login banner) does not reach the other peer: alarm 20009 says why; lowering the
    writing peer's MTU to 1300 (System > Ethernet) delivers it, nothing lost.
    (Two peers: with a third one, anti-entropy through it routes around the bad path.)"""
    form_cluster(lab, ["conductor-initial", "conductor-2"])
    world = lab.sim.world
    world.impair("conductor-initial", "conductor-2", mtu_bytes=1300, both=True)
    banner = "".join(f"Line {n:04d}: authorised use only.\n" for n in range(160))[:5000]
    lab.put("conductor-initial", "administration", {"login_banner": banner})
    lab.put("conductor-initial", "administration", {"system_name": "After the banner"})
    lab.wait(60)

    assert setting(lab, "conductor-2", "administration", "login_banner") == ""
    # a small change still fits in one packet and passes
    assert setting(lab, "conductor-2", "administration", "system_name") == "After the banner"
    description = alarms(lab, "conductor-initial")[(20009, SECOND)]
    assert "check the path MTU and the cluster interface MTU on System > Ethernet" in description
    assert all_active(lab, "conductor-initial")  # small HELLOs still pass

    lab.put("conductor-initial", "ethernet", {"mtu": 1300})
    lab.wait(60)
    for host in ("conductor-initial", "conductor-2"):
        assert setting(lab, host, "administration", "login_banner") == banner, host
        assert setting(lab, host, "administration", "system_name") == "After the banner", host
        assert 20009 not in cluster_alarm_ids(lab, host), (host, alarms(lab, host))


# --------------------------------------------------------------- procedures
def test_g_p5_remove_a_live_peer(lab: ClusterLab) -> None:
    """G-P5: the removed peer goes standalone (delete key and peers, save, restart); the
    remaining peers delete its address and save: they no longer list it, no alarm about
    it remains, and the removed peer keeps the shared configuration it had."""
    form_cluster(lab, ["conductor-initial", "conductor-2", "conductor-3"])
    lab.put("conductor-initial", "administration", {"system_name": "Cluster A"})
    lab.wait(5)
    assert setting(lab, "conductor-3", "administration", "system_name") == "Cluster A"

    lab.put("conductor-3", "clustering", {"key": "", **peer_fields([])})
    lab.restart("conductor-3")
    assert lab.statuses("conductor-3") == {}
    for host in ("conductor-initial", "conductor-2"):
        lab.put(host, "clustering", {"peer3": ""})
    lab.wait(SETTLE_S)

    for host in ("conductor-initial", "conductor-2"):
        assert THIRD not in lab.statuses(host)
        assert all_active(lab, host), (host, lab.statuses(host))
        assert not [a for a in alarms(lab, host) if a[1] == THIRD], alarms(lab, host)
        assert 20007 not in cluster_alarm_ids(lab, host)  # nothing waits for a restart
    assert cluster_alarm_ids(lab, "conductor-3") == set()
    assert setting(lab, "conductor-3", "administration", "system_name") == "Cluster A"
    _, overview = lab.api("conductor-3", "GET", "/api/v1/status")
    assert overview["cluster"]["text"] == "Standalone (not clustered)"

    # no longer connected either way
    lab.put("conductor-initial", "administration", {"system_name": "Cluster B"})
    lab.put("conductor-3", "administration", {"system_name": "Alone"})
    lab.wait(10)
    assert setting(lab, "conductor-2", "administration", "system_name") == "Cluster B"
    assert setting(lab, "conductor-3", "administration", "system_name") == "Alone"


def test_g_p5_remove_a_dead_peer(lab: ClusterLab) -> None:
    """G-P5: a dead peer shows Failed with alarm 20004; the remaining peers delete its
    address and save, and every status and alarm about it goes."""
    form_cluster(lab, ["conductor-initial", "conductor-2", "conductor-3"])
    lab.kill("conductor-3")
    lab.wait(SETTLE_S)
    for host in ("conductor-initial", "conductor-2"):
        assert lab.statuses(host)[THIRD].startswith("Failed: unreachable")
        assert (20004, THIRD) in alarms(lab, host)

    for host in ("conductor-initial", "conductor-2"):
        lab.put(host, "clustering", {"peer3": ""})
    lab.wait(SETTLE_S)
    for host in ("conductor-initial", "conductor-2"):
        assert THIRD not in lab.statuses(host)
        assert all_active(lab, host), (host, lab.statuses(host))
        assert not [a for a in alarms(lab, host) if a[1] == THIRD], alarms(lab, host)
        assert cluster_alarm_ids(lab, host) == set(), alarms(lab, host)
