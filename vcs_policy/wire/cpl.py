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
refused as the VCS refuses it - wherever it sits: the whole document is checked
before it runs (as the VCS checks an upload), so a node after a `proxy` or in a
branch this request does not take is refused all the same. Processing runs
nodes in document order until `proxy` or `reject`; running off the end proxies
to the location set, as the RFC's default behaviour does. Matching is
case-insensitive; regexes must match the whole field; `regex`+`replace`
rewrites the whole original destination (`\1` names a group). A location set
that is just the original destination is an allow, not a redirect.

Invariants: `evaluate_cpl` takes any bytes or text and returns a `CplResult`
or raises `RemoteProtocolError` (malformed XML, entities or DTDs - refused at
the declaration, never expanded -, unsupported nodes, bad attributes, nesting
deeper than `MAX_DEPTH`); whether a document is refused for its structure does
not depend on the request (only a `regex`+`replace` that rewrites this
destination to an empty or unprintable address fails at run time); a reject reason or a
location never carries control characters (they would reach SIP headers); the
builders' documents evaluate to what they were built to say.
"""

from __future__ import annotations

import enum
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import quoteattr

from defusedxml import DefusedXmlException
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
ADDRESS_TESTS = ("is", "contains", "subdomain-of", "regex")
#: characters a reason or location may not carry: controls (SIP header injection)
#: and what XML 1.0 cannot represent at all
_UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


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
    """Reject the call with SIP `status` (400-699) and `reason` (no control characters)."""
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 699:
        raise LocalProtocolError(f"reject status must be an integer 400-699 (got {status!r})")
    if not isinstance(reason, str) or _UNSAFE_TEXT.search(reason):
        raise LocalProtocolError("reject reason must be text without control characters")
    return _document(f"<reject status={quoteattr(str(status))} reason={quoteattr(reason)}/>")


def cpl_redirect(url: str) -> str:
    """Route the call to `url` instead (clear the location set first).

    A redirect to the request's own destination alias evaluates as an allow.
    """
    if not isinstance(url, str) or not url or _UNSAFE_TEXT.search(url):
        raise LocalProtocolError("redirect needs a URL without control characters")
    return _document(f'<taa:location clear="yes" url={quoteattr(url)}><proxy/></taa:location>')


# ------------------------------------------------------------------ parsing
def _local(element: Element) -> tuple[str, str]:
    tag = element.tag
    if not isinstance(tag, str):  # comments and processing instructions
        return "", ""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _elements(nodes: Iterable[Element]) -> list[Element]:
    """The elements among `nodes` (an element's children), without comments or PIs."""
    return [node for node in nodes if _local(node)[1]]


def _is_int_in(text: str, low: int, high: int) -> bool:
    # the length bound keeps int() away from huge digit strings (ValueError past 4300)
    return text.isascii() and text.isdigit() and len(text) <= 9 and low <= int(text) <= high


def _attr(element: Element, name: str) -> str | None:
    value = element.get(name)
    return None if value is None else str(value)


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    if len(pattern) > MAX_REGEX_CHARS:
        raise RemoteProtocolError(f"{where}: regex longer than {MAX_REGEX_CHARS} characters")
    try:
        with warnings.catch_warnings():
            # re warns about ambiguous patterns such as POSIX classes ("[[:digit:]]"),
            # which Python reads otherwise than the author meant: refuse them
            warnings.simplefilter("error")
            return re.compile(pattern, re.I)
    except (re.error, OverflowError, RecursionError, ValueError, Warning) as exc:
        raise RemoteProtocolError(f"{where}: invalid regex {pattern[:60]!r}: {exc}") from exc


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
    except DefusedXmlException as exc:
        # raised at the declaration itself: nothing has been expanded
        raise RemoteProtocolError(
            f"CPL may not carry a DTD or entity declarations ({exc})", reason="forbidden"
        ) from exc
    except Exception as exc:  # the parser family raises many types: expat, defusedxml
        raise RemoteProtocolError(f"CPL is not well-formed XML: {exc}") from exc
    return root  # type: ignore[no-any-return]


# ------------------------------------------------------------------ checking
def _check(nodes: Iterable[Element], depth: int) -> None:
    """Refuse whatever the VCS refuses on upload, reachable or not (no request needed)."""
    if depth > MAX_DEPTH:
        raise RemoteProtocolError(f"CPL nested deeper than {MAX_DEPTH} levels")
    for node in _elements(nodes):
        ns, name = _local(node)
        if name in UNSUPPORTED:
            raise RemoteProtocolError(f"CPL node <{name}> is not supported", reason="unsupported")
        check = _CHECKS.get((ns, name))
        if check is None:
            raise RemoteProtocolError(
                f"<{name}> (namespace {ns or 'none'}) is not a CPL node here",
                reason="unsupported",
            )
        check(node, depth)


def _check_status(node: Element, where: str, *, required: bool) -> None:
    status = _attr(node, "status")
    if status is None:
        if required:
            raise RemoteProtocolError(f"<{where}> has no status")
        return
    if not _is_int_in(status, 400, 699):
        raise RemoteProtocolError(f"<{where} status> must be 400-699 (got {status[:20]!r})")


def _check_proxy(node: Element, depth: int) -> None:
    timeout = _attr(node, "timeout")
    if timeout is not None and not _is_int_in(timeout, 1, 86400):
        raise RemoteProtocolError(f"<proxy timeout> must be 1-86400 seconds (got {timeout[:20]!r})")
    for outcome in _elements(node):
        ns, name = _local(outcome)
        if ns != CPL_NS or name not in PROXY_OUTCOMES:
            raise RemoteProtocolError(f"<{name}> is not an outcome of <proxy>")
        if name == "failure":  # VCS extension: <failure status="403">
            _check_status(outcome, "failure", required=False)
        _check(outcome, depth + 1)


def _check_reject(node: Element, depth: int) -> None:
    _check_status(node, "reject", required=True)
    if _UNSAFE_TEXT.search(_attr(node, "reason") or ""):
        raise RemoteProtocolError("<reject reason> contains control characters")


def _check_address_switch(node: Element, depth: int) -> None:
    field_name = _attr(node, "field")
    if field_name not in ADDRESS_FIELDS:
        raise RemoteProtocolError(
            f"<address-switch field> must be one of {', '.join(ADDRESS_FIELDS)} "
            f"(got {str(field_name)[:40]!r})"
        )
    subfield = _attr(node, "subfield")
    if subfield is not None and subfield not in SUBFIELDS:
        raise RemoteProtocolError(f"<address-switch subfield> {subfield[:40]!r} is unknown")
    for branch in _elements(node):
        ns, name = _local(branch)
        if ns != CPL_NS or name not in ("address", "otherwise", "not-present"):
            raise RemoteProtocolError(f"<{name}> is not a branch of <address-switch>")
        if name == "address":
            kind, operand = _address_test(branch)
            if kind == "regex":
                _compile(operand, "<address regex>")
        _check(branch, depth + 1)


def _address_test(node: Element) -> tuple[str, str]:
    tests = [(k, str(v)) for k, v in node.attrib.items() if k in ADDRESS_TESTS]
    if len(tests) != 1:
        raise RemoteProtocolError(
            "<address> needs exactly one of is, contains, subdomain-of, regex"
        )
    return tests[0]


def _check_location(node: Element, depth: int) -> None:
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
    if url is not None and (not url or _UNSAFE_TEXT.search(url)):
        raise RemoteProtocolError("<taa:location url> is empty or has control characters")
    if regex is not None:
        if replace is None:
            raise RemoteProtocolError("<taa:location regex> needs replace")
        _check_template(_compile(regex, "<taa:location regex>"), replace)
    _check(node, depth + 1)


def _check_template(pattern: re.Pattern[str], replace: str) -> None:
    """Expand `replace` against a stand-in match with `pattern`'s groups, all empty.

    That proves every group reference exists and shows the template's own text,
    whichever destination it later meets.
    """
    names = {index: name for name, index in pattern.groupindex.items()}
    stand_in = "".join(
        f"(?P<{names[i]}>)" if i in names else "()" for i in range(1, pattern.groups + 1)
    )
    match = re.compile(stand_in).fullmatch("")
    if match is None:  # empty groups always match ""; this only satisfies the type
        raise RemoteProtocolError("<taa:location regex> has groups this module cannot follow")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            literal = match.expand(replace)
    except (re.error, IndexError, ValueError, RecursionError, Warning) as exc:
        raise RemoteProtocolError(f"<taa:location replace> {replace[:60]!r}: {exc}") from exc
    if _UNSAFE_TEXT.search(literal):
        raise RemoteProtocolError("<taa:location replace> has control characters")


def _check_rule_switch(node: Element, depth: int) -> None:
    for rule in _elements(node):
        ns, name = _local(rule)
        if ns != TAA_NS or name != "rule":
            raise RemoteProtocolError(f"<{name}> is not a <taa:rule>")
        unknown = set(rule.attrib) - set(RULE_ATTRIBUTES)
        if unknown:
            raise RemoteProtocolError(f"<taa:rule> has unknown attribute {sorted(unknown)[0]!r}")
        for attr, pattern in rule.attrib.items():
            _compile(str(pattern), f"<taa:rule {attr}>")
        _check(rule, depth + 1)


_CHECKS = {
    (CPL_NS, "proxy"): _check_proxy,
    (CPL_NS, "reject"): _check_reject,
    (CPL_NS, "address-switch"): _check_address_switch,
    (TAA_NS, "location"): _check_location,
    (TAA_NS, "rule-switch"): _check_rule_switch,
}


# ------------------------------------------------------------------ evaluation
# Runs only documents `_check` accepted, so it raises nothing for their structure.
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


@dataclass
class _Run:
    request: PolicyRequest
    locations: list[str] = field(default_factory=list)
    touched: bool = False

    @property
    def original(self) -> str:
        return self.request.DESTINATION_ALIAS or self.request.ALIAS

    def field_value(self, name: str) -> str:
        r = self.request
        return {
            "unauthenticated-origin": r.UNAUTHENTICATED_SOURCE_ALIAS,
            "authenticated-origin": r.AUTHENTICATED_SOURCE_ALIAS,
            "origin": r.source_alias,
            "originating-zone": r.ZONE_NAME,
            "originating-user": r.AUTHENTICATION_USER_NAME,
            "registered-origin": r.REGISTERED_ALIAS,
            "destination": self.original,
            "original-destination": self.original,
            "message-regex": "",
        }[name]


def _run(nodes: Iterable[Element], run: _Run) -> CplResult | None:
    """Run nodes in order; a terminal node's result, or None to fall through."""
    for node in _elements(nodes):
        ns, name = _local(node)
        if (ns, name) == (CPL_NS, "proxy"):
            return _proxy(run)
        if (ns, name) == (CPL_NS, "reject"):
            return CplResult(
                Action.REJECT, int(str(node.get("status"))), _attr(node, "reason") or ""
            )
        if (ns, name) == (CPL_NS, "address-switch"):
            result = _address_switch(node, run)
        elif (ns, name) == (TAA_NS, "location"):
            _location(node, run)
            result = _run(node, run)
        else:  # taa:rule-switch, the only other node `_check` lets through
            result = _rule_switch(node, run)
        if result is not None:
            return result
    return None


def _proxy(run: _Run) -> CplResult:
    locations = tuple(run.locations) if run.touched else ()
    if not locations or locations == (run.original,):
        return CplResult(Action.ALLOW, locations=(run.original,))
    return CplResult(Action.REDIRECT, locations=locations)


def _matches_address(node: Element, value: str) -> bool:
    kind, operand = _address_test(node)
    low, op = value.lower(), operand.lower()
    if kind == "is":
        return low == op
    if kind == "contains":
        return op in low
    if kind == "subdomain-of":
        if op.isascii() and op.isdigit():
            return low.startswith(op)
        return low == op or low.endswith("." + op) or low.endswith("@" + op)
    return _compile(operand, "<address regex>").fullmatch(value) is not None


def _address_switch(node: Element, run: _Run) -> CplResult | None:
    value = run.field_value(str(node.get("field")))
    subfield = _attr(node, "subfield")
    if subfield is not None and value:
        value = _alias_parts(value, run.request.PROTOCOL)[subfield]
    for branch in _elements(node):
        name = _local(branch)[1]
        if (
            (name == "address" and value and _matches_address(branch, value))
            or (name == "not-present" and not value)
            or name == "otherwise"
        ):
            return _run(branch, run)
    return None


def _location(node: Element, run: _Run) -> None:
    if _attr(node, "clear") == "yes":
        run.locations.clear()
    elif not run.touched:
        run.locations = [run.original]
    run.touched = True
    url = _attr(node, "url")
    if url is not None:
        new = url
    else:
        pattern = _compile(str(node.get("regex")), "<taa:location regex>")
        match = pattern.fullmatch(run.original)
        if match is None:
            return
        # the whole alias becomes the template (not just re.sub's first search hit)
        new = match.expand(str(node.get("replace")))
    if not new or _UNSAFE_TEXT.search(new):
        raise RemoteProtocolError(
            f"<taa:location> rewrites {run.original[:60]!r} to an empty or unprintable address"
        )
    if new not in run.locations:
        run.locations.append(new)


def _rule_switch(node: Element, run: _Run) -> CplResult | None:
    for rule in _elements(node):
        if all(
            _compile(str(pattern), f"<taa:rule {attr}>").fullmatch(run.field_value(attr))
            is not None
            for attr, pattern in rule.attrib.items()
        ):
            return _run(rule, run)
    return None


# ------------------------------------------------------------------ entry points
def evaluate_cpl(document: bytes | str, request: PolicyRequest) -> CplResult:
    """What the VCS does with the CPL `document` answering `request`.

    The document is checked whole first, then run; `RemoteProtocolError` for
    anything the VCS would not accept.
    """
    root = _parse(document)
    ns, name = _local(root)
    if (ns, name) != (CPL_NS, "cpl"):
        raise RemoteProtocolError(f'CPL root must be <cpl xmlns="{CPL_NS}"> (got <{name}>)')
    sections = _elements(root)
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
    try:
        _check(sections[0], 1)
        run = _Run(request)
        return _run(sections[0], run) or _proxy(run)
    except RecursionError as exc:
        raise RemoteProtocolError("CPL nested too deeply") from exc


_WHOLE_DOCUMENT = re.compile(r"\s*<(\?xml[\s?]|([\w.-]+:)?cpl[\s/>])")


def evaluate_default_cpl(snippet: str, request: PolicyRequest) -> CplResult:
    """What the VCS does with its Default CPL when no policy server answers.

    The Default CPL is normally a bare node sequence (`<reject .../>`, as the VCS
    ships it), run as the content of `taa:routed`; a whole `<cpl>` document (with
    or without prolog) is taken as it is.
    """
    if not isinstance(snippet, str):
        raise RemoteProtocolError("Default CPL must be text")
    if _WHOLE_DOCUMENT.match(snippet):
        return evaluate_cpl(snippet, request)
    return evaluate_cpl(_document(snippet), request)
