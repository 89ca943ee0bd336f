"""Conference placement across the cluster in the simulated world (G-S3, G-B1, G-R8).

Three clustered peers, the VCS, a TelePresence Server (preferred pool) and an MCU
(overflow pool). Hypothesis draws calls to five conference aliases, hang-ups, peer
kills and restarts, and splits of a peer from the others (the links between peers
go down; the VCS and the bridges still reach everyone). Invariants:

- at every step no bridge holds more participants than it has ports;
- after everything heals and settles: every peer holds the same conference records;
  each conference lives on exactly one bridge; every connected participant is in a
  conference the cluster knows.

Each example starts from a copy of one lab set up once through the guide's
procedures, so examples stay cheap.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sim.cluster_lab import IPS
from tests.sim.conference_lab import BRIDGE_IPS, BRIDGE_PASSWORD, ConferenceLab
from tests.sim.vcs_lab import PASSWORD
from vcs_policy.core.calls import CallResult, Outcome

HOSTS = list(IPS)
EXAMPLES = int(os.environ.get("TPLAB_PLACEMENT_EXAMPLES", "6"))
PORTS = {"telepresence-server": 4, "mcu": 6}


@cache
def prepared_lab() -> Path:
    root = Path(tempfile.mkdtemp(prefix="tplab-conference-template-"))
    atexit.register(shutil.rmtree, root, True)  # made once per test session
    lab = ConferenceLab(data_root=root, ports=PORTS)
    try:
        lab.setup(poll_interval_s=2.0, request_timeout_s=1.0)
        lab.setup_conferences()
    finally:
        lab.close()
    return root


def bridge_conferences(lab: ConferenceLab) -> dict[str, set[str]]:
    """Bridge host -> the conference ids it holds, asked over its XML-RPC API."""
    out: dict[str, set[str]] = {}
    for host, ip in BRIDGE_IPS.items():
        method = "conference.enumerate" if host == "mcu" else "flex.conference.enumerate"
        key = "conferenceName" if host == "mcu" else "conferenceID"
        found: set[str] = set()
        params: dict[str, Any] = {}
        for _ in range(100):
            auth = {"authenticationUser": "admin", "authenticationPassword": BRIDGE_PASSWORD}
            answer = lab.xmlrpc(ip, method, {**auth, **params})
            found.update(str(c[key]) for c in answer.get("conferences", []))
            if "enumerateID" not in answer:
                break
            params = {"enumerateID": answer["enumerateID"]}
        out[host] = found
    return out


def split(lab: ConferenceLab, host: str, down: bool) -> None:
    """Links between `host` and the other peers go down (or up), both ways."""
    for other in HOSTS:
        if other != host:
            lab.sim.world.impair(host, other, down=down)
            lab.sim.world.impair(other, host, down=down)


actions = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.integers(0, 4)),
        st.tuples(st.just("hangup"), st.integers(0, 50)),
        st.tuples(st.just("kill"), st.sampled_from(HOSTS)),
        st.tuples(st.just("start"), st.sampled_from(HOSTS)),
        st.tuples(st.just("split"), st.sampled_from(HOSTS)),
        st.tuples(st.just("heal"), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 8)),
    ),
    min_size=5,
    max_size=30,
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(steps=actions)
def test_conferences_stay_on_one_bridge_whatever_happens(steps: list[tuple[str, Any]]) -> None:
    """G-S3: any peer answers as the failed one would; after a partition heals each
    conference lives on one bridge (the record's last writer wins, the loser's copy is
    destroyed); G-B1: both bridge kinds, never over capacity."""
    tmp = tempfile.mkdtemp(prefix="tplab-conference-example-")
    shutil.copytree(prepared_lab(), tmp, dirs_exist_ok=True)
    lab = ConferenceLab(data_root=Path(tmp), ports=PORTS)
    try:
        lab.wait(3)
        connected: list[CallResult] = []
        dead: set[str] = set()
        for action, arg in steps:
            if action == "call":
                result = lab.call(f"meet.{arg}@example.com")
                if result.outcome is Outcome.CONNECTED:
                    connected.append(result)
            elif action == "hangup" and connected:
                lab.hang_up(connected.pop(arg % len(connected)))
            elif action == "kill" and arg not in dead and len(dead) < 2:
                lab.kill(arg)
                dead.add(arg)
            elif action == "start" and arg in dead:
                lab.start(arg, settle_s=0.5)
                dead.discard(arg)
            elif action == "split":
                split(lab, arg, True)
            elif action == "heal":
                for host in HOSTS:
                    split(lab, host, False)
            elif action == "wait":
                lab.wait(arg)
            for host, bridge in lab.bridges.items():
                summary = bridge.status()
                assert summary["ports"]["used"] <= PORTS[host], (host, summary)
        for host in HOSTS:
            split(lab, host, False)
        for host in sorted(dead):
            lab.start(host, settle_s=0.5)
        lab.wait(20)
        records = [lab.nodes[h].conferences.records() for h in HOSTS]
        assert records[0] == records[1] == records[2], records
        held = bridge_conferences(lab)
        for name, record in records[0].items():
            host = next(h for h, ip in BRIDGE_IPS.items() if lab.bridge_name(ip) == record.bridge)
            assert record.bridge_id in held[host], (name, record, held)
        known = {(r.bridge, r.bridge_id) for r in records[0].values()}
        for host, conferences in held.items():
            name = lab.bridge_name(BRIDGE_IPS[host])
            assert {(name, c) for c in conferences} <= known, (host, conferences, known)
        for host, counts in lab.participants().items():
            name = lab.bridge_name(BRIDGE_IPS[host])
            assert {(name, c) for c in counts} <= known, (host, counts, known)
    finally:
        lab.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_an_empty_conference_ends_after_the_configured_time() -> None:
    """G-S3: the peer that created a conference destroys it on its bridge, and the
    cluster forgets it, once it has had no participant for *End a conference left
    empty after* seconds; a participant in time keeps it."""
    tmp = tempfile.mkdtemp(prefix="tplab-conference-example-")
    shutil.copytree(prepared_lab(), tmp, dirs_exist_ok=True)
    lab = ConferenceLab(data_root=Path(tmp), ports=PORTS)
    lab.passwords = dict.fromkeys(HOSTS, PASSWORD)  # set when the template lab was made
    try:
        lab.wait(3)
        status, answer = lab.api(
            "conductor-initial", "PUT", "/api/v1/conference/policy", {"empty_conference_end_s": 6}
        )
        assert status == 200, answer
        lab.wait(2)
        first = lab.call("meet.1@example.com")
        assert first.outcome is Outcome.CONNECTED, first
        record = lab.nodes["conductor-initial"].conferences.records()["meeting 1"]
        lab.hang_up(first)
        lab.wait(3)  # empty for less than 6 s: a new participant keeps it
        again = lab.call("meet.1@example.com")
        assert again.bridge == first.bridge
        assert lab.nodes["conductor-initial"].conferences.records()["meeting 1"] == record
        lab.hang_up(again)
        lab.wait(12)
        for host in HOSTS:
            assert "meeting 1" not in lab.nodes[host].conferences.records(), host
        host = next(h for h, ip in BRIDGE_IPS.items() if ip == first.bridge)
        assert record.bridge_id not in bridge_conferences(lab)[host]
    finally:
        lab.close()
        shutil.rmtree(tmp, ignore_errors=True)
