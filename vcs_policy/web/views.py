"""The VCS's admin pages: thin handlers over the node, rendered with Jinja2.

Every form POST has passed the CSRF check in `security.auth_middleware` before a
handler runs. A refused form answers 400 with the field errors (each named by its
page label) and the values given, nothing saved; an accepted one redirects (303)
with a banner ("Saved: ...") carried in the session, as the product takes you
back to the list page after Save (deployment guide, Task 6).

Pages and the JSON API share `actions`, so a value is validated the same way
wherever it comes from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from netsim.websession import CSRF_FIELD, csrf_token, get_session, new_session
from vcs_policy.core.config import (
    ON_MATCH,
    PATTERN_TYPES,
    RULE_LABELS,
    RULE_PROTOCOLS,
    SERVICE_LABELS,
    ConfigErrors,
    PolicyService,
    SearchRule,
)
from vcs_policy.web import actions
from vcs_policy.web.keys import NODE, USER
from vcs_policy.web.security import check_login

SERVICES_PATH = "/configuration/dial-plan/policy-services"
RULES_PATH = "/configuration/dial-plan/search-rules"
CALLS_PATH = "/status/calls"
CERTIFICATES_PATH = "/maintenance/certificates"
LOG_LIMIT = 200
RECENT_CALLS_SHOWN = 50

#: The VCS's menu: (menu, [(label, path)])
MENU: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Status",
        [
            ("Overview", "/"),
            ("Policy services", "/status/policy-services"),
            ("Calls", CALLS_PATH),
            ("Event log", "/status/events"),
        ],
    ),
    (
        "Configuration",
        [
            ("Dial plan > Policy services", SERVICES_PATH),
            ("Dial plan > Search rules", RULES_PATH),
        ],
    ),
    (
        "Maintenance",
        [("Security certificates", CERTIFICATES_PATH)],
    ),
    ("Users", [("Users", "/users")]),
]

ON_OFF = (("On", "On"), ("Off", "Off"))


@dataclass(frozen=True, slots=True)
class Field:
    """One control of a form: its form name (also its id), label and kind."""

    name: str
    label: str
    kind: str = "text"  # text, password, select, textarea
    choices: tuple[tuple[str, str], ...] = ()  # (value, shown)
    help: str = ""


def _service_fields() -> tuple[Field, ...]:
    L = SERVICE_LABELS
    return (
        Field("name", L["name"]),
        Field("description", L["description"], help="Shown as a tooltip in the list."),
        Field("protocol", L["protocol"], "select", (("HTTP", "HTTP"), ("HTTPS", "HTTPS"))),
        Field(
            "verify_certificate",
            L["verify_certificate"],
            "select",
            ON_OFF,
            "On: the server's certificate must chain to a trusted CA and name the address.",
        ),
        Field("crl_check", L["crl_check"], "select", ON_OFF),
        Field("username", L["username"]),
        Field(
            "password",
            L["password"],
            "password",
            help="Never shown. Leave empty to keep the stored password.",
        ),
        Field("server1", L["server1"], help="IP address or FQDN, optionally with :port."),
        Field("server2", L["server2"]),
        Field("server3", L["server3"]),
        Field("path", L["path"]),
        Field("status_path", L["status_path"]),
        Field("default_cpl", L["default_cpl"], "textarea", help="Used when no server answers."),
        Field("poll_interval_s", L["poll_interval_s"]),
        Field("request_timeout_s", L["request_timeout_s"]),
    )


SERVICE_FIELDS = _service_fields()
SERVER_FIELDS = {"server1": 1, "server2": 2, "server3": 3}


def _rule_fields(targets: tuple[str, ...]) -> tuple[Field, ...]:
    L = RULE_LABELS

    def same(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        return tuple((v, v) for v in values)

    return (
        Field("name", L["name"]),
        Field("description", L["description"]),
        Field("priority", L["priority"], help="1-65534; lower numbers are tried first."),
        Field("protocol", L["protocol"], "select", same(RULE_PROTOCOLS)),
        Field("pattern_type", L["pattern_type"], "select", same(PATTERN_TYPES)),
        Field("pattern", L["pattern"]),
        Field("on_match", L["on_match"], "select", same(ON_MATCH)),
        Field("target", L["target"], "select", same(targets)),
        Field("enabled", L["enabled"], "select", (("On", "Enabled"), ("Off", "Disabled"))),
    )


CALL_FIELDS = (
    Field("source", actions.CALL_LABELS["source"]),
    Field("destination", actions.CALL_LABELS["destination"]),
    Field(
        "protocol", actions.CALL_LABELS["protocol"], "select", (("SIP", "SIP"), ("H323", "H323"))
    ),
)


# ------------------------------------------------------------------ helpers
async def context(request: web.Request, title: str, **values: Any) -> dict[str, Any]:
    node = request.app[NODE]
    user = request.get(USER)
    session = await get_session(request)
    token = await csrf_token(session) if user else ""
    flash = session.pop("flash", None) if user else None
    return {
        "host": node.runtime.host,
        "user": user,
        "title": title,
        "flash": flash if isinstance(flash, str) else None,
        "path": request.path,
        "csrf": token,
        "csrf_field": CSRF_FIELD,
        "default_password": node.store.default_password(),
        **values,
    }


def render(
    request: web.Request, template: str, values: dict[str, Any], status: int = 200
) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, values, status=status)


async def saved(request: web.Request, banner: str, location: str) -> web.StreamResponse:
    """303 to `location`, which shows `banner` once."""
    (await get_session(request))["flash"] = banner
    raise web.HTTPSeeOther(location)


def form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def on_off(value: bool) -> str:
    return "On" if value else "Off"


def number_text(value: float) -> str:
    return f"{value:g}"


def edit_path(base: str, name: str) -> str:
    return f"{base}/edit/{quote(name, safe='')}"


def delete_path(base: str, name: str) -> str:
    return f"{base}/delete/{quote(name, safe='')}"


def split_errors(errors: Mapping[str, str], fields: tuple[Field, ...]) -> list[str]:
    """Errors that belong to no single control (e.g. an address given twice)."""
    names = {f.name for f in fields}
    return [message for name, message in errors.items() if name not in names]


def _detail_text(detail: Any) -> str:
    if isinstance(detail, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()))
    return json.dumps(detail)


# --------------------------------------------------------------- login, home
async def login(request: web.Request) -> web.StreamResponse:
    error = ""
    target = request.query.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    if request.method == "POST":
        form = await request.post()
        user, password = form_text(form, "username"), form_text(form, "password")
        if check_login(request, user, password, via="web"):
            session = await new_session(request)
            session["user"] = user
            session["seen"] = request.app[NODE].runtime.clock.monotonic()
            request.app[NODE].store.log_event("login", user=user, source=request.remote or "")
            raise web.HTTPSeeOther(target)
        error = "Login failed: wrong username or password."
    values = await context(request, "Login", error=error, next=target)
    return render(request, "login.html", values, status=401 if error else 200)


async def logout(request: web.Request) -> web.StreamResponse:
    (await get_session(request)).invalidate()
    raise web.HTTPSeeOther("/login")


async def overview(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    values = await context(request, "Overview", status=node.status())
    return render(request, "overview.html", values)


# ------------------------------------------------------------ policy services
def service_values(service: PolicyService) -> dict[str, str]:
    """The form a browser would send back unchanged (the password never shown)."""
    return {
        "name": service.name,
        "description": service.description,
        "protocol": service.protocol,
        "verify_certificate": on_off(service.verify_certificate),
        "crl_check": on_off(service.crl_check),
        "username": service.username,
        "password": "",
        "server1": service.servers[0],
        "server2": service.servers[1],
        "server3": service.servers[2],
        "path": service.path,
        "status_path": service.status_path,
        "default_cpl": service.default_cpl,
        "poll_interval_s": number_text(service.poll_interval_s),
        "request_timeout_s": number_text(service.request_timeout_s),
    }


def service_status(request: web.Request, name: str) -> dict[str, Any] | None:
    return next((s for s in request.app[NODE].policy_status() if s["name"] == name), None)


def server_lines(status: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """Field name -> the status line of the server configured there (G-V3): green
    "Active. Last communication: ...", red "Failed" with its reason, or "Checking"
    until the first poll."""
    lines: dict[str, dict[str, str]] = {}
    for server in (status or {}).get("servers", []):
        state = {"Active": "ok", "Failed": "failed"}.get(server["status"], "checking")
        lines[f"server{server['slot']}"] = {
            "address": server["address"],
            "text": server["text"],
            "state": state,
            "reason": server["reason"],
        }
    return lines


async def services_list(
    request: web.Request, *, errors: list[str] | None = None, status: int = 200
) -> web.StreamResponse:
    node = request.app[NODE]
    statuses = {s["name"]: s for s in node.policy_status()}
    rows = [
        {
            "name": s.name,
            "description": s.description,
            "status": statuses.get(s.name, {}).get("status", ""),
            "servers": [a for a in s.servers if a],
            "edit": edit_path(SERVICES_PATH, s.name),
            "delete": delete_path(SERVICES_PATH, s.name),
        }
        for s in node.store.services()
    ]
    values = await context(
        request,
        "Policy services",
        services=rows,
        errors=errors or [],
        new_path=SERVICES_PATH + "/new",
    )
    return render(request, "policy_services.html", values, status=status)


async def services_page(request: web.Request) -> web.StreamResponse:
    return await services_list(request)


async def service_form(request: web.Request) -> web.StreamResponse:
    """Create (`/new`) or edit (`/edit/{name}`) a policy service (G-V1: up to three
    server addresses; G-V3: each with its status line)."""
    node = request.app[NODE]
    name = request.match_info.get("name")
    stored = None if name is None else node.store.service(name)
    if name is not None and stored is None:
        raise web.HTTPNotFound(text=f"No policy service named {name[:80]!r}.")
    values = service_values(stored or PolicyService(name=""))
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.post()
        values = {f.name: form_text(form, f.name) for f in SERVICE_FIELDS}
        try:
            await actions.save_service(node, values, user=request[USER], replace=name)
        except KeyError as exc:
            raise web.HTTPNotFound(text=f"No policy service named {name!r}.") from exc
        except ConfigErrors as exc:
            errors = exc.fields()
            values["password"] = ""  # never sent back, even as typed
            status = 400
        else:
            return await saved(request, "Saved: Policy service saved.", SERVICES_PATH)
    page = await context(
        request,
        "Edit policy service" if name is not None else "Create policy service",
        fields=SERVICE_FIELDS,
        values=values,
        errors=errors,
        other_errors=split_errors(errors, SERVICE_FIELDS),
        lines=server_lines(service_status(request, name)) if name is not None else {},
        password_set=bool(stored and stored.password),
        action=request.path,
        back=SERVICES_PATH,
    )
    return render(request, "policy_service.html", page, status=status)


async def service_delete(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    try:
        await actions.delete_service(request.app[NODE], name, user=request[USER])
    except KeyError as exc:
        raise web.HTTPNotFound(text=f"No policy service named {name[:80]!r}.") from exc
    except ConfigErrors as exc:
        messages = [f"{name} was not deleted: {e}" for e in exc.errors]
        return await services_list(request, errors=messages, status=400)
    return await saved(request, f"Deleted: Policy service {name} deleted.", SERVICES_PATH)


async def policy_status_page(request: web.Request) -> web.StreamResponse:
    """Status > Policy services: Name (to its config page), URL in use, Status, Last
    used, and every server's status line (G-V3)."""
    rows = [
        {
            **s,
            "edit": edit_path(SERVICES_PATH, s["name"]),
            "lines": [
                {"slot": slot, **line}
                for slot, line in sorted(
                    (int(field.removeprefix("server")), line)
                    for field, line in server_lines(s).items()
                )
            ],
        }
        for s in request.app[NODE].policy_status()
    ]
    values = await context(request, "Policy services status", services=rows)
    return render(request, "policy_status.html", values)


# -------------------------------------------------------------- search rules
def rule_values(rule: SearchRule) -> dict[str, str]:
    return {
        "name": rule.name,
        "description": rule.description,
        "priority": str(rule.priority),
        "protocol": rule.protocol,
        "pattern_type": rule.pattern_type,
        "pattern": rule.pattern,
        "on_match": rule.on_match,
        "target": rule.target,
        "enabled": on_off(rule.enabled),
    }


async def rules_page(request: web.Request) -> web.StreamResponse:
    rules = sorted(request.app[NODE].store.rules(), key=lambda r: (r.priority, r.name))
    rows = [
        {
            **r.to_dict(),
            "edit": edit_path(RULES_PATH, r.name),
            "delete": delete_path(RULES_PATH, r.name),
        }
        for r in rules
    ]
    values = await context(
        request, "Search rules", rules=rows, labels=RULE_LABELS, new_path=RULES_PATH + "/new"
    )
    return render(request, "search_rules.html", values)


async def rule_form(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    name = request.match_info.get("name")
    stored = next((r for r in node.store.rules() if r.name == name), None)
    if name is not None and stored is None:
        raise web.HTTPNotFound(text=f"No search rule named {name[:80]!r}.")
    fields = _rule_fields(actions.targets(node))
    values = rule_values(stored or SearchRule(name=""))
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.post()
        values = {f.name: form_text(form, f.name) for f in fields}
        try:
            actions.save_rule(node, values, user=request[USER], replace=name)
        except KeyError as exc:
            raise web.HTTPNotFound(text=f"No search rule named {name!r}.") from exc
        except ConfigErrors as exc:
            errors = exc.fields()
            status = 400
        else:
            return await saved(request, "Saved: Search rule saved.", RULES_PATH)
    page = await context(
        request,
        "Edit search rule" if name is not None else "Create search rule",
        fields=fields,
        values=values,
        errors=errors,
        other_errors=split_errors(errors, fields),
        action=request.path,
        back=RULES_PATH,
    )
    return render(request, "search_rule.html", page, status=status)


async def rule_delete(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    try:
        actions.delete_rule(request.app[NODE], name, user=request[USER])
    except KeyError as exc:
        raise web.HTTPNotFound(text=f"No search rule named {name[:80]!r}.") from exc
    return await saved(request, f"Deleted: Search rule {name} deleted.", RULES_PATH)


# --------------------------------------------------------------------- calls
async def calls_page(request: web.Request) -> web.StreamResponse:
    """Status > Calls: running statistics, a Place call form and the recent calls.
    A placed call's result is shown on the answer to the form (placing a call
    changes no configuration, so there is nothing to redirect to)."""
    node = request.app[NODE]
    values = {"source": "endpoint@example.com", "destination": "", "protocol": "SIP"}
    errors: dict[str, str] = {}
    result = None
    status = 200
    if request.method == "POST":
        form = await request.post()
        values = {f.name: form_text(form, f.name) for f in CALL_FIELDS}
        try:
            source, destination, protocol = actions.check_call(
                values["source"], values["destination"], values["protocol"]
            )
        except ConfigErrors as exc:
            errors = exc.fields()
            status = 400
        else:
            result = await node.place_call(source, destination, protocol)
    recent = list(reversed(node.stats.recent))[:RECENT_CALLS_SHOWN]
    page = await context(
        request,
        "Calls",
        stats=node.stats.summary(),
        fields=CALL_FIELDS,
        values=values,
        errors=errors,
        result=result,
        recent=recent,
    )
    return render(request, "calls.html", page, status=status)


# ---------------------------------------------------------- logs, maintenance
async def events_page(request: web.Request) -> web.StreamResponse:
    events = [
        {**e, "detail_text": _detail_text(e["detail"])}
        for e in request.app[NODE].store.events(LOG_LIMIT)
    ]
    values = await context(request, "Event log", events=events)
    return render(request, "events.html", values)


def pem_counts(pem: str) -> tuple[int, int]:
    return pem.count("-----BEGIN CERTIFICATE-----"), pem.count("-----BEGIN X509 CRL-----")


async def certificates_page(request: web.Request) -> web.StreamResponse:
    """This VCS's CA certificate (read-only, to copy) and the trusted CA list used to
    verify policy servers (certificates and CRLs, pasted as PEM)."""
    node = request.app[NODE]
    pem = node.store.trusted_cas()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.post()
        pem = form_text(form, "pem")
        try:
            count = await actions.set_trusted_cas(node, pem, user=request[USER])
        except ConfigErrors as exc:
            errors = exc.fields()
            status = 400
        else:
            noun = "certificate" if count == 1 else "certificates"
            return await saved(
                request,
                f"Saved: Trusted CA certificates saved ({count} {noun}).",
                CERTIFICATES_PATH,
            )
    certificates, crls = pem_counts(node.store.trusted_cas())
    values = await context(
        request,
        "Security certificates",
        own_ca=node.store.identity().get("ca", ""),
        pem=pem,
        errors=errors,
        trusted_count=certificates,
        crl_count=crls,
    )
    return render(request, "certificates.html", values, status=status)


async def ca_certificate(request: web.Request) -> web.StreamResponse:
    """This VCS's CA certificate as a file."""
    return web.Response(
        text=request.app[NODE].store.identity().get("ca", ""),
        content_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="vcs-ca.pem"'},
    )


async def users_page(request: web.Request) -> web.StreamResponse:
    """Users: change the admin password (the factory default raises a notice, G-P3)."""
    node = request.app[NODE]
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.post()
        try:
            actions.change_password(
                node,
                form_text(form, "new_password"),
                form_text(form, "confirm_password"),
                user=request[USER],
            )
        except ConfigErrors as exc:
            errors = exc.fields()
            status = 400
        else:
            return await saved(request, "Saved: The admin password was changed.", "/users")
    fields = tuple(
        Field(name, label, "password") for name, label in actions.PASSWORD_FIELDS.items()
    )
    values = await context(request, "Users", fields=fields, errors=errors)
    return render(request, "users.html", values, status=status)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_route("GET", "/login", login)
    r.add_route("POST", "/login", login)
    r.add_get("/logout", logout)
    r.add_get("/", overview)
    r.add_get("/status/policy-services", policy_status_page)
    r.add_get(CALLS_PATH, calls_page)
    r.add_post(CALLS_PATH, calls_page)
    r.add_get("/status/events", events_page)
    r.add_get(SERVICES_PATH, services_page)
    for base, form, delete in (
        (SERVICES_PATH, service_form, service_delete),
        (RULES_PATH, rule_form, rule_delete),
    ):
        r.add_get(base + "/new", form)
        r.add_post(base + "/new", form)
        r.add_get(base + "/edit/{name}", form)
        r.add_post(base + "/edit/{name}", form)
        r.add_post(base + "/delete/{name}", delete)
    r.add_get(RULES_PATH, rules_page)
    r.add_get(CERTIFICATES_PATH, certificates_page)
    r.add_post(CERTIFICATES_PATH, certificates_page)
    r.add_get(CERTIFICATES_PATH + "/vcs-ca.pem", ca_certificate)
    r.add_get("/users", users_page)
    r.add_post("/users", users_page)
