"""What a scenario's `set: {host, page, values}` saves, through which JSON API call.

A page is named as its admin page is (the table below); `values` are the
fields of its JSON twin. Three kinds:

- settings pages: `PUT` the page's API path with the values (only the fields
  given change), e.g. `clustering` -> `PUT /api/v1/system/clustering`;
- passwords: `users/admin` (`users/root` on a Conductor) with `{password: ...}`
  -> `PUT /api/v1/users/ACCOUNT/password` with new and confirmed password;
- named objects: `conference/KIND/NAME` on a Conductor (KIND: bridges, pools,
  preferences, templates, aliases) and `policy-services/NAME`,
  `search-rules/NAME` on the VCS: updated with `PUT .../NAME` when it exists,
  else created with `POST` on the collection with `name: NAME` added.

`resolve_page` is pure: the loader uses it to refuse an unknown page with the
list of known ones, the runner to know what to send.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class PageKind(enum.Enum):
    SETTINGS = "settings"
    PASSWORD = "password"
    OBJECT = "object"


@dataclass(frozen=True, slots=True)
class PageTarget:
    kind: PageKind
    #: the settings page's path, the password path, or the object's collection
    path: str
    name: str = ""

    @property
    def item_path(self) -> str:
        return f"{self.path}/{self.name}"


CONDUCTOR_SETTINGS: Mapping[str, str] = {
    **{
        page: f"/api/v1/system/{page}"
        for page in (
            "administration",
            "clustering",
            "dns",
            "time",
            "ip",
            "ethernet",
            "snmp",
            "logging",
            "access",
            "locations",
        )
    },
    "policy": "/api/v1/conference/policy",
    "option-keys": "/api/v1/maintenance/option-keys",
}
CONDUCTOR_OBJECTS = ("bridges", "pools", "preferences", "templates", "aliases")
VCS_OBJECTS = ("policy-services", "search-rules")
ACCOUNTS: Mapping[str, tuple[str, ...]] = {"conductor": ("admin", "root"), "vcs": ("admin",)}


class PageError(ValueError):
    pass


def known_pages(role: str) -> list[str]:
    accounts = [f"users/{a}" for a in ACCOUNTS.get(role, ())]
    if role == "conductor":
        objects = [f"conference/{kind}/NAME" for kind in CONDUCTOR_OBJECTS]
        return [*CONDUCTOR_SETTINGS, *accounts, *objects]
    if role == "vcs":
        return [*accounts, *(f"{kind}/NAME" for kind in VCS_OBJECTS)]
    return []


def resolve_page(role: str, page: str) -> PageTarget:
    parts = page.split("/")
    if parts[0] == "users" and len(parts) == 2 and parts[1] in ACCOUNTS.get(role, ()):
        return PageTarget(PageKind.PASSWORD, f"/api/v1/users/{parts[1]}/password")
    if role == "conductor":
        if page in CONDUCTOR_SETTINGS:
            return PageTarget(PageKind.SETTINGS, CONDUCTOR_SETTINGS[page])
        if len(parts) == 3 and parts[0] == "conference" and parts[1] in CONDUCTOR_OBJECTS:
            return PageTarget(PageKind.OBJECT, f"/api/v1/conference/{parts[1]}", parts[2])
    if role == "vcs" and len(parts) == 2 and parts[0] in VCS_OBJECTS:
        return PageTarget(PageKind.OBJECT, f"/api/v1/{parts[0]}", parts[1])
    pages = known_pages(role)
    known = f"; pages of a {role}: {', '.join(pages)}" if pages else f"; a {role} has no pages"
    raise PageError(f"unknown page {page!r}{known}")


def password_body(values: Mapping[str, object]) -> dict[str, object]:
    if set(values) != {"password"}:
        raise PageError("a users/ACCOUNT page takes exactly one value: password")
    return {"new_password": values["password"], "confirm_password": values["password"]}
