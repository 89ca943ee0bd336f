"""tplab's call signalling between a VCS and a bridge (a stand-in for SIP / H.323).

A real VCS sets up a call to a bridge with SIP INVITE or H.323 SETUP; tplab has no
media and no SIP stack, so a call is one small JSON request over plain HTTP to the
bridge's signalling port (TCP 5060, SIP's port):

- `POST /calls` with `{"call_id", "from", "to", "protocol"}` (INVITE): `to` is
  `<conference URI, numeric ID or name>@<bridge IP>`; `protocol` is `sip` or `h323`
  (any case). Answers: 200 `{"call_id", "participant", "conference",
  "conferenceName"}` - `participant` and `conference` are the identities the
  bridge's XML-RPC API uses (MCU: participantName and conferenceName; TS:
  participantID and conferenceID); errors are JSON `{"error", "reason"}` with a
  SIP-like status: 400 bad request, 404 no such conference, 409 call_id already in
  a call, 486 the conference is full (Busy Here), 503 the bridge has no free port
  (Service Unavailable; also while its `full` drill is on).
- `DELETE /calls/{call_id}` (BYE): 200 `{"call_id", "participant", "conference",
  "conferenceName"}` and the participant leaves; 404 when no such call.
- `GET /calls`: `{"calls": [...]}`, the calls in progress.

This module holds the request's codec; `CallRequest.decode` takes any bytes and
returns a request or raises `RemoteProtocolError`; `encode` raises
`LocalProtocolError` for a request `decode` would refuse.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bridges.wire.errors import LocalProtocolError, RemoteProtocolError

SIGNALLING_PORT = 5060
MAX_CALL_BODY_BYTES = 16 * 1024
MAX_ADDRESS_CHARS = 256
PROTOCOLS = ("sip", "h323")
#: call ids go into a URL path (DELETE /calls/{call_id}): no slashes, no spaces
CALL_ID = re.compile(r"[A-Za-z0-9._~:@+-]{1,128}")


def _address_problem(name: str, value: Any, *, spaces: bool) -> str | None:
    if not isinstance(value, str):
        return f"{name}: must be a string"
    if not 0 < len(value) <= MAX_ADDRESS_CHARS or not value.isprintable():
        return f"{name}: 1-{MAX_ADDRESS_CHARS} printable characters"
    if not spaces and " " in value:
        return f"{name}: no spaces"
    return None


def split_destination(to: str) -> tuple[str, str]:
    """`meet.1@127.1.3.10` -> ("meet.1", "127.1.3.10"); no "@" -> (to, "")."""
    local, sep, host = to.rpartition("@")
    return (local, host) if sep else (to, "")


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One call set up (INVITE / SETUP): `POST /calls`."""

    call_id: str
    caller: str  # JSON "from"
    to: str
    protocol: str = "sip"

    def problems(self) -> list[str]:
        found = []
        if not isinstance(self.call_id, str) or not CALL_ID.fullmatch(self.call_id):
            found.append("call_id: 1-128 characters of A-Z a-z 0-9 . _ ~ : @ + -")
        # the caller is as the VCS knows it (spaces allowed); the destination is an alias
        for name, value, spaces in (("from", self.caller, True), ("to", self.to, False)):
            problem = _address_problem(name, value, spaces=spaces)
            if problem:
                found.append(problem)
        if isinstance(self.to, str) and not all(split_destination(self.to)):
            found.append("to: must be <conference>@<bridge address>")
        if self.protocol not in PROTOCOLS:
            found.append("protocol: must be sip or h323")
        return found

    def to_dict(self) -> dict[str, str]:
        return {"call_id": self.call_id, "from": self.caller, "to": self.to,
                "protocol": self.protocol}  # fmt: skip

    def encode(self) -> bytes:
        problems = self.problems()
        if problems:
            raise LocalProtocolError("; ".join(problems))
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def decode(cls, body: bytes) -> CallRequest:
        if len(body) > MAX_CALL_BODY_BYTES:
            raise RemoteProtocolError(
                f"a call request is at most {MAX_CALL_BODY_BYTES} bytes", reason="too_large"
            )
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise RemoteProtocolError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise RemoteProtocolError("a call request is a JSON object")
        missing = [k for k in ("call_id", "from", "to") if k not in data]
        if missing:
            raise RemoteProtocolError("missing: " + ", ".join(missing), reason="missing")
        protocol = data.get("protocol", "sip")
        request = cls(
            call_id=data["call_id"],
            caller=data["from"],
            to=data["to"],
            protocol=protocol.lower() if isinstance(protocol, str) else protocol,
        )
        problems = request.problems()
        if problems:
            raise RemoteProtocolError("; ".join(problems))
        return request
