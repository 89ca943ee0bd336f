"""Membership core: statuses beside each peer and cluster alarms (pure)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peers.core.membership import (
    CLOCK_SKEW_LIMIT_S,
    Hello,
    LocalFacts,
    PeerState,
    PeerView,
    cluster_alarms,
    config_problems,
)

ME = LocalFacts(
    ip="127.1.2.4",
    host_name="x004",
    version="XC3.0",
    licensed=True,
    capacity="full",
    ntp_synchronized=True,
    peers=("127.1.2.32", "127.1.2.4"),
    restart_pending=False,
)


def hello(**changes: object) -> Hello:
    base = {
        "host_name": "x032",
        "version": "XC3.0",
        "licensed": True,
        "capacity": "full",
        "ntp_synchronized": True,
        "wall_ms": 1_000_000,
        "peers": ("127.1.2.32", "127.1.2.4"),
        "restart_pending": False,
        "sent_at": 5.0,
    }
    base.update(changes)
    return Hello(**base)  # type: ignore[arg-type]


def view_after(h: Hello, now: float = 10.0, my_wall_ms: int = 1_000_000) -> PeerView:
    view = PeerView("127.1.2.32")
    view.received(h, now, my_wall_ms)
    return view


def test_active_as_host_name_when_everything_matches() -> None:
    assert view_after(hello()).status(ME, 10.0).text == "Active as x032"


def test_unreachable_before_any_hello_and_after_silence() -> None:
    view = PeerView("127.1.2.32")
    assert view.status(ME, 0.0).state is PeerState.UNREACHABLE
    view.received(hello(), 1.0, 1_000_000)
    assert view.status(ME, 5.0).ok
    assert view.status(ME, 20.0).state is PeerState.UNREACHABLE


def test_key_mismatch_reported_from_the_channel() -> None:
    view = PeerView("127.1.2.32", channel_failure="key_mismatch")
    assert view.status(ME, 0.0).text == "Failed: cluster pre-shared key mismatch"


def test_version_mismatch_g_r1() -> None:
    status = view_after(hello(version="XC3.1")).status(ME, 10.0)
    assert status.state is PeerState.VERSION_MISMATCH
    assert "XC3.0 here, XC3.1 on peer" in status.text


def test_not_licensed_and_capacity_mixing_g_r10_g_r2() -> None:
    assert view_after(hello(licensed=False)).status(ME, 10.0).state is PeerState.NOT_LICENSED
    mixed = view_after(hello(capacity="select")).status(ME, 10.0)
    assert mixed.state is PeerState.NOT_LICENSED
    assert "full capacity here, Select on peer" in mixed.text


def test_peer_list_mismatch_names_the_difference_g_r12() -> None:
    status = view_after(hello(peers=("127.1.2.4", "127.1.2.32", "127.1.2.33"))).status(ME, 10.0)
    assert status.state is PeerState.PEER_LIST_MISMATCH
    assert "only on peer: 127.1.2.33" in status.text
    reordered = view_after(hello(peers=("127.1.2.32", "127.1.2.4"))).status(ME, 10.0)
    assert reordered.ok  # order is free


def test_waiting_for_restart() -> None:
    assert view_after(hello(restart_pending=True)).status(ME, 10.0).text == (
        "Failed: waiting for restart"
    )


def test_round_trip_over_30_ms_raises_an_alarm_g_r5() -> None:
    view = PeerView("127.1.2.32")
    for i in range(5):
        view.received(hello(echo_sent_at=10.0 * i, echo_hold_s=0.001), 10.0 * i + 0.041, 1_000_000)
    assert view.rtt_median_ms == pytest.approx(40.0)
    assert [a[0] for a in cluster_alarms(ME, [view], 40.1)] == [20031]


def test_a_hello_that_waited_for_the_handshake_is_not_a_round_trip_sample_g_r5() -> None:
    """A HELLO made before the channel was (re)established waited for the handshake
    (a peer that just restarted): its echo is no measure of the path, so no false 20031."""
    view = PeerView("127.1.2.32")
    view.channel_established(11.0)
    view.received(hello(echo_sent_at=10.0, echo_hold_s=0.001), 11.2, 1_000_000)
    assert view.rtt_median_ms is None
    assert cluster_alarms(ME, [view], 11.3) == []
    view.received(hello(echo_sent_at=12.0, echo_hold_s=0.001), 12.003, 1_000_000)
    assert view.rtt_median_ms == pytest.approx(2.0)


def test_clock_offset_and_unsynchronised_ntp_raise_alarms_g_r3() -> None:
    skewed = view_after(hello(wall_ms=1_000_000 + int((CLOCK_SKEW_LIMIT_S + 1) * 1000)))
    assert [a[0] for a in cluster_alarms(ME, [skewed], 10.0)] == [20032]
    unsynced = view_after(hello(ntp_synchronized=False))
    assert [a[0] for a in cluster_alarms(ME, [unsynced], 10.0)] == [20033]


def test_configuration_refused_without_release_key_or_too_many_select_peers() -> None:
    assert "release key" in config_problems(["127.0.0.2"], "full", licensed=False)[0]
    assert config_problems(["a", "b", "c"], "select", licensed=True)
    assert config_problems(["a", "b"], "select", licensed=True) == []
    assert config_problems(["", "", ""], "full", licensed=False) == []


def test_hello_round_trips_and_rejects_garbage() -> None:
    h = hello(echo_sent_at=1.5)
    assert Hello.decode(h.encode()) == h
    for junk in (b"", b"X{}", b"H[]", b'H{"n": 1}', b"H{"):
        with pytest.raises(ValueError):  # noqa: PT011 - the contract is ValueError
            Hello.decode(junk)


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError, RecursionError):
        Hello.decode(b"H" + data)
