"""Protocol errors of the bridge wire formats (after h11), and the fault a bridge answers.

- `LocalProtocolError`: this side was asked to build something the protocol does
  not allow (a method name with markup in it, an integer beyond XML-RPC's 32 bits,
  a string with characters XML cannot carry).
- `RemoteProtocolError`: bytes from the network do not parse or break the
  protocol. Every decoder raises only this for bad input; `reason` is a short tag
  (`"malformed"`, `"forbidden"` for DTDs and entities, `"too_large"`, `"method"`
  for a bad method name, `"params"` for parameters that are not one struct), the
  message says what and where.
- `BridgeFault`: a well-formed XML-RPC `<fault>` answer: the bridge refused the
  call with `code` (see `bridges.wire.faults.FaultCode`) and `string`.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of `LocalProtocolError` and `RemoteProtocolError`."""


class LocalProtocolError(ProtocolError):
    """This side asked for something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The other side sent something that does not parse or breaks the protocol."""

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


class BridgeFault(Exception):
    """The bridge answered an XML-RPC call with a fault."""

    def __init__(self, code: int, string: str) -> None:
        super().__init__(f"fault {code}: {string}")
        self.code = code
        self.string = string
