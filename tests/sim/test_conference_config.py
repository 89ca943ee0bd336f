"""Conference configuration in the simulated world: conference bridges, conference bridge
pools, service preferences and conference templates, over the JSON API and the pages.

Checklist: G-S1 (each object is a replicated entry; a bridge created on one clustered
peer appears on the others), G-B1 (two bridge types: a pool holds one type only),
G-R8 (per bridge protocol HTTP / HTTPS, the port following it), G-P5 / G-B2 (a peer
placed in standalone mode deletes all its conference bridges, which leaves the
cluster's alone). Refusals name the field by its label and save nothing; deleting
or renaming what is still referenced is refused naming who refers to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peers.core.conference_config import (
    FIELDS,
    Section,
    alias_templates_of,
    bridges_of,
    config_of,
    template_for_alias,
    templates_of,
)
from peers.core.placement import Bridge, BridgeKind, Pool, ServicePreference, Template
from peers.core.policy import ALIAS_FIELDS, ALIAS_PREFIX
from peers.web.openapi import document
from tests.sim.cluster_lab import IPS, ClusterLab
from tests.sim.peer_helpers import (
    PeerLab,
    Reply,
    csrf_of,
    field_errors,
    flash_of,
    parse_page,
    peer_lab,
)

DOC = document()
API = "/api/v1/conference/"
BRIDGES, POOLS, PREFERENCES, TEMPLATES = (
    API + "bridges",
    API + "pools",
    API + "preferences",
    API + "templates",
)
ALIASES = API + "aliases"
TS1 = {
    "name": "ts1",
    "type": "telepresence_server",
    "address": "127.1.3.1",
    "username": "admin",
    "password": "bridge-secret",
}
MCU1 = {
    "name": "mcu1",
    "type": "telepresence_mcu",
    "address": "mcu1.example.com",
    "protocol": "HTTP",
    "username": "admin",
}
POOL = {"name": "ts-pool", "type": "telepresence_server", "bridges": ["ts1"]}
PREFERENCE = {"name": "ts-first", "pools": ["ts-pool"]}
TEMPLATE = {"name": "meeting", "service_preference": "ts-first"}
ALIAS = {
    "name": "meet",
    "incoming_alias": r"meet\.(.+)@example\.com",
    "conference_name": r"meeting-\1",
    "template": "meeting",
}


@pytest.fixture
def lab() -> Iterator[PeerLab]:
    with peer_lab(seed=11) as the_lab:
        yield the_lab


@pytest.fixture
def admin(lab: PeerLab) -> PeerLab:
    assert lab.login().status == 200
    return lab


# ---------------------------------------------------------------- helpers
def route(path: str) -> str:
    """The OpenAPI path of a request path (`/bridges/ts1` -> `/bridges/{name}`)."""
    path = path.split("?", 1)[0]
    rest = path[len(API) :]
    return path if "/" not in rest else API + rest.split("/", 1)[0] + "/{name}"


def conforms(method: str, path: str, reply: Reply) -> Any:
    """The reply matches the OpenAPI document's schema for its status; its JSON."""
    operation = DOC["paths"][route(path)][method.lower()]
    response = operation["responses"][str(reply.status)]
    body = reply.json()
    jsonschema.validate(body, response["content"]["application/json"]["schema"])
    return body


def call(lab: PeerLab, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    reply = lab.api(method, path, body)
    assert reply.status == status, (method, path, reply.text)
    return conforms(method, path, reply)


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """An API object without `status` (a bridge's, as this peer's polling sees it)."""
    return {k: v for k, v in item.items() if k != "status"}


def shared(lab: PeerLab) -> list[Any]:
    return [(e.key, e.deleted, e.value) for e in lab.node.store.shared_entries()]


def everything(lab: PeerLab) -> tuple[Any, ...]:
    """What a refused change may not alter (the configuration log included)."""
    return (*lab.snapshot(), shared(lab), lab.node.store.config_log())


def build_chain(lab: PeerLab) -> None:
    """ts1 and mcu1, a pool of ts1, a preference of the pool, a template, an alias."""
    for path, body in (
        (BRIDGES, TS1),
        (BRIDGES, MCU1),
        (POOLS, POOL),
        (PREFERENCES, PREFERENCE),
        (TEMPLATES, TEMPLATE),
        (ALIASES, ALIAS),
    ):
        call(lab, "POST", path, body, 201)


def live(lab: PeerLab, prefix: str) -> dict[str, Any]:
    return {
        e.key: e.value
        for e in lab.node.store.shared_entries()
        if e.key.startswith(prefix) and not e.deleted
    }


# ---------------------------------------------------------------- bridges: API
def test_bridge_api_crud_password_write_only_port_follows_protocol_g_b1_g_r8_g_s1(
    lab: PeerLab,
) -> None:
    saved = call(lab, "POST", BRIDGES, TS1, 201)["saved"]
    assert saved == {
        "name": "ts1",
        "type": "telepresence_server",
        "address": "127.1.3.1",
        "protocol": "HTTPS",
        "port": 8443,  # tplab's bridges: HTTPS on 8443
        "username": "admin",
        "password_set": True,
        "enabled": True,
    }
    # G-S1: one replicated entry, password included (every peer talks to the bridge)
    assert live(lab, "conference_bridge:") == {
        "conference_bridge:ts1": {**TS1, "protocol": "HTTPS", "port": 8443, "enabled": True}
    }
    # ... but the configuration log never shows it
    log = lab.node.store.config_log()[0]
    assert log["setting"] == "conference_bridge:ts1"
    assert "bridge-secret" not in json.dumps(lab.node.store.config_log())
    assert json.loads(log["new"])["password"] == "(set)"

    mcu = call(lab, "POST", BRIDGES, MCU1, 201)["saved"]
    assert (mcu["port"], mcu["password_set"], mcu["address"]) == (8080, False, "mcu1.example.com")
    listed = call(lab, "GET", BRIDGES)["bridges"]
    assert [b["name"] for b in listed] == ["mcu1", "ts1"]
    assert plain(call(lab, "GET", BRIDGES + "/ts1")) == saved

    # G-R8: the protocol is per bridge; a default port follows it, a chosen one stays
    got = call(lab, "PUT", BRIDGES + "/ts1", {"protocol": "HTTP"})["saved"]
    assert (got["protocol"], got["port"], got["password_set"]) == ("HTTP", 8080, True)
    call(lab, "PUT", BRIDGES + "/ts1", {"port": 9443})
    got = call(lab, "PUT", BRIDGES + "/ts1", {"protocol": "HTTPS"})["saved"]
    assert (got["protocol"], got["port"]) == ("HTTPS", 9443)
    got = call(lab, "PUT", BRIDGES + "/ts1", {"password": "", "enabled": False})["saved"]
    assert (got["password_set"], got["enabled"]) == (False, False)

    renamed = call(lab, "PUT", BRIDGES + "/ts1", {"name": "TS 1"})["saved"]
    assert renamed["name"] == "TS 1"
    assert set(live(lab, "conference_bridge:")) == {
        "conference_bridge:TS 1",
        "conference_bridge:mcu1",
    }
    call(lab, "GET", BRIDGES + "/ts1", status=404)
    path = BRIDGES + "/" + quote("TS 1")
    assert call(lab, "DELETE", path) == {"deleted": "TS 1"}
    call(lab, "DELETE", path, status=404)
    assert [b["name"] for b in call(lab, "GET", BRIDGES)["bridges"]] == ["mcu1"]
    # the accessor the placement driver reads (cached until the store writes again)
    assert bridges_of(lab.node.store) == {
        "mcu1": Bridge("mcu1", BridgeKind.MCU, "mcu1.example.com", "HTTP", 8080, "admin", "", True)
    }


def test_pool_preference_template_api_crud_and_accessors_g_s1(lab: PeerLab) -> None:
    build_chain(lab)
    assert call(lab, "GET", POOLS)["pools"] == [POOL]
    assert call(lab, "GET", PREFERENCES + "/ts-first") == PREFERENCE
    assert call(lab, "GET", TEMPLATES)["templates"] == [
        {**TEMPLATE, "type": "meeting", "participant_limit": 0, "cascades_reserved": 0}
    ]
    assert call(lab, "GET", ALIASES + "/meet")["template"] == "meeting"
    for prefix in (
        "conference_pool:",
        "service_preference:",
        "conference_template:",
    ):
        assert len(live(lab, prefix)) == 1, prefix

    call(
        lab,
        "POST",
        POOLS,
        {"name": "mcu-pool", "type": "telepresence_mcu", "bridges": ["mcu1"]},
        201,
    )
    call(lab, "PUT", PREFERENCES + "/ts-first", {"pools": ["mcu-pool", "ts-pool"]})
    call(
        lab,
        "PUT",
        TEMPLATES + "/meeting",
        {"type": "lecture", "participant_limit": 50, "cascades_reserved": 2},
    )
    store = lab.node.store
    bridges, pools, preferences = config_of(store)
    assert set(bridges) == {"ts1", "mcu1"}
    assert pools["mcu-pool"] == Pool("mcu-pool", BridgeKind.MCU, ("mcu1",))
    assert preferences == {"ts-first": ServicePreference("ts-first", ("mcu-pool", "ts-pool"))}
    assert templates_of(store) == {"meeting": Template("meeting", "ts-first", "lecture", 50)}
    assert alias_templates_of(store) == {"meet": "meeting"}
    assert template_for_alias(store, "meet") == Template("meeting", "ts-first", "lecture", 50)
    assert template_for_alias(store, "nobody") is None

    # the alias's template may be cleared: an alias without one is allowed, as before
    assert call(lab, "PUT", ALIASES + "/meet", {"template": ""})["saved"]["template"] == ""
    assert template_for_alias(store, "meet") is None
    # unreferenced now, the chain deletes from the top down
    for path in (
        TEMPLATES + "/meeting",
        PREFERENCES + "/ts-first",
        POOLS + "/ts-pool",
        POOLS + "/mcu-pool",
        BRIDGES + "/ts1",
    ):
        call(lab, "DELETE", path)
    assert config_of(store) == (
        {"mcu1": bridges["mcu1"]},
        {},
        {},
    )


def test_aliases_stored_without_a_template_still_load_g_s1(lab: PeerLab) -> None:
    """An alias written before templates existed (no `template` field) is listed with
    none, decides as before, and can be given one."""
    old = {k: v for k, v in ALIAS.items() if k != "template"}
    old |= {"priority": 100, "role": "chairperson", "may_create": True}
    lab.node.store.put_shared(ALIAS_PREFIX + "meet", old)
    assert call(lab, "GET", ALIASES)["aliases"] == [{**old, "template": ""}]
    build = [(BRIDGES, TS1), (POOLS, POOL), (PREFERENCES, PREFERENCE), (TEMPLATES, TEMPLATE)]
    for path, body in build:
        call(lab, "POST", path, body, 201)
    assert call(lab, "PUT", ALIASES + "/meet", {"template": "meeting"})["saved"] == {
        **old,
        "template": "meeting",
    }


# ---------------------------------------------------------------- refusals
REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    (BRIDGES, {**TS1, "name": "TS1"}, "name", "a conference bridge named 'TS1' already exists"),
    (BRIDGES, {**TS1, "name": "a/b"}, "name", "may contain only"),
    (BRIDGES, {**TS1, "name": "x", "type": "codec"}, "type", "must be one of"),
    (BRIDGES, {**TS1, "name": "x", "address": "1.2.3"}, "address", "neither an IPv4"),
    (BRIDGES, {**TS1, "name": "x", "address": "a..b"}, "address", "neither an IPv4"),
    (BRIDGES, {**TS1, "name": "x", "address": "224.0.0.1"}, "address", "cannot be"),
    (BRIDGES, {**TS1, "name": "x", "protocol": "https"}, "protocol", "must be one of HTTPS"),
    (BRIDGES, {**TS1, "name": "x", "port": 0}, "port", "between 1 and 65535"),
    (BRIDGES, {**TS1, "name": "x", "port": "443"}, "port", "a JSON number"),
    (BRIDGES, {**TS1, "name": "x", "username": ""}, "username", "must not be empty"),
    (BRIDGES, {**TS1, "name": "x", "password": 5}, "password", "must be text"),
    (BRIDGES, {**TS1, "name": "x", "enabled": "yes"}, "enabled", "true or false"),
    (BRIDGES, {"name": "x", "type": "telepresence_server"}, "address", "is required"),
    (POOLS, {**POOL, "name": "p2", "bridges": ["ts9"]}, "bridges", "no conference bridge named"),
    (POOLS, {**POOL, "name": "p2", "bridges": ["mcu1"]}, "bridges", "'mcu1' is a TelePresence MCU"),
    (POOLS, {**POOL, "name": "p2", "bridges": ["ts1", "ts1"]}, "bridges", "must not repeat"),
    (POOLS, {**POOL, "name": "p2", "bridges": "ts1"}, "bridges", "must be a list"),
    (POOLS, {"name": "p2", "bridges": []}, "type", "is required"),
    (PREFERENCES, {"name": "p", "pools": []}, "pools", "at least one"),
    (PREFERENCES, {"name": "p", "pools": ["nope"]}, "pools", "no conference bridge pool named"),
    (PREFERENCES, {"name": "p", "pools": [f"p{i}" for i in range(6)]}, "pools", "at most 5"),
    (
        TEMPLATES,
        {**TEMPLATE, "name": "t"} | {"service_preference": "x"},
        "service_preference",
        "no service preference named 'x'",
    ),
    (
        TEMPLATES,
        {**TEMPLATE, "name": "t", "participant_limit": 1001},
        "participant_limit",
        "between 0 and 1000",
    ),
    (
        TEMPLATES,
        {**TEMPLATE, "name": "t", "cascades_reserved": -1},
        "cascades_reserved",
        "between 0 and 100",
    ),
    (TEMPLATES, {**TEMPLATE, "name": "t", "type": "webinar"}, "type", "meeting, lecture"),
    (
        ALIASES,
        {**ALIAS, "name": "m2", "template": "nope"},
        "template",
        "there is no conference template named 'nope'",
    ),
]


@pytest.mark.parametrize(("path", "body", "field", "words"), REFUSALS)
def test_api_refusals_name_the_field_and_save_nothing(
    lab: PeerLab, path: str, body: dict[str, Any], field: str, words: str
) -> None:
    build_chain(lab)
    before = everything(lab)
    reply = lab.api("POST", path, body)
    assert reply.status == 400, reply.text
    got = conforms("POST", path, reply)
    assert got["error"].startswith("nothing was saved")
    assert got["fields"][field].startswith(LABELS[path][field] + ":"), got
    assert words in got["fields"][field], got
    assert everything(lab) == before


LABELS = {
    BRIDGES: FIELDS[Section.BRIDGE],
    POOLS: FIELDS[Section.POOL],
    PREFERENCES: FIELDS[Section.PREFERENCE],
    TEMPLATES: FIELDS[Section.TEMPLATE],
    ALIASES: ALIAS_FIELDS,
}


def test_referenced_objects_cannot_be_deleted_renamed_or_retyped(lab: PeerLab) -> None:
    """Deleting or renaming what something still names is refused naming who names it;
    so is changing a bridge's type while a pool holds it. Nothing is saved."""
    build_chain(lab)
    call(
        lab,
        "POST",
        POOLS,
        {"name": "second", "type": "telepresence_server", "bridges": ["ts1"]},
        201,
    )
    before = everything(lab)
    for path, users in (
        (
            BRIDGES + "/ts1",
            "conference bridge 'ts1' is used by conference bridge pools 'second', 'ts-pool'",
        ),
        (
            POOLS + "/ts-pool",
            "conference bridge pool 'ts-pool' is used by service preference 'ts-first'",
        ),
        (
            PREFERENCES + "/ts-first",
            "service preference 'ts-first' is used by conference template 'meeting'",
        ),
        (
            TEMPLATES + "/meeting",
            "conference template 'meeting' is used by conference alias 'meet'",
        ),
    ):
        got = call(lab, "DELETE", path, status=400)
        assert got["error"] == f"nothing was deleted: {users}: remove it there first"
        renamed = call(lab, "PUT", path, {"name": "other"}, status=400)
        assert renamed["fields"]["name"] == f"Name: cannot rename it while in use: {users}"
    got = call(lab, "PUT", BRIDGES + "/ts1", {"type": "telepresence_mcu"}, status=400)
    assert got["fields"]["type"] == (
        "Type: cannot change to TelePresence MCU: conference bridge 'ts1' is used by "
        "conference bridge pools 'second', 'ts-pool'"
    )
    got = call(lab, "PUT", POOLS + "/ts-pool", {"type": "telepresence_mcu"}, status=400)
    assert "'ts1' is a TelePresence Server" in got["fields"]["bridges"]
    assert everything(lab) == before
    # a case-only rename of something unreferenced is fine; of a referenced one, refused
    call(lab, "PUT", BRIDGES + "/mcu1", {"name": "MCU1"})
    call(lab, "PUT", TEMPLATES + "/meeting", {"name": "Meeting"}, status=400)


def test_api_refuses_bad_bodies_unknown_fields_and_names(lab: PeerLab) -> None:
    build_chain(lab)
    before = everything(lab)
    for method, path, body, status, words in (
        ("POST", BRIDGES, {**TS1, "name": "x", "colour": "blue"}, 400, "colour: unknown field"),
        ("POST", BRIDGES, {**TS1, "name": "x", "password_set": True}, 400, "unknown field"),
        ("POST", POOLS, [], 400, "must be a JSON object"),
        ("PUT", BRIDGES + "/ts1", {}, 400, "nothing to change"),
        ("PUT", TEMPLATES + "/nobody", {"participant_limit": 3}, 404, "no conference template"),
        ("GET", PREFERENCES + "/nobody", None, 404, "no service preference named 'nobody'"),
        ("DELETE", POOLS + "/nobody", None, 404, "no conference bridge pool named"),
        ("GET", BRIDGES + "?x=1", None, 400, "unknown query parameter"),
        ("DELETE", BRIDGES + "?all=1", None, 400, "unknown query parameter"),
    ):
        reply = lab.api(method, path, body)
        assert reply.status == status, (method, path, reply.text)
        assert words in reply.text, reply.text
        conforms(method, path, reply)
    assert everything(lab) == before


# ---------------------------------------------------------------- delete all (G-P5)
def test_delete_all_bridges_empties_pools_that_stay_g_p5_g_b2(lab: PeerLab) -> None:
    """G-P5 / G-B2: every bridge is deleted and taken out of every pool in one change;
    pools (now empty) and what names them stay valid."""
    build_chain(lab)
    call(
        lab,
        "POST",
        POOLS,
        {"name": "mcu-pool", "type": "telepresence_mcu", "bridges": ["mcu1"]},
        201,
    )
    call(lab, "POST", POOLS, {"name": "empty", "type": "telepresence_mcu"}, 201)
    got = call(lab, "DELETE", BRIDGES)
    assert got == {"deleted": ["mcu1", "ts1"], "pools_emptied": ["mcu-pool", "ts-pool"]}
    assert call(lab, "GET", BRIDGES) == {"bridges": []}
    assert [p["bridges"] for p in call(lab, "GET", POOLS)["pools"]] == [[], [], []]
    assert call(lab, "GET", PREFERENCES + "/ts-first") == PREFERENCE
    assert live(lab, "conference_bridge:") == {}
    # nothing left: nothing written
    log = lab.node.store.config_log()
    assert call(lab, "DELETE", BRIDGES) == {"deleted": [], "pools_emptied": []}
    assert lab.node.store.config_log() == log
    # an empty pool is still a pool: bridges go back in
    call(lab, "POST", BRIDGES, TS1, 201)
    call(lab, "PUT", POOLS + "/ts-pool", {"bridges": ["ts1"]})


# ---------------------------------------------------------------- pages
def test_bridge_pages_add_edit_status_delete_and_delete_all(
    admin: PeerLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = admin
    empty = lab.page("/conference/bridges")
    assert "No conference bridges are configured." in empty.text
    assert "Delete all conference bridges" in empty.text
    form = {
        "name": "ts1",
        "type": "telepresence_server",
        "address": "127.1.3.1",
        "protocol": "HTTPS",
        "port": "",
        "username": "admin",
        "password": "bridge-secret",
        "enabled": "enabled",
    }
    reply = lab.post_form("/conference/bridges/new", form)
    assert reply.history == (303,)
    assert flash_of(reply.text) == "Saved: Conference bridge ts1 added."
    assert call(lab, "GET", BRIDGES + "/ts1")["port"] == 8443

    # the Status column shows what the node's bridge polling reports (here: a stand-in)
    status: dict[str, Any] = {}
    monkeypatch.setattr(lab.node, "bridge_status", lambda: status, raising=False)
    assert "<td>Not checked yet</td>" in lab.page("/conference/bridges").text
    assert "status" not in call(lab, "GET", BRIDGES + "/ts1")
    status["ts1"] = {"text": "Active: 40 ports free", "ok": True}
    page = lab.page("/conference/bridges").text
    assert '<span class="status ok">Active: 40 ports free</span>' in page
    assert call(lab, "GET", BRIDGES)["bridges"][0]["status"] == status["ts1"]
    status["ts1"] = {"text": "Unavailable: no answer", "ok": False}
    assert (
        '<span class="status failed">Unavailable: no answer</span>'
        in lab.page("/conference/bridges").text
    )

    edit = lab.page("/conference/bridges/edit/ts1").text
    assert "bridge-secret" not in edit  # never sent back
    assert 'id="bridges-port" name="port" type="text" value=""' in edit  # follows protocol
    before = everything(lab)
    bad = {**form, "name": "x", "address": "1.2.3", "port": "http", "password": "p"}
    reply = lab.post_form("/conference/bridges/edit/ts1", bad)
    assert reply.status == 400
    assert "Nothing was saved" in reply.text
    errors = field_errors(reply.text)
    assert any(e.startswith("Address: '1.2.3' is neither") for e in errors), errors
    assert "Port: must be a whole number" in errors
    assert 'value="p"' not in reply.text
    assert everything(lab) == before

    # blank password keeps it; protocol HTTP with a blank port: 8080
    changed = {**form, "protocol": "HTTP", "password": "", "enabled": "disabled"}
    reply = lab.post_form("/conference/bridges/edit/ts1", changed)
    assert flash_of(reply.text) == "Saved: Conference bridge ts1 saved."
    got = call(lab, "GET", BRIDGES + "/ts1")
    assert (got["port"], got["password_set"], got["enabled"]) == (8080, True, False)
    assert bridges_of(lab.node.store)["ts1"].password == "bridge-secret"

    call(lab, "POST", POOLS, POOL, 201)
    token = csrf_of(lab.page("/conference/bridges").text)
    reply = lab.post_form("/conference/bridges/delete", {"name": "ts1"}, csrf=token)
    assert reply.status == 400
    assert "Nothing was deleted: conference bridge &#39;ts1&#39; is used by" in reply.text
    reply = lab.post_form("/conference/bridges/delete-all", {}, csrf=token)
    assert flash_of(reply.text) == (
        "Saved: 1 conference bridge deleted; taken out of conference bridge pool ts-pool "
        "(left empty)."
    )
    assert call(lab, "GET", POOLS + "/ts-pool")["bridges"] == []
    reply = lab.post_form("/conference/bridges/delete", {"name": "ts1"}, csrf=token)
    assert reply.status == 404
    assert lab.post_form("/conference/bridges/delete-all", {}, csrf="forged").status == 403


def test_pool_preference_template_alias_pages(admin: PeerLab) -> None:
    lab = admin
    call(lab, "POST", BRIDGES, TS1, 201)
    call(lab, "POST", BRIDGES, MCU1, 201)
    new_pool = lab.page("/conference/pools/new").text
    assert 'type="checkbox" id="pools-bridge-2" name="bridges" value="ts1"' in new_pool
    # a pool may not hold a bridge of the other type (G-B1)
    before = everything(lab)
    form = {"name": "ts-pool", "type": "telepresence_server"}
    reply = lab.request(
        "POST",
        "/conference/pools/new",
        data=[
            *form.items(),
            ("bridges", "ts1"),
            ("bridges", "mcu1"),
            ("csrf_token", csrf_of(new_pool)),
        ],
    )
    assert reply.status == 400
    assert any(
        e.startswith("Bridges: 'mcu1' is a TelePresence MCU") for e in field_errors(reply.text)
    )
    assert 'value="mcu1" checked' in reply.text  # the choice is kept
    assert everything(lab) == before
    reply = lab.request(
        "POST",
        "/conference/pools/new",
        data=[*form.items(), ("bridges", "ts1"), ("csrf_token", csrf_of(new_pool))],
    )
    assert flash_of(reply.text) == "Saved: Conference bridge pool ts-pool added."
    assert call(lab, "GET", POOLS + "/ts-pool") == POOL

    page = lab.page("/conference/preferences/new").text
    for i in range(1, 6):
        assert f'<label for="preferences-pool{i}">Pool {i}</label>' in page
    reply = lab.post_form(
        "/conference/preferences/new",
        {
            "name": "ts-first",
            "pool1": "",
            "pool2": "ts-pool",
            "pool3": "",
            "pool4": "",
            "pool5": "",
        },
    )
    assert flash_of(reply.text) == "Saved: Service preference ts-first added."
    assert "1. ts-pool" in reply.text
    assert call(lab, "GET", PREFERENCES + "/ts-first") == PREFERENCE
    reply = lab.post_form("/conference/preferences/new", {"name": "none"})
    assert "Pools: must name at least one conference bridge pool" in field_errors(reply.text)

    template_form = {
        "name": "meeting",
        "type": "lecture",
        "service_preference": "ts-first",
        "participant_limit": "25",
        "cascades_reserved": "1",
    }
    reply = lab.post_form("/conference/templates/new", {**template_form, "participant_limit": "x"})
    assert "Participant limit: must be a whole number" in field_errors(reply.text)
    reply = lab.post_form("/conference/templates/new", template_form)
    assert flash_of(reply.text) == "Saved: Conference template meeting added."
    assert call(lab, "GET", TEMPLATES + "/meeting") == {
        "name": "meeting",
        "type": "lecture",
        "service_preference": "ts-first",
        "participant_limit": 25,
        "cascades_reserved": 1,
    }
    reply = lab.post_form(
        "/conference/templates/edit/meeting", {**template_form, "participant_limit": "0"}
    )
    assert "<td>No limit</td>" in reply.text

    alias_form = lab.page("/conference/aliases/new").text
    assert '<option value="meeting">meeting</option>' in alias_form
    alias = {**ALIAS, "priority": "10", "role": "guest", "may_create": "yes"}
    reply = lab.post_form("/conference/aliases/new", alias)
    assert flash_of(reply.text) == "Saved: Conference alias meet added."
    assert "<td>meeting</td>" in reply.text
    assert call(lab, "GET", ALIASES + "/meet")["template"] == "meeting"
    reply = lab.post_form("/conference/aliases/edit/meet", {**alias, "template": "gone"})
    assert "Conference template: there is no conference template named 'gone'" in field_errors(
        reply.text
    )

    token = csrf_of(lab.page("/conference/templates").text)
    reply = lab.post_form("/conference/templates/delete", {"name": "meeting"}, csrf=token)
    assert reply.status == 400
    assert "is used by conference alias &#39;meet&#39;" in reply.text
    assert lab.page("/conference/pools/edit/nobody").status == 404


def test_conference_pages_and_forms_are_accessible_without_javascript(admin: PeerLab) -> None:
    """One h1, every visible control labelled, unique ids, plain POST forms, no scripts."""
    build_chain(admin)
    paths = [
        f"/conference/{kind}{suffix}"
        for kind, name in (
            ("bridges", "ts1"),
            ("pools", "ts-pool"),
            ("preferences", "ts-first"),
            ("templates", "meeting"),
        )
        for suffix in ("", "/new", f"/edit/{name}")
    ]
    for path in [*paths, "/conference/aliases/new", "/conference/aliases/edit/meet"]:
        reply = admin.page(path)
        assert reply.status == 200, path
        page = parse_page(reply.text)
        assert len(page.h1) == 1, path
        assert "<script" not in reply.text, path
        visible = [c for c in page.controls if c.get("type") != "hidden"]
        ids = [c.get("id", "") for c in visible]
        assert all(ids), (path, visible)
        assert len(set(ids)) == len(ids), (path, ids)
        assert set(ids) <= set(page.labels_for), (path, set(ids) - set(page.labels_for))
        assert all(form.get("method") == "post" for form in page.forms), path


# ---------------------------------------------------------------- hypothesis
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["telepresence_server", "telepresence_mcu", "HTTP", "HTTPS", "ts1"])
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
BODY_KEYS = st.sampled_from([*FIELDS[Section.BRIDGE], "password_set", "status", "x"])


def test_hypothesis_junk_bridge_bodies_only_2xx_4xx_and_store_unchanged_on_4xx() -> None:
    """POST /api/v1/conference/bridges with junk: objects of real and unknown fields with
    any JSON values, other JSON, non-JSON bytes. Only 201 or 4xx; a 4xx saves nothing."""
    with peer_lab(seed=23) as lab:
        call(lab, "POST", BRIDGES, TS1, 201)

        @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            body=st.one_of(
                st.dictionaries(BODY_KEYS, JSON_VALUES, max_size=9),
                st.builds(
                    lambda name, junk: {**TS1, "name": name, **junk},
                    st.text(alphabet="abcXYZ019 ._-/", min_size=1, max_size=8),
                    st.dictionaries(BODY_KEYS, JSON_VALUES, max_size=3),
                ),
                JSON_VALUES,
            ),
            raw=st.one_of(st.none(), st.binary(max_size=40)),
        )
        def run(body: Any, raw: bytes | None) -> None:
            before = everything(lab)
            sent = raw if raw is not None else json.dumps(body).encode()
            reply = lab.api("POST", BRIDGES, raw=sent)
            assert reply.status in (201, 400), reply.text
            if reply.status == 201:
                saved = conforms("POST", BRIDGES, reply)["saved"]
                call(lab, "DELETE", BRIDGES + "/" + quote(saved["name"], safe=""))
            else:
                assert everything(lab) == before
                assert "error" in reply.json()

        run()


# ---------------------------------------------------------------- cluster (G-S1, G-P5)
INITIAL, SECOND, THIRD = IPS["conductor-initial"], IPS["conductor-2"], IPS["conductor-3"]


def form_cluster(lab: ClusterLab) -> None:
    """G-P1 on conductor-initial, then G-P2 for conductor-2 and conductor-3."""
    lab.put("conductor-initial", "clustering", {"key": "cluster-secret", "peer1": INITIAL})
    lab.restart("conductor-initial")
    members = [INITIAL]
    for host in ("conductor-2", "conductor-3"):
        members.append(IPS[host])
        fields = {f"peer{i + 1}": ip for i, ip in enumerate(members)}
        for existing, ip in IPS.items():
            if ip in members and existing != host:
                lab.put(existing, "clustering", fields)
                lab.restart(existing)
        lab.put(host, "clustering", {"key": "cluster-secret", **fields})
        lab.restart(host)
    lab.wait(20)


def names(lab: ClusterLab, host: str, kind: str) -> list[str]:
    status, answer = lab.api(host, "GET", API + kind)
    assert status == 200, answer
    return [item["name"] for item in answer[kind]]


def test_bridges_replicate_and_standalone_delete_all_leaves_the_cluster_alone_g_s1_g_p5() -> None:
    """G-S1: a bridge and pool created on one clustered peer appear on the others.
    G-P5 / G-B2: the removed peer, placed in standalone mode, deletes all its conference
    bridges; the cluster keeps its own."""
    lab = ClusterLab(seed=3)
    try:
        form_cluster(lab)
        status, answer = lab.api("conductor-2", "POST", BRIDGES, TS1)
        assert status == 201, answer
        status, answer = lab.api("conductor-3", "POST", POOLS, POOL)
        assert status == 201, answer
        lab.wait(5)
        for host in IPS:
            assert names(lab, host, "bridges") == ["ts1"], host
            assert names(lab, host, "pools") == ["ts-pool"], host
        # the password reached every peer too (each talks to the bridge itself)
        assert bridges_of(lab.nodes["conductor-initial"].store)["ts1"].password == "bridge-secret"

        # G-P5: conductor-3 leaves: standalone mode (key and peers deleted, restart) ...
        lab.put("conductor-3", "clustering", {"key": "", "peer1": "", "peer2": "", "peer3": ""})
        lab.restart("conductor-3")
        # ... deletes all its conference bridges (while the others still list it) ...
        status, answer = lab.api("conductor-3", "DELETE", BRIDGES)
        assert (status, answer) == (200, {"deleted": ["ts1"], "pools_emptied": ["ts-pool"]})
        for host in ("conductor-initial", "conductor-2"):
            lab.put(host, "clustering", {"peer3": ""})
        lab.wait(30)
        assert names(lab, "conductor-3", "bridges") == []
        for host in ("conductor-initial", "conductor-2"):
            assert names(lab, host, "bridges") == ["ts1"], host
            _, pool = lab.api(host, "GET", POOLS + "/ts-pool")
            assert pool["bridges"] == ["ts1"], host
    finally:
        lab.close()
