"""The bridge wire formats (G-B1): the XML-RPC codec both bridge kinds and their
clients use (cisco-behaviour.md 3.1), the fault table, and tplab's call signalling.

Pure codecs, no event loop. Hand-written documents pin the conventions (one struct
parameter, faults as `<fault>`, no DTDs, the size limit, ASCII output); hypothesis
proves the module invariants: every decoder parses or raises `RemoteProtocolError`
for any bytes, and every encodable call, result and fault round-trips.
"""

from __future__ import annotations

import json
import math
import re
import xmlrpc.client
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridges.wire import (
    FAULT_TEXT,
    MAX_BODY_BYTES,
    BridgeFault,
    CallRequest,
    DateTime,
    FaultCode,
    LocalProtocolError,
    RemoteProtocolError,
    decode_call,
    decode_result,
    encode_call,
    encode_fault,
    encode_result,
    fault_for,
    fault_string,
    split_destination,
)
from bridges.wire.signalling import MAX_CALL_BODY_BYTES

AUTH = {"authenticationUser": "admin", "authenticationPassword": ""}
XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff")
).filter(lambda s: not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", s))
SCALARS = (
    XML_TEXT
    | st.integers(-(2**31), 2**31 - 1)
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.binary(max_size=32)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(XML_TEXT, inner, max_size=4),
    max_leaves=12,
)
STRUCTS = st.dictionaries(XML_TEXT, VALUES, max_size=6)
METHODS = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128
)
XML_TOKENS = st.sampled_from(
    [
        "<?xml version='1.0'?>", "<methodCall>", "</methodCall>", "<methodName>",
        "</methodName>", "<methodResponse>", "</methodResponse>", "<params>", "</params>",
        "<param>", "</param>", "<value>", "</value>", "<struct>", "</struct>", "<member>",
        "</member>", "<name>", "</name>", "<array>", "</array>", "<data>", "</data>",
        "<int>", "</int>", "<i8>", "</i8>", "<boolean>", "</boolean>", "<double>",
        "</double>", "<string>", "</string>", "<base64>", "</base64>", "<nil/>",
        "<dateTime.iso8601>", "</dateTime.iso8601>", "<bigdecimal>", "</bigdecimal>",
        "<fault>", "</fault>", "<ex:nil/>", "<unknown>", "</unknown>", "x", "1", "-7",
        "NaN", "sNaN", "2", "abc==", "&amp;", "&#0;", "&#x10FFFF;", "\u00e9", "\x00",
        "device.query", "faultCode", "faultString", "20260101T10:00:00",
    ]
)  # fmt: skip


def xmlish() -> st.SearchStrategy[bytes]:
    """Documents built from XML-RPC's own tags: they reach deep into the parser."""
    return st.lists(XML_TOKENS, max_size=40).map(lambda parts: "".join(parts).encode())


def call_body(method: str, *params: Any) -> bytes:
    return xmlrpc.client.dumps(params, method).encode()


# ------------------------------------------------------------------ decoders
@given(st.binary(max_size=2048) | xmlish())
def test_decode_call_any_bytes_parses_or_raises_remote_protocol_error(body: bytes) -> None:
    """G-B1: for any bytes, decode_call gives (method, struct) or RemoteProtocolError."""
    try:
        method, params = decode_call(body)
    except RemoteProtocolError as exc:
        message, reason = str(exc), exc.reason
    else:
        assert isinstance(method, str)
        assert re.fullmatch(r"[\x21-\x7e]{1,128}", method)
        assert isinstance(params, dict)
        assert all(isinstance(k, str) for k in params)
        return
    assert message
    assert reason in ("malformed", "forbidden", "too_large", "method", "params")


@given(st.binary(max_size=2048) | xmlish())
def test_decode_result_any_bytes_parses_or_raises(body: bytes) -> None:
    """G-B1: for any bytes, decode_result gives a struct, BridgeFault or RemoteProtocolError."""
    try:
        result: Any = decode_result(body)
    except BridgeFault as fault:
        result = (fault.code, fault.string)
        assert isinstance(result[0], int)
        assert isinstance(result[1], str)
    except RemoteProtocolError:
        return
    assert isinstance(result, dict | tuple)


@given(METHODS, STRUCTS)
def test_calls_round_trip(method: str, params: dict[str, Any]) -> None:
    """G-B1: every encodable call decodes to what was encoded (markup in a method
    name, CR and non-ASCII characters in strings included); the bytes are ASCII."""
    body = encode_call(method, params)
    assert body.isascii()
    assert decode_call(body) == (method, params)


@given(STRUCTS)
def test_results_round_trip(result: dict[str, Any]) -> None:
    body = encode_result(result)
    assert body.isascii()
    assert decode_result(body) == result


@given(st.integers(-(2**31), 2**31 - 1), XML_TEXT)
def test_faults_round_trip(code: int, text: str) -> None:
    with pytest.raises(BridgeFault) as caught:
        decode_result(encode_fault(code, text))
    assert (caught.value.code, caught.value.string) == (code, text)


def test_a_call_from_python_s_own_client_decodes() -> None:
    body = call_body("conference.create", {**AUTH, "conferenceName": "Board"})
    assert decode_call(body) == ("conference.create", {**AUTH, "conferenceName": "Board"})


def test_values_decode_to_python_types() -> None:
    """dateTime stays DateTime (its text is the method's to check); base64 -> bytes;
    nil -> None; a value without a type is a string."""
    body = (
        b"<?xml version='1.0'?><methodCall><methodName>m</methodName><params><param>"
        b"<value><struct>"
        b"<member><name>t</name><value><dateTime.iso8601>2026x</dateTime.iso8601></value></member>"
        b"<member><name>b</name><value><base64>aGk=</base64></value></member>"
        b"<member><name>n</name><value><nil/></value></member>"
        b"<member><name>s</name><value>plain</value></member>"
        b"</struct></value></param></params></methodCall>"
    )
    _, params = decode_call(body)
    assert isinstance(params["t"], DateTime)
    assert params["t"].value == "2026x"
    assert params["b"] == xmlrpc.client.Binary(b"hi")
    assert params["n"] is None
    assert params["s"] == "plain"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "malformed"),
        (b"junk", "malformed"),
        (b"<methodCall><methodName>m</methodName>", "malformed"),  # unterminated
        (b"<a/>", "malformed"),  # XML, but no call in it
        (xmlrpc.client.dumps(({"a": 1},), methodresponse=True).encode(), "malformed"),
        (xmlrpc.client.dumps(xmlrpc.client.Fault(1, "x")).encode(), "malformed"),
        (call_body("m"), "params"),
        (call_body("m", {}, {}), "params"),
        (call_body("m", [1]), "params"),
        (call_body("m", "text"), "params"),
        (b"<methodCall><methodName>a b</methodName><params/></methodCall>", "method"),
        (b"<methodCall><methodName></methodName><params/></methodCall>", "method"),
        (b"<methodCall><methodName>" + b"m" * 129 + b"</methodName></methodCall>", "method"),
        (b"<methodCall><methodName>\xc3\xa9</methodName><params/></methodCall>", "method"),
        (
            b"<methodCall><methodName>m</methodName><params><param><value><struct>"
            b"<member><value><int>1</int></value></member><member><name>a</name>"
            b"<value><int>2</int></value></member></struct></value></param></params>"
            b"</methodCall>",
            "malformed",  # a member without a name: its value becomes a key
        ),
        (call_body("m", {"x": 1}).replace(b"<int>1</int>", b"<int>one</int>"), "malformed"),
        (call_body("m", {"x": True}).replace(b">1</boolean>", b">yes</boolean>"), "malformed"),
    ],
)
def test_broken_calls_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode_call(body)
    assert caught.value.reason == reason


def test_method_names_up_to_128_printable_characters() -> None:
    name = "m" * 128
    assert decode_call(call_body(name, {}))[0] == name


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<methodCall><methodName>m</methodName><params><param><value><struct><member>
<name>x</name><value><string>&lol3;</string></value></member></struct></value></param>
</params></methodCall>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<methodCall><methodName>m</methodName><params><param><value><struct><member>
<name>x</name><value><string>&x;</string></value></member></struct></value></param>
</params></methodCall>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL, b"<!DOCTYPE m><methodCall/>"])
def test_dtds_are_refused_before_any_entity_is_declared(body: bytes) -> None:
    """Entity-expansion safety: any DTD is refused at the prolog, by both decoders."""
    with pytest.raises(RemoteProtocolError) as caught:
        decode_call(body)
    assert caught.value.reason == "forbidden"
    with pytest.raises(RemoteProtocolError):
        decode_result(body)


def test_bodies_over_256_kib_are_refused_unparsed() -> None:
    filler = "x" * (MAX_BODY_BYTES - 400)
    body = call_body("m", {"pad": filler})
    assert len(body) <= MAX_BODY_BYTES
    assert decode_call(body)[1]["pad"] == filler
    with pytest.raises(RemoteProtocolError) as caught:
        decode_call(body + b" " * (MAX_BODY_BYTES + 1 - len(body)))
    assert caught.value.reason == "too_large"
    with pytest.raises(RemoteProtocolError):
        decode_call(b"\x00" * (MAX_BODY_BYTES + 1))  # refused by size, not parsed


def test_decoders_accept_utf8_and_declared_encodings() -> None:
    """ASCII is the default, UTF-8 and declared encodings (the XML prolog) work."""
    text = "Salle \u00e9t\u00e9 \u20ac"
    utf8 = xmlrpc.client.dumps(({"n": text},), "m").encode("utf-8")
    assert decode_call(utf8)[1]["n"] == text
    latin = xmlrpc.client.dumps(({"n": "caf\u00e9"},), "m", encoding="iso-8859-1")
    assert decode_call(latin.encode("iso-8859-1"))[1]["n"] == "caf\u00e9"


def test_decode_result_refuses_calls_and_bad_faults() -> None:
    with pytest.raises(RemoteProtocolError):
        decode_result(call_body("m", {}))
    with pytest.raises(RemoteProtocolError):
        decode_result(xmlrpc.client.dumps(({}, {}), methodresponse=False).encode())
    with pytest.raises(RemoteProtocolError):
        decode_result(xmlrpc.client.dumps(("text",), methodresponse=True).encode())
    bad_code = xmlrpc.client.dumps(xmlrpc.client.Fault("x", "y")).encode()  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError):
        decode_result(bad_code)
    with pytest.raises(RemoteProtocolError):
        decode_result(b"<methodResponse><fault><value><struct/></value></fault></methodResponse>")


# ------------------------------------------------------------------ encoders
@pytest.mark.parametrize(
    "result",
    [
        {"n": 2**31},  # beyond XML-RPC's 32-bit int
        {1: "x"},
        {"s": "\ud800"},  # a lone surrogate
        {"s": "\x00"},  # XML cannot carry NUL, not even as a reference
        {"o": object()},
        {"n": None},  # no nil in the bridge APIs
    ],
)
def test_encode_result_refuses_what_xml_rpc_cannot_carry(result: dict[Any, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        encode_result(result)


def test_encoders_refuse_bad_shapes() -> None:
    with pytest.raises(LocalProtocolError):
        encode_result([1])  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_fault(True, "x")
    with pytest.raises(LocalProtocolError):
        encode_fault(1, b"x")  # type: ignore[arg-type]
    for method in ("", "a b", "m" * 129, "caf\u00e9", 7):
        with pytest.raises(LocalProtocolError):
            encode_call(method, {})  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_call("m", [1])  # type: ignore[arg-type]


def test_output_is_ascii_with_character_references() -> None:
    body = encode_result({"name": "\u00e9\u20ac\U0001f600\r"})
    assert body.isascii()
    assert b"&#233;" in body
    assert b"&#13;" in body
    assert decode_result(body) == {"name": "\u00e9\u20ac\U0001f600\r"}


def test_a_fault_is_a_fault_struct_python_s_client_reads() -> None:
    body = encode_fault(FaultCode.DUPLICATE_CONFERENCE_NAME, "duplicate conference name")
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(body)
    assert caught.value.faultCode == 2
    assert caught.value.faultString == "duplicate conference name"


# -------------------------------------------------------------------- faults
def test_fault_codes_have_the_spec_numbers_and_meanings() -> None:
    expected = {
        1: "method not supported", 2: "duplicate conference name",
        3: "duplicate participant name", 4: "no such conference or auto attendant",
        5: "no such participant", 6: "too many conferences", 7: "too many participants",
        8: "no conference name or auto attendant id supplied", 9: "no participant name supplied",
        10: "no participant address supplied", 11: "invalid start time specified",
        12: "invalid end time specified", 13: "invalid PIN specified", 14: "unauthorised",
        15: "insufficient privileges", 16: "invalid enumerateID value",
        17: "port reservation failure", 18: "duplicate numeric ID", 19: "unsupported protocol",
        20: "unsupported participant type", 25: "new port limit lower than currently active",
        27: "no such template", 34: "internal error", 35: "string is too long",
        101: "missing parameter", 102: "invalid parameter", 103: "malformed parameter",
        104: "mismatched parameters", 105: "request too large", 201: "operation failed",
    }  # fmt: skip
    for code, text in expected.items():
        assert FAULT_TEXT[FaultCode(code)] == text
    assert set(FAULT_TEXT) == set(FaultCode)
    assert fault_string(FaultCode.MISSING_PARAMETER, "conferenceName") == (
        "missing parameter - conferenceName"
    )


def test_refused_requests_map_to_faults() -> None:
    """What a bridge answers a request decode_call refused (tplab's choice)."""
    cases = {
        "too_large": 105, "method": 1, "params": 103, "malformed": 201, "forbidden": 201,
    }  # fmt: skip
    for reason, code in cases.items():
        got, text = fault_for(RemoteProtocolError("why\x00", reason=reason))
        assert got == code
        assert text.isprintable()
        encode_fault(got, text)


# ---------------------------------------------------------------- signalling
CALL_IDS = st.from_regex(r"[A-Za-z0-9._~:@+-]{1,128}", fullmatch=True)
ADDRESS = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=100
)
HOST = st.from_regex(r"[a-z0-9.:-]{1,40}", fullmatch=True)


@given(CALL_IDS, ADDRESS, ADDRESS, HOST, st.sampled_from(["sip", "h323"]))
def test_call_requests_round_trip(
    call_id: str, caller: str, local: str, host: str, protocol: str
) -> None:
    request = CallRequest(call_id, caller, f"{local}@{host}", protocol)
    assert CallRequest.decode(request.encode()) == request
    assert split_destination(request.to) == (local, host)


@given(
    st.binary(max_size=512)
    | st.builds(
        lambda d: json.dumps(d).encode(),
        st.dictionaries(
            st.sampled_from(["call_id", "from", "to", "protocol", "x"]),
            st.none() | st.integers() | st.text(max_size=20) | st.lists(st.integers(), max_size=2),
        ),
    )
)
def test_call_request_decode_any_bytes(body: bytes) -> None:
    """Signalling: any bytes decode to a valid request or raise RemoteProtocolError."""
    try:
        request = CallRequest.decode(body)
    except RemoteProtocolError:
        return
    assert request.problems() == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"{}",
        b'{"call_id": "a", "from": "x"}',
        b'{"call_id": "a b", "from": "x", "to": "c@1.2.3.4"}',
        b'{"call_id": "a/b", "from": "x", "to": "c@1.2.3.4"}',
        b'{"call_id": "a", "from": "x", "to": "c"}',
        b'{"call_id": "a", "from": "x", "to": "@1.2.3.4"}',
        b'{"call_id": "a", "from": "x", "to": "c@"}',
        b'{"call_id": "a", "from": "", "to": "c@1.2.3.4"}',
        b'{"call_id": "a", "from": "x\\u0000", "to": "c@1.2.3.4"}',
        b'{"call_id": "a", "from": "x", "to": "c d@1.2.3.4"}',
        b'{"call_id": "a", "from": "x", "to": "c@1.2.3.4", "protocol": "vnc"}',
        b'{"call_id": 1, "from": "x", "to": "c@1.2.3.4"}',
        b"\xff",
        b"[" * 100_000,
        b" " * (MAX_CALL_BODY_BYTES + 1),
    ],
)
def test_bad_call_requests_are_refused(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        CallRequest.decode(body)


def test_call_request_protocol_is_case_insensitive_and_defaults_to_sip() -> None:
    request = CallRequest.decode(b'{"call_id": "a", "from": "x@y", "to": "c@1.2.3.4"}')
    assert request.protocol == "sip"
    request = CallRequest.decode(
        b'{"call_id": "a", "from": "x@y", "to": "c@1.2.3.4", "protocol": "H323"}'
    )
    assert request.protocol == "h323"
    request = CallRequest.decode(b'{"call_id": "a", "from": "Alice Smith", "to": "c@1.2.3.4"}')
    assert request.caller == "Alice Smith"
    with pytest.raises(LocalProtocolError):
        CallRequest("a b", "x", "c@d").encode()


def test_floats_survive_as_python_writes_them() -> None:
    assert decode_result(encode_result({"f": math.pi}))["f"] == math.pi
