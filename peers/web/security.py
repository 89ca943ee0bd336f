"""Login sessions, CSRF tokens, HTTP Basic for the API, and error answers.

Sessions use aiohttp_session's `EncryptedCookieStorage` and `Session`, with
this module's own middleware and `get_session` / `new_session`: the library's
keep their state under plain string request keys, which aiohttp 3.14 warns
about (`NotAppKeyWarning`); typed `web.RequestKey`s here avoid that.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import AbstractStorage, Session

from peers.web.keys import NODE, USER

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = ("/login", "/static/", "/api/v1/openapi.json")
CSRF_FIELD = "csrf_token"


_STORAGE: web.RequestKey[AbstractStorage] = web.RequestKey("session_storage")
#: the request's session and its contents as loaded (saved only when they change)
_SESSION: web.RequestKey[tuple[Session, dict[str, Any] | None]] = web.RequestKey("session")


def session_middleware(storage: AbstractStorage) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[_STORAGE] = storage
        response: web.StreamResponse | web.HTTPException
        raised = False
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response, raised = exc, True
        loaded = request.get(_SESSION)
        if loaded is not None and isinstance(response, web.Response | web.HTTPException):
            session, before = loaded
            if before is None or dict(session) != before:
                await storage.save_session(request, response, session)
        if raised:
            assert isinstance(response, web.HTTPException)
            raise response
        return response

    return middleware


async def get_session(request: web.Request) -> Session:
    loaded = request.get(_SESSION)
    if loaded is None:
        session = await request[_STORAGE].load_session(request)
        request[_SESSION] = loaded = (session, dict(session))
    return loaded[0]


async def new_session(request: web.Request) -> Session:
    session = await request[_STORAGE].new_session()
    request[_SESSION] = (session, None)
    return session


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def api_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


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


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def check_login(request: web.Request, user: str, password: str, *, via: str) -> bool:
    """Admin login (pages and API). Failures are written to the event log."""
    node = request.app[NODE]
    ok = user == "admin" and node.store.verify_password(user, password)
    if not ok:
        node.store.log_event(
            "login_failed", level="warning", user=user[:64], source=request.remote or "", via=via
        )
    return ok


async def csrf_token(session: Session) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(PUBLIC_PATHS):
        return await handler(request)
    if is_api(request):
        credentials = basic_credentials(request)
        if credentials is None or not check_login(request, *credentials, via="api"):
            response = api_error(401, "authentication required: HTTP Basic with the admin account")
            response.headers["WWW-Authenticate"] = 'Basic realm="tplab"'
            return response
        request[USER] = credentials[0]
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
    if request.method == "POST":
        form = await request.post()
        expected = session.get("csrf")
        given = form.get(CSRF_FIELD)
        if (
            not isinstance(expected, str)
            or not isinstance(given, str)
            or not hmac.compare_digest(expected, given)
        ):
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
