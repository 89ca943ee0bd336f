"""The XML-RPC codec of the bridge APIs (cisco-behaviour.md 3.1), for both sides.

Bridges and their clients exchange `POST /RPC2` bodies: a `methodCall` with exactly
one struct parameter (the call's named parameters, `authenticationUser` and
`authenticationPassword` among them), answered by a `methodResponse` holding one
struct, or a `<fault>` struct `{faultCode, faultString}` (sent with HTTP 200).

The XML is made and read by the standard library (`xmlrpc.client.dumps` /
`loads`, on expat), never by hand here. What this module adds:

- limits: a body is at most `MAX_BODY_BYTES` (checked before parsing); a method
  name is 1-`MAX_METHOD_CHARS` printable ASCII characters;
- no DTDs: a document with a `<!DOCTYPE` is refused before `loads` sees it, so no
  entity is ever declared, let alone expanded (expat's own amplification limits
  stay as a second line; external entities are never fetched by expat anyway);
- values: `dateTime.iso8601` stays an `xmlrpc.client.DateTime` (its text is
  checked by whoever reads it, so a bad start time is that method's fault, not a
  broken request); `base64` stays an `xmlrpc.client.Binary`; `nil` becomes None
  (no bridge method takes either, so they end as a wrong-type fault);
- output is pure ASCII: characters beyond ASCII (and CR, which XML parsers would
  turn into LF) are written as character references, so the answer reads the same
  whether the client assumes ASCII (the API's default) or UTF-8.

Invariants: `decode_call` and `decode_result` take any bytes and return a value or
raise `RemoteProtocolError` (`decode_result` raises `BridgeFault` for a
well-formed fault); the encoders raise only `LocalProtocolError` for values XML-RPC
cannot carry (integers beyond 32 bits, non-string keys, characters XML forbids);
`decode_call(encode_call(m, p)) == (m, p)` for every encodable call.
"""

from __future__ import annotations

import re
import xmlrpc.client
from collections.abc import Mapping
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import escape

from bridges.wire.errors import BridgeFault, LocalProtocolError, RemoteProtocolError
from bridges.wire.faults import FaultCode, fault_string

MAX_BODY_BYTES = 256 * 1024
MAX_METHOD_CHARS = 128
CONTENT_TYPE = "text/xml"
#: how much of an error's message goes into a fault string
MAX_DETAIL_CHARS = 200

#: the type a `dateTime.iso8601` value decodes to (its `.value` is the raw text)
DateTime = xmlrpc.client.DateTime

_METHOD = re.compile(rf"[\x21-\x7e]{{1,{MAX_METHOD_CHARS}}}")
# characters XML 1.0 cannot carry, not even as character references
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _RootReached(Exception):
    pass


class _DoctypeSeen(Exception):
    pass


def _refuse_doctype(body: bytes) -> None:
    """Parse the prolog only (up to the root element): a DTD there is refused."""

    def doctype(*_args: Any) -> None:
        raise _DoctypeSeen

    def root(*_args: Any) -> None:
        raise _RootReached

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = root
    try:
        parser.Parse(body, True)
    except _RootReached:
        return
    except _DoctypeSeen:
        raise RemoteProtocolError(
            "DTDs are not allowed in XML-RPC (no entity is ever expanded)", reason="forbidden"
        ) from None
    except expat.ExpatError as exc:
        raise RemoteProtocolError(f"not XML: {exc}") from None


def _detail(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text[:MAX_DETAIL_CHARS]


def _loads(body: bytes, max_bytes: int, what: str) -> tuple[tuple[Any, ...], str | None]:
    if not isinstance(body, bytes):
        raise RemoteProtocolError(f"{what} must be bytes, not {type(body).__name__}")
    if len(body) > max_bytes:
        raise RemoteProtocolError(
            f"{what} of {len(body)} bytes exceeds the limit of {max_bytes} bytes",
            reason="too_large",
        )
    _refuse_doctype(body)
    try:
        params, method = xmlrpc.client.loads(body)
    except xmlrpc.client.Fault:
        raise
    # `loads` is a tolerant black box that fails with whatever its handlers raise
    # (ValueError, TypeError, IndexError, ArithmeticError, ResponseError, ExpatError...);
    # any of them means the body is not XML-RPC
    except Exception as exc:
        raise RemoteProtocolError(f"not XML-RPC: {_detail(exc)}") from None
    return params, method


def _struct_of(params: tuple[Any, ...], what: str) -> dict[str, Any]:
    if len(params) != 1 or not isinstance(params[0], dict):
        kinds = ", ".join(type(p).__name__ for p in params) or "none"
        raise RemoteProtocolError(
            f"{what} must have exactly one struct parameter (got: {kinds})", reason="params"
        )
    struct: dict[str, Any] = params[0]
    if not all(isinstance(key, str) for key in struct):
        raise RemoteProtocolError(f"{what}: a struct member has no name")
    return struct


def _check_method(method: str, error: type[Exception]) -> None:
    if not _METHOD.fullmatch(method):
        shown = "".join(c if c.isprintable() else "?" for c in method[:MAX_METHOD_CHARS])
        message = f"method name {shown!r} is not 1-{MAX_METHOD_CHARS} printable ASCII characters"
        if error is RemoteProtocolError:
            raise RemoteProtocolError(message, reason="method")
        raise error(message)


def _dumps(params: tuple[Any, ...] | xmlrpc.client.Fault, **kwargs: Any) -> bytes:
    try:
        text = xmlrpc.client.dumps(params, allow_none=False, **kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise LocalProtocolError(f"XML-RPC cannot carry this value: {exc}") from None
    bad = _NOT_XML.search(text)
    if bad is not None:
        raise LocalProtocolError(
            f"XML cannot carry the character U+{ord(bad.group()):04X} (in a string value)"
        )
    # XML parsers turn a raw CR into LF: as a reference it survives (dumps writes
    # markup with LF only, so every CR is inside a string)
    return text.replace("\r", "&#13;").encode("ascii", "xmlcharrefreplace")


# ---------------------------------------------------------------- server side
def decode_call(body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> tuple[str, dict[str, Any]]:
    """A `methodCall` body -> (method name, its one struct parameter)."""
    try:
        params, method = _loads(body, max_bytes, "a call")
    except xmlrpc.client.Fault:
        raise RemoteProtocolError("a fault is an answer, not a call") from None
    if method is None:
        raise RemoteProtocolError("not a methodCall: no methodName")
    _check_method(method, RemoteProtocolError)
    return method, _struct_of(params, f"call of {method}")


def encode_result(result: Mapping[str, Any]) -> bytes:
    """A `methodResponse` holding one struct."""
    if not isinstance(result, Mapping):
        raise LocalProtocolError(f"a result is a struct, not {type(result).__name__}")
    return _dumps((dict(result),), methodresponse=True)


def encode_fault(code: int, text: str) -> bytes:
    """A `methodResponse` holding a fault `{faultCode, faultString}`."""
    if isinstance(code, bool) or not isinstance(code, int) or not isinstance(text, str):
        raise LocalProtocolError("a fault is an integer code and a string")
    return _dumps(xmlrpc.client.Fault(int(code), text), methodresponse=True)


def fault_for(error: RemoteProtocolError) -> tuple[FaultCode, str]:
    """The fault a bridge answers a request `decode_call` refused with (tplab's choice:
    the API has no fault for broken XML, so it is 201 operation failed)."""
    code = {
        "too_large": FaultCode.REQUEST_TOO_LARGE,
        "method": FaultCode.METHOD_NOT_SUPPORTED,
        "params": FaultCode.MALFORMED_PARAMETER,
    }.get(error.reason, FaultCode.OPERATION_FAILED)
    return code, fault_string(code, _detail(error))


# ---------------------------------------------------------------- client side
def encode_call(method: str, params: Mapping[str, Any]) -> bytes:
    """A `methodCall` of `method` with `params` as its one struct parameter."""
    if not isinstance(method, str):
        raise LocalProtocolError("a method name is a string")
    _check_method(method, LocalProtocolError)
    if not isinstance(params, Mapping):
        raise LocalProtocolError(f"parameters are a struct, not {type(params).__name__}")
    # dumps writes the method name as given: markup characters must be escaped here
    return _dumps((dict(params),), methodname=escape(method))


def decode_result(body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """A `methodResponse` body -> its struct; a fault raises `BridgeFault`."""
    try:
        params, method = _loads(body, max_bytes, "an answer")
    except xmlrpc.client.Fault as fault:
        code, string = fault.faultCode, fault.faultString
        if isinstance(code, bool) or not isinstance(code, int) or not isinstance(string, str):
            raise RemoteProtocolError(
                "a fault needs an integer faultCode and a string faultString"
            ) from None
        raise BridgeFault(code, string) from None
    if method is not None:
        raise RemoteProtocolError("a methodCall, not an answer")
    return _struct_of(params, "an answer")
