"""CPL answers of a policy service (RFC 3880 with the TANDBERG extensions).

Builders make the three documents a Conductor answers with (allow, reject,
redirect); `evaluate_cpl` runs any supported CPL against the request it answers
and says what the VCS does: allow the call to its original destination, reject
it with a status and reason, or route it to a new location set.

Supported nodes (cisco-behaviour.md 1.6): `taa:routed` (exactly one, under the
`cpl` root), `address-switch` with `address` (`is`, `contains`, `subdomain-of`,
`regex`), `otherwise`, `not-present`; `taa:location` (`clear`, `url`,
`regex`+`replace`); `taa:rule-switch` / `taa:rule`; `proxy` (with its outcome
children); `reject`. Anything else, RFC `incoming` / `outgoing` included, is
refused as the VCS refuses it. Processing runs nodes in document order until
`proxy` or `reject`; running off the end proxies to the location set, as the
RFC's default behaviour does. Matching is case-insensitive; regexes must match
the whole field.

Invariants: `evaluate_cpl` takes any bytes or text and returns a `CplResult`
or raises `RemoteProtocolError` (malformed XML, entities or DTDs, unsupported
nodes, bad attributes, nesting deeper than `MAX_DEPTH`); the builders'
documents evaluate to what they were built to say.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import quoteattr

from defusedxml import ElementTree as SafeElementTree

from vcs_policy.wire.errors import LocalProtocolError, RemoteProtocolError
from vcs_policy.wire.policy import PolicyRequest

CPL_NS = "urn:ietf:params:xml:ns:cpl"
TAA_NS = "http://www.tandberg.net/cpl-extensions"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_CPL_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_REGEX_CHARS = 512
CONTENT_TYPE = "text/xml; charset=utf-8"

#: the VCS's Default CPL for search-rule policy services (1.7)
DEFAULT_SEARCH_CPL = "<reject status='504' reason='Policy Service Unavailable'/>"

UNSUPPORTED = (
    "time-switch",
    "string-switch",
    "language-switch",
    "priority-switch",
    "redirect",
    "mail",
    "log",
    "subaction",
    "lookup",
    "remove-location",
    "incoming",
    "outgoing",
)
ADDRESS_FIELDS = (
    "unauthenticated-origin",
    "authenticated-origin",
    "origin",
    "originating-zone",
    "originating-user",
    "registered-origin",
    "destination",
    "original-destination",
)
SUBFIELDS = ("address-type", "user", "host", "tel", "alias-type")
RULE_ATTRIBUTES = (
    "origin",
    "authenticated-origin",
    "unauthenticated-origin",
    "registered-origin",
    "originating-user",
    "originating-zone",
    "destination",
    "message-regex",
)
PROXY_OUTCOMES = ("failure", "busy", "noanswer", "redirection", "default")


class Action(enum.Enum):
    ALLOW = "allow"
    REJECT = "reject"
    REDIRECT = "redirect"


@dataclass(frozen=True, slots=True)
class CplResult:
    action: Action
    status: int | None = None
    reason: str = ""
    locations: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.action is Action.REJECT:
            return f"rejected {self.status} {self.reason}".rstrip()
        if self.action is Action.REDIRECT:
            return "redirected to " + ", ".join(self.locations)
        return "allowed"


# ------------------------------------------------------------------ builders
def _document(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<cpl xmlns="{CPL_NS}" xmlns:taa="{TAA_NS}" xmlns:xsi="{XSI_NS}" '
        f'xsi:schemaLocation="{CPL_NS} cpl.xsd">'
        f"<taa:routed>{body}</taa:routed></cpl>\n"
    )


def cpl_allow() -> str:
    """Let the call go on to its original destination."""
    return _document("<proxy/>")


def cpl_reject(status: int, reason: str) -> str:
    if not 400 <= status <= 699:
        raise LocalProtocolError(f"reject status must be 400-699 (got {status})")
    return _document(f"<reject status={quoteattr(str(status))} reason={quoteattr(reason)}/>")


def cpl_redirect(url: str) -> str:
    """Route the call to `url` instead (clear the location set first)."""
    if not url or re.search(r"[\x00-\x1f\x7f]", url):
        raise LocalProtocolError("redirect needs a URL without control characters")
    return _document(f'<taa:location clear="yes" url={quoteattr(url)}><proxy/></taa:location>')


# ------------------------------------------------------------------ evaluation
def _local(element: Element) -> tuple[str, str]:
    tag = element.tag
    if not isinstance(tag, str):  # comments and processing instructions
        return "", ""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _alias_parts(alias: str, protocol: str) -> dict[str, str]:
    bare = re.sub(r"^(sips?|h323|tel):", "", alias, flags=re.I)
    user, at, host = bare.partition("@")
    digits = bare.lstrip("+")
    if at:
        alias_type = "url-ID"
    elif digits.isascii() and digits.isdigit():
        alias_type = "dialedDigits"
    else:
        alias_type = "h323-ID"
    return {
        "user": user,
        "host": host if at else "",
        "tel": digits if alias_type == "dialedDigits" else "",
        "address-type": "sip" if protocol == "SIP" else "h323",
        "alias-type": alias_type,
    }


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    if len(pattern) > MAX_REGEX_CHARS:
        raise RemoteProtocolError(f"{where}: regex longer than {MAX_REGEX_CHARS} characters")
    try:
        return re.compile(pattern, re.I)
    except (re.error, OverflowError, RecursionError) as exc:
        raise RemoteProtocolError(f"{where}: invalid regex {pattern[:60]!r}: {exc}") from exc


@dataclass
class _Run:
    request: PolicyRequest
    locations: list[str] = field(default_factory=list)
    touched: bool = False

    def field_value(self, name: str) -> str:
        r = self.request
        return {
            "unauthenticated-origin": r.UNAUTHENTICATED_SOURCE_ALIAS,
            "authenticated-origin": r.AUTHENTICATED_SOURCE_ALIAS,
            "origin": r.source_alias,
            "originating-zone": r.ZONE_NAME,
            "originating-user": r.AUTHENTICATION_USER_NAME,
            "registered-origin": r.REGISTERED_ALIAS,
            "destination": r.DESTINATION_ALIAS or r.ALIAS,
            "original-destination": r.DESTINATION_ALIAS or r.ALIAS,
            "message-regex": "",
        }[name]


def _attr(element: Element, name: str) -> str | None:
    value = element.get(name)
    return None if value is None else str(value)


def _run(nodes: list[Element], run: _Run, depth: int) -> CplResult | None:
    """Run nodes in order; a terminal node's result, or None to fall through."""
    if depth > MAX_DEPTH:
        raise RemoteProtocolError(f"CPL nested deeper than {MAX_DEPTH} levels")
    for node in nodes:
        ns, name = _local(node)
        if not name:
            continue
        result = _node(node, ns, name, run, depth)
        if result is not None:
            return result
    return None


def _node(node: Element, ns: str, name: str, run: _Run, depth: int) -> CplResult | None:
    if name in UNSUPPORTED:
        raise RemoteProtocolError(f"CPL node <{name}> is not supported", reason="unsupported")
    if ns == CPL_NS and name == "proxy":
        return _proxy(node, run)
    if ns == CPL_NS and name == "reject":
        return _reject(node)
    if ns == CPL_NS and name == "address-switch":
        return _address_switch(node, run, depth)
    if ns == TAA_NS and name == "location":
        _location(node, run)
        return _run(list(node), run, depth + 1)
    if ns == TAA_NS and name == "rule-switch":
        return _rule_switch(node, run, depth)
    raise RemoteProtocolError(
        f"<{name}> (namespace {ns or 'none'}) is not a CPL node here", reason="unsupported"
    )


def _proxy(node: Element, run: _Run) -> CplResult:
    timeout = _attr(node, "timeout")
    if timeout is not None and not (
        timeout.isascii() and timeout.isdigit() and 1 <= int(timeout) <= 86400
    ):
        raise RemoteProtocolError(f"<proxy timeout> must be 1-86400 seconds (got {timeout[:20]!r})")
    for child in node:
        ns, name = _local(child)
        if name and (ns != CPL_NS or name not in PROXY_OUTCOMES):
            raise RemoteProtocolError(f"<{name}> is not an outcome of <proxy>")
    original = run.request.DESTINATION_ALIAS or run.request.ALIAS
    locations = tuple(run.locations) if run.touched else ()
    if not locations or locations == (original,):
        return CplResult(Action.ALLOW, locations=(original,))
    return CplResult(Action.REDIRECT, locations=locations)


def _reject(node: Element) -> CplResult:
    status = _attr(node, "status")
    if status is None:
        raise RemoteProtocolError("<reject> has no status")
    if not (status.isascii() and status.isdigit() and 400 <= int(status) <= 699):
        raise RemoteProtocolError(f"<reject status> must be 400-699 (got {status[:20]!r})")
    return CplResult(Action.REJECT, int(status), _attr(node, "reason") or "")


def _matches_address(node: Element, value: str) -> bool:
    tests = [
        (k, str(v))
        for k, v in node.attrib.items()
        if k in ("is", "contains", "subdomain-of", "regex")
    ]
    if len(tests) != 1:
        raise RemoteProtocolError(
            "<address> needs exactly one of is, contains, subdomain-of, regex"
        )
    kind, operand = tests[0]
    low, op = value.lower(), operand.lower()
    if kind == "is":
        return low == op
    if kind == "contains":
        return op in low
    if kind == "subdomain-of":
        if op.isdigit():
            return low.startswith(op)
        return low == op or low.endswith("." + op) or low.endswith("@" + op)
    return _compile(operand, "<address regex>").fullmatch(value) is not None


def _address_switch(node: Element, run: _Run, depth: int) -> CplResult | None:
    field_name = _attr(node, "field")
    if field_name not in ADDRESS_FIELDS:
        raise RemoteProtocolError(
            f"<address-switch field> must be one of {', '.join(ADDRESS_FIELDS)} "
            f"(got {str(field_name)[:40]!r})"
        )
    subfield = _attr(node, "subfield")
    if subfield is not None and subfield not in SUBFIELDS:
        raise RemoteProtocolError(f"<address-switch subfield> {subfield[:40]!r} is unknown")
    value = run.field_value(field_name)
    if subfield is not None and value:
        value = _alias_parts(value, run.request.PROTOCOL)[subfield]
    for branch in node:
        ns, name = _local(branch)
        if not name:
            continue
        if ns != CPL_NS or name not in ("address", "otherwise", "not-present"):
            raise RemoteProtocolError(f"<{name}> is not a branch of <address-switch>")
        if (
            (name == "address" and value and _matches_address(branch, value))
            or (name == "not-present" and not value)
            or name == "otherwise"
        ):
            return _run(list(branch), run, depth + 1)
    return None


def _location(node: Element, run: _Run) -> None:
    clear = _attr(node, "clear") or "no"
    if clear not in ("yes", "no"):
        raise RemoteProtocolError(f"<taa:location clear> must be yes or no (got {clear[:20]!r})")
    priority = _attr(node, "priority")
    if priority is not None and priority != "random":
        try:
            ok = 0.0 <= float(priority) <= 1.0
        except ValueError:
            ok = False
        if not ok:
            raise RemoteProtocolError("<taa:location priority> must be 0.0-1.0 or random")
    url, regex, replace = _attr(node, "url"), _attr(node, "regex"), _attr(node, "replace")
    if (url is None) == (regex is None):
        raise RemoteProtocolError("<taa:location> needs either url or regex (with replace)")
    if clear == "yes":
        run.locations.clear()
    elif not run.touched:
        run.locations = [run.request.DESTINATION_ALIAS or run.request.ALIAS]
    run.touched = True
    if url is not None:
        new = url
    else:
        if replace is None:
            raise RemoteProtocolError("<taa:location regex> needs replace")
        original = run.request.DESTINATION_ALIAS or run.request.ALIAS
        pattern = _compile(str(regex), "<taa:location regex>")
        if pattern.fullmatch(original) is None:
            return
        try:
            new = pattern.sub(replace, original, count=1)
        except (re.error, IndexError) as exc:
            raise RemoteProtocolError(f"<taa:location replace> {replace[:60]!r}: {exc}") from exc
    if not new or re.search(r"[\x00-\x1f\x7f]", new):
        raise RemoteProtocolError("<taa:location> gives an empty or unprintable address")
    if new not in run.locations:
        run.locations.append(new)


def _rule_switch(node: Element, run: _Run, depth: int) -> CplResult | None:
    for rule in node:
        ns, name = _local(rule)
        if not name:
            continue
        if ns != TAA_NS or name != "rule":
            raise RemoteProtocolError(f"<{name}> is not a <taa:rule>")
        unknown = set(rule.attrib) - set(RULE_ATTRIBUTES)
        if unknown:
            raise RemoteProtocolError(f"<taa:rule> has unknown attribute {sorted(unknown)[0]!r}")
        if all(
            _compile(str(pattern), f"<taa:rule {attr}>").fullmatch(run.field_value(attr))
            is not None
            for attr, pattern in rule.attrib.items()
        ):
            return _run(list(rule), run, depth + 1)
    return None


def _parse(document: bytes | str) -> Element:
    if isinstance(document, str):
        data = document.encode("utf-8", errors="surrogatepass")
    elif isinstance(document, bytes | bytearray):
        data = bytes(document)
    else:
        raise RemoteProtocolError("CPL must be text")
    if len(data) > MAX_CPL_BYTES:
        raise RemoteProtocolError(
            f"CPL of {len(data)} bytes exceeds {MAX_CPL_BYTES}", reason="too_large"
        )
    if not data.strip():
        raise RemoteProtocolError("CPL answer is empty")
    try:
        root: Any = SafeElementTree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except Exception as exc:  # the parser family raises many types: expat, defusedxml
        raise RemoteProtocolError(f"CPL is not well-formed XML: {exc}") from exc
    return root  # type: ignore[no-any-return]


def evaluate_cpl(document: bytes | str, request: PolicyRequest) -> CplResult:
    """What the VCS does with the CPL `document` answering `request`."""
    root = _parse(document)
    ns, name = _local(root)
    if (ns, name) != (CPL_NS, "cpl"):
        raise RemoteProtocolError(f'CPL root must be <cpl xmlns="{CPL_NS}"> (got <{name}>)')
    sections = [child for child in root if _local(child)[1]]
    for child in sections:
        child_ns, child_name = _local(child)
        if child_name in UNSUPPORTED:
            raise RemoteProtocolError(
                f"CPL node <{child_name}> is not supported", reason="unsupported"
            )
        if (child_ns, child_name) != (TAA_NS, "routed"):
            raise RemoteProtocolError(f"<{child_name}> may not appear under <cpl>")
    if len(sections) != 1:
        raise RemoteProtocolError(f"CPL needs exactly one <taa:routed> (got {len(sections)})")
    run = _Run(request)
    try:
        result = _run(list(sections[0]), run, 1)
    except RecursionError as exc:
        raise RemoteProtocolError("CPL nested too deeply") from exc
    if result is None:
        result = _proxy(Element(f"{{{CPL_NS}}}proxy"), run)
    return result


def evaluate_default_cpl(snippet: str, request: PolicyRequest) -> CplResult:
    """The VCS's Default CPL is a bare node (`<reject .../>`), not a whole document."""
    return evaluate_cpl(_document(snippet), request)
