"""The VCS's admin web pages and JSON API (aiohttp).

Pages are server-rendered HTML forms that work without JavaScript, with the
VCS's menu structure and field labels (Configuration > Dial plan > Policy
services, Status > Policy services, ...). Every page has a JSON twin under
`/api/v1/` going through the same `actions`. Pages need a login (encrypted
cookie session, CSRF token on every form); the API takes HTTP Basic.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from netsim.websession import refuse_malformed_content_type, setup_admin_pages
from vcs_policy.web.keys import NODE
from vcs_policy.web.security import auth_middleware, error_middleware

if TYPE_CHECKING:
    from vcs_policy.node import VcsNode

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def make_app(node: VcsNode) -> web.Application:
    from vcs_policy.web import api, views

    app = web.Application(
        middlewares=[refuse_malformed_content_type, error_middleware], client_max_size=1024 * 1024
    )
    app[NODE] = node
    setup_admin_pages(
        app,
        cookie_secret=node.store.cookie_secret,
        cookie_name="TPLAB_VCS_SESSION",
        auth=auth_middleware,
        templates=TEMPLATES,
        menu=views.MENU,
    )
    views.add_routes(app)
    api.add_routes(app)
    app.router.add_static("/static/", STATIC)
    return app
