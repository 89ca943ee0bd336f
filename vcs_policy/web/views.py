"""The VCS's admin pages: thin handlers over the node, rendered with Jinja2.

Every form POST has passed the CSRF check in `security.auth_middleware` before a
handler runs. A refused form answers 400 with the field errors and the values
given, nothing saved; an accepted one redirects (303) with a "Saved" banner.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from netsim.websession import csrf_token, get_session, new_session
from vcs_policy.web.keys import NODE, USER
from vcs_policy.web.security import check_login

#: The VCS's menu: (menu, [(label, path)])
MENU: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Status",
        [
            ("Overview", "/"),
            ("Policy services", "/status/policy-services"),
            ("Calls", "/status/calls"),
            ("Event log", "/status/events"),
        ],
    ),
    (
        "Configuration",
        [
            ("Dial plan > Policy services", "/configuration/dial-plan/policy-services"),
            ("Dial plan > Search rules", "/configuration/dial-plan/search-rules"),
        ],
    ),
    (
        "Maintenance",
        [("Security certificates", "/maintenance/certificates")],
    ),
    ("Users", [("Users", "/users")]),
]


async def context(request: web.Request, title: str, **values: Any) -> dict[str, Any]:
    node = request.app[NODE]
    user = request.get(USER)
    token = await csrf_token(await get_session(request)) if user else ""
    return {
        "host": node.runtime.host,
        "user": user,
        "title": title,
        "flash": request.query.get("saved"),
        "path": request.path,
        "csrf": token,
        "default_password": node.store.default_password(),
        **values,
    }


async def login(request: web.Request) -> web.StreamResponse:
    error = ""
    target = request.query.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    if request.method == "POST":
        form = await request.post()
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        if check_login(request, user, password, via="web"):
            session = await new_session(request)
            session["user"] = user
            session["seen"] = request.app[NODE].runtime.clock.monotonic()
            request.app[NODE].store.log_event("login", user=user, source=request.remote or "")
            raise web.HTTPSeeOther(target)
        error = "Login failed: wrong username or password."
    values = await context(request, "Login", error=error, next=target)
    return aiohttp_jinja2.render_template(
        "login.html", request, values, status=401 if error else 200
    )


async def logout(request: web.Request) -> web.StreamResponse:
    (await get_session(request)).invalidate()
    raise web.HTTPSeeOther("/login")


async def overview(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    values = await context(request, "Overview", status=node.status())
    return aiohttp_jinja2.render_template("overview.html", request, values)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_route("GET", "/login", login)
    r.add_route("POST", "/login", login)
    r.add_get("/logout", logout)
    r.add_get("/", overview)
