"""Building blocks every node's admin web server shares: typed-key cookie
sessions, CSRF tokens, HTTP Basic parsing, JSON error answers.

Sessions use aiohttp_session's storages (e.g. `EncryptedCookieStorage`) and
`Session`, with this module's own middleware and `get_session` /
`new_session`: the library's keep their state under plain string request keys,
which aiohttp 3.14 warns about (`NotAppKeyWarning`); typed `web.RequestKey`s
here avoid that.

Nothing here knows a node: who may log in, what is logged and how error pages
look stay with each node's `web` package.
"""

from __future__ import annotations

import base64
import binascii
import email.errors
import hmac
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import AbstractStorage, Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: name of the hidden form field that carries the CSRF token
CSRF_FIELD = "csrf_token"
#: where the CSRF token lives in the session
_CSRF_KEY = "csrf"

_STORAGE: web.RequestKey[AbstractStorage] = web.RequestKey("session_storage")
#: the request's session and its contents as loaded (saved only when they change)
_SESSION: web.RequestKey[tuple[Session, dict[str, Any] | None]] = web.RequestKey("session")


def session_middleware(storage: AbstractStorage) -> Any:
    """Makes `storage` available to `get_session` / `new_session` and saves the
    session after the handler, only if it is new or its contents changed."""

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
    """The request's session, loaded from its cookie on first use."""
    loaded = request.get(_SESSION)
    if loaded is None:
        session = await request[_STORAGE].load_session(request)
        request[_SESSION] = loaded = (session, dict(session))
    return loaded[0]


async def new_session(request: web.Request) -> Session:
    """A fresh, empty session replacing the request's (e.g. after a login)."""
    session = await request[_STORAGE].new_session()
    request[_SESSION] = (session, None)
    return session


async def csrf_token(session: Session) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(_CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[_CSRF_KEY] = token
    return token


async def check_csrf(request: web.Request, session: Session) -> bool:
    """Whether the posted form's `CSRF_FIELD` matches the session's token
    (constant-time comparison). False when either is missing."""
    form = await request.post()
    expected = session.get(_CSRF_KEY)
    given = form.get(CSRF_FIELD)
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and hmac.compare_digest(expected, given)
    )


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(user, password) from an HTTP Basic `Authorization` header, or None if
    the header is absent, of another scheme or malformed."""
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


def is_api(request: web.Request) -> bool:
    """Whether the request is for the JSON API (under /api/)."""
    return request.path.startswith("/api/")


def api_error(status: int, message: str, **extra: Any) -> web.Response:
    """A JSON error answer: {"error": message, **extra}."""
    return web.json_response({"error": message, **extra}, status=status)


def setup_admin_pages(
    app: web.Application,
    *,
    cookie_secret: bytes,
    cookie_name: str,
    auth: Any,
    templates: Path,
    menu: Any,
) -> None:
    """What every node's admin pages need: encrypted cookie sessions (secure, HTTP
    only, same-site strict), then the node's `auth` middleware, then Jinja2 templates
    (autoescaped, strict about undefined names) with the node's menu."""
    app.middlewares.append(
        session_middleware(
            EncryptedCookieStorage(
                cookie_secret, cookie_name=cookie_name, secure=True, httponly=True,
                samesite="Strict",
            )
        )
    )  # fmt: skip
    app.middlewares.append(auth)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(templates),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["menu"] = menu


class AdminAccounts(Protocol):
    """What a node's store offers the login: a password check and the event log."""

    def verify_password(self, name: str, password: str) -> bool: ...

    def log_event(self, event_name: str, *, level: str = "info", **detail: Any) -> None: ...


def check_admin_login(
    accounts: AdminAccounts, request: web.Request, user: str, password: str, *, via: str
) -> bool:
    """The admin account's login (pages and API); a failure goes to the event log."""
    ok = user == "admin" and accounts.verify_password(user, password)
    if not ok:
        accounts.log_event(
            "login_failed", level="warning", user=user[:64], source=request.remote or "", via=via
        )
    return ok


def basic_login(accounts: AdminAccounts, request: web.Request, realm: str) -> str | web.Response:
    """The JSON API's HTTP Basic login: the user, or the 401 answer to send."""
    credentials = basic_credentials(request)
    if credentials is None or not check_admin_login(accounts, request, *credentials, via="api"):
        response = api_error(401, "authentication required: HTTP Basic with the admin account")
        response.headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
        return response
    return credentials[0]


def media_type(request: web.Request) -> str:
    """The request's Content-Type without its parameters, lower-case; "" when it has
    none or cannot be parsed (aiohttp's parser raises on some malformed parameters,
    e.g. `a/b; x` with a stray character: a client's bad header is not a server error)."""
    try:
        return request.content_type
    except (IndexError, ValueError, email.errors.MessageError):
        return ""


@web.middleware
async def refuse_malformed_content_type(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """400 for a request whose Content-Type header is there but cannot be parsed: every
    form and JSON handler reads it, and aiohttp's parser raises on some malformed values
    (which would otherwise surface as a 500)."""
    if request.headers.get("Content-Type", "").strip() and not media_type(request):
        return web.json_response({"error": "the Content-Type header cannot be parsed"}, status=400)
    return await handler(request)


async def read_at_most(request: web.Request, limit_bytes: int) -> bytes:
    """At most `limit_bytes` + 1 bytes of the body: enough to tell that it is too large
    without reading all of it (whatever Content-Length says or omits)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit_bytes:
        chunk = await request.content.read(limit_bytes + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def read_limited(request: web.Request, limit_bytes: int) -> bytes | None:
    """The request body, or None when it is larger than `limit_bytes` (read no further
    than one byte past the limit, whatever Content-Length says or omits)."""
    if request.content_length is not None and request.content_length > limit_bytes:
        return None
    body = await read_at_most(request, limit_bytes)
    return None if len(body) > limit_bytes else body
