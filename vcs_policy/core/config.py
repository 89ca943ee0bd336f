"""The VCS's configuration objects and their validation: policy services and search rules.

One validator per object serves the pages, the JSON API and the store, so a value
is checked the same way wherever it comes from; every error names the field by its
page label (Configuration > Dial plan > Policy services / Search rules).

tplab's choices where the sources are silent (cisco-behaviour.md 1.2, UNCONFIRMED):
- URL = `<protocol>://<server>[:port]/<path>` with any leading `/` of the path
  dropped; a server without a port uses tplab's HTTPS port 8443 (HTTP: 8080),
  because tplab's nodes serve their pages there rather than on the privileged 443;
- Username / Password travel as HTTP Basic;
- the poll interval (product: 60 s) and the per-attempt timeout (product: 30 s,
  not configurable) are configurable here so scenarios can run quickly; the
  defaults are the product's.

Invariants: `validate_service` / `validate_rule` return a canonical object or raise
`ConfigErrors` listing every bad field; they never touch I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from vcs_policy.wire.cpl import DEFAULT_SEARCH_CPL, evaluate_default_cpl
from vcs_policy.wire.errors import RemoteProtocolError
from vcs_policy.wire.policy import PolicyRequest

DEFAULT_HTTPS_PORT = 8443
DEFAULT_HTTP_PORT = 8080
MAX_SERVICES = 5  # X7.1 allowed up to 5 policy services
MAX_RULES = 200
SERVER_SLOTS = 3
PASSWORD_MAX = 30
POLL_INTERVAL_S = 60.0
REQUEST_TIMEOUT_S = 30.0
LOCAL_ZONE = "LocalZone"
ZONES = (LOCAL_ZONE,)
PATTERN_TYPES = ("Exact", "Prefix", "Suffix", "Regex")
RULE_PROTOCOLS = ("Any", "SIP", "H323")
ON_MATCH = ("Continue", "Stop")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,49}$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_PATH = re.compile(r"^/?[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,200}$")


class ConfigError(ValueError):
    def __init__(self, name: str, label: str, message: str) -> None:
        super().__init__(f"{label}: {message}")
        self.name = name
        self.label = label
        self.message = message


class ConfigErrors(ValueError):
    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors

    def fields(self) -> dict[str, str]:
        return {e.name: str(e) for e in self.errors}


@dataclass(frozen=True, slots=True)
class PolicyService:
    name: str
    description: str = ""
    protocol: str = "HTTPS"
    verify_certificate: bool = True
    crl_check: bool = False
    username: str = ""
    password: str = ""
    servers: tuple[str, str, str] = ("", "", "")
    path: str = "pdp/policy"
    status_path: str = "pdp/status"
    default_cpl: str = DEFAULT_SEARCH_CPL
    poll_interval_s: float = POLL_INTERVAL_S
    request_timeout_s: float = REQUEST_TIMEOUT_S

    def url(self, server: str, path: str) -> str:
        """`<protocol>://<server>[:port]/<path>` (the default port is tplab's, see above)."""
        host, port = split_server(server)
        if port is None:
            port = DEFAULT_HTTPS_PORT if self.protocol == "HTTPS" else DEFAULT_HTTP_PORT
        shown = f"[{host}]" if ":" in host else host
        return f"{self.protocol.lower()}://{shown}:{port}/{path.lstrip('/')}"

    def to_dict(self, *, secrets: bool = True) -> dict[str, Any]:
        data = asdict(self)
        data["servers"] = list(self.servers)
        if not secrets:
            data["password_set"] = bool(data.pop("password"))
        return data


@dataclass(frozen=True, slots=True)
class SearchRule:
    name: str
    priority: int = 100
    protocol: str = "Any"
    pattern_type: str = "Regex"
    pattern: str = ".*"
    on_match: str = "Stop"
    target: str = LOCAL_ZONE
    enabled: bool = True
    description: str = ""
    _compiled: Any = field(default=None, compare=False, repr=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_compiled")
        return data


SERVICE_LABELS = {
    "name": "Name",
    "description": "Description",
    "protocol": "Protocol",
    "verify_certificate": "Certificate verification mode",
    "crl_check": "HTTPS certificate revocation list (CRL) checking",
    "username": "Username",
    "password": "Password",
    "server1": "Server 1 address",
    "server2": "Server 2 address",
    "server3": "Server 3 address",
    "path": "Path",
    "status_path": "Status path",
    "default_cpl": "Default CPL",
    "poll_interval_s": "Status poll interval (seconds)",
    "request_timeout_s": "Request timeout (seconds)",
}
RULE_LABELS = {
    "name": "Rule name",
    "description": "Description",
    "priority": "Priority",
    "protocol": "Protocol",
    "pattern_type": "Pattern type",
    "pattern": "Pattern string",
    "on_match": "On successful match",
    "target": "Target",
    "enabled": "State",
}


def split_server(server: str) -> tuple[str, int | None]:
    """`host[:port]` (IPv6 in brackets) -> (host, port or None). Raises ValueError."""
    text = server.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError("an IPv6 address must be closed with ]")
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and port_text is None:
            raise ValueError("only :port may follow ]")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None
    if port_text is None:
        return host, None
    if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ValueError(f"port must be 1-65535 (got {port_text[:10]!r})")
    return host, int(port_text)


def _check_server(value: str) -> str:
    host, _port = split_server(value)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
            raise ValueError("must be an IP address or FQDN, optionally with :port") from None
    return value.strip()


def _text(
    data: Mapping[str, Any],
    name: str,
    label: str,
    errors: list[ConfigError],
    *,
    max_len: int,
    required: bool = False,
) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.append(ConfigError(name, label, "must be text"))
        return ""
    value = text = str(value).strip()
    if required and not value:
        errors.append(ConfigError(name, label, "must not be empty"))
    elif len(value) > max_len:
        errors.append(ConfigError(name, label, f"must be at most {max_len} characters"))
    elif not _PRINTABLE.match(value):
        errors.append(ConfigError(name, label, "may contain only printable ASCII characters"))
    return text


def _choice(
    data: Mapping[str, Any],
    name: str,
    label: str,
    choices: tuple[str, ...],
    default: str,
    errors: list[ConfigError],
) -> str:
    value = data.get(name, default)
    if value not in choices:
        errors.append(ConfigError(name, label, f"must be one of {', '.join(choices)}"))
        return default
    return str(value)


def _bool(
    data: Mapping[str, Any], name: str, label: str, default: bool, errors: list[ConfigError]
) -> bool:
    value = data.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("on", "off", "true", "false", "yes", "no"):
        return value.lower() in ("on", "true", "yes")
    errors.append(ConfigError(name, label, "must be On or Off"))
    return default


def _number(
    data: Mapping[str, Any],
    name: str,
    label: str,
    default: float,
    low: float,
    high: float,
    errors: list[ConfigError],
    *,
    whole: bool = False,
) -> float:
    value = data.get(name, default)
    if isinstance(value, str):
        try:
            value = float(value.strip()) if value.strip() else default
        except ValueError:
            errors.append(ConfigError(name, label, "must be a number"))
            return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        errors.append(ConfigError(name, label, "must be a number"))
        return default
    if whole and value != int(value):
        errors.append(ConfigError(name, label, "must be a whole number"))
        return default
    if not low <= value <= high:
        errors.append(ConfigError(name, label, f"must be between {low:g} and {high:g}"))
        return default
    return float(value)


def _username(data: Mapping[str, Any], errors: list[ConfigError]) -> str:
    value = _text(data, "username", SERVICE_LABELS["username"], errors, max_len=64)
    if ":" in value:  # HTTP Basic joins user and password with ":" (RFC 7617)
        errors.append(ConfigError("username", SERVICE_LABELS["username"], "may not contain ':'"))
    return value


def validate_service(data: Mapping[str, Any]) -> PolicyService:
    """A policy service from page or API fields (`servers` as a list, or server1..3)."""
    errors: list[ConfigError] = []
    L = SERVICE_LABELS
    name = _text(data, "name", L["name"], errors, max_len=50, required=True)
    if name and not _NAME.match(name):
        errors.append(ConfigError("name", L["name"], "may use letters, digits, space . _ -"))
    raw_servers: Any = data.get("servers")
    if raw_servers is None:
        raw_servers = [data.get(f"server{i}", "") for i in range(1, SERVER_SLOTS + 1)]
    servers: list[str] = []
    if not isinstance(raw_servers, list) or len(raw_servers) > SERVER_SLOTS:
        errors.append(ConfigError("servers", "Server addresses", "must be a list of up to 3"))
        raw_servers = []
    for i in range(SERVER_SLOTS):
        value = raw_servers[i] if i < len(raw_servers) else ""
        label = L[f"server{i + 1}"]
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors.append(ConfigError(f"server{i + 1}", label, "must be text"))
            value = ""
        value = value.strip()
        if value:
            try:
                value = _check_server(value)
            except ValueError as exc:
                errors.append(ConfigError(f"server{i + 1}", label, str(exc)))
        servers.append(value)
    used = [s for s in servers if s]
    if len(set(used)) != len(used):
        errors.append(ConfigError("servers", "Server addresses", "an address is given twice"))
    paths = {}
    for key, default in (("path", "pdp/policy"), ("status_path", "pdp/status")):
        given = data if key in data else {key: default}
        value = _text(given, key, L[key], errors, max_len=200, required=True)
        if value and not _PATH.match(value):
            errors.append(ConfigError(key, L[key], "must be a URL path"))
        paths[key] = value
    default_cpl = (
        _text(data, "default_cpl", L["default_cpl"], errors, max_len=4096) or DEFAULT_SEARCH_CPL
    )
    probe = PolicyRequest(
        POLICY_TYPE="SEARCH", METHOD="INVITE", PROTOCOL="SIP", DESTINATION_ALIAS="probe@example.com"
    )
    try:
        evaluate_default_cpl(default_cpl, probe)
    except RemoteProtocolError as exc:
        errors.append(ConfigError("default_cpl", L["default_cpl"], f"is not valid CPL: {exc}"))
    service = PolicyService(
        name=name,
        description=_text(data, "description", L["description"], errors, max_len=64),
        protocol=_choice(data, "protocol", L["protocol"], ("HTTP", "HTTPS"), "HTTPS", errors),
        verify_certificate=_bool(data, "verify_certificate", L["verify_certificate"], True, errors),
        crl_check=_bool(data, "crl_check", L["crl_check"], False, errors),
        username=_username(data, errors),
        password=_text(data, "password", L["password"], errors, max_len=PASSWORD_MAX),
        servers=(servers[0], servers[1], servers[2]),
        path=paths["path"],
        status_path=paths["status_path"],
        default_cpl=default_cpl,
        poll_interval_s=_number(
            data, "poll_interval_s", L["poll_interval_s"], POLL_INTERVAL_S, 0.05, 3600, errors
        ),
        request_timeout_s=_number(
            data, "request_timeout_s", L["request_timeout_s"], REQUEST_TIMEOUT_S, 0.05, 300, errors
        ),
    )
    if errors:
        raise ConfigErrors(errors)
    return service


def compile_rule(rule: SearchRule) -> re.Pattern[str]:
    if rule._compiled is None:
        if rule.pattern_type == "Regex":
            pattern = rule.pattern
        elif rule.pattern_type == "Exact":
            pattern = re.escape(rule.pattern)
        elif rule.pattern_type == "Prefix":
            pattern = re.escape(rule.pattern) + ".*"
        else:
            pattern = ".*" + re.escape(rule.pattern)
        object.__setattr__(rule, "_compiled", re.compile(pattern, re.I | re.S))
    compiled: re.Pattern[str] = rule._compiled
    return compiled


def validate_rule(data: Mapping[str, Any], targets: tuple[str, ...]) -> SearchRule:
    """A search rule; `targets` are the names it may point at (policy services and zones)."""
    errors: list[ConfigError] = []
    L = RULE_LABELS
    name = _text(data, "name", L["name"], errors, max_len=50, required=True)
    if name and not _NAME.match(name):
        errors.append(ConfigError("name", L["name"], "may use letters, digits, space . _ -"))
    pattern_type = _choice(data, "pattern_type", L["pattern_type"], PATTERN_TYPES, "Regex", errors)
    pattern = _text(data, "pattern", L["pattern"], errors, max_len=256, required=True)
    target = data.get("target", LOCAL_ZONE)
    if target not in targets:
        errors.append(
            ConfigError(
                "target",
                L["target"],
                f"must be one of {', '.join(targets)} (got {str(target)[:50]!r})",
            )
        )
        target = LOCAL_ZONE
    rule = SearchRule(
        name=name,
        description=_text(data, "description", L["description"], errors, max_len=64),
        priority=int(_number(data, "priority", L["priority"], 100, 1, 65534, errors, whole=True)),
        protocol=_choice(data, "protocol", L["protocol"], RULE_PROTOCOLS, "Any", errors),
        pattern_type=pattern_type,
        pattern=pattern,
        on_match=_choice(data, "on_match", L["on_match"], ON_MATCH, "Stop", errors),
        target=str(target),
        enabled=_bool(data, "enabled", L["enabled"], True, errors),
    )
    if pattern and pattern_type == "Regex":
        try:
            compile_rule(rule)
        except (re.error, OverflowError, RecursionError) as exc:
            errors.append(ConfigError("pattern", L["pattern"], f"is not a valid regex: {exc}"))
    if errors:
        raise ConfigErrors(errors)
    return rule


def rule_from_dict(data: Mapping[str, Any]) -> SearchRule:
    """A stored rule (already valid) back into its object."""
    return SearchRule(**{k: v for k, v in data.items() if k in RULE_LABELS})


def service_from_dict(data: Mapping[str, Any]) -> PolicyService:
    values = {k: v for k, v in data.items() if k in PolicyService.__dataclass_fields__}
    servers = list(values.get("servers", ("", "", "")))
    values["servers"] = ([*servers, "", "", ""])[:3]
    values["servers"] = tuple(values["servers"])
    return PolicyService(**values)
