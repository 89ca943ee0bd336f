"""Admin pages: thin handlers over the node's store, rendered with Jinja2.

Every form POST has passed the CSRF check in `security.auth_middleware`
before a handler runs. A rejected form answers 400 with the field errors and
the submitted values, and nothing is saved; an accepted one redirects (303)
to the page with a "Saved" banner.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from netsim.websession import CSRF_FIELD, csrf_token, get_session, new_session
from peers.backup import restore_pending
from peers.core.settings import SETTINGS, SettingErrors, page_settings
from peers.status import overview, page_status
from peers.store import USERS
from peers.web.actions import (
    ACCOUNTS,
    PASSWORD_FIELDS,
    certificate_details,
    change_password,
    regenerate_certificates,
    save_settings,
)
from peers.web.keys import NODE, SERVED_CERT, USER
from peers.web.security import check_login

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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
        "Conference configuration",
        [
            ("Conference aliases", "/conference/aliases"),
            ("Conference templates", "/conference/templates"),
            ("Service preferences", "/conference/preferences"),
            ("Conference bridge pools", "/conference/pools"),
            ("Conference bridges", "/conference/bridges"),
            ("Policy service", "/conference/policy"),
        ],
    ),
    (
        "Maintenance",
        [
            ("Option keys", "/maintenance/option-keys"),
            ("Security certificates", "/maintenance/certificates"),
            ("Backup and restore", "/maintenance/backup"),
            ("Upgrade", "/maintenance/upgrade"),
            ("Restart options", "/maintenance/restart"),
        ],
    ),
    ("Users", [("Users", "/users")]),
]


@dataclass(frozen=True, slots=True)
class SettingsPage:
    """A page rendered from the settings registry, and its JSON twin."""

    page: str  # the registry's page id
    title: str
    path: str
    api_path: str
    menu: str


def _system(page: str, title: str) -> SettingsPage:
    return SettingsPage(page, title, f"/system/{page}", f"/api/v1/system/{page}", "System")


#: page id -> page
SETTINGS_PAGES: dict[str, SettingsPage] = {
    p.page: p
    for p in (
        _system("administration", "Administration"),
        _system("clustering", "Clustering"),
        _system("dns", "DNS"),
        _system("time", "Time"),
        _system("ip", "IP"),
        _system("ethernet", "Ethernet"),
        _system("snmp", "SNMP"),
        _system("logging", "Logging"),
        _system("access", "Administration access"),
        _system("locations", "Locations"),
        SettingsPage(
            "policy",
            "Policy service",
            "/conference/policy",
            "/api/v1/conference/policy",
            "Conference configuration",
        ),
        SettingsPage(
            "options",
            "Option keys",
            "/maintenance/option-keys",
            "/api/v1/maintenance/option-keys",
            "Maintenance",
        ),
    )
}

SAVED_BANNER = {"clustering": "Saved: Saved peer address."}
RESTART_SENTENCE = " A restart is required for the changes to take effect."
LOG_LIMIT = 200


def certificates_pending(request: web.Request) -> bool:
    """New certificates are stored but the server still serves the ones it started with."""
    served = request.app[SERVED_CERT]
    stored = request.app[NODE].store.certificates().get("server")
    return bool(served) and stored is not None and stored[0] != served


async def page_context(request: web.Request, title: str, **extra: Any) -> dict[str, Any]:
    node = request.app[NODE]
    session = await get_session(request)
    flash = session.pop("flash", None)
    return {
        "title": title,
        "user": request.get(USER),
        "csrf": await csrf_token(session),
        "csrf_field": CSRF_FIELD,
        "host": node.runtime.host,
        "system_name": node.store.get("administration.system_name") or node.runtime.host.name,
        "alarm_count": len(node.store.alarms()),
        "restart_required": bool(node.store.pending())
        or certificates_pending(request)
        or restore_pending(node),
        "flash": flash,
        "path": request.path,
        **extra,
    }


async def flash_and_redirect(request: web.Request, banner: str) -> web.StreamResponse:
    session = await get_session(request)
    session["flash"] = banner
    raise web.HTTPSeeOther(request.path)


def field_value(setting_key: str, value: Any) -> str:
    setting = SETTINGS[setting_key]
    if setting.kind == "list":
        return "\n".join(str(v) for v in value)
    if setting.kind == "bool":
        return "On" if value else "Off"
    return "" if value is None else str(value)


def form_fields(
    page: str,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    active: dict[str, Any],
    pending: dict[str, Any],
) -> list[dict[str, Any]]:
    fields = []
    for s in page_settings(page):
        value = values[s.key]
        shown = value if isinstance(value, str) else field_value(s.key, value)
        fields.append(
            {
                "key": s.key,
                "id": s.key.replace(".", "-"),
                "label": s.label,
                "kind": s.kind,
                "choices": s.choices,
                "help": s.help,
                "value": shown,
                "error": errors.get(s.key, ""),
                "restart": s.restart,
                # G-P7: a saved value waiting for a restart; show what is in force now
                "active": (
                    ("(set)" if active[s.key] else "(empty)")
                    if s.secret
                    else field_value(s.key, active[s.key]) or "(empty)"
                )
                if s.key in pending
                else None,
            }
        )
    return fields


def settings_handler(spec: SettingsPage) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await settings_page(request, spec)

    return handler


async def settings_page(request: web.Request, spec: SettingsPage) -> web.StreamResponse:
    node = request.app[NODE]
    page = spec.page
    values: dict[str, Any] = node.store.effective()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.post()
        changes = {s.key: form.get(s.key, "") for s in page_settings(page)}
        try:
            outcome = save_settings(node, changes, user=request[USER])
        except SettingErrors as exc:
            errors = exc.by_key()
            values = {**values, **{k: str(v) for k, v in changes.items()}}
            status = 400
        else:
            banner = SAVED_BANNER.get(page, "Saved.")
            if outcome.restart_required:
                banner += RESTART_SENTENCE
            return await flash_and_redirect(request, banner)
    context = await page_context(
        request,
        spec.title,
        page=page,
        fields=form_fields(
            page,
            values,
            errors,
            active=node.store.settings(),
            pending=node.store.pending(),
        ),
        errors=errors,
        has_restart_fields=any(s.restart for s in page_settings(page)),
        extra=page_status(node, page),
    )
    return aiohttp_jinja2.render_template("settings.html", request, context, status=status)


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
    from peers.web import base_context

    context = await base_context(request)
    context.update(
        title="Login",
        error=error,
        next=next_path,
        user=None,
        banner=request.app[NODE].store.get("administration.login_banner"),
    )
    return aiohttp_jinja2.render_template(
        "login.html", request, context, status=401 if error else 200
    )


async def logout(request: web.Request) -> web.StreamResponse:
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")


async def overview_page(request: web.Request) -> web.StreamResponse:
    context = await page_context(request, "Overview", overview=overview(request.app[NODE]))
    return aiohttp_jinja2.render_template("overview.html", request, context)


async def restart_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    if request.method == "POST":
        node.request_restart(user=request[USER])
        context = await page_context(request, "Restart options", restarting=True)
        return aiohttp_jinja2.render_template("restart.html", request, context)
    context = await page_context(
        request,
        "Restart options",
        restarting=False,
        pending=sorted(SETTINGS[k].label for k in node.store.pending() if k in SETTINGS),
        certificates_pending=certificates_pending(request),
        restore_pending=restore_pending(node),
    )
    return aiohttp_jinja2.render_template("restart.html", request, context)


async def alarms_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    context = await page_context(request, "Alarms", alarms=node.store.alarms())
    return aiohttp_jinja2.render_template("alarms.html", request, context)


def _detail_text(detail: Any) -> str:
    if isinstance(detail, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()))
    return json.dumps(detail)


async def events_page(request: web.Request) -> web.StreamResponse:
    events = [
        {**e, "detail_text": _detail_text(e["detail"])}
        for e in request.app[NODE].store.events(LOG_LIMIT)
    ]
    context = await page_context(request, "Event log", events=events)
    return aiohttp_jinja2.render_template("events.html", request, context)


async def config_log_page(request: web.Request) -> web.StreamResponse:
    entries = [
        {**e, "label": SETTINGS[e["setting"]].label if e["setting"] in SETTINGS else e["setting"]}
        for e in request.app[NODE].store.config_log(LOG_LIMIT)
    ]
    context = await page_context(request, "Configuration log", entries=entries)
    return aiohttp_jinja2.render_template("config_log.html", request, context)


async def certificates_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    if request.method == "POST":
        regenerate_certificates(node, user=request[USER])
        return await flash_and_redirect(
            request,
            "Saved: New certificates generated. They are served after a restart "
            "(Maintenance > Restart options).",
        )
    context = await page_context(
        request,
        "Security certificates",
        certificates=certificate_details(node, request.app[SERVED_CERT]),
    )
    return aiohttp_jinja2.render_template("certificates.html", request, context)


async def ca_certificate(request: web.Request) -> web.StreamResponse:
    """The trusted CA certificate, for the VCS's and other peers' trusted CA lists."""
    cert_pem = request.app[NODE].store.certificates()["ca"][0]
    return web.Response(
        text=cert_pem,
        content_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="trusted-ca.pem"'},
    )


async def users_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    errors: dict[str, dict[str, str]] = {}
    status = 200
    if request.method == "POST":
        form = await request.post()
        account = form.get("account")
        if not isinstance(account, str) or account not in USERS:
            raise web.HTTPBadRequest(reason="Unknown account; nothing was changed.")
        try:
            change_password(
                node,
                account,
                form.get("new_password", ""),
                form.get("confirm_password", ""),
                user=request[USER],
            )
        except SettingErrors as exc:
            errors[account] = {e.key: f"{e.label}: {e.message}" for e in exc.errors}
            status = 400
        else:
            return await flash_and_redirect(
                request, f"Saved: The password of the {account} account was changed."
            )
    defaults = set(node.store.default_passwords())
    accounts = [
        {
            "name": name,
            "title": ACCOUNTS[name],
            "default": name in defaults,
            "shared": USERS[name].value == "shared",
            "errors": errors.get(name, {}),
            "fields": [
                {"name": field, "id": f"{name}-{field.replace('_', '-')}", "label": label}
                for field, label in PASSWORD_FIELDS.items()
            ],
        }
        for name in ACCOUNTS
    ]
    context = await page_context(request, "Users", accounts=accounts)
    return aiohttp_jinja2.render_template("users.html", request, context, status=status)


def add_routes(app: web.Application) -> None:
    app.router.add_route("GET", "/login", login)
    app.router.add_route("POST", "/login", login)
    app.router.add_get("/logout", logout)
    app.router.add_get("/", overview_page)
    for spec in SETTINGS_PAGES.values():
        handler = settings_handler(spec)
        app.router.add_get(spec.path, handler)
        app.router.add_post(spec.path, handler)
    app.router.add_get("/maintenance/restart", restart_page)
    app.router.add_post("/maintenance/restart", restart_page)
    app.router.add_get("/maintenance/certificates", certificates_page)
    app.router.add_post("/maintenance/certificates", certificates_page)
    app.router.add_get("/maintenance/certificates/trusted-ca.pem", ca_certificate)
    app.router.add_get("/status/alarms", alarms_page)
    app.router.add_get("/status/events", events_page)
    app.router.add_get("/status/config-log", config_log_page)
    app.router.add_get("/users", users_page)
    app.router.add_post("/users", users_page)
