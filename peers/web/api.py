"""The JSON API: one twin per page, same validation, same errors, and its OpenAPI document.

Field names are the setting keys without their page prefix
(`PUT /api/v1/system/dns {"host_name": "x032"}`). Secrets (the cluster
pre-shared key) are write-only: GET answers `<field>_set` instead of the value.

Every refusal is 400 with `{"error": ..., "fields": {name: "Label: message"}}`
and nothing stored. JSON types are checked against what `openapi.py` documents
before the registry's validators run, so the document is exact for every field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from netsim.websession import api_error
from peers.core.settings import SETTINGS, Setting, SettingError, SettingErrors, page_settings
from peers.status import overview, page_status
from peers.store import USERS
from peers.web.actions import (
    PASSWORD_FIELDS,
    certificate_details,
    change_password,
    regenerate_certificates,
    save_settings,
)
from peers.web.keys import NODE, SERVED_CERT, USER
from peers.web.views import SETTINGS_PAGES, SettingsPage

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: JSON types the API takes per field kind (openapi.py documents exactly these)
KIND_TYPES: dict[str, tuple[type, ...]] = {
    "text": (str,),
    "multiline": (str,),
    "password": (str,),
    "choice": (str,),
    "list": (list, str),
    "int": (int, str),
    "bool": (bool, str),
}
KIND_TYPE_ERRORS = {
    "text": "must be text (a JSON string)",
    "multiline": "must be text (a JSON string)",
    "password": "must be text (a JSON string)",
    "choice": "must be a JSON string",
    "list": "must be a list of JSON strings, or one string with entries separated by commas",
    "int": "must be a whole number",
    "bool": "must be true or false",
}
LOG_LIMIT_MAX = 1000
LOG_LIMIT_DEFAULT = 200


def api_name(setting: Setting) -> str:
    return setting.key.split(".", 1)[1]


def page_values(values: dict[str, Any], page: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for setting in page_settings(page):
        if setting.secret:
            out[f"{api_name(setting)}_set"] = bool(values[setting.key])
        else:
            out[api_name(setting)] = values[setting.key]
    return out


def errors_body(exc: SettingErrors) -> dict[str, Any]:
    return {
        "error": "nothing was saved: " + "; ".join(str(e) for e in exc.errors),
        "fields": {
            (e.key.split(".", 1)[1] if e.key in SETTINGS else e.key): f"{e.label}: {e.message}"
            for e in exc.errors
        },
    }


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _bad_request(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _bad_request("request body must be a JSON object")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def check_types(settings: dict[str, Setting], body: dict[str, Any]) -> None:
    """JSON types per field kind; every wrong one reported, by its page label."""
    errors = []
    for name, value in body.items():
        setting = settings[name]
        ok = isinstance(value, KIND_TYPES[setting.kind])
        if setting.kind == "int" and isinstance(value, bool):
            ok = False
        if setting.kind == "list" and isinstance(value, list):
            ok = all(isinstance(item, str) for item in value)
        if not ok:
            errors.append(SettingError(setting.key, setting.label, KIND_TYPE_ERRORS[setting.kind]))
    if errors:
        raise SettingErrors(errors)


def settings_get_handler(spec: SettingsPage) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        node = request.app[NODE]
        pending = node.store.pending()
        return web.json_response(
            {
                "settings": page_values(node.store.settings(), spec.page),
                "pending": {
                    api_name(SETTINGS[k]): ("(set)" if SETTINGS[k].secret and v else v)
                    for k, v in pending.items()
                    if k in SETTINGS and SETTINGS[k].page == spec.page
                },
                "restart_required": bool(pending),
                "status": page_status(node, spec.page),
            }
        )

    return handler


def settings_put_handler(spec: SettingsPage) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        node = request.app[NODE]
        body = await read_json_object(request)
        known = {api_name(s): s for s in page_settings(spec.page)}
        unknown = sorted(set(body) - set(known))
        if unknown:
            return api_error(
                400,
                f"nothing was saved: unknown field(s) {', '.join(unknown)} for {spec.title}; "
                f"known: {', '.join(sorted(known))}",
            )
        if not body:
            return api_error(400, "nothing to change: give at least one field")
        try:
            check_types(known, body)
            changes = {known[name].key: value for name, value in body.items()}
            outcome = save_settings(node, changes, user=request[USER])
        except SettingErrors as exc:
            return web.json_response(errors_body(exc), status=400)
        return web.json_response(
            {
                "saved": {api_name(SETTINGS[k]): v for k, v in outcome.applied.items()},
                "pending": sorted(api_name(SETTINGS[k]) for k in outcome.pending),
                "restart_required": bool(node.store.pending()),
            }
        )

    return handler


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(overview(request.app[NODE]))


def log_limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return LOG_LIMIT_DEFAULT
    if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= LOG_LIMIT_MAX:
        raise _bad_request(f"limit must be a whole number from 1 to {LOG_LIMIT_MAX}")
    return int(raw)


async def get_events(request: web.Request) -> web.Response:
    return web.json_response({"events": request.app[NODE].store.events(log_limit(request))})


async def get_config_log(request: web.Request) -> web.Response:
    return web.json_response({"entries": request.app[NODE].store.config_log(log_limit(request))})


async def post_restart(request: web.Request) -> web.Response:
    request.app[NODE].request_restart(user=request[USER])
    return web.json_response({"restarting": True}, status=202)


async def get_alarms(request: web.Request) -> web.Response:
    alarms = request.app[NODE].store.alarms()
    return web.json_response(
        {
            "alarms": [
                {
                    "id": a.code,
                    "subject": a.subject,
                    "title": a.title,
                    "severity": a.severity,
                    "description": a.detail,
                    "action": a.action,
                    "raised": a.raised,
                }
                for a in alarms
            ]
        }
    )


async def get_certificates(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return web.json_response(certificate_details(node, request.app[SERVED_CERT]))


async def post_regenerate_certificates(request: web.Request) -> web.Response:
    node = request.app[NODE]
    regenerate_certificates(node, user=request[USER])
    return web.json_response(certificate_details(node, request.app[SERVED_CERT]))


async def get_users(request: web.Request) -> web.Response:
    defaults = set(request.app[NODE].store.default_passwords())
    return web.json_response(
        {
            "users": [
                {"name": name, "scope": scope.value, "default_password": name in defaults}
                for name, scope in USERS.items()
            ]
        }
    )


def password_handler(account: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        node = request.app[NODE]
        body = await read_json_object(request)
        unknown = sorted(set(body) - set(PASSWORD_FIELDS))
        if unknown:
            return api_error(
                400,
                f"nothing was changed: unknown field(s) {', '.join(unknown)}; "
                f"known: {', '.join(PASSWORD_FIELDS)}",
            )
        missing = [
            SettingError(name, label, "is required")
            for name, label in PASSWORD_FIELDS.items()
            if name not in body
        ]
        try:
            if missing:
                raise SettingErrors(missing)
            change_password(
                node,
                account,
                body["new_password"],
                body["confirm_password"],
                user=request[USER],
            )
        except SettingErrors as exc:
            return web.json_response(errors_body(exc), status=400)
        return web.json_response({"changed": account, "default_password": False})

    return handler


async def get_openapi(request: web.Request) -> web.Response:
    from peers.web.openapi import document

    return web.json_response(document())


def strict_query(handler: Handler, *allowed: str) -> Handler:
    """Unknown query parameters are refused like unknown body fields (nothing done)."""

    async def checked(request: web.Request) -> web.StreamResponse:
        unknown = sorted(set(request.query) - set(allowed))
        if unknown:
            known = ", ".join(allowed) or "none"
            raise _bad_request(
                f"unknown query parameter(s) {', '.join(map(repr, unknown))}; known: {known}"
            )
        return await handler(request)

    return checked


def add_routes(app: web.Application) -> None:
    router = app.router
    for spec in SETTINGS_PAGES.values():
        router.add_get(spec.api_path, strict_query(settings_get_handler(spec)))
        router.add_put(spec.api_path, strict_query(settings_put_handler(spec)))
    router.add_get("/api/v1/status", strict_query(get_status))
    router.add_get("/api/v1/status/alarms", strict_query(get_alarms))
    router.add_get("/api/v1/status/events", strict_query(get_events, "limit"))
    router.add_get("/api/v1/status/config-log", strict_query(get_config_log, "limit"))
    router.add_post("/api/v1/maintenance/restart", strict_query(post_restart))
    router.add_get("/api/v1/maintenance/certificates", strict_query(get_certificates))
    router.add_post(
        "/api/v1/maintenance/certificates/regenerate", strict_query(post_regenerate_certificates)
    )
    router.add_get("/api/v1/users", strict_query(get_users))
    for account in USERS:
        router.add_put(f"/api/v1/users/{account}/password", strict_query(password_handler(account)))
    router.add_get("/api/v1/openapi.json", get_openapi)
