"""Protocol errors of the policy-service wire formats (after h11).

- `LocalProtocolError`: this side was asked to build something the protocol does
  not allow (a request without a destination alias, a reject without a status).
- `RemoteProtocolError`: bytes from the network do not parse or break the
  protocol. Every decoder raises only this for bad input; `reason` is a short tag
  (`"malformed"`, `"missing"`, `"unsupported"`, `"forbidden"` for DTDs and
  entities, `"too_large"`), the message says what and where, for the event log
  and for a 400 answer.
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
