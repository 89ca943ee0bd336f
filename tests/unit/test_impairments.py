"""The impairment table and its toxics: validation, decisions, rollback (pure, no event loop)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsim.api import Proto
from netsim.core.impairments import ImpairmentError, ImpairmentTable, LinkSpec
from netsim.core.stream import StreamDirection, connect_verdict
from netsim.core.toxics import Deliver, Drop, Reject, Segment

HOSTS = ("a", "b", "c")


def table(seed: int = 1) -> ImpairmentTable:
    return ImpairmentTable(HOSTS, seed=seed)


def udp(size: int = 100, src: str = "a", dst: str = "b", dport: int = 500) -> Segment:
    return Segment(Proto.UDP, src, dst, 500, dport, size)


def test_unimpaired_pair_delivers_at_once() -> None:
    assert table().decide(udp(), 3.0) == [Deliver(3.0)]


def test_latency_delays_and_jitter_stays_in_range() -> None:
    t = table()
    t.impair("a", "b", {"latency_ms": 20, "jitter_ms": 5})
    times = [t.decide(udp(), 0.0)[0] for _ in range(200)]
    assert all(isinstance(d, Deliver) and 0.015 <= d.at <= 0.025 for d in times)
    assert len({d.at for d in times if isinstance(d, Deliver)}) > 50


def test_impairments_are_per_direction() -> None:
    t = table()
    t.impair("a", "b", {"latency_ms": 20})
    assert t.decide(udp(src="b", dst="a"), 0.0) == [Deliver(0.0)]
    t.impair("a", "b", {"latency_ms": 7}, both=True)
    assert t.decide(udp(src="b", dst="a"), 0.0) == [Deliver(0.007)]


def test_mtu_drops_oversized_datagram_and_passes_smaller_g_r14() -> None:
    """G-R14: don't-fragment: a datagram above the path MTU is dropped, never split."""
    t = table()
    t.impair("a", "b", {"mtu_bytes": 1300})
    assert t.decide(udp(1300), 0.0) == [Deliver(0.0)]
    [outcome] = t.decide(udp(1301), 0.0)
    assert isinstance(outcome, Drop)
    assert "path MTU 1300" in outcome.reason


def test_mtu_does_not_apply_to_stream_chunks() -> None:
    t = table()
    t.impair("a", "b", {"mtu_bytes": 576})
    assert t.decide(Segment(Proto.TCP, "a", "b", 1, 2, 5000), 0.0) == [Deliver(0.0)]


def test_loss_duplicate_reorder_are_seeded_and_statistical() -> None:
    t = table(seed=7)
    t.impair("a", "b", {"loss": 0.3, "duplicate": 0.2, "reorder": 0.2})
    outcomes = [t.decide(udp(), 0.0) for _ in range(2000)]
    lost = sum(1 for o in outcomes if isinstance(o[0], Drop))
    doubled = sum(1 for o in outcomes if len(o) == 2)
    held = sum(1 for o in outcomes if isinstance(o[0], Deliver) and o[0].at > 0)
    assert 450 < lost < 750
    assert 180 < doubled < 380
    assert 180 < held < 380
    again = table(seed=7)
    again.impair("a", "b", {"loss": 0.3, "duplicate": 0.2, "reorder": 0.2})
    assert [again.decide(udp(), 0.0) for _ in range(2000)] == outcomes


def test_bandwidth_serialises_segments() -> None:
    t = table()
    t.impair("a", "b", {"rate_kbit": 8})  # 1000 bytes/s
    first = t.decide(udp(500), 0.0)[0]
    second = t.decide(udp(500), 0.0)[0]
    assert first == Deliver(0.5)
    assert second == Deliver(1.0)


def test_link_down_one_direction_only() -> None:
    t = table()
    t.impair("a", "b", {"down": True})
    assert isinstance(t.decide(udp(), 0.0)[0], Drop)
    assert t.decide(udp(src="b", dst="a"), 0.0) == [Deliver(0.0)]


def test_partition_separates_groups_and_unnamed_hosts_form_a_group() -> None:
    t = table()
    t.set_partition([["a"]])
    assert t.partitioned("a", "b")
    assert t.partitioned("c", "a")
    assert not t.partitioned("b", "c")
    t.heal()
    assert t.decide(udp(), 0.0) == [Deliver(0.0)]


def test_heal_keeps_other_impairments() -> None:
    t = table()
    t.impair("a", "b", {"down": True, "latency_ms": 5})
    t.heal()
    assert t.spec("a", "b") == LinkSpec(latency_ms=5)


def test_firewall_by_udp_port_range_g_r6() -> None:
    """G-R6: a rule on udp 4369-4380 drops 4370, passes 5000 and tcp 4370; reject is marked."""
    t = table()
    rule, _ = t.add_firewall_rule(proto="udp", port_lo=4369, port_hi=4380)
    assert isinstance(t.decide(udp(dport=4370), 0.0)[0], Drop)
    assert t.decide(udp(dport=5000), 0.0) == [Deliver(0.0)]
    assert t.decide(Segment(Proto.TCP, "a", "b", 1, 4370, 10), 0.0) == [Deliver(0.0)]
    t.remove_firewall_rule(rule.id)
    t.add_firewall_rule(proto="any", port_lo=500, action="reject", dst="b")
    assert isinstance(t.decide(udp(dport=500), 0.0)[0], Reject)
    assert t.decide(udp(dst="c", dport=500), 0.0) == [Deliver(0.0)]


def test_clock_offset_recorded_per_host_g_r3() -> None:
    """G-R3: per-host clock offset is part of the world state."""
    t = table()
    t.set_clock_offset("b", 30)
    assert t.clock_offset_s("b") == 30.0
    assert t.clock_offset_s("a") == 0.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"loss": 2}, "loss must be between 0 and 1"),
        ({"latency_ms": -1}, "latency_ms must be between"),
        ({"mtu_bytes": 40}, "mtu_bytes must be between 68"),
        ({"mtu_bytes": 1300.5}, "mtu_bytes must be an integer"),
        ({"jitter_ms": "x"}, "jitter_ms must be a number"),
        ({"loss": float("nan")}, "loss must be between"),
        ({"latency_ms": 10**400}, "latency_ms must be between"),
        ({"down": 1}, "down must be true or false"),
        ({"colour": 1}, "unknown impairment colour"),
    ],
)
def test_invalid_impairments_are_refused_and_nothing_changes(
    changes: dict[str, object], message: str
) -> None:
    t = table()
    before = t.snapshot()
    with pytest.raises(ImpairmentError, match=message):
        t.impair("a", "b", changes)
    assert t.snapshot() == before


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.impair("a", "zz", {"loss": 0.1}), "unknown host 'zz'"),
        (lambda t: t.impair("a", "a", {"loss": 0.1}), "same host"),
        (lambda t: t.set_partition([["a"], ["a", "b"]]), "more than one group"),
        (lambda t: t.set_partition([]), "at least one non-empty group"),
        (lambda t: t.add_firewall_rule(proto="icmp", port_lo=1), "udp, tcp or any"),
        (lambda t: t.add_firewall_rule(proto="udp", port_lo=10, port_hi=5), "is empty"),
        (lambda t: t.add_firewall_rule(proto="udp", port_lo=0), "1-65535"),
        (lambda t: t.add_firewall_rule(proto="udp", port_lo=1, action="x"), "drop or reject"),
        (lambda t: t.remove_firewall_rule(99), "no firewall rule with id 99"),
        (lambda t: t.remove_firewall_rule(True), "whole number"),
        (lambda t: t.set_clock_offset("a", float("inf")), "within"),
    ],
)
def test_invalid_changes_name_the_problem(call: object, message: str) -> None:
    t = table()
    before = t.snapshot()
    with pytest.raises(ImpairmentError, match=message):
        call(t)  # type: ignore[operator]
    assert t.snapshot() == before


def test_save_and_restore_roll_back_everything() -> None:
    t = table()
    saved = t.save()
    before = t.snapshot()
    t.impair("a", "b", {"latency_ms": 3})
    t.set_partition([["a"]])
    t.add_firewall_rule(proto="udp", port_lo=1)
    t.set_clock_offset("a", 4)
    t.restore(saved)
    after = t.snapshot()
    assert {k: v for k, v in after.items() if k != "generation"} == {
        k: v for k, v in before.items() if k != "generation"
    }


def test_stream_direction_keeps_order_and_stalls_while_down() -> None:
    t = table()
    t.impair("a", "b", {"latency_ms": 10, "jitter_ms": 9})
    direction = StreamDirection(t, "a", "b", 40000, 8443)
    times = [direction.offer(100, i * 0.001) for i in range(100)]
    assert all(x is not None for x in times)
    assert times == sorted(times)  # type: ignore[type-var]
    t.impair("a", "b", {"down": True})
    assert direction.offer(100, 1.0) is None
    assert isinstance(connect_verdict(t, "a", "b", 40000, 8443, 1.0), Drop)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(LinkSpec.FIELDS),
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True),
                st.integers(-10, 70000),
                st.booleans(),
                st.none(),
                st.text(max_size=3),
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_change_is_applied_whole_or_refused_with_nothing_changed(
    changes: list[tuple[str, object]],
) -> None:
    t = table()
    before = t.snapshot()
    try:
        t.impair("a", "b", dict(changes))
    except ImpairmentError:
        assert t.snapshot() == before
    else:
        spec = t.spec("a", "b")
        spec.validate()
        for outcome in t.decide(udp(), 0.0):
            assert not isinstance(outcome, Deliver) or outcome.at >= 0.0
