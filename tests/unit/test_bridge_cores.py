"""The bridge cores (G-B1): the TelePresence MCU (cisco-behaviour.md 3.2) and the
TelePresence Server in remotely managed mode (3.3) as pure state machines.

No event loop: each test drives `handle(method, params, now)` and the signalling
calls directly and advances `now` by hand. Every method is exercised, with paging,
wrong credentials, capacity and the drill state, and every fault code some input
can trigger; hypothesis runs random operation sequences against the invariants
(ports in use never exceed the bridge's; a refused call changes nothing).
"""

from __future__ import annotations

import copy
import random
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridges.core import CallRefused, Fault, McuCore, TsCore
from bridges.core.common import CURSOR_TTL_S, PAGE_SIZE
from bridges.wire import DateTime, encode_result

IP = "127.62.1.11"
AUTH = {"authenticationUser": "admin", "authenticationPassword": ""}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def mcu(ports: int = 10, **kwargs: Any) -> McuCore:
    return McuCore(ip=IP, ports=ports, serial="SM00000001", **kwargs)


def ts(ports: int = 10, seed: int = 1, **kwargs: Any) -> TsCore:
    return TsCore(ip=IP, ports=ports, serial="TS00000001", rng=random.Random(seed), **kwargs)


def call(core: McuCore | TsCore, method: str, *, now: float = 0.0, **params: Any) -> dict[str, Any]:
    result = core.handle(method, {**AUTH, **params}, now)
    encode_result(result)  # every result is something XML-RPC can carry
    return result


def faults(core: McuCore | TsCore, method: str, *, now: float = 0.0, **params: Any) -> int:
    """The fault code `method` is refused with; the core's state is left as it was."""
    before = copy.deepcopy(state(core))
    with pytest.raises(Fault) as caught:
        core.handle(method, {**AUTH, **params}, now)
    assert state(core) == before
    assert caught.value.text
    return caught.value.code


def state(core: McuCore | TsCore) -> Any:
    if isinstance(core, McuCore):
        return (core.conferences, core.calls, core.full, core.healthy)
    return (core.conferences, core.participants, core.calls, core.full, core.healthy)


def page_all(core: McuCore | TsCore, method: str, key: str, **params: Any) -> list[list[Any]]:
    pages, enumerate_id = [], None
    while True:
        extra = {} if enumerate_id is None else {"enumerateID": enumerate_id}
        result = call(core, method, **params, **extra)
        pages.append(result[key])
        enumerate_id = result.get("enumerateID")
        if enumerate_id is None:
            return pages


# ------------------------------------------------------------ authentication
@pytest.mark.parametrize("make", [mcu, ts])
def test_authentication_on_every_call(make: Any) -> None:
    """cisco-behaviour 3.1: every call carries authenticationUser (case-sensitive) and
    authenticationPassword (ignored when the user has none)."""
    open_core = make()
    assert open_core.handle("device.query", {"authenticationUser": "admin"}, 0)
    assert open_core.handle(
        "device.query", {"authenticationUser": "admin", "authenticationPassword": "any"}, 0
    )
    core = make(password="s3cret")
    good = {"authenticationUser": "admin", "authenticationPassword": "s3cret"}
    assert core.handle("device.query", good, 0)["serial"]
    for bad in (
        {"authenticationUser": "Admin", "authenticationPassword": "s3cret"},
        {"authenticationUser": "admin", "authenticationPassword": "S3cret"},
        {"authenticationUser": "admin", "authenticationPassword": ""},
        {"authenticationUser": "admin"},
        {"authenticationUser": "root", "authenticationPassword": "s3cret"},
    ):
        with pytest.raises(Fault) as caught:
            core.handle("device.query", bad, 0)
        assert caught.value.code == 15
        assert caught.value.text.startswith("insufficient privileges")
    with pytest.raises(Fault) as caught:
        core.handle("device.query", {}, 0)
    assert (caught.value.code, caught.value.text) == (
        101,
        "missing parameter - authenticationUser",
    )
    with pytest.raises(Fault) as caught:
        core.handle("device.query", {"authenticationUser": 1}, 0)
    assert caught.value.code == 103
    with pytest.raises(Fault) as caught:
        core.handle("device.query", {**good, "authenticationPassword": ["s3cret"]}, 0)
    assert caught.value.code == 103
    # authentication comes first: an unknown method is not revealed to a stranger
    with pytest.raises(Fault) as caught:
        core.handle("no.such", {"authenticationUser": "x"}, 0)
    assert caught.value.code == 15


@pytest.mark.parametrize("make", [mcu, ts])
def test_unknown_methods_are_fault_1(make: Any) -> None:
    core = make()
    for method in ("no.such", "conference.delete", "", "device.query ", "DEVICE.QUERY"):
        assert faults(core, method) == 1
    other = "flex.conference.create" if isinstance(core, McuCore) else "conference.create"
    assert faults(core, other, conferenceName="x") == 1


# ------------------------------------------------------------------- MCU
def test_mcu_device_query_reports_versions_and_capacity() -> None:
    core = mcu(ports=12)
    result = call(core, "device.query", now=5.0)
    assert result["apiVersion"] == "2.9"
    assert result["serial"] == "SM00000001"
    assert result["model"]
    assert result["softwareVersion"]
    assert result["buildVersion"]
    assert (result["totalVideoPorts"], result["usedVideoPorts"]) == (12, 0)
    assert result["healthy"] is True
    assert result["uptimeSeconds"] == 5
    call(core, "conference.create", conferenceName="a", reservedVideoPorts=3)
    call(core, "conference.create", conferenceName="b")
    call(core, "participant.add", conferenceName="b", participantName="p", address="10.0.0.1")
    assert call(core, "device.query")["usedVideoPorts"] == 4
    core.set_drill(full=True)
    assert call(core, "device.query")["usedVideoPorts"] == 12  # the full drill: no free port


def test_health_queries_report_the_healthy_drill() -> None:
    for core in (mcu(), ts()):
        health = call(core, "device.health.query")
        assert health["healthy"] is True
        assert health["operationalStatus"] == "active"
        assert health["currentTemperature"] == health["worstTemperature"] == "ok"
        core.set_drill(healthy=False)
        health = call(core, "device.health.query")
        assert health["healthy"] is False
        assert health["operationalStatus"] == "faulty"
        assert health["currentTemperature"] == health["currentVoltages"] == "critical"
        assert call(core, "device.query")["healthy"] is False
        core.set_drill(healthy=True)
        health = call(core, "device.health.query")
        assert health["currentTemperature"] == "ok"
        assert health["worstTemperature"] == "critical"  # worst since the bridge started


def test_mcu_conference_create_status_modify_destroy() -> None:
    core = mcu()
    start = DateTime("20260101T09:00:00")
    assert call(
        core,
        "conference.create",
        conferenceName="Board",
        numericId="8001",
        pin="1234",
        description="weekly",
        registerWithGatekeeper=True,
        registerWithSIPRegistrar=True,
        private=True,
        startTime=start,
        durationSeconds=3600,
        maximumVideoPorts=6,
        reservedVideoPorts=2,
        maximumAudioPorts=4,
        reservedAudioPorts=1,
        templateName="",
        unknownField="ignored",
    ) == {"status": "operation successful"}
    status = call(core, "conference.status", conferenceName="Board")
    assert status["conferenceName"] == "Board"
    assert status["conferenceActive"] is True
    assert (status["numericId"], status["pin"], status["description"]) == ("8001", "1234", "weekly")
    assert status["private"]
    assert status["registerWithGatekeeper"]
    assert status["startTime"].value == start.value
    assert (status["maximumVideoPorts"], status["reservedVideoPorts"]) == (6, 2)
    assert status["durationSeconds"] == 3600
    call(core, "conference.modify", conferenceName="Board", newConferenceName="Board2", pin="")
    assert faults(core, "conference.status", conferenceName="Board") == 4
    assert call(core, "conference.status", conferenceName="Board2")["pin"] == ""
    call(core, "conference.destroy", conferenceName="Board2")
    assert faults(core, "conference.destroy", conferenceName="Board2") == 4
    assert call(core, "conference.enumerate") == {"conferences": []}


def test_mcu_conference_faults() -> None:
    """Faults 2, 4, 6, 8, 11, 12, 13, 17, 18, 27, 102, 103, 104 from conference input."""
    core = mcu(ports=5)
    call(core, "conference.create", conferenceName="a" * 31, numericId="1")
    create = "conference.create"
    assert faults(core, create) == 8
    assert faults(core, create, conferenceName="") == 8
    assert faults(core, create, conferenceName=7) == 103
    assert faults(core, create, conferenceName="a" * 32) == 102  # MCU strings are < 32
    assert faults(core, create, conferenceName="tab\there") == 102
    assert faults(core, create, conferenceName="a" * 31) == 2
    assert faults(core, create, conferenceName="b", numericId="1") == 18
    assert faults(core, create, conferenceName="b", numericId="12a") == 102
    assert faults(core, create, conferenceName="b", numericId=12) == 103
    assert faults(core, create, conferenceName="b", pin="12a") == 13
    assert faults(core, create, conferenceName="b", startTime="20260101T09:00:00") == 103
    assert faults(core, create, conferenceName="b", startTime=DateTime("2026-01-01")) == 11
    assert faults(core, create, conferenceName="b", startTime=DateTime("20261301T09:00:00")) == 11
    assert faults(core, create, conferenceName="b", durationSeconds=-1) == 12
    assert faults(core, create, conferenceName="b", durationSeconds=2**31) == 12
    assert faults(core, create, conferenceName="b", durationSeconds="1") == 103
    assert faults(core, create, conferenceName="b", maximumVideoPorts=81) == 102
    assert faults(core, create, conferenceName="b", maximumVideoPorts=-1) == 102
    assert faults(core, create, conferenceName="b", maximumVideoPorts=True) == 103
    assert (
        faults(core, create, conferenceName="b", maximumVideoPorts=2, reservedVideoPorts=3) == 104
    )
    assert (
        faults(core, create, conferenceName="b", maximumAudioPorts=1, reservedAudioPorts=2) == 104
    )
    assert faults(core, create, conferenceName="b", reservedVideoPorts=6) == 17
    assert faults(core, create, conferenceName="b", templateName="HD") == 27
    assert faults(core, create, conferenceName="b", private="yes") == 103
    assert faults(core, create, conferenceName="b", description="d" * 32) == 102
    assert faults(core, "conference.status") == 8
    assert faults(core, "conference.status", conferenceName="nope") == 4
    many = mcu(ports=1)
    for index in range(200):
        call(many, create, conferenceName=f"c{index}")
    assert faults(many, create, conferenceName="c200") == 6


def test_mcu_conference_modify_faults() -> None:
    """Faults 2, 4, 8, 17, 18, 25 from conference.modify; a refused modify changes nothing."""
    core = mcu(ports=4)
    call(core, "conference.create", conferenceName="a", numericId="1")
    call(core, "conference.create", conferenceName="b", numericId="2")
    for name in ("p1", "p2"):
        call(core, "participant.add", conferenceName="a", participantName=name, address="x")
    modify = "conference.modify"
    assert faults(core, modify) == 8
    assert faults(core, modify, conferenceName="zz") == 4
    assert faults(core, modify, conferenceName="a", newConferenceName="b") == 2
    assert faults(core, modify, conferenceName="a", newConferenceName="") == 8
    assert faults(core, modify, conferenceName="a", numericId="2") == 18
    assert faults(core, modify, conferenceName="a", maximumVideoPorts=1) == 25
    assert faults(core, modify, conferenceName="a", reservedVideoPorts=5) == 17
    assert faults(core, modify, conferenceName="a", pin="1", durationSeconds=-5) == 12
    call(core, modify, conferenceName="a", numericId="1", newConferenceName="a")  # itself
    call(core, modify, conferenceName="a", maximumVideoPorts=4, reservedVideoPorts=4)
    assert call(core, "device.query")["usedVideoPorts"] == 4
    assert (
        faults(core, "participant.add", conferenceName="b", participantName="q", address="x") == 7
    )


def test_mcu_participants_add_enumerate_remove() -> None:
    core = mcu()
    call(core, "conference.create", conferenceName="c")
    call(
        core,
        "participant.add",
        conferenceName="c",
        participantName="room1",
        address="room1@example.com",
        participantProtocol="sip",
        participantType="by_address",
        displayNameOverrideValue="Room One",
    )
    call(core, "participant.add", conferenceName="c", participantName="room2", address="10.0.0.2")
    result = call(core, "participant.enumerate", operationScope=["currentState", "configuredState"])
    entries = {p["participantName"]: p for p in result["participants"]}
    assert entries["room1"]["participantProtocol"] == "sip"
    assert entries["room2"]["participantProtocol"] == "h323"  # the MCU's default
    state_ = entries["room1"]["currentState"]
    assert state_["callState"] == "connected"
    assert state_["displayName"] == "Room One"
    assert entries["room1"]["configuredState"]["address"] == "room1@example.com"
    assert "configuredState" not in call(core, "participant.enumerate")["participants"][0]
    assert call(core, "participant.enumerate", enumerateFilter="disconnected") == {
        "participants": []
    }
    assert (
        len(call(core, "participant.enumerate", enumerateFilter="connected")["participants"]) == 2
    )
    call(core, "participant.remove", conferenceName="c", participantName="room1")
    assert [p["participantName"] for p in call(core, "participant.enumerate")["participants"]] == [
        "room2"
    ]


def test_mcu_participant_faults() -> None:
    """Faults 3, 4, 5, 7, 8, 9, 10, 19, 20, 102, 103 from participant input."""
    core = mcu(ports=3)
    call(core, "conference.create", conferenceName="c", maximumVideoPorts=2)
    add = "participant.add"
    base: dict[str, Any] = {"conferenceName": "c", "participantName": "p", "address": "10.0.0.1"}
    call(core, add, **base)
    assert faults(core, add, **{**base, "conferenceName": "nope"}) == 4
    assert faults(core, add, participantName="q", address="x") == 8
    assert faults(core, add, conferenceName="c", address="x") == 9
    assert faults(core, add, conferenceName="c", participantName="", address="x") == 9
    assert faults(core, add, conferenceName="c", participantName="q") == 10
    assert faults(core, add, conferenceName="c", participantName="q", address="") == 10
    assert faults(core, add, **base) == 3
    assert faults(core, add, **{**base, "participantName": "q", "participantProtocol": "vnc"}) == 19
    assert faults(core, add, **{**base, "participantName": "q", "participantProtocol": "x"}) == 19
    assert faults(core, add, **{**base, "participantName": "q", "participantType": "by_name"}) == 20
    assert faults(core, add, **{**base, "participantName": "q", "participantType": "ad_hoc"}) == 20
    assert faults(core, add, **{**base, "participantName": "q" * 32}) == 102
    assert faults(core, add, **{**base, "participantName": "q", "address": 5}) == 103
    call(core, add, **{**base, "participantName": "q"})
    assert faults(core, add, **{**base, "participantName": "r"}) == 7  # conference limit 2
    remove = "participant.remove"
    assert faults(core, remove, conferenceName="c") == 9
    assert faults(core, remove, participantName="p") == 8
    assert faults(core, remove, conferenceName="c", participantName="zz") == 5
    assert (
        faults(core, remove, conferenceName="c", participantName="p", participantProtocol="sip")
        == 5
    )
    assert (
        faults(core, remove, conferenceName="c", participantName="p", participantType="ad_hoc") == 5
    )
    call(
        core,
        remove,
        conferenceName="c",
        participantName="p",
        participantProtocol="h323",
        participantType="by_address",
    )
    enumerate_ = "participant.enumerate"
    assert faults(core, enumerate_, operationScope="currentState") == 103
    assert faults(core, enumerate_, operationScope=[1]) == 103
    assert faults(core, enumerate_, operationScope=["everything"]) == 102
    assert faults(core, enumerate_, enumerateFilter="sleeping") == 102


def test_mcu_capacity_full_ports_and_the_full_drill() -> None:
    """Capacity in ports: every participant takes one; reserved ports stay held for
    their conference; the full drill refuses new participants with fault 7."""
    core = mcu(ports=3)
    call(core, "conference.create", conferenceName="held", reservedVideoPorts=2)
    call(core, "conference.create", conferenceName="open")
    call(core, "participant.add", conferenceName="open", participantName="a", address="x")
    assert (
        faults(core, "participant.add", conferenceName="open", participantName="b", address="x")
        == 7
    )
    call(core, "participant.add", conferenceName="held", participantName="a", address="x")
    call(core, "participant.add", conferenceName="held", participantName="b", address="x")
    assert (
        faults(core, "participant.add", conferenceName="held", participantName="c", address="x")
        == 7
    )
    call(core, "participant.remove", conferenceName="open", participantName="a")
    core.set_drill(full=True)
    assert (
        faults(core, "participant.add", conferenceName="open", participantName="b", address="x")
        == 7
    )
    assert faults(core, "conference.create", conferenceName="r", reservedVideoPorts=1) == 17
    call(core, "conference.create", conferenceName="plain")  # conferences without ports: fine
    core.set_drill(full=False)
    call(core, "participant.add", conferenceName="open", participantName="b", address="x")


def test_mcu_conference_enumerate_pages() -> None:
    """Paging: PAGE_SIZE per page, enumerateID only when more follow, IDs single-use."""
    core = mcu()
    for index in range(25):
        call(core, "conference.create", conferenceName=f"c{index:02}")
    pages = page_all(core, "conference.enumerate", "conferences")
    assert [len(p) for p in pages] == [PAGE_SIZE, PAGE_SIZE, 5]
    names = [c["conferenceName"] for p in pages for c in p]
    assert names == [f"c{i:02}" for i in range(25)]
    assert {"conferenceType", "conferenceActive", "numericId", "pin"} <= set(pages[0][0])
    first = call(core, "conference.enumerate")
    enumerate_id = first["enumerateID"]
    call(core, "conference.destroy", conferenceName="c10")  # gone before the next page
    second = call(core, "conference.enumerate", enumerateID=enumerate_id)
    assert second["conferences"][0]["conferenceName"] == "c11"
    assert faults(core, "conference.enumerate", enumerateID=enumerate_id) == 16  # used
    assert faults(core, "conference.enumerate", enumerateID="nonsense") == 16
    assert faults(core, "conference.enumerate", enumerateID=1) == 103
    assert faults(core, "participant.enumerate", enumerateID=second["enumerateID"]) == 16
    stale = call(core, "conference.enumerate", now=100.0)["enumerateID"]
    assert faults(core, "conference.enumerate", now=100.0 + CURSOR_TTL_S, enumerateID=stale) == 16
    assert (
        len(call(core, "conference.enumerate", enumerateFilter="!completed")["conferences"]) == 10
    )
    assert call(core, "conference.enumerate", enumerateFilter="completed") == {"conferences": []}
    assert (
        len(call(core, "conference.enumerate", enumerateFilter="completed|active")["conferences"])
        == 10
    )
    assert faults(core, "conference.enumerate", enumerateFilter="bogus") == 102
    assert faults(core, "conference.enumerate", moreThanFour="yes") == 103


def test_mcu_participant_enumerate_pages_across_conferences() -> None:
    core = mcu(ports=40)
    for conference in ("a", "b", "c"):
        call(core, "conference.create", conferenceName=conference)
        for index in range(7):
            call(
                core,
                "participant.add",
                conferenceName=conference,
                participantName=f"p{index}",
                address="x",
            )
    pages = page_all(core, "participant.enumerate", "participants")
    assert [len(p) for p in pages] == [10, 10, 1]
    assert len({(p["conferenceName"], p["participantName"]) for page in pages for p in page}) == 21


# --------------------------------------------------------------------- TS
def test_ts_system_info_and_device_query() -> None:
    core = ts(ports=20)
    info = call(core, "system.info", now=3.0)
    assert info["operationMode"] == "flexible"  # remotely managed
    assert info["uptime"] == 3
    assert info["serial"] == "TS00000001"
    query = call(core, "device.query")
    assert query["apiVersion"]
    assert query["model"]
    assert query["softwareVersion"]
    assert (query["totalVideoPorts"], query["usedVideoPorts"], query["healthy"]) == (20, 0, True)


def test_ts_flex_conferences_create_enumerate_destroy() -> None:
    core = ts()
    result = call(
        core,
        "flex.conference.create",
        conferenceName="Weekly",
        URIs=[
            {"URI": "meet.1@example.com", "PIN": "4321", "callBandwidth": 2000000},
            {"URI": "80001"},
        ],
    )
    conference_id = result["conferenceID"]
    assert GUID.fullmatch(conference_id)
    (entry,) = call(core, "flex.conference.enumerate")["conferences"]
    assert entry["conferenceID"] == conference_id
    assert entry["conferenceName"] == "Weekly"
    assert entry["URIs"] == [
        {"URI": "meet.1@example.com", "PIN": "4321", "callBandwidth": 2000000},
        {"URI": "80001"},
    ]
    call(core, "flex.conference.create", conferenceName="NoUris")
    call(core, "flex.conference.destroy", conferenceID=conference_id)
    names = [c["conferenceName"] for c in call(core, "flex.conference.enumerate")["conferences"]]
    assert names == ["NoUris"]
    assert faults(core, "flex.conference.destroy", conferenceID=conference_id) == 4
    # the same seed gives the same GUIDs (simulated runs are reproducible)
    assert call(ts(), "flex.conference.create", conferenceName="x")["conferenceID"] == (
        conference_id
    )


def test_ts_flex_conference_faults() -> None:
    """Faults 2, 4, 6, 8, 13, 18, 35, 101, 102, 103 from flex conference input."""
    core = ts()
    create = "flex.conference.create"
    call(core, create, conferenceName="a", URIs=[{"URI": "100"}])
    assert faults(core, create) == 8
    assert faults(core, create, conferenceName="") == 8
    assert faults(core, create, conferenceName="n" * 81) == 35
    call(core, create, conferenceName="n" * 80)
    assert faults(core, create, conferenceName="a") == 2
    assert faults(core, create, conferenceName="b", URIs="100") == 103
    assert faults(core, create, conferenceName="b", URIs=["100"]) == 103
    assert faults(core, create, conferenceName="b", URIs=[{"PIN": "1"}]) == 101
    assert faults(core, create, conferenceName="b", URIs=[{"URI": ""}]) == 102
    assert faults(core, create, conferenceName="b", URIs=[{"URI": "u" * 256}]) == 35
    assert faults(core, create, conferenceName="b", URIs=[{"URI": "x", "PIN": "12a"}]) == 13
    assert faults(core, create, conferenceName="b", URIs=[{"URI": "100"}]) == 18
    assert faults(core, create, conferenceName="b", URIs=[{"URI": "x"}, {"URI": "x"}]) == 18
    assert (
        faults(core, create, conferenceName="b", URIs=[{"URI": f"u{i}"} for i in range(11)]) == 102
    )
    assert faults(core, create, conferenceName="b", URIs=[{"URI": "x", "callBandwidth": 0}]) == 102
    assert faults(core, "flex.conference.destroy") == 101
    assert faults(core, "flex.conference.destroy", conferenceID="nope") == 4
    assert faults(core, "flex.conference.destroy", conferenceID=5) == 103
    many = ts()
    for index in range(200):
        call(many, create, conferenceName=f"c{index}")
    assert faults(many, create, conferenceName="c200") == 6


def test_ts_flex_participants_create_enumerate_destroy() -> None:
    core = ts()
    first = call(core, "flex.conference.create", conferenceName="a")["conferenceID"]
    second = call(core, "flex.conference.create", conferenceName="b")["conferenceID"]
    created = call(
        core,
        "flex.participant.create",
        conferenceID=first,
        calls=[{"remoteAddress": "cascade@10.0.0.5", "protocol": "sip", "callBandwidth": 4000000}],
        cascadeRole="cascadeMaster",
        displayName="Cascade",
    )
    participant_id = created["participantID"]
    assert GUID.fullmatch(participant_id)
    call(
        core,
        "flex.participant.create",
        conferenceID=second,
        calls=[{"remoteAddress": "10.0.0.6", "protocol": "h323"}],
    )
    everyone = call(core, "flex.participant.enumerate")["participants"]
    assert len(everyone) == 2
    (mine,) = call(core, "flex.participant.enumerate", conferenceID=first)["participants"]
    assert mine["participantID"] == participant_id
    assert mine["state"] == "connected"
    assert mine["cascadeRole"] == "cascadeMaster"
    assert mine["displayName"] == "Cascade"
    assert mine["calls"][0]["remoteAddress"] == "cascade@10.0.0.5"
    assert mine["calls"][0]["incoming"] is False
    assert call(core, "device.query")["usedVideoPorts"] == 2
    call(core, "flex.participant.destroy", participantID=participant_id)
    assert call(core, "flex.participant.enumerate", conferenceID=first) == {"participants": []}
    call(core, "flex.conference.destroy", conferenceID=second)  # takes its participant along
    assert call(core, "flex.participant.enumerate") == {"participants": []}
    assert call(core, "device.query")["usedVideoPorts"] == 0


def test_ts_flex_participant_faults() -> None:
    """Faults 4, 5, 10, 17, 35, 101, 102, 103 from flex participant input."""
    core = ts(ports=1)
    conference_id = call(core, "flex.conference.create", conferenceName="a")["conferenceID"]
    create = "flex.participant.create"
    one = [{"remoteAddress": "x"}]
    assert faults(core, create, calls=one) == 101
    assert faults(core, create, conferenceID="nope", calls=one) == 4
    assert faults(core, create, conferenceID=conference_id) == 101
    assert faults(core, create, conferenceID=conference_id, calls={"remoteAddress": "x"}) == 103
    assert faults(core, create, conferenceID=conference_id, calls=[]) == 102
    assert faults(core, create, conferenceID=conference_id, calls=one * 5) == 102
    assert faults(core, create, conferenceID=conference_id, calls=[{}]) == 10
    assert faults(core, create, conferenceID=conference_id, calls=[{"remoteAddress": ""}]) == 10
    assert (
        faults(
            core,
            create,
            conferenceID=conference_id,
            calls=[{"remoteAddress": "x", "protocol": "vnc"}],
        )
        == 102
    )
    assert faults(core, create, conferenceID=conference_id, calls=one, cascadeRole="boss") == 102
    assert faults(core, create, conferenceID=conference_id, calls=one, displayName="d" * 81) == 35
    call(core, create, conferenceID=conference_id, calls=one)
    assert faults(core, create, conferenceID=conference_id, calls=one) == 17  # no free port
    assert faults(core, "flex.participant.destroy") == 101
    assert faults(core, "flex.participant.destroy", participantID="nope") == 5
    assert faults(core, "flex.participant.enumerate", conferenceID="nope") == 4
    big = ts(ports=5)
    conference_id = call(big, "flex.conference.create", conferenceName="a")["conferenceID"]
    big.set_drill(full=True)
    assert faults(big, create, conferenceID=conference_id, calls=one) == 17
    assert call(big, "device.query")["usedVideoPorts"] == 5


def test_ts_enumerations_page() -> None:
    core = ts(ports=30)
    ids = [
        call(core, "flex.conference.create", conferenceName=f"c{i}")["conferenceID"]
        for i in range(21)
    ]
    pages = page_all(core, "flex.conference.enumerate", "conferences")
    assert [len(p) for p in pages] == [10, 10, 1]
    assert [c["conferenceID"] for p in pages for c in p] == ids
    for _ in range(12):
        call(core, "flex.participant.create", conferenceID=ids[0], calls=[{"remoteAddress": "x"}])
    pages = page_all(core, "flex.participant.enumerate", "participants")
    assert [len(p) for p in pages] == [10, 2]
    first = call(core, "flex.participant.enumerate")["enumerateID"]
    assert faults(core, "flex.conference.enumerate", enumerateID=first) == 16
    assert faults(core, "flex.participant.enumerate", enumerateID="x") == 16


# ------------------------------------------------------------- signalling
def test_mcu_signalled_calls_join_by_name_or_numeric_id() -> None:
    core = mcu(ports=10)
    call(core, "conference.create", conferenceName="Board", numericId="8001")
    answer = core.incoming_call("call-1", "alice@example.com", f"8001@{IP}", "sip", 1.0)
    assert (answer.conference, answer.conference_name) == ("Board", "Board")
    answer2 = core.incoming_call("call-2", "bob@example.com", f"Board@{IP}:5060", "h323", 1.0)
    (alice, bob) = call(core, "participant.enumerate")["participants"]
    assert alice["participantName"] == answer.participant
    assert alice["participantType"] == "ad_hoc"
    assert alice["participantProtocol"] == "sip"
    assert alice["callID"] == "call-1"
    assert alice["currentState"]["callState"] == "connected"
    assert alice["currentState"]["address"] == "alice@example.com"
    assert bob["participantName"] == answer2.participant
    assert core.hang_up("call-1", 2.0) == answer
    assert [p["callID"] for p in call(core, "participant.enumerate")["participants"]] == ["call-2"]
    call(core, "participant.remove", conferenceName="Board", participantName=answer2.participant)
    with pytest.raises(CallRefused) as caught:
        core.hang_up("call-2", 3.0)
    assert caught.value.status == 404
    core.incoming_call("call-3", "carol", f"Board@{IP}", "sip", 4.0)
    call(core, "conference.destroy", conferenceName="Board")
    assert core.calls == {}


def refused(core: McuCore | TsCore, call_id: str, to: str) -> tuple[int, str]:
    before = copy.deepcopy(state(core))
    with pytest.raises(CallRefused) as caught:
        core.incoming_call(call_id, "caller@example.com", to, "sip", 0.0)
    assert state(core) == before
    return caught.value.status, caught.value.reason


def test_signalled_calls_refused_with_sip_like_statuses() -> None:
    """404 no such conference / not this bridge; 409 call id in use; 486 conference
    full; 503 no free port on the bridge (and under the full drill)."""
    core = mcu(ports=2)
    call(core, "conference.create", conferenceName="small", maximumVideoPorts=1)
    call(core, "conference.create", conferenceName="big")
    assert refused(core, "c", f"nope@{IP}") == (404, "no_such_conference")
    assert refused(core, "c", "big@10.9.9.9") == (404, "not_this_bridge")
    core.incoming_call("c1", "a", f"small@{IP}", "sip", 0.0)
    assert refused(core, "c1", f"big@{IP}") == (409, "duplicate_call")
    assert refused(core, "c2", f"small@{IP}") == (486, "conference_full")
    core.incoming_call("c2", "a", f"big@{IP}", "sip", 0.0)
    assert refused(core, "c3", f"big@{IP}") == (503, "bridge_full")
    core.hang_up("c2", 0.0)
    core.set_drill(full=True)
    assert refused(core, "c3", f"big@{IP}") == (503, "bridge_full")
    with pytest.raises(CallRefused) as caught:
        core.hang_up("never", 0.0)
    assert (caught.value.status, caught.value.reason) == (404, "no_such_call")
    server = ts(ports=1)
    call(server, "flex.conference.create", conferenceName="a", URIs=[{"URI": "100"}])
    server.incoming_call("t1", "a", f"100@{IP}", "sip", 0.0)
    assert refused(server, "t2", f"100@{IP}") == (503, "bridge_full")
    assert refused(server, "t2", f"101@{IP}") == (404, "no_such_conference")


def test_ts_signalled_calls_join_by_uri_name_or_id() -> None:
    core = ts()
    conference_id = call(
        core,
        "flex.conference.create",
        conferenceName="Weekly",
        URIs=[{"URI": "meet.1@example.com"}, {"URI": "80001"}],
    )["conferenceID"]
    for index, to in enumerate(
        [
            f"80001@{IP}",
            f"meet.1@{IP}",
            "meet.1@example.com",
            f"meet.1@example.com@{IP}",
            f"Weekly@{IP}",
            f"{conference_id}@{IP}",
        ]
    ):
        answer = core.incoming_call(f"call-{index}", "alice@example.com", to, "sip", 0.0)
        assert (answer.conference, answer.conference_name) == (conference_id, "Weekly")
    participants = call(core, "flex.participant.enumerate", conferenceID=conference_id)
    assert len(participants["participants"]) == 6
    first = participants["participants"][0]
    assert first["state"] == "connected"
    assert first["calls"][0]["callID"] == "call-0"
    assert first["calls"][0]["incoming"] is True
    assert first["displayName"] == "alice"
    answer = core.hang_up("call-0", 1.0)
    assert answer.participant == first["participantID"]
    call(core, "flex.participant.destroy", participantID=core.calls["call-1"])
    assert "call-1" not in core.calls
    call(core, "flex.conference.destroy", conferenceID=conference_id)
    assert core.calls == {}
    assert core.participants == {}


# ------------------------------------------------------------- invariants
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 5), st.integers(0, 4)),
        st.tuples(st.just("destroy"), st.integers(0, 5), st.just(0)),
        st.tuples(st.just("add"), st.integers(0, 5), st.integers(0, 6)),
        st.tuples(st.just("remove"), st.integers(0, 5), st.integers(0, 6)),
        st.tuples(st.just("dial"), st.integers(0, 5), st.integers(0, 8)),
        st.tuples(st.just("bye"), st.integers(0, 8), st.just(0)),
        st.tuples(st.just("full"), st.booleans(), st.just(0)),
        st.tuples(st.just("modify"), st.integers(0, 5), st.integers(0, 4)),
    ),
    max_size=40,
)


@given(OPERATIONS)
def test_mcu_random_operations_keep_the_invariants(operations: list[tuple[Any, ...]]) -> None:
    """Ports in use never exceed the bridge's; participants never exceed a conference's
    limit; a refused call or signalled call changes nothing."""
    core = mcu(ports=6)
    for op, a, b in operations:
        before = copy.deepcopy(state(core))
        try:
            if op == "create":
                core.handle(
                    "conference.create",
                    {
                        **AUTH,
                        "conferenceName": f"c{a}",
                        "reservedVideoPorts": b,
                        "numericId": str(a),
                    },
                    0,
                )
            elif op == "modify":
                core.handle(
                    "conference.modify",
                    {**AUTH, "conferenceName": f"c{a}", "maximumVideoPorts": b},
                    0,
                )
            elif op == "destroy":
                core.handle("conference.destroy", {**AUTH, "conferenceName": f"c{a}"}, 0)
            elif op == "add":
                core.handle(
                    "participant.add",
                    {**AUTH, "conferenceName": f"c{a}", "participantName": f"p{b}", "address": "x"},
                    0,
                )
            elif op == "remove":
                core.handle(
                    "participant.remove",
                    {**AUTH, "conferenceName": f"c{a}", "participantName": f"p{b}"},
                    0,
                )
            elif op == "dial":
                core.incoming_call(f"k{b}", "x", f"{a}@{IP}", "sip", 0)
            elif op == "bye":
                core.hang_up(f"k{a}", 0)
            else:
                core.set_drill(full=a)
        except (Fault, CallRefused):
            assert state(core) == before
        assert core.ports_used() <= core.ports
        for conference in core.conferences.values():
            assert len(conference.participants) <= conference.limit
        for call_id, (conference_name, name) in core.calls.items():
            assert core.conferences[conference_name].participants[name].call_id == call_id
