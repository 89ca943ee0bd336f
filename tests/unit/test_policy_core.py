"""The Conductor's policy decisions (`peers.core.policy`): pure, no event loop.

Checklist: G-V2 (a search rule's request is allowed when a conference alias
matches, rejected 404 when none does), G-P3 (failed policy logins are logged,
throttled).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peers.core.policy import (
    OTHER_SOURCES,
    ConferenceAlias,
    FailureReport,
    FailureThrottle,
    Outcome,
    PolicyCounters,
    Role,
    Verdict,
    answer_policy,
    decide,
    expand,
    load_aliases,
    template_groups,
    validate_alias,
)
from peers.core.settings import SettingErrors
from vcs_policy.wire import Action, PolicyRequest, evaluate_cpl
from vcs_policy.wire.policy import MAX_BODY_BYTES

FORM = "application/x-www-form-urlencoded"


def alias(name: str, pattern: str, template: str = r"\0", **extra: Any) -> ConferenceAlias:
    return validate_alias(
        {"name": name, "incoming_alias": pattern, "conference_name": template, **extra}
    )


def search(destination: str) -> PolicyRequest:
    return PolicyRequest(
        POLICY_TYPE="SEARCH", METHOD="INVITE", PROTOCOL="SIP", DESTINATION_ALIAS=destination
    )


# ------------------------------------------------------------------ aliases
def test_validate_alias_fills_defaults_and_canonicalises() -> None:
    got = validate_alias(
        {"name": " meet ", "incoming_alias": r"meet\.(.*)@x", "conference_name": r"m-\1 "}
    )
    assert got.to_json() == {
        "name": "meet",
        "incoming_alias": r"meet\.(.*)@x",
        "conference_name": r"m-\1",
        "priority": 100,
        "role": "chairperson",
        "may_create": True,
        "template": "",
    }
    form = validate_alias(
        {
            "name": "m",
            "incoming_alias": "x",
            "conference_name": "c",
            "priority": " 7 ",
            "role": "guest",
            "may_create": "no",
        }
    )
    assert (form.priority, form.role, form.may_create) == (7, Role.GUEST, False)


def test_validate_alias_reports_every_error_by_label_in_field_order() -> None:
    with pytest.raises(SettingErrors) as caught:
        validate_alias(
            {
                "name": "Meet",
                "incoming_alias": "(",
                "conference_name": r"\1",
                "priority": 0,
                "role": "host",
                "may_create": "maybe",
                "colour": "red",
            },
            others=["meet"],
        )
    messages = [str(e) for e in caught.value.errors]
    assert messages == [
        "Name: an alias named 'Meet' already exists",
        "Incoming alias (must use regex): is not a valid regular expression: "
        "missing ), unterminated subpattern at position 0",
        "Priority: must be between 1 and 65534 (got 0)",
        "Role: must be one of chairperson, guest",
        "Allow conference creation: must be yes or no",
        "colour: unknown field",
    ]


@pytest.mark.parametrize(
    ("pattern", "template", "words"),
    [
        ("meet", r"c-\1", "uses group \\1 but the incoming alias regex has no groups"),
        ("(a)(b)", r"\1\2\3", "uses group \\3 but the incoming alias regex has only 2 group(s)"),
        ("(a)", "c\\", "a backslash must be followed"),
        ("(a)", r"c\n", "a backslash must be followed"),
    ],
)
def test_conference_name_templates_must_fit_the_regex(
    pattern: str, template: str, words: str
) -> None:
    with pytest.raises(SettingErrors) as caught:
        alias("a", pattern, template)
    assert words in caught.value.by_key()["conference_name"]


def test_strict_types_for_json() -> None:
    base = {"name": "a", "incoming_alias": "x", "conference_name": "c"}
    for field, value in (("priority", "5"), ("priority", 5.0), ("may_create", "yes")):
        with pytest.raises(SettingErrors) as caught:
            validate_alias({**base, field: value}, strict_types=True)
        assert list(caught.value.by_key()) == [field]


def test_templates_expand_groups_and_escaped_backslashes() -> None:
    match = re.fullmatch(r"(\w+)\.(\w+)?@x", "meet.@x")
    assert match is not None
    assert template_groups(r"a\1b\\2\0") == [1, 0]
    assert expand(r"conf-\1-\2-\\-\0", match) == "conf-meet--\\-meet.@x"


def test_load_aliases_orders_by_priority_then_name_and_skips_bad_values() -> None:
    stored = [
        alias("b", "x", priority=5).to_json(),
        alias("a", "x", priority=5).to_json(),
        alias("z", "x", priority=1).to_json(),
        {"name": "broken", "incoming_alias": "(", "conference_name": "c"},
        "not an alias",
        None,
    ]
    assert [a.name for a in load_aliases(stored)] == ["z", "a", "b"]


# ------------------------------------------------------------------ decisions (G-V2)
def test_first_matching_alias_by_priority_allows_the_call_g_v2() -> None:
    aliases = [
        alias("catch-all", "(.*)", r"\1", priority=50),
        alias("meet", r"meet\.(.+)@example\.com", r"meeting-\1", priority=10, role="guest"),
        alias("meet-b", r"meet\.(.+)@example\.com", r"other-\1", priority=10),
    ]
    decision = decide(search("sip:Meet.Bob@EXAMPLE.com"), aliases)
    assert decision.verdict is Verdict.ALLOWED
    assert decision.alias is not None
    assert decision.alias.name == "meet"  # ties by name
    assert decision.conference_name == "meeting-Bob"
    assert decision.role is Role.GUEST
    assert decision.destination == "Meet.Bob@EXAMPLE.com"
    assert evaluate_cpl(decision.cpl(), search("meet.bob@example.com")).action is Action.ALLOW
    fallback = decide(search("someone@else"), aliases)
    assert fallback.alias is not None
    assert fallback.alias.name == "catch-all"


def test_no_match_rejects_404_conference_not_found_g_v2() -> None:
    aliases = [alias("meet", r"meet\.(.+)@example\.com", r"m-\1")]
    for destination in ("meet.bob@example.com.evil", "xmeet.bob@example.com", "sips:meet.a@b"):
        decision = decide(search(destination), aliases)
        assert decision.verdict is Verdict.REJECTED
        result = evaluate_cpl(decision.cpl(), search(destination))
        assert (result.action, result.status, result.reason) == (
            Action.REJECT,
            404,
            "Conference not found",
        )
    assert decide(search("meet.a@example.com"), []).verdict is Verdict.REJECTED


def test_an_empty_conference_name_does_not_match() -> None:
    aliases = [alias("a-empty", "(x?)@empty", r"\1", priority=1), alias("b", ".*", "c")]
    decision = decide(search("@empty"), aliases)
    assert decision.alias is not None
    assert decision.alias.name == "b"
    assert decide(search("x@empty"), aliases).conference_name == "x"


# ------------------------------------------------------------------ answers
def test_answer_policy_statuses() -> None:
    aliases = [alias("meet", "meet.*")]
    ok = answer_policy(FORM, search("meet.a@b").encode(), aliases)
    assert (ok.status, ok.outcome) == (200, Outcome.ALLOWED)
    assert ok.content_type.startswith("text/xml")
    rejected = answer_policy(FORM.upper(), search("other@b").encode(), aliases)
    assert (rejected.status, rejected.outcome) == (200, Outcome.REJECTED)
    assert answer_policy("application/json", b"{}", aliases).status == 415
    assert answer_policy(FORM, b"a" * (MAX_BODY_BYTES + 1), aliases).status == 413
    assert answer_policy(FORM, b"POLICY_TYPE=SEARCH", aliases).status == 400
    registration = PolicyRequest(POLICY_TYPE="REGISTRATION", PROTOCOL="SIP", ALIAS="a@b")
    answer = answer_policy(FORM, registration.encode(), aliases)
    assert answer.status == 400
    assert "search rule requests only" in answer.text
    assert answer.outcome is Outcome.BAD_REQUEST


@given(body=st.binary(max_size=300), content_type=st.text(max_size=40))
def test_answer_policy_takes_any_input(body: bytes, content_type: str) -> None:
    """Every decoder parses or refuses: any bytes, any content type, never an exception."""
    answer = answer_policy(content_type, body, [alias("all", ".*")])
    assert answer.status in (200, 400, 413, 415)
    answer = answer_policy(FORM, body, [alias("all", ".*")])
    assert answer.status in (200, 400, 413)
    assert (answer.status == 200) == (answer.outcome is not Outcome.BAD_REQUEST)


# ------------------------------------------------------------------ counters, throttle
def test_counters() -> None:
    counters = PolicyCounters()
    counters.policy_answered(Outcome.ALLOWED, "t1")
    counters.policy_answered(Outcome.REJECTED, "t2")
    counters.policy_answered(Outcome.BAD_REQUEST, "t3")
    counters.status_answered("t4")
    assert counters.as_json() == {
        "answered": 2,
        "allowed": 1,
        "rejected": 1,
        "bad_requests": 1,
        "refused": 0,
        "status_polls": 1,
        "last_request": "t2",
        "last_status_poll": "t4",
    }


def test_failure_throttle_reports_first_then_one_count_per_window_g_p3() -> None:
    throttle = FailureThrottle(window_s=60.0)
    assert throttle.failed("10.0.0.1", "admin", 0.0) == FailureReport("10.0.0.1", "admin", 1)
    assert throttle.failed("10.0.0.2", "bob", 1.0) == FailureReport("10.0.0.2", "bob", 1)
    for t in range(2, 12):
        assert throttle.failed("10.0.0.1", f"u{t}", float(t)) is None
    assert throttle.next_deadline() == 60.0
    assert throttle.on_timer(59.0) == []
    assert throttle.on_timer(61.5) == [FailureReport("10.0.0.1", "u11", 10)]
    assert throttle.next_deadline() == 121.5  # 10.0.0.2 was quiet: forgotten
    assert throttle.on_timer(122.0) == []
    assert throttle.next_deadline() is None
    # a window that ended without a timer: the held count comes with the next failure
    assert throttle.failed("10.0.0.3", "a", 200.0) is not None
    assert throttle.failed("10.0.0.3", "a", 210.0) is None
    assert throttle.failed("10.0.0.3", "a", 300.0) == FailureReport("10.0.0.3", "a", 2)


def test_failure_throttle_bounds_its_sources() -> None:
    throttle = FailureThrottle(window_s=60.0, max_sources=2)
    assert throttle.failed("a", "u", 0.0) is not None
    assert throttle.failed("b", "u", 0.0) is not None
    # full: further sources share one window
    assert throttle.failed("c", "u", 0.0) == FailureReport(OTHER_SOURCES, "u", 1)
    assert throttle.failed("d", "v", 1.0) is None
    assert throttle.on_timer(60.0) == [FailureReport(OTHER_SOURCES, "v", 1)]
