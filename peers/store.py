"""A peer's configuration store: SQLAlchemy 2, one SQLite file per peer by default.

Durability: SQLite runs in WAL mode with synchronous=FULL, and every change is
one transaction committed before the caller acknowledges it, so a crash
(kill -9) loses no acknowledged change. Any SQLAlchemy URL is accepted.

The schema is versioned (`meta.schema_version`); a database written by a newer
schema is refused rather than misread. Values are JSON. Shared and
peer-specific settings are kept apart by scope (G-S1 / G-S2) so replication
(a later issue) can carry the shared ones only.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import random
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Boolean,
    Engine,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from netsim.storekit import (
    EventColumns,
    MetaColumns,
    check_password,
    hash_password,
    open_engine,
)
from peers.core.alarms import CATALOGUE
from peers.core.backup import RUNTIME_PREFIXES, Configuration
from peers.core.hlc import HybridClock, Version
from peers.core.replication import Entry
from peers.core.settings import SETTINGS, Scope, SettingError, SettingErrors, validate_changes

SCHEMA_VERSION = 2
#: shared settings live in replicated entries under this prefix (G-S1)
SETTING_PREFIX = "setting:"
ADMIN_ENTRY = "user:admin"
DEFAULT_PASSWORD = "TANDBERG"  # the platform's factory default for admin and root
USERS = {"admin": Scope.SHARED, "root": Scope.PEER}  # admin: a replicated entry
PASSWORD_MIN = 8
PASSWORD_MAX = 128
_T = TypeVar("_T")


class StoreError(RuntimeError):
    pass


class Base(DeclarativeBase):
    pass


class MetaRow(MetaColumns, Base):
    pass


class SettingRow(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(Text)
    updated: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer, default=1)


class SharedRow(Base):
    """One replicated entry (shared configuration, G-S1): last-writer-wins by version."""

    __tablename__ = "shared_entries"
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    deleted: Mapped[bool] = mapped_column(Boolean)
    wall_ms: Mapped[int] = mapped_column(Integer)
    counter: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(64))

    def entry(self) -> Entry:
        version = Version(self.wall_ms, self.counter, self.origin)
        return Entry(
            self.key, version, self.deleted, None if self.deleted else json.loads(self.value)
        )


class PendingRow(Base):
    __tablename__ = "pending"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    saved: Mapped[str] = mapped_column(String(40))


class UserRow(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))
    password_hash: Mapped[str] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(Boolean)
    changed: Mapped[str] = mapped_column(String(40))


class CertificateRow(Base):
    __tablename__ = "certificates"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    cert_pem: Mapped[str] = mapped_column(Text)
    key_pem: Mapped[str] = mapped_column(Text)
    created: Mapped[str] = mapped_column(String(40))


class EventRow(EventColumns, Base):
    pass


class ConfigLogRow(Base):
    __tablename__ = "config_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    wall: Mapped[str] = mapped_column(String(40))
    user: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    old: Mapped[str] = mapped_column(Text)
    new: Mapped[str] = mapped_column(Text)
    pending: Mapped[bool] = mapped_column(Boolean)


class AlarmRow(Base):
    __tablename__ = "alarms"
    __table_args__ = (UniqueConstraint("code", "subject"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    raised: Mapped[str] = mapped_column(String(40))


@dataclass(frozen=True)
class SaveOutcome:
    applied: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, Any] = field(default_factory=dict)
    #: replicated entries this save wrote (the node hands them to replication)
    entries: list[Entry] = field(default_factory=list)

    @property
    def restart_required(self) -> bool:
        return bool(self.pending)


def _copy(value: Any) -> Any:
    """A caller's own copy of cached data: JSON-like containers are copied, everything
    else in them is immutable (str, numbers, None, frozen dataclasses, tuples), so this
    is what copy.deepcopy gave, at a fraction of its cost (settings are read on every
    HELLO and request)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@dataclass(frozen=True)
class Alarm:
    code: int
    subject: str
    title: str
    severity: str
    action: str
    detail: str
    raised: str


class ConfigStore:
    def __init__(
        self,
        url: str,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self._wall = wall
        self._rng = rng or random.Random()
        self.engine: Engine = open_engine(url)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        #: reads served from memory; every write transaction (`_write`) clears it. One
        #: process owns a store, so nothing else can change the database under it.
        self._cache: dict[str, Any] = {}
        #: counts write transactions: callers that keep something derived from stored
        #: data (the policy service's compiled aliases) rebuild it when this moves
        self.generation = 0
        #: `derived`: name -> (generation it was built at, value)
        self._derived: dict[str, tuple[int, Any]] = {}
        self._verify_secret = secrets.token_bytes(32)
        self._verified: dict[str, tuple[bytes, str]] = {}
        self._open()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Any]:
        try:
            with self._session.begin() as s:
                yield s
        finally:
            self._cache.clear()
            self.generation += 1

    def _cached(self, name: str, load: Callable[[], Any]) -> Any:
        return _copy(self._held(name, load))

    def _held(self, name: str, load: Callable[[], Any]) -> Any:
        """The cached value itself: callers only read it."""
        if name not in self._cache:
            self._cache[name] = load()
        return self._cache[name]

    def derived(self, name: str, build: Callable[[], _T]) -> _T:
        """Something computed from stored data (the conference configuration), built
        again only after a write (`generation` moved). It is shared, not copied:
        `build` must answer something immutable."""
        held = self._derived.get(name)
        if held is not None and held[0] == self.generation:
            return cast(_T, held[1])
        generation = self.generation
        value = build()
        self._derived[name] = (generation, value)
        return value

    # ------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        Base.metadata.create_all(self.engine)
        with self._write() as s:
            version = s.get(MetaRow, "schema_version")
            if version is None:
                s.add(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
                serial = self._new_serial()
                s.add(MetaRow(key="serial", value=serial))
                s.add(MetaRow(key="cookie_secret", value=self._rng.randbytes(32).hex()))
                s.add(MetaRow(key="established", value="1"))
                s.add(
                    UserRow(
                        name="root",
                        scope=Scope.PEER.value,
                        password_hash=hash_password(DEFAULT_PASSWORD, self._rng.randbytes(16)),
                        is_default=True,
                        changed=self._now(),
                    )
                )
                clock = HybridClock(serial)
                admin = {
                    "hash": hash_password(DEFAULT_PASSWORD, self._rng.randbytes(16)),
                    "default": True,
                }
                self._put(s, Entry(ADMIN_ENTRY, clock.tick(self._wall_ms()), False, admin))
            elif int(version.value) > SCHEMA_VERSION:
                raise StoreError(
                    f"the database has schema version {version.value}, newer than this "
                    f"software's {SCHEMA_VERSION}; refusing to open it"
                )
            elif int(version.value) == 1:
                self._migrate_1_to_2(s)
                version.value = "2"
        self.hlc = HybridClock(self.serial)
        for entry in self.shared_entries():
            self.hlc.observe(entry.version, entry.version.wall_ms)

    def _migrate_1_to_2(self, s: Any) -> None:
        """Schema 2 keeps shared settings and the admin account in replicated entries."""
        clock = HybridClock(self._meta_in(s, "serial"))
        for row in list(s.scalars(select(SettingRow))):
            if row.scope == Scope.SHARED.value:
                version = clock.tick(self._wall_ms())
                self._put(s, Entry(SETTING_PREFIX + row.key, version, False, json.loads(row.value)))
                s.delete(row)
        admin = s.get(UserRow, "admin")
        if admin is not None:
            value = {"hash": admin.password_hash, "default": admin.is_default}
            self._put(s, Entry(ADMIN_ENTRY, clock.tick(self._wall_ms()), False, value))
            s.delete(admin)
        s.add(MetaRow(key="established", value="1"))

    @staticmethod
    def _meta_in(s: Any, key: str) -> str:
        row = s.get(MetaRow, key)
        if row is None:
            raise StoreError(f"store has no {key}")
        return str(row.value)

    @staticmethod
    def _put(s: Any, entry: Entry) -> None:
        row = s.get(SharedRow, entry.key)
        value = json.dumps(None if entry.deleted else entry.value)
        v = entry.version
        if row is None:
            s.add(
                SharedRow(
                    key=entry.key,
                    value=value,
                    deleted=entry.deleted,
                    wall_ms=v.wall_ms,
                    counter=v.counter,
                    origin=v.origin,
                )
            )
        else:
            row.value, row.deleted = value, entry.deleted
            row.wall_ms, row.counter, row.origin = v.wall_ms, v.counter, v.origin

    def _wall_ms(self) -> int:
        return int(self._wall().timestamp() * 1000)

    def close(self) -> None:
        self.engine.dispose()

    def _new_serial(self) -> str:
        return "".join(self._rng.choice("0123456789ABCDEF") for _ in range(8))

    def _now(self) -> str:
        return self._wall().isoformat(timespec="seconds")

    def _meta(self, key: str) -> str:
        result: str = self._cached("meta:" + key, lambda: self._load_meta(key))
        return result

    def _load_meta(self, key: str) -> str:
        with self._session() as s:
            row = s.get(MetaRow, key)
            if row is None:
                raise StoreError(f"store has no {key}")
            return row.value

    @property
    def serial(self) -> str:
        """This peer's hardware serial number: made at first start, stable ever after."""
        return self._meta("serial")

    @property
    def cookie_secret(self) -> bytes:
        return bytes.fromhex(self._meta("cookie_secret"))

    @property
    def schema_version(self) -> int:
        return int(self._meta("schema_version"))

    # ------------------------------------------------------------- settings
    def settings(self) -> dict[str, Any]:
        """Every active setting, defaults filled in."""
        result: dict[str, Any] = self._cached("settings", self._load_settings)
        return result

    def _load_settings(self) -> dict[str, Any]:
        values = {key: setting.default for key, setting in SETTINGS.items()}
        with self._session() as s:
            for row in s.scalars(select(SettingRow)):
                if row.key in values and SETTINGS[row.key].scope is Scope.PEER:
                    values[row.key] = json.loads(row.value)
            shared = s.scalars(select(SharedRow).where(SharedRow.key.startswith(SETTING_PREFIX)))
            for shared_row in shared:
                key = shared_row.key[len(SETTING_PREFIX) :]
                if key in values and not shared_row.deleted:
                    values[key] = json.loads(shared_row.value)
        return values

    def get(self, key: str) -> Any:
        """One active setting (a copy of that value only: read on every HELLO)."""
        return _copy(self._held("settings", self._load_settings)[key])

    def pending(self) -> dict[str, Any]:
        result: dict[str, Any] = self._cached("pending", self._load_pending)
        return result

    def _load_pending(self) -> dict[str, Any]:
        with self._session() as s:
            return {row.key: json.loads(row.value) for row in s.scalars(select(PendingRow))}

    def effective(self) -> dict[str, Any]:
        """What the settings will be after the next restart."""
        return {**self.settings(), **self.pending()}

    def save(self, changes: Mapping[str, Any], *, user: str) -> SaveOutcome:
        """Validate and store `changes` in one transaction. Restart settings (G-P7) go to
        pending; the others apply at once. Raises SettingErrors with nothing saved."""
        clean = validate_changes(changes)
        active = self.settings()
        pending = self.pending()
        applied: dict[str, Any] = {}
        staged: dict[str, Any] = {}
        entries: list[Entry] = []
        now = self._now()
        with self._write() as s:
            for key, value in clean.items():
                setting = SETTINGS[key]
                shown_old = pending.get(key, active[key])
                at_once = setting.clear_applies_at_once and not value and active[key]
                if setting.restart and not at_once:
                    row = s.get(PendingRow, key)
                    if value == active[key]:
                        if row is not None:
                            s.delete(row)
                    elif row is None:
                        s.add(PendingRow(key=key, value=json.dumps(value), saved=now))
                    else:
                        row.value, row.saved = json.dumps(value), now
                    staged[key] = value
                elif setting.scope is Scope.SHARED:
                    entry = Entry(
                        SETTING_PREFIX + key, self.hlc.tick(self._wall_ms()), False, value
                    )
                    self._put(s, entry)
                    entries.append(entry)
                    applied[key] = value
                else:
                    if at_once:  # G-P5: a deleted peer address is forgotten at Save
                        stale = s.get(PendingRow, key)
                        if stale is not None:
                            s.delete(stale)
                    row_s = s.get(SettingRow, key)
                    if row_s is None:
                        s.add(
                            SettingRow(
                                key=key,
                                scope=setting.scope.value,
                                value=json.dumps(value),
                                updated=now,
                                version=1,
                            )
                        )
                    else:
                        row_s.value, row_s.updated = json.dumps(value), now
                        row_s.version += 1
                    applied[key] = value
                if value != shown_old:
                    s.add(
                        ConfigLogRow(
                            wall=now,
                            user=user,
                            key=key,
                            old=_shown(setting.secret, shown_old),
                            new=_shown(setting.secret, value),
                            pending=setting.restart and not at_once,
                        )
                    )
        remaining = self.pending()
        return SaveOutcome(applied, {k: v for k, v in staged.items() if k in remaining}, entries)

    def apply_pending(self) -> dict[str, Any]:
        """At start: pending settings become active (G-P7)."""
        now = self._now()
        with self._write() as s:
            rows = list(s.scalars(select(PendingRow)))
            applied = {}
            for row in rows:
                setting = SETTINGS.get(row.key)
                if setting is None:
                    s.delete(row)
                    continue
                current = s.get(SettingRow, row.key)
                if current is None:
                    s.add(
                        SettingRow(
                            key=row.key,
                            scope=setting.scope.value,
                            value=row.value,
                            updated=now,
                            version=1,
                        )
                    )
                else:
                    current.value, current.updated = row.value, now
                    current.version += 1
                applied[row.key] = json.loads(row.value)
                s.delete(row)
        return applied

    # ---------------------------------------------------------------- users
    def verify_password(self, name: str, password: str) -> bool:
        """scrypt costs ~40 ms and 16 MiB; a password verified once against the stored hash
        is remembered in this process (keyed by an HMAC under a per-process secret, never the
        password itself) until that hash changes, so API polling stays cheap."""
        stored = self._password_hash(name)
        if stored is None:
            return False
        token = hmac.new(self._verify_secret, f"{name}\0{password}".encode(), "sha256").digest()
        if self._verified.get(name) == (token, stored):
            return True
        if not check_password(password, stored):
            return False
        self._verified[name] = (token, stored)
        return True

    def set_password(self, name: str, password: str, *, user: str) -> list[Entry]:
        """Change a password; answers the replicated entries written (admin only)."""
        if name not in USERS:
            raise SettingErrors([_user_error(name, "no such account")])
        if not isinstance(password, str):
            raise SettingErrors([_user_error(name, "password must be text")])
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise SettingErrors(
                [
                    _user_error(
                        name,
                        f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters",
                    )
                ]
            )
        if password == DEFAULT_PASSWORD:
            raise SettingErrors([_user_error(name, "password must not be the factory default")])
        now = self._now()
        hashed = hash_password(password, self._rng.randbytes(16))
        entries: list[Entry] = []
        with self._write() as s:
            if name == "admin":  # the admin account is shared (G-S1): a replicated entry
                entry = Entry(
                    ADMIN_ENTRY,
                    self.hlc.tick(self._wall_ms()),
                    False,
                    {"hash": hashed, "default": False},
                )
                self._put(s, entry)
                entries.append(entry)
            else:
                row = s.get(UserRow, name)
                assert row is not None
                row.password_hash, row.is_default, row.changed = hashed, False, now
            s.add(
                ConfigLogRow(
                    wall=now,
                    user=user,
                    key=f"users.{name}.password",
                    old="(hidden)",
                    new="(hidden)",
                    pending=False,
                )
            )
        return entries

    def default_passwords(self) -> list[str]:
        result: list[str] = self._cached("default_passwords", self._load_default_passwords)
        return result

    def _load_default_passwords(self) -> list[str]:
        """Accounts still on the factory default password (G-P3)."""
        with self._session() as s:
            names = [row.name for row in s.scalars(select(UserRow)) if row.is_default]
            admin = s.get(SharedRow, ADMIN_ENTRY)
            if admin is not None and not admin.deleted and json.loads(admin.value).get("default"):
                names.append("admin")
        return sorted(names)

    def _password_hash(self, name: str) -> str | None:
        result: str | None = self._cached("hash:" + name, lambda: self._load_password_hash(name))
        return result

    def _load_password_hash(self, name: str) -> str | None:
        with self._session() as s:
            if name == "admin":
                row = s.get(SharedRow, ADMIN_ENTRY)
                if row is None or row.deleted:
                    return None
                stored = json.loads(row.value).get("hash")
                return stored if isinstance(stored, str) else None
            user = s.get(UserRow, name)
            return None if user is None else user.password_hash

    # ------------------------------------------------------- replicated data
    def put_shared(self, key: str, value: Any) -> Entry:
        """Write one replicated item (shared collections: conference configuration, ...)."""
        return self._write_shared(key, value, deleted=False)

    def delete_shared(self, key: str) -> Entry:
        """Delete one replicated item: a tombstone, so the delete replicates too."""
        return self._write_shared(key, None, deleted=True)

    def _write_shared(self, key: str, value: Any, *, deleted: bool) -> Entry:
        if key.startswith((SETTING_PREFIX, ADMIN_ENTRY)):
            raise StoreError(f"{key!r} is written through settings or users, not directly")
        entry = Entry(key, self.hlc.tick(self._wall_ms()), deleted, None if deleted else value)
        with self._write() as s:
            self._put(s, entry)
        return entry

    def write_shared(
        self,
        puts: Mapping[str, Any],
        deletes: Iterable[str] = (),
        *,
        user: str,
        secret_fields: Collection[str] = (),
    ) -> list[Entry]:
        """Write and delete replicated items in one transaction (a renamed item is both),
        each change in the configuration log; answers the entries written. Fields
        named in `secret_fields` (of object values) are logged as (set) / (empty)."""
        entries: list[Entry] = []
        now = self._now()
        changes = [(key, value, False) for key, value in puts.items()]
        changes += [(key, None, True) for key in deletes]
        with self._write() as s:
            for key, value, deleted in changes:
                if key.startswith((SETTING_PREFIX, ADMIN_ENTRY)):
                    raise StoreError(f"{key!r} is written through settings or users, not directly")
                row = s.get(SharedRow, key)
                old = "" if row is None or row.deleted else row.value
                if old and secret_fields:
                    old = _logged(json.loads(old), secret_fields)
                entry = Entry(key, self.hlc.tick(self._wall_ms()), deleted, value)
                self._put(s, entry)
                entries.append(entry)
                new = "" if deleted else _logged(value, secret_fields)
                s.add(ConfigLogRow(wall=now, user=user, key=key, old=old, new=new, pending=False))
        return entries

    def shared_entries(self) -> list[Entry]:
        with self._session() as s:
            return [row.entry() for row in s.scalars(select(SharedRow).order_by(SharedRow.key))]

    def merge_entries(self, entries: Iterable[Entry]) -> list[Entry]:
        """Store entries received from a peer where they are newer (LWW); answers those
        applied. One transaction, so a crash keeps all or none."""
        applied: list[Entry] = []
        with self._write() as s:
            for entry in entries:
                row = s.get(SharedRow, entry.key)
                if row is not None and row.entry().version >= entry.version:
                    continue
                self._put(s, entry)
                applied.append(entry)
        for entry in applied:
            self.hlc.observe(entry.version, self._wall_ms())
        return applied

    def replace_shared(self, entries: Iterable[Entry], *, source: str) -> None:
        """G-P2: a joining peer's shared configuration is replaced by the cluster's."""
        entries = list(entries)
        with self._write() as s:
            for row in list(s.scalars(select(SharedRow))):
                s.delete(row)
            s.flush()
            for entry in entries:
                self._put(s, entry)
            s.get(MetaRow, "established").value = "1"  # type: ignore[union-attr]
        for entry in entries:
            self.hlc.observe(entry.version, self._wall_ms())
        self.log_event("cluster_configuration_adopted", source=source, entries=len(entries))

    @property
    def established(self) -> bool:
        """False from a join until the cluster's configuration has been adopted (G-P2)."""
        return self._meta("established") == "1"

    def set_established(self, value: bool) -> None:
        with self._write() as s:
            row = s.get(MetaRow, "established")
            if row is None:
                s.add(MetaRow(key="established", value="1" if value else "0"))
            else:
                row.value = "1" if value else "0"

    # ------------------------------------------------------ peer-local data
    def local(self, key: str) -> Any:
        """A JSON value this peer keeps for itself (never replicated), or None."""
        text: str | None = self._cached("local:" + key, lambda: self._load_local(key))
        return None if text is None else json.loads(text)

    def _load_local(self, key: str) -> str | None:
        with self._session() as s:
            row = s.get(MetaRow, "local:" + key)
            return None if row is None else row.value

    def set_local(self, key: str, value: Any) -> None:
        with self._write() as s:
            row = s.get(MetaRow, "local:" + key)
            text = json.dumps(value, sort_keys=True)
            if row is None:
                s.add(MetaRow(key="local:" + key, value=text))
            else:
                row.value = text

    # --------------------------------------------------------- certificates
    def certificates(self) -> dict[str, tuple[str, str, str]]:
        result: dict[str, tuple[str, str, str]] = self._cached(
            "certificates", self._load_certificates
        )
        return result

    def _load_certificates(self) -> dict[str, tuple[str, str, str]]:
        with self._session() as s:
            return {
                row.kind: (row.cert_pem, row.key_pem, row.created)
                for row in s.scalars(select(CertificateRow))
            }

    def set_certificates(self, pairs: dict[str, tuple[str, str]]) -> None:
        """Store certificates and keys by kind ("ca", "server") in one transaction, so a
        crash never leaves a server certificate beside a CA that did not sign it."""
        now = self._now()
        with self._write() as s:
            for kind, (cert_pem, key_pem) in pairs.items():
                row = s.get(CertificateRow, kind)
                if row is None:
                    s.add(
                        CertificateRow(kind=kind, cert_pem=cert_pem, key_pem=key_pem, created=now)
                    )
                else:
                    row.cert_pem, row.key_pem, row.created = cert_pem, key_pem, now

    # ---------------------------------------------------- system backup (G-P4)
    def export_configuration(self) -> Configuration:
        """What a system backup holds: the peer-specific settings, every live shared
        entry but runtime state (conference records), the peer's own accounts and its
        certificates. Logs, alarms, settings waiting for a restart and peer-local runtime
        data (`local`) are left out."""
        with self._session() as s:
            settings = {
                row.key: json.loads(row.value)
                for row in s.scalars(select(SettingRow).order_by(SettingRow.key))
                if row.key in SETTINGS and SETTINGS[row.key].scope is Scope.PEER
            }
            shared = {
                row.key: json.loads(row.value)
                for row in s.scalars(select(SharedRow).order_by(SharedRow.key))
                if not row.deleted and not row.key.startswith(RUNTIME_PREFIXES)
            }
            users = {
                row.name: {
                    "hash": row.password_hash,
                    "default": row.is_default,
                    "changed": row.changed,
                }
                for row in s.scalars(select(UserRow).order_by(UserRow.name))
            }
            certificates = {
                row.kind: {"cert_pem": row.cert_pem, "key_pem": row.key_pem, "created": row.created}
                for row in s.scalars(select(CertificateRow).order_by(CertificateRow.kind))
            }
        return Configuration(settings, shared, users, certificates)

    def restore_configuration(self, configuration: Configuration, *, note: str) -> list[Entry]:
        """Replace this peer's configuration with a checked backup's, in one transaction:
        the peer-specific settings exactly (settings waiting for a restart are dropped),
        its accounts and certificates. Shared entries are written as new versions, and
        the live ones the backup lacks are deleted (tombstones), so the restored shared
        configuration replicates to the cluster and wins there (G-S1). The restored
        configuration is this peer's own: it is established (it seeds, it does not adopt,
        G-P2). Conference records, logs and alarms stay. Answers the entries written."""
        wall_ms = self._wall_ms()
        now = self._now()
        entries: list[Entry] = []
        with self._write() as s:
            for old in [*s.scalars(select(SettingRow)), *s.scalars(select(PendingRow))]:
                s.delete(old)
            s.flush()
            for key, value in configuration.settings.items():
                s.add(
                    SettingRow(
                        key=key,
                        scope=Scope.PEER.value,
                        value=json.dumps(value),
                        updated=now,
                        version=1,
                    )
                )
            # held here, so the session finds them without a query per entry
            rows = {row.key: row for row in s.scalars(select(SharedRow))}
            live = {
                key
                for key, row in rows.items()
                if not row.deleted and not key.startswith(RUNTIME_PREFIXES)
            }
            changes = [(key, True, None) for key in sorted(live - set(configuration.shared))]
            changes += [(key, False, value) for key, value in sorted(configuration.shared.items())]
            for key, deleted, value in changes:
                entry = Entry(key, self.hlc.tick(wall_ms), deleted, value)
                version = entry.version
                row = rows.get(key)
                if row is None:
                    row = rows[key] = SharedRow(key=key)
                    s.add(row)
                row.value, row.deleted = json.dumps(value), deleted
                row.wall_ms, row.counter, row.origin = (
                    version.wall_ms,
                    version.counter,
                    version.origin,
                )
                entries.append(entry)
            for name, account in configuration.users.items():
                user = s.get(UserRow, name)
                if user is None:
                    user = UserRow(name=name, scope=Scope.PEER.value)
                    s.add(user)
                user.password_hash = account["hash"]
                user.is_default = account["default"]
                user.changed = account["changed"]
            for kind, pair in configuration.certificates.items():
                cert = s.get(CertificateRow, kind)
                if cert is None:
                    cert = CertificateRow(kind=kind)
                    s.add(cert)
                cert.cert_pem, cert.key_pem = pair["cert_pem"], pair["key_pem"]
                cert.created = pair["created"]
            established = s.get(MetaRow, "established")
            if established is None:
                s.add(MetaRow(key="established", value="1"))
            else:
                established.value = "1"
            s.add(
                ConfigLogRow(
                    wall=now, user="system", key="backup.restore", old="", new=note, pending=False
                )
            )
        return entries

    # ----------------------------------------------------------------- logs
    def log_event(self, event_name: str, *, level: str = "info", **detail: Any) -> None:
        # the event log is read by nothing cached: appending to it leaves the caches be
        with self._session.begin() as s:
            s.add(EventRow.new(self._now(), event_name, level, detail))

    def events(self, limit: int = 200) -> list[dict[str, Any]]:
        with self._session() as s:
            rows = s.scalars(select(EventRow).order_by(EventRow.id.desc()).limit(limit))
            return [r.to_json() for r in rows]

    def config_log(self, limit: int = 200) -> list[dict[str, Any]]:
        with self._session() as s:
            rows = s.scalars(select(ConfigLogRow).order_by(ConfigLogRow.id.desc()).limit(limit))
            return [
                {
                    "id": r.id,
                    "time": r.wall,
                    "user": r.user,
                    "setting": r.key,
                    "old": r.old,
                    "new": r.new,
                    "pending": r.pending,
                }
                for r in rows
            ]

    # --------------------------------------------------------------- alarms
    def set_alarms(self, wanted: Iterable[tuple[int, str, str]]) -> None:
        """Make the active alarms exactly `wanted` (code, subject, detail); raised times
        of alarms that stay are kept."""
        wanted_map = {(code, subject): detail for code, subject, detail in wanted}
        if {(a.code, a.subject): a.detail for a in self.alarms()} == wanted_map:
            return
        now = self._now()
        raised: list[tuple[int, str]] = []
        with self._write() as s:
            existing = {(r.code, r.subject): r for r in s.scalars(select(AlarmRow))}
            for key, row in existing.items():
                if key not in wanted_map:
                    s.delete(row)
                else:
                    row.detail = wanted_map[key]
            for (code, subject), detail in wanted_map.items():
                if (code, subject) not in existing:
                    s.add(AlarmRow(code=code, subject=subject, detail=detail, raised=now))
                    raised.append((code, subject))
        for code, subject in raised:
            self.log_event("alarm_raised", level="warning", code=code, subject=subject)

    def alarms(self) -> list[Alarm]:
        result: list[Alarm] = self._cached("alarms", self._load_alarms)
        return result

    def _load_alarms(self) -> list[Alarm]:
        with self._session() as s:
            out = []
            for row in s.scalars(select(AlarmRow).order_by(AlarmRow.code, AlarmRow.subject)):
                kind = CATALOGUE[row.code]
                out.append(
                    Alarm(
                        row.code,
                        row.subject,
                        kind.title,
                        kind.severity.value,
                        kind.action,
                        row.detail,
                        row.raised,
                    )
                )
            return out


def _shown(secret: bool, value: Any) -> str:
    if secret:
        return "(set)" if value else "(empty)"
    return json.dumps(value)


def _logged(value: Any, secret_fields: Collection[str]) -> str:
    """A replicated value as the configuration log shows it (secrets hidden)."""
    if isinstance(value, dict) and secret_fields:
        value = {
            k: ("(set)" if v else "(empty)") if k in secret_fields else v for k, v in value.items()
        }
    return json.dumps(value, sort_keys=True)


def _user_error(name: str, message: str) -> SettingError:
    return SettingError(f"users.{name}.password", f"{name} password", message)
