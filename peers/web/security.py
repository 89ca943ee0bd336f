"""The peer's login checks and error answers, on the shared building blocks of
`netsim.websession` (cookie sessions, CSRF tokens, HTTP Basic, JSON errors).

Pages need a login session that expires after the configured idle time, and
every form POST its CSRF token; the JSON API needs HTTP Basic with the admin
account. Failed logins and rejected forms are written to the event log.
"""

from __future__ import annotations

import logging

import aiohttp_jinja2
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
from peers.web.keys import NODE, USER

log = logging.getLogger(__name__)

PUBLIC_PATHS = ("/login", "/static/", "/api/v1/openapi.json")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure answers with a clear message: JSON under /api/, a page elsewhere."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not is_api(request):
            if exc.status >= 400 and exc.content_type != "text/html":
                return await error_page(request, exc.status, exc.reason)
            raise
        if exc.content_type == "application/json":
            raise
        return api_error(exc.status, exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api(request):
            return api_error(500, "internal error; see the event log")
        return await error_page(request, 500, "Internal error")


async def error_page(request: web.Request, status: int, message: str) -> web.Response:
    from peers.web import base_context

    context = await base_context(request)
    context.update(
        title=f"{status} {message}" if status != 403 else "403 Forbidden", message=message
    )
    return aiohttp_jinja2.render_template("error.html", request, context, status=status)


def check_login(request: web.Request, user: str, password: str, *, via: str) -> bool:
    """Admin login (pages and API). Failures are written to the event log."""
    return check_admin_login(request.app[NODE].store, request, user, password, via=via)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(PUBLIC_PATHS):
        return await handler(request)
    if is_api(request):
        login = basic_login(request.app[NODE].store, request, "tplab")
        if isinstance(login, web.Response):
            return login
        request[USER] = login
        return await handler(request)
    session = await get_session(request)
    user = session.get("user")
    node = request.app[NODE]
    timeout_s = 60 * int(node.store.get("administration.session_timeout_min"))
    now = node.runtime.clock.monotonic()
    last = session.get("seen")
    if not isinstance(user, str) or not isinstance(last, int | float) or now - last > timeout_s:
        session.invalidate()
        raise web.HTTPSeeOther(f"/login?next={request.path_qs}")
    session["seen"] = now
    request[USER] = user
    if request.method == "POST" and not await check_csrf(request, session):
        node.store.log_event(
            "csrf_rejected", level="warning", path=path, source=request.remote or ""
        )
        return await error_page(
            request,
            403,
            "The security token of this form is missing or out of date; nothing was saved. "
            "Reload the page and try again.",
        )
    return await handler(request)
