"""The Conductor's policy decisions for the VCS external policy service (sans-I/O).

What it models: a VCS search rule whose target is the Conductor's policy
service POSTs a policy request; the Conductor answers with CPL (G-V2). This
module takes the request body (bytes) and the conference aliases, and answers
the HTTP status, content type and text to send, and the decision it made.

Choices where the sources are silent (cisco-behaviour.md 2, UNCONFIRMED there):

- tplab's Conductor answers search-rule requests only (`POLICY_TYPE=SEARCH`):
  registration, call (`ADMIN`) and user policy are refused with 400 and a
  message saying so, as a policy service configured for the wrong job would be.
- Conference aliases (XC3.0 terms): *Name*, *Incoming alias (must use regex)*
  (a regular expression that must match the whole destination alias,
  case-insensitively, after a `sip:` scheme is stripped), *Conference name*
  (a template: `\\1` ... `\\9` are the regex's groups, `\\0` the whole alias,
  `\\\\` a backslash), *Priority* (1-65534, lower first, ties by name), *Role*
  (chairperson / guest), *Allow conference creation* (yes / no) and *Conference
  template* (the name of a conference template, `peers.core.conference_config`;
  optional: aliases stored before templates existed name none, and still work).
- An alias whose conference name comes out empty for a destination does not
  match it (the next alias is tried).
- No alias matches: CPL reject 404 "Conference not found". An alias matches:
  CPL allow (`cpl_allow()`: the call proceeds to its destination). The alias's
  conference template is recorded here but not used: placing the conference on a
  bridge and redirecting to it come in a later issue; until then the role and
  *Allow conference creation* are recorded in the decision but do not change the
  answer.

Also here, pure and driven by `now`: the per-peer counters shown on Status >
Overview, and `FailureThrottle`, which keeps a flood of failed policy logins
from filling the event log (G-P3: a VCS with wrong credentials polls every
60 s, and each poll must not be one more event forever).

Invariants: `answer_policy` takes any bytes and any content type and answers
2xx or 4xx, never raises; `validate_alias` returns a valid `ConferenceAlias` or
raises `SettingErrors` naming every bad field by its label; `decide` only
reads its inputs.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from peers.core.settings import SettingError, SettingErrors
from vcs_policy.wire import PolicyRequest, RemoteProtocolError, cpl_allow, cpl_reject
from vcs_policy.wire.cpl import CONTENT_TYPE as CPL_CONTENT_TYPE
from vcs_policy.wire.policy import CONTENT_TYPE as FORM_CONTENT_TYPE
from vcs_policy.wire.policy import MAX_BODY_BYTES

#: replicated entries of the conference aliases (G-S1): `conference_alias:<name>`
ALIAS_PREFIX = "conference_alias:"
NAME_MAX = 40
PATTERN_MAX = 256
TEMPLATE_MAX = 64
PRIORITY_MIN, PRIORITY_MAX = 1, 65534
DEFAULT_PRIORITY = 100
NOT_FOUND_STATUS, NOT_FOUND_REASON = 404, "Conference not found"
TEXT = "text/plain"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_SIP_SCHEME = re.compile(r"sip:", re.IGNORECASE)
_TEMPLATE_TOKEN = re.compile(r"\\(\d|\\)?|[^\\]+")


class Role(enum.Enum):
    CHAIRPERSON = "chairperson"
    GUEST = "guest"


#: API field name -> page label (every validation error names the label)
ALIAS_FIELDS: dict[str, str] = {
    "name": "Name",
    "incoming_alias": "Incoming alias (must use regex)",
    "conference_name": "Conference name",
    "priority": "Priority",
    "role": "Role",
    "may_create": "Allow conference creation",
    "template": "Conference template",
}
#: fields a new alias must have; the others take these defaults
ALIAS_REQUIRED = ("name", "incoming_alias", "conference_name")
ALIAS_DEFAULTS: dict[str, Any] = {
    "priority": DEFAULT_PRIORITY,
    "role": Role.CHAIRPERSON.value,
    "may_create": True,
    "template": "",
}


@dataclass(frozen=True, slots=True)
class ConferenceAlias:
    """Conference configuration > Conference aliases: one row (a replicated entry)."""

    name: str
    incoming_alias: str
    conference_name: str
    priority: int
    role: Role
    may_create: bool
    regex: re.Pattern[str] = field(compare=False, repr=False)
    template: str = ""  # a conference template's name; "" = none

    @property
    def key(self) -> str:
        return ALIAS_PREFIX + self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "incoming_alias": self.incoming_alias,
            "conference_name": self.conference_name,
            "priority": self.priority,
            "role": self.role.value,
            "may_create": self.may_create,
            "template": self.template,
        }

    def conference_for(self, alias: str) -> str | None:
        """The conference name for a destination alias, or None if it does not match."""
        match = self.regex.fullmatch(alias)
        if match is None:
            return None
        return expand(self.conference_name, match) or None


def _error(name: str, message: str) -> SettingError:
    return SettingError(name, ALIAS_FIELDS[name], message)


def _check_name(value: Any) -> str:
    if not isinstance(value, str):
        raise _error("name", "must be text")
    value = value.strip()
    if not value:
        raise _error("name", "must not be empty")
    if len(value) > NAME_MAX:
        raise _error("name", f"must be at most {NAME_MAX} characters (got {len(value)})")
    if not _NAME.fullmatch(value):
        raise _error(
            "name",
            "may contain only letters, digits, spaces and . _ ( ) -, starting with a "
            "letter or digit",
        )
    return str(value)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        raise _error("incoming_alias", f"is not a valid regular expression: {exc}") from exc


def _check_pattern(value: Any) -> tuple[str, re.Pattern[str]]:
    if not isinstance(value, str):
        raise _error("incoming_alias", "must be text")
    value = value.strip()
    if not value:
        raise _error("incoming_alias", "must not be empty")
    if len(value) > PATTERN_MAX:
        raise _error(
            "incoming_alias", f"must be at most {PATTERN_MAX} characters (got {len(value)})"
        )
    if not _PRINTABLE.fullmatch(value):
        raise _error("incoming_alias", "may contain only printable ASCII characters")
    return value, _compile(value)


def template_groups(template: str) -> list[int]:
    """The group numbers a conference name template uses; ValueError if it is malformed."""
    groups: list[int] = []
    for token in _TEMPLATE_TOKEN.finditer(template):
        text = token.group(0)
        if text.startswith("\\"):
            if token.group(1) is None:
                raise ValueError(
                    "a backslash must be followed by a group number (\\0 to \\9) or "
                    "another backslash"
                )
            if token.group(1).isdigit():
                groups.append(int(token.group(1)))
    return groups


def expand(template: str, match: re.Match[str]) -> str:
    """The template with `\\N` replaced by group N of `match` (empty if it took no part)."""
    out: list[str] = []
    for token in _TEMPLATE_TOKEN.finditer(template):
        text = token.group(0)
        if not text.startswith("\\"):
            out.append(text)
        elif token.group(1) == "\\":
            out.append("\\")
        elif token.group(1) is not None:
            out.append(match.group(int(token.group(1))) or "")
    return "".join(out)


def _check_template(value: Any, regex: re.Pattern[str] | None) -> str:
    if not isinstance(value, str):
        raise _error("conference_name", "must be text")
    value = value.strip()
    if not value:
        raise _error("conference_name", "must not be empty")
    if len(value) > TEMPLATE_MAX:
        raise _error(
            "conference_name", f"must be at most {TEMPLATE_MAX} characters (got {len(value)})"
        )
    if not _PRINTABLE.fullmatch(value):
        raise _error("conference_name", "may contain only printable ASCII characters")
    try:
        groups = template_groups(value)
    except ValueError as exc:
        raise _error("conference_name", str(exc)) from exc
    if regex is not None:
        missing = sorted({g for g in groups if g > regex.groups})
        if missing:
            has = f"only {regex.groups} group(s)" if regex.groups else "no groups"
            used = ", ".join("\\" + str(g) for g in missing)
            raise _error(
                "conference_name", f"uses group {used} but the incoming alias regex has {has}"
            )
    return str(value)


def _check_priority(value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,9}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error("priority", "must be a whole number")
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise _error("priority", f"must be between {PRIORITY_MIN} and {PRIORITY_MAX} (got {value})")
    return value


def _check_role(value: Any) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise _error("role", "must be one of chairperson, guest") from None


def _check_may_create(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("yes", "Yes"):
        return True
    if value in ("no", "No"):
        return False
    raise _error("may_create", "must be yes or no")


def _check_template_name(value: Any, templates: Collection[str] | None) -> str:
    if not isinstance(value, str):
        raise _error("template", "must be text (empty for none)")
    value = value.strip()
    if not value:
        return ""
    if len(value) > NAME_MAX or not _NAME.fullmatch(value):
        raise _error("template", f"{value[:NAME_MAX]!r} is not a conference template name")
    if templates is not None and value not in templates:
        raise _error("template", f"there is no conference template named {value!r}")
    return str(value)


def validate_alias(
    values: Mapping[str, Any],
    *,
    others: Iterable[str] = (),
    strict_types: bool = False,
    templates: Collection[str] | None = None,
) -> ConferenceAlias:
    """A conference alias from field values (API names), every error at once.

    `others`: names of the other aliases (a name may not repeat, case-insensitively).
    `strict_types`: JSON input, where *Priority* must be a number and *Allow
    conference creation* a boolean (the page's form sends text for both).
    `templates`: names of the conference templates *Conference template* may name;
    None: not checked (stored aliases, which replication may have left naming a
    template deleted meanwhile)."""
    errors: list[SettingError] = []
    unknown = sorted(set(values) - set(ALIAS_FIELDS))
    for name in unknown:
        errors.append(SettingError(name, name, "unknown field"))
    for name in ALIAS_REQUIRED:
        if name not in values:
            errors.append(_error(name, "is required"))
    given = {**ALIAS_DEFAULTS, **values}
    if strict_types:
        if "priority" in values and (
            isinstance(values["priority"], bool) or not isinstance(values["priority"], int)
        ):
            errors.append(_error("priority", "must be a whole number (a JSON number)"))
        if "may_create" in values and not isinstance(values["may_create"], bool):
            errors.append(_error("may_create", "must be true or false"))
    bad = {e.key for e in errors}
    clean: dict[str, Any] = {}
    regex: re.Pattern[str] | None = None
    checks = {
        "name": _check_name,
        "priority": _check_priority,
        "role": _check_role,
        "may_create": _check_may_create,
    }
    for name, check in checks.items():
        if name in given and name not in bad:
            try:
                clean[name] = check(given[name])
            except SettingError as exc:
                errors.append(exc)
    if "incoming_alias" in given:
        try:
            clean["incoming_alias"], regex = _check_pattern(given["incoming_alias"])
        except SettingError as exc:
            errors.append(exc)
    if "conference_name" in given:
        try:
            # with a bad regex the groups cannot be checked; the regex error says why
            clean["conference_name"] = _check_template(given["conference_name"], regex)
        except SettingError as exc:
            errors.append(exc)
    if "template" in given:
        try:
            clean["template"] = _check_template_name(given["template"], templates)
        except SettingError as exc:
            errors.append(exc)
    if "name" in clean:
        folded = clean["name"].casefold()
        if any(other.casefold() == folded for other in others):
            errors.append(_error("name", f"an alias named {clean['name']!r} already exists"))
    if errors:
        order = list(ALIAS_FIELDS)
        errors.sort(key=lambda e: order.index(e.key) if e.key in order else len(order))
        raise SettingErrors(errors)
    assert regex is not None
    return ConferenceAlias(
        clean["name"],
        clean["incoming_alias"],
        clean["conference_name"],
        clean["priority"],
        clean["role"],
        clean["may_create"],
        regex,
        clean["template"],
    )


def load_aliases(values: Iterable[Any]) -> tuple[ConferenceAlias, ...]:
    """Stored aliases in decision order (priority, then name). Values that are not
    valid aliases (written by other software) are skipped, never fatal."""
    aliases: list[ConferenceAlias] = []
    for value in values:
        if not isinstance(value, Mapping):
            continue
        try:
            aliases.append(validate_alias(value, strict_types=True))
        except SettingErrors:
            continue
    return tuple(sorted(aliases, key=lambda a: (a.priority, a.name)))


# ------------------------------------------------------------------ decision
class Verdict(enum.Enum):
    ALLOWED = "allowed"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    destination: str
    alias: ConferenceAlias | None = None
    conference_name: str = ""

    @property
    def role(self) -> Role | None:
        return None if self.alias is None else self.alias.role

    def cpl(self) -> str:
        if self.verdict is Verdict.ALLOWED:
            return cpl_allow()
        return cpl_reject(NOT_FOUND_STATUS, NOT_FOUND_REASON)


def destination_of(request: PolicyRequest) -> str:
    """The destination alias the aliases are matched against: without a `sip:` scheme."""
    alias = request.DESTINATION_ALIAS
    if _SIP_SCHEME.match(alias):
        alias = alias[4:]
    return alias


def decide(request: PolicyRequest, aliases: Sequence[ConferenceAlias]) -> Decision:
    """G-V2: the first alias (priority order) whose regex matches the whole destination
    allows the call; none matching rejects it with 404 "Conference not found"."""
    destination = destination_of(request)
    for alias in sorted(aliases, key=lambda a: (a.priority, a.name)):
        conference = alias.conference_for(destination)
        if conference is not None:
            return Decision(Verdict.ALLOWED, destination, alias, conference)
    return Decision(Verdict.REJECTED, destination)


# ------------------------------------------------------------------ HTTP answer
class Outcome(enum.Enum):
    ALLOWED = "allowed"
    REJECTED = "rejected"
    BAD_REQUEST = "bad_request"


@dataclass(frozen=True, slots=True)
class PolicyAnswer:
    status: int
    content_type: str
    text: str
    outcome: Outcome
    decision: Decision | None = None


def _bad(status: int, message: str) -> PolicyAnswer:
    return PolicyAnswer(status, TEXT, message, Outcome.BAD_REQUEST)


def answer_policy(
    content_type: str, body: bytes, aliases: Sequence[ConferenceAlias]
) -> PolicyAnswer:
    """The answer to one authenticated policy request: 200 with CPL, or 4xx with a
    plain-text message (415 wrong content type, 413 too large, 400 anything else)."""
    if content_type.lower() != FORM_CONTENT_TYPE:
        return _bad(
            415,
            f"policy requests must be {FORM_CONTENT_TYPE} (got {content_type[:80] or 'none'})",
        )
    if len(body) > MAX_BODY_BYTES:
        return _bad(413, f"policy request body exceeds {MAX_BODY_BYTES} bytes")
    try:
        request = PolicyRequest.decode(bytes(body))
    except RemoteProtocolError as exc:
        return _bad(413 if exc.reason == "too_large" else 400, str(exc))
    if request.POLICY_TYPE != "SEARCH":
        return _bad(
            400,
            f"POLICY_TYPE {request.POLICY_TYPE} is not answered: this Conductor answers "
            "search rule requests only (POLICY_TYPE=SEARCH)",
        )
    decision = decide(request, aliases)
    outcome = Outcome.ALLOWED if decision.verdict is Verdict.ALLOWED else Outcome.REJECTED
    return PolicyAnswer(200, CPL_CONTENT_TYPE, decision.cpl(), outcome, decision)


# ------------------------------------------------------------------ counters
@dataclass
class PolicyCounters:
    """Status > Overview > Policy service: this peer's answers since it started
    (memory only: nothing is written per request)."""

    answered: int = 0
    allowed: int = 0
    rejected: int = 0
    bad_requests: int = 0
    refused: int = 0
    status_polls: int = 0
    last_request: str = ""
    last_status_poll: str = ""

    def policy_answered(self, outcome: Outcome, wall: str) -> None:
        if outcome is Outcome.BAD_REQUEST:
            self.bad_requests += 1
            return
        self.answered += 1
        if outcome is Outcome.ALLOWED:
            self.allowed += 1
        else:
            self.rejected += 1
        self.last_request = wall

    def status_answered(self, wall: str) -> None:
        self.status_polls += 1
        self.last_status_poll = wall

    def as_json(self) -> dict[str, Any]:
        return {
            "answered": self.answered,
            "allowed": self.allowed,
            "rejected": self.rejected,
            "bad_requests": self.bad_requests,
            "refused": self.refused,
            "status_polls": self.status_polls,
            "last_request": self.last_request,
            "last_status_poll": self.last_status_poll,
        }


# ------------------------------------------------------------------ failed logins
OTHER_SOURCES = "(other sources)"


@dataclass
class _Window:
    end: float
    held: int = 0
    user: str = ""


@dataclass(frozen=True, slots=True)
class FailureReport:
    """One event-log line: `failures` failed logins from `source` (`user` the last tried)."""

    source: str
    user: str
    failures: int


@dataclass
class FailureThrottle:
    """Failed logins per source: the first is reported at once, the rest of its
    `window_s` are held and reported as one count when the window ends (`on_timer`);
    a steady flood is one report per source per window. At most `max_sources`
    sources are tracked; more are counted together under `OTHER_SOURCES`."""

    window_s: float = 60.0
    max_sources: int = 256
    _windows: dict[str, _Window] = field(default_factory=dict)

    def failed(self, source: str, user: str, now: float) -> FailureReport | None:
        """A failed login; the report to log now, or None if it is held."""
        window = self._windows.get(source)
        if window is None and len(self._windows) >= self.max_sources:
            source = OTHER_SOURCES
            window = self._windows.get(source)
        if window is not None and now < window.end:
            window.held += 1
            window.user = user
            return None
        held = window.held if window is not None else 0
        self._windows[source] = _Window(now + self.window_s)
        return FailureReport(source, user, held + 1)

    def next_deadline(self) -> float | None:
        return min((w.end for w in self._windows.values()), default=None)

    def on_timer(self, now: float) -> list[FailureReport]:
        """Held failures of windows that have ended; sources gone quiet are forgotten."""
        reports: list[FailureReport] = []
        for source, window in list(self._windows.items()):
            if now < window.end:
                continue
            if window.held:
                reports.append(FailureReport(source, window.user, window.held))
                self._windows[source] = _Window(now + self.window_s)
            else:
                del self._windows[source]
        return reports
