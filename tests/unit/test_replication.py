"""Replication core: last-writer-wins on hybrid logical clocks, tombstones, anti-entropy,
joining (G-P2), MTU-sized fragments (G-R14) — pure, no event loop."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from peers.core.hlc import HybridClock, Version
from peers.core.replication import Adopted, Applied, Recovered, Rejected, Role, Stalled
from tests.unit.replication_net import Net


def test_hlc_is_monotonic_and_moves_past_what_it_sees() -> None:
    clock = HybridClock("a")
    first = clock.tick(1000)
    second = clock.tick(999)  # the wall clock went back
    assert second > first
    clock.observe(Version(5000, 3, "b"), 1001)
    assert clock.tick(1001) > Version(5000, 3, "b")


def test_a_write_on_one_peer_reaches_the_others_g_s1() -> None:
    net = Net(["a", "b", "c"])
    net.nodes["a"].write("setting:x", "one", net.wall_ms("a"), net.now)
    net.run(1.0)
    assert all(node.get("setting:x") == "one" for node in net.nodes.values())


def test_concurrent_writes_converge_on_the_same_winner() -> None:
    net = Net(["a", "b", "c"], seed=3)
    for name in ("a", "b", "c"):
        net.nodes[name].write("k", name, net.wall_ms(name), net.now)
    net.run(5.0)
    values = {node.get("k") for node in net.nodes.values()}
    assert values == {"c"}  # same wall time and counter: the origin id breaks the tie


def test_delete_is_a_tombstone_and_a_newer_write_revives() -> None:
    net = Net(["a", "b"])
    net.nodes["a"].write("k", 1, net.wall_ms("a"), net.now)
    net.run(1.0)
    net.nodes["b"].delete("k", net.wall_ms("b"), net.now)
    net.run(1.0)
    assert net.nodes["a"].get("k") is None
    assert net.nodes["a"].entries["k"].deleted
    net.nodes["a"].write("k", 2, net.wall_ms("a"), net.now)
    net.run(1.0)
    assert net.nodes["b"].get("k") == 2


def test_partitioned_peer_catches_up_by_anti_entropy() -> None:
    net = Net(["a", "b", "c"])
    net.groups = [{"a", "b"}, {"c"}]
    for i in range(50):
        net.nodes["a" if i % 2 else "b"].write(f"k{i}", i, net.wall_ms("a"), net.now)
        net.run(0.01)
    net.nodes["c"].write("c-only", True, net.wall_ms("c"), net.now)
    net.run(20.0)  # the pushes to c are given up on... and retried
    assert net.nodes["c"].get("k1") is None
    net.groups = []
    net.run(30.0)
    live = [node.live() for node in net.nodes.values()]
    assert live[0] == live[1] == live[2]
    assert live[0]["c-only"] is True
    assert len(live[0]) == 51


def test_large_change_fails_above_path_mtu_and_recovers_after_lowering_it_g_r14() -> None:
    """G-R14: fragments sized for a 1500-byte MTU are dropped on a 1300-byte path; the
    write stalls visibly; lowering the peer's MTU setting re-fragments and nothing is lost."""
    net = Net(["a", "b"])
    overhead = 28 + 28  # IP/UDP + secure channel record
    net.path_mtu[("a", "b")] = 1300 - overhead
    node = net.nodes["a"]
    node.max_payload = 1500 - overhead
    node.write("template:big", "x" * 6000, net.wall_ms("a"), net.now)
    net.run(60.0)
    assert net.nodes["b"].get("template:big") is None
    assert any(isinstance(e, Stalled) and e.peer == "b" for _, e in net.events)
    assert node.stalled("b")
    node.max_payload = 1300 - overhead
    net.run(20.0)
    assert net.nodes["b"].get("template:big") == "x" * 6000
    assert any(isinstance(e, Recovered) and e.peer == "b" for _, e in net.events)
    assert not node.stalled("b")


def test_joining_peer_adopts_the_cluster_and_its_old_data_never_spreads_g_p2() -> None:
    net = Net(["a", "b"])
    net.nodes["a"].write("setting:name", "cluster", net.wall_ms("a"), net.now)
    net.run(1.0)
    net.names.append("c")
    for name in ("a", "b"):
        net.nodes[name].set_peers(["a", "b", "c"], net.now)
    joiner = net.add("c", role=Role.JOINING)
    joiner.write("setting:name", "mine", net.wall_ms("c") + 10_000, net.now)  # newer, still loses
    joiner.write("setting:only-on-c", 1, net.wall_ms("c"), net.now)
    net.run(5.0)
    assert joiner.role is Role.ESTABLISHED
    assert any(isinstance(e, Adopted) for _, e in net.events)
    for node in net.nodes.values():
        assert node.get("setting:name") == "cluster"
        assert node.get("setting:only-on-c") is None


def test_messages_from_strangers_and_garbage_are_rejected_and_apply_nothing() -> None:
    net = Net(["a", "b"])
    node = net.nodes["a"]
    before = dict(node.entries)
    assert isinstance(node.receive("z", b"D{}", 0.0, 0)[0], Rejected)
    for junk in (b"", b"Q", b"F\x00", b"F" + b"\x00" * 11 + b"\x01{", b"S[1]", b'D{"d":1}'):
        events = node.receive("b", junk, 0.0, 0)
        assert all(isinstance(e, Rejected) for e in events)
    assert node.entries == before


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_any_bytes_are_rejected_or_ignored_never_applied(data: bytes) -> None:
    net = Net(["a", "b"])
    node = net.nodes["a"]
    events = node.receive("b", data, 0.0, 0)
    assert not any(isinstance(e, Applied | Adopted) for e in events) or data[:1] == b"F"
    assert all(not isinstance(e, Adopted) for e in events)
