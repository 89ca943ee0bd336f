"""Conference configuration > Conference bridges, Conference bridge pools, Service
preferences and Conference templates: the pages and their JSON twins.

All four are shared configuration (G-S1): each object is one replicated entry
(`conference_bridge:<name>`, `conference_pool:<name>`, `service_preference:<name>`,
`conference_template:<name>`), written with the configuration log (a bridge's
password shown as (set) / (empty)) and handed to replication. Validation and the
reference rules are `peers.core.conference_config`'s; page and API go through the
same actions here, so both refuse alike: every bad field named by its label,
nothing saved. Deleting or renaming something still referenced is refused naming
who refers to it.

API, for each of `bridges`, `pools`, `preferences`, `templates` under
`/api/v1/conference/`: GET lists (by name), POST creates (201), GET / PUT /
DELETE `/{name}` read, change (any subset of the fields; `name` renames) or
delete one. A bridge's password is write-only: answers carry `password_set`.
`DELETE /api/v1/conference/bridges` deletes every conference bridge and takes
them out of every pool, in one transaction (G-P5, G-B2: the guide's removal
procedure has a peer placed in standalone mode delete its conference bridges;
pools left empty stay). Bridges carry a `status` ({text, ok}) once the node
reports one (`PeerNode.bridge_status()`, when it exists).

Pages: the lists (with Delete buttons; the bridges' has a Status column and
*Delete all conference bridges*), `<list>/new` and `<list>/edit/{name}`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
from aiohttp import web

from netsim.websession import api_error, get_session
from peers.core.conference_config import (
    BRIDGE_TYPES,
    CONFERENCE_TYPES,
    DEFAULT_PORTS,
    DEFAULTS,
    FIELDS,
    PREFERENCE_POOLS_MAX,
    PRODUCT_PORTS,
    PROTOCOLS,
    SECRET_FIELDS,
    ConferenceConfig,
    ConferenceTemplate,
    Row,
    Section,
    api_json,
    changed_values,
    conference_config_of,
    delete_refusal,
    emptied_pools,
    key_of,
    stored_json,
    validate,
)
from peers.core.placement import Bridge, Pool, ServicePreference
from peers.core.settings import SettingErrors
from peers.web.api import Handler, errors_body, read_json_object, strict_query
from peers.web.keys import NODE, USER
from peers.web.views import page_context

if TYPE_CHECKING:
    from peers.node import PeerNode

API_ROOT = "/api/v1/conference/"


@dataclass(frozen=True, slots=True)
class Page:
    """One kind's list page, forms and API."""

    section: Section
    title: str  # list page and menu: "Conference bridges"
    singular: str  # banners: "Conference bridge"
    slug: str  # "bridges": page /conference/bridges, API /api/v1/conference/bridges
    intro: str
    empty: str

    @property
    def path(self) -> str:
        return "/conference/" + self.slug

    @property
    def api_path(self) -> str:
        return API_ROOT + self.slug


PAGES: dict[Section, Page] = {
    Section.BRIDGE: Page(
        Section.BRIDGE,
        "Conference bridges",
        "Conference bridge",
        "bridges",
        "The TelePresence Servers and TelePresence MCUs conferences are placed on, each "
        "reached over HTTP or HTTPS (XML-RPC). Status is this peer's view of each bridge.",
        "No conference bridges are configured.",
    ),
    Section.POOL: Page(
        Section.POOL,
        "Conference bridge pools",
        "Conference bridge pool",
        "pools",
        "A pool groups conference bridges of one type.",
        "No conference bridge pools are configured.",
    ),
    Section.PREFERENCE: Page(
        Section.PREFERENCE,
        "Service preferences",
        "Service preference",
        "preferences",
        "A service preference lists conference bridge pools in the order they are tried.",
        "No service preferences are configured.",
    ),
    Section.TEMPLATE: Page(
        Section.TEMPLATE,
        "Conference templates",
        "Conference template",
        "templates",
        "A conference template says which service preference a conference uses and how "
        "big it may be. Conference aliases name a template.",
        "No conference templates are configured.",
    ),
}
BY_SLUG = {page.slug: page for page in PAGES.values()}
KIND_TEXT = {name: kind.value for name, kind in BRIDGE_TYPES.items()}
NOT_FOUND = "There is no such {noun}"


class NotFound(LookupError):
    def __init__(self, section: Section, name: str) -> None:
        super().__init__(f"no {section.noun} named {name!r}")
        self.section = section


class InUse(ValueError):
    """A delete refused: something still refers to the object."""


# ------------------------------------------------------------------ actions
def config_now(node: PeerNode) -> ConferenceConfig:
    return conference_config_of(node.store)


def find(node: PeerNode, section: Section, name: str) -> Row:
    row = config_now(node).rows(section).get(name)
    if row is None:
        raise NotFound(section, name)
    return row


def _write(
    node: PeerNode, section: Section, puts: Mapping[str, Any], deletes: list[str], user: str
) -> None:
    entries = node.store.write_shared(
        puts, deletes, user=user, secret_fields=SECRET_FIELDS.get(section, ())
    )
    node.publish(entries)


def create(
    node: PeerNode, section: Section, values: Mapping[str, Any], *, user: str, strict_types: bool
) -> Row:
    row = validate(section, values, config_now(node), strict_types=strict_types)
    _write(node, section, {key_of(row): stored_json(row)}, [], user)
    return row


def update(
    node: PeerNode,
    section: Section,
    name: str,
    changes: Mapping[str, Any],
    *,
    user: str,
    strict_types: bool,
) -> Row:
    """Changes some fields of object `name`; a new `name` renames it (one transaction)."""
    config = config_now(node)
    current = find(node, section, name)
    values = changed_values(current, changes)
    row = validate(section, values, config, current=name, strict_types=strict_types)
    deletes = [key_of(current)] if key_of(row) != key_of(current) else []
    _write(node, section, {key_of(row): stored_json(row)}, deletes, user)
    return row


def delete(node: PeerNode, section: Section, name: str, *, user: str) -> None:
    config = config_now(node)
    if name not in config.rows(section):
        raise NotFound(section, name)
    refusal = delete_refusal(section, name, config)
    if refusal is not None:
        raise InUse(refusal)
    _write(node, section, {}, [section.prefix + name], user)


def delete_all_bridges(node: PeerNode, *, user: str) -> tuple[list[str], list[str]]:
    """G-P5 / G-B2: every conference bridge entry deleted (also any not shown because
    it is not a valid bridge) and every pool emptied, in one transaction. Answers
    (bridges deleted, pools emptied)."""
    prefix = Section.BRIDGE.prefix
    keys = [
        e.key for e in node.store.shared_entries() if e.key.startswith(prefix) and not e.deleted
    ]
    pools = emptied_pools(config_now(node))
    if keys or pools:
        _write(node, Section.BRIDGE, {key_of(p): stored_json(p) for p in pools}, keys, user)
    return sorted(key[len(prefix) :] for key in keys), [p.name for p in pools]


def bridge_status(node: PeerNode) -> dict[str, dict[str, Any]]:
    """name -> {"text", "ok"}: what the node's bridge polling reports (nothing before
    it exists)."""
    status: Any = getattr(node, "bridge_status", dict)()
    return dict(status) if isinstance(status, Mapping) else {}


def shown(row: Row, status: Mapping[str, Any]) -> dict[str, Any]:
    """The API's view of an object: a bridge's status once the node reports one."""
    value = api_json(row)
    seen = status.get(row.name) if isinstance(row, Bridge) else None
    if isinstance(seen, Mapping) and "text" in seen:
        value["status"] = {"text": str(seen["text"]), "ok": bool(seen.get("ok"))}
    return value


def _sorted(rows: Mapping[str, Row]) -> list[Row]:
    return sorted(rows.values(), key=lambda r: (r.name.casefold(), r.name))


# ------------------------------------------------------------------ list pages
def _cell(text: Any, status: str | None = None) -> dict[str, Any]:
    return {"text": str(text), "status": status}


def _cells(row: Row, status: Mapping[str, Any]) -> list[dict[str, Any]]:
    if isinstance(row, Bridge):
        seen = status.get(row.name)
        state = (
            _cell(seen["text"], "ok" if seen.get("ok") else "failed")
            if isinstance(seen, Mapping) and "text" in seen
            else _cell("Not checked yet")
        )
        return [
            _cell(row.kind.value),
            _cell(row.address),
            _cell(row.protocol),
            _cell(row.port),
            _cell(row.username),
            _cell("(set)" if row.password else "(none)"),
            _cell("Enabled" if row.enabled else "Disabled"),
            state,
        ]
    if isinstance(row, Pool):
        return [_cell(row.kind.value), _cell(", ".join(row.bridges) or "(none)")]
    if isinstance(row, ServicePreference):
        return [_cell(", ".join(f"{i}. {p}" for i, p in enumerate(row.pools, 1)))]
    assert isinstance(row, ConferenceTemplate)
    return [
        _cell(CONFERENCE_TYPES[row.conference_type]),
        _cell(row.service_preference),
        _cell(row.participant_limit or "No limit"),
        _cell(row.cascades_reserved),
    ]


async def _list_page(
    request: web.Request, page: Page, *, refusal: str = "", status: int = 200
) -> web.StreamResponse:
    node = request.app[NODE]
    seen = bridge_status(node)
    headers = list(FIELDS[page.section].values())[1:]
    if page.section is Section.BRIDGE:
        headers.append("Status")
    rows = [
        {"name": row.name, "cells": _cells(row, seen)}
        for row in _sorted(config_now(node).rows(page.section))
    ]
    context = await page_context(
        request,
        page.title,
        page=page,
        headers=headers,
        rows=rows,
        refusal=refusal,
        bridges=page.section is Section.BRIDGE,
    )
    return aiohttp_jinja2.render_template("conference_config.html", request, context, status=status)


async def _flash_to_list(request: web.Request, page: Page, banner: str) -> web.StreamResponse:
    session = await get_session(request)
    session["flash"] = banner
    raise web.HTTPSeeOther(page.path)


def _page_of(request: web.Request) -> Page:
    return BY_SLUG[request.match_info["kind"]]


async def list_page(request: web.Request) -> web.StreamResponse:
    return await _list_page(request, _page_of(request))


async def delete_page(request: web.Request) -> web.StreamResponse:
    page = _page_of(request)
    form = await request.post()
    name = str(form.get("name", ""))
    try:
        delete(request.app[NODE], page.section, name, user=request[USER])
    except NotFound as exc:
        reason = NOT_FOUND.format(noun=page.section.noun) + "; nothing was deleted."
        raise web.HTTPNotFound(reason=reason) from exc
    except InUse as exc:
        return await _list_page(request, page, refusal=f"Nothing was deleted: {exc}.", status=400)
    return await _flash_to_list(request, page, f"Saved: {page.singular} {name} deleted.")


async def delete_all_bridges_page(request: web.Request) -> web.StreamResponse:
    page = PAGES[Section.BRIDGE]
    bridges, pools = delete_all_bridges(request.app[NODE], user=request[USER])
    banner = f"Saved: {len(bridges)} conference bridge{'' if len(bridges) == 1 else 's'} deleted"
    if pools:
        banner += f"; taken out of conference bridge pool{'' if len(pools) == 1 else 's'} "
        banner += ", ".join(pools) + " (left empty)"
    return await _flash_to_list(request, page, banner + ".")


# ------------------------------------------------------------------ forms
def _form_values(row: Row) -> dict[str, Any]:
    """An object as its edit form shows it (never a password; a port that is its
    protocol's default shown blank, so it follows the protocol)."""
    values: dict[str, Any] = stored_json(row)
    if isinstance(row, Bridge):
        values["password"] = ""
        values["enabled"] = "enabled" if row.enabled else "disabled"
        if row.port == DEFAULT_PORTS[row.protocol]:
            values["port"] = ""
    return values


def _new_values(section: Section) -> dict[str, Any]:
    values = dict(DEFAULTS[section])
    if section is Section.BRIDGE:
        values.update(enabled="enabled", port="", type="telepresence_server")
    if section is Section.POOL:
        values["type"] = "telepresence_server"
    return values


def _posted(
    section: Section, form: Mapping[str, Any], getall: Callable[[str], list[Any]]
) -> dict[str, Any]:
    """The form's fields as values for `validate` (pages send text)."""
    values: dict[str, Any] = {}
    for name in FIELDS[section]:
        if section is Section.POOL and name == "bridges":
            values[name] = [str(v) for v in getall(name)]
        elif section is Section.PREFERENCE and name == "pools":
            chosen = [str(form.get(f"pool{i}", "")) for i in range(1, PREFERENCE_POOLS_MAX + 1)]
            values[name] = [pool for pool in chosen if pool.strip()]
        else:
            values[name] = str(form.get(name, ""))
    return values


def _field(
    page: Page,
    name: str,
    kind: str,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    **extra: Any,
) -> dict[str, Any]:
    value = values.get(name, "")
    return {
        "name": name,
        "id": f"{page.slug}-{name.replace('_', '-')}",
        "label": FIELDS[page.section][name],
        "kind": kind,
        "value": value if isinstance(value, list) else str(value),
        "choices": [],
        "help": "",
        "error": errors.get(name, ""),
        **extra,
    }


def _form_fields(
    page: Page,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    config: ConferenceConfig,
    *,
    creating: bool,
) -> list[dict[str, Any]]:
    section = page.section

    def f(name: str, kind: str = "text", **extra: Any) -> dict[str, Any]:
        return _field(page, name, kind, values, errors, **extra)

    kinds = list(KIND_TEXT.items())
    if section is Section.BRIDGE:
        ports = DEFAULT_PORTS
        return [
            f("name"),
            f("type", "choice", choices=kinds),
            f("address", help="An IPv4 address or a host name (FQDN)"),
            f("protocol", "choice", choices=[(p, p) for p in PROTOCOLS]),
            f(
                "port",
                help=f"Blank: the protocol's default, {ports['HTTPS']} for HTTPS and "
                f"{ports['HTTP']} for HTTP (tplab's bridges; the product's are "
                f"{PRODUCT_PORTS['HTTPS']} and {PRODUCT_PORTS['HTTP']})",
            ),
            f("username", help="The bridge's API account (administrator)"),
            f(
                "password",
                "password",
                help="" if creating else "Blank: keep the password set now",
            ),
            f("enabled", "choice", choices=[("enabled", "Enabled"), ("disabled", "Disabled")]),
        ]
    if section is Section.POOL:
        chosen = values.get("bridges") or []
        chosen = chosen if isinstance(chosen, list) else []
        names = sorted(config.bridges, key=str.casefold)
        names += [n for n in chosen if n not in config.bridges]
        options = [
            {
                "id": f"pools-bridge-{i}",
                "value": n,
                "text": f"{n} ({config.bridges[n].kind.value}, {config.bridges[n].address})"
                if n in config.bridges
                else f"{n} (not configured)",
                "checked": n in chosen,
            }
            for i, n in enumerate(names, 1)
        ]
        return [
            f("name"),
            f("type", "choice", choices=kinds),
            f(
                "bridges",
                "checkboxes",
                options=options,
                help="Only bridges of the pool's type"
                if options
                else "No conference bridges are configured yet",
            ),
        ]
    if section is Section.PREFERENCE:
        chosen = values.get("pools") or []
        chosen = chosen if isinstance(chosen, list) else []
        choices = [("", "(none)")] + [(p, p) for p in sorted(config.pools, key=str.casefold)]
        slots = [
            {
                "id": f"preferences-pool{i}",
                "name": f"pool{i}",
                "label": f"Pool {i}",
                "value": chosen[i - 1] if i <= len(chosen) else "",
            }
            for i in range(1, PREFERENCE_POOLS_MAX + 1)
        ]
        return [
            f("name"),
            f(
                "pools",
                "ordered",
                slots=slots,
                choices=choices,
                help="Tried in this order; Pool 1 first",
            ),
        ]
    preferences = [("", "(choose)")] + [
        (p, p) for p in sorted(config.preferences, key=str.casefold)
    ]
    return [
        f("name"),
        f("type", "choice", choices=list(CONFERENCE_TYPES.items())),
        f("service_preference", "choice", choices=preferences),
        f("participant_limit", help="0: no limit; at most 1000"),
        f(
            "cascades_reserved",
            help="Stored and shown; conference placement does not use it yet",
        ),
    ]


async def _form_page(
    request: web.Request, page: Page, name: str | None, initial: Mapping[str, Any]
) -> web.StreamResponse:
    node = request.app[NODE]
    section = page.section
    values: dict[str, Any] = dict(initial)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.post()
        values = _posted(section, form, form.getall)
        changes = dict(values)
        if section is Section.BRIDGE and name is not None and not changes["password"]:
            del changes["password"]  # blank: keep the password set now
        try:
            if name is None:
                row = create(node, section, changes, user=request[USER], strict_types=False)
                banner = f"Saved: {page.singular} {row.name} added."
            else:
                row = update(node, section, name, changes, user=request[USER], strict_types=False)
                banner = f"Saved: {page.singular} {row.name} saved."
        except SettingErrors as exc:
            errors = exc.by_key()
            status = 400
            if section is Section.BRIDGE:
                values["password"] = ""  # never sent back to the browser
        except NotFound as exc:  # deleted meanwhile (here or on another peer)
            reason = NOT_FOUND.format(noun=section.noun) + "; nothing was saved."
            raise web.HTTPNotFound(reason=reason) from exc
        else:
            return await _flash_to_list(request, page, banner)
    verb = "Add" if name is None else "Edit"
    context = await page_context(
        request,
        f"{verb} {section.noun}",
        page=page,
        fields=_form_fields(page, values, errors, config_now(node), creating=name is None),
        errors=errors,
        creating=name is None,
        action=request.raw_path,
    )
    return aiohttp_jinja2.render_template(
        "conference_config_form.html", request, context, status=status
    )


async def new_page(request: web.Request) -> web.StreamResponse:
    page = _page_of(request)
    return await _form_page(request, page, None, _new_values(page.section))


async def edit_page(request: web.Request) -> web.StreamResponse:
    page = _page_of(request)
    name = request.match_info["name"]
    try:
        row = find(request.app[NODE], page.section, name)
    except NotFound as exc:
        raise web.HTTPNotFound(reason=NOT_FOUND.format(noun=page.section.noun) + ".") from exc
    return await _form_page(request, page, name, _form_values(row))


# ------------------------------------------------------------------ JSON API
def _not_found(exc: NotFound) -> web.Response:
    return api_error(404, str(exc))


def _api_handlers(page: Page) -> dict[str, Handler]:
    section = page.section

    async def api_list(request: web.Request) -> web.Response:
        node = request.app[NODE]
        seen = bridge_status(node)
        rows = _sorted(config_now(node).rows(section))
        return web.json_response({page.slug: [shown(row, seen) for row in rows]})

    async def api_create(request: web.Request) -> web.Response:
        body = await read_json_object(request)
        try:
            row = create(request.app[NODE], section, body, user=request[USER], strict_types=True)
        except SettingErrors as exc:
            return web.json_response(errors_body(exc), status=400)
        return web.json_response({"saved": api_json(row)}, status=201)

    async def api_get(request: web.Request) -> web.Response:
        node = request.app[NODE]
        try:
            row = find(node, section, request.match_info["name"])
        except NotFound as exc:
            return _not_found(exc)
        return web.json_response(shown(row, bridge_status(node)))

    async def api_update(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await read_json_object(request)
        if not body:
            return api_error(400, "nothing to change: give at least one field")
        try:
            row = update(
                request.app[NODE], section, name, body, user=request[USER], strict_types=True
            )
        except NotFound as exc:
            return _not_found(exc)
        except SettingErrors as exc:
            return web.json_response(errors_body(exc), status=400)
        return web.json_response({"saved": api_json(row)})

    async def api_delete(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            delete(request.app[NODE], section, name, user=request[USER])
        except NotFound as exc:
            return _not_found(exc)
        except InUse as exc:
            return api_error(400, f"nothing was deleted: {exc}")
        return web.json_response({"deleted": name})

    return {
        "list": api_list,
        "create": api_create,
        "get": api_get,
        "update": api_update,
        "delete": api_delete,
    }


async def api_delete_all_bridges(request: web.Request) -> web.Response:
    bridges, pools = delete_all_bridges(request.app[NODE], user=request[USER])
    return web.json_response({"deleted": bridges, "pools_emptied": pools})


def add_routes(app: web.Application) -> None:
    router = app.router
    kinds = "{kind:" + "|".join(BY_SLUG) + "}"
    base = "/conference/" + kinds
    router.add_get(base, list_page)
    router.add_get(base + "/new", new_page)
    router.add_post(base + "/new", new_page)
    router.add_get(base + "/edit/{name}", edit_page)
    router.add_post(base + "/edit/{name}", edit_page)
    router.add_post(base + "/delete", delete_page)
    router.add_post(PAGES[Section.BRIDGE].path + "/delete-all", delete_all_bridges_page)
    for page in PAGES.values():
        handlers = _api_handlers(page)
        router.add_get(page.api_path, strict_query(handlers["list"]))
        router.add_post(page.api_path, strict_query(handlers["create"]))
        one = page.api_path + "/{name}"
        router.add_get(one, strict_query(handlers["get"]))
        router.add_put(one, strict_query(handlers["update"]))
        router.add_delete(one, strict_query(handlers["delete"]))
    router.add_delete(PAGES[Section.BRIDGE].api_path, strict_query(api_delete_all_bridges))
