"""The JSON API: one twin per page, same validation, same errors, and its OpenAPI document.

Field names are the setting keys without their page prefix
(`PUT /api/v1/system/dns {"host_name": "x032"}`). Secrets (the cluster
pre-shared key) are write-only: GET answers `<field>_set` instead of the value.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from peers.core.settings import SETTINGS, Setting, SettingErrors, page_settings
from peers.web.keys import NODE
from peers.web.security import api_error
from peers.web.views import SETTINGS_PAGES


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


async def read_json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=lambda s: json.loads(s, parse_constant=_no_constant))
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"request body is not valid JSON: {exc}"}),
            content_type="application/json",
        ) from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "request body must be a JSON object"}),
            content_type="application/json",
        )
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


async def get_settings_page(request: web.Request) -> web.Response:
    node = request.app[NODE]
    page = SETTINGS_PAGES[request.match_info["page"]][0]
    from peers.status import page_status

    pending = node.store.pending()
    return web.json_response(
        {
            "settings": page_values(node.store.settings(), page),
            "pending": {
                api_name(SETTINGS[k]): ("(set)" if SETTINGS[k].secret and v else v)
                for k, v in pending.items()
                if SETTINGS[k].page == page
            },
            "restart_required": bool(pending),
            "status": page_status(node, page),
        }
    )


async def put_settings_page(request: web.Request) -> web.Response:
    from peers.rules import check_changes

    node = request.app[NODE]
    page = SETTINGS_PAGES[request.match_info["page"]][0]
    body = await read_json_object(request)
    known = {api_name(s): s.key for s in page_settings(page)}
    unknown = sorted(set(body) - set(known))
    if unknown:
        return api_error(
            400,
            f"unknown field(s) {', '.join(unknown)} for {page}; known: {', '.join(sorted(known))}",
        )
    if not body:
        return api_error(400, "nothing to change: give at least one field")
    changes = {known[name]: value for name, value in body.items()}
    try:
        check_changes(node, changes)
        outcome = node.store.save(changes, user=request["user"])
    except SettingErrors as exc:
        return web.json_response(errors_body(exc), status=400)
    node.refresh_alarms()
    return web.json_response(
        {
            "saved": {api_name(SETTINGS[k]): v for k, v in outcome.applied.items()},
            "pending": sorted(api_name(SETTINGS[k]) for k in outcome.pending),
            "restart_required": bool(node.store.pending()),
        }
    )


async def post_restart(request: web.Request) -> web.Response:
    request.app[NODE].request_restart(user=request["user"])
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


async def get_openapi(request: web.Request) -> web.Response:
    from peers.web.openapi import document

    return web.json_response(document())


def add_routes(app: web.Application) -> None:
    pages = "|".join(SETTINGS_PAGES)
    app.router.add_get(r"/api/v1/system/{page:" + pages + "}", get_settings_page)
    app.router.add_put(r"/api/v1/system/{page:" + pages + "}", put_settings_page)
    app.router.add_post("/api/v1/maintenance/restart", post_restart)
    app.router.add_get("/api/v1/status/alarms", get_alarms)
    app.router.add_get("/api/v1/openapi.json", get_openapi)
