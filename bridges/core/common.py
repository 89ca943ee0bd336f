"""What both bridge kinds share: faults, parameter checks, authentication, paging,
drills, ports and the routing of signalled calls.

A core is a plain object driven by `handle(method, params, now)` (one XML-RPC
call) and `incoming_call(...)` / `hang_up(...)` (tplab's call signalling, see
`bridges.wire.signalling`); both share one state, so a signalled call shows up
in the participant enumeration at once and a participant removed over XML-RPC
ends its call. `now` is monotonic seconds; randomness (conference and
participant GUIDs on the TelePresence Server) comes from an injected
`random.Random`.

Invariants: `handle` returns a struct XML-RPC can carry or raises `Fault`, for any
method name and any parameter values; a refused call changes nothing (beyond
forgetting expired enumerateIDs); ports in
use never exceed the bridge's ports; an enumeration page holds at most
`PAGE_SIZE` entries and carries `enumerateID` exactly when more follow.
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

from bridges.wire.faults import FaultCode, fault_string
from bridges.wire.signalling import split_destination

#: entries per enumeration page
PAGE_SIZE = 10
#: an enumerateID not used within this long is stale (fault 16)
CURSOR_TTL_S = 60.0
#: at most this many enumerations in progress; the oldest is forgotten first
MAX_CURSORS = 64
OK: dict[str, Any] = {"status": "operation successful"}


class Fault(Exception):
    """An XML-RPC fault the bridge answers with: `code` and `text` (its faultString)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = int(code)
        self.text = text


def fault(code: FaultCode, detail: str = "") -> Fault:
    return Fault(code, fault_string(code, detail))


class CallRefused(Exception):
    """A signalled call (or hang-up) is refused: SIP-like `status`, a `reason` tag."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class CallAnswer:
    """A call accepted or ended: identities as the bridge's XML-RPC API names them."""

    call_id: str
    participant: str
    conference: str
    conference_name: str

    def to_dict(self) -> dict[str, str]:
        return {
            "call_id": self.call_id,
            "participant": self.participant,
            "conference": self.conference,
            "conferenceName": self.conference_name,
        }


class Params:
    """Typed access to a call's parameter struct, raising the API's faults:
    101 missing (or a method-specific code), 103 wrong type, 102 bad value."""

    def __init__(self, values: Mapping[str, Any], prefix: str = "") -> None:
        self.values = values
        self.prefix = prefix

    def name(self, key: str) -> str:
        return self.prefix + key

    def missing(self, key: str, code: FaultCode = FaultCode.MISSING_PARAMETER) -> Fault:
        if code is FaultCode.MISSING_PARAMETER:
            return fault(code, self.name(key))
        return fault(code)

    def malformed(self, key: str, expected: str) -> Fault:
        return fault(FaultCode.MALFORMED_PARAMETER, f"{self.name(key)} must be {expected}")

    def invalid(self, key: str, why: str) -> Fault:
        return fault(FaultCode.INVALID_PARAMETER, f"{self.name(key)}: {why}")

    def has(self, key: str) -> bool:
        return key in self.values

    def raw(self, key: str) -> Any:
        return self.values.get(key)

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        missing: FaultCode = FaultCode.MISSING_PARAMETER,
        max_chars: int | None = None,
        too_long: FaultCode = FaultCode.INVALID_PARAMETER,
        empty_is_missing: bool = False,
    ) -> str | None:
        if key not in self.values:
            if required:
                raise self.missing(key, missing)
            return None
        value = self.values[key]
        if not isinstance(value, str):
            raise self.malformed(key, "a string")
        if empty_is_missing and not value:
            raise self.missing(key, missing)
        if not value.isprintable():
            raise self.invalid(key, "control characters are not allowed")
        if max_chars is not None and len(value) > max_chars:
            detail = f"{self.name(key)} is longer than {max_chars} characters"
            if too_long is FaultCode.INVALID_PARAMETER:
                raise self.invalid(key, f"at most {max_chars} characters")
            raise fault(too_long, detail)
        return value

    def integer(
        self, key: str, *, required: bool = False, low: int | None = None, high: int | None = None
    ) -> int | None:
        if key not in self.values:
            if required:
                raise self.missing(key)
            return None
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.malformed(key, "an integer")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{'' if low is None else low}..{'' if high is None else high}"
            raise self.invalid(key, f"must be in {bounds}")
        return value

    def boolean(self, key: str) -> bool | None:
        if key not in self.values:
            return None
        value = self.values[key]
        if not isinstance(value, bool):
            raise self.malformed(key, "a boolean")
        return value

    def array(self, key: str, *, required: bool = False) -> list[Any] | None:
        if key not in self.values:
            if required:
                raise self.missing(key)
            return None
        value = self.values[key]
        if not isinstance(value, list):
            raise self.malformed(key, "an array")
        return value

    def structs(self, key: str, *, required: bool = False) -> list[Params] | None:
        """An array of structs, each as `Params` named `key[i].`."""
        items = self.array(key, required=required)
        if items is None:
            return None
        out = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.malformed(f"{key}[{index}]", "a struct")
            out.append(Params(item, f"{self.name(key)}[{index}]."))
        return out

    def choice(self, key: str, choices: Iterable[str], *, default: str, bad: FaultCode) -> str:
        value = self.text(key)
        if value is None:
            return default
        if value not in tuple(choices):
            if bad is FaultCode.INVALID_PARAMETER:
                raise self.invalid(key, f"{value!r} is not one of {', '.join(choices)}")
            raise fault(bad, value)
        return value

    def enumerate_id(self) -> str | None:
        value = self.values.get("enumerateID")
        if value is None and "enumerateID" not in self.values:
            return None
        if not isinstance(value, str):
            raise self.malformed("enumerateID", "a string")
        return value


def digits(params: Params, key: str, max_chars: int, bad: FaultCode) -> str:
    """A string of decimal digits (a PIN, a numeric ID); "" when absent."""
    value = params.text(key)
    if value is None or value == "":
        return ""
    if not (value.isascii() and value.isdigit()) or len(value) > max_chars:
        if bad is FaultCode.INVALID_PARAMETER:
            raise params.invalid(key, f"at most {max_chars} decimal digits")
        raise fault(bad, f"{params.name(key)} must be at most {max_chars} decimal digits")
    return value


@dataclass
class _Cursor:
    method: str
    keys: tuple[Any, ...]
    offset: int
    expires_s: float


@dataclass
class Pager:
    """Paged enumerations: the first call (no `enumerateID`) snapshots the keys in
    order; each page hands out a fresh `enumerateID` for the next one, used once.
    Keys that disappeared since the snapshot are skipped. An unknown, used,
    expired or other method's ID is fault 16."""

    page_size: int = PAGE_SIZE
    ttl_s: float = CURSOR_TTL_S
    max_open: int = MAX_CURSORS
    _cursors: dict[str, _Cursor] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def page(
        self,
        method: str,
        enumerate_id: str | None,
        keys: Callable[[], Iterable[Any]],
        exists: Callable[[Any], bool],
        now: float,
    ) -> tuple[list[Any], str | None]:
        for stale in [k for k, c in self._cursors.items() if c.expires_s <= now]:
            del self._cursors[stale]
        if enumerate_id is None:
            snapshot, offset = tuple(keys()), 0
        else:
            cursor = self._cursors.get(enumerate_id)
            if cursor is None or cursor.method != method:
                raise fault(FaultCode.INVALID_ENUMERATE_ID, enumerate_id[:40])
            del self._cursors[enumerate_id]
            snapshot, offset = cursor.keys, cursor.offset
        found: list[Any] = []
        while offset < len(snapshot) and len(found) < self.page_size:
            if exists(snapshot[offset]):
                found.append(snapshot[offset])
            offset += 1
        if offset >= len(snapshot):
            return found, None
        next_id = str(next(self._ids))
        self._cursors[next_id] = _Cursor(method, snapshot, offset, now + self.ttl_s)
        while len(self._cursors) > self.max_open:
            del self._cursors[next(iter(self._cursors))]
        return found, next_id


def health_fields(healthy: bool, worst_healthy: bool) -> dict[str, Any]:
    """`device.health.query` (field names tplab's, after the MCU/TS style: each
    reading is "ok" or "critical", `worst*` since the bridge started)."""

    def status(ok: bool) -> str:
        return "ok" if ok else "critical"

    return {
        "currentTemperature": status(healthy),
        "worstTemperature": status(worst_healthy),
        "currentVoltages": status(healthy),
        "worstVoltages": status(worst_healthy),
        "currentRtcBattery": "ok",
        "worstRtcBattery": "ok",
        "operationalStatus": "active" if healthy else "faulty",
        "healthy": healthy,
    }


class BridgeCore:
    """The parts of a bridge both kinds share. Subclasses fill `methods` and
    implement conferences, participants and call routing."""

    kind: ClassVar[str] = ""
    model: ClassVar[str] = ""
    api_version: ClassVar[str] = ""
    software_version: ClassVar[str] = ""
    build_version: ClassVar[str] = ""

    def __init__(
        self,
        *,
        ip: str,
        ports: int,
        user: str = "admin",
        password: str = "",
        serial: str = "",
        started_s: float = 0.0,
    ) -> None:
        if ports < 1:
            raise ValueError("a bridge has at least one port")
        self.ip = ip
        self.ports = ports
        self.user = user
        self.password = password
        self.serial = serial
        self.started_s = started_s
        self.full = False
        self.healthy = True
        self.worst_healthy = True
        self.pager = Pager()
        self.methods: dict[str, Callable[[Params, float], dict[str, Any]]] = {}
        #: signalled calls in progress: call_id -> participant key (kind-specific)
        self.calls: dict[str, Any] = {}

    # -------------------------------------------------------------- XML-RPC
    def handle(self, method: str, params: Mapping[str, Any], now: float) -> dict[str, Any]:
        """One XML-RPC call: authenticate, then run `method`. Raises `Fault`."""
        if not isinstance(params, Mapping):
            raise fault(FaultCode.MALFORMED_PARAMETER, "parameters must be a struct")
        self.authenticate(Params(params))
        handler = self.methods.get(method) if isinstance(method, str) else None
        if handler is None:
            raise fault(FaultCode.METHOD_NOT_SUPPORTED, str(method)[:128])
        return handler(Params(params), now)

    def authenticate(self, params: Params) -> None:
        """Every call carries `authenticationUser` (case-sensitive) and
        `authenticationPassword`, which is ignored when the user has none."""
        user = params.text("authenticationUser", required=True)
        password = params.text("authenticationPassword")
        assert user is not None

        def same(a: str, b: str) -> bool:
            return hmac.compare_digest(
                a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
            )

        user_ok = same(user, self.user)
        password_ok = not self.password or (password is not None and same(password, self.password))
        if not (user_ok and password_ok):
            raise fault(
                FaultCode.INSUFFICIENT_PRIVILEGES,
                "authenticationUser / authenticationPassword not valid",
            )

    # ---------------------------------------------------------------- ports
    def ports_used(self) -> int:
        raise NotImplementedError

    def ports_free(self) -> int:
        return 0 if self.full else max(0, self.ports - self.ports_used())

    def reported_ports_used(self) -> int:
        """`usedVideoPorts` as reported: all of them while the `full` drill is on."""
        return self.ports if self.full else self.ports_used()

    def participant_count(self) -> int:
        raise NotImplementedError

    def conference_count(self) -> int:
        raise NotImplementedError

    # ---------------------------------------------------------------- drill
    def set_drill(self, *, full: bool | None = None, healthy: bool | None = None) -> None:
        """`full`: no free port (new participants and calls refused); `healthy` False:
        the health queries report it (calls still work)."""
        if full is not None:
            self.full = full
        if healthy is not None:
            self.healthy = healthy
            self.worst_healthy = self.worst_healthy and healthy

    def health(self) -> dict[str, Any]:
        return health_fields(self.healthy, self.worst_healthy)

    def uptime_s(self, now: float) -> int:
        return max(0, int(now - self.started_s))

    # ----------------------------------------------------------- signalling
    def route(self, to: str) -> Any:
        """The key of the conference a call to `to` joins; CallRefused 404 if none.

        `to` is `<conference>@<bridge IP>` (a `:port` after the IP is allowed);
        `<conference>` is matched by `matches`. A `to` that is a whole conference URI
        (the TelePresence Server's URIs may carry a domain) matches as it is."""
        key = self.match_conference(to)
        if key is not None:
            return key
        local, host = split_destination(to)
        host_ip = host.rpartition(":")[0] if host.count(":") == 1 else host
        if host_ip != self.ip:
            raise CallRefused(
                404, "not_this_bridge", f"{to} is not addressed to this bridge ({self.ip})"
            )
        key = self.match_conference(local)
        if key is None:
            raise CallRefused(404, "no_such_conference", f"no conference {local} on this bridge")
        return key

    def match_conference(self, alias: str) -> Any:
        raise NotImplementedError

    def incoming_call(
        self, call_id: str, caller: str, to: str, protocol: str, now: float
    ) -> CallAnswer:
        """A call arrives (INVITE / SETUP): it joins the conference `to` names as a
        connected participant. Raises `CallRefused`."""
        if call_id in self.calls:
            raise CallRefused(409, "duplicate_call", f"call {call_id} is already in progress")
        key = self.route(to)
        self.admit(key, call_id, caller, protocol, now)
        return self.describe_call(call_id)

    def admit(self, key: Any, call_id: str, caller: str, protocol: str, now: float) -> None:
        """Add the caller to conference `key` (recording it in `calls`), or raise
        `CallRefused` (486 / 503) when there is no room."""
        raise NotImplementedError

    def hang_up(self, call_id: str, now: float) -> CallAnswer:
        """The caller hangs up (BYE): its participant leaves. CallRefused 404 if unknown."""
        if call_id not in self.calls:
            raise CallRefused(404, "no_such_call", f"no call {call_id} in progress")
        answer = self.describe_call(call_id)
        self.drop_call(call_id)
        return answer

    def describe_call(self, call_id: str) -> CallAnswer:
        """The participant and conference of a call in progress."""
        raise NotImplementedError

    def drop_call(self, call_id: str) -> None:
        raise NotImplementedError

    def refuse(self, *, conference_full: bool) -> NoReturn:
        """A signalled call finds no room: 486 when its conference is at its limit,
        503 when the bridge has no free port."""
        if conference_full:
            raise CallRefused(486, "conference_full", "the conference is full (Busy Here)")
        raise CallRefused(503, "bridge_full", "the bridge has no free port (Service Unavailable)")

    # --------------------------------------------------------------- status
    def summary(self) -> dict[str, Any]:
        """What `status.json` shows of the core."""
        return {
            "kind": self.kind,
            "conferences": self.conference_count(),
            "participants": self.participant_count(),
            "calls": len(self.calls),
            "ports": {"used": self.ports_used(), "total": self.ports},
            "drill": {"full": self.full, "healthy": self.healthy},
        }
