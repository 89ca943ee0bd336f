"""Admin pages: thin handlers over the node's store, rendered with Jinja2."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session

from peers.core.settings import SETTINGS, SettingErrors, page_settings
from peers.web.keys import NODE
from peers.web.security import CSRF_FIELD, check_login, csrf_token

#: The vendor's menu: (menu, [(label, path)])
MENU: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Status",
        [
            ("Overview", "/"),
            ("Alarms", "/status/alarms"),
            ("Event log", "/status/events"),
            ("Configuration log", "/status/config-log"),
        ],
    ),
    (
        "System",
        [
            ("Administration", "/system/administration"),
            ("Clustering", "/system/clustering"),
            ("DNS", "/system/dns"),
            ("Time", "/system/time"),
            ("IP", "/system/ip"),
            ("Ethernet", "/system/ethernet"),
            ("SNMP", "/system/snmp"),
            ("Logging", "/system/logging"),
            ("Administration access", "/system/access"),
            ("Locations", "/system/locations"),
        ],
    ),
    (
        "Maintenance",
        [
            ("Option keys", "/maintenance/option-keys"),
            ("Security certificates", "/maintenance/certificates"),
            ("Restart options", "/maintenance/restart"),
        ],
    ),
    ("Users", [("Users", "/users")]),
]

#: Settings pages rendered from the registry: url part -> (page id, title)
SETTINGS_PAGES: dict[str, tuple[str, str]] = {
    "administration": ("administration", "Administration"),
    "clustering": ("clustering", "Clustering"),
    "dns": ("dns", "DNS"),
    "time": ("time", "Time"),
    "ip": ("ip", "IP"),
    "ethernet": ("ethernet", "Ethernet"),
    "snmp": ("snmp", "SNMP"),
    "logging": ("logging", "Logging"),
    "access": ("access", "Administration access"),
    "locations": ("locations", "Locations"),
}

SAVED_BANNER = {"clustering": "Saved: Saved peer address."}


async def page_context(request: web.Request, title: str, **extra: Any) -> dict[str, Any]:
    node = request.app[NODE]
    session = await get_session(request)
    flash = session.pop("flash", None)
    return {
        "title": title,
        "user": request.get("user"),
        "csrf": await csrf_token(session),
        "csrf_field": CSRF_FIELD,
        "host": node.runtime.host,
        "system_name": node.store.get("administration.system_name") or node.runtime.host.name,
        "alarm_count": len(node.store.alarms()),
        "restart_required": bool(node.store.pending()),
        "flash": flash,
        "path": request.path,
        **extra,
    }


def field_value(setting_key: str, value: Any) -> str:
    setting = SETTINGS[setting_key]
    if setting.kind == "list":
        return "\n".join(str(v) for v in value)
    if setting.kind == "bool":
        return "On" if value else "Off"
    return "" if value is None else str(value)


def form_fields(page: str, values: dict[str, Any], errors: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "key": s.key,
            "id": s.key.replace(".", "-"),
            "label": s.label,
            "kind": s.kind,
            "choices": s.choices,
            "help": s.help,
            "value": values[s.key]
            if isinstance(values[s.key], str) and s.kind == "list"
            else field_value(s.key, values[s.key]),
            "error": errors.get(s.key, ""),
            "restart": s.restart,
        }
        for s in page_settings(page)
    ]


async def settings_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    page, title = SETTINGS_PAGES[request.match_info["page"]]
    values = node.store.effective()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.post()
        changes = {s.key: form.get(s.key, "") for s in page_settings(page)}
        try:
            check_page_rules(request, page, changes)
            outcome = node.store.save(changes, user=request["user"])
        except SettingErrors as exc:
            errors = exc.by_key()
            values = {**values, **{k: str(v) for k, v in changes.items()}}
            status = 400
        else:
            node.refresh_alarms()
            session = await get_session(request)
            banner = SAVED_BANNER.get(page, "Saved.")
            if outcome.restart_required:
                banner += " A restart is required for the changes to take effect."
            session["flash"] = banner
            raise web.HTTPSeeOther(request.path)
    context = await page_context(
        request,
        title,
        page=page,
        fields=form_fields(page, values, errors),
        errors=errors,
        extra=page_extras(request, page),
    )
    return aiohttp_jinja2.render_template("settings.html", request, context, status=status)


def check_page_rules(request: web.Request, page: str, changes: dict[str, Any]) -> None:
    """Rules that span fields or depend on state (G-R4, G-R13); raise SettingErrors."""
    from peers.rules import check_changes

    node = request.app[NODE]
    check_changes(node, changes)


def page_extras(request: web.Request, page: str) -> dict[str, Any]:
    from peers.status import page_status

    return page_status(request.app[NODE], page)


async def login(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    error = ""
    next_path = request.query.get("next", "/")
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/"
    if request.method == "POST":
        form = await request.post()
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        if check_login(request, user, password, via="web"):
            session = await new_session(request)
            session["user"] = user
            session["seen"] = node.runtime.clock.monotonic()
            node.store.log_event("login", user=user, source=request.remote or "")
            raise web.HTTPSeeOther(next_path)
        error = "Login failed: incorrect username or password."
    return aiohttp_jinja2.render_template(
        "login.html",
        request,
        {
            "title": "Login",
            "error": error,
            "next": next_path,
            "user": None,
            "host": node.runtime.host,
            "csrf": "",
        },
        status=401 if error else 200,
    )


async def logout(request: web.Request) -> web.StreamResponse:
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")


async def restart_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    if request.method == "POST":
        node.request_restart(user=request["user"])
        context = await page_context(request, "Restart options", restarting=True)
        return aiohttp_jinja2.render_template("restart.html", request, context)
    context = await page_context(
        request, "Restart options", restarting=False, pending=sorted(node.store.pending())
    )
    return aiohttp_jinja2.render_template("restart.html", request, context)


async def alarms_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    context = await page_context(request, "Alarms", alarms=node.store.alarms())
    return aiohttp_jinja2.render_template("alarms.html", request, context)


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/login", login)
    app.router.add_get("/logout", logout)
    app.router.add_route("*", r"/system/{page:" + "|".join(SETTINGS_PAGES) + "}", settings_page)
    app.router.add_route("*", "/maintenance/restart", restart_page)
    app.router.add_get("/status/alarms", alarms_page)
