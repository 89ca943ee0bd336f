"""The VCS's login: cookie sessions with CSRF tokens for pages, HTTP Basic for the
JSON API (`netsim.websession`), failed logins in the event log, error answers."""

from __future__ import annotations

import logging

from aiohttp import web

from netsim.websession import (
    Handler,
    api_error,
    basic_login,
    check_admin_login,
    check_csrf,
    get_session,
    is_api,
)
from vcs_policy.web.keys import NODE, USER

log = logging.getLogger(__name__)
PUBLIC_PATHS = ("/login", "/static/", "/api/v1/openapi.json")
SESSION_TIMEOUT_S = 30 * 60


def check_login(request: web.Request, user: str, password: str, *, via: str) -> bool:
    return check_admin_login(request.app[NODE].store, request, user, password, via=via)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure answers with a clear message: JSON under /api/, text elsewhere."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not is_api(request) or exc.content_type == "application/json":
            raise
        return api_error(exc.status, exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api(request):
            return api_error(500, "internal error; see the event log")
        return web.Response(status=500, text="Internal error")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(PUBLIC_PATHS):
        return await handler(request)
    if is_api(request):
        login = basic_login(request.app[NODE].store, request, "tplab VCS")
        if isinstance(login, web.Response):
            return login
        request[USER] = login
        return await handler(request)
    session = await get_session(request)
    user = session.get("user")
    now = request.app[NODE].runtime.clock.monotonic()
    last = session.get("seen")
    if (
        not isinstance(user, str)
        or not isinstance(last, int | float)
        or now - last > SESSION_TIMEOUT_S
    ):
        session.invalidate()
        raise web.HTTPSeeOther(f"/login?next={request.path_qs}")
    session["seen"] = now
    request[USER] = user
    if request.method == "POST" and not await check_csrf(request, session):
        request.app[NODE].store.log_event(
            "csrf_rejected", level="warning", path=request.path, source=request.remote or ""
        )
        return web.Response(
            status=403,
            text="The security token of this form is missing or out of date; nothing was "
            "saved. Reload the page and try again.",
        )
    return await handler(request)
