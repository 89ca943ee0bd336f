"""Maintenance > Upgrade (G-P6) and its JSON twin.

The page shows the running version and the installed image, and takes a software
image as a file upload; the JSON API takes the image as the raw request body.
Either way the image is verified (`peers.core.image`) and, when accepted,
installed and the peer restarts (`peers.software.upgrade`) to come back on the
image's version; a refused image changes nothing and the answer says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
from aiohttp import web

from netsim.websession import api_error, read_limited
from peers.core.image import MAX_IMAGE_BYTES, ImageError
from peers.software import load_installed, upgrade
from peers.web.api import strict_query
from peers.web.keys import NODE, USER
from peers.web.views import page_context

if TYPE_CHECKING:
    from peers.node import PeerNode

TITLE = "Upgrade"
#: the page's file field
FIELD = "image"
TOO_LARGE = f"the file is larger than any software image ({MAX_IMAGE_BYTES} bytes at most)"


def software_state(node: PeerNode) -> dict[str, Any]:
    """The running version and the installed image (None: the factory software)."""
    try:
        installed = load_installed(node.runtime.data_dir)
    except ImageError:
        installed = None
    return {
        "version": node.software_version,
        "installed": installed.to_dict() if installed is not None else None,
    }


async def upgrade_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    error = ""
    status = 200
    if request.method == "POST":
        form = await request.post()
        field = form.get(FIELD)
        if not isinstance(field, web.FileField):
            error = "Choose a software image file to upload."
        else:
            data = field.file.read(MAX_IMAGE_BYTES + 1)
            if len(data) > MAX_IMAGE_BYTES:
                error = f"Upgrade refused: {TOO_LARGE}."
            else:
                try:
                    image = upgrade(node, data, user=request[USER])
                except ImageError as exc:
                    error = f"Upgrade refused: {exc}. Nothing was changed."
                else:
                    context = await page_context(
                        request, TITLE, restarting=True, new_version=image.version, error=""
                    )
                    return aiohttp_jinja2.render_template("upgrade.html", request, context)
        status = 400
    context = await page_context(
        request,
        TITLE,
        restarting=False,
        software=software_state(node),
        field=FIELD,
        error=error,
    )
    return aiohttp_jinja2.render_template("upgrade.html", request, context, status=status)


async def get_upgrade(request: web.Request) -> web.Response:
    return web.json_response(software_state(request.app[NODE]))


async def post_upgrade(request: web.Request) -> web.Response:
    data = await read_limited(request, MAX_IMAGE_BYTES)
    if data is None:
        return api_error(413, f"upgrade refused: {TOO_LARGE}; nothing was changed")
    node = request.app[NODE]
    previous = node.software_version
    try:
        image = upgrade(node, data, user=request[USER])
    except ImageError as exc:
        return api_error(400, f"upgrade refused: {exc}; nothing was changed")
    return web.json_response(
        {"version": image.version, "previous": previous, "restarting": True}, status=202
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/maintenance/upgrade", upgrade_page)
    app.router.add_post("/maintenance/upgrade", upgrade_page)
    app.router.add_get("/api/v1/maintenance/upgrade", strict_query(get_upgrade))
    app.router.add_post("/api/v1/maintenance/upgrade", strict_query(post_upgrade))
