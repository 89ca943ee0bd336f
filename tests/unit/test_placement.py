"""The pure placement core: which bridge a conference goes to (G-S3, G-B1, G-R8)."""

from __future__ import annotations

from peers.core.placement import (
    Bridge,
    BridgeHealth,
    BridgeKind,
    ConferenceRecord,
    Create,
    Join,
    NoCapacity,
    Pool,
    ServicePreference,
    Template,
    conference_uri,
    ended_from,
    place,
    reconcile,
)

TS, MCU = BridgeKind.TELEPRESENCE_SERVER, BridgeKind.MCU
BRIDGES = {
    "ts1": Bridge("ts1", TS, "10.0.0.1", "HTTPS", 8443, "admin", ""),
    "ts2": Bridge("ts2", TS, "10.0.0.2", "HTTPS", 8443, "admin", ""),
    "mcu1": Bridge("mcu1", MCU, "10.0.0.3", "HTTP", 8080, "admin", ""),
}
POOLS = {
    "TS": Pool("TS", TS, ("ts1", "ts2")),
    "MCU": Pool("MCU", MCU, ("mcu1",)),
}
PREFERENCES = {"Meetings": ServicePreference("Meetings", ("TS", "MCU"))}
TEMPLATE = Template("Meeting", "Meetings")


def decide(
    health: dict[str, BridgeHealth], records: dict[str, ConferenceRecord] | None = None
) -> object:
    return place(
        "team call",
        TEMPLATE,
        records=records or {},
        bridges=BRIDGES,
        pools=POOLS,
        preferences=PREFERENCES,
        health=health,
    )


def ok(free: int) -> BridgeHealth:
    return BridgeHealth(True, True, free)


def test_first_pool_then_most_free_ports() -> None:
    """A new conference goes to the first pool of the preference with room, on the bridge
    with the most free ports."""
    decision = decide({"ts1": ok(2), "ts2": ok(5), "mcu1": ok(40)})
    assert isinstance(decision, Create)
    assert decision.bridge.name == "ts2"
    assert decision.uri == conference_uri("team call") == "team.call"


def test_full_or_unreachable_pool_overflows_to_the_next() -> None:
    """G-R8: a bridge that does not answer or is full is skipped."""
    down = BridgeHealth(False, False, 0, "no answer")
    decision = decide({"ts1": down, "ts2": ok(0), "mcu1": ok(3)})
    assert isinstance(decision, Create)
    assert decision.bridge.name == "mcu1"
    assert isinstance(decide({"ts1": down, "ts2": ok(0), "mcu1": ok(0)}), NoCapacity)


def test_an_existing_conference_stays_on_its_bridge_even_when_full() -> None:
    """G-S3: every peer answers with the conference's bridge; a full bridge keeps its
    conferences, a dead one has them placed again."""
    record = ConferenceRecord("team call", "ts1", "team.call", "id-1", "conductor-2")
    decision = decide({"ts1": ok(0)}, {"team call": record})
    assert decision == Join(record)
    gone = decide({"ts1": BridgeHealth(False, False, 0), "ts2": ok(4)}, {"team call": record})
    assert isinstance(gone, Create)
    assert gone.bridge.name == "ts2"


def test_reconcile_destroys_only_my_copies_that_lost() -> None:
    mine = ConferenceRecord("a", "ts1", "a", "id-1", "me")
    same = ConferenceRecord("b", "ts1", "b", "id-2", "me")
    other = ConferenceRecord("c", "ts1", "c", "id-3", "someone")
    winner = ConferenceRecord("a", "mcu1", "a", "a", "someone")
    losers = reconcile("me", [mine, same, other], {"a": winner, "b": same, "c": other})
    assert losers == [mine]


def test_reconcile_keeps_a_copy_with_no_record_until_the_record_is_ended() -> None:
    """A peer that has just joined may not have the cluster's record yet, and another
    peer may have adopted its conference: no record is no reason to destroy it (G-P6);
    a deleted record (ended) is."""
    mine = ConferenceRecord("a", "ts1", "a", "id-1", "me")
    assert reconcile("me", [mine], {}) == []
    assert reconcile("me", [mine], {}, ended={"a"}) == [mine]
    assert ended_from([("conference:a", True), ("conference:b", False), ("x:c", True)]) == {"a"}
