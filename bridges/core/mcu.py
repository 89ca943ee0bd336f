"""The TelePresence MCU (API 2.9) as a sans-I/O state machine.

Models what cisco-behaviour.md 3.2 lists: `device.query`, `device.health.query`,
`conference.create/modify/destroy/status/enumerate` and
`participant.add/remove/enumerate`, plus the calls tplab's signalling brings in
(`incoming_call` / `hang_up`, see `bridges.core.common`).

tplab's choices where the vendor is silent or the lab needs less:
- Limits: names (conference, participant, numeric ID, PIN, description) are at most
  31 characters (the API's strings are < 32); at most 80 ports per conference and
  200 conferences. Every participant takes one video port; audio port settings
  are kept and reported but not modelled.
- Ports in use are, per conference, the larger of its reserved video ports and its
  participants; `device.query` reports `totalVideoPorts` (as the MCU does) and
  tplab's `usedVideoPorts` (all of them while the `full` drill is on) and
  `healthy`. Other tplab additions: `activeParticipants` in conference entries;
  `callID` (the signalling call) and `currentState.callDirection` in participant
  entries.
- Conferences are permanent and active from creation (`startTime` and
  `durationSeconds` are checked and kept, not scheduled); no templates exist, so
  any `templateName` is fault 27.
- `participant.add` dials out and the participant is connected at once (tplab has
  no endpoints); only `by_address` participants over `h323` or `sip` can be added
  (other types: fault 20; other protocols, `vnc` included: fault 19). Calls that
  arrive by signalling are `ad_hoc` participants named `_inN`.
- Fault order: authentication (101 / 103 / 15) first, then the method (1), then
  its parameters in the order the method reads them.

Invariants: a conference name, numeric ID and participant name (within its
conference) are unique; ports in use never exceed `ports`; participants never
exceed a conference's limit.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridges.core.common import (
    OK,
    BridgeCore,
    CallAnswer,
    Params,
    digits,
    fault,
)
from bridges.wire.faults import FaultCode
from bridges.wire.xmlrpc import DateTime

MAX_NAME_CHARS = 31
MAX_CONFERENCES = 200
MAX_PORTS_PER_CONFERENCE = 80
DEFAULT_PORTS = 40
PROTOCOLS = ("h323", "sip")
PARTICIPANT_TYPES = ("by_address",)
SCOPES = ("currentState", "configuredState")
_CONFERENCE_TERMS = {"active": True, "scheduled": True, "completed": False, "ad_hoc": False}
_PARTICIPANT_FILTERS = ("connected", "disconnected", "!connected", "!disconnected")
_ISO = re.compile(r"\d{8}T\d{2}:\d{2}:\d{2}")


@dataclass
class McuParticipant:
    name: str
    protocol: str
    type: str
    address: str
    display_name: str
    connected_s: float
    call_id: str | None = None

    def entry(self, conference: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "conferenceName": conference,
            "participantName": self.name,
            "participantProtocol": self.protocol,
            "participantType": self.type,
        }
        if self.call_id is not None:
            out["callID"] = self.call_id  # tplab: the signalling call it came in on
        if "currentState" in scopes:
            out["currentState"] = {
                "address": self.address,
                "displayName": self.display_name,
                "callState": "connected",
                "callDirection": "incoming" if self.call_id is not None else "outgoing",
                "audioRxMuted": False,
                "videoRxMuted": False,
            }
        if "configuredState" in scopes:
            out["configuredState"] = {
                "address": self.address,
                "displayName": self.display_name,
            }
        return out


@dataclass
class McuConference:
    name: str
    unique_id: int
    numeric_id: str = ""
    pin: str = ""
    description: str = ""
    register_with_gatekeeper: bool = False
    register_with_sip_registrar: bool = False
    private: bool = False
    start_time: str = ""
    duration_s: int = 0
    max_video_ports: int = 0  # 0 = no limit of its own (the per-conference cap applies)
    reserved_video_ports: int = 0
    max_audio_ports: int = 0
    reserved_audio_ports: int = 0
    participants: dict[str, McuParticipant] = field(default_factory=dict)

    @property
    def limit(self) -> int:
        return self.max_video_ports or MAX_PORTS_PER_CONFERENCE

    @property
    def ports_used(self) -> int:
        return max(self.reserved_video_ports, len(self.participants))

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "conferenceName": self.name,
            "conferenceType": "scheduled",
            "conferenceActive": True,
            "uniqueId": self.unique_id,
            "numericId": self.numeric_id,
            "pin": self.pin,
            "durationSeconds": self.duration_s,
            "maximumVideoPorts": self.max_video_ports,
            "reservedVideoPorts": self.reserved_video_ports,
            "maximumAudioPorts": self.max_audio_ports,
            "reservedAudioPorts": self.reserved_audio_ports,
            "activeParticipants": len(self.participants),  # tplab
        }
        if self.start_time:
            out["startTime"] = DateTime(self.start_time)
        return out

    def status(self) -> dict[str, Any]:
        return {
            **self.entry(),
            "description": self.description,
            "registerWithGatekeeper": self.register_with_gatekeeper,
            "registerWithSIPRegistrar": self.register_with_sip_registrar,
            "private": self.private,
            "templateName": "",
        }


class McuCore(BridgeCore):
    kind = "mcu"
    model = "Cisco TelePresence MCU 5320"
    api_version = "2.9"
    software_version = "4.5(1.45)"
    build_version = "38.5(1.45)"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("ports", DEFAULT_PORTS)
        super().__init__(**kwargs)
        self.conferences: dict[str, McuConference] = {}
        self._unique_ids = itertools.count(1)
        self._incoming = itertools.count(1)
        self.methods = {
            "device.query": self.device_query,
            "device.health.query": self.device_health_query,
            "conference.create": self.conference_create,
            "conference.modify": self.conference_modify,
            "conference.destroy": self.conference_destroy,
            "conference.status": self.conference_status,
            "conference.enumerate": self.conference_enumerate,
            "participant.add": self.participant_add,
            "participant.remove": self.participant_remove,
            "participant.enumerate": self.participant_enumerate,
        }

    # ---------------------------------------------------------------- state
    def ports_used(self) -> int:
        return sum(c.ports_used for c in self.conferences.values())

    def participant_count(self) -> int:
        return sum(len(c.participants) for c in self.conferences.values())

    def conference_count(self) -> int:
        return len(self.conferences)

    def _conference(self, params: Params) -> McuConference:
        name = params.text(
            "conferenceName",
            required=True,
            missing=FaultCode.NO_CONFERENCE_NAME,
            empty_is_missing=True,
        )
        assert name is not None
        conference = self.conferences.get(name)
        if conference is None:
            raise fault(FaultCode.NO_SUCH_CONFERENCE, name)
        return conference

    def _name(self, params: Params, key: str, missing: FaultCode) -> str:
        value = params.text(
            key, required=True, missing=missing, max_chars=MAX_NAME_CHARS, empty_is_missing=True
        )
        assert value is not None
        return value

    # --------------------------------------------------------------- device
    def device_query(self, params: Params, now: float) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "model": self.model,
            "serial": self.serial,
            "softwareVersion": self.software_version,
            "buildVersion": self.build_version,
            "totalVideoPorts": self.ports,
            "totalAudioOnlyPorts": 0,
            "portReservationMode": "enabled",
            "uptimeSeconds": self.uptime_s(now),
            "usedVideoPorts": self.reported_ports_used(),  # tplab
            "healthy": self.healthy,  # tplab
        }

    def device_health_query(self, params: Params, now: float) -> dict[str, Any]:
        return self.health()

    # ---------------------------------------------------------- conferences
    def _settings(
        self, params: Params, conference: McuConference, *, creating: bool
    ) -> dict[str, Any]:
        """The optional settings of create / modify, checked against `conference`
        (the one being modified, or a blank one): attribute -> new value."""
        changes: dict[str, Any] = {}
        others = [c for c in self.conferences.values() if c is not conference]
        if params.has("numericId"):
            numeric = digits(params, "numericId", MAX_NAME_CHARS, FaultCode.INVALID_PARAMETER)
            if numeric and any(c.numeric_id == numeric for c in others):
                raise fault(FaultCode.DUPLICATE_NUMERIC_ID, numeric)
            changes["numeric_id"] = numeric
        if params.has("pin"):
            changes["pin"] = digits(params, "pin", MAX_NAME_CHARS, FaultCode.INVALID_PIN)
        if params.has("description"):
            changes["description"] = params.text("description", max_chars=MAX_NAME_CHARS)
        for key, attr in (
            ("registerWithGatekeeper", "register_with_gatekeeper"),
            ("registerWithSIPRegistrar", "register_with_sip_registrar"),
            ("private", "private"),
        ):
            flag = params.boolean(key)
            if flag is not None:
                changes[attr] = flag
        if params.has("startTime"):
            start = params.raw("startTime")
            if not isinstance(start, DateTime):
                raise params.malformed("startTime", "a dateTime.iso8601")
            if not _valid_time(start.value):
                raise fault(FaultCode.INVALID_START_TIME, start.value[:40])
            changes["start_time"] = start.value
        if params.has("durationSeconds"):
            duration = params.raw("durationSeconds")
            if isinstance(duration, bool) or not isinstance(duration, int):
                raise params.malformed("durationSeconds", "an integer")
            if not 0 <= duration <= 2**31 - 1:
                raise fault(FaultCode.INVALID_END_TIME, "durationSeconds must be 0..2147483647")
            changes["duration_s"] = duration
        for key, attr in (
            ("maximumVideoPorts", "max_video_ports"),
            ("reservedVideoPorts", "reserved_video_ports"),
            ("maximumAudioPorts", "max_audio_ports"),
            ("reservedAudioPorts", "reserved_audio_ports"),
        ):
            count = params.integer(key, low=0, high=MAX_PORTS_PER_CONFERENCE)
            if count is not None:
                changes[attr] = count
        if params.has("templateName"):
            template = params.text("templateName")
            if template:
                raise fault(FaultCode.NO_SUCH_TEMPLATE, template)
        for maximum, reserved in (
            ("max_video_ports", "reserved_video_ports"),
            ("max_audio_ports", "reserved_audio_ports"),
        ):
            top = changes.get(maximum, getattr(conference, maximum))
            held = changes.get(reserved, getattr(conference, reserved))
            if top and held > top:
                raise fault(
                    FaultCode.MISMATCHED_PARAMETERS,
                    f"{reserved.replace('_', ' ')} exceed the maximum",
                )
        top = changes.get("max_video_ports", conference.max_video_ports)
        if not creating and top and top < len(conference.participants):
            raise fault(
                FaultCode.PORT_LIMIT_LOWER_THAN_ACTIVE,
                f"{len(conference.participants)} participants are connected",
            )
        held = changes.get("reserved_video_ports", conference.reserved_video_ports)
        extra = max(held, len(conference.participants)) - conference.ports_used
        if extra > 0 and extra > self.ports_free():
            raise fault(
                FaultCode.PORT_RESERVATION_FAILURE,
                f"{extra} more ports needed, {self.ports_free()} free",
            )
        return changes

    def conference_create(self, params: Params, now: float) -> dict[str, Any]:
        name = self._name(params, "conferenceName", FaultCode.NO_CONFERENCE_NAME)
        if name in self.conferences:
            raise fault(FaultCode.DUPLICATE_CONFERENCE_NAME, name)
        if len(self.conferences) >= MAX_CONFERENCES:
            raise fault(FaultCode.TOO_MANY_CONFERENCES, f"at most {MAX_CONFERENCES}")
        blank = McuConference(name, 0)
        changes = self._settings(params, blank, creating=True)
        conference = McuConference(name, next(self._unique_ids), **changes)
        self.conferences[name] = conference
        return dict(OK)

    def conference_modify(self, params: Params, now: float) -> dict[str, Any]:
        conference = self._conference(params)
        new_name = None
        if params.has("newConferenceName"):
            new_name = self._name(params, "newConferenceName", FaultCode.NO_CONFERENCE_NAME)
            if new_name != conference.name and new_name in self.conferences:
                raise fault(FaultCode.DUPLICATE_CONFERENCE_NAME, new_name)
        changes = self._settings(params, conference, creating=False)
        for attr, value in changes.items():
            setattr(conference, attr, value)
        if new_name is not None and new_name != conference.name:
            del self.conferences[conference.name]
            conference.name = new_name
            self.conferences[new_name] = conference
        return dict(OK)

    def conference_destroy(self, params: Params, now: float) -> dict[str, Any]:
        conference = self._conference(params)
        for participant in conference.participants.values():
            if participant.call_id is not None:
                self.calls.pop(participant.call_id, None)
        del self.conferences[conference.name]
        return dict(OK)

    def conference_status(self, params: Params, now: float) -> dict[str, Any]:
        return self._conference(params).status()

    def conference_enumerate(self, params: Params, now: float) -> dict[str, Any]:
        enumerate_id = params.enumerate_id()
        wanted = _conference_filter(params)
        params.boolean("moreThanFour")
        names, next_id = self.pager.page(
            "conference.enumerate",
            enumerate_id,
            lambda: [c.name for c in self.conferences.values() if wanted],
            lambda name: name in self.conferences,
            now,
        )
        out: dict[str, Any] = {"conferences": [self.conferences[n].entry() for n in names]}
        if next_id is not None:
            out["enumerateID"] = next_id
        return out

    # --------------------------------------------------------- participants
    def participant_add(self, params: Params, now: float) -> dict[str, Any]:
        conference = self._conference(params)
        name = self._name(params, "participantName", FaultCode.NO_PARTICIPANT_NAME)
        address = params.text(
            "address",
            required=True,
            missing=FaultCode.NO_PARTICIPANT_ADDRESS,
            max_chars=255,
            empty_is_missing=True,
        )
        assert address is not None
        protocol = params.choice(
            "participantProtocol", PROTOCOLS, default="h323", bad=FaultCode.UNSUPPORTED_PROTOCOL
        )
        kind = params.choice(
            "participantType",
            PARTICIPANT_TYPES,
            default="by_address",
            bad=FaultCode.UNSUPPORTED_PARTICIPANT_TYPE,
        )
        display = params.text("displayNameOverrideValue", max_chars=MAX_NAME_CHARS) or name
        if name in conference.participants:
            raise fault(FaultCode.DUPLICATE_PARTICIPANT_NAME, name)
        self._check_room(conference, signalled=False)
        conference.participants[name] = McuParticipant(name, protocol, kind, address, display, now)
        return dict(OK)

    def _check_room(self, conference: McuConference, *, signalled: bool) -> None:
        """One more participant in `conference`: within its limit, and a port for it
        (one of its reserved ports, or a free one; none while the `full` drill is on).
        Fault 7 over XML-RPC; 486 / 503 for a signalled call."""
        conference_full = len(conference.participants) >= conference.limit
        needs_port = len(conference.participants) >= conference.reserved_video_ports
        no_port = self.full or (needs_port and self.ports_free() <= 0)
        if signalled and (conference_full or no_port):
            self.refuse(conference_full=conference_full)
        if conference_full:
            raise fault(FaultCode.TOO_MANY_PARTICIPANTS, f"the limit is {conference.limit}")
        if no_port:
            raise fault(FaultCode.TOO_MANY_PARTICIPANTS, "no free video port on the MCU")

    def _participant(self, params: Params) -> tuple[McuConference, McuParticipant]:
        conference = self._conference(params)
        name = params.text(
            "participantName",
            required=True,
            missing=FaultCode.NO_PARTICIPANT_NAME,
            empty_is_missing=True,
        )
        assert name is not None
        participant = conference.participants.get(name)
        protocol = params.text("participantProtocol")
        kind = params.text("participantType")
        if (
            participant is None
            or (protocol is not None and protocol != participant.protocol)
            or (kind is not None and kind != participant.type)
        ):
            raise fault(FaultCode.NO_SUCH_PARTICIPANT, name)
        return conference, participant

    def participant_remove(self, params: Params, now: float) -> dict[str, Any]:
        conference, participant = self._participant(params)
        del conference.participants[participant.name]
        if participant.call_id is not None:
            self.calls.pop(participant.call_id, None)
        return dict(OK)

    def participant_enumerate(self, params: Params, now: float) -> dict[str, Any]:
        enumerate_id = params.enumerate_id()
        scopes: tuple[str, ...] = ("currentState",)
        raw_scopes = params.array("operationScope")
        if raw_scopes is not None:
            if not all(isinstance(s, str) for s in raw_scopes):
                raise params.malformed("operationScope", "an array of strings")
            unknown = [s for s in raw_scopes if s not in SCOPES]
            if unknown:
                raise params.invalid("operationScope", f"{unknown[0][:40]!r} is not a scope")
            scopes = tuple(raw_scopes)
        flt = params.text("enumerateFilter") or ""
        if flt and flt not in _PARTICIPANT_FILTERS:
            raise params.invalid("enumerateFilter", f"{flt[:40]!r} is not a filter")
        # every participant tplab has is connected
        show = flt in ("", "connected", "!disconnected")

        def keys() -> list[tuple[str, str]]:
            if not show:
                return []
            return [
                (c.name, p.name) for c in self.conferences.values() for p in c.participants.values()
            ]

        def exists(key: tuple[str, str]) -> bool:
            conference = self.conferences.get(key[0])
            return conference is not None and key[1] in conference.participants

        found, next_id = self.pager.page("participant.enumerate", enumerate_id, keys, exists, now)
        out: dict[str, Any] = {
            "participants": [self.conferences[c].participants[p].entry(c, scopes) for c, p in found]
        }
        if next_id is not None:
            out["enumerateID"] = next_id
        return out

    # ----------------------------------------------------------- signalling
    def match_conference(self, alias: str) -> Any:
        if alias in self.conferences:
            return alias
        for conference in self.conferences.values():
            if conference.numeric_id and conference.numeric_id == alias:
                return conference.name
        return None

    def admit(self, key: Any, call_id: str, caller: str, protocol: str, now: float) -> None:
        conference = self.conferences[key]
        self._check_room(conference, signalled=True)
        name = f"_in{next(self._incoming)}"
        while name in conference.participants:
            name = f"_in{next(self._incoming)}"
        display = caller.partition("@")[0][:MAX_NAME_CHARS] or caller[:MAX_NAME_CHARS]
        conference.participants[name] = McuParticipant(
            name, protocol, "ad_hoc", caller, display, now, call_id
        )
        self.calls[call_id] = (conference.name, name)

    def describe_call(self, call_id: str) -> CallAnswer:
        conference_name, name = self.calls[call_id]
        return CallAnswer(call_id, name, conference_name, conference_name)

    def drop_call(self, call_id: str) -> None:
        conference_name, name = self.calls.pop(call_id)
        del self.conferences[conference_name].participants[name]


def _valid_time(text: str) -> bool:
    if not _ISO.fullmatch(text):
        return False
    try:
        datetime.strptime(text, "%Y%m%dT%H:%M:%S")  # noqa: DTZ007 - the MCU's local time
    except ValueError:
        return False
    return True


def _conference_filter(params: Params) -> bool:
    """`enumerateFilter`: terms joined by `|` (any may match), each `[!]active`,
    `scheduled`, `completed` or `ad_hoc`. Every tplab conference is an active,
    scheduled (API-made), not completed one, so the filter keeps all or none."""
    text = params.text("enumerateFilter") or ""
    if not text:
        return True
    keep = False
    for term in text.split("|"):
        negated = term.startswith("!")
        word = term[1:] if negated else term
        if word not in _CONFERENCE_TERMS:
            raise params.invalid("enumerateFilter", f"{term[:40]!r} is not a filter term")
        keep = keep or (_CONFERENCE_TERMS[word] != negated)
    return keep
