"""What a VCS page and its JSON twin both do: one function each, so both validate alike.

Errors are `ConfigErrors` naming each field by its page label, raised before
anything is stored; `KeyError` means the named object does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cryptography import x509

from vcs_policy.core.config import (
    ZONES,
    ConfigError,
    ConfigErrors,
    PolicyService,
    SearchRule,
    validate_rule,
    validate_service,
)

if TYPE_CHECKING:
    from vcs_policy.node import VcsNode

MAX_TRUSTED_BYTES = 512 * 1024
PASSWORD_FIELDS = {"new_password": "New password", "confirm_password": "Confirm password"}
CALL_LABELS = {"source": "Source alias", "destination": "Destination alias", "protocol": "Protocol"}
MAX_ALIAS_CHARS = 256


def targets(node: VcsNode) -> tuple[str, ...]:
    """What a search rule may point at: the zones and the policy services."""
    return ZONES + tuple(s.name for s in node.store.services())


async def save_service(
    node: VcsNode, data: Mapping[str, Any], *, user: str, replace: str | None = None
) -> PolicyService:
    """Create or edit a policy service. An edit that leaves the password empty keeps
    the stored one (the page never shows it)."""
    values = dict(data)
    if replace is not None and not values.get("password"):
        old = node.store.service(replace)
        if old is None:
            raise KeyError(replace)
        values["password"] = old.password
    service = validate_service(values)
    node.store.put_service(service, user=user, replace=replace)
    await node.reload_services()
    return service


async def delete_service(node: VcsNode, name: str, *, user: str) -> None:
    node.store.delete_service(name, user=user)
    await node.reload_services()


def save_rule(
    node: VcsNode, data: Mapping[str, Any], *, user: str, replace: str | None = None
) -> SearchRule:
    rule = validate_rule(data, targets(node))
    node.store.put_rule(rule, user=user, replace=replace)
    return rule


def delete_rule(node: VcsNode, name: str, *, user: str) -> None:
    node.store.delete_rule(name, user=user)


async def set_trusted_cas(node: VcsNode, pem: Any, *, user: str) -> int:
    """Replace the trusted CA list (PEM certificates, and CRLs for CRL checking).
    Answers how many certificates it holds."""
    label = "Trusted CA certificates"
    if not isinstance(pem, str):
        raise ConfigErrors([ConfigError("pem", label, "must be PEM text")])
    if len(pem.encode()) > MAX_TRUSTED_BYTES:
        raise ConfigErrors(
            [ConfigError("pem", label, f"must be at most {MAX_TRUSTED_BYTES} bytes")]
        )
    count = 0
    if pem.strip():
        data = pem.encode()
        try:
            count = len(x509.load_pem_x509_certificates(data)) if b"CERTIFICATE-----" in data else 0
        except ValueError as exc:
            raise ConfigErrors(
                [ConfigError("pem", label, f"a certificate does not parse: {exc}")]
            ) from exc
        crls = data.count(b"-----BEGIN X509 CRL-----")
        if crls:
            for block in data.split(b"-----BEGIN X509 CRL-----")[1:]:
                try:
                    x509.load_pem_x509_crl(
                        b"-----BEGIN X509 CRL-----"
                        + block.split(b"-----END X509 CRL-----")[0]
                        + b"-----END X509 CRL-----\n"
                    )
                except ValueError as exc:
                    raise ConfigErrors(
                        [ConfigError("pem", label, f"a CRL does not parse: {exc}")]
                    ) from exc
        if count == 0 and crls == 0:
            raise ConfigErrors([ConfigError("pem", label, "holds no PEM certificate or CRL")])
    node.store.set_trusted_cas(pem, user=user)
    await node.reload_services()
    return count


def check_call(source: Any, destination: Any, protocol: Any) -> tuple[str, str, str]:
    """The Place call form's fields (Status > Calls), checked as the calls API checks them:
    aliases of 1-256 characters without spaces or control characters, SIP or H323."""
    errors = []
    for name, value in (("source", source), ("destination", destination)):
        label = CALL_LABELS[name]
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_ALIAS_CHARS:
            errors.append(
                ConfigError(name, label, f"must be an alias of 1-{MAX_ALIAS_CHARS} characters")
            )
        elif any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
            errors.append(ConfigError(name, label, "may not contain spaces or control characters"))
    if protocol not in ("SIP", "H323"):
        errors.append(ConfigError("protocol", CALL_LABELS["protocol"], "must be SIP or H323"))
    if errors:
        raise ConfigErrors(errors)
    return str(source), str(destination), str(protocol)


def change_password(node: VcsNode, new: Any, confirm: Any, *, user: str) -> None:
    errors = [
        ConfigError(name, label, "must be text")
        for name, label, value in (
            ("new_password", PASSWORD_FIELDS["new_password"], new),
            ("confirm_password", PASSWORD_FIELDS["confirm_password"], confirm),
        )
        if not isinstance(value, str)
    ]
    if not errors and new != confirm:
        errors.append(
            ConfigError("confirm_password", PASSWORD_FIELDS["confirm_password"], "does not match")
        )
    if errors:
        raise ConfigErrors(errors)
    node.store.set_password("admin", new, user=user)
