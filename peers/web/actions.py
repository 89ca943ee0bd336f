"""What a page and its JSON twin both do: one function each, so both validate alike.

Settings changes go through `peers.rules.check_changes` and `store.save`;
errors are `SettingErrors` naming each field by its page label, raised before
anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from netsim.certs import describe, make_certificates
from peers.core.settings import SettingError, SettingErrors
from peers.rules import check_changes
from peers.status import fqdn
from peers.store import SaveOutcome

if TYPE_CHECKING:
    from peers.node import PeerNode

#: field name -> label of the password forms (Users page and its API twin)
PASSWORD_FIELDS = {"new_password": "New password", "confirm_password": "Confirm password"}
ACCOUNTS = {"admin": "Administrator account", "root": "Root account"}


def save_settings(node: PeerNode, changes: Mapping[str, Any], *, user: str) -> SaveOutcome:
    """Cross-field rules (G-R4, G-R13), then one transaction; alarms follow the change."""
    check_changes(node, changes)
    outcome = node.store.save(changes, user=user)
    node.saved(outcome)
    return outcome


def change_password(node: PeerNode, account: str, new: Any, confirm: Any, *, user: str) -> None:
    """Users: the new password twice. Lowers the default-password alarm (G-P3)."""
    errors = [
        SettingError(name, label, "must be text")
        for name, label, value in (
            ("new_password", PASSWORD_FIELDS["new_password"], new),
            ("confirm_password", PASSWORD_FIELDS["confirm_password"], confirm),
        )
        if not isinstance(value, str)
    ]
    if not errors and new != confirm:
        errors.append(
            SettingError(
                "confirm_password",
                PASSWORD_FIELDS["confirm_password"],
                "does not match the new password",
            )
        )
    if errors:
        raise SettingErrors(errors)
    try:
        entries = node.store.set_password(account, new, user=user)
    except SettingErrors as exc:
        raise SettingErrors(
            [
                SettingError(
                    "new_password",
                    PASSWORD_FIELDS["new_password"],
                    e.message.removeprefix("password "),
                )
                for e in exc.errors
            ]
        ) from exc
    node.store.log_event("password_changed", account=account, user=user)
    node.publish(entries)
    node.refresh_alarms()


def regenerate_certificates(node: PeerNode, *, user: str) -> None:
    """A new CA and server certificate (G-S2: this peer's own); served after a restart."""
    settings = node.store.settings()
    certs = make_certificates(
        host_name=node.runtime.host.name,
        ip=node.runtime.host.ip,
        fqdn=fqdn(settings),
        serial=node.store.serial,
        now=node.runtime.clock.wall(),
        rng=node.runtime.rng,
    )
    node.store.set_certificates(
        {
            "ca": (certs.ca_cert_pem, certs.ca_key_pem),
            "server": (certs.server_cert_pem, certs.server_key_pem),
        }
    )
    node.store.log_event(
        "certificates_generated",
        user=user,
        server_fingerprint=describe(certs.server_cert_pem)["fingerprint_sha256"],
    )


def certificate_details(node: PeerNode, served_pem: str) -> dict[str, Any]:
    """Maintenance > Security certificates: what is stored, and whether a restart is
    needed before the stored server certificate is the one served."""
    stored = node.store.certificates()
    details: dict[str, Any] = {}
    for name, kind in (("trusted_ca", "ca"), ("server", "server")):
        cert_pem, _key, created = stored[kind]
        details[name] = {**describe(cert_pem), "created": created, "pem": cert_pem}
    details["served_fingerprint_sha256"] = (
        describe(served_pem)["fingerprint_sha256"] if served_pem else ""
    )
    details["restart_required"] = bool(served_pem) and stored["server"][0] != served_pem
    return details
