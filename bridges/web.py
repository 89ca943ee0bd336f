"""The bridge's HTTP faces (aiohttp): thin handlers over `BridgeNode`.

- Web listeners (HTTPS, and plain HTTP when enabled, G-R8): `POST /RPC2` (the
  XML-RPC API: always HTTP 200 with `text/xml`, a result or a `<fault>`, whatever
  the body - broken XML is fault 201, a body over 256 KiB fault 105; never a
  5xx), `GET /login` and `GET /` (a small HTML page; the lab supervisor probes
  /login), `GET`/`PUT /api/v1/drill` (HTTP Basic with the bridge's admin account).
- The signalling listener (plain HTTP, TCP 5060): `POST /calls`, `DELETE
  /calls/{call_id}`, `GET /calls` (see `bridges.wire.signalling`), and the drill
  API too, so a bridge whose web listeners are both switched off can be switched
  back on.
"""

from __future__ import annotations

import hmac
import html
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bridges.core import CallRefused
from bridges.wire import CONTENT_TYPE, MAX_BODY_BYTES, CallRequest, RemoteProtocolError
from bridges.wire.signalling import MAX_CALL_BODY_BYTES
from netsim.websession import api_error, basic_credentials, read_at_most

if TYPE_CHECKING:
    from bridges.node import BridgeNode

NODE: web.AppKey[BridgeNode] = web.AppKey("bridge_node")
LISTENER: web.AppKey[str] = web.AppKey("bridge_listener")
DRILL_FIELDS = ("full", "healthy", "http", "https")
#: reason phrases of the SIP-like statuses aiohttp does not know
REASONS = {486: "Busy Here"}
log = logging.getLogger("bridges")


# ------------------------------------------------------------------ XML-RPC
async def rpc(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = await read_at_most(request, MAX_BODY_BYTES)
    return web.Response(body=node.xmlrpc(body), content_type=CONTENT_TYPE)


async def login(request: web.Request) -> web.Response:
    """What the device's web interface says at its front door (the lab supervisor
    probes it to see that the bridge is up)."""
    node = request.app[NODE]
    title = html.escape(f"{node.core.model} - {node.runtime.host.name}")
    serial = html.escape(node.core.serial)
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body><main><h1>{title}</h1><p>Serial number {serial}, software "
        f"{html.escape(node.core.software_version)}.</p>"
        "<p>tplab emulates this bridge's XML-RPC API (POST /RPC2; every "
        "call carries authenticationUser and authenticationPassword); it has no web "
        "pages of its own.</p></main></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


# -------------------------------------------------------------------- drill
def _authorised(request: web.Request) -> bool:
    node = request.app[NODE]
    given = basic_credentials(request)
    if given is None:
        return False
    user, password = given
    user_ok = hmac.compare_digest(user.encode(), node.user.encode())
    password_ok = not node.password or hmac.compare_digest(password.encode(),
                                                            node.password.encode())  # fmt: skip
    return user_ok and password_ok


def _unauthorised() -> web.Response:
    response = api_error(401, "HTTP Basic credentials of the bridge's admin account needed")
    response.headers["WWW-Authenticate"] = 'Basic realm="bridge"'
    return response


async def get_drill(request: web.Request) -> web.Response:
    if not _authorised(request):
        return _unauthorised()
    return web.json_response(request.app[NODE].drill())


async def put_drill(request: web.Request) -> web.Response:
    if not _authorised(request):
        return _unauthorised()
    node = request.app[NODE]
    try:
        data = json.loads(await read_at_most(request, 4096))
    except ValueError:
        return api_error(400, "give a JSON object of " + ", ".join(DRILL_FIELDS))
    if not isinstance(data, dict) or not data:
        return api_error(400, "give a JSON object of " + ", ".join(DRILL_FIELDS))
    unknown = sorted(k for k in data if k not in DRILL_FIELDS)
    if unknown:
        return api_error(400, "unknown: " + ", ".join(unknown))
    wrong = sorted(k for k, v in data.items() if not isinstance(v, bool))
    if wrong:
        return api_error(400, "must be true or false: " + ", ".join(wrong))
    if data.get("http") and node.http_port is None:
        return api_error(400, "http: this bridge has no HTTP port")
    await node.set_drill(listener=request.app[LISTENER], **data)
    return web.json_response(node.drill())


# --------------------------------------------------------------- signalling
def _call_error(status: int, message: str, reason: str) -> web.Response:
    return web.json_response(
        {"error": message, "reason": reason}, status=status, reason=REASONS.get(status)
    )


async def post_call(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        call = CallRequest.decode(await read_at_most(request, MAX_CALL_BODY_BYTES))
    except RemoteProtocolError as exc:
        return _call_error(400, str(exc), exc.reason)
    try:
        answer = node.incoming_call(call)
    except CallRefused as exc:
        return _call_error(exc.status, exc.message, exc.reason)
    return web.json_response(answer.to_dict())


async def delete_call(request: web.Request) -> web.Response:
    try:
        answer = request.app[NODE].hang_up(request.match_info["call_id"])
    except CallRefused as exc:
        return _call_error(exc.status, exc.message, exc.reason)
    return web.json_response(answer.to_dict())


async def list_calls(request: web.Request) -> web.Response:
    return web.json_response({"calls": [a.to_dict() for a in request.app[NODE].active_calls()]})


# ---------------------------------------------------------------------- app
@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException:
        raise
    except Exception:  # a bug must not cost the client its answer
        log.exception("error serving %s %s", request.method, request.path)
        if request.path == "/RPC2":
            return web.Response(body=request.app[NODE].internal_fault(), content_type=CONTENT_TYPE)
        return api_error(500, "internal error")
    return response


def make_app(node: BridgeNode, listener: str) -> web.Application:
    """The app of one listener: `"https"` or `"http"` (the web faces) or `"sip"`."""
    app = web.Application(middlewares=[error_middleware])
    app[NODE] = node
    app[LISTENER] = listener
    if listener == "sip":
        app.router.add_post("/calls", post_call)
        app.router.add_get("/calls", list_calls)
        app.router.add_delete("/calls/{call_id}", delete_call)
    else:
        app.router.add_post("/RPC2", rpc)
        app.router.add_get("/login", login)
        app.router.add_get("/", login)
    app.router.add_get("/api/v1/drill", get_drill)
    app.router.add_put("/api/v1/drill", put_drill)
    return app
