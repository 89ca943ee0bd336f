"""The peer's admin web pages and JSON API (aiohttp).

Pages are server-rendered HTML forms that work without JavaScript, with the
vendor's menu structure and field labels. Every page has a JSON twin under
`/api/v1/` that goes through the same validation and answers the same errors.

Security: pages need a login (encrypted cookie session); every form POST
carries a per-session CSRF token; the JSON API uses HTTP Basic with the admin
account and no cookies, so CSRF does not apply to it. Failed logins are
written to the event log.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from netsim.websession import refuse_malformed_content_type, setup_admin_pages
from peers.core.settings import SETTINGS
from peers.web.keys import NODE, SERVED_CERT, USER
from peers.web.pdp import pdp_middleware
from peers.web.security import auth_middleware, error_middleware

if TYPE_CHECKING:
    from peers.node import PeerNode

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


async def base_context(request: web.Request) -> dict[str, Any]:
    """Defaults every template may rely on; page handlers override them. (Not an
    aiohttp_jinja2 context processor: its middleware keeps state under a plain string
    request key, which aiohttp 3.14 warns about.)"""
    return {
        "host": request.app[NODE].runtime.host,
        "user": request.get(USER),
        "title": "",
        "flash": None,
        "path": request.path,
        "csrf": "",
        "alarm_count": 0,
        "restart_required": False,
    }


def make_app(node: PeerNode) -> web.Application:
    from peers.web import api, backup, conference, conference_config, upgrade, views

    # the policy service endpoints (pdp) sit ahead of sessions and the admin login:
    # the VCS authenticates each request with HTTP Basic
    app = web.Application(
        middlewares=[refuse_malformed_content_type, error_middleware, pdp_middleware],
        client_max_size=2 * 1024 * 1024,
    )
    app[NODE] = node
    certificates = node.store.certificates()
    app[SERVED_CERT] = certificates["server"][0] if "server" in certificates else ""
    setup_admin_pages(
        app,
        cookie_secret=node.store.cookie_secret,
        cookie_name="TPLAB_SESSION",
        auth=auth_middleware,
        templates=TEMPLATES,
        menu=views.MENU,
    )
    views.add_routes(app)
    api.add_routes(app)
    conference.add_routes(app)
    conference_config.add_routes(app)
    backup.add_routes(app)
    upgrade.add_routes(app)
    app.router.add_static("/static/", STATIC)
    # The router resolves a request before the middlewares run, and a path without a
    # route costs it an HTTPNotFound built and thrown away: the factory policy service
    # paths get routes so the policy hot path (answered by `pdp_middleware`) skips
    # that. When the paths are moved, these answer 404 like any unknown page.
    for path in ("/" + SETTINGS["policy.policy_path"].default,
                 "/" + SETTINGS["policy.status_path"].default):  # fmt: skip
        app.router.add_route("*", path, _not_found)
    return app


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()
