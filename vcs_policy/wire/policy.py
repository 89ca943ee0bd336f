"""The policy request: what the VCS POSTs to a policy service (form-encoded pairs).

Parameter names and values are the VCS's (cisco-behaviour.md 1.5). tplab's
choices where the sources are silent (UNCONFIRMED there):

- empty parameters are omitted from the body;
- SIP aliases travel without a `sip:` scheme (`meet.bob@example.com`), H.323
  aliases as dialled; decoding keeps what it receives;
- `GLOBAL_CALL_SERIAL_NUMBER` is spelt with underscores, as third-party servers parse it;
- `UTCTIME` is `YYYY-MM-DD HH:MM:SS` in UTC;
- parameters this module does not know are ignored on decode (a newer VCS may
  send more, repeated or not), but a known parameter given twice is an error.

A request is valid when `problems()` is empty: known values for the enumerated
parameters, text without control characters that UTF-8 can encode (no lone
surrogates), at most `MAX_VALUE_CHARS` per value, a real port and a real UTC
time, the parameters its `POLICY_TYPE` needs, and a body of at most
`MAX_BODY_BYTES` once encoded.

Invariants: `PolicyRequest.decode` takes any bytes and returns a request or raises
`RemoteProtocolError`; `decode(r.encode()) == r` for every valid request `r`;
building an invalid request raises `LocalProtocolError` at `encode`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from vcs_policy.wire.errors import LocalProtocolError, RemoteProtocolError

#: a policy request body larger than this is refused (a real one is well under 2 KiB)
MAX_BODY_BYTES = 16 * 1024
MAX_VALUE_CHARS = 1024
MAX_FIELDS = 64
CONTENT_TYPE = "application/x-www-form-urlencoded"

POLICY_TYPES = ("REGISTRATION", "SEARCH", "ADMIN", "USER")
METHODS = ("INVITE", "ARQ", "LRQ", "OPTIONS", "SETUP", "REGISTER", "SUBSCRIBE", "PUBLISH")
#: methods a search rule sends (the first five)
SEARCH_METHODS = METHODS[:5]
PROTOCOLS = ("SIP", "H323")
BOOLEANS = ("TRUE", "FALSE")
NETWORK_TYPES = ("IPV4", "IPV6")
TRAVERSAL_TYPES = (
    "TYPE_UNDEF",
    "TYPE_ASSENTSERVER",
    "TYPE_ASSENTCLIENT",
    "TYPE_H460SERVER",
    "TYPE_H460CLIENT",
    "TYPE_TURNSERVER",
    "TYPE_TURNCLIENT",
    "TYPE_ICE",
)
#: parameter -> the values it may take (None: free text)
CHOICES: dict[str, tuple[str, ...]] = {
    "POLICY_TYPE": POLICY_TYPES,
    "METHOD": METHODS,
    "PROTOCOL": PROTOCOLS,
    "AUTHENTICATED": BOOLEANS,
    "ALLOW_INTERWORKING": BOOLEANS,
    "NETWORK_TYPE": NETWORK_TYPES,
    "TRAVERSAL_TYPE": TRAVERSAL_TYPES,
}
_UTCTIME = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """One policy request; attribute names are the VCS's parameter names."""

    POLICY_TYPE: str
    METHOD: str = ""
    PROTOCOL: str = ""
    DESTINATION_ALIAS: str = ""
    DESTINATION_ALIAS_PARAMS: str = ""
    ALIAS: str = ""
    AUTHENTICATED: str = ""
    AUTHENTICATED_SOURCE_ALIAS: str = ""
    UNAUTHENTICATED_SOURCE_ALIAS: str = ""
    AUTHENTICATION_USER_NAME: str = ""
    REGISTERED_ALIAS: str = ""
    ALLOW_INTERWORKING: str = ""
    CLUSTER_NAME: str = ""
    GLOBAL_CALL_SERIAL_NUMBER: str = ""
    LOCAL_CALL_SERIAL_NUMBER: str = ""
    NETWORK_TYPE: str = ""
    SOURCE_ADDRESS: str = ""
    SOURCE_IP: str = ""
    SOURCE_PORT: str = ""
    TRAVERSAL_TYPE: str = ""
    UTCTIME: str = ""
    ZONE_NAME: str = ""

    # ------------------------------------------------------------ derived
    @property
    def source_alias(self) -> str:
        """The caller as the VCS knows it: authenticated alias first."""
        return self.AUTHENTICATED_SOURCE_ALIAS or self.UNAUTHENTICATED_SOURCE_ALIAS

    # -------------------------------------------------------------- codec
    def problems(self, *, check_size: bool = True) -> list[str]:
        """What makes this request invalid (empty when it is valid). `check_size=False`
        skips encoding the request to measure it, for a caller that knows it fits."""
        found: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str):
                found.append(f"{f.name} must be text")
                continue
            if len(value) > MAX_VALUE_CHARS:
                found.append(f"{f.name} is longer than {MAX_VALUE_CHARS} characters")
            if _CONTROL.search(value):
                found.append(f"{f.name} contains control characters")
            if not _encodable(value):
                found.append(f"{f.name} is not valid Unicode text (lone surrogate)")
            allowed = CHOICES.get(f.name)
            if value and allowed is not None and value not in allowed:
                found.append(f"{f.name} must be one of {', '.join(allowed)} (got {value[:40]!r})")
        if found:
            return found
        if not self.POLICY_TYPE:
            return ["POLICY_TYPE is missing"]
        if self.SOURCE_PORT and not (
            self.SOURCE_PORT.isascii()
            and self.SOURCE_PORT.isdigit()
            and int(self.SOURCE_PORT) <= 65535
        ):
            found.append("SOURCE_PORT must be a port number 0-65535")
        if self.UTCTIME and not _is_utctime(self.UTCTIME):
            found.append("UTCTIME must be a real time as YYYY-MM-DD HH:MM:SS")
        if self.POLICY_TYPE == "REGISTRATION":
            if not self.ALIAS:
                found.append("ALIAS is missing (required for POLICY_TYPE=REGISTRATION)")
        else:
            if not self.DESTINATION_ALIAS:
                found.append(f"DESTINATION_ALIAS is missing (required for {self.POLICY_TYPE})")
            if not self.METHOD:
                found.append(f"METHOD is missing (required for {self.POLICY_TYPE})")
            elif self.POLICY_TYPE == "SEARCH" and self.METHOD not in SEARCH_METHODS:
                found.append(
                    f"METHOD {self.METHOD} is not sent by search rules "
                    f"(one of {', '.join(SEARCH_METHODS)})"
                )
        if not self.PROTOCOL:
            found.append("PROTOCOL is missing")
        if not found and check_size:
            # the peer refuses a larger body, so a request that encodes larger is
            # invalid here rather than a request that cannot be decoded there
            size = len(self._body())
            if size > MAX_BODY_BYTES:
                found.append(f"encodes to {size} bytes, more than {MAX_BODY_BYTES}")
        return found

    def _body(self) -> bytes:
        pairs = [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name)]
        return urlencode(pairs).encode("ascii")

    def encode(self) -> bytes:
        """The form-encoded body; `LocalProtocolError` when the request is invalid."""
        problems = self.problems()
        if problems:
            raise LocalProtocolError("invalid policy request: " + "; ".join(problems))
        return self._body()

    @classmethod
    def decode(cls, body: bytes) -> PolicyRequest:
        """The request in a form-encoded `body`; `RemoteProtocolError` for anything else."""
        if not isinstance(body, bytes | bytearray):
            raise RemoteProtocolError("policy request body must be bytes")
        if len(body) > MAX_BODY_BYTES:
            raise RemoteProtocolError(
                f"policy request body of {len(body)} bytes exceeds {MAX_BODY_BYTES}",
                reason="too_large",
            )
        try:
            text = bytes(body).decode("ascii")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(
                f"policy request body is not form-encoded ASCII (byte {exc.start})"
            ) from exc
        try:
            pairs = parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=bool(text),
                encoding="utf-8",
                errors="strict",
                max_num_fields=MAX_FIELDS,
            )
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError("a policy request name or value is not valid UTF-8") from exc
        except ValueError as exc:
            raise RemoteProtocolError(f"policy request body is not form-encoded: {exc}") from exc
        known = {f.name for f in fields(cls)}
        values: dict[str, str] = {}
        for name, value in pairs:
            if name in values:
                raise RemoteProtocolError(f"parameter {name[:40]!r} is given twice")
            if name in known:
                values[name] = value
        if "POLICY_TYPE" not in values:
            raise RemoteProtocolError("POLICY_TYPE is missing", reason="missing")
        request = cls(**values)
        # re-encoding a decoded value makes each body character at most 3 (a raw "@"
        # becomes %40): a body of a third of the limit cannot encode above it
        problems = request.problems(check_size=3 * len(body) > MAX_BODY_BYTES)
        if problems:
            raise RemoteProtocolError("invalid policy request: " + "; ".join(problems))
        return request

    def replace(self, **changes: str) -> PolicyRequest:
        return dataclasses.replace(self, **changes)


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_utctime(value: str) -> bool:
    """`YYYY-MM-DD HH:MM:SS` with ASCII digits, naming a time that exists."""
    match = _UTCTIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return False
    return True
