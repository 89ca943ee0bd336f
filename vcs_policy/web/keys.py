"""Typed keys of the VCS's web application and requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from vcs_policy.node import VcsNode

NODE: web.AppKey[VcsNode] = web.AppKey("vcs_node")
USER: web.RequestKey[str] = web.RequestKey("vcs_user")
