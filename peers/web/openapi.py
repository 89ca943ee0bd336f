"""The OpenAPI 3.1 document of the peer's JSON API, built from the settings registry.

Request schemas say exactly which JSON types each field takes (`api.KIND_TYPES`),
so a body that breaks the schema is always refused with 400; values the schema
allows may still be refused by the registry's validators (an IPv4 address is a
string of a particular form), also with 400 and nothing saved.
"""

from __future__ import annotations

from typing import Any

from peers.core.backup import PASSWORD_MAX as BACKUP_PASSWORD_MAX
from peers.core.conference_config import (
    BRIDGE_TYPES,
    CASCADES_RESERVED_MAX,
    CONFERENCE_TYPES,
    FIELDS,
    PARTICIPANT_LIMIT_MAX,
    POOL_BRIDGES_MAX,
    PREFERENCE_POOLS_MAX,
    PROTOCOLS,
    REQUIRED,
    Section,
)
from peers.core.policy import (
    ALIAS_FIELDS,
    ALIAS_REQUIRED,
    PRIORITY_MAX,
    PRIORITY_MIN,
    Role,
)
from peers.core.settings import Setting, page_settings
from peers.store import USERS
from peers.web.actions import ACCOUNTS, PASSWORD_FIELDS
from peers.web.api import LOG_LIMIT_DEFAULT, LOG_LIMIT_MAX
from peers.web.conference_config import PAGES
from peers.web.views import SETTINGS_PAGES

Schema = dict[str, Any]

ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "fields": {
            "type": "object",
            "description": "field name -> 'Label: message'",
            "additionalProperties": {"type": "string"},
        },
    },
}
STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
INTEGER: Schema = {"type": "integer"}
STRINGS: Schema = {"type": "array", "items": STRING}


def _object(properties: dict[str, Schema], *, required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
    }


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _field_schema(setting: Setting) -> Schema:
    """What PUT takes for one field (api.KIND_TYPES)."""
    if setting.kind == "list":
        return {
            "anyOf": [
                {"type": "array", "items": STRING},
                {"type": "string", "description": "entries separated by commas or new lines"},
            ]
        }
    if setting.kind == "int":
        return {"type": ["integer", "string"]}
    if setting.kind == "bool":
        return {"type": ["boolean", "string"], "description": "true / false, or On / Off"}
    if setting.kind == "choice":
        return {"type": "string", "enum": list(setting.choices)}
    return STRING


def _value_schema(setting: Setting) -> Schema:
    """What GET answers for one field."""
    if setting.kind == "list":
        return STRINGS
    if setting.kind == "int":
        return INTEGER
    if setting.kind == "bool":
        return BOOLEAN
    if setting.kind == "choice":
        return {"type": "string", "enum": list(setting.choices)}
    return STRING


def _responses(ok_status: str, description: str, schema: Schema) -> dict[str, Any]:
    body = _json(ERROR)
    responses: dict[str, Any] = {ok_status: {"description": description, "content": _json(schema)}}
    responses["400"] = {
        "description": "invalid input (body, or an unknown query parameter); nothing was done",
        "content": body,
    }
    responses["401"] = {
        "description": "HTTP Basic authentication with the admin account required",
        "content": body,
    }
    return responses


def _put_body(properties: dict[str, Schema], *, required: list[str]) -> dict[str, Any]:
    schema: Schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }
    if required:
        schema["required"] = required
    else:
        schema["minProperties"] = 1
    return {"required": True, "content": _json(schema)}


def _settings_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for spec in SETTINGS_PAGES.values():
        settings = page_settings(spec.page)
        names = {s.key.split(".", 1)[1]: s for s in settings}
        values: dict[str, Schema] = {}
        for name, s in names.items():
            if s.secret:
                values[f"{name}_set"] = {**BOOLEAN, "description": f"{s.label} is set"}
            else:
                values[name] = {**_value_schema(s), "description": s.label}
        restart = any(s.restart for s in settings)
        tag = spec.menu
        paths[spec.api_path] = {
            "get": {
                "operationId": f"get_{spec.page}",
                "tags": [tag],
                "summary": f"{spec.menu} > {spec.title}",
                "responses": _responses(
                    "200",
                    "the active settings, saved ones waiting for a restart, and the page status",
                    _object(
                        {
                            "settings": _object(values),
                            "pending": {
                                "type": "object",
                                "description": "saved values that take effect after a restart",
                            },
                            "restart_required": BOOLEAN,
                            "status": {"type": "object"},
                        }
                    ),
                ),
            },
            "put": {
                "operationId": f"put_{spec.page}",
                "tags": [tag],
                "summary": f"Save {spec.menu} > {spec.title}"
                + (" (takes effect after a restart, G-P7)" if restart else ""),
                "requestBody": _put_body(
                    {
                        name: {**_field_schema(s), "description": s.label}
                        for name, s in names.items()
                    },
                    required=[],
                ),
                "responses": _responses(
                    "200",
                    "saved; restart settings are pending until Maintenance > Restart options",
                    _object(
                        {
                            "saved": {"type": "object"},
                            "pending": STRINGS,
                            "restart_required": BOOLEAN,
                        }
                    ),
                ),
            },
        }
    return paths


LIMIT_PARAMETER = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": f"newest entries to answer (default {LOG_LIMIT_DEFAULT})",
    "schema": {"type": "integer", "minimum": 1, "maximum": LOG_LIMIT_MAX},
}

PEER = _object(
    {"label": STRING, "address": STRING, "status": STRING, "state": STRING},
)
OPTION_STATUS = _object(
    {
        "release_key_installed": BOOLEAN,
        "edition": STRING,
        "clustering_supported": BOOLEAN,
        "capacity": {"type": "string", "enum": ["Full capacity", "TelePresence Conductor Select"]},
    }
)
OVERVIEW = _object(
    {
        "system_host_name": STRING,
        "system_name": STRING,
        "fqdn": STRING,
        "lan1_address": STRING,
        "software_version": STRING,
        "serial_number": STRING,
        "time": STRING,
        "time_zone": STRING,
        "started": STRING,
        "alarm_count": INTEGER,
        "restart_required": BOOLEAN,
        "pending": STRINGS,
        "cluster": _object(
            {
                "clustered": BOOLEAN,
                "text": STRING,
                "peers": {"type": "array", "items": PEER},
                "changes_pending": BOOLEAN,
            }
        ),
        "option_keys": OPTION_STATUS,
        "policy_service": _object(
            {
                "policy_path": STRING,
                "status_path": STRING,
                "conference_aliases": INTEGER,
                "answered": {**INTEGER, "description": "policy requests answered with CPL"},
                "allowed": INTEGER,
                "rejected": INTEGER,
                "bad_requests": {**INTEGER, "description": "policy requests refused with 4xx"},
                "refused": {**INTEGER, "description": "401 / 403 answers (both endpoints)"},
                "status_polls": INTEGER,
                "last_request": {**STRING, "description": "time of the last answer, or empty"},
                "last_status_poll": STRING,
            }
        ),
    }
)
ALIAS_PROPERTIES: dict[str, Schema] = {
    "name": STRING,
    "incoming_alias": {
        **STRING,
        "description": "regex matching the whole destination alias (case-insensitive, "
        "without sip:)",
    },
    "conference_name": {**STRING, "description": "template: \\1 to \\9 are the regex groups"},
    "priority": {"type": "integer", "minimum": PRIORITY_MIN, "maximum": PRIORITY_MAX},
    "role": {"type": "string", "enum": [r.value for r in Role]},
    "may_create": BOOLEAN,
    "template": {
        **STRING,
        "description": "Conference template: a conference template's name; empty for none",
    },
}
ALIAS = _object(
    {
        name: {**schema, "description": schema.get("description", ALIAS_FIELDS[name])}
        for name, schema in ALIAS_PROPERTIES.items()
    }
)
ALIAS_NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "the alias's Name",
    "schema": STRING,
}
EVENTS = _object(
    {
        "events": {
            "type": "array",
            "items": _object(
                {
                    "id": INTEGER,
                    "time": STRING,
                    "level": STRING,
                    "event": STRING,
                    "detail": {"type": "object"},
                }
            ),
        }
    }
)
CONFIG_LOG = _object(
    {
        "entries": {
            "type": "array",
            "items": _object(
                {
                    "id": INTEGER,
                    "time": STRING,
                    "user": STRING,
                    "setting": STRING,
                    "old": STRING,
                    "new": STRING,
                    "pending": BOOLEAN,
                }
            ),
        }
    }
)
ALARMS = _object(
    {
        "alarms": {
            "type": "array",
            "items": _object(
                {
                    "id": INTEGER,
                    "subject": STRING,
                    "title": STRING,
                    "severity": {"type": "string", "enum": ["Warning", "Error", "Critical"]},
                    "description": STRING,
                    "action": STRING,
                    "raised": STRING,
                }
            ),
        }
    }
)
CERTIFICATE = _object(
    {
        "subject": STRING,
        "issuer": STRING,
        "serial": STRING,
        "not_before": STRING,
        "not_after": STRING,
        "alt_names": STRING,
        "fingerprint_sha256": STRING,
        "created": STRING,
        "pem": STRING,
    }
)
CERTIFICATES = _object(
    {
        "trusted_ca": CERTIFICATE,
        "server": CERTIFICATE,
        "served_fingerprint_sha256": STRING,
        "restart_required": {
            "type": "boolean",
            "description": "new certificates are stored and served after a restart",
        },
    }
)
USERS_LIST = _object(
    {
        "users": {
            "type": "array",
            "items": _object(
                {
                    "name": {"type": "string", "enum": list(USERS)},
                    "scope": {"type": "string", "enum": ["shared", "peer"]},
                    "default_password": BOOLEAN,
                }
            ),
        }
    }
)


def _other_paths() -> dict[str, Any]:
    def get(op: str, tag: str, summary: str, schema: Schema, **extra: Any) -> dict[str, Any]:
        return {
            "get": {
                "operationId": op,
                "tags": [tag],
                "summary": summary,
                **extra,
                "responses": _responses("200", summary, schema),
            }
        }

    paths: dict[str, Any] = {
        "/api/v1/status": get("get_status", "Status", "Status > Overview", OVERVIEW),
        "/api/v1/status/alarms": get("get_alarms", "Status", "Status > Alarms", ALARMS),
        "/api/v1/status/events": get(
            "get_events", "Status", "Status > Event log", EVENTS, parameters=[LIMIT_PARAMETER]
        ),
        "/api/v1/status/config-log": get(
            "get_config_log",
            "Status",
            "Status > Configuration log",
            CONFIG_LOG,
            parameters=[LIMIT_PARAMETER],
        ),
        "/api/v1/maintenance/restart": {
            "post": {
                "operationId": "restart",
                "tags": ["Maintenance"],
                "summary": "Maintenance > Restart options > Restart (applies pending, G-P7)",
                "responses": _responses(
                    "202", "restarting", _object({"restarting": {"type": "boolean", "const": True}})
                ),
            }
        },
        "/api/v1/maintenance/certificates": get(
            "get_certificates",
            "Maintenance",
            "Maintenance > Security certificates",
            CERTIFICATES,
        ),
        "/api/v1/maintenance/certificates/regenerate": {
            "post": {
                "operationId": "regenerate_certificates",
                "tags": ["Maintenance"],
                "summary": "Make a new CA and server certificate (served after a restart)",
                "responses": _responses("200", "the new certificates", CERTIFICATES),
            }
        },
        "/api/v1/users": get("get_users", "Users", "Users", USERS_LIST),
    }
    for account in USERS:
        paths[f"/api/v1/users/{account}/password"] = {
            "put": {
                "operationId": f"set_{account}_password",
                "tags": ["Users"],
                "summary": f"Users > {ACCOUNTS[account]}: change the password"
                + (" (lowers the default-password alarm, G-P3)"),
                "requestBody": _put_body(
                    {
                        name: {**STRING, "description": label}
                        for name, label in PASSWORD_FIELDS.items()
                    },
                    required=list(PASSWORD_FIELDS),
                ),
                "responses": _responses(
                    "200",
                    "changed",
                    _object(
                        {
                            "changed": {"type": "string", "const": account},
                            "default_password": {"type": "boolean", "const": False},
                        }
                    ),
                ),
            }
        }
    paths.update(_backup_paths())
    paths.update(_alias_paths())
    paths.update(_conference_config_paths())
    paths.update(_upgrade_paths())
    paths["/api/v1/openapi.json"] = {
        "get": {
            "operationId": "get_openapi",
            "tags": ["Meta"],
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "the OpenAPI document", "content": _json({"type": "object"})}
            },
        }
    }
    return paths


def _upgrade_paths() -> dict[str, Any]:
    """Maintenance > Upgrade (G-P6): the running version, the installed image, upload."""
    installed = _object(
        {
            "version": {**STRING, "description": "the image's software version"},
            "file": STRING,
            "sha256": {**STRING, "description": "SHA-256 of the image file"},
            "built": {**STRING, "description": "the image's build time (ISO 8601)"},
            "installed": {**STRING, "description": "when it was installed (ISO 8601)"},
            "previous": {**STRING, "description": "the version that ran before"},
        }
    )
    state = _object(
        {
            "version": {**STRING, "description": "the software version running now"},
            "installed": {
                "anyOf": [installed, {"type": "null"}],
                "description": "the installed image (null: the factory software)",
            },
        }
    )
    accepted = _object(
        {
            "version": {**STRING, "description": "the version the peer restarts on"},
            "previous": {**STRING, "description": "the version running until the restart"},
            "restarting": {"type": "boolean", "const": True},
        }
    )
    responses = _responses("202", "installed; the peer restarts on its version", accepted)
    responses["400"]["description"] = (
        "not a TelePresence Conductor software image this peer accepts (the error says "
        "why: not an image, truncated or corrupt, unknown format, not signed with the "
        "release key, another product, a malformed version); nothing was changed"
    )
    responses["413"] = {
        "description": "larger than any software image; nothing was changed",
        "content": _json(ERROR),
    }
    return {
        "/api/v1/maintenance/upgrade": {
            "get": {
                "operationId": "get_upgrade",
                "tags": ["Maintenance"],
                "summary": "Maintenance > Upgrade: the running version and the installed image",
                "responses": _responses("200", "the software", state),
            },
            "post": {
                "operationId": "upgrade",
                "tags": ["Maintenance"],
                "summary": "Maintenance > Upgrade: install a software image and restart on it",
                "requestBody": {
                    "required": True,
                    "description": "the image file's bytes (tplab image build)",
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "responses": responses,
            },
        }
    }


def _alias_paths() -> dict[str, Any]:
    """Conference configuration > Conference aliases (shared, G-S1)."""
    tag = "Conference configuration"
    properties = {name: {**schema} for name, schema in ALIAS["properties"].items()}
    not_found = {"description": "no alias has this name; nothing was done", "content": _json(ERROR)}

    def one(op: str, summary: str, ok: str, schema: Schema, **extra: Any) -> dict[str, Any]:
        responses = _responses(ok, summary, schema)
        responses["404"] = not_found
        return {
            "operationId": op,
            "tags": [tag],
            "summary": summary,
            "parameters": [ALIAS_NAME_PARAMETER],
            **extra,
            "responses": responses,
        }

    return {
        "/api/v1/conference/aliases": {
            "get": {
                "operationId": "list_conference_aliases",
                "tags": [tag],
                "summary": "Conference configuration > Conference aliases (decision order)",
                "responses": _responses(
                    "200",
                    "every alias, lowest priority first, ties by name",
                    _object({"aliases": {"type": "array", "items": ALIAS}}),
                ),
            },
            "post": {
                "operationId": "create_conference_alias",
                "tags": [tag],
                "summary": "Add a conference alias (priority 100, chairperson, creation "
                "allowed unless given)",
                "requestBody": _put_body(properties, required=list(ALIAS_REQUIRED)),
                "responses": _responses("201", "added", _object({"saved": ALIAS})),
            },
        },
        "/api/v1/conference/aliases/{name}": {
            "get": one("get_conference_alias", "One conference alias", "200", ALIAS),
            "put": one(
                "update_conference_alias",
                "Change a conference alias (any of its fields; name renames it)",
                "200",
                _object({"saved": ALIAS}),
                requestBody=_put_body(properties, required=[]),
            ),
            "delete": one(
                "delete_conference_alias",
                "Delete a conference alias",
                "200",
                _object({"deleted": STRING}),
            ),
        },
    }


NAMES: Schema = {"type": "array", "items": STRING, "uniqueItems": True}
#: what each kind's POST / PUT takes (JSON types exact: a body breaking them is refused)
CONFIG_INPUT: dict[Section, dict[str, Schema]] = {
    Section.BRIDGE: {
        "name": STRING,
        "type": {"type": "string", "enum": list(BRIDGE_TYPES)},
        "address": {**STRING, "description": "Address: an IPv4 address or a host name (FQDN)"},
        "protocol": {"type": "string", "enum": list(PROTOCOLS)},
        "port": {
            "type": "integer",
            "minimum": 1,
            "maximum": 65535,
            "description": "Port: when not given, 8443 for HTTPS and 8080 for HTTP (tplab's "
            "bridges; the product's are 443 and 80); a port left at the old protocol's "
            "default follows a change of protocol",
        },
        "username": STRING,
        "password": {
            **STRING,
            "writeOnly": True,
            "description": "Password (write-only; PUT without it keeps it)",
        },
        "enabled": {**BOOLEAN, "description": "State: Enabled (true) or Disabled (false)"},
    },
    Section.POOL: {
        "name": STRING,
        "type": {"type": "string", "enum": list(BRIDGE_TYPES)},
        "bridges": {
            **NAMES,
            "maxItems": POOL_BRIDGES_MAX,
            "description": "Bridges: names of configured conference bridges of this type",
        },
    },
    Section.PREFERENCE: {
        "name": STRING,
        "pools": {
            **NAMES,
            "minItems": 1,
            "maxItems": PREFERENCE_POOLS_MAX,
            "description": "Pools: names of conference bridge pools, tried in this order",
        },
    },
    Section.TEMPLATE: {
        "name": STRING,
        "type": {"type": "string", "enum": list(CONFERENCE_TYPES)},
        "service_preference": {**STRING, "description": "Service preference: its name"},
        "participant_limit": {
            "type": "integer",
            "minimum": 0,
            "maximum": PARTICIPANT_LIMIT_MAX,
            "description": "Participant limit: 0 for no limit",
        },
        "cascades_reserved": {
            "type": "integer",
            "minimum": 0,
            "maximum": CASCADES_RESERVED_MAX,
            "description": "Cascades reserved: stored; conference placement does not use it yet",
        },
    },
}
BRIDGE_STATUS = _object(
    {"text": STRING, "ok": BOOLEAN},
)


def _config_output(section: Section) -> Schema:
    """What GET answers for one object: the input fields, secrets as `<field>_set`."""
    properties: dict[str, Schema] = {}
    for name, schema in CONFIG_INPUT[section].items():
        label = FIELDS[section][name]
        if name == "password":
            properties["password_set"] = {**BOOLEAN, "description": f"{label} is set"}
            continue
        described = {**schema, "description": schema.get("description", label)}
        for keyword in ("uniqueItems", "minItems", "maxItems"):
            described.pop(keyword, None)  # stored entries are shown as they are
        properties[name] = described
    required = list(properties)
    if section is Section.BRIDGE:
        properties["status"] = {
            **BRIDGE_STATUS,
            "description": "this peer's view of the bridge, once it has checked it",
        }
    return _object(properties, required=required)


def _conference_config_paths() -> dict[str, Any]:
    """Conference bridges, pools, service preferences, templates (shared, G-S1)."""
    tag = "Conference configuration"
    paths: dict[str, Any] = {}
    for section, page in PAGES.items():
        noun = section.noun
        ident = noun.replace(" ", "_")
        output = _config_output(section)
        inputs = {
            name: {**schema, "description": schema.get("description", FIELDS[section][name])}
            for name, schema in CONFIG_INPUT[section].items()
        }
        parameter = {
            "name": "name",
            "in": "path",
            "required": True,
            "description": f"the {noun}'s Name",
            "schema": STRING,
        }
        not_found = {
            "description": f"no {noun} has this name; nothing was done",
            "content": _json(ERROR),
        }

        def one(op: str, summary: str, schema: Schema, **extra: Any) -> dict[str, Any]:
            responses = _responses("200", summary, schema)
            responses["404"] = extra.pop("not_found")
            return {
                "operationId": op,
                "tags": [tag],
                "summary": summary,
                "parameters": [extra.pop("parameter")],
                **extra,
                "responses": responses,
            }

        found = {"parameter": parameter, "not_found": not_found}
        refs = {
            Section.BRIDGE: "pools",
            Section.POOL: "service preferences",
            Section.PREFERENCE: "conference templates",
            Section.TEMPLATE: "conference aliases",
        }[section]
        paths[page.api_path] = {
            "get": {
                "operationId": f"list_{ident}s",
                "tags": [tag],
                "summary": f"Conference configuration > {page.title} (by name)",
                "responses": _responses(
                    "200",
                    f"every {noun}",
                    _object({page.slug: {"type": "array", "items": output}}),
                ),
            },
            "post": {
                "operationId": f"create_{ident}",
                "tags": [tag],
                "summary": f"Add a {noun} (the names it refers to must exist)",
                "requestBody": _put_body(inputs, required=list(REQUIRED[section])),
                "responses": _responses("201", "added", _object({"saved": output})),
            },
        }
        paths[page.api_path + "/{name}"] = {
            "get": one(f"get_{ident}", f"One {noun}", output, **found),
            "put": one(
                f"update_{ident}",
                f"Change a {noun} (any of its fields; name renames it, refused while "
                f"{refs} use it)",
                _object({"saved": output}),
                requestBody=_put_body(inputs, required=[]),
                **found,
            ),
            "delete": one(
                f"delete_{ident}",
                f"Delete a {noun} (refused, 400, while {refs} use it)",
                _object({"deleted": STRING}),
                **found,
            ),
        }
    paths[PAGES[Section.BRIDGE].api_path]["delete"] = {
        "operationId": "delete_all_conference_bridges",
        "tags": [tag],
        "summary": "Delete every conference bridge and take them out of every pool, in one "
        "transaction (G-P5, G-B2: a peer placed in standalone mode deletes its conference "
        "bridges); pools left empty stay",
        "responses": _responses(
            "200",
            "the bridges deleted and the pools emptied",
            _object({"deleted": STRINGS, "pools_emptied": STRINGS}),
        ),
    }
    return paths


def _backup_paths() -> dict[str, Any]:
    """Maintenance > Backup and restore (G-P4): make a backup file, stage a restore."""
    tag = "Maintenance"
    binary: Schema = {"type": "string", "format": "binary"}
    password: Schema = {
        "type": "string",
        "maxLength": BACKUP_PASSWORD_MAX,
        "description": "Encryption password: empty or absent for a plain .tar.gz file",
    }
    made = _responses("200", "", _object({}))
    made["200"] = {
        "description": "the backup file, named <software version>_<hardware serial>_"
        "<YYYY-MM-DD>_<HH-MM-SS UTC>_backup.tar.gz (.tar.gz.enc when encrypted) in "
        "Content-Disposition",
        "headers": {
            "Content-Disposition": {
                "schema": STRING,
                "description": 'attachment; filename="..."',
            }
        },
        "content": {
            "application/gzip": {"schema": binary},
            "application/octet-stream": {"schema": binary},
        },
    }
    made["400"]["description"] = "invalid body or password; no backup was made"
    staged = _object(
        {
            "restart_required": {"type": "boolean", "const": True},
            "encrypted": BOOLEAN,
            "created": {**STRING, "description": "when the backup was made (ISO 8601, UTC)"},
            "software_version": {**STRING, "description": "the software that made it"},
            "serial": {**STRING, "description": "the hardware serial number it was made on"},
        }
    )
    restored = _responses(
        "202", "checked and staged: it replaces the configuration at the next restart", staged
    )
    restored["400"]["description"] = (
        "refused (the error says why: not a tplab backup, unknown format version, "
        "encrypted and no or the wrong password, truncated or corrupt, a checksum "
        "mismatch, made on another peer, invalid contents); nothing was changed"
    )
    restored["413"] = {
        "description": "larger than any system backup; nothing was changed",
        "content": _json(ERROR),
    }
    return {
        "/api/v1/maintenance/backup": {
            "post": {
                "operationId": "create_backup",
                "tags": [tag],
                "summary": "Maintenance > Backup and restore > Create system backup file "
                "(logs and conference records are not included)",
                "requestBody": {
                    "required": False,
                    "content": _json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"password": password},
                        }
                    ),
                },
                "responses": made,
            }
        },
        "/api/v1/maintenance/restore": {
            "post": {
                "operationId": "restore_backup",
                "tags": [tag],
                "summary": "Maintenance > Backup and restore > Restore: check a backup file of "
                "this peer and apply it at the next restart (Maintenance > Restart options)",
                "parameters": [
                    {
                        "name": "X-Backup-Password",
                        "in": "header",
                        "required": False,
                        "description": "the encryption password of a .tar.gz.enc file (UTF-8)",
                        "schema": {"type": "string", "maxLength": BACKUP_PASSWORD_MAX},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "description": "the backup file's bytes",
                    "content": {"application/octet-stream": {"schema": binary}},
                },
                "responses": restored,
            }
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tplab TelePresence Conductor peer API",
            "version": "1",
            "description": "Every admin page has a twin here: same validation, same errors. "
            "Authenticate with HTTP Basic and the admin account. The VCS policy service "
            "endpoints (POST /pdp/policy, GET /pdp/status by default; Conference "
            "configuration > Policy service) are not part of this API: they answer CPL "
            "and plain text.",
        },
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}],
        "paths": {**_settings_paths(), **_other_paths()},
    }
