"""The VCS's JSON API under /api/v1 (HTTP Basic, admin account): one twin per page.

Every refusal is 4xx with `{"error": ..., "fields": {name: "Label: message"}}` and
nothing stored; unknown names answer 404.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from netsim.websession import api_error, media_type
from vcs_policy.core.config import ConfigErrors
from vcs_policy.node import LoadError
from vcs_policy.web import actions
from vcs_policy.web.keys import NODE, USER

MAX_JSON_BYTES = 1024 * 1024
LOG_LIMIT_MAX = 1000


def errors_answer(exc: ConfigErrors, status: int = 400) -> web.Response:
    return web.json_response(
        {"error": "nothing was saved: " + str(exc), "fields": exc.fields()}, status=status
    )


async def json_body(request: web.Request) -> dict[str, Any]:
    if media_type(request) != "application/json":
        raise web.HTTPUnsupportedMediaType(
            reason="send a JSON object (Content-Type: application/json)"
        )
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(reason=f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="the body must be a JSON object")
    return body


def _name(request: web.Request) -> str:
    return request.match_info["name"]


def _not_found(kind: str, name: str) -> web.Response:
    return api_error(404, f"no {kind} named {name[:80]!r}")


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[NODE].status())


async def policy_status(request: web.Request) -> web.Response:
    return web.json_response({"policy_services": request.app[NODE].policy_status()})


# ------------------------------------------------------------ policy services
async def list_services(request: web.Request) -> web.Response:
    services = request.app[NODE].store.services()
    return web.json_response({"policy_services": [s.to_dict(secrets=False) for s in services]})


async def get_service(request: web.Request) -> web.Response:
    service = request.app[NODE].store.service(_name(request))
    if service is None:
        return _not_found("policy service", _name(request))
    return web.json_response(service.to_dict(secrets=False))


async def create_service(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        service = await actions.save_service(request.app[NODE], body, user=request[USER])
    except ConfigErrors as exc:
        return errors_answer(exc)
    return web.json_response(service.to_dict(secrets=False), status=201)


async def put_service(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        service = await actions.save_service(
            request.app[NODE], body, user=request[USER], replace=_name(request)
        )
    except KeyError:
        return _not_found("policy service", _name(request))
    except ConfigErrors as exc:
        return errors_answer(exc)
    return web.json_response(service.to_dict(secrets=False))


async def delete_service(request: web.Request) -> web.Response:
    try:
        await actions.delete_service(request.app[NODE], _name(request), user=request[USER])
    except KeyError:
        return _not_found("policy service", _name(request))
    except ConfigErrors as exc:
        return errors_answer(exc, status=409)
    return web.json_response({"deleted": _name(request)})


# ---------------------------------------------------------------- search rules
async def list_rules(request: web.Request) -> web.Response:
    rules = request.app[NODE].store.rules()
    return web.json_response({"search_rules": [r.to_dict() for r in rules]})


async def get_rule(request: web.Request) -> web.Response:
    rule = next((r for r in request.app[NODE].store.rules() if r.name == _name(request)), None)
    if rule is None:
        return _not_found("search rule", _name(request))
    return web.json_response(rule.to_dict())


async def create_rule(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        rule = actions.save_rule(request.app[NODE], body, user=request[USER])
    except ConfigErrors as exc:
        return errors_answer(exc)
    return web.json_response(rule.to_dict(), status=201)


async def put_rule(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        rule = actions.save_rule(
            request.app[NODE], body, user=request[USER], replace=_name(request)
        )
    except KeyError:
        return _not_found("search rule", _name(request))
    except ConfigErrors as exc:
        return errors_answer(exc)
    return web.json_response(rule.to_dict())


async def delete_rule(request: web.Request) -> web.Response:
    try:
        actions.delete_rule(request.app[NODE], _name(request), user=request[USER])
    except KeyError:
        return _not_found("search rule", _name(request))
    return web.json_response({"deleted": _name(request)})


# ------------------------------------------------------- certificates, users
async def get_trusted(request: web.Request) -> web.Response:
    return web.json_response({"pem": request.app[NODE].store.trusted_cas()})


async def put_trusted(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        count = await actions.set_trusted_cas(
            request.app[NODE], body.get("pem"), user=request[USER]
        )
    except ConfigErrors as exc:
        return errors_answer(exc)
    return web.json_response({"certificates": count})


async def put_password(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        actions.change_password(
            request.app[NODE],
            body.get("new_password"),
            body.get("confirm_password"),
            user=request[USER],
        )
    except ConfigErrors as exc:
        return errors_answer(exc)
    return web.json_response({"changed": "admin"})


async def events(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "200"))
    except ValueError:
        return api_error(400, "limit must be a whole number")
    if not 1 <= limit <= LOG_LIMIT_MAX:
        return api_error(400, f"limit must be 1-{LOG_LIMIT_MAX}")
    return web.json_response({"events": request.app[NODE].store.events(limit)})


# ----------------------------------------------------------------------- calls
async def place_call(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        source, destination, protocol = actions.check_call(
            body.get("source", "endpoint@example.com"),
            body.get("destination"),
            body.get("protocol", "SIP"),
        )
    except ConfigErrors as exc:
        return errors_answer(exc)
    result = await request.app[NODE].place_call(source, destination, protocol)
    return web.json_response(result.to_dict())


async def calls(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return web.json_response(
        {
            "stats": node.stats.summary(),
            "recent": [r.to_dict() for r in reversed(node.stats.recent)],
        }
    )


async def hang_up(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    if not await request.app[NODE].hang_up(call_id):
        return api_error(404, f"no connected call {call_id[:64]!r} to hang up")
    return web.json_response({"hung_up": call_id})


async def start_load(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        load = request.app[NODE].start_load(
            rate=body.get("rate"),
            duration_s=body.get("duration_s"),
            aliases=body.get("aliases"),
            source=body.get("source", "load@example.com"),
            protocol=body.get("protocol", "SIP"),
            hold_s=body.get("hold_s", 0),
        )
    except LoadError as exc:
        return api_error(400, str(exc))
    return web.json_response(load.to_dict(), status=202)


async def get_load(request: web.Request) -> web.Response:
    try:
        load = request.app[NODE].loads[int(request.match_info["load_id"])]
    except (KeyError, ValueError):
        return api_error(404, "no such load")
    return web.json_response(load.to_dict())


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/status", status)
    r.add_get("/api/v1/status/policy-services", policy_status)
    r.add_get("/api/v1/status/events", events)
    r.add_get("/api/v1/policy-services", list_services)
    r.add_post("/api/v1/policy-services", create_service)
    r.add_get("/api/v1/policy-services/{name}", get_service)
    r.add_put("/api/v1/policy-services/{name}", put_service)
    r.add_delete("/api/v1/policy-services/{name}", delete_service)
    r.add_get("/api/v1/search-rules", list_rules)
    r.add_post("/api/v1/search-rules", create_rule)
    r.add_get("/api/v1/search-rules/{name}", get_rule)
    r.add_put("/api/v1/search-rules/{name}", put_rule)
    r.add_delete("/api/v1/search-rules/{name}", delete_rule)
    r.add_get("/api/v1/maintenance/trusted-cas", get_trusted)
    r.add_put("/api/v1/maintenance/trusted-cas", put_trusted)
    r.add_put("/api/v1/users/admin/password", put_password)
    r.add_get("/api/v1/calls", calls)
    r.add_post("/api/v1/calls", place_call)
    r.add_delete("/api/v1/calls/{call_id}", hang_up)
    r.add_post("/api/v1/calls/load", start_load)
    r.add_get("/api/v1/calls/load/{load_id}", get_load)
