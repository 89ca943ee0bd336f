"""Search rules: which rules a dialled alias matches, in the order the VCS tries them (G-V2).

A rule matches when it is enabled, its protocol is Any or the call's, and its
pattern matches the whole alias (Exact, Prefix, Suffix, or a Regex,
case-insensitive). Rules are tried by priority (lower first; equal priorities by
name, tplab's tie-break). After a rule's target fails to route the call,
*On successful match = Stop* ends the search; *Continue* goes on to the next
matching rule.

Redirects: a policy service that routes the call to a new alias restarts call
processing for that alias (cisco-behaviour.md 1.6), up to `MAX_HOPS` times;
an alias whose host is an IP address is dialled directly (tplab's model of the
VCS's IP dialling), so a redirect to a bridge's address ends the search.

Invariants: pure; `matching_rules` never returns a disabled or non-matching rule.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from vcs_policy.core.config import SearchRule, compile_rule

MAX_HOPS = 4


def strip_scheme(alias: str) -> str:
    for scheme in ("sip:", "sips:", "h323:"):
        if alias[: len(scheme)].lower() == scheme:
            return alias[len(scheme) :]
    return alias


def matches(rule: SearchRule, alias: str, protocol: str) -> bool:
    if not rule.enabled or rule.protocol not in ("Any", protocol):
        return False
    return compile_rule(rule).fullmatch(strip_scheme(alias)) is not None


def matching_rules(rules: Iterable[SearchRule], alias: str, protocol: str) -> list[SearchRule]:
    ordered = sorted(rules, key=lambda r: (r.priority, r.name))
    return [rule for rule in ordered if matches(rule, alias, protocol)]


def direct_address(alias: str) -> str | None:
    """The IP address an alias dials directly (`user@10.1.3.10`), or None."""
    _, at, host = strip_scheme(alias).rpartition("@")
    if not at:
        return None
    host = host.split(";", 1)[0]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None
