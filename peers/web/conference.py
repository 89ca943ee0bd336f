"""Conference configuration > Conference aliases: the pages and their JSON twin.

Aliases are shared configuration (G-S1): each is one replicated entry
(`conference_alias:<name>`), written with the configuration log and handed to
replication. Page and API go through the same actions, so both refuse alike:
every bad field named by its label (bad regex, a conference name using a group
the regex lacks, a duplicate name, a priority out of range, a conference template
that does not exist), nothing saved. *Conference template* is optional (aliases
stored before templates existed name none).

API (`/api/v1/conference/aliases`): GET lists them in decision order, POST
creates one, GET / PUT / DELETE `/{name}` read, change (any subset of the
fields; `name` renames) or delete one. JSON types are strict: `priority` a
number, `may_create` a boolean. Pages: the list (with Delete buttons),
`/conference/aliases/new` and `/conference/aliases/edit/{name}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
from aiohttp import web

from netsim.websession import api_error, get_session
from peers.core.conference_config import conference_config_of
from peers.core.policy import (
    ALIAS_DEFAULTS,
    ALIAS_FIELDS,
    ALIAS_PREFIX,
    ConferenceAlias,
    Role,
    validate_alias,
)
from peers.core.settings import SettingErrors
from peers.web.api import errors_body, read_json_object, strict_query
from peers.web.keys import NODE, USER
from peers.web.views import page_context

if TYPE_CHECKING:
    from peers.node import PeerNode

LIST_PATH = "/conference/aliases"
API_PATH = "/api/v1/conference/aliases"
#: pages never echo a name from the URL in a reason phrase (it must be a safe header)
NOT_FOUND = "There is no such conference alias"
ROLE_TEXT = {Role.CHAIRPERSON.value: "Chairperson", Role.GUEST.value: "Guest"}


class AliasNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no conference alias named {name!r}")


# ------------------------------------------------------------------ actions
def alias_names(node: PeerNode) -> set[str]:
    """Names of every stored alias (also any the decisions skip as invalid)."""
    return {
        entry.key[len(ALIAS_PREFIX) :]
        for entry in node.store.shared_entries()
        if entry.key.startswith(ALIAS_PREFIX) and not entry.deleted
    }


def find_alias(node: PeerNode, name: str) -> ConferenceAlias:
    for alias in node.policy.aliases():
        if alias.name == name:
            return alias
    raise AliasNotFound(name)


def template_names(node: PeerNode) -> list[str]:
    """The conference templates an alias may name."""
    return sorted(conference_config_of(node.store).conference_templates, key=str.casefold)


def create_alias(
    node: PeerNode, values: Mapping[str, Any], *, user: str, strict_types: bool
) -> ConferenceAlias:
    alias = validate_alias(
        values,
        others=alias_names(node),
        strict_types=strict_types,
        templates=template_names(node),
    )
    node.publish(node.store.write_shared({alias.key: alias.to_json()}, user=user))
    return alias


def update_alias(
    node: PeerNode, name: str, changes: Mapping[str, Any], *, user: str, strict_types: bool
) -> ConferenceAlias:
    """Changes some fields of alias `name`; a new `name` renames it (one transaction)."""
    current = find_alias(node, name)
    merged = {**current.to_json(), **changes}
    alias = validate_alias(
        merged,
        others=alias_names(node) - {name},
        strict_types=strict_types,
        templates=template_names(node),
    )
    deletes = [current.key] if alias.key != current.key else []
    node.publish(node.store.write_shared({alias.key: alias.to_json()}, deletes, user=user))
    return alias


def delete_alias(node: PeerNode, name: str, *, user: str) -> None:
    if name not in alias_names(node):
        raise AliasNotFound(name)
    node.publish(node.store.write_shared({}, [ALIAS_PREFIX + name], user=user))


# ------------------------------------------------------------------ pages
def _form_fields(
    values: Mapping[str, Any], errors: Mapping[str, str], templates: list[str]
) -> list[dict[str, Any]]:
    kinds = {"role": "choice", "may_create": "choice", "template": "choice"}
    choices = {
        "role": [(value, text) for value, text in ROLE_TEXT.items()],
        "may_create": [("yes", "Yes"), ("no", "No")],
        "template": [("", "(none)")] + [(name, name) for name in templates],
    }
    helps = {
        "incoming_alias": "A regular expression matching the whole destination alias "
        "(case-insensitive, without sip:), e.g. meet\\.(.*)@example\\.com",
        "conference_name": "Built from the regex's groups: \\1 to \\9, e.g. meeting-\\1",
        "priority": "1 to 65534; aliases are tried lowest first",
        "template": "Where conferences of this alias are placed (Conference templates)",
    }
    fields = []
    for name, label in ALIAS_FIELDS.items():
        value = values.get(name, "")
        if name == "may_create" and isinstance(value, bool):
            value = "yes" if value else "no"
        fields.append(
            {
                "name": name,
                "id": "alias-" + name.replace("_", "-"),
                "label": label,
                "kind": kinds.get(name, "text"),
                "choices": choices.get(name, []),
                "help": helps.get(name, ""),
                "value": str(value),
                "error": errors.get(name, ""),
            }
        )
    return fields


async def _flash_to_list(request: web.Request, banner: str) -> web.StreamResponse:
    session = await get_session(request)
    session["flash"] = banner
    raise web.HTTPSeeOther(LIST_PATH)


async def aliases_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    aliases = [
        {**alias.to_json(), "role_text": ROLE_TEXT[alias.role.value]}
        for alias in node.policy.aliases()
    ]
    context = await page_context(request, "Conference aliases", aliases=aliases)
    return aiohttp_jinja2.render_template("aliases.html", request, context)


async def _alias_form(
    request: web.Request, name: str | None, defaults: Mapping[str, Any]
) -> web.StreamResponse:
    node = request.app[NODE]
    values: dict[str, Any] = dict(defaults)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.post()
        values = {field: str(form.get(field, "")) for field in ALIAS_FIELDS}
        try:
            if name is None:
                alias = create_alias(node, values, user=request[USER], strict_types=False)
                banner = f"Saved: Conference alias {alias.name} added."
            else:
                alias = update_alias(node, name, values, user=request[USER], strict_types=False)
                banner = f"Saved: Conference alias {alias.name} saved."
        except SettingErrors as exc:
            errors = exc.by_key()
            status = 400
        except AliasNotFound as exc:  # deleted meanwhile (here or on another peer)
            raise web.HTTPNotFound(reason=NOT_FOUND + "; nothing was saved.") from exc
        else:
            return await _flash_to_list(request, banner)
    title = "Add conference alias" if name is None else "Edit conference alias"
    context = await page_context(
        request,
        title,
        fields=_form_fields(values, errors, template_names(node)),
        errors=errors,
        creating=name is None,
        action=request.raw_path,
    )
    return aiohttp_jinja2.render_template("alias_form.html", request, context, status=status)


async def new_alias_page(request: web.Request) -> web.StreamResponse:
    return await _alias_form(request, None, ALIAS_DEFAULTS)


async def edit_alias_page(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    try:
        current = find_alias(request.app[NODE], name)
    except AliasNotFound as exc:
        raise web.HTTPNotFound(reason=NOT_FOUND + ".") from exc
    return await _alias_form(request, name, current.to_json())


async def delete_alias_page(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", ""))
    try:
        delete_alias(request.app[NODE], name, user=request[USER])
    except AliasNotFound as exc:
        raise web.HTTPNotFound(reason=NOT_FOUND + "; nothing was deleted.") from exc
    return await _flash_to_list(request, f"Saved: Conference alias {name} deleted.")


# ------------------------------------------------------------------ JSON API
def _unknown_fields(body: Mapping[str, Any]) -> web.Response | None:
    unknown = sorted(set(body) - set(ALIAS_FIELDS))
    if not unknown:
        return None
    return api_error(
        400,
        f"nothing was saved: unknown field(s) {', '.join(unknown)}; "
        f"known: {', '.join(ALIAS_FIELDS)}",
    )


async def api_list(request: web.Request) -> web.Response:
    aliases = request.app[NODE].policy.aliases()
    return web.json_response({"aliases": [alias.to_json() for alias in aliases]})


async def api_create(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    refusal = _unknown_fields(body)
    if refusal is not None:
        return refusal
    try:
        alias = create_alias(request.app[NODE], body, user=request[USER], strict_types=True)
    except SettingErrors as exc:
        return web.json_response(errors_body(exc), status=400)
    return web.json_response({"saved": alias.to_json()}, status=201)


def _not_found(exc: AliasNotFound) -> web.Response:
    return api_error(404, str(exc))


async def api_get(request: web.Request) -> web.Response:
    try:
        alias = find_alias(request.app[NODE], request.match_info["name"])
    except AliasNotFound as exc:
        return _not_found(exc)
    return web.json_response(alias.to_json())


async def api_update(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = await read_json_object(request)
    refusal = _unknown_fields(body)
    if refusal is not None:
        return refusal
    if not body:
        return api_error(400, "nothing to change: give at least one field")
    try:
        alias = update_alias(request.app[NODE], name, body, user=request[USER], strict_types=True)
    except AliasNotFound as exc:
        return _not_found(exc)
    except SettingErrors as exc:
        return web.json_response(errors_body(exc), status=400)
    return web.json_response({"saved": alias.to_json()})


async def api_delete(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        delete_alias(request.app[NODE], name, user=request[USER])
    except AliasNotFound as exc:
        return _not_found(exc)
    return web.json_response({"deleted": name})


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get(LIST_PATH, aliases_page)
    router.add_get(LIST_PATH + "/new", new_alias_page)
    router.add_post(LIST_PATH + "/new", new_alias_page)
    router.add_get(LIST_PATH + "/edit/{name}", edit_alias_page)
    router.add_post(LIST_PATH + "/edit/{name}", edit_alias_page)
    router.add_post(LIST_PATH + "/delete", delete_alias_page)
    router.add_get(API_PATH, strict_query(api_list))
    router.add_post(API_PATH, strict_query(api_create))
    one = API_PATH + "/{name}"
    router.add_get(one, strict_query(api_get))
    router.add_put(one, strict_query(api_update))
    router.add_delete(one, strict_query(api_delete))
