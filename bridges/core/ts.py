"""The TelePresence Server in remotely managed mode (API 4.1, "flexible operation
mode") as a sans-I/O state machine.

Models what cisco-behaviour.md 3.3 lists for a TS under a Conductor:
`system.info` (`operationMode` "flexible": remotely managed), `device.query`,
`device.health.query`, `flex.conference.create/enumerate/destroy` and
`flex.participant.create/enumerate/destroy`, plus the calls tplab's signalling
brings in (`incoming_call` / `hang_up`, see `bridges.core.common`).

tplab's choices where the vendor is silent or the lab needs less:
- Limits: at most 200 conferences; `conferenceName` 1-80 characters, a URI 1-255,
  a display name up to 80 (longer: fault 35 string too long); at most 10 URIs per
  conference and 4 calls per participant; PINs are up to 20 digits (else fault 13).
  A conference has no participant limit of its own: the ports are the limit.
- Identity: conferences and participants are named by GUIDs drawn from the core's
  injected `random.Random`. Conference names are unique (fault 2) and so is every
  URI across conferences (fault 18, the TS's duplicate numeric ID: a URI is what
  callers dial).
- Capacity: every participant takes one port; no free port (or the `full` drill)
  is fault 17 port reservation failure. `device.query` reports tplab's
  `totalVideoPorts`, `usedVideoPorts` and `healthy`.
- Unknown protocol or cascade role: fault 102 (the TS has no fault 19).
- Participants made by `flex.participant.create` dial out and are connected at
  once (tplab has no endpoints).

Invariants: conference names and URIs are unique; ports in use never exceed
`ports`; every participant belongs to an existing conference.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from bridges.core.common import (
    BridgeCore,
    CallAnswer,
    Params,
    digits,
    fault,
)
from bridges.wire.faults import FaultCode

MAX_CONFERENCES = 200
MAX_NAME_CHARS = 80
MAX_URI_CHARS = 255
MAX_URIS = 10
MAX_CALLS = 4
MAX_PIN_DIGITS = 20
DEFAULT_PORTS = 48
PROTOCOLS = ("sip", "h323")
CASCADE_ROLES = ("cascadeMaster", "cascadeSlave")


@dataclass
class TsCall:
    call_id: str
    remote_address: str
    protocol: str
    bandwidth: int = 0
    incoming: bool = False

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "callID": self.call_id,
            "remoteAddress": self.remote_address,
            "protocol": self.protocol,
            "incoming": self.incoming,
            "state": "connected",
        }
        if self.bandwidth:
            out["callBandwidth"] = self.bandwidth
        return out


@dataclass
class TsParticipant:
    participant_id: str
    conference_id: str
    display_name: str
    calls: list[TsCall]
    connected_s: float
    cascade_role: str = ""
    signalled: bool = False

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "participantID": self.participant_id,
            "conferenceID": self.conference_id,
            "displayName": self.display_name,
            "state": "connected",
            "calls": [call.entry() for call in self.calls],
        }
        if self.cascade_role:
            out["cascadeRole"] = self.cascade_role
        return out


@dataclass
class TsUri:
    uri: str
    pin: str = ""
    bandwidth: int = 0

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"URI": self.uri}
        if self.pin:
            out["PIN"] = self.pin
        if self.bandwidth:
            out["callBandwidth"] = self.bandwidth
        return out


@dataclass
class TsConference:
    conference_id: str
    name: str
    uris: list[TsUri]
    participants: dict[str, TsParticipant] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        return {
            "conferenceID": self.conference_id,
            "conferenceName": self.name,
            "URIs": [u.entry() for u in self.uris],
            "active": True,
            "participantCount": len(self.participants),  # tplab
        }


class TsCore(BridgeCore):
    kind = "ts"
    model = "Cisco TelePresence Server on Virtual Machine"
    api_version = "4.1"
    software_version = "4.1(1.79)"
    build_version = "4.1(1.79)"

    def __init__(self, *, rng: random.Random, **kwargs: Any) -> None:
        kwargs.setdefault("ports", DEFAULT_PORTS)
        super().__init__(**kwargs)
        self.rng = rng
        self.conferences: dict[str, TsConference] = {}
        self.participants: dict[str, TsParticipant] = {}
        self.methods = {
            "system.info": self.system_info,
            "device.query": self.device_query,
            "device.health.query": self.device_health_query,
            "flex.conference.create": self.conference_create,
            "flex.conference.enumerate": self.conference_enumerate,
            "flex.conference.destroy": self.conference_destroy,
            "flex.participant.create": self.participant_create,
            "flex.participant.enumerate": self.participant_enumerate,
            "flex.participant.destroy": self.participant_destroy,
        }

    def _guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # ---------------------------------------------------------------- state
    def ports_used(self) -> int:
        return len(self.participants)

    def participant_count(self) -> int:
        return len(self.participants)

    def conference_count(self) -> int:
        return len(self.conferences)

    def _conference(self, params: Params) -> TsConference:
        conference_id = params.text("conferenceID", required=True)
        assert conference_id is not None
        conference = self.conferences.get(conference_id)
        if conference is None:
            raise fault(FaultCode.NO_SUCH_CONFERENCE, conference_id[:40])
        return conference

    # --------------------------------------------------------------- device
    def system_info(self, params: Params, now: float) -> dict[str, Any]:
        return {
            "productName": self.model,
            "softwareVersion": self.software_version,
            "buildVersion": self.build_version,
            "apiVersion": self.api_version,
            "serial": self.serial,
            "operationMode": "flexible",  # remotely managed
            "uptime": self.uptime_s(now),
        }

    def device_query(self, params: Params, now: float) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "model": self.model,
            "serial": self.serial,
            "softwareVersion": self.software_version,
            "buildVersion": self.build_version,
            "operationMode": "flexible",
            "uptimeSeconds": self.uptime_s(now),
            "totalVideoPorts": self.ports,  # tplab
            "usedVideoPorts": self.reported_ports_used(),  # tplab
            "healthy": self.healthy,  # tplab
        }

    def device_health_query(self, params: Params, now: float) -> dict[str, Any]:
        return self.health()

    # ---------------------------------------------------------- conferences
    def _uris(self, params: Params) -> list[TsUri]:
        items = params.structs("URIs") or []
        if len(items) > MAX_URIS:
            raise params.invalid("URIs", f"at most {MAX_URIS}")
        taken = {u.uri for c in self.conferences.values() for u in c.uris}
        uris: list[TsUri] = []
        for item in items:
            uri = item.text(
                "URI", required=True, max_chars=MAX_URI_CHARS, too_long=FaultCode.STRING_TOO_LONG
            )
            assert uri is not None
            if not uri or " " in uri:
                raise item.invalid("URI", "must be non-empty, without spaces")
            pin = digits(item, "PIN", MAX_PIN_DIGITS, FaultCode.INVALID_PIN)
            bandwidth = item.integer("callBandwidth", low=1, high=2**31 - 1) or 0
            if uri in taken or any(u.uri == uri for u in uris):
                raise fault(FaultCode.DUPLICATE_NUMERIC_ID, f"URI {uri} is in use")
            uris.append(TsUri(uri, pin, bandwidth))
        return uris

    def conference_create(self, params: Params, now: float) -> dict[str, Any]:
        name = params.text(
            "conferenceName",
            required=True,
            missing=FaultCode.NO_CONFERENCE_NAME,
            empty_is_missing=True,
            max_chars=MAX_NAME_CHARS,
            too_long=FaultCode.STRING_TOO_LONG,
        )
        assert name is not None
        if any(c.name == name for c in self.conferences.values()):
            raise fault(FaultCode.DUPLICATE_CONFERENCE_NAME, name)
        if len(self.conferences) >= MAX_CONFERENCES:
            raise fault(FaultCode.TOO_MANY_CONFERENCES, f"at most {MAX_CONFERENCES}")
        uris = self._uris(params)
        conference_id = self._guid()
        self.conferences[conference_id] = TsConference(conference_id, name, uris)
        return {"conferenceID": conference_id}

    def conference_enumerate(self, params: Params, now: float) -> dict[str, Any]:
        found, next_id = self.pager.page(
            "flex.conference.enumerate",
            params.enumerate_id(),
            lambda: list(self.conferences),
            lambda key: key in self.conferences,
            now,
        )
        out: dict[str, Any] = {"conferences": [self.conferences[k].entry() for k in found]}
        if next_id is not None:
            out["enumerateID"] = next_id
        return out

    def conference_destroy(self, params: Params, now: float) -> dict[str, Any]:
        conference = self._conference(params)
        for participant_id in conference.participants:
            self._forget(self.participants.pop(participant_id))
        del self.conferences[conference.conference_id]
        return {}

    # --------------------------------------------------------- participants
    def _forget(self, participant: TsParticipant) -> None:
        if participant.signalled:
            for call in participant.calls:
                self.calls.pop(call.call_id, None)

    def participant_create(self, params: Params, now: float) -> dict[str, Any]:
        conference = self._conference(params)
        items = params.structs("calls", required=True)
        assert items is not None
        if not 1 <= len(items) <= MAX_CALLS:
            raise params.invalid("calls", f"1-{MAX_CALLS} calls")
        calls: list[tuple[str, str, int]] = []
        for item in items:
            address = item.text(
                "remoteAddress",
                required=True,
                missing=FaultCode.NO_PARTICIPANT_ADDRESS,
                empty_is_missing=True,
                max_chars=MAX_URI_CHARS,
                too_long=FaultCode.STRING_TOO_LONG,
            )
            assert address is not None
            protocol = item.choice(
                "protocol", PROTOCOLS, default="sip", bad=FaultCode.INVALID_PARAMETER
            )
            bandwidth = item.integer("callBandwidth", low=1, high=2**31 - 1) or 0
            calls.append((address, protocol, bandwidth))
        role = ""
        if params.has("cascadeRole"):
            role = params.choice(
                "cascadeRole", CASCADE_ROLES, default="", bad=FaultCode.INVALID_PARAMETER
            )
        display = params.text(
            "displayName", max_chars=MAX_NAME_CHARS, too_long=FaultCode.STRING_TOO_LONG
        )
        if self.ports_free() <= 0:
            raise fault(FaultCode.PORT_RESERVATION_FAILURE, "no free port on the server")
        participant = TsParticipant(
            self._guid(),
            conference.conference_id,
            display or calls[0][0],
            [TsCall(self._guid(), *call, incoming=False) for call in calls],
            now,
            role,
        )
        self._add(conference, participant)
        return {"participantID": participant.participant_id}

    def _add(self, conference: TsConference, participant: TsParticipant) -> None:
        conference.participants[participant.participant_id] = participant
        self.participants[participant.participant_id] = participant

    def participant_enumerate(self, params: Params, now: float) -> dict[str, Any]:
        enumerate_id = params.enumerate_id()
        only = None
        if params.has("conferenceID"):
            only = self._conference(params).conference_id
        found, next_id = self.pager.page(
            "flex.participant.enumerate",
            enumerate_id,
            lambda: [k for k, p in self.participants.items() if only in (None, p.conference_id)],
            lambda key: key in self.participants,
            now,
        )
        out: dict[str, Any] = {"participants": [self.participants[k].entry() for k in found]}
        if next_id is not None:
            out["enumerateID"] = next_id
        return out

    def participant_destroy(self, params: Params, now: float) -> dict[str, Any]:
        participant_id = params.text("participantID", required=True)
        assert participant_id is not None
        participant = self.participants.pop(participant_id, None)
        if participant is None:
            raise fault(FaultCode.NO_SUCH_PARTICIPANT, participant_id[:40])
        del self.conferences[participant.conference_id].participants[participant_id]
        self._forget(participant)
        return {}

    # ----------------------------------------------------------- signalling
    def match_conference(self, alias: str) -> Any:
        """A URI exactly, a URI's user part (before its "@"), a conference ID or name."""
        for conference in self.conferences.values():
            for uri in conference.uris:
                if alias in (uri.uri, uri.uri.partition("@")[0]):
                    return conference.conference_id
        if alias in self.conferences:
            return alias
        for conference in self.conferences.values():
            if conference.name == alias:
                return conference.conference_id
        return None

    def admit(self, key: Any, call_id: str, caller: str, protocol: str, now: float) -> None:
        conference = self.conferences[key]
        if self.ports_free() <= 0:
            self.refuse(conference_full=False)
        display = caller.partition("@")[0][:MAX_NAME_CHARS] or caller[:MAX_NAME_CHARS]
        participant = TsParticipant(
            self._guid(),
            conference.conference_id,
            display,
            [TsCall(call_id, caller, protocol, incoming=True)],
            now,
            signalled=True,
        )
        self._add(conference, participant)
        self.calls[call_id] = participant.participant_id

    def describe_call(self, call_id: str) -> CallAnswer:
        participant = self.participants[self.calls[call_id]]
        conference = self.conferences[participant.conference_id]
        return CallAnswer(
            call_id, participant.participant_id, conference.conference_id, conference.name
        )

    def drop_call(self, call_id: str) -> None:
        participant = self.participants.pop(self.calls.pop(call_id))
        del self.conferences[participant.conference_id].participants[participant.participant_id]
