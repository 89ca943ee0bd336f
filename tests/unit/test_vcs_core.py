"""The VCS's pure cores: policy-service health and failover order, search rules,
configuration validation, call statistics (G-V1, G-V2, G-V3, G-V4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vcs_policy.core.calls import CallResult, CallStats, Outcome
from vcs_policy.core.config import (
    LOCAL_ZONE,
    ConfigErrors,
    PolicyService,
    SearchRule,
    validate_rule,
    validate_service,
)
from vcs_policy.core.health import ServerStatus, ServiceHealth
from vcs_policy.core.search import direct_address, matching_rules

WALL = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def service(*servers: str, interval: float = 60.0) -> PolicyService:
    padded = (*servers, "", "", "")[:3]
    return PolicyService("Conductors", servers=padded, poll_interval_s=interval)  # type: ignore[arg-type]


def test_every_server_is_polled_at_start_then_every_interval() -> None:
    """G-V3: polls at start and every poll interval (60 s by default, as the product)."""
    health = ServiceHealth(service("10.0.0.1", "10.0.0.2"), now=100.0)
    assert health.next_deadline() == 100.0
    due = health.due_polls(100.0)
    assert [s.address for s in due] == ["10.0.0.1", "10.0.0.2"]
    assert health.next_deadline() is None  # both in flight: polls never overlap
    assert health.due_polls(200.0) == []
    for server in due:
        health.poll_done(server, True, "", WALL)
    assert health.next_deadline() == 160.0


def test_status_lines_active_with_last_communication_or_failed() -> None:
    """G-V3 / G-P3: green "Active. Last communication: TIME" or red "Failed"."""
    health = ServiceHealth(service("10.0.0.1", "10.0.0.2"), now=0.0)
    one, two = health.due_polls(0.0)
    change = health.poll_done(one, True, "", WALL)
    assert change is not None
    assert change.status is ServerStatus.ACTIVE
    assert one.line() == "Active. Last communication: 2026-11-30 12:00:00"
    change = health.poll_done(two, False, "HTTP 401", WALL)
    assert change is not None
    assert change.reason == "HTTP 401"
    assert two.line() == "Failed"
    assert health.poll_done(two, False, "HTTP 401", WALL) is None  # no change, no event


def test_requests_go_to_the_lowest_healthy_server_failed_ones_last() -> None:
    """G-V4: Server 1, then 2, then 3, skipping failed ones; failed servers are tried
    only after every healthy one (tplab's last resort before the Default CPL)."""
    health = ServiceHealth(service("a", "b", "c"), now=0.0)
    a, b, c = health.servers
    assert health.attempt_order() == [a, b, c]
    health.request_done(a, False, "cannot connect", WALL)
    assert health.attempt_order() == [b, c, a]
    assert health.in_use() is b
    health.poll_done(a, True, "", WALL)
    assert health.attempt_order() == [a, b, c]


@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=30))
def test_attempt_order_lists_every_server_once_healthy_first(
    events: list[tuple[int, bool]],
) -> None:
    health = ServiceHealth(service("a", "b", "c"), now=0.0)
    for index, ok in events:
        health.request_done(health.servers[index], ok, "" if ok else "x", WALL)
    order = health.attempt_order()
    assert sorted(s.slot for s in order) == [1, 2, 3]
    healthy = [s.healthy for s in order]
    assert healthy == sorted(healthy, reverse=True)
    assert [s.slot for s in order if s.healthy] == sorted(s.slot for s in order if s.healthy)


def test_empty_server_slots_are_not_servers() -> None:
    """G-V1: up to three addresses; an empty Server 2 keeps Server 3's slot number."""
    health = ServiceHealth(service("a", "", "c"), now=0.0)
    assert [(s.slot, s.address) for s in health.servers] == [(1, "a"), (3, "c")]


def test_search_rules_by_priority_and_pattern_types() -> None:
    """G-V2: rules match by pattern type, protocol and state, lowest priority first."""
    rules = [
        SearchRule("z-any", priority=50, pattern_type="Regex", pattern=".*"),
        SearchRule("exact", priority=10, pattern_type="Exact", pattern="meet@example.com"),
        SearchRule("prefix", priority=20, pattern_type="Prefix", pattern="meet"),
        SearchRule("suffix", priority=20, pattern_type="Suffix", pattern="@example.com"),
        SearchRule("h323", priority=1, protocol="H323", pattern=".*"),
        SearchRule("off", priority=1, pattern=".*", enabled=False),
    ]
    names = [r.name for r in matching_rules(rules, "sip:MEET@example.com", "SIP")]
    assert names == ["exact", "prefix", "suffix", "z-any"]
    assert [r.name for r in matching_rules(rules, "other@x", "H323")] == ["h323", "z-any"]


def test_direct_address_only_for_ip_hosts() -> None:
    assert direct_address("meeting@127.1.3.10") == "127.1.3.10"
    assert direct_address("sip:m@127.1.3.10:5060;transport=tcp") == "127.1.3.10"
    assert direct_address("meet@example.com") is None
    assert direct_address("12345") is None


def test_service_validation_names_every_bad_field() -> None:
    with pytest.raises(ConfigErrors) as caught:
        validate_service(
            {
                "name": "",
                "protocol": "FTP",
                "servers": ["10.0.0.1", "bad host!", "10.0.0.1:99999"],
                "password": "x" * 31,
                "default_cpl": "<time-switch/>",
                "poll_interval_s": -1,
                "username": "ad:min",
            }
        )
    fields = caught.value.fields()
    for name in ("name", "protocol", "server2", "server3", "password", "default_cpl",
                 "poll_interval_s", "username"):  # fmt: skip
        assert name in fields, fields
    assert fields["server2"].startswith("Server 2 address:")


def test_service_url_joins_path_and_default_port() -> None:
    svc = validate_service({"name": "C", "servers": ["127.1.2.4", "h.example.com:9443"]})
    assert svc.url(svc.servers[0], svc.path) == "https://127.1.2.4:8443/pdp/policy"
    assert svc.url(svc.servers[1], "/pdp/status") == "https://h.example.com:9443/pdp/status"


def test_rule_validation() -> None:
    with pytest.raises(ConfigErrors) as caught:
        validate_rule(
            {"name": "r", "pattern": "(", "target": "nowhere", "priority": 0}, (LOCAL_ZONE,)
        )
    assert set(caught.value.fields()) == {"pattern", "target", "priority"}
    rule = validate_rule({"name": "r", "pattern": "a.*", "priority": "7"}, (LOCAL_ZONE,))
    assert rule.priority == 7
    assert rule.target == LOCAL_ZONE


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "protocol",
                "servers",
                "path",
                "status_path",
                "username",
                "password",
                "default_cpl",
                "poll_interval_s",
                "verify_certificate",
                "server1",
            ]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=40),
            st.lists(st.text(max_size=20), max_size=4),
        ),
    )
)
def test_service_validation_never_crashes(data: dict[str, object]) -> None:
    """Any field values: a valid service or ConfigErrors naming fields, nothing else."""
    errors: list[object] = []
    try:
        validate_service(data)
    except ConfigErrors as exc:
        errors = list(exc.errors)
        assert errors


def test_call_stats_add_up() -> None:
    stats = CallStats()
    for i in range(10):
        outcome = Outcome.CONNECTED if i % 3 else Outcome.REJECTED
        stats.record(CallResult(str(i), "a", "b", "SIP", outcome, setup_ms=float(i), via="s1",
                                default_cpl=outcome is Outcome.REJECTED))  # fmt: skip
    summary = stats.summary()
    assert summary["total"] == 10
    assert summary["connected"] + summary["rejected"] + summary["failed"] == 10
    assert summary["default_cpl"] == 4
    assert summary["setup_ms_p50"] is not None
