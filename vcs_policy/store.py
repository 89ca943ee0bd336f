"""The VCS's store: SQLAlchemy 2, one SQLite file by default (`netsim.storekit`).

What it keeps: the policy services and search rules (Configuration > Dial
plan), the trusted CA certificates and CRLs used to verify policy servers
(Maintenance > Security certificates), the VCS's own TLS identity, the admin
account, and the event log. Every change is one transaction committed before
it is acknowledged; reads are served from memory (one process owns a store).
Call results are not stored: they are counted in memory (`vcs_policy.core.calls`).

The schema is versioned; a database written by a newer schema is refused.
Configuration objects are validated by `vcs_policy.core.config` before they
reach the store, so what is stored is always valid.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import random
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, String, Text, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from netsim.storekit import (
    EventColumns,
    MetaColumns,
    check_password,
    hash_password,
    open_engine,
)
from vcs_policy.core.config import (
    MAX_RULES,
    MAX_SERVICES,
    ConfigError,
    ConfigErrors,
    PolicyService,
    SearchRule,
    rule_from_dict,
    service_from_dict,
)

SCHEMA_VERSION = 1
DEFAULT_PASSWORD = "TANDBERG"  # the VCS's factory default admin password
PASSWORD_MIN = 8
PASSWORD_MAX = 128


class StoreError(RuntimeError):
    pass


class Base(DeclarativeBase):
    pass


class MetaRow(MetaColumns, Base):
    pass


class DocumentRow(Base):
    """One configuration document (JSON): `policy_services`, `search_rules`, `trusted_cas`."""

    __tablename__ = "documents"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class UserRow(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(Boolean)


class EventRow(EventColumns, Base):
    pass


class VcsStore:
    def __init__(
        self,
        url: str,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._wall = wall
        self._rng = rng or random.Random()
        self.engine = open_engine(url)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self._cache: dict[str, Any] = {}
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

    def _open(self) -> None:
        Base.metadata.create_all(self.engine)
        with self._write() as s:
            version = s.get(MetaRow, "schema_version")
            if version is None:
                s.add(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
                serial = "".join(self._rng.choice("0123456789ABCDEF") for _ in range(8))
                s.add(MetaRow(key="serial", value=serial))
                s.add(MetaRow(key="cookie_secret", value=self._rng.randbytes(32).hex()))
                s.add(
                    UserRow(
                        name="admin",
                        password_hash=hash_password(DEFAULT_PASSWORD, self._rng.randbytes(16)),
                        is_default=True,
                    )
                )
            elif int(version.value) > SCHEMA_VERSION:
                raise StoreError(
                    f"the database has schema version {version.value}, newer than this "
                    f"software's {SCHEMA_VERSION}; refusing to open it"
                )

    def close(self) -> None:
        self.engine.dispose()

    def _now(self) -> str:
        return self._wall().isoformat(timespec="seconds")

    def _load(self, key: str, default: Any) -> Any:
        """A document (JSON) or, for `meta:NAME`, a meta value; cached until a write."""
        if key not in self._cache:
            with self._session() as s:
                value: Any = default
                if key.startswith("meta:"):
                    meta = s.get(MetaRow, key.removeprefix("meta:"))
                    value = default if meta is None else meta.value
                else:
                    document = s.get(DocumentRow, key)
                    value = default if document is None else json.loads(document.value)
                self._cache[key] = value
        return self._cache[key]

    def _put_document(self, s: Any, key: str, value: Any) -> None:
        row = s.get(DocumentRow, key)
        text = json.dumps(value, sort_keys=True)
        if row is None:
            s.add(DocumentRow(key=key, value=text))
        else:
            row.value = text

    @property
    def serial(self) -> str:
        return str(self._load("meta:serial", ""))

    @property
    def cookie_secret(self) -> bytes:
        return bytes.fromhex(self._load("meta:cookie_secret", ""))

    # ------------------------------------------------------ policy services
    def services(self) -> list[PolicyService]:
        if "services" not in self._cache:
            self._cache["services"] = [
                service_from_dict(d) for d in self._load("policy_services", [])
            ]
        return list(self._cache["services"])

    def service(self, name: str) -> PolicyService | None:
        return next((s for s in self.services() if s.name == name), None)

    def put_service(self, service: PolicyService, *, user: str, replace: str | None = None) -> None:
        """Create (`replace` None) or replace the service named `replace`."""
        services = self.services()
        names = [s.name for s in services]
        if replace is None:
            if service.name in names:
                raise ConfigErrors(
                    [ConfigError("name", "Name", f"{service.name!r} exists already")]
                )
            if len(services) >= MAX_SERVICES:
                raise ConfigErrors(
                    [ConfigError("name", "Name", f"at most {MAX_SERVICES} policy services")]
                )
            services.append(service)
        else:
            if replace not in names:
                raise KeyError(replace)
            if service.name != replace and service.name in names:
                raise ConfigErrors(
                    [ConfigError("name", "Name", f"{service.name!r} exists already")]
                )
            if service.name != replace and any(r.target == replace for r in self.rules()):
                raise ConfigErrors(
                    [
                        ConfigError(
                            "name",
                            "Name",
                            "search rules target this service by name; "
                            "rename is refused while they do",
                        )
                    ]
                )
            services[names.index(replace)] = service
        with self._write() as s:
            self._put_document(s, "policy_services", [x.to_dict() for x in services])
            self._event(
                s,
                "policy_service_saved",
                user=user,
                name=service.name,
                servers=[a for a in service.servers if a],
            )

    def delete_service(self, name: str, *, user: str) -> None:
        services = self.services()
        if name not in [s.name for s in services]:
            raise KeyError(name)
        users = [r.name for r in self.rules() if r.target == name]
        if users:
            raise ConfigErrors(
                [ConfigError("name", "Name", "search rules still target it: " + ", ".join(users))]
            )
        with self._write() as s:
            self._put_document(
                s, "policy_services", [x.to_dict() for x in services if x.name != name]
            )
            self._event(s, "policy_service_deleted", user=user, name=name)

    # ------------------------------------------------------------ search rules
    def rules(self) -> list[SearchRule]:
        if "rules" not in self._cache:
            self._cache["rules"] = [rule_from_dict(d) for d in self._load("search_rules", [])]
        return list(self._cache["rules"])

    def put_rule(self, rule: SearchRule, *, user: str, replace: str | None = None) -> None:
        rules = self.rules()
        names = [r.name for r in rules]
        if replace is None:
            if rule.name in names:
                raise ConfigErrors(
                    [ConfigError("name", "Rule name", f"{rule.name!r} exists already")]
                )
            if len(rules) >= MAX_RULES:
                raise ConfigErrors([ConfigError("name", "Rule name", f"at most {MAX_RULES} rules")])
            rules.append(rule)
        else:
            if replace not in names:
                raise KeyError(replace)
            if rule.name != replace and rule.name in names:
                raise ConfigErrors(
                    [ConfigError("name", "Rule name", f"{rule.name!r} exists already")]
                )
            rules[names.index(replace)] = rule
        with self._write() as s:
            self._put_document(s, "search_rules", [r.to_dict() for r in rules])
            self._event(s, "search_rule_saved", user=user, name=rule.name)

    def delete_rule(self, name: str, *, user: str) -> None:
        rules = self.rules()
        if name not in [r.name for r in rules]:
            raise KeyError(name)
        with self._write() as s:
            self._put_document(s, "search_rules", [r.to_dict() for r in rules if r.name != name])
            self._event(s, "search_rule_deleted", user=user, name=name)

    # ------------------------------------------------------------ certificates
    def trusted_cas(self) -> str:
        """Trusted CA certificates and CRLs (PEM), used to verify policy servers."""
        return str(self._load("trusted_cas", ""))

    def set_trusted_cas(self, pem: str, *, user: str) -> None:
        with self._write() as s:
            self._put_document(s, "trusted_cas", pem)
            self._event(s, "trusted_cas_saved", user=user, bytes=len(pem))

    def identity(self) -> dict[str, str]:
        """This VCS's own TLS identity: ca, ca_key, server, server_key (PEM), once made."""
        return dict(self._load("identity", {}))

    def set_identity(self, identity: dict[str, str]) -> None:
        with self._write() as s:
            self._put_document(s, "identity", identity)

    # -------------------------------------------------------------------- users
    def _user(self, name: str) -> tuple[str, bool] | None:
        key = "user:" + name
        if key not in self._cache:
            with self._session() as s:
                row = s.get(UserRow, name)
                self._cache[key] = None if row is None else (row.password_hash, row.is_default)
        value: tuple[str, bool] | None = self._cache[key]
        return value

    def verify_password(self, name: str, password: str) -> bool:
        """scrypt is slow on purpose; a password verified once is remembered in this
        process (an HMAC under a per-process secret) until the stored hash changes."""
        user = self._user(name)
        if user is None:
            return False
        stored = user[0]
        token = hmac.new(self._verify_secret, f"{name}\0{password}".encode(), "sha256").digest()
        if self._verified.get(name) == (token, stored):
            return True
        if not check_password(password, stored):
            return False
        self._verified[name] = (token, stored)
        return True

    def default_password(self) -> bool:
        user = self._user("admin")
        return bool(user and user[1])

    def set_password(self, name: str, password: str, *, user: str) -> None:
        if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise ConfigErrors(
                [
                    ConfigError(
                        "new_password",
                        "New password",
                        f"must be {PASSWORD_MIN}-{PASSWORD_MAX} characters",
                    )
                ]
            )
        if password == DEFAULT_PASSWORD:
            raise ConfigErrors(
                [
                    ConfigError(
                        "new_password", "New password", "must differ from the factory default"
                    )
                ]
            )
        with self._write() as s:
            row = s.get(UserRow, name)
            if row is None:
                raise KeyError(name)
            row.password_hash = hash_password(password, self._rng.randbytes(16))
            row.is_default = False
            self._event(s, "password_changed", user=user, account=name)

    # --------------------------------------------------------------------- logs
    def _event(self, s: Any, event_name: str, *, level: str = "info", **detail: Any) -> None:
        s.add(EventRow.new(self._now(), event_name, level, detail))

    def log_event(self, event_name: str, *, level: str = "info", **detail: Any) -> None:
        with self._write() as s:
            self._event(s, event_name, level=level, **detail)

    def events(self, limit: int = 200) -> list[dict[str, Any]]:
        with self._session() as s:
            rows = s.scalars(select(EventRow).order_by(EventRow.id.desc()).limit(limit))
            return [r.to_json() for r in rows]
