"""Every setting of a Conductor peer: its page, label, scope, type and validation.

One registry drives the store, the admin pages and the JSON API, so a value is
validated the same way wherever it comes from and every error names the field
by its page label.

Scope (G-S1 / G-S2): `PEER` settings are specific to one peer and never
replicated — the deployment guide's list: peer list and pre-shared key,
Ethernet, IPv4 address / mask / gateway / additional addresses, host name,
domain, DNS servers, NTP servers, time zone, SNMP, remote syslog, SSH and LCD
panel access, root password, Location ad hoc / rendezvous addresses.
Certificates, event and configuration logs are peer-specific too and live in
their own tables. Everything else is `SHARED`, the admin account included.

Option keys are peer-specific here although the guide's list does not name
them: a release key is bound to one peer's serial number, and G-R2 / G-R10
need each peer's own licence to be visible (a choice, documented in the README).

`restart` settings (clustering and IP, G-P7) are saved as pending and take
effect when the peer restarts.

Invariants: validation is pure; `validate` returns the canonical value or
raises `SettingError` naming the field label; unknown keys are refused.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class Scope(enum.Enum):
    SHARED = "shared"
    PEER = "peer"


class SettingError(ValueError):
    """A value is invalid; `field` is the setting key, `label` its page label."""

    def __init__(self, key: str, label: str, message: str) -> None:
        super().__init__(f"{label}: {message}")
        self.key = key
        self.label = label
        self.message = message


Validator = Callable[[Any], Any]

_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_MULTILINE = re.compile(r"^[\x20-\x7e\t\n]*$")


class Invalid(ValueError):
    pass


def _text(max_len: int, *, allow_empty: bool = True, printable: bool = True) -> Validator:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be text")
        value = value.strip()
        if not value and not allow_empty:
            raise Invalid("must not be empty")
        if len(value) > max_len:
            raise Invalid(f"must be at most {max_len} characters (got {len(value)})")
        if printable and not _PRINTABLE.match(value):
            raise Invalid("may contain only printable ASCII characters")
        return str(value)

    return check


BANNER_MAX = 8192


def _multiline(max_len: int) -> Validator:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be text")
        value = value.replace("\r\n", "\n").strip()
        if len(value) > max_len:
            raise Invalid(f"must be at most {max_len} characters (got {len(value)})")
        if not _MULTILINE.match(value):
            raise Invalid("may contain only printable ASCII characters, tabs and line breaks")
        return str(value)

    return check


def _ipv4(*, optional: bool) -> Validator:
    def check(value: Any) -> str:
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise Invalid("must be an IPv4 address")
        value = value.strip()
        if not value:
            if optional:
                return ""
            raise Invalid("must not be empty")
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError as exc:
            raise Invalid(f"{value!r} is not a valid IPv4 address") from exc
        if (
            address.is_unspecified
            or address.is_multicast
            or address == ipaddress.IPv4Address("255.255.255.255")
        ):
            raise Invalid(f"{value} cannot be a host address")
        return str(address)

    return check


def _mask(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("must be a subnet mask such as 255.255.255.0")
    try:
        network = ipaddress.IPv4Network(f"0.0.0.0/{value.strip()}")
    except ValueError as exc:
        raise Invalid(f"{value!r} is not a valid subnet mask") from exc
    return str(network.netmask)


def _hostname_label(value: Any) -> str:
    value = _text(63, allow_empty=False)(value)
    if not _HOST_LABEL.match(value):
        raise Invalid("must be letters, digits and hyphens, not starting or ending with a hyphen")
    return str(value)


def _domain(value: Any) -> str:
    value = _text(192)(value)
    if value and not all(_HOST_LABEL.match(part) for part in value.split(".")):
        raise Invalid(f"{value!r} is not a valid domain name")
    return str(value).lower()


def _server(value: Any) -> str:
    """An IPv4 address or a host name (NTP, DNS, syslog servers)."""
    value = _text(192, allow_empty=False)(value)
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value) or not all(
        _HOST_LABEL.match(part) for part in value.split(".")
    ):
        raise Invalid(f"{value!r} is neither an IPv4 address nor a host name")
    return str(value).lower()


def _list(item: Validator, max_items: int, *, unique: bool = True) -> Validator:
    def check(value: Any) -> list[Any]:
        if isinstance(value, str):
            value = [part for part in re.split(r"[\s,]+", value) if part]
        if not isinstance(value, list | tuple):
            raise Invalid("must be a list")
        items = []
        for index, raw in enumerate(value):
            if raw in (None, ""):
                continue
            try:
                items.append(item(raw))
            except Invalid as exc:
                raise Invalid(f"entry {index + 1}: {exc}") from exc
        if len(items) > max_items:
            raise Invalid(f"at most {max_items} entries (got {len(items)})")
        if unique and len(set(items)) != len(items):
            raise Invalid("entries must not repeat")
        return items

    return check


def _int(lo: int, hi: int) -> Validator:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise Invalid("must be a whole number")
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", value):
            value = int(value)
        if not isinstance(value, int):
            raise Invalid("must be a whole number")
        if not lo <= value <= hi:
            raise Invalid(f"must be between {lo} and {hi} (got {value})")
        return value

    return check


def _choice(*choices: str) -> Validator:
    def check(value: Any) -> str:
        if value not in choices:
            raise Invalid(f"must be one of {', '.join(choices)}")
        return str(value)

    return check


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("on", "true", "On", "True", "1", "yes"):
        return True
    if value in ("off", "false", "Off", "False", "0", "no", ""):
        return False
    raise Invalid("must be On or Off")


#: first path segments of the admin pages and API: a policy service path may not use them
RESERVED_SEGMENTS = (
    "api",
    "static",
    "login",
    "logout",
    "status",
    "system",
    "maintenance",
    "users",
    "conference",
)
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")


def _url_path(value: Any) -> str:
    """A URL path on this peer's HTTPS server, as the VCS's Path field takes it: segments
    of letters, digits and . _ ~ -, a leading slash optional (stored without it)."""
    value = _text(128, allow_empty=False)(value)
    path = str(value).removeprefix("/")
    segments = path.split("/")
    if not path or not all(_PATH_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments):
        raise Invalid(
            f"{value!r} is not a URL path such as pdp/policy (segments of letters, digits "
            "and . _ ~ - separated by /)"
        )
    if segments[0].lower() in RESERVED_SEGMENTS:
        raise Invalid(f"cannot begin with {segments[0]!r}: the admin pages and API use it")
    return path


def _timezone(value: Any) -> str:
    value = _text(64, allow_empty=False)(value)
    if not re.fullmatch(r"(UTC|GMT|[A-Z][A-Za-z_]+(/[A-Z][A-Za-z0-9_+-]+){1,2})", value):
        raise Invalid(f"{value!r} is not a time zone name such as UTC or Europe/London")
    return str(value)


@dataclass(frozen=True)
class Setting:
    key: str
    label: str
    page: str
    scope: Scope
    validate_value: Validator
    default: Any
    restart: bool = False
    secret: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()
    kind: str = "text"  # text | multiline | password | list | int | choice | bool
    #: G-P5: deleting a peer address takes effect at Save (the guide's removal procedure
    #: has no restart on the remaining peers); any other change waits for Restart (G-P7)
    clear_applies_at_once: bool = False

    def validate(self, value: Any) -> Any:
        try:
            return self.validate_value(value)
        except Invalid as exc:
            raise SettingError(self.key, self.label, str(exc)) from exc


ETHERNET_SPEEDS = ("Auto", "10 half", "10 full", "100 half", "100 full", "1000 full")
CLUSTER_KEY_MAX = 128


def _settings() -> list[Setting]:
    peer, shared = Scope.PEER, Scope.SHARED
    ip_opt = _ipv4(optional=True)
    return [
        # System > Clustering (G-P7: pending until restart; G-S2: peer-specific)
        Setting(
            "clustering.key",
            "Cluster pre-shared key",
            "clustering",
            peer,
            _text(CLUSTER_KEY_MAX),
            "",
            restart=True,
            secret=True,
            kind="password",
        ),
        Setting(
            "clustering.peer1",
            "Peer 1 IP address",
            "clustering",
            peer,
            ip_opt,
            "",
            True,
            clear_applies_at_once=True,
        ),
        Setting(
            "clustering.peer2",
            "Peer 2 IP address",
            "clustering",
            peer,
            ip_opt,
            "",
            True,
            clear_applies_at_once=True,
        ),
        Setting(
            "clustering.peer3",
            "Peer 3 IP address",
            "clustering",
            peer,
            ip_opt,
            "",
            True,
            clear_applies_at_once=True,
        ),
        # System > DNS (G-R11)
        Setting("dns.host_name", "System host name", "dns", peer, _hostname_label, "conductor"),
        Setting("dns.domain", "Domain name", "dns", peer, _domain, ""),
        Setting(
            "dns.servers",
            "DNS servers",
            "dns",
            peer,
            _list(_server, 5),
            [],
            kind="list",
            help="Up to 5 addresses, one per line",
        ),
        # System > Time (G-R3)
        Setting(
            "time.ntp_servers",
            "NTP servers",
            "time",
            peer,
            _list(_server, 5),
            [],
            kind="list",
            help="Up to 5 servers, one per line",
        ),
        Setting("time.zone", "Time zone", "time", peer, _timezone, "UTC"),
        # System > IP (G-P7 pending; G-R13 LAN 1 address fixed while clustered)
        Setting(
            "ip.lan1_address",
            "LAN 1 IPv4 address",
            "ip",
            peer,
            _ipv4(optional=False),
            "127.0.0.1",
            True,
        ),
        Setting("ip.lan1_mask", "IPv4 subnet mask", "ip", peer, _mask, "255.0.0.0", True),
        Setting("ip.gateway", "IPv4 gateway", "ip", peer, ip_opt, "", True),
        Setting(
            "ip.additional_addresses",
            "Additional IPv4 addresses",
            "ip",
            peer,
            _list(_ipv4(optional=False), 10),
            [],
            True,
            kind="list",
        ),
        # System > Ethernet (G-R14: the cluster interface MTU)
        Setting(
            "ethernet.speed",
            "Speed",
            "ethernet",
            peer,
            _choice(*ETHERNET_SPEEDS),
            "Auto",
            kind="choice",
            choices=ETHERNET_SPEEDS,
        ),
        Setting("ethernet.mtu", "MTU", "ethernet", peer, _int(576, 1500), 1500, kind="int"),
        # System > SNMP
        Setting("snmp.enabled", "SNMP mode", "snmp", peer, _bool, False, kind="bool"),
        Setting("snmp.community", "Community name", "snmp", peer, _text(32), "public"),
        Setting("snmp.contact", "System contact", "snmp", peer, _text(70), ""),
        Setting("snmp.location", "Location", "snmp", peer, _text(70), ""),
        # System > Logging
        Setting(
            "logging.syslog_servers",
            "Remote syslog servers",
            "logging",
            peer,
            _list(_server, 4),
            [],
            kind="list",
            help="Up to 4 servers, one per line",
        ),
        # System > Administration access (G-S2: SSH and LCD are peer-specific)
        Setting("access.ssh", "SSH service", "access", peer, _bool, True, kind="bool"),
        Setting("access.lcd_panel", "LCD panel", "access", peer, _bool, True, kind="bool"),
        # System > Locations (G-S2: must differ per peer)
        Setting("locations.adhoc_ip", "Ad hoc IP address", "locations", peer, ip_opt, ""),
        Setting("locations.rendezvous_ip", "Rendezvous IP address", "locations", peer, ip_opt, ""),
        # Maintenance > Option keys (peer-specific: bound to the peer's serial)
        Setting("options.release_key", "Release key", "options", peer, _text(64), ""),
        Setting(
            "options.capacity",
            "Capacity",
            "options",
            peer,
            _choice("full", "select"),
            "full",
            kind="choice",
            choices=("full", "select"),
        ),
        # Shared configuration (G-S1)
        Setting(
            "administration.system_name", "System name", "administration", shared, _text(64), ""
        ),
        Setting(
            "administration.login_banner",
            "Login page banner",
            "administration",
            shared,
            _multiline(BANNER_MAX),
            "",
            kind="multiline",
            help=f"Shown on the login page; up to {BANNER_MAX} characters",
        ),
        Setting(
            "administration.session_timeout_min",
            "Session time out (minutes)",
            "administration",
            shared,
            _int(1, 1440),
            30,
            kind="int",
        ),
        # Conference configuration > Policy service: where the VCS's policy service (its
        # Path and Status path fields) reaches this peer; applies at once (G-P3, G-V2)
        Setting(
            "policy.policy_path",
            "Policy path",
            "policy",
            shared,
            _url_path,
            "pdp/policy",
            help="The VCS policy service's Path; the VCS POSTs its policy requests here",
        ),
        Setting(
            "policy.status_path",
            "Status path",
            "policy",
            shared,
            _url_path,
            "pdp/status",
            help="The VCS policy service's Status path, polled every minute",
        ),
        # how conferences placed on bridges are looked after (G-S3); apply at once
        Setting(
            "policy.empty_conference_end_s",
            "End a conference left empty after (seconds)",
            "policy",
            shared,
            _int(5, 86400),
            60,
            kind="int",
            help="A conference with no participant for this long is destroyed on its bridge",
        ),
        Setting(
            "policy.bridge_poll_s",
            "Conference bridge status poll interval (seconds)",
            "policy",
            shared,
            _int(1, 3600),
            5,
            kind="int",
            help="How often each peer asks every conference bridge for its state",
        ),
    ]


SETTINGS: Mapping[str, Setting] = {s.key: s for s in _settings()}


def page_settings(page: str) -> list[Setting]:
    return [s for s in SETTINGS.values() if s.page == page]


def validate_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a set of changes to settings; every error at once, keyed by setting."""
    clean: dict[str, Any] = {}
    errors: list[SettingError] = []
    for key, value in changes.items():
        setting = SETTINGS.get(key)
        if setting is None:
            errors.append(SettingError(key, key, "unknown setting"))
            continue
        try:
            clean[key] = setting.validate(value)
        except SettingError as exc:
            errors.append(exc)
    if errors:
        raise SettingErrors(errors)
    return clean


@dataclass
class SettingErrors(ValueError):
    errors: Sequence[SettingError] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)

    def by_key(self) -> dict[str, str]:
        return {e.key: e.message for e in self.errors}
