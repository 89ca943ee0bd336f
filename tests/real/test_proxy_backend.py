"""The proxy backend through real sockets on loopback: every impairment it supports.

Nodes bind their private addresses; the relay owns the public ones and moves
every datagram and stream through the world's impairment table. Each test
opens endpoints with `backend.network_for(host)`, changes the world through its
Python API and checks what arrives. Time is only ever bounded from below
(a datagram is never early); "never arrives" is proved by the relay's packet
trace (the drop is recorded when the relay decides) plus a later datagram on
the same path that does arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.api import IPV4_UDP_OVERHEAD, MessageTooLong
from netsim.core.impairments import ImpairmentError
from netsim.real import FileClockOffset, RealClock, RealDatagramEndpoint, RealRuntime
from tests.real.conftest import (
    CHARLIE_MTU_BYTES,
    HOSTS,
    WAIT_S,
    Lab,
    LabFactory,
    numbered,
)

#: asyncio may run a timer up to its clock resolution (1 ns) before its deadline
CLOCK_EPS_S = 1e-6
#: client timeout for requests that are expected to hang
HANG_TIMEOUT_S = 0.5


async def send_through_relay(
    lab: Lab,
    endpoint: RealDatagramEndpoint,
    src: str,
    dst: str,
    payloads: list[bytes],
    dest: tuple[str, int],
    *,
    batch: int = 20,
) -> None:
    """Send in batches, each time waiting until the relay has taken the whole batch (its
    `udp_send` trace events), so no socket buffer overflows and every datagram is decided."""
    match: dict[str, Any] = {"src": src, "dst": dst, "dport": dest[1]}
    base = len(lab.events("udp_send", **match))
    for start in range(0, len(payloads), batch):
        chunk = payloads[start : start + batch]
        for payload in chunk:
            endpoint.send(payload, dest)
        await lab.wait_events("udp_send", base + start + len(chunk), **match)


# ------------------------------------------------------------------ latency & co
async def test_latency_delays_every_datagram_by_at_least_the_injected_latency(
    proxy_lab: Lab,
) -> None:
    """G-R5: one-way latency on alpha -> bravo; each delivery comes no earlier than 40 ms
    after its send, end to end and in the relay's trace (lower bounds only)."""
    lab = proxy_lab
    alpha, _ = await lab.udp("alpha")
    bravo, inbox = await lab.udp("bravo")
    lab.world.impair("alpha", "bravo", latency_ms=40)
    latency_s = 0.040

    sent_at: dict[bytes, float] = {}
    for payload in numbered("latency", 5):
        sent_at[payload] = time.monotonic()
        alpha.send(payload, bravo.local)
        await asyncio.sleep(0.01)
    await inbox.until(lambda: len(inbox.received) >= 5)

    assert sorted(inbox.payloads) == sorted(sent_at)
    for got in inbox.received:
        assert got.at - sent_at[got.data] >= latency_s - CLOCK_EPS_S
    sends = lab.events("udp_send", src="alpha", dst="bravo")
    delivers = lab.events("udp_deliver", src="alpha", dst="bravo")
    assert len(sends) == len(delivers) == 5
    for send, deliver in zip(sends, delivers, strict=True):
        assert deliver.t - send.t >= latency_s - CLOCK_EPS_S


async def test_jitter_spreads_deliveries_but_never_below_latency_minus_jitter(
    proxy_lab: Lab,
) -> None:
    """Latency 60 ms +- 40 ms jitter: every delay is at least 20 ms, and the delays differ
    by a good part of the jitter window (they are spread, not constant)."""
    lab = proxy_lab
    alpha, _ = await lab.udp("alpha")
    bravo, inbox = await lab.udp("bravo")
    lab.world.impair("alpha", "bravo", latency_ms=60, jitter_ms=40)

    payloads = numbered("jitter", 30)
    sent_at: dict[bytes, float] = {}
    for payload in payloads:
        sent_at[payload] = time.monotonic()
        alpha.send(payload, bravo.local)
        await asyncio.sleep(0.002)
    await inbox.until(lambda: len(inbox.received) >= len(payloads))

    assert sorted(inbox.payloads) == sorted(payloads)
    delays = [got.at - sent_at[got.data] for got in inbox.received]
    assert min(delays) >= 0.020 - CLOCK_EPS_S
    assert max(delays) - min(delays) >= 0.020


async def test_loss_drops_a_plausible_share_of_400_datagrams(proxy_lab: Lab) -> None:
    """Loss 25 % on alpha -> bravo: of 400 datagrams between 60 % and 90 % arrive (expected
    75 %; the draws are seeded), and every missing one is a loss drop in the trace."""
    lab = proxy_lab
    alpha, _ = await lab.udp("alpha")
    bravo, inbox = await lab.udp("bravo")
    lab.world.impair("alpha", "bravo", loss=0.25)

    payloads = numbered("loss", 400)
    await send_through_relay(lab, alpha, "alpha", "bravo", payloads, bravo.local)
    delivered = lab.events("udp_deliver", src="alpha", dst="bravo")
    await inbox.until(lambda: len(inbox.received) >= len(delivered))

    assert 240 <= len(inbox.received) <= 360
    assert len(set(inbox.payloads)) == len(inbox.received)  # loss never duplicates
    drops = lab.events("udp_drop", src="alpha", dst="bravo")
    assert len(drops) + len(delivered) == len(payloads)
    assert all("loss" in drop.fields["reason"] for drop in drops)


async def test_duplication_delivers_some_datagrams_twice(proxy_lab: Lab) -> None:
    lab = proxy_lab
    alpha, _ = await lab.udp("alpha")
    bravo, inbox = await lab.udp("bravo")
    lab.world.impair("alpha", "bravo", duplicate=0.5)

    payloads = numbered("dup", 40)
    await send_through_relay(lab, alpha, "alpha", "bravo", payloads, bravo.local)
    delivered = lab.events("udp_deliver", src="alpha", dst="bravo")
    await inbox.until(lambda: len(inbox.received) >= len(delivered))

    counts = Counter(inbox.payloads)
    assert set(counts) == set(payloads)
    assert any(n == 2 for n in counts.values())
    assert max(counts.values()) == 2


async def test_reordering_lets_later_datagrams_overtake(proxy_lab: Lab) -> None:
    lab = proxy_lab
    alpha, _ = await lab.udp("alpha")
    bravo, inbox = await lab.udp("bravo")
    lab.world.impair("alpha", "bravo", reorder=0.5, reorder_gap_ms=30)

    payloads = numbered("reorder", 40)
    await send_through_relay(lab, alpha, "alpha", "bravo", payloads, bravo.local)
    await inbox.until(lambda: len(inbox.received) >= len(payloads))

    assert sorted(inbox.payloads) == sorted(payloads)  # nothing lost or doubled
    order = [payloads.index(p) for p in inbox.payloads]
    assert any(later < earlier for earlier, later in itertools.pairwise(order))


async def test_bandwidth_serialises_datagrams_at_the_configured_rate(proxy_lab: Lab) -> None:
    """10 packets of 1000 bytes at 320 kbit/s need at least 10 * 1000 * 8 / 320000 = 0.25 s
    from the first send to the last delivery (lower bound only)."""
    lab = proxy_lab
    alpha, _ = await lab.udp("alpha")
    bravo, inbox = await lab.udp("bravo")
    rate_kbit, packet_bytes, count = 320, 1000, 10
    lab.world.impair("alpha", "bravo", rate_kbit=rate_kbit)
    serialisation_s = count * packet_bytes * 8 / (rate_kbit * 1000)

    payloads = numbered("bw", count, packet_bytes - IPV4_UDP_OVERHEAD)
    started = time.monotonic()
    for payload in payloads:
        alpha.send(payload, bravo.local)
    await inbox.until(lambda: len(inbox.received) >= count)

    assert inbox.payloads == payloads  # serialised, so in order
    assert inbox.received[-1].at - started >= serialisation_s - CLOCK_EPS_S
    first_send = lab.events("udp_send", src="alpha", dst="bravo")[0]
    last_deliver = lab.events("udp_deliver", src="alpha", dst="bravo")[-1]
    assert last_deliver.fields["size"] == packet_bytes
    assert last_deliver.t - first_send.t >= serialisation_s - CLOCK_EPS_S


# ----------------------------------------------------------------------- MTU
async def test_path_mtu_drops_oversized_datagrams_and_passes_smaller_ones_g_r14(
    proxy_lab: Lab,
) -> None:
    """G-R14: path MTU 1300 on alpha -> bravo. A 1301-byte IP packet (payload + 28) is
    dropped, never fragmented, with a trace reason naming the path MTU; a 1300-byte one
    passes; bravo -> alpha keeps its full MTU; raising the path MTU lets it through."""
    lab = proxy_lab
    alpha, alpha_inbox = await lab.udp("alpha")
    bravo, inbox = await lab.udp("bravo")
    lab.world.impair("alpha", "bravo", mtu_bytes=1300)
    too_big = b"B" * (1300 - IPV4_UDP_OVERHEAD + 1)
    fits = b"F" * (1300 - IPV4_UDP_OVERHEAD)

    alpha.send(too_big, bravo.local)
    alpha.send(fits, bravo.local)  # same path, after it: once this arrives, too_big was decided
    await inbox.first(fits)
    (drop,) = await lab.wait_events("udp_drop", 1, src="alpha", dst="bravo")
    assert "path MTU 1300" in drop.fields["reason"]
    assert "1301-byte" in drop.fields["reason"]
    assert too_big not in inbox.payloads

    back = b"R" * 1400  # the other direction is not limited
    bravo.send(back, alpha.local)
    await alpha_inbox.first(back)

    lab.world.impair("alpha", "bravo", mtu_bytes=1500)
    alpha.send(too_big, bravo.local)
    await inbox.first(too_big)


async def test_send_above_the_hosts_link_mtu_raises_message_too_long_g_r14(
    proxy_lab: Lab,
) -> None:
    """G-R14: charlie's own link has MTU 1000 (topology `mtu_bytes`): a 1001-byte IP packet
    is refused at send with EMSGSIZE and never reaches the relay; 1000 bytes pass."""
    lab = proxy_lab
    charlie, _ = await lab.udp("charlie")
    bravo, inbox = await lab.udp("bravo")
    assert charlie.mtu_bytes == CHARLIE_MTU_BYTES

    with pytest.raises(MessageTooLong) as refused:
        charlie.send(b"x" * (CHARLIE_MTU_BYTES - IPV4_UDP_OVERHEAD + 1), bravo.local)
    assert refused.value.errno == errno.EMSGSIZE
    assert refused.value.size_bytes == CHARLIE_MTU_BYTES + 1

    fits = b"y" * (CHARLIE_MTU_BYTES - IPV4_UDP_OVERHEAD)
    charlie.send(fits, bravo.local)
    await inbox.first(fits)
    assert [e.fields["size"] for e in lab.events("udp_send", src="charlie")] == [CHARLIE_MTU_BYTES]


# ------------------------------------------------------- down, partition, heal
async def test_link_down_blocks_one_direction_only_until_heal(proxy_lab: Lab) -> None:
    """alpha -> bravo down: alpha's datagrams and HTTP requests to bravo go nowhere,
    bravo -> alpha still flows; `heal` brings the link back up for both."""
    lab = proxy_lab
    alpha, alpha_inbox = await lab.udp("alpha")
    bravo, bravo_inbox = await lab.udp("bravo")
    port = await lab.http_server("bravo")
    lab.world.impair("alpha", "bravo", down=True)

    alpha.send(b"a->b", bravo.local)
    (drop,) = await lab.wait_events("udp_drop", 1, src="alpha", dst="bravo")
    assert "alpha -> bravo is down" in drop.fields["reason"]
    bravo.send(b"b->a", alpha.local)
    await alpha_inbox.first(b"b->a")
    assert b"a->b" not in bravo_inbox.payloads
    with pytest.raises(TimeoutError):
        await lab.http_get("alpha", "bravo", port, timeout_s=HANG_TIMEOUT_S)

    lab.world.heal()
    alpha.send(b"a->b again", bravo.local)
    await bravo_inbox.first(b"a->b again")
    assert b"a->b" not in bravo_inbox.payloads
    body = await lab.http_get("alpha", "bravo", port, timeout_s=WAIT_S)
    assert body["host"] == "bravo"


async def test_partition_blocks_across_groups_flows_within_and_heals(proxy_lab: Lab) -> None:
    """partition([alpha], [bravo, charlie]): alpha <-> bravo is blocked both ways for
    datagrams and HTTP, bravo <-> charlie flows; `heal` restores alpha <-> bravo."""
    lab = proxy_lab
    alpha, alpha_inbox = await lab.udp("alpha")
    bravo, bravo_inbox = await lab.udp("bravo")
    charlie, charlie_inbox = await lab.udp("charlie")
    port = await lab.http_server("bravo")
    lab.world.partition(["alpha"], ["bravo", "charlie"])

    alpha.send(b"a->b", bravo.local)
    bravo.send(b"b->a", alpha.local)
    await lab.wait_events("udp_drop", 1, src="alpha", dst="bravo")
    (drop,) = await lab.wait_events("udp_drop", 1, src="bravo", dst="alpha")
    assert "partition" in drop.fields["reason"]
    bravo.send(b"b->c", charlie.local)
    charlie.send(b"c->b", bravo.local)
    await charlie_inbox.first(b"b->c")
    await bravo_inbox.first(b"c->b")
    assert b"a->b" not in bravo_inbox.payloads
    assert b"b->a" not in alpha_inbox.payloads

    with pytest.raises(TimeoutError):
        await lab.http_get("alpha", "bravo", port, timeout_s=HANG_TIMEOUT_S)
    body = await lab.http_get("charlie", "bravo", port, timeout_s=WAIT_S)
    assert body == {"host": "bravo", "remote": lab.ip("charlie")}

    lab.world.heal()
    alpha.send(b"a->b healed", bravo.local)
    bravo.send(b"b->a healed", alpha.local)
    await bravo_inbox.first(b"a->b healed")
    await alpha_inbox.first(b"b->a healed")
    body = await lab.http_get("alpha", "bravo", port, timeout_s=WAIT_S)
    assert body == {"host": "bravo", "remote": lab.ip("alpha")}


# ------------------------------------------------------------------- firewall
async def test_udp_firewall_drops_a_port_range_and_removal_restores_g_r6(
    proxy_lab: Lab,
) -> None:
    """G-R6: a drop rule on udp 4369-4380 to bravo blocks 4369, 4370 and 4380 but not 4368,
    4381 or 5000; removing the rule lets 4370 through again."""
    lab = proxy_lab
    alpha, _ = await lab.udp("alpha")
    inboxes = {port: (await lab.udp("bravo", port))[1] for port in (4368, 4369, 4370, 4380, 4381)}
    _, inbox_5000 = await lab.udp("bravo", 5000)
    inboxes[5000] = inbox_5000
    rule = lab.world.firewall_add("udp", "4369-4380", action="drop", dst="bravo")
    bravo_ip = lab.ip("bravo")
    blocked, passing = (4369, 4370, 4380), (4368, 4381, 5000)

    for port in (*blocked, *passing):  # blocked first: once the others arrive, all were decided
        alpha.send(f"to {port}".encode(), (bravo_ip, port))
    for port in passing:
        await inboxes[port].first(f"to {port}".encode())
    for port in blocked:
        (drop,) = await lab.wait_events("udp_drop", 1, dst="bravo", dport=port)
        assert drop.fields["reason"] == f"firewall rule {rule.id} drops udp/{port}"
        assert not inboxes[port].received

    lab.world.firewall_remove(rule.id)
    alpha.send(b"to 4370 again", (bravo_ip, 4370))
    await inboxes[4370].first(b"to 4370 again")


async def test_tcp_reject_rule_fails_http_at_once_with_a_connection_error_g_r6(
    proxy_lab: Lab,
) -> None:
    """G-R6: a tcp reject rule resets the connection: the request fails with a connection
    error long before its (generous) client timeout, not with a timeout."""
    lab = proxy_lab
    port = await lab.http_server("bravo")
    rule = lab.world.firewall_add("tcp", port, action="reject", dst="bravo")

    with pytest.raises(aiohttp.ClientConnectionError) as failed:
        await lab.http_get("alpha", "bravo", port, timeout_s=WAIT_S)
    assert not isinstance(failed.value, TimeoutError)
    refused = lab.events("tcp_refused", src="alpha", dst="bravo", dport=port)
    assert refused
    assert refused[0].fields["reason"] == f"firewall rule {rule.id} rejects tcp/{port}"

    lab.world.firewall_remove(rule.id)
    assert (await lab.http_get("alpha", "bravo", port, timeout_s=WAIT_S))["host"] == "bravo"


async def test_tcp_drop_rule_makes_http_hang_until_the_client_timeout_g_r6(
    proxy_lab: Lab,
) -> None:
    """G-R6: a tcp drop rule swallows the connection attempt: the request hangs until the
    client gives up, nothing is refused; removing the rule restores HTTP."""
    lab = proxy_lab
    port = await lab.http_server("bravo")
    rule = lab.world.firewall_add("tcp", f"{port}-{port}", action="drop", dst="bravo")

    with pytest.raises(TimeoutError):
        await lab.http_get("alpha", "bravo", port, timeout_s=HANG_TIMEOUT_S)
    assert not lab.events("tcp_refused")

    lab.world.firewall_remove(rule.id)
    assert (await lab.http_get("alpha", "bravo", port, timeout_s=WAIT_S))["host"] == "bravo"


# ------------------------------------------------------------------ clock offset
async def test_clock_offset_reaches_the_hosts_runtime_clock_g_r3(proxy_lab: Lab) -> None:
    """G-R3: `set_clock_offset(alpha, 30)` makes the wall clock of alpha's `RealRuntime`
    (whose `RealClock` reads the world's clock file) about 30 s ahead of bravo's; setting
    it back to 0 brings them together again."""
    lab = proxy_lab
    clock_file = lab.world.clock_file
    assert clock_file is not None
    runtimes = {
        name: RealRuntime(
            lab.world.topology.host(name).address,
            lab.nets[name],
            data_dir=lab.state_dir / name,
            clock=RealClock(FileClockOffset(clock_file, name, interval_s=0.01)),
        )
        for name in ("alpha", "bravo")
    }

    def skew_s() -> float:
        return (runtimes["alpha"].clock.wall() - runtimes["bravo"].clock.wall()).total_seconds()

    async def until_skew(predicate: Callable[[float], bool]) -> float:
        """Poll (the clock file is polled too) until the skew satisfies `predicate`."""
        for _ in range(int(WAIT_S / 0.02)):
            if predicate(skew := skew_s()):
                return skew
            await asyncio.sleep(0.02)
        raise AssertionError(f"clock skew stayed at {skew_s():.3f} s")

    assert abs(skew_s()) < 1
    lab.world.set_clock_offset("alpha", 30)
    assert 29 <= await until_skew(lambda s: s >= 29) <= 31
    assert json.loads(clock_file.read_text()) == {"alpha": 30.0}
    lab.world.set_clock_offset("alpha", 0)
    assert abs(await until_skew(lambda s: abs(s) < 1)) < 1


# ------------------------------------------------------------- address fidelity
async def test_relay_preserves_the_senders_public_address(proxy_lab: Lab) -> None:
    """The server sees the client host's public IP as `request.remote`; a datagram's source
    is the sender's public address:port, and a reply to it goes back through the relay."""
    lab = proxy_lab
    port = await lab.http_server("bravo")
    body = await lab.http_get("alpha", "bravo", port, timeout_s=WAIT_S)
    assert body == {"host": "bravo", "remote": lab.ip("alpha")}
    assert lab.nets["alpha"].bind_ip != lab.ip("alpha")  # the node itself is on its private one

    alpha, alpha_inbox = await lab.udp("alpha")  # any free port
    bravo, bravo_inbox = await lab.udp("bravo", 4500)
    assert alpha.local[0] == lab.ip("alpha")
    alpha.send(b"ping", (lab.ip("bravo"), 4500))
    ping = await bravo_inbox.first(b"ping")
    assert ping.src == alpha.local

    bravo.send(b"pong", ping.src)
    pong = await alpha_inbox.first(b"pong")
    assert pong.src == (lab.ip("bravo"), 4500)
    replies = lab.events("udp_deliver", src="bravo", dst="alpha", dport=alpha.local[1])
    assert len(replies) == 1


# -------------------------------------------------------------------- hypothesis
@dataclass(frozen=True)
class Op:
    """One call on the World API and whether it must be accepted."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    valid: bool = True

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{'' if self.valid else 'INVALID '}world.{self.method}({', '.join(parts)})"


REMOVE_EXISTING = "firewall_remove_existing"  # resolved against the rules present then

hosts = st.sampled_from(HOSTS)
unknown_hosts = st.sampled_from(["nosuch", "", "ALPHA", "alpha ", "*"])
host_pairs = st.permutations(HOSTS).map(lambda p: (p[0], p[1]))

VALID_LINK: dict[str, st.SearchStrategy[Any]] = {
    "latency_ms": st.floats(0, 100),
    "jitter_ms": st.floats(0, 30),
    "loss": st.floats(0, 1),
    "duplicate": st.floats(0, 1),
    "reorder": st.floats(0, 1),
    "reorder_gap_ms": st.floats(0, 50),
    "rate_kbit": st.none() | st.floats(1, 100_000),
    "mtu_bytes": st.none() | st.integers(68, 65535),
    "down": st.booleans(),
}
BAD_LINK_VALUES: dict[str, list[Any]] = {
    "latency_ms": [-1.0, 60_000.5, math.nan, math.inf, True, "10"],
    "jitter_ms": [-0.1, 1e9, math.nan],
    "loss": [-0.01, 1.01, math.nan, "0.5"],
    "duplicate": [1.5, -1],
    "reorder": [2.0, math.inf],
    "reorder_gap_ms": [-5.0, 60_001.0],
    "rate_kbit": [0, 0.5, -10, math.nan],
    "mtu_bytes": [67, 65536, 1300.0, True, 0],
    "down": ["yes", 1, None],
    "latency": [10],  # unknown impairment names
    "bandwidth": [100],
}
bad_link_entry = st.sampled_from(sorted(BAD_LINK_VALUES)).flatmap(
    lambda name: st.tuples(st.just(name), st.sampled_from(BAD_LINK_VALUES[name]))
)
valid_changes = st.sampled_from(sorted(VALID_LINK)).flatmap(
    lambda name: st.fixed_dictionaries(
        {name: VALID_LINK[name]}, optional={k: v for k, v in VALID_LINK.items() if k != name}
    )
)


@st.composite
def valid_groups(draw: st.DrawFn) -> list[list[str]]:
    order = draw(st.permutations(HOSTS))
    named = order[: draw(st.integers(1, len(HOSTS)))]
    cuts = sorted(draw(st.sets(st.integers(1, len(named) - 1))) if len(named) > 1 else set())
    bounds = [0, *cuts, len(named)]
    return [list(named[lo:hi]) for lo, hi in itertools.pairwise(bounds)]


valid_ports = st.one_of(
    st.integers(1, 65535),
    st.tuples(st.integers(1, 65535), st.integers(0, 100)).map(
        lambda t: f"{t[0]}-{min(65535, t[0] + t[1])}"
    ),
    st.tuples(st.integers(1, 65535), st.integers(0, 100)).map(
        lambda t: (t[0], min(65535, t[0] + t[1]))
    ),
)
bad_ports = st.sampled_from([0, 65536, -1, "5-3", "abc", "", "4369-", "1-70000", (10, 5), (0, 4)])
firewall_ends = st.just("*") | hosts

valid_ops = st.one_of(
    st.builds(
        lambda pair, changes, both: Op("impair", pair, {**changes, "both": both}),
        host_pairs,
        valid_changes,
        st.booleans(),
    ),
    st.builds(lambda pair: Op("clear", pair), host_pairs),
    st.builds(lambda groups: Op("partition", tuple(groups)), valid_groups()),
    st.just(Op("heal")),
    st.just(Op("reset")),
    st.builds(
        lambda proto, ports, action, src, dst: Op(
            "firewall_add", (proto, ports), {"action": action, "src": src, "dst": dst}
        ),
        st.sampled_from(["udp", "tcp", "any"]),
        valid_ports,
        st.sampled_from(["drop", "reject"]),
        firewall_ends,
        firewall_ends,
    ),
    st.builds(lambda i: Op(REMOVE_EXISTING, (i,)), st.integers(0, 10)),
    st.builds(
        lambda host, offset: Op("set_clock_offset", (host, offset)),
        hosts,
        st.floats(-1e6, 1e6) | st.sampled_from([0, 30, -30]),
    ),
)

invalid_ops = st.one_of(
    st.builds(
        lambda pair, changes, bad: Op("impair", pair, {**changes, bad[0]: bad[1]}, valid=False),
        host_pairs,
        st.fixed_dictionaries({}, optional=VALID_LINK),
        bad_link_entry,
    ),
    st.builds(
        lambda host, unknown, changes, swap: Op(
            "impair", (unknown, host) if swap else (host, unknown), changes, valid=False
        ),
        hosts,
        unknown_hosts,
        valid_changes,
        st.booleans(),
    ),
    st.builds(lambda host, ch: Op("impair", (host, host), ch, valid=False), hosts, valid_changes),
    st.builds(lambda pair: Op("impair", pair, valid=False), host_pairs),  # nothing to change
    st.builds(
        lambda host, unknown: Op("clear", (host, unknown), valid=False), hosts, unknown_hosts
    ),
    st.sampled_from(
        [
            Op("partition", valid=False),
            Op("partition", ([],), valid=False),
            Op("partition", (["alpha"], []), valid=False),
            Op("partition", (["alpha", "bravo"], ["bravo"]), valid=False),
            Op("partition", (["alpha"], ["nosuch"]), valid=False),
        ]
    ),
    st.builds(
        lambda proto, ports: Op("firewall_add", (proto, ports), valid=False),
        st.sampled_from(["udp", "tcp"]),
        bad_ports,
    ),
    st.builds(
        lambda proto, action, unknown: Op(
            "firewall_add", (proto, 4370), {"action": action, "dst": unknown}, valid=False
        ),
        st.sampled_from(["udp", "tcp", "icmp", "UDP"]),
        st.sampled_from(["drop", "accept", "DROP"]),
        unknown_hosts.filter(lambda h: h != "*"),
    ),
    st.builds(lambda rule_id: Op("firewall_remove", (rule_id,), valid=False), st.integers(-5, 0)),
    st.builds(
        lambda host, offset: Op("set_clock_offset", (host, offset), valid=False),
        hosts,
        st.sampled_from([math.nan, math.inf, -math.inf, 1e9, -1e9, "30", True, None]),
    ),
    st.builds(lambda host: Op("set_clock_offset", (host, 5), valid=False), unknown_hosts),
)


class Traffic:
    """Datagrams between every pair and HTTP requests to bravo, until stopped."""

    def __init__(self, lab: Lab, ends: dict[str, RealDatagramEndpoint], http_port: int) -> None:
        self.lab = lab
        self.ends = ends
        self.http_port = http_port
        self.stopping = asyncio.Event()
        self.sent = 0
        self.requests = 0
        self._tasks = [asyncio.create_task(self._datagrams()), asyncio.create_task(self._http())]

    async def _datagrams(self) -> None:
        sizes = (20, 700, 1400)
        while not self.stopping.is_set():
            for src in HOSTS:
                for dst in HOSTS:
                    size = sizes[self.sent % len(sizes)]
                    if src == dst or size > self.ends[src].mtu_bytes - IPV4_UDP_OVERHEAD:
                        continue
                    self.ends[src].send(b"t" * size, self.ends[dst].local)
                    self.sent += 1
            await asyncio.sleep(0.002)

    async def _http(self) -> None:
        clients = ("alpha", "charlie")
        while not self.stopping.is_set():
            src = clients[self.requests % len(clients)]
            self.requests += 1
            # impairments may well break a request; the relay must survive regardless
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
                await self.lab.http_get(src, "bravo", self.http_port, timeout_s=0.2)

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), WAIT_S)


def check_step(lab: Lab, op: Op, before: dict[str, Any], error: ImpairmentError | None) -> None:
    after = lab.world.show()
    if op.valid:
        assert error is None, f"{op!r} was refused: {error}"
        assert after["generation"] > before["generation"]
    else:
        assert error is not None, f"{op!r} was accepted"
        assert after == before, f"{op!r} was refused but changed the world"
    assert lab.world.clock_file is not None
    assert json.loads(lab.world.clock_file.read_text()) == after["clock_offsets"]


async def run_ops(lab_factory: LabFactory, ops: list[Op]) -> None:
    async with lab_factory(backend="proxy") as lab:
        ends = {host: (await lab.udp(host))[0] for host in HOSTS}
        port = await lab.http_server("bravo")
        traffic = Traffic(lab, ends, port)
        try:
            for op in ops:
                before = lab.world.show()
                if op.method == REMOVE_EXISTING:
                    rules = before["firewall"]
                    rule_id = rules[op.args[0] % len(rules)]["id"] if rules else 10_000
                    op = Op("firewall_remove", (rule_id,), valid=bool(rules))
                error = None
                try:
                    getattr(lab.world, op.method)(*op.args, **op.kwargs)
                except ImpairmentError as exc:
                    error = exc
                check_step(lab, op, before, error)
                await asyncio.sleep(0.01)  # traffic runs under the new state
        finally:
            await traffic.stop()

        lab.world.reset()
        state = lab.world.show()
        assert (state["links"], state["partition"], state["firewall"]) == ([], [], [])
        assert state["clock_offsets"] == {}
        alpha, alpha_inbox = await lab.udp("alpha")
        bravo, bravo_inbox = await lab.udp("bravo")
        alpha.send(b"after reset", bravo.local)
        ping = await bravo_inbox.first(b"after reset")
        bravo.send(b"reply", ping.src)
        await alpha_inbox.first(b"reply")
        body = await lab.http_get("alpha", "bravo", port, timeout_s=WAIT_S)
        assert body == {"host": "bravo", "remote": lab.ip("alpha")}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=st.lists(st.one_of(valid_ops, invalid_ops), max_size=15))
def test_any_sequence_of_impairment_changes_keeps_the_relay_running(
    lab_factory: LabFactory, ops: list[Op]
) -> None:
    """Any sequence of valid and invalid changes through the World API while datagrams and
    HTTP requests flow: invalid ones raise ImpairmentError and change nothing (`show()`
    equal before and after), valid ones are applied, the clock file always matches the
    offsets; after `reset` a datagram round trip and an HTTP request still work."""
    asyncio.run(run_ops(lab_factory, ops))


#: Malformed values of the wrong type or size: each is an ImpairmentError.
MALFORMED = [
    pytest.param(
        "firewall_add",
        ("udp", 4370.0),
        {},
        id="float-port",
    ),
    pytest.param(
        "firewall_add",
        ("udp", None),
        {},
        id="no-port",
    ),
    pytest.param(
        "firewall_add",
        ("udp", [4369, 4380]),
        {},
        id="list-ports",
    ),
    pytest.param(
        "impair",
        ("alpha", "bravo"),
        {"latency_ms": 10**400},
        id="huge-int-latency",
    ),
    pytest.param(
        "set_clock_offset",
        ("alpha", 10**400),
        {},
        id="huge-int-offset",
    ),
]


@pytest.mark.parametrize(("method", "args", "kwargs"), MALFORMED)
async def test_malformed_values_raise_impairment_error_and_change_nothing(
    proxy_lab: Lab, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    before = proxy_lab.world.show()
    with pytest.raises(ImpairmentError):
        getattr(proxy_lab.world, method)(*args, **kwargs)
    assert proxy_lab.world.show() == before
