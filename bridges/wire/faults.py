"""XML-RPC fault codes of the TelePresence MCU and TelePresence Server APIs.

Numbers and meanings from cisco-behaviour.md 3.2 (MCU; 17 and up from the
Conductor API's copy of the table) and 3.3 (TelePresence Server: the MCU's
codes plus 34, 35, 105, 202, 203). `FAULT_TEXT` is the fault string a bridge
sends, optionally followed by `" - "` and a detail (`"missing parameter -
conferenceName"`).
"""

from __future__ import annotations

import enum


class FaultCode(enum.IntEnum):
    METHOD_NOT_SUPPORTED = 1
    DUPLICATE_CONFERENCE_NAME = 2
    DUPLICATE_PARTICIPANT_NAME = 3
    NO_SUCH_CONFERENCE = 4
    NO_SUCH_PARTICIPANT = 5
    TOO_MANY_CONFERENCES = 6
    TOO_MANY_PARTICIPANTS = 7
    NO_CONFERENCE_NAME = 8
    NO_PARTICIPANT_NAME = 9
    NO_PARTICIPANT_ADDRESS = 10
    INVALID_START_TIME = 11
    INVALID_END_TIME = 12
    INVALID_PIN = 13
    UNAUTHORISED = 14
    INSUFFICIENT_PRIVILEGES = 15
    INVALID_ENUMERATE_ID = 16
    PORT_RESERVATION_FAILURE = 17
    DUPLICATE_NUMERIC_ID = 18
    UNSUPPORTED_PROTOCOL = 19
    UNSUPPORTED_PARTICIPANT_TYPE = 20
    NO_CONFERENCE_ALIAS = 21
    PORT_LIMIT_LOWER_THAN_ACTIVE = 25
    FLOOR_CONTROL_NOT_ENABLED = 26
    NO_SUCH_TEMPLATE = 27
    UNSUPPORTED_BIT_RATE = 30
    TEMPLATE_NAME_IN_USE = 31
    TOO_MANY_TEMPLATES = 32
    INTERNAL_ERROR = 34
    STRING_TOO_LONG = 35
    REQUIRED_VALUE_MISSING = 36
    MISSING_PARAMETER = 101
    INVALID_PARAMETER = 102
    MALFORMED_PARAMETER = 103
    MISMATCHED_PARAMETERS = 104
    REQUEST_TOO_LARGE = 105
    OPERATION_FAILED = 201
    FEATURE_KEY_REQUIRED = 202
    TOO_MANY_ASYNC_REQUESTS = 203


FAULT_TEXT: dict[FaultCode, str] = {
    FaultCode.METHOD_NOT_SUPPORTED: "method not supported",
    FaultCode.DUPLICATE_CONFERENCE_NAME: "duplicate conference name",
    FaultCode.DUPLICATE_PARTICIPANT_NAME: "duplicate participant name",
    FaultCode.NO_SUCH_CONFERENCE: "no such conference or auto attendant",
    FaultCode.NO_SUCH_PARTICIPANT: "no such participant",
    FaultCode.TOO_MANY_CONFERENCES: "too many conferences",
    FaultCode.TOO_MANY_PARTICIPANTS: "too many participants",
    FaultCode.NO_CONFERENCE_NAME: "no conference name or auto attendant id supplied",
    FaultCode.NO_PARTICIPANT_NAME: "no participant name supplied",
    FaultCode.NO_PARTICIPANT_ADDRESS: "no participant address supplied",
    FaultCode.INVALID_START_TIME: "invalid start time specified",
    FaultCode.INVALID_END_TIME: "invalid end time specified",
    FaultCode.INVALID_PIN: "invalid PIN specified",
    FaultCode.UNAUTHORISED: "unauthorised",
    FaultCode.INSUFFICIENT_PRIVILEGES: "insufficient privileges",
    FaultCode.INVALID_ENUMERATE_ID: "invalid enumerateID value",
    FaultCode.PORT_RESERVATION_FAILURE: "port reservation failure",
    FaultCode.DUPLICATE_NUMERIC_ID: "duplicate numeric ID",
    FaultCode.UNSUPPORTED_PROTOCOL: "unsupported protocol",
    FaultCode.UNSUPPORTED_PARTICIPANT_TYPE: "unsupported participant type",
    FaultCode.NO_CONFERENCE_ALIAS: "no conference alias",
    FaultCode.PORT_LIMIT_LOWER_THAN_ACTIVE: "new port limit lower than currently active",
    FaultCode.FLOOR_CONTROL_NOT_ENABLED: "floor control not enabled for this conference",
    FaultCode.NO_SUCH_TEMPLATE: "no such template",
    FaultCode.UNSUPPORTED_BIT_RATE: "unsupported bit rate",
    FaultCode.TEMPLATE_NAME_IN_USE: "template name in use",
    FaultCode.TOO_MANY_TEMPLATES: "too many templates",
    FaultCode.INTERNAL_ERROR: "internal error",
    FaultCode.STRING_TOO_LONG: "string is too long",
    FaultCode.REQUIRED_VALUE_MISSING: "required value missing",
    FaultCode.MISSING_PARAMETER: "missing parameter",
    FaultCode.INVALID_PARAMETER: "invalid parameter",
    FaultCode.MALFORMED_PARAMETER: "malformed parameter",
    FaultCode.MISMATCHED_PARAMETERS: "mismatched parameters",
    FaultCode.REQUEST_TOO_LARGE: "request too large",
    FaultCode.OPERATION_FAILED: "operation failed",
    FaultCode.FEATURE_KEY_REQUIRED: "product needs its activation feature key",
    FaultCode.TOO_MANY_ASYNC_REQUESTS: "too many asynchronous requests",
}


def fault_string(code: FaultCode, detail: str = "") -> str:
    """The fault string for `code`: its meaning, then `" - detail"` when given."""
    text = FAULT_TEXT[code]
    return f"{text} - {detail}" if detail else text
