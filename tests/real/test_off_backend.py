"""The off backend: no relay and no impairments; nodes talk directly on their public
addresses. Only clock offsets still apply (the nodes' runtimes read them, G-R3)."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from netsim.api import IPV4_UDP_OVERHEAD, MessageTooLong
from netsim.real import FileClockOffset, RealClock
from netsim.world import IMPAIRMENTS, ImpairmentUnsupported, Support
from tests.real.conftest import CHARLIE_MTU_BYTES, HOSTS, WAIT_S, Lab

REFUSED = [
    pytest.param("impair", ("alpha", "bravo"), {"latency_ms": 20}, "latency", id="latency"),
    pytest.param("impair", ("alpha", "bravo"), {"jitter_ms": 5}, "jitter", id="jitter"),
    pytest.param("impair", ("alpha", "bravo"), {"loss": 0.5}, "loss", id="loss"),
    pytest.param("impair", ("alpha", "bravo"), {"duplicate": 0.1}, "duplicate", id="duplicate"),
    pytest.param("impair", ("alpha", "bravo"), {"reorder": 0.1}, "reorder", id="reorder"),
    pytest.param("impair", ("alpha", "bravo"), {"rate_kbit": 64}, "bandwidth", id="bandwidth"),
    pytest.param("impair", ("alpha", "bravo"), {"mtu_bytes": 1300}, "mtu", id="mtu"),
    pytest.param("impair", ("alpha", "bravo"), {"down": True}, "down", id="down"),
    pytest.param(
        "impair", ("alpha", "bravo"), {"latency_ms": 5, "both": True}, "latency", id="both"
    ),
    pytest.param("partition", (["alpha"], ["bravo", "charlie"]), {}, "partition", id="partition"),
    pytest.param("firewall_add", ("udp", "4369-4380"), {}, "firewall", id="firewall"),
]


async def test_capabilities_say_only_clock_offset_is_available(off_lab: Lab) -> None:
    caps = off_lab.world.capabilities()
    assert set(caps) == set(IMPAIRMENTS)
    unavailable = {name for name, cap in caps.items() if cap.support is Support.UNAVAILABLE}
    assert unavailable == set(IMPAIRMENTS) - {"clock_offset"}
    assert caps["clock_offset"].support is Support.USERSPACE
    shown = off_lab.world.show()
    assert shown["backend"] == "off"
    assert shown["capabilities"]["latency"]["support"] == "unavailable"


@pytest.mark.parametrize(("method", "args", "kwargs", "impairment"), REFUSED)
async def test_every_impairment_is_refused_naming_the_backend_and_changes_nothing(
    off_lab: Lab, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], impairment: str
) -> None:
    world = off_lab.world
    before, events = world.show(), len(world.trace)
    with pytest.raises(ImpairmentUnsupported, match=f"the off backend cannot apply {impairment}"):
        getattr(world, method)(*args, **kwargs)
    assert world.show() == before
    assert len(world.trace) == events


async def test_nodes_talk_directly_on_their_public_addresses(off_lab: Lab) -> None:
    """No relay: every node binds its public address, a datagram's source is the sender's
    own socket, HTTP sees the client's public IP, and nothing passes through netsim (no
    packet events although packet tracing is on)."""
    lab = off_lab
    for host in HOSTS:
        assert lab.nets[host].bind_ip == lab.ip(host)
    alpha, alpha_inbox = await lab.udp("alpha")
    bravo, bravo_inbox = await lab.udp("bravo", 4370)
    assert alpha.local[0] == lab.ip("alpha")
    assert bravo.local == (lab.ip("bravo"), 4370)

    alpha.send(b"ping", bravo.local)
    ping = await bravo_inbox.first(b"ping")
    assert ping.src == alpha.local
    bravo.send(b"pong", ping.src)
    pong = await alpha_inbox.first(b"pong")
    assert pong.src == bravo.local

    port = await lab.http_server("bravo")
    body = await lab.http_get("alpha", "bravo", port, timeout_s=WAIT_S)
    assert body == {"host": "bravo", "remote": lab.ip("alpha")}
    assert lab.world.trace.packets
    assert not [e for e in lab.world.trace if e.kind.startswith(("udp_", "tcp_"))]


async def test_the_hosts_link_mtu_still_applies_at_send_g_r14(off_lab: Lab) -> None:
    """G-R14: with no path MTU to impair, the host's own link MTU still refuses an
    oversized datagram with EMSGSIZE, and one that fits arrives."""
    lab = off_lab
    charlie, _ = await lab.udp("charlie")
    bravo, inbox = await lab.udp("bravo")
    with pytest.raises(MessageTooLong) as refused:
        charlie.send(b"x" * (CHARLIE_MTU_BYTES - IPV4_UDP_OVERHEAD + 1), bravo.local)
    assert refused.value.errno == errno.EMSGSIZE
    fits = b"y" * (CHARLIE_MTU_BYTES - IPV4_UDP_OVERHEAD)
    charlie.send(fits, bravo.local)
    await inbox.first(fits)


async def test_clock_offset_still_applies_g_r3(off_lab: Lab) -> None:
    """G-R3: the one thing the off backend can change: a host's clock, read by its runtime
    from the world's clock file."""
    world = off_lab.world
    assert world.clock_file is not None
    alpha = RealClock(FileClockOffset(world.clock_file, "alpha", interval_s=0))
    bravo = RealClock(FileClockOffset(world.clock_file, "bravo", interval_s=0))
    world.set_clock_offset("alpha", -30)
    skew_s = (alpha.wall() - bravo.wall()).total_seconds()
    assert -31 <= skew_s <= -29
    assert world.show()["clock_offsets"] == {"alpha": -30.0}
