"""The OpenAPI 3.1 document of the peer's JSON API, built from the settings registry."""

from __future__ import annotations

from typing import Any

from peers.core.settings import Setting, page_settings
from peers.web.views import SETTINGS_PAGES

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _field_schema(setting: Setting) -> dict[str, Any]:
    if setting.kind == "list":
        return {
            "oneOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "string", "description": "comma or newline separated"},
            ]
        }
    if setting.kind == "int":
        return {"type": ["integer", "string"]}
    if setting.kind == "bool":
        return {"type": ["boolean", "string"]}
    if setting.kind == "choice":
        return {"type": "string", "enum": list(setting.choices)}
    return {"type": "string"}


def _response_schema(setting: Setting) -> dict[str, Any]:
    if setting.kind == "list":
        return {"type": "array", "items": {"type": "string"}}
    if setting.kind == "int":
        return {"type": "integer"}
    if setting.kind == "bool":
        return {"type": "boolean"}
    return {"type": "string"}


def _errors() -> dict[str, Any]:
    body = {"application/json": {"schema": ERROR}}
    return {
        "400": {"description": "invalid input; nothing was saved", "content": body},
        "401": {
            "description": "HTTP Basic authentication with the admin account required",
            "content": body,
        },
    }


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for url_part, (page, title) in SETTINGS_PAGES.items():
        settings = page_settings(page)
        names = {s.key.split(".", 1)[1]: s for s in settings}
        get_props = {}
        for name, s in names.items():
            if s.secret:
                get_props[f"{name}_set"] = {"type": "boolean"}
            else:
                get_props[name] = _response_schema(s)
        paths[f"/api/v1/system/{url_part}"] = {
            "get": {
                "summary": f"System > {title}",
                "responses": {
                    "200": {
                        "description": "the active settings, pending ones and the page status",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["settings", "pending", "restart_required"],
                                    "properties": {
                                        "settings": {"type": "object", "properties": get_props},
                                        "pending": {"type": "object"},
                                        "restart_required": {"type": "boolean"},
                                        "status": {"type": "object"},
                                    },
                                }
                            }
                        },
                    },
                    **_errors(),
                },
            },
            "put": {
                "summary": f"Save System > {title}"
                + (" (takes effect after a restart)" if any(s.restart for s in settings) else ""),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "minProperties": 1,
                                "properties": {
                                    name: {**_field_schema(s), "description": s.label}
                                    for name, s in names.items()
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "saved",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(),
                },
            },
        }
    paths["/api/v1/maintenance/restart"] = {
        "post": {
            "summary": "Maintenance > Restart options > Restart",
            "responses": {"202": {"description": "restarting"}, **_errors()},
        }
    }
    paths["/api/v1/status/alarms"] = {
        "get": {
            "summary": "Status > Alarms",
            "responses": {"200": {"description": "active alarms"}, **_errors()},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tplab TelePresence Conductor peer API", "version": "1"},
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
        "paths": paths,
    }
