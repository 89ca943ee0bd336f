"""Every admin page of a Conductor peer and its JSON twin, over HTTPS in the simulated world.

A `PeerNode` runs on `conductor-a`; the client is the `vcs` host. Each page is
tested with valid input (saved, visible on GET) and invalid input (answered
400 with a message naming the field label, the submitted values kept, and the
store unchanged), and the same for its API twin. Hypothesis sends generated
bad input to every page and every API operation.

Checklist: G-P7 (clustering and IP take effect after Restart), G-R4 (unique
peer addresses), G-R11 (DNS servers, FQDN), G-R13 (LAN 1 address fixed while
clustered), G-S2 (peer-specific pages: certificates, root password, logs),
G-P3 (default passwords raise alarms until changed).
"""

from __future__ import annotations

import html
import ssl
from collections.abc import Iterator
from typing import Any

import aiohttp
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.http import NetsimConnector
from peers.core.settings import SETTINGS, page_settings
from peers.store import DEFAULT_PASSWORD
from peers.web import make_app
from peers.web.openapi import document
from peers.web.views import MENU, SETTINGS_PAGES, field_value
from tests.sim.peer_helpers import (
    CLIENT_IP,
    OTHER_PEER_IP,
    PEER_IP,
    PeerLab,
    Reply,
    csrf_of,
    field_errors,
    flash_of,
    parse_page,
    peer_lab,
)

DOC = document()
NEW_ADMIN_PASSWORD = "Conductor-admin-1"
NEW_ROOT_PASSWORD = "Conductor-root-22"


@pytest.fixture
def lab() -> Iterator[PeerLab]:
    with peer_lab() as the_lab:
        yield the_lab


@pytest.fixture
def admin(lab: PeerLab) -> PeerLab:
    """A lab with the browser logged in as admin."""
    reply = lab.login()
    assert reply.status == 200, reply.text
    assert reply.history == (303,)
    return lab


# ---------------------------------------------------------------- helpers
def api_name(key: str) -> str:
    return key.split(".", 1)[1]


def form_of(lab: PeerLab, page: str) -> dict[str, str]:
    """The page's form as a browser would submit it unchanged."""
    values = lab.node.store.effective()
    return {s.key: field_value(s.key, values[s.key]) for s in page_settings(page)}


def conforms(method: str, path: str, reply: Reply) -> Any:
    """The reply matches the OpenAPI document's schema for its status; its JSON."""
    route = path.split("?", 1)[0]
    operation = DOC["paths"][route][method.lower()]
    response = operation["responses"][str(reply.status)]
    body = reply.json()
    jsonschema.validate(body, response["content"]["application/json"]["schema"])
    return body


def assert_unchanged(lab: PeerLab, before: Any) -> None:
    assert lab.snapshot() == before


#: page -> a valid form (strings, as a browser sends them)
VALID_FORMS: dict[str, dict[str, str]] = {
    "administration": {
        "administration.system_name": "X032",
        "administration.login_banner": "Authorised use only.\nAll activity is logged.",
        "administration.session_timeout_min": "45",
    },
    "clustering": {
        "clustering.key": "cluster-secret",
        "clustering.peer1": PEER_IP,
        "clustering.peer2": OTHER_PEER_IP,
        "clustering.peer3": "",
    },
    "dns": {
        "dns.host_name": "x032",
        "dns.domain": "Example.com",
        "dns.servers": "127.60.0.53\n127.60.0.54",
    },
    "time": {"time.ntp_servers": "ntp1.example.com, 127.60.0.123", "time.zone": "Europe/London"},
    "ip": {
        "ip.lan1_address": "127.60.0.5",
        "ip.lan1_mask": "255.255.255.0",
        "ip.gateway": "127.60.0.254",
        "ip.additional_addresses": "127.60.0.7",
    },
    "ethernet": {"ethernet.speed": "1000 full", "ethernet.mtu": "1400"},
    "snmp": {
        "snmp.enabled": "On",
        "snmp.community": "tplab",
        "snmp.contact": "noc@example.com",
        "snmp.location": "Lab rack 3",
    },
    "logging": {"logging.syslog_servers": "syslog.example.com"},
    "access": {"access.ssh": "Off", "access.lcd_panel": "Off"},
    "locations": {"locations.adhoc_ip": "127.60.0.20", "locations.rendezvous_ip": "127.60.0.21"},
    "options": {"options.release_key": "RK-0042-ABCD", "options.capacity": "select"},
    "policy": {
        "policy.policy_path": "tplab/policy",
        "policy.status_path": "/tplab/status",
        "policy.empty_conference_end_s": "120",
        "policy.bridge_poll_s": "10",
    },
}
RESTART_PAGES = {"clustering", "ip"}

#: (page, field key, bad value, words the message must contain)
INVALID: list[tuple[str, str, str, str]] = [
    ("administration", "administration.session_timeout_min", "0", "between 1 and 1440"),
    ("administration", "administration.system_name", "s" * 65, "at most 64"),
    ("clustering", "clustering.peer1", "300.1.2.4", "not a valid IPv4 address"),
    ("clustering", "clustering.peer2", "224.0.0.1", "cannot be a host address"),
    ("clustering", "clustering.key", "k" * 129, "at most 128 characters"),
    ("dns", "dns.host_name", "-x032-", "letters, digits and hyphens"),
    ("dns", "dns.domain", "exa mple.com", "not a valid domain name"),
    ("dns", "dns.servers", "127.60.0.53\n1.2.3", "neither an IPv4 address nor a host name"),
    ("time", "time.zone", "not a zone", "not a time zone name"),
    ("time", "time.ntp_servers", "a\nb\nc\nd\ne\nf", "at most 5 entries"),
    ("ip", "ip.lan1_address", "127.60.0.256", "not a valid IPv4 address"),
    ("ip", "ip.lan1_mask", "255.0.255.0", "not a valid subnet mask"),
    ("ip", "ip.gateway", "gateway", "not a valid IPv4 address"),
    ("ip", "ip.additional_addresses", "127.60.0.7 127.60.0.7", "must not repeat"),
    ("ethernet", "ethernet.mtu", "9000", "between 576 and 1500"),
    ("ethernet", "ethernet.speed", "fast", "must be one of"),
    ("snmp", "snmp.enabled", "maybe", "On or Off"),
    ("snmp", "snmp.community", "c" * 33, "at most 32"),
    ("logging", "logging.syslog_servers", "a b c d e", "at most 4 entries"),
    ("access", "access.ssh", "perhaps", "On or Off"),
    ("locations", "locations.adhoc_ip", "1.2.3", "not a valid IPv4 address"),
    ("options", "options.capacity", "huge", "must be one of"),
    ("options", "options.release_key", "r" * 65, "at most 64"),
    ("policy", "policy.policy_path", "api/v1/policy", "the admin pages and API use it"),
    ("policy", "policy.status_path", "pdp/../status", "is not a URL path"),
    ("policy", "policy.status_path", "pdp/policy", "must differ from the Policy path"),
    ("policy", "policy.empty_conference_end_s", "1", "between 5 and 86400"),
    ("policy", "policy.bridge_poll_s", "0", "between 1 and 3600"),
]


# ------------------------------------------------------- authentication
def test_api_refuses_missing_or_wrong_basic_credentials_and_logs_them(lab: PeerLab) -> None:
    """401 with a JSON message and a Basic challenge; each failure is in the event log."""
    for kwargs in (
        {"authorization": ""},
        {"password": "wrong-password"},
        {"user": "root", "password": DEFAULT_PASSWORD},
        {"authorization": "Basic !!!not-base64"},
        {"authorization": "Bearer abc"},
    ):
        reply = lab.api("GET", "/api/v1/system/dns", **kwargs)
        assert reply.status == 401, kwargs
        assert "authentication required" in conforms("GET", "/api/v1/system/dns", reply)["error"]
    failed = [e for e in lab.node.store.events() if e["event"] == "login_failed"]
    assert [e["detail"]["via"] for e in failed] == ["api", "api"]
    assert {e["detail"]["user"] for e in failed} == {"admin", "root"}
    assert all(e["detail"]["source"] == CLIENT_IP for e in failed)
    assert lab.api("GET", "/api/v1/system/dns").status == 200


def test_failed_page_login_is_refused_and_appears_in_the_event_log(lab: PeerLab) -> None:
    reply = lab.login(password="not-the-password")
    assert reply.status == 401
    assert "Login failed: incorrect username or password." in reply.text
    assert lab.page("/system/dns").url.endswith("/login?next=/system/dns")
    lab.login()
    events = lab.page("/status/events")
    assert events.status == 200
    assert "login_failed" in events.text
    assert "via=web" in events.text
    body = conforms("GET", "/api/v1/status/events", lab.api("GET", "/api/v1/status/events"))
    assert any(e["event"] == "login_failed" and e["detail"]["via"] == "web" for e in body["events"])


def test_pages_need_a_login(lab: PeerLab) -> None:
    for _, items in MENU:
        for _, path in items:
            reply = lab.page(path)
            assert reply.history == (303,), path
            assert "/login?next=" in reply.url, path
    reply = lab.request("POST", "/system/dns", data={"dns.host_name": "x"})
    assert "/login" in reply.url
    assert lab.node.store.get("dns.host_name") == "conductor-a"


# ------------------------------------------------------- accessibility
def all_page_paths() -> list[str]:
    return [path for _, items in MENU for _, path in items]


def test_every_page_is_accessible_without_javascript(admin: PeerLab) -> None:
    """One h1, the menu in a nav, every control labelled, plain HTML forms, no scripts."""
    for path in all_page_paths():
        reply = admin.page(path)
        assert reply.status == 200, path
        page = parse_page(reply.text)
        assert len(page.h1) == 1, path
        assert page.navs == 1, path
        assert "<script" not in reply.text, path
        visible = [c for c in page.controls if c.get("type") != "hidden"]
        ids = [c.get("id", "") for c in visible]
        assert all(ids), (path, visible)
        assert len(set(ids)) == len(ids), (path, ids)
        assert set(ids) <= set(page.labels_for), (path, set(ids) - set(page.labels_for))
        for form in page.forms:
            assert form.get("method") == "post"
            assert form.get("action", "").startswith("/")
        if page.forms:
            assert "csrf_token" in reply.text, path
    login = parse_page(admin.request("GET", "/login").text)
    assert login.h1 == ["Login"]
    assert {c["id"] for c in login.controls} <= set(login.labels_for)


# ------------------------------------------------------- settings pages
@pytest.mark.parametrize("page", sorted(VALID_FORMS))
def test_settings_page_saves_valid_input(admin: PeerLab, page: str) -> None:
    """Valid input is saved and shown; clustering and IP wait for a restart (G-P7)."""
    spec = SETTINGS_PAGES[page]
    form = VALID_FORMS[page]
    active_before = admin.node.store.settings()
    reply = admin.post_form(spec.path, form)
    assert reply.status == 200, field_errors(reply.text)
    assert reply.history == (303,)
    banner = flash_of(reply.text)
    assert banner.startswith("Saved: Saved peer address." if page == "clustering" else "Saved."), (
        banner
    )
    expected = {k: SETTINGS[k].validate(v) for k, v in form.items()}
    store = admin.node.store
    assert {k: store.effective()[k] for k in form} == expected
    if page in RESTART_PAGES:
        assert "A restart is required for the changes to take effect." in banner
        assert "Restart required" in reply.text
        changed = {k for k, v in expected.items() if active_before[k] != v}
        assert set(store.pending()) == changed
        assert all(store.settings()[k] == active_before[k] for k in changed)
    else:
        assert store.pending() == {}
        assert {k: store.settings()[k] for k in form} == expected
    shown = admin.page(spec.path).text
    for key, value in expected.items():
        if SETTINGS[key].kind in ("text", "list") and value:
            assert html.escape(field_value(key, value), quote=True) in shown, key
    api = conforms("GET", spec.api_path, admin.api("GET", spec.api_path))
    if page not in RESTART_PAGES:
        for key, value in expected.items():
            assert api["settings"][api_name(key)] == value
    entries = admin.node.store.config_log()
    assert {e["setting"] for e in entries} >= {
        k for k, v in expected.items() if v != active_before[k]
    }


@pytest.mark.parametrize("page", sorted(VALID_FORMS))
def test_settings_api_saves_valid_input(lab: PeerLab, page: str) -> None:
    """The API twin takes JSON values of the documented types; GET shows them (or
    them pending, for restart settings, G-P7)."""
    spec = SETTINGS_PAGES[page]
    expected = {k: SETTINGS[k].validate(v) for k, v in VALID_FORMS[page].items()}
    body = {api_name(k): v for k, v in expected.items()}
    active_before = lab.node.store.settings()
    reply = lab.api("PUT", spec.api_path, body)
    assert reply.status == 200, reply.text
    saved = conforms("PUT", spec.api_path, reply)
    got = conforms("GET", spec.api_path, lab.api("GET", spec.api_path))
    if page in RESTART_PAGES:
        changed = {api_name(k) for k, v in expected.items() if v != active_before[k]}
        assert set(saved["pending"]) == changed
        assert saved["restart_required"] is True
        assert set(got["pending"]) == changed
        assert got["restart_required"] is True
    else:
        assert saved["saved"] == body
        assert saved["pending"] == []
        assert got["settings"] == body
    assert {k: lab.node.store.effective()[k] for k in expected} == expected


@pytest.mark.parametrize(("page", "key", "bad", "words"), INVALID)
def test_settings_page_refuses_invalid_input(
    admin: PeerLab, page: str, key: str, bad: str, words: str
) -> None:
    """400 with the field label and the reason; the form keeps what was typed; nothing saved."""
    spec = SETTINGS_PAGES[page]
    form = {**form_of(admin, page), key: bad}
    before = admin.snapshot()
    reply = admin.post_form(spec.path, form)
    assert reply.status == 400
    assert reply.history == ()
    assert "Nothing was saved" in reply.text
    errors = field_errors(reply.text)
    assert any(e.startswith(SETTINGS[key].label + ":") and words in e for e in errors), errors
    assert html.escape(bad, quote=True) in reply.text
    assert 'aria-invalid="true"' in reply.text
    assert_unchanged(admin, before)


@pytest.mark.parametrize(("page", "key", "bad", "words"), INVALID)
def test_settings_api_refuses_invalid_input(
    lab: PeerLab, page: str, key: str, bad: str, words: str
) -> None:
    spec = SETTINGS_PAGES[page]
    before = lab.snapshot()
    reply = lab.api("PUT", spec.api_path, {api_name(key): bad})
    assert reply.status == 400
    body = conforms("PUT", spec.api_path, reply)
    message = body["fields"][api_name(key)]
    assert message.startswith(SETTINGS[key].label + ":")
    assert words in message
    assert body["error"].startswith("nothing was saved")
    assert_unchanged(lab, before)


def test_duplicate_peer_address_refused_on_page_and_api_g_r4(admin: PeerLab) -> None:
    """G-R4: every peer has a unique IP address."""
    before = admin.snapshot()
    form = {**VALID_FORMS["clustering"], "clustering.peer3": PEER_IP}
    reply = admin.post_form("/system/clustering", form)
    assert reply.status == 400
    assert (
        f"Peer 3 IP address: {PEER_IP} is already Peer 1 IP address; every peer must have "
        "a unique IP address" in field_errors(reply.text)
    )
    reply = admin.api("PUT", "/api/v1/system/clustering", {"peer1": PEER_IP, "peer2": PEER_IP})
    assert reply.status == 400
    assert "unique IP address" in reply.json()["fields"]["peer2"]
    assert_unchanged(admin, before)
    # a pending address counts too: peer1 saved (pending), then peer2 the same
    assert admin.api("PUT", "/api/v1/system/clustering", {"peer1": PEER_IP}).status == 200
    after_first = admin.snapshot()
    reply = admin.api("PUT", "/api/v1/system/clustering", {"peer2": PEER_IP})
    assert reply.status == 400
    assert "Peer 2 IP address" in reply.json()["fields"]["peer2"]
    assert_unchanged(admin, after_first)


WRONG_TYPES: list[tuple[str, str, Any]] = [
    ("dns", "host_name", 5),
    ("dns", "host_name", None),
    ("dns", "servers", [1, 2]),
    ("dns", "servers", {"a": "127.0.0.1"}),
    ("clustering", "key", ["secret"]),
    ("clustering", "peer1", 127),
    ("ethernet", "mtu", 1400.5),
    ("ethernet", "mtu", True),
    ("ethernet", "speed", 1000),
    ("snmp", "enabled", 1),
    ("snmp", "enabled", None),
    ("ip", "additional_addresses", "127.60.0.7,[]"),
    ("options", "capacity", False),
]


@pytest.mark.parametrize(("page", "name", "value"), WRONG_TYPES)
def test_settings_api_refuses_wrong_json_types(
    lab: PeerLab, page: str, name: str, value: Any
) -> None:
    spec = SETTINGS_PAGES[page]
    label = SETTINGS[f"{page}.{name}"].label
    before = lab.snapshot()
    reply = lab.api("PUT", spec.api_path, {name: value})
    assert reply.status == 400, reply.text
    assert conforms("PUT", spec.api_path, reply)["fields"][name].startswith(label + ":")
    assert_unchanged(lab, before)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"host_name": "x", "colour": "blue"}', "unknown field(s) colour"),
        (b"{}", "nothing to change"),
        (b"[]", "must be a JSON object"),
        (b'"x032"', "must be a JSON object"),
        (b"{not json", "not valid JSON"),
        (b'{"host_name": NaN}', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_settings_api_refuses_bad_bodies(lab: PeerLab, raw: bytes, words: str) -> None:
    before = lab.snapshot()
    reply = lab.api("PUT", "/api/v1/system/dns", raw=raw)
    assert reply.status == 400
    assert words in conforms("PUT", "/api/v1/system/dns", reply)["error"]
    assert_unchanged(lab, before)


FORM_POSTS = [
    *(spec.path for spec in SETTINGS_PAGES.values()),
    "/users",
    "/maintenance/certificates",
    "/maintenance/restart",
]


@pytest.mark.parametrize("path", FORM_POSTS)
def test_forms_without_a_valid_csrf_token_are_refused(admin: PeerLab, path: str) -> None:
    """A missing or wrong token: 403 with a clear message, nothing saved, no restart."""
    page = path.rsplit("/", 1)[1]
    form = dict(VALID_FORMS.get(page if page != "option-keys" else "options", {}))
    if path == "/users":
        form = {"account": "admin", "new_password": "x" * 10, "confirm_password": "x" * 10}
    before = admin.snapshot()
    certificates = admin.node.store.certificates()
    for token in (False, "forged-token", csrf_of(admin.page(path).text) + "x"):
        reply = admin.post_form(path, form, csrf=token)
        assert reply.status == 403, (path, token)
        assert "security token of this form is missing or out of date" in reply.text
        assert "nothing was saved" in reply.text
    assert_unchanged(admin, before)
    assert admin.node.store.certificates() == certificates
    assert admin.running()
    rejected = [e for e in admin.node.store.events() if e["event"] == "csrf_rejected"]
    assert len(rejected) == 3
    assert {e["detail"]["path"] for e in rejected} == {path}


# --------------------------------------------------------- restart (G-P7)
def test_clustering_takes_effect_after_restart_g_p7(admin: PeerLab) -> None:
    """Saved clustering settings are pending; the pages say a restart is required;
    after Maintenance > Restart options > Restart they are in force."""
    form = {**VALID_FORMS["clustering"], "clustering.peer2": ""}
    reply = admin.post_form("/system/clustering", form)
    assert flash_of(reply.text) == (
        "Saved: Saved peer address. A restart is required for the changes to take effect."
    )
    assert "Saved; takes effect after a restart (now: (empty))" in reply.text
    store = admin.node.store
    assert store.settings()["clustering.peer1"] == ""
    assert store.settings()["clustering.key"] == ""
    assert store.pending() == {"clustering.key": "cluster-secret", "clustering.peer1": PEER_IP}
    assert "This system" not in reply.text
    for path in ("/", "/system/dns", "/maintenance/restart"):
        assert "Restart required" in admin.page(path).text, path
    restart = admin.page("/maintenance/restart").text
    assert "Settings waiting for a restart: Cluster pre-shared key, Peer 1 IP address." in restart
    status = conforms("GET", "/api/v1/status", admin.api("GET", "/api/v1/status"))
    assert status["restart_required"] is True
    assert status["cluster"]["clustered"] is False
    assert status["cluster"]["changes_pending"] is True
    assert 20007 in {a.code for a in store.alarms()}

    admin.restart(via="page")

    store = admin.node.store
    assert store.pending() == {}
    assert store.settings()["clustering.peer1"] == PEER_IP
    assert store.settings()["clustering.key"] == "cluster-secret"
    page = admin.page("/system/clustering")  # the session survives the restart
    assert page.status == 200
    assert '<span class="status ok">This system</span>' in page.text
    assert "Restart required" not in page.text
    assert 20007 not in {a.code for a in store.alarms()}
    status = conforms("GET", "/api/v1/status", admin.api("GET", "/api/v1/status"))
    assert status["cluster"]["clustered"] is True
    assert status["cluster"]["peers"] == [
        {"label": "Peer 1 IP address", "address": PEER_IP, "status": "This system", "state": "ok"}
    ]
    api = conforms(
        "GET", "/api/v1/system/clustering", admin.api("GET", "/api/v1/system/clustering")
    )
    assert api["settings"] == {"key_set": True, "peer1": PEER_IP, "peer2": "", "peer3": ""}
    assert api["status"]["peer_status"] == {
        "clustering.peer1": {"text": "This system", "state": "ok"}
    }


def test_ip_settings_take_effect_after_restart_g_p7(lab: PeerLab) -> None:
    body = {"lan1_address": "127.60.0.5", "lan1_mask": "255.255.255.0", "gateway": "127.60.0.254"}
    reply = lab.api("PUT", "/api/v1/system/ip", body)
    assert conforms("PUT", "/api/v1/system/ip", reply)["pending"] == sorted(body)
    assert lab.node.store.settings()["ip.lan1_address"] == PEER_IP
    assert lab.api("GET", "/api/v1/system/ip").json()["pending"] == body
    lab.restart()
    got = lab.api("GET", "/api/v1/system/ip").json()
    assert {k: got["settings"][k] for k in body} == body
    assert got["pending"] == {}
    assert got["restart_required"] is False
    assert lab.api("GET", "/api/v1/status").json()["lan1_address"] == "127.60.0.5"


def test_lan1_address_cannot_change_while_clustered_g_r13(admin: PeerLab) -> None:
    """G-R13: refused on the page and in the API; additional addresses may change."""
    assert admin.api("PUT", "/api/v1/system/clustering", {"peer1": PEER_IP}).status == 200
    # only once the clustering is in force: before the restart the peer is standalone
    admin.restart()
    before = admin.snapshot()
    form = {**form_of(admin, "ip"), "ip.lan1_address": "127.60.0.5"}
    reply = admin.post_form("/system/ip", form)
    assert reply.status == 400
    assert any(
        e.startswith("LAN 1 IPv4 address: cannot be changed while this peer is part of a cluster")
        for e in field_errors(reply.text)
    )
    reply = admin.api("PUT", "/api/v1/system/ip", {"lan1_address": "127.60.0.5"})
    assert reply.status == 400
    assert "part of a cluster" in reply.json()["fields"]["lan1_address"]
    assert_unchanged(admin, before)
    # saving the page unchanged, or only additional addresses, is fine
    form = {**form_of(admin, "ip"), "ip.additional_addresses": "127.60.0.7"}
    assert admin.post_form("/system/ip", form).status == 200
    assert admin.node.store.pending() == {"ip.additional_addresses": ["127.60.0.7"]}


# ---------------------------------------------------------- DNS (G-R11)
def test_dns_page_flags_missing_servers_and_shows_the_fqdn_g_r11(admin: PeerLab) -> None:
    page = admin.page("/system/dns").text
    assert "No DNS server is configured: at least one is required." in page
    assert "FQDN of this system: <strong>conductor-a</strong>" in page
    assert 25010 in {a.code for a in admin.node.store.alarms()}
    api = admin.api("GET", "/api/v1/system/dns").json()
    assert api["status"] == {"fqdn": "conductor-a", "dns_missing": True}

    admin.post_form("/system/dns", VALID_FORMS["dns"])
    page = admin.page("/system/dns").text
    assert "No DNS server is configured" not in page
    assert "FQDN of this system: <strong>x032.example.com</strong>" in page
    assert 25010 not in {a.code for a in admin.node.store.alarms()}
    assert admin.api("GET", "/api/v1/system/dns").json()["status"] == {
        "fqdn": "x032.example.com",
        "dns_missing": False,
    }
    assert admin.api("GET", "/api/v1/status").json()["fqdn"] == "x032.example.com"


def test_time_page_shows_the_ntp_state(admin: PeerLab) -> None:
    assert ">Not synchronized<" in admin.page("/system/time").text
    admin.post_form("/system/time", VALID_FORMS["time"])
    assert ">Synchronized<" in admin.page("/system/time").text
    assert admin.api("GET", "/api/v1/system/time").json()["status"]["ntp_state"] == "Synchronized"


# -------------------------------------------------------- status pages
def test_overview_page_and_its_api_twin(admin: PeerLab) -> None:
    node = admin.node
    page = admin.page("/")
    assert page.status == 200
    assert parse_page(page.text).h1 == ["Overview"]
    status = conforms("GET", "/api/v1/status", admin.api("GET", "/api/v1/status"))
    alarms = len(node.store.alarms())
    assert status["system_host_name"] == "conductor-a"
    assert status["lan1_address"] == PEER_IP
    assert status["software_version"] == node.software_version
    assert status["serial_number"] == node.store.serial
    assert status["alarm_count"] == alarms
    assert status["cluster"]["text"] == "Standalone (not clustered)"
    for text in (
        "conductor-a",
        PEER_IP,
        node.software_version,
        node.store.serial,
        f'<a href="/status/alarms">{alarms} alarms</a>',
        "Standalone (not clustered)",
        "System time",
        status["time"][:10],
    ):
        assert text in page.text, text


def test_alarms_page_and_api(admin: PeerLab) -> None:
    body = conforms("GET", "/api/v1/status/alarms", admin.api("GET", "/api/v1/status/alarms"))
    codes = [a["id"] for a in body["alarms"]]
    assert codes == sorted({25002, 25010, 40009, 40010})
    page = admin.page("/status/alarms").text
    for alarm in body["alarms"]:
        assert html.escape(alarm["title"]) in page


def test_configuration_log_page_and_api(admin: PeerLab) -> None:
    admin.post_form("/system/dns", VALID_FORMS["dns"])
    admin.post_form("/system/clustering", VALID_FORMS["clustering"])
    page = admin.page("/status/config-log").text
    assert "System host name" in page
    assert "&#34;x032&#34;" in page
    assert "Cluster pre-shared key" in page
    assert "(set)" in page
    assert "cluster-secret" not in page  # secrets never shown
    assert "after a restart" in page
    body = conforms(
        "GET", "/api/v1/status/config-log", admin.api("GET", "/api/v1/status/config-log")
    )
    by_setting = {e["setting"]: e for e in reversed(body["entries"])}  # newest wins
    assert by_setting["dns.host_name"]["new"] == '"x032"'
    assert by_setting["dns.host_name"]["user"] == "admin"
    assert by_setting["clustering.key"]["pending"] is True
    assert "cluster-secret" not in admin.api("GET", "/api/v1/status/config-log").text
    one = admin.api("GET", "/api/v1/status/config-log?limit=1")
    assert len(conforms("GET", "/api/v1/status/config-log", one)["entries"]) == 1


@pytest.mark.parametrize("limit", ["0", "1001", "abc", "-1", "1.5", ""])
def test_log_apis_refuse_a_bad_limit(lab: PeerLab, limit: str) -> None:
    for path in ("/api/v1/status/events", "/api/v1/status/config-log"):
        reply = lab.api("GET", f"{path}?limit={limit}")
        assert reply.status == 400
        assert "limit must be a whole number" in conforms("GET", path, reply)["error"]


# ------------------------------------------------------------ option keys
def test_option_keys_page_and_api(admin: PeerLab) -> None:
    page = admin.page("/maintenance/option-keys").text
    assert "Release key installed" in page  # the factory install carries one
    assert "Full capacity" in page
    got = conforms(
        "GET",
        "/api/v1/maintenance/option-keys",
        admin.api("GET", "/api/v1/maintenance/option-keys"),
    )
    assert got["settings"]["release_key"].startswith("RK-")
    assert got["status"]["release_key_installed"] is True
    reply = admin.api("PUT", "/api/v1/maintenance/option-keys", {"release_key": ""})
    assert reply.status == 200
    page = admin.page("/maintenance/option-keys").text
    assert "TelePresence Conductor Essentials: clustering is not supported" in page

    admin.post_form("/maintenance/option-keys", VALID_FORMS["options"])
    page = admin.page("/maintenance/option-keys").text
    assert "Release key installed" in page
    assert "TelePresence Conductor Select" in page
    assert "Essentials" not in page
    overview = admin.api("GET", "/api/v1/status").json()["option_keys"]
    assert overview == {
        "release_key_installed": True,
        "edition": "Release key installed",
        "clustering_supported": True,
        "capacity": "TelePresence Conductor Select",
    }


def test_essentials_refuses_clustering_and_select_refuses_a_third_peer_g_r10_g_r2(
    admin: PeerLab,
) -> None:
    """G-R10: without a release key the Clustering page refuses peers, with the reason;
    G-R2: TelePresence Conductor Select clusters at most two peers."""
    assert admin.api("PUT", "/api/v1/maintenance/option-keys", {"release_key": ""}).status == 200
    before = admin.node.store.effective()
    reply = admin.api("PUT", "/api/v1/system/clustering", {"peer1": "127.1.2.4"})
    assert reply.status == 400
    assert "release key" in reply.json()["fields"]["peer1"]
    assert admin.node.store.effective() == before
    admin.api(
        "PUT", "/api/v1/maintenance/option-keys", {"release_key": "RK-1", "capacity": "select"}
    )
    reply = admin.api(
        "PUT",
        "/api/v1/system/clustering",
        {"peer1": "127.1.2.4", "peer2": "127.1.2.32", "peer3": "127.1.2.33"},
    )
    assert reply.status == 400
    assert "at most 2 peers" in reply.json()["error"]
    ok = admin.api(
        "PUT", "/api/v1/system/clustering", {"peer1": "127.1.2.4", "peer2": "127.1.2.32"}
    )
    assert ok.status == 200


# ------------------------------------------------------------ certificates
def trusting(lab: PeerLab, ca_pem: str) -> aiohttp.ClientSession:
    context = ssl.create_default_context(cadata=ca_pem)
    network = lab.sim.runtime("vcs").network
    return aiohttp.ClientSession(connector=NetsimConnector(network, ssl_context=context))


def verified_get(lab: PeerLab, ca_pem: str) -> int | str:
    """GET the peer's login page trusting only `ca_pem`: the status, or the error kind."""

    async def get() -> int | str:
        async with trusting(lab, ca_pem) as session:
            try:
                async with session.get(lab.base + "/login") as response:
                    return response.status
            except aiohttp.ClientConnectorCertificateError:
                return "certificate refused"

    return lab.sim.run(get())


def test_certificates_page_shows_and_regenerates_certificates_g_s2(admin: PeerLab) -> None:
    """Per-peer CA and server certificate; new ones are served after a restart."""
    store = admin.node.store
    old_ca = store.certificates()["ca"][0]
    page = admin.page("/maintenance/certificates").text
    api = conforms(
        "GET",
        "/api/v1/maintenance/certificates",
        admin.api("GET", "/api/v1/maintenance/certificates"),
    )
    for heading in ("Trusted CA certificate", "Server certificate", "Regenerate certificates"):
        assert heading in page
    assert api["trusted_ca"]["pem"] == old_ca
    assert api["restart_required"] is False
    assert api["server"]["fingerprint_sha256"] in page
    assert api["server"]["alt_names"].startswith(PEER_IP)
    assert "PRIVATE KEY" not in page
    assert "PRIVATE KEY" not in admin.api("GET", "/api/v1/maintenance/certificates").text
    download = admin.page("/maintenance/certificates/trusted-ca.pem")
    assert download.text == old_ca
    assert verified_get(admin, old_ca) == 200

    reply = admin.post_form("/maintenance/certificates", {})
    assert flash_of(reply.text) == (
        "Saved: New certificates generated. They are served after a restart "
        "(Maintenance > Restart options)."
    )
    assert "They are served after a restart" in reply.text
    assert "Restart required" in reply.text
    new_ca = admin.node.store.certificates()["ca"][0]
    assert new_ca != old_ca
    assert (
        "New security certificates are waiting for a restart."
        in admin.page("/maintenance/restart").text
    )
    # still the old certificate until the restart
    assert verified_get(admin, old_ca) == 200
    assert verified_get(admin, new_ca) == "certificate refused"
    got = admin.api("GET", "/api/v1/maintenance/certificates").json()
    assert got["restart_required"] is True
    assert got["trusted_ca"]["pem"] == new_ca

    admin.restart()
    assert verified_get(admin, new_ca) == 200
    assert verified_get(admin, old_ca) == "certificate refused"
    assert admin.api("GET", "/api/v1/maintenance/certificates").json()["restart_required"] is False

    reply = admin.api("POST", "/api/v1/maintenance/certificates/regenerate")
    body = conforms("POST", "/api/v1/maintenance/certificates/regenerate", reply)
    assert body["restart_required"] is True
    assert body["trusted_ca"]["pem"] != new_ca
    events = [e["event"] for e in admin.node.store.events()]
    assert events.count("certificates_generated") == 3


# ------------------------------------------------------------ users (G-P3)
def alarm_codes(lab: PeerLab) -> set[int]:
    body = conforms("GET", "/api/v1/status/alarms", lab.api("GET", "/api/v1/status/alarms"))
    return {a["id"] for a in body["alarms"]}


def test_default_passwords_raise_alarms_until_changed_g_p3(admin: PeerLab) -> None:
    """G-P3 basis: 40009 (admin) and 40010 (root) stay raised until the passwords change;
    the admin's new password works for login and API, the old one no longer does."""
    assert {40009, 40010} <= alarm_codes(admin)
    users = conforms("GET", "/api/v1/users", admin.api("GET", "/api/v1/users"))["users"]
    assert users == [
        {"name": "admin", "scope": "shared", "default_password": True},
        {"name": "root", "scope": "peer", "default_password": True},
    ]
    page = admin.page("/users").text
    assert "The admin account still has the factory default password" in page
    assert "The root account still has the factory default password" in page

    reply = admin.post_form(
        "/users",
        {
            "account": "admin",
            "new_password": NEW_ADMIN_PASSWORD,
            "confirm_password": NEW_ADMIN_PASSWORD,
        },
    )
    assert flash_of(reply.text) == "Saved: The password of the admin account was changed."
    assert admin.api("GET", "/api/v1/status").status == 401  # old password
    admin.admin_password = NEW_ADMIN_PASSWORD
    codes = alarm_codes(admin)
    assert 40009 not in codes
    assert 40010 in codes

    reply = admin.api(
        "PUT",
        "/api/v1/users/root/password",
        {"new_password": NEW_ROOT_PASSWORD, "confirm_password": NEW_ROOT_PASSWORD},
    )
    assert conforms("PUT", "/api/v1/users/root/password", reply) == {
        "changed": "root",
        "default_password": False,
    }
    assert not {40009, 40010} & alarm_codes(admin)
    assert admin.node.store.verify_password("root", NEW_ROOT_PASSWORD)
    assert admin.node.store.default_passwords() == []
    page = admin.page("/users").text
    assert "factory default password" not in page

    assert admin.login(password=DEFAULT_PASSWORD).status == 401
    reply = admin.login(password=NEW_ADMIN_PASSWORD)
    assert reply.status == 200
    assert reply.history == (303,)
    log = admin.api("GET", "/api/v1/status/config-log").json()["entries"]
    assert {"users.admin.password", "users.root.password"} <= {e["setting"] for e in log}
    assert all(NEW_ADMIN_PASSWORD not in e["new"] for e in log)


@pytest.mark.parametrize(
    ("new", "confirm", "field", "words"),
    [
        ("Conductor-1", "Conductor-2", "confirm_password", "does not match the new password"),
        ("short", "short", "new_password", "must be 8 to 128 characters"),
        ("p" * 129, "p" * 129, "new_password", "must be 8 to 128 characters"),
        (DEFAULT_PASSWORD, DEFAULT_PASSWORD, "new_password", "must not be the factory default"),
        ("", "", "new_password", "must be 8 to 128 characters"),
    ],
)
@pytest.mark.parametrize("account", ["admin", "root"])
def test_bad_password_changes_are_refused(
    admin: PeerLab, account: str, new: str, confirm: str, field: str, words: str
) -> None:
    label = {"new_password": "New password", "confirm_password": "Confirm password"}[field]
    before = admin.snapshot()
    reply = admin.post_form(
        "/users", {"account": account, "new_password": new, "confirm_password": confirm}
    )
    assert reply.status == 400
    assert "Nothing was changed" in reply.text
    assert f"{label}: {words}" in field_errors(reply.text)
    assert new not in reply.text or new == ""  # passwords are never echoed
    path = f"/api/v1/users/{account}/password"
    reply = admin.api("PUT", path, {"new_password": new, "confirm_password": confirm})
    assert reply.status == 400
    assert conforms("PUT", path, reply)["fields"][field] == f"{label}: {words}"
    assert_unchanged(admin, before)
    assert admin.node.store.verify_password(account, DEFAULT_PASSWORD)
    assert {40009, 40010} <= alarm_codes(admin)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"new_password": "Conductor-1"}, "Confirm password: is required"),
        ({"new_password": 12345678, "confirm_password": 12345678}, "New password: must be text"),
        (
            {"new_password": "Conductor-1", "confirm_password": "Conductor-1", "old": "x"},
            "unknown field(s) old",
        ),
        ([], "must be a JSON object"),
    ],
)
def test_password_api_refuses_bad_bodies(lab: PeerLab, body: Any, words: str) -> None:
    before = lab.snapshot()
    reply = lab.api("PUT", "/api/v1/users/admin/password", body)
    assert reply.status == 400
    assert words in conforms("PUT", "/api/v1/users/admin/password", reply)["error"]
    assert_unchanged(lab, before)
    assert lab.api("PUT", "/api/v1/users/nobody/password", {}).status == 404


# ---------------------------------------------------------------- OpenAPI
def test_openapi_document_covers_every_api_route(lab: PeerLab) -> None:
    async def routes() -> set[tuple[str, str]]:
        app = make_app(lab.node)
        return {
            (route.method.lower(), route.resource.canonical)
            for route in app.router.routes()
            if route.resource is not None
            and route.resource.canonical.startswith("/api/")
            and route.method != "HEAD"
        }

    documented = {
        (method, path)
        for path, item in DOC["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert lab.sim.run(routes()) == documented
    served = lab.api("GET", "/api/v1/openapi.json", authorization="")
    assert served.status == 200
    assert served.json() == DOC
    for (method, path), item in (
        ((m, p), op) for p, ops in DOC["paths"].items() for m, op in ops.items()
    ):
        assert {"200", "201", "202"} & set(item["responses"]), (method, path)


# ---------------------------------------------------------------- hypothesis
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
PLAUSIBLE = st.sampled_from(
    [
        "",
        PEER_IP,
        OTHER_PEER_IP,
        "127.60.0.77",
        "255.255.255.0",
        "example.com",
        "x032",
        "On",
        "Off",
        "1400",
        "Auto",
        "full",
        "select",
        "UTC",
        "0.0.0.0",
        "a" * 200,
    ]
)
SETTINGS_PAGE_IDS = sorted(SETTINGS_PAGES)
VALID_VALUES = {k: v for form in VALID_FORMS.values() for k, v in form.items()}


def json_value_for(key: str) -> st.SearchStrategy[Any]:
    """Valid values (as JSON and as form text) mixed with anything JSON can carry."""
    valid = VALID_VALUES[key]
    return st.one_of(
        st.just(SETTINGS[key].validate(valid)),
        st.just(valid),
        PLAUSIBLE,
        JSON_VALUES,
        st.lists(PLAUSIBLE, max_size=6),
    )


def text_for(key: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(VALID_VALUES[key]), PLAUSIBLE, st.text(max_size=30))


PASSWORDS = st.sampled_from(["Conductor-pw-1", "short", DEFAULT_PASSWORD, ""]) | st.text(
    max_size=20
)


def assert_store_valid(lab: PeerLab) -> None:
    """Every stored value, active or pending, is what the registry would accept as is."""
    store = lab.node.store
    for values in (store.settings(), store.pending()):
        for key, value in values.items():
            assert SETTINGS[key].validate(value) == value, key
    peers = [v for k, v in store.effective().items() if k.startswith("clustering.peer") and v]
    assert len(peers) == len(set(peers))  # G-R4 holds whatever was sent


def test_hypothesis_api_bad_input_never_breaks_a_page_twin() -> None:
    """Arbitrary JSON per field of every settings API and the password APIs: 200 or 400,
    never 5xx; 400 leaves the store unchanged; 200 stores only valid values (G-R4 kept)."""
    with peer_lab(seed=21) as lab:

        @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            target = data.draw(st.sampled_from([*SETTINGS_PAGE_IDS, "admin", "root"]))
            if target in ("admin", "root"):
                password = data.draw(PASSWORDS)
                same = st.just(password)
                optional = {
                    "new_password": same | JSON_VALUES,
                    "confirm_password": same | JSON_VALUES,
                    "extra": JSON_VALUES,
                }
                path = f"/api/v1/users/{target}/password"
            else:
                optional = {api_name(s.key): json_value_for(s.key) for s in page_settings(target)}
                optional["unknown"] = JSON_VALUES
                path = SETTINGS_PAGES[target].api_path
            body = data.draw(st.fixed_dictionaries({}, optional=optional))
            before = lab.snapshot()
            reply = lab.api("PUT", path, body)
            assert reply.status in (200, 400), reply.text
            conforms("PUT", path, reply)
            if reply.status == 400:
                assert_unchanged(lab, before)
            elif target == "admin":
                lab.admin_password = body["new_password"]
            elif target not in ("admin", "root"):
                effective = lab.node.store.effective()
                for name, value in body.items():
                    key = f"{target}.{name}"
                    assert effective[key] == SETTINGS[key].validate(value)
            assert_store_valid(lab)

        run()


def test_hypothesis_form_bad_input_never_breaks_a_page() -> None:
    """Arbitrary strings per field of every settings form and the Users form: the
    answer is the saved page or 400 with field errors, never 5xx; 400 saves nothing."""
    with peer_lab(seed=22) as lab:
        assert lab.login().status == 200
        token = csrf_of(lab.page("/users").text)

        @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            target = data.draw(st.sampled_from([*SETTINGS_PAGE_IDS, "users"]))
            if target == "users":
                path = "/users"
                password = data.draw(PASSWORDS)
                same = st.just(password) | st.text(max_size=20)
                form = {
                    "account": data.draw(st.sampled_from(["admin", "root"])),
                    "new_password": data.draw(same),
                    "confirm_password": data.draw(same),
                }
            else:
                path = SETTINGS_PAGES[target].path
                form = {s.key: data.draw(text_for(s.key)) for s in page_settings(target)}
            before = lab.snapshot()
            reply = lab.post_form(path, form, csrf=token)
            assert reply.status in (200, 400), reply.text[:500]
            if reply.status == 400:
                assert field_errors(reply.text), "a refusal names at least one field"
                assert_unchanged(lab, before)
            else:
                assert reply.history == (303,)
                assert flash_of(reply.text).startswith("Saved")
                if target == "users" and form["account"] == "admin":
                    lab.admin_password = form["new_password"]
            assert_store_valid(lab)

        run()
