"""The bridges' XML-RPC endpoint under fuzzing, and the node's HTTP faces, in the
simulated world (G-B1, G-R8).

Hypothesis posts random calls to both bridge kinds over HTTPS and plain HTTP:
method names from the real lists and junk, parameter structs of every XML-RPC
type with and without valid credentials, and raw bytes. Every answer is HTTP 200
`text/xml` that Python's own `xmlrpc.client` reads as a result or a fault: never
a crash, a 5xx or a dropped connection.
"""

from __future__ import annotations

import base64
import json
import re
import xmlrpc.client
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridges.core.mcu import McuCore
from bridges.core.ts import TsCore
from bridges.wire import MAX_BODY_BYTES
from tests.sim.bridge_helpers import BridgeLab

AUTH = {"authenticationUser": "admin", "authenticationPassword": ""}
METHODS = sorted(
    set(McuCore(ip="0.0.0.0", ports=1).methods)
    | set(TsCore(ip="0.0.0.0", ports=1, rng=__import__("random").Random(0)).methods)
)
PARAM_NAMES = [
    "conferenceName", "newConferenceName", "numericId", "pin", "participantName", "address",
    "participantProtocol", "participantType", "enumerateID", "enumerateFilter",
    "operationScope", "maximumVideoPorts", "reservedVideoPorts", "durationSeconds",
    "startTime", "templateName", "conferenceID", "participantID", "URIs", "calls",
    "cascadeRole", "displayName", "authenticationUser", "authenticationPassword",
]  # fmt: skip
XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff"),
    max_size=40,
).filter(lambda s: not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", s))
SCALARS = (
    XML_TEXT
    | st.sampled_from(["c0", "c1", "p0", "10.0.0.1", "sip", "h323", "1234", "", "currentState"])
    | st.integers(-(2**31), 2**31 - 1)
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.builds(xmlrpc.client.DateTime, st.sampled_from(["20260101T10:00:00", "junk"]))
    | st.binary(max_size=8).map(xmlrpc.client.Binary)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["URI", "PIN", "remoteAddress", "protocol"]) | XML_TEXT,
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)
PARAMS = st.dictionaries(st.sampled_from(PARAM_NAMES) | XML_TEXT, VALUES, max_size=6)
METHOD_NAMES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["call"] * 8 + ["raw", "mangled"]))
    if kind == "raw":
        return draw(st.binary(max_size=300))
    # mostly real methods with valid credentials, so the calls get past the front door
    method = draw(st.sampled_from(METHODS) if draw(st.integers(0, 4)) else METHOD_NAMES)
    params = draw(PARAMS)
    if draw(st.integers(0, 4)):
        params = {**params, **AUTH}
    body = xmlrpc.client.dumps((params,), escape(method) or "m").encode("utf-8")
    if kind == "mangled":
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.binary(max_size=8)) + body[cut:]
    return body


@pytest.fixture(scope="module")
def lab() -> Iterator[BridgeLab]:
    bridges = BridgeLab(seed=9)
    yield bridges
    bridges.close()


def xmlrpc_answer(reply: Any) -> Any:
    """The reply is an XML-RPC answer: the result, or the Fault."""
    assert reply.status == 200, reply
    assert reply.content_type == "text/xml"
    try:
        params, _ = xmlrpc.client.loads(reply.body)
    except xmlrpc.client.Fault as exc:
        fault: xmlrpc.client.Fault | None = exc
    else:
        fault = None
    if fault is not None:
        assert isinstance(fault.faultCode, int)
        assert fault.faultString
        return fault
    assert len(params) == 1
    assert isinstance(params[0], dict)
    return params[0]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    requests=st.lists(
        st.tuples(st.sampled_from(["mcu", "ts"]), st.sampled_from(["https", "http"]), bodies()),
        min_size=1,
        max_size=4,
    )
)
def test_any_request_gets_an_xml_rpc_answer(
    lab: BridgeLab, requests: list[tuple[str, str, bytes]]
) -> None:
    """G-B1: any body posted to /RPC2 (either kind, HTTP or HTTPS: G-R8) is answered
    with HTTP 200 and an XML-RPC result or fault."""
    for kind, scheme, body in requests:
        xmlrpc_answer(lab.post_rpc(kind, body, scheme))


def test_faults_for_bodies_that_are_not_calls(lab: BridgeLab) -> None:
    """Broken XML is fault 201; an oversized body fault 105; a bad method name fault 1;
    a call without one struct parameter fault 103; a DTD fault 201 (never expanded)."""
    cases = {
        b"not xml": 201,
        b"<methodCall><methodName>x y</methodName><params/></methodCall>": 1,
        xmlrpc.client.dumps((), "device.query").encode(): 103,
        b'<!DOCTYPE a [<!ENTITY e "x">]><methodCall/>': 201,
        b"<x>" + b" " * MAX_BODY_BYTES + b"</x>": 105,
    }
    for body, code in cases.items():
        for kind in ("mcu", "ts"):
            answer = xmlrpc_answer(lab.post_rpc(kind, body))
            assert isinstance(answer, xmlrpc.client.Fault)
            assert answer.faultCode == code, (body[:40], answer)


def basic(user: str = "admin", password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_login_page_and_drill_api(lab: BridgeLab) -> None:
    """GET /login answers 200 HTML; the drill API needs the admin account and checks
    its body; full and healthy show in device.query and status.json."""
    page = lab.request("GET", lab.url("mcu", "https", "/login"))
    assert page.status == 200
    assert page.content_type.startswith("text/html")
    drill = lab.url("ts", "https", "/api/v1/drill")
    assert lab.request("GET", drill).status == 401
    assert lab.request("GET", drill, headers=basic("Admin")).status == 401
    assert lab.request("GET", drill, headers=basic()).json() == {
        "full": False,
        "healthy": True,
        "http": True,
        "https": True,
    }
    for bad in ({}, {"full": "yes"}, {"colour": True}, [True]):
        assert lab.request("PUT", drill, json=bad, headers=basic()).status == 400
    assert lab.request("PUT", drill, data=b"{", headers=basic()).status == 400
    reply = lab.request("PUT", drill, json={"full": True, "healthy": False}, headers=basic())
    assert reply.json()["full"] is True
    assert reply.json()["healthy"] is False
    body = xmlrpc.client.dumps((AUTH,), "device.query").encode()
    query = xmlrpc_answer(lab.post_rpc("ts", body))
    assert query["healthy"] is False
    assert query["usedVideoPorts"] == query["totalVideoPorts"]
    lab.sim.run_for(1.5)  # status.json is published at most once a second
    status = json.loads((lab.nodes["ts"].runtime.data_dir / "status.json").read_text())
    assert status["drill"]["full"] is True
    assert status["role"] == "telepresence-server"
    lab.request("PUT", drill, json={"full": False, "healthy": True}, headers=basic())


def test_web_listeners_switch_off_and_on(lab: BridgeLab) -> None:
    """G-R8: each bridge's HTTP and HTTPS listeners are switched by the drill; the drill
    API on the signalling port switches them back."""
    sip_drill = lab.url("mcu", "sip", "/api/v1/drill")
    https_drill = lab.url("mcu", "https", "/api/v1/drill")
    assert lab.request("PUT", https_drill, json={"http": False}, headers=basic()).status == 200
    assert not lab.connects("mcu", "http")
    assert lab.connects("mcu", "https")
    # switching off the listener that carries the request: it answers, then closes
    reply = lab.request("PUT", https_drill, json={"https": False}, headers=basic())
    assert reply.json()["https"] is False
    lab.sim.run_for(2.0)
    assert not lab.connects("mcu", "https")
    assert lab.connects("ts", "https")  # the other bridge is untouched
    reply = lab.request("PUT", sip_drill, json={"http": True, "https": True}, headers=basic())
    assert reply.status == 200
    assert lab.connects("mcu", "http")
    assert lab.connects("mcu", "https")


def test_signalled_calls_share_the_xml_rpc_state(lab: BridgeLab) -> None:
    body = xmlrpc.client.dumps(
        ({**AUTH, "conferenceName": "sim-room", "numericId": "7001"},), "conference.create"
    ).encode()
    assert xmlrpc_answer(lab.post_rpc("mcu", body)) == {"status": "operation successful"}
    calls = lab.url("mcu", "sip", "/calls")
    reply = lab.request(
        "POST",
        calls,
        json={
            "call_id": "sim-1",
            "from": "alice@example.com",
            "to": "7001@127.62.0.11",
            "protocol": "SIP",
        },
    )
    assert reply.status == 200, reply
    assert reply.json()["conference"] == "sim-room"
    assert lab.request("GET", calls).json()["calls"][0]["call_id"] == "sim-1"
    assert lab.request("POST", calls, data=b"{").status == 400
    assert lab.request("DELETE", lab.url("mcu", "sip", "/calls/sim-1")).status == 200
    assert lab.request("DELETE", lab.url("mcu", "sip", "/calls/sim-1")).status == 404
