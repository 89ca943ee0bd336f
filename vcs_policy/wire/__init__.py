"""Codecs of the VCS external policy protocol, for both sides.

- `policy`: the request the VCS POSTs (form-encoded name/value pairs).
- `cpl`: the answer (CPL with the TANDBERG extensions): building the documents a
  policy server returns and evaluating one against the request it answers.
"""

from vcs_policy.wire.cpl import (
    DEFAULT_SEARCH_CPL,
    Action,
    CplResult,
    cpl_allow,
    cpl_redirect,
    cpl_reject,
    evaluate_cpl,
    evaluate_default_cpl,
)
from vcs_policy.wire.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from vcs_policy.wire.policy import PolicyRequest

__all__ = [
    "DEFAULT_SEARCH_CPL",
    "Action",
    "CplResult",
    "LocalProtocolError",
    "PolicyRequest",
    "ProtocolError",
    "RemoteProtocolError",
    "cpl_allow",
    "cpl_redirect",
    "cpl_reject",
    "evaluate_cpl",
    "evaluate_default_cpl",
]
