"""The policy service endpoints on the peer's HTTPS server: what the VCS talks to.

`POST /<Policy path>` (default `pdp/policy`) answers a policy request with CPL;
`GET /<Status path>` (default `pdp/status`) answers 200 "OK" for the VCS's
health poll. Both paths are shared settings (Conference configuration >
Policy service) and apply at once: this middleware compares each request's
path with the ones in force, ahead of routing, sessions and the admin login.

Both endpoints take HTTP Basic with the shared admin account (the store's
cached password check): no or wrong credentials -> 401 with a challenge;
right credentials while admin or root still has the factory default password
-> 403 naming the accounts, which is why the VCS shows the server Failed (G-P3).
Failed logins go to the event log as the API's do, throttled per source
(`PolicyService.login_failed`). Every answer is 2xx or 4xx, plain text unless
it is CPL; nothing is written to the database per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import BasicAuth, ClientPayloadError, hdrs, web

from netsim.websession import media_type, read_limited
from peers.core.conference_config import template_for_alias
from peers.core.policy import answer_policy
from peers.web.keys import NODE
from vcs_policy.wire.policy import MAX_BODY_BYTES

if TYPE_CHECKING:
    from netsim.websession import Handler
    from peers.node import PeerNode

REALM = 'Basic realm="TelePresence Conductor policy service"'
TEXT_UTF8 = "text/plain; charset=utf-8"


def _text(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=text.encode(), headers={"Content-Type": TEXT_UTF8, **headers}
    )


def _refusal(request: web.Request, node: PeerNode) -> web.Response | None:
    """None when the request may be answered; else the 401 or 403 to send."""
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    try:
        credentials = BasicAuth.decode(header, encoding="utf-8") if header else None
    except ValueError:
        credentials = None
    if credentials is None or not (
        credentials.login == "admin" and node.store.verify_password("admin", credentials.password)
    ):
        if credentials is not None:
            node.policy.login_failed(request.remote or "", credentials.login)
        node.policy.counters.refused += 1
        return _text(
            401,
            "authentication required: HTTP Basic with the Conductor's admin account",
            **{hdrs.WWW_AUTHENTICATE: REALM},
        )
    defaults = node.store.default_passwords()
    if defaults:  # G-P3
        node.policy.counters.refused += 1
        return _text(
            403,
            "default admin/root passwords not changed: still on the factory default "
            f"password: {', '.join(defaults)} (change them on the Conductor's Users page)",
        )
    return None


def _wrong_method(allowed: str) -> web.Response:
    return _text(405, f"method not allowed here; use {allowed}", **{hdrs.ALLOW: allowed})


async def policy_endpoint(request: web.Request, node: PeerNode) -> web.StreamResponse:
    counters = node.policy.counters
    if request.method != hdrs.METH_POST:
        counters.bad_requests += 1
        return _wrong_method(hdrs.METH_POST)
    refusal = _refusal(request, node)
    if refusal is not None:
        return refusal
    try:
        body = await read_limited(request, MAX_BODY_BYTES)
    except (ClientPayloadError, ValueError):
        counters.bad_requests += 1
        return _text(400, "the request body could not be read")
    if body is None:
        counters.bad_requests += 1
        return _text(413, f"policy request body exceeds {MAX_BODY_BYTES} bytes")
    answer = answer_policy(media_type(request), body, node.policy.aliases())
    text = answer.text
    decision = answer.decision
    if decision is not None and decision.alias is not None and decision.conference_name:
        # G-S3: an alias with a conference template is placed on a bridge (or joins the
        # conference the cluster already placed) and the VCS is redirected there
        template = template_for_alias(node.store, decision.alias.name)
        if template is not None:
            text, _ = await node.conferences.place(decision.conference_name, template)
    counters.policy_answered(answer.outcome, node.policy.wall())
    content_type = TEXT_UTF8 if answer.content_type == "text/plain" else answer.content_type
    return web.Response(
        status=answer.status,
        body=text.encode(),
        headers={hdrs.CONTENT_TYPE: content_type},
    )


async def status_endpoint(request: web.Request, node: PeerNode) -> web.StreamResponse:
    if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):
        return _wrong_method("GET, HEAD")
    refusal = _refusal(request, node)
    if refusal is not None:
        return refusal
    node.policy.counters.status_answered(node.policy.wall())
    return _text(200, "OK")


@web.middleware
async def pdp_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    node = request.app[NODE]
    policy_path, status_path = node.policy.paths()
    if request.path == policy_path:
        return await policy_endpoint(request, node)
    if request.path == status_path:
        return await status_endpoint(request, node)
    return await handler(request)
