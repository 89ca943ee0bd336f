"""The Conductor side of the VCS external policy service, over HTTPS in the simulated world.

A `PeerNode` runs on `conductor-a`; the client is the `vcs` host, sending what
the VCS sends: `POST /pdp/policy` with a form-encoded policy request and
`GET /pdp/status` health polls, with HTTP Basic and the admin account.

Checklist: G-P3 (the VCS shows the server Failed while the Conductor's admin or
root password is the factory default, or the credentials are wrong: 403 / 401
here), G-V2 (a matching search rule's request is allowed, rejected or
redirected: a conference alias match allows, no match rejects 404), G-S1
(conference aliases and the paths are shared configuration).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import fields
from typing import Any
from urllib.parse import quote, urlencode

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peers.core.policy import ALIAS_FIELDS, ALIAS_PREFIX
from peers.store import DEFAULT_PASSWORD
from peers.web.openapi import document
from tests.sim.peer_helpers import (
    CLIENT_IP,
    PEER_IP,
    PeerLab,
    Reply,
    basic_auth,
    csrf_of,
    field_errors,
    flash_of,
    parse_page,
    peer_lab,
)
from vcs_policy.wire import Action, PolicyRequest, evaluate_cpl
from vcs_policy.wire.policy import MAX_BODY_BYTES

DOC = document()
ADMIN_PASSWORD = "Conductor-admin-1"
ROOT_PASSWORD = "Conductor-root-22"
FORM = "application/x-www-form-urlencoded"
ALIASES = "/api/v1/conference/aliases"
MEET = {
    "name": "meet",
    "incoming_alias": r"meet\.(.+)@example\.com",
    "conference_name": r"meeting-\1",
}


def search(destination: str, **extra: str) -> PolicyRequest:
    """A search rule's policy request, as the VCS sends it for a SIP INVITE."""
    return PolicyRequest(
        POLICY_TYPE="SEARCH",
        METHOD="INVITE",
        PROTOCOL="SIP",
        DESTINATION_ALIAS=destination,
        AUTHENTICATED="TRUE",
        AUTHENTICATED_SOURCE_ALIAS="alice@example.com",
        SOURCE_IP=CLIENT_IP,
        ZONE_NAME="DefaultSubZone",
        **extra,
    )


def change_passwords(lab: PeerLab, *accounts: str) -> None:
    """Users page API: the accounts get non-default passwords (G-P3)."""
    for account in accounts:
        password = ADMIN_PASSWORD if account == "admin" else ROOT_PASSWORD
        reply = lab.api(
            "PUT",
            f"/api/v1/users/{account}/password",
            {"new_password": password, "confirm_password": password},
        )
        assert reply.status == 200, reply.text
        if account == "admin":
            lab.admin_password = password


def post_policy(
    lab: PeerLab,
    body: bytes,
    *,
    path: str = "/pdp/policy",
    content_type: str | None = FORM,
    authorization: str | None = None,
) -> Reply:
    if authorization is None:
        authorization = basic_auth("admin", lab.admin_password)
    headers = {"Authorization": authorization} if authorization else {}
    kwargs: dict[str, Any] = {"data": body}
    if content_type is None:
        kwargs["skip_auto_headers"] = ["Content-Type"]
    else:
        headers["Content-Type"] = content_type
    return lab.request("POST", path, headers=headers, **kwargs)


def ask(lab: PeerLab, request: PolicyRequest, **kwargs: Any) -> Any:
    """The VCS's view of the answer: the CPL evaluated against its request."""
    reply = post_policy(lab, request.encode(), **kwargs)
    assert reply.status == 200, reply.text
    return evaluate_cpl(reply.text, request)


def poll_status(lab: PeerLab, *, path: str = "/pdp/status", **auth: str) -> Reply:
    authorization = auth.get("authorization", basic_auth("admin", lab.admin_password))
    headers = {"Authorization": authorization} if authorization else {}
    return lab.request("GET", path, headers=headers, allow_redirects=False)


def conforms(method: str, path: str, reply: Reply) -> Any:
    operation = DOC["paths"][path][method.lower()]
    schema = operation["responses"][str(reply.status)]["content"]["application/json"]["schema"]
    body = reply.json()
    jsonschema.validate(body, schema)
    return body


def shared(lab: PeerLab) -> list[Any]:
    return [(e.key, e.deleted, e.value) for e in lab.node.store.shared_entries()]


def everything(lab: PeerLab) -> tuple[Any, ...]:
    """What no policy request, nor any refused change, may alter."""
    return (*lab.snapshot(), shared(lab))


def counters(lab: PeerLab) -> dict[str, Any]:
    body = conforms("GET", "/api/v1/status", lab.api("GET", "/api/v1/status"))
    return body["policy_service"]


@pytest.fixture
def lab() -> Iterator[PeerLab]:
    with peer_lab() as the_lab:
        yield the_lab


@pytest.fixture
def ready(lab: PeerLab) -> PeerLab:
    """Both factory passwords changed: the policy service answers."""
    change_passwords(lab, "admin", "root")
    return lab


# ------------------------------------------------------------ authentication
def test_status_and_policy_answer_once_both_passwords_are_changed_g_p3(ready: PeerLab) -> None:
    reply = poll_status(ready)
    assert (reply.status, reply.text) == (200, "OK")
    assert ask(ready, search("meet.bob@example.com")).action is Action.REJECT
    head = ready.request(
        "HEAD", "/pdp/status", headers={"Authorization": basic_auth("admin", ADMIN_PASSWORD)}
    )
    assert head.status == 200
    got = counters(ready)
    assert got["status_polls"] == 2
    assert got["answered"] == 1
    assert got["last_status_poll"] == got["last_request"] != ""


def test_default_passwords_are_refused_with_403_naming_the_accounts_g_p3(lab: PeerLab) -> None:
    """G-P3: right credentials, but admin/root still on the factory password: the
    VCS's status poll fails (it shows Failed) until both are changed."""
    request = search("meet.bob@example.com").encode()
    for expected in (["admin", "root"], ["root"]):
        for reply in (poll_status(lab), post_policy(lab, request)):
            assert reply.status == 403, reply.text
            assert reply.text.startswith("default admin/root passwords not changed")
            assert reply.text.split(": ", 2)[2].startswith(", ".join(expected))
        change_passwords(lab, expected[0])
    assert poll_status(lab).status == 200
    assert post_policy(lab, request).status == 200
    assert counters(lab)["refused"] == 4


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        basic_auth("admin", "wrong-password"),
        basic_auth("root", ROOT_PASSWORD),
        basic_auth("admin", DEFAULT_PASSWORD),
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"admin:\xff\xfe").decode(),
        "Bearer abc",
    ],
)
def test_wrong_or_missing_credentials_are_refused_with_401_g_p3(
    ready: PeerLab, authorization: str
) -> None:
    for reply in (
        poll_status(ready, authorization=authorization),
        post_policy(ready, search("x@example.com").encode(), authorization=authorization),
    ):
        assert reply.status == 401, reply.text
        assert "authentication required" in reply.text
    # the challenge is on the raw response (aiohttp's Reply keeps only the text)
    headers = ready.sim.run(raw_headers(ready, authorization))
    assert headers.get("WWW-Authenticate", "").startswith("Basic realm=")


async def raw_headers(lab: PeerLab, authorization: str) -> dict[str, str]:
    assert lab.session is not None
    headers = {"Authorization": authorization} if authorization else {}
    async with lab.session.get(lab.base + "/pdp/status", ssl=False, headers=headers) as r:
        return dict(r.headers)


def test_failed_logins_are_logged_throttled_per_source_g_p3(ready: PeerLab) -> None:
    """Like the API's failed logins (event login_failed), but a flood is one line per
    source a minute with the count, so it cannot fill the event log."""
    wrong = basic_auth("admin", "wrong-password")
    for _ in range(5):
        assert poll_status(ready, authorization=wrong).status == 401
    logged = [e for e in ready.node.store.events() if e["event"] == "login_failed"]
    assert [e["detail"]["failures"] for e in logged] == [1]
    assert logged[0]["detail"]["via"] == "policy"
    assert logged[0]["detail"]["source"] == CLIENT_IP
    assert logged[0]["level"] == "warning"
    ready.sim.run(asyncio.sleep(61))  # the window ends: the 4 held back are reported
    logged = [e for e in ready.node.store.events() if e["event"] == "login_failed"]
    assert sorted(e["detail"]["failures"] for e in logged) == [1, 4]
    ready.sim.run(asyncio.sleep(61))  # quiet: nothing more
    assert len([e for e in ready.node.store.events() if e["event"] == "login_failed"]) == 2
    assert counters(ready)["refused"] == 5
    assert poll_status(ready).status == 200


# ------------------------------------------------------------ decisions (G-V2)
def test_alias_match_allows_and_no_match_rejects_404_g_v2(ready: PeerLab) -> None:
    assert ready.api("POST", ALIASES, MEET).status == 201
    assert ask(ready, search("meet.bob@example.com")).action is Action.ALLOW
    # the SIP scheme is stripped and matching ignores case
    assert ask(ready, search("sip:MEET.Carol@Example.COM")).action is Action.ALLOW
    for destination in ("bob@example.com", "meet.bob@example.com.evil", "xmeet.bob@example.com"):
        result = ask(ready, search(destination))
        assert (result.action, result.status, result.reason) == (
            Action.REJECT,
            404,
            "Conference not found",
        ), destination
    got = counters(ready)
    assert (got["answered"], got["allowed"], got["rejected"]) == (5, 2, 3)
    assert got["conference_aliases"] == 1
    ready.login()
    overview = ready.page("/").text
    assert "Requests answered</th><td>5 (2 allowed, 3 rejected)" in overview


def test_aliases_are_listed_in_decision_order_g_v2(ready: PeerLab) -> None:
    """Lowest priority first, ties by name (which alias decides: tests/unit)."""
    for body in (
        {"name": "b-any", "incoming_alias": "(.*)", "conference_name": r"\1", "priority": 5},
        {"name": "a-empty", "incoming_alias": "(x?)@empty", "conference_name": r"\1"},
    ):
        assert ready.api("POST", ALIASES, {**body, "priority": 5}).status == 201
    assert ready.api("POST", ALIASES, {**MEET, "priority": 9}).status == 201
    listed = conforms("GET", ALIASES, ready.api("GET", ALIASES))["aliases"]
    assert [a["name"] for a in listed] == ["a-empty", "b-any", "meet"]
    # a-empty's conference name is empty for "@empty": b-any decides
    assert ask(ready, search("@empty")).action is Action.ALLOW
    assert ask(ready, search("anything")).action is Action.ALLOW


def test_policy_requests_other_than_search_and_bad_bodies_are_400(ready: PeerLab) -> None:
    registration = PolicyRequest(POLICY_TYPE="REGISTRATION", PROTOCOL="SIP", ALIAS="a@b").encode()
    reply = post_policy(ready, registration)
    assert reply.status == 400
    assert "search rule requests only (POLICY_TYPE=SEARCH)" in reply.text
    admin = search("a@b").replace(POLICY_TYPE="ADMIN").encode()
    assert post_policy(ready, admin).status == 400
    for body, words in (
        (b"", "POLICY_TYPE is missing"),
        (b"POLICY_TYPE=SEARCH", "DESTINATION_ALIAS is missing"),
        (b"POLICY_TYPE=SEARCH&POLICY_TYPE=SEARCH", "given twice"),
        (b"\xff\xfe", "not form-encoded ASCII"),
        (search("a@b").encode() + b"&METHOD=BYE", "given twice"),
    ):
        reply = post_policy(ready, body)
        assert reply.status == 400, body
        assert words in reply.text, reply.text
    assert counters(ready)["bad_requests"] == 7


def test_wrong_content_type_415_too_large_413_wrong_method_405(ready: PeerLab) -> None:
    body = search("a@b").encode()
    for content_type in ("application/json", "text/plain", "multipart/form-data", None):
        reply = post_policy(ready, body, content_type=content_type)
        assert reply.status == 415, content_type
        assert FORM in reply.text
    assert post_policy(ready, body, content_type=FORM + "; charset=utf-8").status == 200
    # a header aiohttp's parser raised on (the peer answered 500): refused, whatever the path
    malformed = post_policy(ready, body, content_type="a/b; ];jf$5*")
    assert malformed.status == 400
    assert "the Content-Type header cannot be parsed" in malformed.text
    huge = body + b"&ZONE_NAME=" + b"z" * MAX_BODY_BYTES
    reply = post_policy(ready, huge)
    assert reply.status == 413
    assert str(MAX_BODY_BYTES) in reply.text
    reply = ready.request(
        "GET", "/pdp/policy", headers={"Authorization": basic_auth("admin", ADMIN_PASSWORD)}
    )
    assert reply.status == 405
    reply = ready.request("POST", "/pdp/status", data=b"x")
    assert reply.status == 405


# ------------------------------------------------------------ configured paths
def test_configured_paths_move_the_endpoints_at_once(ready: PeerLab) -> None:
    """Conference configuration > Policy service: shared settings, applied at Save."""
    body = {"policy_path": "/tplab/vcs-policy", "status_path": "tplab/health"}
    reply = ready.api("PUT", "/api/v1/conference/policy", body)
    saved = conforms("PUT", "/api/v1/conference/policy", reply)
    assert saved["saved"] == {"policy_path": "tplab/vcs-policy", "status_path": "tplab/health"}
    assert saved["pending"] == []
    assert poll_status(ready, path="/tplab/health").text == "OK"
    assert ask(ready, search("a@b"), path="/tplab/vcs-policy").action is Action.REJECT
    # the old paths are ordinary admin URLs again (login needed)
    assert poll_status(ready).status == 303
    assert post_policy(ready, search("a@b").encode()).history == (303,)
    got = conforms(
        "GET", "/api/v1/conference/policy", ready.api("GET", "/api/v1/conference/policy")
    )
    assert got["status"] == {
        "policy_url": f"https://{PEER_IP}:8443/tplab/vcs-policy",
        "status_url": f"https://{PEER_IP}:8443/tplab/health",
    }
    assert counters(ready)["status_path"] == "/tplab/health"
    ready.login(password=ADMIN_PASSWORD)
    page = ready.page("/conference/policy")
    assert f"https://{PEER_IP}:8443/tplab/vcs-policy" in page.text
    form = {
        "policy.policy_path": "pdp/policy",
        "policy.status_path": "pdp/status",
        "policy.empty_conference_end_s": "60",
        "policy.bridge_poll_s": "5",
    }
    assert ready.post_form("/conference/policy", form).history == (303,)
    assert poll_status(ready).text == "OK"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"policy_path": "api/v1/status"}, "policy_path", "the admin pages and API use it"),
        ({"status_path": "login"}, "status_path", "the admin pages and API use it"),
        ({"status_path": "pdp/policy"}, "status_path", "must differ from the Policy path"),
        ({"policy_path": "pdp//x"}, "policy_path", "is not a URL path"),
        ({"policy_path": "pdp/a b"}, "policy_path", "is not a URL path"),
        ({"policy_path": ""}, "policy_path", "must not be empty"),
    ],
)
def test_bad_paths_are_refused(
    ready: PeerLab, body: dict[str, str], field: str, words: str
) -> None:
    before = everything(ready)
    reply = ready.api("PUT", "/api/v1/conference/policy", body)
    assert reply.status == 400
    message = conforms("PUT", "/api/v1/conference/policy", reply)["fields"][field]
    label = {"policy_path": "Policy path", "status_path": "Status path"}[field]
    assert message.startswith(label + ":")
    assert words in message
    assert everything(ready) == before
    assert poll_status(ready).text == "OK"


# ------------------------------------------------------------ aliases: API
def test_alias_api_create_list_get_update_rename_delete_g_s1(lab: PeerLab) -> None:
    reply = lab.api("POST", ALIASES, {**MEET, "role": "guest", "may_create": False})
    created = conforms("POST", ALIASES, reply)["saved"]
    assert created == {
        **MEET,
        "priority": 100,
        "role": "guest",
        "may_create": False,
        "template": "",  # a conference template is optional
    }
    assert lab.node.store.shared_entries()[0].key == ALIAS_PREFIX + "meet"  # replicated entry
    one = f"{ALIASES}/meet"
    assert conforms("GET", ALIASES + "/{name}", lab.api("GET", one)) == created
    reply = lab.api("PUT", one, {"priority": 7, "name": "Meet room"})
    updated = conforms("PUT", ALIASES + "/{name}", reply)["saved"]
    assert (updated["name"], updated["priority"], updated["role"]) == ("Meet room", 7, "guest")
    assert lab.api("GET", one).status == 404
    listed = conforms("GET", ALIASES, lab.api("GET", ALIASES))["aliases"]
    assert listed == [updated]
    keys = [e.key for e in lab.node.store.shared_entries() if not e.deleted]
    assert ALIAS_PREFIX + "meet" not in keys
    renamed = f"{ALIASES}/{quote('Meet room')}"
    reply = lab.api("DELETE", renamed)
    assert conforms("DELETE", ALIASES + "/{name}", reply) == {"deleted": "Meet room"}
    assert lab.api("GET", ALIASES).json() == {"aliases": []}
    assert lab.api("DELETE", renamed).status == 404
    log = [e["setting"] for e in lab.node.store.config_log()]
    assert log[:3] == [
        ALIAS_PREFIX + "Meet room",
        ALIAS_PREFIX + "meet",
        ALIAS_PREFIX + "Meet room",
    ]


ALIAS_REFUSALS: list[tuple[dict[str, Any], str, str]] = [
    ({**MEET, "incoming_alias": "meet(.*"}, "incoming_alias", "not a valid regular expression"),
    ({**MEET, "conference_name": r"conf-\2"}, "conference_name", "uses group \\2"),
    ({**MEET, "incoming_alias": "meet", "conference_name": r"c\1"}, "conference_name", "no groups"),
    ({**MEET, "conference_name": "c\\x"}, "conference_name", "a backslash must be followed"),
    ({**MEET, "name": "MEET"}, "name", "already exists"),
    ({**MEET, "name": "other", "priority": 0}, "priority", "between 1 and 65534"),
    ({**MEET, "name": "other", "priority": 65535}, "priority", "between 1 and 65534"),
    ({**MEET, "name": "other", "priority": "5"}, "priority", "must be a whole number"),
    ({**MEET, "name": "other", "priority": True}, "priority", "must be a whole number"),
    ({**MEET, "name": "other", "role": "host"}, "role", "must be one of chairperson, guest"),
    ({**MEET, "name": "other", "may_create": "yes"}, "may_create", "must be true or false"),
    ({**MEET, "name": "a/b"}, "name", "may contain only"),
    ({**MEET, "name": " "}, "name", "must not be empty"),
    ({**MEET, "name": 5}, "name", "must be text"),
    ({"name": "other", "incoming_alias": "x"}, "conference_name", "is required"),
]


@pytest.mark.parametrize(("body", "field", "words"), ALIAS_REFUSALS)
def test_alias_api_refusals_name_the_field_and_save_nothing(
    lab: PeerLab, body: dict[str, Any], field: str, words: str
) -> None:
    assert lab.api("POST", ALIASES, MEET).status == 201
    before = everything(lab)
    reply = lab.api("POST", ALIASES, body)
    assert reply.status == 400, reply.text
    got = conforms("POST", ALIASES, reply)
    assert got["error"].startswith("nothing was saved")
    assert got["fields"][field].startswith(ALIAS_FIELDS[field] + ":")
    assert words in got["fields"][field]
    assert everything(lab) == before


def test_alias_api_refuses_bad_bodies_and_unknown_names(lab: PeerLab) -> None:
    assert lab.api("POST", ALIASES, MEET).status == 201
    before = everything(lab)
    for method, path, body, status, words in (
        ("POST", ALIASES, {**MEET, "name": "x", "colour": "blue"}, 400, "unknown field(s) colour"),
        ("POST", ALIASES, [], 400, "must be a JSON object"),
        ("PUT", ALIASES + "/meet", {}, 400, "nothing to change"),
        ("PUT", ALIASES + "/meet", {"priority": 0}, 400, "Priority: must be between"),
        ("PUT", ALIASES + "/nobody", {"priority": 3}, 404, "no conference alias named"),
        ("GET", ALIASES + "/nobody", None, 404, "no conference alias named"),
        ("DELETE", ALIASES + "/nobody", None, 404, "no conference alias named"),
        ("GET", ALIASES + "?x=1", None, 400, "unknown query parameter"),
    ):
        reply = lab.api(method, path, body)
        assert reply.status == status, (method, path, reply.text)
        assert words in reply.text, reply.text
        route = (
            ALIASES if path.startswith(ALIASES + "?") or path == ALIASES else ALIASES + "/{name}"
        )
        conforms(method, route, reply)
    assert everything(lab) == before
    # a rename onto another alias's name is a duplicate
    assert lab.api("POST", ALIASES, {**MEET, "name": "second"}).status == 201
    reply = lab.api("PUT", ALIASES + "/second", {"name": "Meet"})
    assert reply.status == 400
    assert reply.json()["fields"]["name"] == "Name: an alias named 'Meet' already exists"


# ------------------------------------------------------------ aliases: pages
def test_alias_pages_add_edit_delete_and_refuse(ready: PeerLab) -> None:
    lab = ready
    assert lab.login(password=ADMIN_PASSWORD).status == 200
    empty = lab.page("/conference/aliases")
    assert "No conference aliases are configured" in empty.text
    assert parse_page(empty.text).h1 == ["Conference aliases"]
    form = {**MEET, "priority": "10", "role": "guest", "may_create": "no"}
    reply = lab.post_form("/conference/aliases/new", form)
    assert reply.history == (303,)
    assert flash_of(reply.text) == "Saved: Conference alias meet added."
    assert r"meet\.(.+)@example\.com" in reply.text
    assert lab.api("GET", ALIASES + "/meet").json() == {
        **MEET,
        "priority": 10,
        "role": "guest",
        "may_create": False,
        "template": "",
    }

    before = everything(lab)
    bad = {**form, "name": "Meet", "incoming_alias": "(", "priority": "x"}
    reply = lab.post_form("/conference/aliases/new", bad)
    assert reply.status == 400
    assert "Nothing was saved" in reply.text
    errors = field_errors(reply.text)
    assert any(e.startswith("Name: an alias named 'Meet' already exists") for e in errors)
    assert any(e.startswith("Incoming alias (must use regex): is not a valid") for e in errors)
    assert "Priority: must be a whole number" in errors
    assert 'value="Meet"' in reply.text  # what was typed is kept
    assert everything(lab) == before

    reply = lab.post_form(
        "/conference/aliases/edit/meet", {**form, "name": "meet2", "priority": "3"}
    )
    assert flash_of(reply.text) == "Saved: Conference alias meet2 saved."
    assert [a["name"] for a in lab.api("GET", ALIASES).json()["aliases"]] == ["meet2"]
    assert lab.page("/conference/aliases/edit/meet").status == 404
    assert ask(lab, search("meet.x@example.com")).action is Action.ALLOW

    token = csrf_of(lab.page("/conference/aliases").text)
    reply = lab.post_form("/conference/aliases/delete", {"name": "meet2"}, csrf=token)
    assert flash_of(reply.text) == "Saved: Conference alias meet2 deleted."
    assert lab.api("GET", ALIASES).json() == {"aliases": []}
    assert lab.post_form("/conference/aliases/delete", {"name": "meet2"}, csrf=token).status == 404
    reply = lab.post_form("/conference/aliases/delete", {"name": "x"}, csrf="forged")
    assert reply.status == 403
    assert ask(lab, search("meet.x@example.com")).action is Action.REJECT


# ------------------------------------------------------------ hypothesis
PARAMETERS = [f.name for f in fields(PolicyRequest)]
VALUES = st.one_of(
    st.sampled_from(
        ["SEARCH", "REGISTRATION", "ADMIN", "INVITE", "SIP", "H323", "TRUE", "meet.bob@example.com"]
    ),
    st.sampled_from(["sip:meet.x@example.com", "", "0", "65536", "2026-01-01 00:00:00"]),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=10),
)
NAMES = st.one_of(st.sampled_from(PARAMETERS), st.text(max_size=12), st.just("POLICY_TYPE"))
CONTENT_TYPES = st.one_of(
    st.just(FORM),
    st.just(FORM + "; charset=utf-8"),
    st.sampled_from(["application/json", "text/plain", "text/xml", "multipart/form-data", ""]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    st.none(),
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["form", "valid", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "valid":
        destination = draw(
            st.sampled_from(["meet.a@example.com", "nobody@x", "sip:MEET.b@Example.com"])
        )
        return search(destination).encode()
    pairs = draw(st.lists(st.tuples(NAMES, VALUES), max_size=12))
    text = urlencode(pairs)
    if draw(st.booleans()):
        text += draw(st.sampled_from(["&", "&&", "=", "%", "%zz", "&a", "+%2"]))
    return text.encode()


def test_hypothesis_policy_endpoint_never_5xx_and_changes_nothing_g_v2() -> None:
    """Random form bodies (real parameter names and junk, any values), random bytes and
    content types: only 2xx / 4xx, a 200 is CPL the VCS can evaluate, and the stored
    configuration never changes."""
    with peer_lab(seed=31) as lab:
        change_passwords(lab, "admin", "root")
        assert lab.api("POST", ALIASES, MEET).status == 201
        before = everything(lab)

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(body=bodies(), content_type=CONTENT_TYPES)
        def run(body: bytes, content_type: str | None) -> None:
            reply = post_policy(lab, body, content_type=content_type)
            assert 200 <= reply.status < 500, reply.text
            if reply.status == 200:
                request = PolicyRequest.decode(body)
                assert evaluate_cpl(reply.text, request).action in (Action.ALLOW, Action.REJECT)
            assert everything(lab) == before

        run()
        got = counters(lab)
        assert got["answered"] > 0
        assert got["bad_requests"] > 0
