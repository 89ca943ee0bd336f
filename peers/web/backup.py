"""Maintenance > Backup and restore (G-P4) and its JSON twins.

The page has two forms posting to `/maintenance/backup`: *Create system backup
file* (an optional *Encryption password*) answers the file itself as a
download; *Restore* takes the file as an upload with its *Encryption
password* and, when every check passes, stages it for the next restart
(`peers.backup`); a refused file changes nothing and the page says why.

The API: `POST /api/v1/maintenance/backup` with an optional JSON body
`{"password": "..."}` answers the file (`application/gzip`, or
`application/octet-stream` when encrypted) with its name in
Content-Disposition; `POST /api/v1/maintenance/restore` takes the file as the
raw request body and its password in the `X-Backup-Password` header (a
header, not a query parameter, so that it stays out of URLs and their logs;
non-ASCII passwords are sent as UTF-8), and answers 202 when the restore is
staged, 400 when the file is refused, 413 when it is larger than any backup.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from netsim.websession import api_error, get_session, read_limited
from peers.backup import create_backup, stage_restore, staged
from peers.core.backup import MAX_ARCHIVE_BYTES, PASSWORD_MAX, Backup, BackupError
from peers.web.api import read_json_object, strict_query
from peers.web.keys import NODE, USER
from peers.web.views import page_context

TITLE = "Backup and restore"
PATH = "/maintenance/backup"
PASSWORD_HEADER = "X-Backup-Password"
#: the restore form's file field
FIELD = "backup_file"
TOO_LARGE = f"the file is larger than any system backup ({MAX_ARCHIVE_BYTES} bytes at most)"
TOO_LONG = f"the encryption password must be at most {PASSWORD_MAX} characters"


def attachment(name: str, data: bytes) -> web.Response:
    """The backup file as a download named `name` (G-P4)."""
    return web.Response(
        body=data,
        content_type="application/octet-stream" if name.endswith(".enc") else "application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def staged_summary(backup: Backup) -> dict[str, Any]:
    manifest = backup.manifest
    return {
        "created": manifest.created.isoformat(timespec="seconds"),
        "software_version": manifest.software_version,
        "serial": manifest.serial,
    }


# ------------------------------------------------------------------- page
async def backup_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    errors = {"create": "", "restore": ""}
    status = 200
    if request.method == "POST":
        form = await request.post()
        action = form.get("action")
        password = form.get("password", "")
        if not isinstance(password, str):
            password = ""
        if action == "create":
            try:
                name, data = create_backup(node, password=password, user=request[USER])
            except BackupError as exc:
                errors["create"] = f"No backup was made: {exc}."
            else:
                return attachment(name, data)
        elif action == "restore":
            field = form.get(FIELD)
            if not isinstance(field, web.FileField):
                errors["restore"] = "Choose a system backup file to restore."
            else:
                data = field.file.read(MAX_ARCHIVE_BYTES + 1)
                try:
                    if len(data) > MAX_ARCHIVE_BYTES:
                        raise BackupError(TOO_LARGE)
                    stage_restore(node, data, password=password, user=request[USER])
                except BackupError as exc:
                    errors["restore"] = f"Restore refused: {exc}. Nothing was changed."
                else:
                    session = await get_session(request)
                    session["flash"] = (
                        "Restore: the backup file is checked. It replaces this peer's "
                        "configuration when the peer restarts (Maintenance > Restart options)."
                    )
                    raise web.HTTPSeeOther(PATH)
        else:
            raise web.HTTPBadRequest(reason="Unknown action; nothing was done.")
        status = 400
    pending = staged(node)
    context = await page_context(
        request,
        TITLE,
        errors=errors,
        field=FIELD,
        staged=staged_summary(pending) if pending is not None else None,
        password_max=PASSWORD_MAX,
    )
    return aiohttp_jinja2.render_template("backup.html", request, context, status=status)


# -------------------------------------------------------------------- API
async def post_backup(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    body = await read_json_object(request) if raw.strip() else {}
    unknown = sorted(set(body) - {"password"})
    if unknown:
        return api_error(
            400, f"no backup was made: unknown field(s) {', '.join(unknown)}; known: password"
        )
    password = body.get("password", "")
    if not isinstance(password, str):
        return api_error(400, "no backup was made: password must be text (a JSON string)")
    node = request.app[NODE]
    try:
        name, data = create_backup(node, password=password, user=request[USER])
    except BackupError as exc:
        return api_error(400, f"no backup was made: {exc}")
    return attachment(name, data)


async def post_restore(request: web.Request) -> web.StreamResponse:
    data = await read_limited(request, MAX_ARCHIVE_BYTES)
    if data is None:
        return api_error(413, f"restore refused: {TOO_LARGE}; nothing was changed")
    password = request.headers.get(PASSWORD_HEADER, "")
    if len(password) > PASSWORD_MAX:
        return api_error(400, f"restore refused: {TOO_LONG}; nothing was changed")
    if not data:
        return api_error(
            400, "restore refused: the request body must be the backup file; nothing was changed"
        )
    node = request.app[NODE]
    try:
        backup = stage_restore(node, data, password=password, user=request[USER])
    except BackupError as exc:
        return api_error(400, f"restore refused: {exc}; nothing was changed")
    return web.json_response(
        {"restart_required": True, "encrypted": backup.encrypted, **staged_summary(backup)},
        status=202,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, backup_page)
    app.router.add_post(PATH, backup_page)
    app.router.add_post("/api/v1/maintenance/backup", strict_query(post_backup))
    app.router.add_post("/api/v1/maintenance/restore", strict_query(post_restore))
