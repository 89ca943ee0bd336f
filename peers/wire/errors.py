"""Protocol errors of the peer-side wire formats and cores (after h11).

- `LocalProtocolError`: *we* were asked to do something the protocol forbids (seal a
  payload larger than the MTU allows, build a message with a field of the wrong
  size, configure an invalid peer address). A bug or a misconfiguration on this
  side; the caller should not catch it to carry on.
- `RemoteProtocolError`: bytes from the network do not parse or violate the
  protocol. Every decoder raises only this for bad input; `reason` is a short
  machine-readable tag (`"truncated"`, `"malformed"`, ...) that cores count and
  report, the message is the detail for the log.
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
