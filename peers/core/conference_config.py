"""Conference configuration: conference bridges, conference bridge pools, service
preferences and conference templates (sans-I/O).

What it models (Conductor XC3.0 terms, *Conference configuration* menu; the field
lists are UNCONFIRMED in the sources, cisco-behaviour.md 2, so tplab chose them):

- Conference bridges (G-B1, G-R8): *Name*, *Type* (TelePresence Server /
  TelePresence MCU), *Address* (an IPv4 address or a host name), *Protocol*
  (HTTP / HTTPS, per bridge), *Port*, *Username*, *Password*, *State* (Enabled /
  Disabled). A port left out follows the protocol. The product's defaults are 443
  (HTTPS) and 80 (HTTP) (`PRODUCT_PORTS`); tplab's bridges serve XML-RPC on 8443
  and 8080, so those are tplab's defaults (`DEFAULT_PORTS`).
- Conference bridge pools: *Name*, *Conference bridge type*, *Bridges* (configured
  bridges of that type only; a pool may be empty).
- Service preferences: *Name*, *Pools* (1 to 5 pool names, tried in order; pools
  of both types may be mixed).
- Conference templates: *Name*, *Type* (meeting / lecture), *Service preference*,
  *Participant limit* (0 = no limit, up to 1000), *Cascades reserved* (0 to 100:
  stored and shown, not used by placement yet).
- Conference aliases (`peers.core.policy`) may name a conference template.

Each object is one replicated entry (G-S1): `conference_bridge:<name>`,
`conference_pool:<name>`, `service_preference:<name>`, `conference_template:<name>`.
Names are unique per kind, ignoring case; references are exact names.

References point down the chain alias -> template -> preference -> pool -> bridge.
They are checked when the referring object is saved; an object still referenced
cannot be deleted or renamed, and a bridge cannot change type while a pool holds
it. Deleting every bridge (G-P5, G-B2: a peer placed in standalone mode deletes
its conference bridges) takes them out of every pool in the same change
(`emptied_pools`); pools left empty stay. Entries arriving by replication are
not checked (two peers may cross a delete and a reference): loading keeps
dangling names, and placement skips names it cannot resolve.

Invariants: `validate` answers a valid object or raises `SettingErrors` naming
every bad field by its label; `load_conference_config` takes any stored values
and never raises (values that are not valid objects are skipped); the accessors
(`config_of`, `bridges_of`, ...) only read through their `ConfigSource`.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from peers.core.placement import Bridge, BridgeKind, Pool, ServicePreference, Template
from peers.core.policy import ALIAS_PREFIX, load_aliases
from peers.core.replication import Entry
from peers.core.settings import SettingError, SettingErrors

NAME_MAX = 40
ADDRESS_MAX = 253
USERNAME_MAX = 64
PASSWORD_MAX = 128
POOL_BRIDGES_MAX = 50
PREFERENCE_POOLS_MAX = 5
PARTICIPANT_LIMIT_MAX = 1000
CASCADES_RESERVED_MAX = 100
#: tplab's bridges serve XML-RPC on these ports (the default port follows the protocol)
DEFAULT_PORTS = {"HTTPS": 8443, "HTTP": 8080}
#: the product's defaults, for the record (a real bridge listens on these)
PRODUCT_PORTS = {"HTTPS": 443, "HTTP": 80}
PROTOCOLS = ("HTTPS", "HTTP")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_DIGITS = re.compile(r"\s*\d{1,9}\s*")


class Section(enum.Enum):
    """The kinds of object; the value is the replicated entries' key prefix (without ':')."""

    BRIDGE = "conference_bridge"
    POOL = "conference_pool"
    PREFERENCE = "service_preference"
    TEMPLATE = "conference_template"

    @property
    def prefix(self) -> str:
        return self.value + ":"

    @property
    def noun(self) -> str:
        return NOUNS[self]


NOUNS = {
    Section.BRIDGE: "conference bridge",
    Section.POOL: "conference bridge pool",
    Section.PREFERENCE: "service preference",
    Section.TEMPLATE: "conference template",
}

#: API value of *Type* -> bridge kind (page text: the kind's value)
BRIDGE_TYPES: dict[str, BridgeKind] = {
    "telepresence_server": BridgeKind.TELEPRESENCE_SERVER,
    "telepresence_mcu": BridgeKind.MCU,
}
TYPE_OF_KIND = {kind: name for name, kind in BRIDGE_TYPES.items()}
#: API value of a template's *Type* -> page text
CONFERENCE_TYPES = {"meeting": "Meeting", "lecture": "Lecture"}

#: API field name -> page label, per kind (every validation error names the label)
FIELDS: dict[Section, dict[str, str]] = {
    Section.BRIDGE: {
        "name": "Name",
        "type": "Type",
        "address": "Address",
        "protocol": "Protocol",
        "port": "Port",
        "username": "Username",
        "password": "Password",
        "enabled": "State",
    },
    Section.POOL: {"name": "Name", "type": "Conference bridge type", "bridges": "Bridges"},
    Section.PREFERENCE: {"name": "Name", "pools": "Pools"},
    Section.TEMPLATE: {
        "name": "Name",
        "type": "Type",
        "service_preference": "Service preference",
        "participant_limit": "Participant limit",
        "cascades_reserved": "Cascades reserved",
    },
}
#: fields a new object must have; the others take `DEFAULTS` (a bridge's port: its protocol's)
REQUIRED: dict[Section, tuple[str, ...]] = {
    Section.BRIDGE: ("name", "type", "address", "username"),
    Section.POOL: ("name", "type"),
    Section.PREFERENCE: ("name", "pools"),
    Section.TEMPLATE: ("name", "service_preference"),
}
DEFAULTS: dict[Section, dict[str, Any]] = {
    Section.BRIDGE: {"protocol": "HTTPS", "password": "", "enabled": True},
    Section.POOL: {"bridges": []},
    Section.PREFERENCE: {},
    Section.TEMPLATE: {"type": "meeting", "participant_limit": 0, "cascades_reserved": 0},
}
#: stored fields never shown: the API answers `<field>_set` instead
SECRET_FIELDS: dict[Section, tuple[str, ...]] = {Section.BRIDGE: ("password",)}


@dataclass(frozen=True, slots=True)
class ConferenceTemplate:
    """Conference configuration > Conference templates: one row (a replicated entry)."""

    name: str
    conference_type: str  # meeting / lecture
    service_preference: str
    participant_limit: int = 0  # 0 = no limit
    cascades_reserved: int = 0  # stored; placement does not use it yet

    def template(self) -> Template:
        """What placement needs of it."""
        return Template(
            self.name, self.service_preference, self.conference_type, self.participant_limit
        )


Row = Bridge | Pool | ServicePreference | ConferenceTemplate


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ConferenceConfig:
    """Every valid stored object by name (read-only mappings), and which template
    each conference alias names (aliases naming none are left out)."""

    bridges: Mapping[str, Bridge] = field(default_factory=_empty)
    pools: Mapping[str, Pool] = field(default_factory=_empty)
    preferences: Mapping[str, ServicePreference] = field(default_factory=_empty)
    conference_templates: Mapping[str, ConferenceTemplate] = field(default_factory=_empty)
    alias_templates: Mapping[str, str] = field(default_factory=_empty)

    def rows(self, section: Section) -> Mapping[str, Row]:
        if section is Section.BRIDGE:
            return self.bridges
        if section is Section.POOL:
            return self.pools
        if section is Section.PREFERENCE:
            return self.preferences
        return self.conference_templates

    def templates(self) -> dict[str, Template]:
        return {name: t.template() for name, t in self.conference_templates.items()}


# ------------------------------------------------------------------ JSON
def stored_json(row: Row) -> dict[str, Any]:
    """The replicated entry's value (a bridge's password included)."""
    if isinstance(row, Bridge):
        return {
            "name": row.name,
            "type": TYPE_OF_KIND[row.kind],
            "address": row.address,
            "protocol": row.protocol,
            "port": row.port,
            "username": row.username,
            "password": row.password,
            "enabled": row.enabled,
        }
    if isinstance(row, Pool):
        return {"name": row.name, "type": TYPE_OF_KIND[row.kind], "bridges": list(row.bridges)}
    if isinstance(row, ServicePreference):
        return {"name": row.name, "pools": list(row.pools)}
    return {
        "name": row.name,
        "type": row.conference_type,
        "service_preference": row.service_preference,
        "participant_limit": row.participant_limit,
        "cascades_reserved": row.cascades_reserved,
    }


def api_json(row: Row) -> dict[str, Any]:
    """What the API and pages show: secrets as `<field>_set` (write-only)."""
    shown = stored_json(row)
    for name in SECRET_FIELDS.get(section_of(row), ()):
        shown[name + "_set"] = bool(shown.pop(name))
    return shown


def section_of(row: Row) -> Section:
    if isinstance(row, Bridge):
        return Section.BRIDGE
    if isinstance(row, Pool):
        return Section.POOL
    if isinstance(row, ServicePreference):
        return Section.PREFERENCE
    return Section.TEMPLATE


def key_of(row: Row) -> str:
    return section_of(row).prefix + row.name


def changed_values(row: Row, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The values of `row` with `changes` applied (what `validate` checks on an update).
    A secret not given is kept. A bridge whose protocol changes, whose port is not
    given and was its old protocol's default, takes the new protocol's default."""
    merged = {**stored_json(row), **changes}
    if (
        isinstance(row, Bridge)
        and "port" not in changes
        and merged.get("protocol") != row.protocol
        and row.port == DEFAULT_PORTS.get(row.protocol)
    ):
        del merged["port"]
    return merged


# ------------------------------------------------------------------ field checks
class _Checks:
    """Field checks of one kind; every error names the field's label."""

    def __init__(self, section: Section, *, strict_types: bool) -> None:
        self.section = section
        self.strict = strict_types
        self.labels = FIELDS[section]

    def error(self, name: str, message: str) -> SettingError:
        return SettingError(name, self.labels.get(name, name), message)

    def text(self, name: str, value: Any, max_len: int, *, empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.error(name, "must be text")
        value = value.strip()
        if not value and not empty:
            raise self.error(name, "must not be empty")
        if len(value) > max_len:
            raise self.error(name, f"must be at most {max_len} characters (got {len(value)})")
        if not _PRINTABLE.fullmatch(value):
            raise self.error(name, "may contain only printable ASCII characters")
        return str(value)

    def name(self, name: str, value: Any) -> str:
        text = self.text(name, value, NAME_MAX)
        if not _NAME.fullmatch(text):
            raise self.error(
                name,
                "may contain only letters, digits, spaces and . _ ( ) -, starting with a "
                "letter or digit",
            )
        return text

    def number(self, name: str, value: Any, lo: int, hi: int) -> int:
        if not self.strict and isinstance(value, str) and _DIGITS.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(
                name, "must be a whole number" + (" (a JSON number)" if self.strict else "")
            )
        if not lo <= value <= hi:
            raise self.error(name, f"must be between {lo} and {hi} (got {value})")
        return value

    def choice(self, name: str, value: Any, choices: Iterable[str]) -> str:
        choices = list(choices)
        if not isinstance(value, str) or value not in choices:
            raise self.error(name, "must be one of " + ", ".join(choices))
        return value

    def names(self, name: str, value: Any, max_items: int) -> tuple[str, ...]:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.error(name, "must be a list of names")
        items = [v.strip() for v in value]
        if len(items) > max_items:
            raise self.error(name, f"may hold at most {max_items} (got {len(items)})")
        for item in items:
            if not item:
                raise self.error(name, "names must not be empty")
        repeated = sorted({v for v in items if items.count(v) > 1})
        if repeated:
            raise self.error(name, "names must not repeat: " + ", ".join(map(repr, repeated)))
        return tuple(items)

    def enabled(self, name: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if self.strict:
            raise self.error(name, "must be true or false")
        if value in ("enabled", "Enabled"):
            return True
        if value in ("disabled", "Disabled"):
            return False
        raise self.error(name, "must be Enabled or Disabled")


def _address(checks: _Checks, value: Any) -> str:
    value = checks.text("address", value, ADDRESS_MAX)
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        if address.is_unspecified or address.is_multicast or address.is_reserved:
            raise checks.error("address", f"{value} cannot be a bridge's address")
        return str(address)
    labels = value.rstrip(".").split(".")
    if re.fullmatch(r"[0-9.]+", value) or not all(_HOST_LABEL.fullmatch(p) for p in labels):
        raise checks.error(
            "address", f"{value!r} is neither an IPv4 address nor a host name (FQDN)"
        )
    return ".".join(labels).lower()


def _missing_ref(noun: str, name: str) -> str:
    return f"there is no {noun} named {name!r}"


# ------------------------------------------------------------------ validation
def validate(
    section: Section,
    values: Mapping[str, Any],
    config: ConferenceConfig | None = None,
    *,
    current: str | None = None,
    strict_types: bool = False,
) -> Row:
    """An object of `section` from field values (API names), every error at once.

    `config`: the configuration it joins; its name must not repeat (ignoring case)
    among the other objects of its kind, and the names it refers to must exist
    there. None: neither is checked (loading stored entries). `current`: the name
    of the object being changed (update): renaming it, or changing a bridge's type,
    is refused while something refers to it. `strict_types`: JSON input, where
    numbers must be JSON numbers and *State* a boolean (pages send text)."""
    checks = _Checks(section, strict_types=strict_types)
    labels = FIELDS[section]
    errors: list[SettingError] = [
        SettingError(name, name, "unknown field") for name in sorted(set(values) - set(labels))
    ]
    for name in REQUIRED[section]:
        if name not in values:
            errors.append(checks.error(name, "is required"))
    given = {**DEFAULTS[section], **{k: v for k, v in values.items() if k in labels}}
    clean: dict[str, Any] = {}
    for name in labels:
        if name not in given:
            continue
        try:
            clean[name] = _check(checks, name, given, config)
        except SettingError as exc:
            errors.append(exc)
    if "name" in clean and config is not None:
        errors.extend(_name_errors(section, clean, config, current))
    if section is Section.BRIDGE and current is not None and config is not None:
        errors.extend(_bridge_type_errors(clean, config, current))
    if errors:
        order = list(labels)
        errors.sort(key=lambda e: order.index(e.key) if e.key in order else len(order))
        raise SettingErrors(errors)
    return _build(section, clean)


def _check(checks: _Checks, name: str, given: Mapping[str, Any], config: Any) -> Any:
    section, value = checks.section, given[name]
    if name == "name":
        return checks.name(name, value)
    if section is Section.BRIDGE:
        return _check_bridge(checks, name, value, given)
    if section is Section.POOL:
        if name == "type":
            return BRIDGE_TYPES[checks.choice(name, value, BRIDGE_TYPES)]
        return _pool_bridges(checks, value, given, config)
    if section is Section.PREFERENCE:
        pools = checks.names(name, value, PREFERENCE_POOLS_MAX)
        if not pools:
            raise checks.error(name, "must name at least one conference bridge pool")
        if config is not None:
            missing = [p for p in pools if p not in config.pools]
            if missing:
                raise checks.error(name, _missing_ref(NOUNS[Section.POOL], missing[0]))
        return pools
    if name == "type":
        return checks.choice(name, value, CONFERENCE_TYPES)
    if name == "service_preference":
        preference = checks.name(name, value)
        if config is not None and preference not in config.preferences:
            raise checks.error(name, _missing_ref(NOUNS[Section.PREFERENCE], preference))
        return preference
    if name == "participant_limit":
        return checks.number(name, value, 0, PARTICIPANT_LIMIT_MAX)
    return checks.number(name, value, 0, CASCADES_RESERVED_MAX)


def _check_bridge(checks: _Checks, name: str, value: Any, given: Mapping[str, Any]) -> Any:
    if name == "type":
        return BRIDGE_TYPES[checks.choice(name, value, BRIDGE_TYPES)]
    if name == "address":
        return _address(checks, value)
    if name == "protocol":
        return checks.choice(name, value, PROTOCOLS)
    if name == "port":
        if not checks.strict and value in ("", None):  # a blank page field: the default
            return DEFAULT_PORTS.get(str(given.get("protocol")), DEFAULT_PORTS["HTTPS"])
        return checks.number(name, value, 1, 65535)
    if name == "username":
        return checks.text(name, value, USERNAME_MAX)
    if name == "password":
        if not isinstance(value, str):
            raise checks.error(name, "must be text")
        if len(value) > PASSWORD_MAX:
            raise checks.error(name, f"must be at most {PASSWORD_MAX} characters")
        if not _PRINTABLE.fullmatch(value):
            raise checks.error(name, "may contain only printable ASCII characters")
        return value
    return checks.enabled(name, value)


def _pool_bridges(
    checks: _Checks, value: Any, given: Mapping[str, Any], config: ConferenceConfig | None
) -> tuple[str, ...]:
    names = checks.names("bridges", value, POOL_BRIDGES_MAX)
    if config is None:
        return names
    given_type = given.get("type")
    kind = BRIDGE_TYPES.get(given_type) if isinstance(given_type, str) else None
    for name in names:
        bridge = config.bridges.get(name)
        if bridge is None:
            raise checks.error("bridges", _missing_ref(NOUNS[Section.BRIDGE], name))
        if kind is not None and bridge.kind is not kind:
            raise checks.error(
                "bridges",
                f"{name!r} is a {bridge.kind.value}: a {kind.value} pool holds "
                f"{kind.value} bridges only",
            )
    return names


def _name_errors(
    section: Section, clean: Mapping[str, Any], config: ConferenceConfig, current: str | None
) -> list[SettingError]:
    name = clean["name"]
    checks = _Checks(section, strict_types=False)
    folded = name.casefold()
    if any(o.casefold() == folded for o in config.rows(section) if o != current):
        return [checks.error("name", f"a {section.noun} named {name!r} already exists")]
    if current is not None and name != current:
        users = referrers(section, current, config)
        if users:
            return [
                checks.error(
                    "name", f"cannot rename it while in use: {used_by(section, current, users)}"
                )
            ]
    return []


def _bridge_type_errors(
    clean: Mapping[str, Any], config: ConferenceConfig, current: str
) -> list[SettingError]:
    old = config.bridges.get(current)
    kind = clean.get("type")
    if old is None or kind is None or kind is old.kind:
        return []
    holding = sorted(p.name for p in config.pools.values() if current in p.bridges)
    if not holding:
        return []
    checks = _Checks(Section.BRIDGE, strict_types=False)
    return [
        checks.error(
            "type",
            f"cannot change to {kind.value}: {used_by(Section.BRIDGE, current, holding)}",
        )
    ]


def _build(section: Section, clean: Mapping[str, Any]) -> Row:
    if section is Section.BRIDGE:
        protocol = clean["protocol"]
        return Bridge(
            clean["name"],
            clean["type"],
            clean["address"],
            protocol,
            clean.get("port", DEFAULT_PORTS[protocol]),
            clean["username"],
            clean["password"],
            clean["enabled"],
        )
    if section is Section.POOL:
        return Pool(clean["name"], clean["type"], clean["bridges"])
    if section is Section.PREFERENCE:
        return ServicePreference(clean["name"], clean["pools"])
    return ConferenceTemplate(
        clean["name"],
        clean["type"],
        clean["service_preference"],
        clean["participant_limit"],
        clean["cascades_reserved"],
    )


# ------------------------------------------------------------------ references
def referrers(section: Section, name: str, config: ConferenceConfig) -> list[str]:
    """Names of what refers to object `name` of `section` (of kind `referrer_noun`)."""
    if section is Section.BRIDGE:
        found = [p.name for p in config.pools.values() if name in p.bridges]
    elif section is Section.POOL:
        found = [p.name for p in config.preferences.values() if name in p.pools]
    elif section is Section.PREFERENCE:
        found = [
            t.name for t in config.conference_templates.values() if t.service_preference == name
        ]
    else:
        found = [alias for alias, template in config.alias_templates.items() if template == name]
    return sorted(found)


def referrer_noun(section: Section) -> str:
    return {
        Section.BRIDGE: NOUNS[Section.POOL],
        Section.POOL: NOUNS[Section.PREFERENCE],
        Section.PREFERENCE: NOUNS[Section.TEMPLATE],
        Section.TEMPLATE: "conference alias",
    }[section]


def used_by(section: Section, name: str, users: list[str]) -> str:
    """ "conference bridge 'ts1' is used by conference bridge pools 'p1', 'p2'"."""
    noun = referrer_noun(section)
    if len(users) > 1:
        noun += "es" if noun.endswith("s") else "s"
    return f"{section.noun} {name!r} is used by {noun} {', '.join(repr(u) for u in users)}"


def delete_refusal(section: Section, name: str, config: ConferenceConfig) -> str | None:
    """Why object `name` cannot be deleted now (naming who refers to it), or None."""
    users = referrers(section, name, config)
    if not users:
        return None
    return f"{used_by(section, name, users)}: remove it there first"


def emptied_pools(config: ConferenceConfig) -> list[Pool]:
    """G-P5 / G-B2: when every bridge is deleted, the pools that held any, now empty
    (they stay, so the service preferences naming them stay valid)."""
    return [Pool(p.name, p.kind, ()) for p in config.pools.values() if p.bridges]


# ------------------------------------------------------------------ loading
def load_conference_config(entries: Iterable[tuple[str, Any]]) -> ConferenceConfig:
    """The configuration from live replicated entries (key, value). Values that are not
    valid objects, or whose key does not match their name, are skipped."""
    rows: dict[Section, dict[str, Any]] = {section: {} for section in Section}
    aliases: list[Any] = []
    for key, value in entries:
        if key.startswith(ALIAS_PREFIX):
            aliases.append(value)
            continue
        section = next((s for s in Section if key.startswith(s.prefix)), None)
        if section is None or not isinstance(value, Mapping):
            continue
        try:
            row = validate(section, value, strict_types=True)
        except SettingErrors:
            continue
        if key == section.prefix + row.name:
            rows[section][row.name] = row
    return ConferenceConfig(
        bridges=MappingProxyType(rows[Section.BRIDGE]),
        pools=MappingProxyType(rows[Section.POOL]),
        preferences=MappingProxyType(rows[Section.PREFERENCE]),
        conference_templates=MappingProxyType(rows[Section.TEMPLATE]),
        alias_templates=MappingProxyType(
            {alias.name: alias.template for alias in load_aliases(aliases) if alias.template}
        ),
    )


# ------------------------------------------------------------------ accessors
_T = TypeVar("_T")


class ConfigSource(Protocol):
    """What the accessors read: the peer's store (`peers.store.ConfigStore`)."""

    def shared_entries(self) -> list[Entry]: ...

    def derived(self, name: str, build: Callable[[], _T]) -> _T: ...


def conference_config_of(source: ConfigSource) -> ConferenceConfig:
    """The stored configuration, rebuilt only after the store has written something."""
    return source.derived(
        "conference_config",
        lambda: load_conference_config(
            (e.key, e.value) for e in source.shared_entries() if not e.deleted
        ),
    )


def bridges_of(source: ConfigSource) -> dict[str, Bridge]:
    return dict(conference_config_of(source).bridges)


def pools_of(source: ConfigSource) -> dict[str, Pool]:
    return dict(conference_config_of(source).pools)


def preferences_of(source: ConfigSource) -> dict[str, ServicePreference]:
    return dict(conference_config_of(source).preferences)


def templates_of(source: ConfigSource) -> dict[str, Template]:
    return conference_config_of(source).templates()


def config_of(
    source: ConfigSource,
) -> tuple[dict[str, Bridge], dict[str, Pool], dict[str, ServicePreference]]:
    """(bridges, pools, service preferences) by name: what `placement.place` takes."""
    config = conference_config_of(source)
    return dict(config.bridges), dict(config.pools), dict(config.preferences)


def alias_templates_of(source: ConfigSource) -> dict[str, str]:
    """Conference alias name -> the name of its conference template (aliases with one)."""
    return dict(conference_config_of(source).alias_templates)


def template_for_alias(source: ConfigSource, alias: str) -> Template | None:
    """The template conference alias `alias` names, or None (it names none, or one
    that does not exist)."""
    config = conference_config_of(source)
    template = config.conference_templates.get(config.alias_templates.get(alias, ""))
    return None if template is None else template.template()
