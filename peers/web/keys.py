"""Typed application keys shared by the web modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from peers.node import PeerNode

NODE: web.AppKey[PeerNode] = web.AppKey("node")
#: PEM of the server certificate this app was started with: the node loads its TLS
#: context right after `make_app`, so certificates regenerated later are served only
#: after a restart, and the pages can say so.
SERVED_CERT: web.AppKey[str] = web.AppKey("served_cert")
#: the logged-in account of a request (pages: the session's; API: HTTP Basic's)
USER: web.RequestKey[str] = web.RequestKey("user")
