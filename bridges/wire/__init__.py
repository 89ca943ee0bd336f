"""Codecs of the protocols bridges speak, for both sides.

- `xmlrpc`: the MCU / TelePresence Server XML-RPC API (`POST /RPC2`).
- `faults`: the APIs' fault codes.
- `signalling`: tplab's stand-in for SIP / H.323 call setup towards a bridge.
"""

from bridges.wire.errors import (
    BridgeFault,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from bridges.wire.faults import FAULT_TEXT, FaultCode, fault_string
from bridges.wire.signalling import SIGNALLING_PORT, CallRequest, split_destination
from bridges.wire.xmlrpc import (
    CONTENT_TYPE,
    MAX_BODY_BYTES,
    DateTime,
    decode_call,
    decode_result,
    encode_call,
    encode_fault,
    encode_result,
    fault_for,
)

__all__ = [
    "CONTENT_TYPE",
    "FAULT_TEXT",
    "MAX_BODY_BYTES",
    "SIGNALLING_PORT",
    "BridgeFault",
    "CallRequest",
    "DateTime",
    "FaultCode",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "decode_call",
    "decode_result",
    "encode_call",
    "encode_fault",
    "encode_result",
    "fault_for",
    "fault_string",
    "split_destination",
]
