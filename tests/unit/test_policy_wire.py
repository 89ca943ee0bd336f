"""The VCS external policy wire formats (G-V2): the form-encoded `PolicyRequest` and the
CPL answer a policy service gives - allow, reject or redirect.

Pure codecs, no event loop. Hand-written requests and documents pin the behaviour of
cisco-behaviour.md 1.5-1.7; hypothesis proves the module invariants: every decoder
returns a value or raises `RemoteProtocolError` for any input, valid requests
round-trip, the builders' documents evaluate to what they say, and a CPL document's
structural validity does not depend on the request it answers.
"""

from __future__ import annotations

import operator
import re
from dataclasses import fields
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape, quoteattr

import pytest
from defusedxml import DefusedXmlException
from hypothesis import given, settings
from hypothesis import strategies as st

from vcs_policy.wire.cpl import (
    ADDRESS_FIELDS,
    CPL_NS,
    DEFAULT_SEARCH_CPL,
    MAX_CPL_BYTES,
    MAX_DEPTH,
    PROXY_OUTCOMES,
    RULE_ATTRIBUTES,
    SUBFIELDS,
    TAA_NS,
    UNSUPPORTED,
    XSI_NS,
    Action,
    CplResult,
    cpl_allow,
    cpl_redirect,
    cpl_reject,
    evaluate_cpl,
    evaluate_default_cpl,
)
from vcs_policy.wire.errors import LocalProtocolError, RemoteProtocolError
from vcs_policy.wire.policy import (
    CHOICES,
    MAX_BODY_BYTES,
    MAX_FIELDS,
    MAX_VALUE_CHARS,
    METHODS,
    POLICY_TYPES,
    PROTOCOLS,
    SEARCH_METHODS,
    PolicyRequest,
)

PARAMETER_NAMES = tuple(f.name for f in fields(PolicyRequest))

SEARCH = PolicyRequest(
    POLICY_TYPE="SEARCH",
    METHOD="INVITE",
    PROTOCOL="SIP",
    DESTINATION_ALIAS="meet.bob@example.com",
    AUTHENTICATED="TRUE",
    AUTHENTICATED_SOURCE_ALIAS="alice@sales.example.com",
    UNAUTHENTICATED_SOURCE_ALIAS="mallory@example.org",
    AUTHENTICATION_USER_NAME="alice",
    REGISTERED_ALIAS="alice.desk@example.com",
    CLUSTER_NAME="vcs.example.com",
    GLOBAL_CALL_SERIAL_NUMBER="3f1c6a1e-0b7d-4d21-9d0c-6c3b2d1f7a10",
    LOCAL_CALL_SERIAL_NUMBER="b2c4e6f8-1a3b-4c5d-8e9f-a0b1c2d3e4f5",
    NETWORK_TYPE="IPV4",
    SOURCE_IP="10.1.5.20",
    SOURCE_PORT="5061",
    TRAVERSAL_TYPE="TYPE_UNDEF",
    UTCTIME="2026-11-30 10:04:42",
    ZONE_NAME="DefaultSubZone",
)
#: an H.323 call dialled as digits from an unauthenticated endpoint
H323 = PolicyRequest(
    POLICY_TYPE="SEARCH",
    METHOD="ARQ",
    PROTOCOL="H323",
    DESTINATION_ALIAS="5551234",
    UNAUTHENTICATED_SOURCE_ALIAS="room101",
    ZONE_NAME="TraversalZone",
)
#: nobody says who is calling
ANONYMOUS = PolicyRequest(
    POLICY_TYPE="SEARCH", METHOD="INVITE", PROTOCOL="SIP", DESTINATION_ALIAS="meet.bob@example.com"
)
REGISTRATION = PolicyRequest(
    POLICY_TYPE="REGISTRATION", METHOD="REGISTER", PROTOCOL="SIP", ALIAS="alice@example.com"
)
ADMIN = PolicyRequest(
    POLICY_TYPE="ADMIN", METHOD="SUBSCRIBE", PROTOCOL="SIP", DESTINATION_ALIAS="sip:presence@x"
)

# ---------------------------------------------------------------- CPL helpers
MATCHED = CplResult(Action.REJECT, 403, "matched")
ALLOWED = CplResult(Action.ALLOW, locations=("meet.bob@example.com",))


def cpl(body: str, *, prolog: bool = False) -> str:
    """A whole CPL document around `body` (the content of `taa:routed`)."""
    head = '<?xml version="1.0" encoding="UTF-8"?>\n' if prolog else ""
    return f'{head}<cpl xmlns="{CPL_NS}" xmlns:taa="{TAA_NS}"><taa:routed>{body}</taa:routed></cpl>'


def switch(field: str, test: str, operand: str, subfield: str | None = None) -> str:
    """An address-switch that rejects 403 "matched" when the test matches, else proxies."""
    sub = f" subfield={quoteattr(subfield)}" if subfield else ""
    return cpl(
        f"<address-switch field={quoteattr(field)}{sub}>"
        f'<address {test}={quoteattr(operand)}><reject status="403" reason="matched"/></address>'
        "<otherwise><proxy/></otherwise></address-switch>"
    )


def refused(document: str | bytes, request: PolicyRequest = SEARCH) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as caught:
        evaluate_cpl(document, request)
    return caught.value


# =========================================================== the policy request
def test_encode_sends_vendor_names_percent_encoded_and_omits_empty_parameters() -> None:
    body = ANONYMOUS.encode()
    assert body == (
        b"POLICY_TYPE=SEARCH&METHOD=INVITE&PROTOCOL=SIP&DESTINATION_ALIAS=meet.bob%40example.com"
    )


@pytest.mark.parametrize(
    "request_",
    [
        SEARCH,
        H323,
        ANONYMOUS,
        REGISTRATION,
        ADMIN,
        SEARCH.replace(
            DESTINATION_ALIAS="sip:Zoë Ångström+1@example.com",
            DESTINATION_ALIAS_PARAMS="transport=tls;x=a&b=c%20d",
            ZONE_NAME="  padded zone  ",
        ),
        PolicyRequest(
            POLICY_TYPE="USER", METHOD="PUBLISH", PROTOCOL="SIP", DESTINATION_ALIAS="日本@例え.jp"
        ),
    ],
    ids=["search", "h323", "anonymous", "registration", "admin", "specials", "user-unicode"],
)
def test_request_round_trips_through_the_form_body(request_: PolicyRequest) -> None:
    assert request_.problems() == []
    assert PolicyRequest.decode(request_.encode()) == request_


def test_decode_reads_the_body_a_vcs_sends_for_a_search_rule() -> None:
    body = (
        b"AUTHENTICATED=TRUE&AUTHENTICATED_SOURCE_ALIAS=alice%40example.com"
        b"&DESTINATION_ALIAS=meet.bob%40example.com&METHOD=INVITE&POLICY_TYPE=SEARCH"
        b"&PROTOCOL=SIP&SOURCE_IP=10.1.5.20&SOURCE_PORT=5061"
        b"&LOCAL_CALL_SERIAL_NUMBER=b2c4e6f8-1a3b-4c5d-8e9f-a0b1c2d3e4f5&ZONE_NAME=DefaultSubZone"
    )
    request = PolicyRequest.decode(body)
    assert request.DESTINATION_ALIAS == "meet.bob@example.com"
    assert request.source_alias == "alice@example.com"
    assert (request.POLICY_TYPE, request.METHOD, request.PROTOCOL) == ("SEARCH", "INVITE", "SIP")
    assert request.SOURCE_PORT == "5061"


def test_source_alias_prefers_the_authenticated_alias() -> None:
    assert SEARCH.source_alias == "alice@sales.example.com"
    assert H323.source_alias == "room101"
    assert ANONYMOUS.source_alias == ""


def test_decode_ignores_unknown_parameters_even_repeated() -> None:
    body = ANONYMOUS.encode() + b"&NEW_VCS_PARAMETER=x&NEW_VCS_PARAMETER=y&sip_lower=1&=z"
    assert PolicyRequest.decode(body) == ANONYMOUS


def test_decode_accepts_a_bytearray() -> None:
    assert PolicyRequest.decode(bytearray(ANONYMOUS.encode())) == ANONYMOUS


def _body(**changes: str) -> bytes:
    """The ANONYMOUS body with parameters replaced (or removed when given "")."""
    values = {"POLICY_TYPE": "SEARCH", "METHOD": "INVITE", "PROTOCOL": "SIP"}
    values["DESTINATION_ALIAS"] = "meet.bob@example.com"
    values.update(changes)
    return urlencode([(k, v) for k, v in values.items() if v]).encode()


@pytest.mark.parametrize(
    ("body", "message", "reason"),
    [
        (_body(POLICY_TYPE=""), "POLICY_TYPE is missing", "missing"),
        (b"", "POLICY_TYPE is missing", "missing"),
        (b"POLICY_TYPE=&" + _body(POLICY_TYPE=""), "POLICY_TYPE is missing", "malformed"),
        (_body(POLICY_TYPE="CALL"), "POLICY_TYPE must be one of", "malformed"),
        (_body(METHOD="BYE"), "METHOD must be one of", "malformed"),
        (_body(METHOD="invite"), "METHOD must be one of", "malformed"),
        (_body(METHOD="REGISTER"), "not sent by search rules", "malformed"),
        (_body(METHOD=""), "METHOD is missing", "malformed"),
        (_body(PROTOCOL=""), "PROTOCOL is missing", "malformed"),
        (_body(PROTOCOL="H.323"), "PROTOCOL must be one of", "malformed"),
        (_body(AUTHENTICATED="yes"), "AUTHENTICATED must be one of", "malformed"),
        (_body(DESTINATION_ALIAS=""), "DESTINATION_ALIAS is missing", "malformed"),
        (_body() + b"&METHOD=INVITE", "'METHOD' is given twice", "malformed"),
        (_body() + b"&ZONE_NAME=a&ZONE_NAME=", "'ZONE_NAME' is given twice", "malformed"),
        (_body() + "&ZONE_NAME=Zoë".encode(), "not form-encoded ASCII (byte", "malformed"),
        (_body() + b"&ZONE_NAME=%FF%FE", "not valid UTF-8", "malformed"),
        (_body() + b"&ZONE_NAME=%ED%A0%80", "not valid UTF-8", "malformed"),
        (_body() + b"&ZONE_NAME=%C3", "not valid UTF-8", "malformed"),
        (_body() + b"&ZONE_NAME=a%00b", "ZONE_NAME contains control characters", "malformed"),
        (_body() + b"&ZONE_NAME=a%0D%0AX: y", "ZONE_NAME contains control characters", "malformed"),
        (
            _body() + b"&ZONE_NAME=" + b"z" * (MAX_VALUE_CHARS + 1),
            f"ZONE_NAME is longer than {MAX_VALUE_CHARS}",
            "malformed",
        ),
        (
            _body() + b"&X=" + b"x" * MAX_BODY_BYTES,
            f"exceeds {MAX_BODY_BYTES}",
            "too_large",
        ),
        (
            _body() + b"".join(b"&X%d=1" % i for i in range(MAX_FIELDS)),
            "not form-encoded",
            "malformed",
        ),
        (_body() + b"&&ZONE_NAME=a", "not form-encoded", "malformed"),
        (_body() + b"&ZONE_NAME", "not form-encoded", "malformed"),
        (
            b"POLICY_TYPE=REGISTRATION&PROTOCOL=SIP&METHOD=REGISTER",
            "ALIAS is missing (required for POLICY_TYPE=REGISTRATION)",
            "malformed",
        ),
        (_body(SOURCE_PORT="65536"), "SOURCE_PORT must be a port number", "malformed"),
        (_body(SOURCE_PORT="-1"), "SOURCE_PORT must be a port number", "malformed"),
        (_body(SOURCE_PORT="50 61"), "SOURCE_PORT must be a port number", "malformed"),
        (_body(SOURCE_PORT="٥٠٦١"), "SOURCE_PORT must be a port number", "malformed"),
        (_body(UTCTIME="2026-11-30T10:04:42"), "UTCTIME must be", "malformed"),
        (_body(UTCTIME="2026-11-30 10:04"), "UTCTIME must be", "malformed"),
        (_body(UTCTIME="2026-02-30 10:04:42"), "UTCTIME must be", "malformed"),
        (_body(UTCTIME="2026-11-30 24:00:00"), "UTCTIME must be", "malformed"),
        (_body(UTCTIME="٢٠٢٦-11-30 10:04:42"), "UTCTIME must be", "malformed"),
        (_body(UTCTIME="1764497082"), "UTCTIME must be", "malformed"),
    ],
    ids=[
        "no-policy-type",
        "empty-body",
        "empty-policy-type-twice",
        "bad-policy-type",
        "bad-method",
        "lowercase-method",
        "register-in-a-search",
        "no-method",
        "no-protocol",
        "bad-protocol",
        "bad-boolean",
        "no-destination",
        "duplicate-parameter",
        "duplicate-with-empty-value",
        "non-ascii-body",
        "invalid-utf8",
        "utf8-surrogate",
        "truncated-utf8",
        "nul-in-value",
        "crlf-in-value",
        "value-too-long",
        "body-too-large",
        "too-many-fields",
        "empty-field",
        "field-without-equals",
        "registration-without-alias",
        "port-too-high",
        "port-negative",
        "port-with-space",
        "port-in-arabic-digits",
        "utctime-iso-t",
        "utctime-no-seconds",
        "utctime-no-such-day",
        "utctime-hour-24",
        "utctime-arabic-digits",
        "utctime-epoch",
    ],
)
def test_decode_refuses_with_a_clear_message(body: bytes, message: str, reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=re.escape(message)) as caught:
        PolicyRequest.decode(body)
    assert caught.value.reason == reason


def test_decode_refuses_what_is_not_bytes() -> None:
    with pytest.raises(RemoteProtocolError, match="must be bytes"):
        PolicyRequest.decode("POLICY_TYPE=SEARCH")  # type: ignore[arg-type]


#: three values of non-ASCII text at their longest encode to more than a body may carry
BIG_FIELDS = ("ZONE_NAME", "CLUSTER_NAME", "SOURCE_ADDRESS")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ANONYMOUS.replace(DESTINATION_ALIAS=""), "DESTINATION_ALIAS is missing"),
        (ANONYMOUS.replace(PROTOCOL=""), "PROTOCOL is missing"),
        (ANONYMOUS.replace(POLICY_TYPE=""), "POLICY_TYPE is missing"),
        (ANONYMOUS.replace(METHOD="BYE"), "METHOD must be one of"),
        (REGISTRATION.replace(ALIAS=""), "ALIAS is missing"),
        (ANONYMOUS.replace(ZONE_NAME="a\nb"), "ZONE_NAME contains control characters"),
        (ANONYMOUS.replace(ZONE_NAME="\ud800"), "ZONE_NAME is not valid Unicode text"),
        (ANONYMOUS.replace(SOURCE_PORT="http"), "SOURCE_PORT must be a port number"),
        (ANONYMOUS.replace(UTCTIME="2026-13-01 00:00:00"), "UTCTIME must be"),
        (ANONYMOUS.replace(ZONE_NAME=7), "ZONE_NAME must be text"),  # type: ignore[arg-type]
        (
            ANONYMOUS.replace(**dict.fromkeys(BIG_FIELDS, "é" * MAX_VALUE_CHARS)),
            f"more than {MAX_BODY_BYTES}",
        ),
    ],
    ids=[
        "no-destination",
        "no-protocol",
        "no-policy-type",
        "bad-method",
        "registration-without-alias",
        "newline",
        "lone-surrogate",
        "bad-port",
        "bad-utctime",
        "not-text",
        "encodes-too-large",
    ],
)
def test_encode_of_an_invalid_request_raises_local_protocol_error(
    request_: PolicyRequest, message: str
) -> None:
    with pytest.raises(LocalProtocolError, match=re.escape(message)):
        request_.encode()


# =============================================================== CPL: builders
def test_cpl_allow_evaluates_to_allow_to_the_original_destination() -> None:
    """G-V2: the policy service allows the call."""
    assert evaluate_cpl(cpl_allow(), SEARCH) == ALLOWED
    assert evaluate_cpl(cpl_allow(), REGISTRATION).locations == ("alice@example.com",)
    assert evaluate_cpl(cpl_allow(), SEARCH).describe() == "allowed"


def test_cpl_reject_evaluates_to_reject_with_status_and_reason() -> None:
    """G-V2: the policy service rejects the call."""
    result = evaluate_cpl(cpl_reject(404, "Conference not found"), SEARCH)
    assert result == CplResult(Action.REJECT, 404, "Conference not found")
    assert result.describe() == "rejected 404 Conference not found"
    tricky = "<&\"'> &amp; ]]> \u00a0"
    assert evaluate_cpl(cpl_reject(699, tricky), SEARCH).reason == tricky
    assert evaluate_cpl(cpl_reject(400, ""), SEARCH) == CplResult(Action.REJECT, 400, "")


def test_cpl_redirect_evaluates_to_redirect_to_the_url() -> None:
    """G-V2: the policy service redirects the call."""
    result = evaluate_cpl(cpl_redirect("meet.bob@10.1.3.10"), SEARCH)
    assert result == CplResult(Action.REDIRECT, locations=("meet.bob@10.1.3.10",))
    assert result.describe() == "redirected to meet.bob@10.1.3.10"
    assert evaluate_cpl(cpl_redirect('a"<&>@x'), SEARCH).locations == ('a"<&>@x',)


def test_cpl_redirect_to_the_original_destination_is_an_allow() -> None:
    assert evaluate_cpl(cpl_redirect("meet.bob@example.com"), SEARCH) == ALLOWED


@pytest.mark.parametrize(
    "build",
    [
        lambda: cpl_reject(399, "x"),
        lambda: cpl_reject(700, "x"),
        lambda: cpl_reject(True, "x"),
        lambda: cpl_reject("404", "x"),
        lambda: cpl_reject(404.0, "x"),
        lambda: cpl_reject(404, "two\r\nlines"),
        lambda: cpl_reject(404, "nul\x00"),
        lambda: cpl_reject(404, "\ud800"),
        lambda: cpl_redirect(""),
        lambda: cpl_redirect("a\nb@x"),
        lambda: cpl_redirect("a\ufffe@x"),
    ],
    ids=[
        "status-399",
        "status-700",
        "status-bool",
        "status-text",
        "status-float",
        "reason-crlf",
        "reason-nul",
        "reason-surrogate",
        "url-empty",
        "url-newline",
        "url-non-xml-char",
    ],
)
def test_builders_refuse_what_the_protocol_does_not_allow(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_documents_without_prolog_are_accepted_as_text_or_bytes() -> None:
    body = '<reject status="404" reason="Conference not found"/>'
    for document in (cpl(body), cpl(body, prolog=True)):
        for form in (document, document.encode(), bytearray(document.encode())):
            assert evaluate_cpl(form, SEARCH) == CplResult(
                Action.REJECT, 404, "Conference not found"
            )


def test_a_full_cpl_header_with_schema_location_is_accepted() -> None:
    document = (
        f'<cpl xmlns="{CPL_NS}" xmlns:taa="{TAA_NS}" xmlns:xsi="{XSI_NS}" '
        f'xsi:schemaLocation="{CPL_NS} cpl.xsd">\n  <!-- allow -->\n'
        "  <taa:routed>\n    <?note ignored?>\n    <proxy/>\n  </taa:routed>\n</cpl>"
    )
    assert evaluate_cpl(document, SEARCH) == ALLOWED


# ========================================================== CPL: address-switch
@pytest.mark.parametrize(
    ("request_", "field", "subfield", "test", "operand", "matches"),
    [
        (SEARCH, "destination", None, "is", "MEET.Bob@Example.COM", True),
        (SEARCH, "destination", None, "is", "meet.bob", False),
        (SEARCH, "destination", None, "contains", "BOB@", True),
        (SEARCH, "destination", None, "contains", "carol", False),
        (SEARCH, "destination", None, "subdomain-of", "example.com", True),
        (SEARCH, "destination", None, "subdomain-of", "ample.com", False),
        (
            SEARCH.replace(DESTINATION_ALIAS="x@eu.example.com"),
            "destination",
            None,
            "subdomain-of",
            "example.com",
            True,
        ),
        (H323, "destination", None, "subdomain-of", "555", True),
        (H323, "destination", None, "subdomain-of", "556", False),
        (SEARCH, "destination", None, "regex", r"meet\.[a-z]+@EXAMPLE\.com", True),
        (SEARCH, "destination", None, "regex", r"meet", False),
        (SEARCH, "original-destination", None, "is", "meet.bob@example.com", True),
        (REGISTRATION, "destination", None, "is", "alice@example.com", True),
        (SEARCH, "destination", "user", "is", "meet.bob", True),
        (SEARCH, "destination", "host", "subdomain-of", "example.com", True),
        (SEARCH, "destination", "alias-type", "is", "url-ID", True),
        (H323, "destination", "alias-type", "is", "dialedDigits", True),
        (H323, "destination", "tel", "is", "5551234", True),
        (H323, "destination", "address-type", "is", "h323", True),
        (SEARCH, "destination", "address-type", "is", "sip", True),
        (ADMIN, "destination", "user", "is", "presence", True),
        (SEARCH, "origin", None, "is", "alice@sales.example.com", True),
        (SEARCH, "origin", "user", "is", "alice", True),
        (SEARCH, "origin", "host", "is", "sales.example.com", True),
        (SEARCH, "origin", "host", "subdomain-of", "example.com", True),
        (SEARCH, "origin", "alias-type", "is", "url-ID", True),
        (H323, "origin", "alias-type", "is", "h323-ID", True),
        (H323, "origin", None, "is", "room101", True),
        (SEARCH, "authenticated-origin", "user", "is", "alice", True),
        (SEARCH, "unauthenticated-origin", "user", "is", "mallory", True),
        (SEARCH, "registered-origin", None, "contains", "desk", True),
        (SEARCH, "originating-user", None, "is", "ALICE", True),
        (SEARCH, "originating-zone", None, "regex", "default.*", True),
        (H323, "originating-zone", None, "is", "DefaultSubZone", False),
    ],
)
def test_address_switch_matches_fields_and_subfields(
    request_: PolicyRequest,
    field: str,
    subfield: str | None,
    test: str,
    operand: str,
    matches: bool,
) -> None:
    """G-V2: the policy service decides on who calls whom."""
    result = evaluate_cpl(switch(field, test, operand, subfield), request_)
    assert (result == MATCHED) is matches
    if not matches:
        assert result.action is Action.ALLOW


def test_not_present_is_taken_when_the_field_is_absent() -> None:
    document = cpl(
        '<address-switch field="origin">'
        '<not-present><reject status="403" reason="anonymous"/></not-present>'
        '<otherwise><reject status="404" reason="known"/></otherwise>'
        "</address-switch>"
    )
    assert evaluate_cpl(document, ANONYMOUS).reason == "anonymous"
    assert evaluate_cpl(document, SEARCH).reason == "known"


def test_branches_are_tried_in_order_and_otherwise_takes_the_rest() -> None:
    document = cpl(
        '<address-switch field="destination" subfield="host">'
        '<address is="example.org"><reject status="404" reason="org"/></address>'
        '<address subdomain-of="example.com"><reject status="403" reason="com"/></address>'
        '<address contains="example"><reject status="480" reason="late"/></address>'
        '<otherwise><reject status="486" reason="other"/></otherwise>'
        "</address-switch>"
    )
    assert evaluate_cpl(document, SEARCH).reason == "com"
    assert evaluate_cpl(document, H323).reason == "other"  # digits have no host


def test_an_address_switch_without_a_taken_branch_falls_through_to_the_next_node() -> None:
    document = cpl(
        '<address-switch field="destination"><address is="x"><proxy/></address></address-switch>'
        '<reject status="404" reason="after the switch"/>'
    )
    assert evaluate_cpl(document, SEARCH).reason == "after the switch"
    assert evaluate_cpl(cpl('<address-switch field="origin"/>'), SEARCH) == ALLOWED


# ============================================================ CPL: taa:location
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '<taa:location clear="yes" url="meet.bob@10.1.3.10"><proxy/></taa:location>',
            ("meet.bob@10.1.3.10",),
        ),
        (
            '<taa:location clear="no" url="backup@example.com"><proxy/></taa:location>',
            ("meet.bob@example.com", "backup@example.com"),
        ),
        (
            '<taa:location url="backup@example.com" priority="0.5"><proxy/></taa:location>',
            ("meet.bob@example.com", "backup@example.com"),
        ),
        (
            '<taa:location clear="yes" url="a@x" priority="random">'
            '<taa:location url="b@x" priority="random"><taa:location url="a@x"/>'
            "</taa:location></taa:location>",
            ("a@x", "b@x"),
        ),
        (
            r'<taa:location clear="yes" regex="(.*)@example\.com" '
            r'replace="\1@conductor.example.com"><proxy/></taa:location>',
            ("meet.bob@conductor.example.com",),
        ),
        (
            r'<taa:location clear="yes" regex="(MEET)\.([a-z]+)@.*" replace="\2.\1@x">'
            "<proxy/></taa:location>",
            ("bob.meet@x",),
        ),
        (
            r'<taa:location clear="yes" regex="(?P&lt;room&gt;[^@]+)@.*" '
            r'replace="\g&lt;room&gt;@y"><proxy/></taa:location>',
            ("meet.bob@y",),
        ),
        (
            r'<taa:location clear="yes" regex="meet|meet\.bob@example\.com" replace="room@x">'
            "<proxy/></taa:location>",
            ("room@x",),
        ),
    ],
    ids=[
        "clear-yes-url",
        "clear-no-appends",
        "default-appends",
        "forked-no-duplicates-no-proxy",
        "regex-replace-group",
        "regex-replace-two-groups",
        "regex-replace-named-group",
        "replace-uses-the-whole-match",
    ],
)
def test_location_builds_the_location_set_and_proxy_redirects_to_it(
    body: str, expected: tuple[str, ...]
) -> None:
    """G-V2: the policy service redirects the call."""
    assert evaluate_cpl(cpl(body), SEARCH) == CplResult(Action.REDIRECT, locations=expected)


def test_location_regex_that_does_not_match_leaves_the_original_destination() -> None:
    body = r'<taa:location clear="yes" regex="(.*)@example\.org" replace="\1@y"><proxy/>'
    body += "</taa:location>"
    assert evaluate_cpl(cpl(body), SEARCH) == ALLOWED


def test_location_regex_rewriting_the_destination_to_nothing_is_refused_at_run_time() -> None:
    body = r'<taa:location clear="yes" regex="(x*)meet.*" replace="\1"><proxy/></taa:location>'
    assert "rewrites 'meet.bob@example.com'" in str(refused(cpl(body)))
    # the same document is fine for a destination it rewrites to something
    assert evaluate_cpl(cpl(body), SEARCH.replace(DESTINATION_ALIAS="xxmeet@a")).locations == (
        "xx",
    )


# ============================================================ CPL: taa:rule-switch
RULES = cpl(
    "<taa:rule-switch>"
    '<taa:rule origin="bob@.*" destination=".*"><reject status="403" reason="first"/></taa:rule>'
    r'<taa:rule origin="ALICE@.*" destination="meet\..*">'
    '<reject status="404" reason="second"/></taa:rule>'
    '<taa:rule destination=".*"><reject status="480" reason="third"/></taa:rule>'
    "</taa:rule-switch>"
)


def test_rule_switch_runs_the_first_rule_whose_regexes_all_match() -> None:
    assert evaluate_cpl(RULES, SEARCH) == CplResult(Action.REJECT, 404, "second")
    assert evaluate_cpl(RULES, H323) == CplResult(Action.REJECT, 480, "third")


def test_rule_switch_without_a_matching_rule_falls_through() -> None:
    document = cpl(
        '<taa:rule-switch><taa:rule originating-zone="Traversal.*" message-regex=".*">'
        '<reject status="403" reason="zone"/></taa:rule></taa:rule-switch>'
        '<taa:location clear="yes" url="lobby@x"/>'
    )
    assert evaluate_cpl(document, H323).reason == "zone"
    assert evaluate_cpl(document, SEARCH).locations == ("lobby@x",)


def test_rule_switch_knows_every_rule_attribute() -> None:
    attributes = " ".join(f'{name}=".*"' for name in RULE_ATTRIBUTES)
    document = cpl(
        f'<taa:rule-switch><taa:rule {attributes}><reject status="403" reason="matched"/>'
        "</taa:rule></taa:rule-switch>"
    )
    assert evaluate_cpl(document, SEARCH) == MATCHED


# ========================================================== CPL: proxy and reject
def test_proxy_with_outcome_children_proxies_to_the_location_set() -> None:
    document = cpl(
        '<taa:location clear="yes" url="meet.bob@10.1.3.10">'
        '<proxy timeout="30" stop-on-busy="yes">'
        '<failure status="403"><reject status="403" reason="Forbidden"/></failure>'
        '<failure status="404"><taa:location clear="yes" url="voicemail@x"><proxy/>'
        "</taa:location></failure>"
        '<failure><reject status="480" reason="Unavailable"/></failure>'
        "<busy/><noanswer/><redirection/><default/>"
        "</proxy></taa:location>"
    )
    assert evaluate_cpl(document, SEARCH) == CplResult(
        Action.REDIRECT, locations=("meet.bob@10.1.3.10",)
    )


def test_processing_stops_at_reject_or_proxy() -> None:
    document = cpl(
        '<reject status="486" reason="Busy Here"/><taa:location clear="yes" url="x@y"/><proxy/>'
    )
    assert evaluate_cpl(document, SEARCH) == CplResult(Action.REJECT, 486, "Busy Here")
    assert evaluate_cpl(cpl('<proxy/><reject status="403"/>'), SEARCH) == ALLOWED


def test_an_empty_routed_section_allows() -> None:
    assert evaluate_cpl(cpl(""), SEARCH) == ALLOWED


def test_a_reject_without_reason_has_an_empty_reason() -> None:
    assert evaluate_cpl(cpl('<reject status="403"/>'), SEARCH) == CplResult(Action.REJECT, 403)


# ================================================================ CPL: refusals
@pytest.mark.parametrize("name", UNSUPPORTED)
@pytest.mark.parametrize(
    "where",
    ["alone", "after-proxy", "branch-not-taken", "inside-failure", "under-cpl-root"],
)
def test_unsupported_nodes_are_refused_wherever_they_sit(name: str, where: str) -> None:
    node = f"<{name}/>"
    document = {
        "alone": cpl(node),
        "after-proxy": cpl("<proxy/>" + node),
        "branch-not-taken": cpl(
            f'<address-switch field="destination"><otherwise><proxy/></otherwise>'
            f'<address is="x">{node}</address></address-switch>'
        ),
        "inside-failure": cpl(f"<proxy><failure>{node}</failure></proxy>"),
        "under-cpl-root": f'<cpl xmlns="{CPL_NS}" xmlns:taa="{TAA_NS}">{node}'
        "<taa:routed><proxy/></taa:routed></cpl>",
    }[where]
    error = refused(document)
    assert error.reason == "unsupported"
    assert f"<{name}> is not supported" in str(error)


ROOT = f'<cpl xmlns="{CPL_NS}" xmlns:taa="{TAA_NS}">'
NESTED_TOO_DEEP = cpl(
    '<address-switch field="destination"><otherwise>' * (MAX_DEPTH + 1)
    + "<proxy/>"
    + "</otherwise></address-switch>" * (MAX_DEPTH + 1)
)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("<cpl><taa:routed/></cpl>", "not well-formed"),
        (f'<cpl xmlns:taa="{TAA_NS}"><taa:routed><proxy/></taa:routed></cpl>', "root must be"),
        (f'<policy xmlns="{CPL_NS}"/>', "root must be <cpl"),
        ('<cpl xmlns="urn:ietf:params:xml:ns:cpl-old"><proxy/></cpl>', "root must be"),
        (ROOT + "</cpl>", "exactly one <taa:routed> (got 0)"),
        (ROOT + "<taa:routed><proxy/></taa:routed><taa:routed/></cpl>", "exactly one"),
        (ROOT + "<routed><proxy/></routed></cpl>", "<routed> may not appear under <cpl>"),
        (f'<cpl xmlns="{CPL_NS}"><routed xmlns="{TAA_NS}"><proxy/></routed></cpl>', "<proxy>"),
        (cpl(f'<taa:proxy xmlns:taa="{TAA_NS}"/>'), "<proxy> (namespace http"),
        (cpl('<location url="x@y"/>'), "<location> (namespace urn:ietf"),
        (cpl("<taa:reject/>"), "<reject> (namespace http"),
        (cpl('<j:proxy xmlns:j="urn:junk"/>'), "namespace urn:junk"),
        (cpl("<jump/>"), "<jump> (namespace urn:ietf:params:xml:ns:cpl) is not a CPL node"),
        (cpl('<reject reason="no status"/>'), "<reject> has no status"),
        (cpl('<reject status="399"/>'), "<reject status> must be 400-699 (got '399')"),
        (cpl('<reject status="700"/>'), "must be 400-699"),
        (cpl('<reject status=""/>'), "must be 400-699"),
        (cpl('<reject status="40x"/>'), "must be 400-699"),
        (cpl('<reject status=" 404"/>'), "must be 400-699"),
        (cpl(f'<reject status="{"4" * 5000}"/>'), "must be 400-699"),
        (cpl('<reject status="403" reason="a&#10;Via: x"/>'), "reason> contains control"),
        (cpl('<proxy timeout="0"/>'), "<proxy timeout> must be 1-86400"),
        (cpl('<proxy timeout="86401"/>'), "<proxy timeout> must be 1-86400"),
        (cpl(f'<proxy timeout="{"1" * 5000}"/>'), "<proxy timeout> must be 1-86400"),
        (cpl("<proxy><taa:failure/></proxy>"), "<failure> is not an outcome of <proxy>"),
        (cpl("<proxy><reject/></proxy>"), "<reject> is not an outcome of <proxy>"),
        (cpl('<proxy><failure status="200"/></proxy>'), "<failure status> must be 400-699"),
        (cpl("<address-switch/>"), "<address-switch field> must be one of"),
        (cpl('<address-switch field="caller"/>'), "(got 'caller')"),
        (cpl('<address-switch field="origin" subfield="domain"/>'), "subfield> 'domain'"),
        (
            cpl('<address-switch field="origin"><address/></address-switch>'),
            "<address> needs exactly one of",
        ),
        (
            cpl('<address-switch field="origin"><address is="a" contains="b"/></address-switch>'),
            "<address> needs exactly one of",
        ),
        (
            cpl('<address-switch field="origin"><proxy/></address-switch>'),
            "<proxy> is not a branch of <address-switch>",
        ),
        (
            cpl(
                f'<address-switch field="origin"><taa:otherwise xmlns:taa="{TAA_NS}"/>'
                "</address-switch>"
            ),
            "<otherwise> is not a branch",
        ),
        (
            cpl('<address-switch field="origin"><address regex="(unclosed"/></address-switch>'),
            "<address regex>: invalid regex",
        ),
        (
            cpl('<address-switch field="origin"><address regex="[[:digit:]]+"/></address-switch>'),
            "<address regex>: invalid regex",
        ),
        (
            cpl(f'<address-switch field="origin"><address regex="{"a" * 513}"/></address-switch>'),
            "regex longer than 512",
        ),
        (cpl('<taa:location clear="maybe" url="x@y"/>'), "<taa:location clear> must be yes or no"),
        (cpl('<taa:location url="x@y" priority="1.5"/>'), "priority> must be 0.0-1.0"),
        (cpl('<taa:location url="x@y" priority="nan"/>'), "priority> must be 0.0-1.0"),
        (cpl("<taa:location/>"), "needs either url or regex"),
        (cpl('<taa:location url="x@y" regex="x" replace="y"/>'), "needs either url or regex"),
        (cpl('<taa:location url=""/>'), "url> is empty"),
        (cpl('<taa:location regex=".*"/>'), "<taa:location regex> needs replace"),
        (cpl('<taa:location regex="a{2,1}" replace="b"/>'), "invalid regex"),
        (cpl(r'<taa:location regex="(x)" replace="\2"/>'), "<taa:location replace> '\\\\2'"),
        (cpl(r'<taa:location regex="(x)" replace="\g&lt;nope&gt;"/>'), "<taa:location replace>"),
        (cpl(r'<taa:location regex="(x)" replace="\q"/>'), "<taa:location replace>"),
        (cpl(r'<taa:location regex="(x)" replace="a\nb"/>'), "replace> has control characters"),
        (cpl("<taa:rule-switch><rule/></taa:rule-switch>"), "<rule> is not a <taa:rule>"),
        (
            cpl('<taa:rule-switch><taa:rule caller=".*"/></taa:rule-switch>'),
            "<taa:rule> has unknown attribute 'caller'",
        ),
        (
            cpl('<taa:rule-switch><taa:rule origin="*"/></taa:rule-switch>'),
            "<taa:rule origin>: invalid regex",
        ),
        (NESTED_TOO_DEEP, f"nested deeper than {MAX_DEPTH}"),
        ("", "CPL answer is empty"),
        (" \n\t", "CPL answer is empty"),
        ("<cpl", "not well-formed"),
        (ROOT + "<taa:routed><proxy></taa:routed></cpl>", "not well-formed"),
        (cpl("<proxy/>") + "<cpl/>", "not well-formed"),
        (cpl("&undefined;"), "not well-formed"),
        (cpl("<!-- " + "x" * MAX_CPL_BYTES + " -->"), f"exceeds {MAX_CPL_BYTES}"),
        (cpl("\ud800"), "not well-formed"),
        (" " + cpl("<proxy/>", prolog=True), "not well-formed"),
    ],
)
def test_cpl_that_the_vcs_would_not_accept_is_refused(document: str, message: str) -> None:
    assert message in str(refused(document))


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = MAX_DEPTH - 1
    document = cpl(
        '<address-switch field="destination"><otherwise>' * depth
        + '<reject status="403" reason="deep"/>'
        + "</otherwise></address-switch>" * depth
    )
    assert evaluate_cpl(document, SEARCH).reason == "deep"


def test_a_broken_branch_is_refused_for_every_request() -> None:
    """Validity is a property of the document, as at upload: no request avoids the check."""
    document = cpl(
        '<address-switch field="origin"><not-present><proxy/></not-present>'
        '<address regex="("/></address-switch>'
    )
    for request in (SEARCH, H323, ANONYMOUS, REGISTRATION):
        assert "invalid regex" in str(refused(document, request))


def test_refuses_what_is_not_text() -> None:
    assert "CPL must be text" in str(refused(42))  # type: ignore[arg-type]


LOL = "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' if i else '<!ENTITY lol0 "lol">' for i in range(10)
)


@pytest.mark.parametrize(
    "prelude",
    [
        f"<!DOCTYPE cpl [{LOL}]>",
        '<!DOCTYPE cpl [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE cpl [<!ENTITY % p SYSTEM "http://example.com/p.dtd"> %p;]>',
        '<!DOCTYPE cpl SYSTEM "http://example.com/cpl.dtd">',
        "<!DOCTYPE cpl>",
    ],
    ids=["billion-laughs", "external-entity", "parameter-entity", "external-dtd", "bare-doctype"],
)
def test_dtds_and_entity_declarations_are_refused_without_expanding(prelude: str) -> None:
    body = '<reject status="403" reason="&lol9;"/>'
    document = '<?xml version="1.0"?>\n' + prelude + cpl(body)
    error = refused(document)
    assert error.reason == "forbidden"
    assert "DTD or entity declarations" in str(error)
    # stopped by defusedxml at the declaration itself, before any entity was expanded
    assert isinstance(error.__cause__, DefusedXmlException)


# ================================================================ Default CPL
def test_the_search_rule_default_cpl_rejects_504() -> None:
    """G-V2 with the policy service unreachable: the search through that rule stops."""
    assert DEFAULT_SEARCH_CPL == "<reject status='504' reason='Policy Service Unavailable'/>"
    result = evaluate_default_cpl(DEFAULT_SEARCH_CPL, SEARCH)
    assert result == CplResult(Action.REJECT, 504, "Policy Service Unavailable")


def test_other_default_cpl_forms_are_evaluated() -> None:
    registration_default = "<reject status='403' reason='Service Unavailable'/>"
    assert evaluate_default_cpl(registration_default, REGISTRATION) == CplResult(
        Action.REJECT, 403, "Service Unavailable"
    )
    fallback = "\n  <taa:location clear='yes' url='lobby@x'/>\n  <proxy/>\n"
    assert evaluate_default_cpl(fallback, SEARCH).locations == ("lobby@x",)
    for whole in (cpl_allow(), cpl('<reject status="480"/>'), "  " + cpl("<proxy/>")):
        assert evaluate_default_cpl(whole, SEARCH).action is not Action.REDIRECT


@pytest.mark.parametrize(
    "snippet",
    [
        "<reject/>",
        "<mail url='mailto:x@y'/>",
        "<reject status='504'",
        "</taa:routed></cpl><cpl>",
        b"<proxy/>",
    ],
)
def test_a_bad_default_cpl_is_refused(snippet: str) -> None:
    with pytest.raises(RemoteProtocolError):
        evaluate_default_cpl(snippet, SEARCH)


# =================================================================== hypothesis
_SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40)
_ALIAS = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40),
    st.builds(
        "{}{}@{}".format,
        st.sampled_from(("", "sip:", "SIP:", "h323:")),
        st.text(alphabet="abmz09.+_-", min_size=1, max_size=10),
        st.sampled_from(("example.com", "Example.COM", "10.1.3.10", "[2001:db8::1]:5061")),
    ),
    st.builds("{}{}".format, st.sampled_from(("", "+")), st.integers(0, 10**15)),
)
_UTCTIME = st.builds(
    lambda day, h, m, s: f"{day.isoformat()} {h:02d}:{m:02d}:{s:02d}",
    st.dates(min_value=date(1970, 1, 1), max_value=date(2099, 12, 31)),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)


@st.composite
def valid_requests(draw: st.DrawFn) -> PolicyRequest:
    policy_type = draw(st.sampled_from(POLICY_TYPES))
    values: dict[str, str] = {"POLICY_TYPE": policy_type}
    values["PROTOCOL"] = draw(st.sampled_from(PROTOCOLS))
    if policy_type == "REGISTRATION":
        values["ALIAS"] = draw(_ALIAS)
        values["METHOD"] = draw(st.sampled_from(("", *METHODS)))
    else:
        values["DESTINATION_ALIAS"] = draw(_ALIAS)
        methods = SEARCH_METHODS if policy_type == "SEARCH" else METHODS
        values["METHOD"] = draw(st.sampled_from(methods))
    for name in PARAMETER_NAMES:
        if name in values:
            continue
        if name in CHOICES:
            values[name] = draw(st.sampled_from(("", *CHOICES[name])))
        elif name == "SOURCE_PORT":
            values[name] = draw(st.one_of(st.just(""), st.integers(0, 65535).map(str)))
        elif name == "UTCTIME":
            values[name] = draw(st.one_of(st.just(""), _UTCTIME))
        else:
            values[name] = draw(st.one_of(st.just(""), _SAFE_TEXT))
    return PolicyRequest(**values)


@settings(max_examples=150, deadline=None)
@given(valid_requests())
def test_every_valid_request_round_trips(request_: PolicyRequest) -> None:
    assert request_.problems() == []
    body = request_.encode()
    assert body.isascii()
    assert PolicyRequest.decode(body) == request_


def _decodes_or_refuses(body: bytes) -> None:
    try:
        request = PolicyRequest.decode(body)
    except RemoteProtocolError as exc:
        reason = exc.reason
    else:
        # what decodes is valid, and says the same once re-encoded
        assert request.problems() == []
        assert PolicyRequest.decode(request.encode()) == request
        return
    assert reason in ("malformed", "missing", "too_large")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_decode_of_any_bytes_gives_a_request_or_remote_protocol_error(body: bytes) -> None:
    _decodes_or_refuses(body)


_PARAMETER_VALUES = st.one_of(
    st.sampled_from(sorted({v for choices in CHOICES.values() for v in choices})),
    st.sampled_from(("", "5061", "70000", "2026-11-30 10:04:42", "2026-02-30 00:00:00")),
    _ALIAS,
    st.text(max_size=20),
)
_PARAMETER_NAMES = st.one_of(
    st.sampled_from(PARAMETER_NAMES), st.sampled_from(PARAMETER_NAMES), st.text(max_size=12)
)


@st.composite
def form_bodies(draw: st.DrawFn) -> bytes:
    pairs = draw(st.lists(st.tuples(_PARAMETER_NAMES, _PARAMETER_VALUES), max_size=12))
    if draw(st.booleans()):
        pairs.insert(0, ("POLICY_TYPE", draw(st.sampled_from(POLICY_TYPES))))
    how = draw(st.sampled_from(("urlencode", "quote", "raw")))
    if how == "urlencode":
        return urlencode(pairs).encode()
    if how == "quote":
        separator = draw(st.sampled_from(("&", "&&", ";", "&amp;")))
        return separator.join(f"{quote(n)}={quote(v)}" for n, v in pairs).encode()
    return "&".join(f"{n}={v}" for n, v in pairs).encode("utf-8", "surrogatepass")


@settings(max_examples=200, deadline=None)
@given(form_bodies())
def test_decode_of_random_form_bodies_gives_a_request_or_remote_protocol_error(
    body: bytes,
) -> None:
    _decodes_or_refuses(body)


# --- CPL
_REQUESTS = st.sampled_from((SEARCH, H323, ANONYMOUS, REGISTRATION, ADMIN))


@settings(max_examples=100, deadline=None)
@given(st.integers(400, 699), st.text(st.characters(exclude_categories=("Cs", "Cc"))), _REQUESTS)
def test_cpl_reject_always_evaluates_to_its_status_and_reason(
    status: int, reason: str, request_: PolicyRequest
) -> None:
    """G-V2: the builders' documents say what they were built to say."""
    document = cpl_reject(status, reason)
    assert evaluate_cpl(document, request_) == CplResult(Action.REJECT, status, reason)


@settings(max_examples=100, deadline=None)
@given(_ALIAS, _REQUESTS)
def test_cpl_redirect_always_evaluates_to_its_url(url: str, request_: PolicyRequest) -> None:
    """G-V2: the builders' documents say what they were built to say."""
    result = evaluate_cpl(cpl_redirect(url), request_)
    original = request_.DESTINATION_ALIAS or request_.ALIAS
    if url == original:
        assert result == CplResult(Action.ALLOW, locations=(original,))
    else:
        assert result == CplResult(Action.REDIRECT, locations=(url,))


def _evaluates_or_refuses(document: str | bytes, request: PolicyRequest) -> str | None:
    """Evaluate; check the result's invariants; None, or the refusal's message."""
    try:
        result = evaluate_cpl(document, request)
    except RemoteProtocolError as exc:
        return str(exc)
    original = request.DESTINATION_ALIAS or request.ALIAS
    unsafe = re.compile("[\x00-\x1f\x7f]")
    if result.action is Action.REJECT:
        assert result.status is not None
        assert 400 <= result.status <= 699
        assert not unsafe.search(result.reason)
    elif result.action is Action.ALLOW:
        assert result.locations == (original,)
    else:
        assert result.locations
        assert result.locations != (original,)
        assert len(set(result.locations)) == len(result.locations)
        assert not any(unsafe.search(loc) or not loc for loc in result.locations)
    return None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=600), st.text(max_size=600)), _REQUESTS)
def test_evaluate_cpl_of_any_bytes_or_text_gives_a_result_or_remote_protocol_error(
    document: bytes | str, request_: PolicyRequest
) -> None:
    _evaluates_or_refuses(document, request_)


_SAMPLES = (
    cpl_allow(),
    cpl_reject(404, "Conference not found"),
    cpl_redirect("meet.bob@10.1.3.10"),
    RULES,
    switch("origin", "regex", "alice@.*", "user"),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_SAMPLES), st.integers(0, 400), st.integers(0, 40), st.text(max_size=20))
def test_evaluate_cpl_of_mangled_documents_gives_a_result_or_remote_protocol_error(
    sample: str, at: int, cut: int, insert: str
) -> None:
    at = at % len(sample)
    _evaluates_or_refuses(sample[:at] + insert + sample[at + cut :], SEARCH)


# Random trees: CPL built from its grammar - real element names, namespaces and
# attributes, values mostly meaningful - with junk elements, attributes and values
# mixed in at every level.
_PREFIXES = {"": CPL_NS, "taa": TAA_NS, "c": CPL_NS, "j": "urn:junk", "xsi": XSI_NS}
_CPL_NAMES = (
    "cpl",
    "address-switch",
    "address",
    "otherwise",
    "not-present",
    "proxy",
    "reject",
    *PROXY_OUTCOMES,
)
_TAA_NAMES = ("routed", "location", "rule-switch", "rule")
_JUNK_NAME = st.builds(
    operator.add, st.sampled_from("abjxyz"), st.text(alphabet="abjxyz0-", max_size=5)
)
#: text XML can carry (raw control characters are left to the bytes/text fuzz above)
_XML_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=8)
_TAG = st.one_of(
    st.sampled_from(_CPL_NAMES),
    st.sampled_from(_TAA_NAMES).map("taa:".__add__),
    st.tuples(
        st.sampled_from(("", "taa:", "c:", "j:", "xsi:")),
        st.one_of(st.sampled_from(_CPL_NAMES + _TAA_NAMES + UNSUPPORTED), _JUNK_NAME),
    ).map("".join),
)
_ATTRIBUTE_NAMES = st.one_of(
    st.sampled_from(
        (
            "field",
            "subfield",
            "is",
            "contains",
            "subdomain-of",
            "regex",
            "replace",
            "url",
            "clear",
            "priority",
            "status",
            "reason",
            "timeout",
            *RULE_ATTRIBUTES,
            "taa:clear",
            "xsi:type",
        )
    ),
    _JUNK_NAME,
)
_REGEXES = (
    ".*",
    "(.*)@example\\.com",
    "(x*)meet.*",
    "meet|meet\\.bob@example\\.com",
    "alice@.*",
    "5.*",
    "(?P<u>[^@]+)@(.*)",
    "[",
    "[[:digit:]]",
    "a{2,1}",
)
_REPLACES = ("\\1@conductor.example.com", "\\1", "\\2", "\\g<0>", "\\g<u>", "x@y", "\\q", "a\\nb")
_WORDS = (
    *ADDRESS_FIELDS,
    *SUBFIELDS,
    "meet.bob@example.com",
    "example.com",
    "alice",
    "555",
    "url-ID",
    "dialedDigits",
    "sip",
    "yes",
    "no",
    "random",
    "0.5",
    "",
)
_STATUS = st.sampled_from(("403", "404", "480", "504", "699", "399", "700", "4o4", ""))


def _mixed(*pools: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A meaningful value three times in four, else junk."""
    meaningful = st.sampled_from(tuple(dict.fromkeys(v for pool in pools for v in pool)))
    return st.one_of(meaningful, meaningful, meaningful, _XML_TEXT)


_VALUE = _mixed(_WORDS)
_REGEX = _mixed(_REGEXES, _WORDS)
_REPLACE = _mixed(_REPLACES, _WORDS)
_ATTRIBUTE_VALUES = _mixed(_WORDS, _REGEXES, _REPLACES, ("30", "0", "403", "700"))


def _xml(tag: str, attributes: dict[str, str], children: list[str] | tuple[()] = ()) -> str:
    rendered = "".join(f" {name}={quoteattr(value)}" for name, value in attributes.items())
    if not children:
        return f"<{tag}{rendered}/>"
    return f"<{tag}{rendered}>{''.join(children)}</{tag}>"


_JUNK_LEAF = st.one_of(
    st.builds(_xml, _TAG, st.dictionaries(_ATTRIBUTE_NAMES, _ATTRIBUTE_VALUES, max_size=3)),
    _XML_TEXT.map(escape),
    _XML_TEXT.map(lambda text: f"<!--{text.replace('-', '')}-->"),
)
_REJECT = st.builds(
    lambda status, reason: _xml("reject", {"status": status, "reason": reason}), _STATUS, _VALUE
)
_LEAF = st.one_of(_REJECT, st.just("<proxy/>"), _JUNK_LEAF)


def _nodes(kids: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One CPL node whose content is drawn from `kids` (the next level down)."""
    body = st.lists(kids, max_size=3)
    outcome = st.builds(
        _xml,
        st.sampled_from(PROXY_OUTCOMES),
        st.dictionaries(st.just("status"), _STATUS, max_size=1),
        body,
    )
    proxy = st.builds(
        lambda attributes, outcomes: _xml("proxy", attributes, outcomes),
        st.dictionaries(st.just("timeout"), _mixed(("30", "1", "86400", "0", "86401")), max_size=1),
        st.lists(outcome, max_size=3),
    )
    address = st.builds(
        lambda test, value, children: _xml("address", {test: value}, children),
        st.sampled_from(("is", "contains", "subdomain-of", "regex", "has")),
        _REGEX,
        body,
    )
    branch = st.one_of(
        address, st.builds(_xml, st.sampled_from(("otherwise", "not-present")), st.just({}), body)
    )
    address_switch = st.builds(
        lambda attributes, branches: _xml("address-switch", attributes, branches),
        st.fixed_dictionaries(
            {"field": _mixed(ADDRESS_FIELDS)}, optional={"subfield": _mixed(SUBFIELDS)}
        ),
        st.lists(st.one_of(branch, _JUNK_LEAF), max_size=3),
    )
    location_options = {
        "clear": _mixed(("yes", "no")),
        "priority": _mixed(("0.5", "random", "2")),
    }
    location = st.builds(
        lambda attributes, children: _xml("taa:location", attributes, children),
        st.one_of(
            st.fixed_dictionaries({"url": _VALUE}, optional=location_options),
            st.fixed_dictionaries(
                {"regex": _REGEX, "replace": _REPLACE}, optional=location_options
            ),
        ),
        body,
    )
    rule = st.builds(
        lambda attributes, children: _xml("taa:rule", attributes, children),
        st.dictionaries(st.sampled_from(RULE_ATTRIBUTES), _REGEX, max_size=2),
        body,
    )
    rule_switch = st.lists(rule, max_size=3).map(lambda rules: _xml("taa:rule-switch", {}, rules))
    junk = st.builds(
        _xml,
        _TAG,
        st.dictionaries(_ATTRIBUTE_NAMES, _ATTRIBUTE_VALUES, max_size=3),
        body,
    )
    return st.one_of(_REJECT, proxy, address_switch, location, rule_switch, junk)


_TREE = st.recursive(_LEAF, _nodes, max_leaves=8)
_DECLARATIONS = "".join(
    f' xmlns{":" + prefix if prefix else ""}="{ns}"' for prefix, ns in _PREFIXES.items()
)


@st.composite
def cpl_trees(draw: st.DrawFn) -> str:
    """A CPL-ish document: usually a proper root and routed section around random trees."""
    body = "".join(draw(st.lists(_TREE, max_size=3)))
    shape = draw(st.sampled_from(("routed",) * 6 + ("root", "other-root")))
    if shape == "routed":
        document = f"<cpl{_DECLARATIONS}><taa:routed>{body}</taa:routed></cpl>"
    elif shape == "root":
        document = f"<cpl{_DECLARATIONS}>{body}</cpl>"
    else:
        document = f"<any{_DECLARATIONS}>{body}</any>"
    if draw(st.booleans()):
        document = '<?xml version="1.0" encoding="UTF-8"?>\n' + document
    return document


@settings(max_examples=150, deadline=None)
@given(cpl_trees(), _REQUESTS, _REQUESTS)
def test_evaluate_cpl_of_random_trees_gives_a_result_or_remote_protocol_error(
    document: str, first: PolicyRequest, second: PolicyRequest
) -> None:
    """Also: a structural refusal does not depend on the request (only a regex
    rewrite of this destination to nothing is a run-time refusal)."""
    refusals = [_evaluates_or_refuses(document, request) for request in (first, second)]
    if any(r is not None and "rewrites" in r for r in refusals):
        return
    assert refusals[0] == refusals[1]
