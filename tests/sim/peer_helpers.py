"""A Conductor peer in a seeded simulated world, driven over HTTPS from another host.

`PeerLab` runs one `PeerNode` in a `SimWorld` and talks to it from the `vcs`
host's network through `NetsimConnector`, as a browser (login session, CSRF
tokens, forms) and as an API client (HTTP Basic). Its methods are plain
functions that advance the simulated loop, so hypothesis tests can call them
from `@given` bodies.
"""

from __future__ import annotations

import asyncio
import base64
import html
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import aiohttp

from netsim.http import NetsimConnector
from netsim.sim import SimWorld
from netsim.topology import parse_topology
from peers.node import Outcome, PeerNode
from peers.store import DEFAULT_PASSWORD

PEER_IP = "127.60.0.1"
OTHER_PEER_IP = "127.60.0.2"
CLIENT_IP = "127.60.0.9"
TOPOLOGY = f"""\
version: 1
hosts:
  - {{name: conductor-a, role: conductor, ip: {PEER_IP}}}
  - {{name: conductor-b, role: conductor, ip: {OTHER_PEER_IP}}}
  - {{name: vcs, role: vcs, ip: {CLIENT_IP}}}
"""
#: virtual seconds for the peer's site to come up (nothing real waits)
START_S = 0.5


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Reply:
    status: int
    text: str
    url: str
    history: tuple[int, ...] = ()

    def json(self) -> Any:
        import json

        return json.loads(self.text)


class PageParser(HTMLParser):
    """What the accessibility checks need: headings, labels, form controls, nav, forms."""

    def __init__(self) -> None:
        super().__init__()
        self.h1: list[str] = []
        self.labels_for: list[str] = []
        self.controls: list[dict[str, str]] = []
        self.navs = 0
        self.forms: list[dict[str, str]] = []
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "h1":
            self._in_h1 = True
            self.h1.append("")
        elif tag == "label" and "for" in a:
            self.labels_for.append(a["for"])
        elif tag in ("input", "select", "textarea"):
            self.controls.append({"tag": tag, **a})
        elif tag == "nav":
            self.navs += 1
        elif tag == "form":
            self.forms.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1[-1] += data


def parse_page(text: str) -> PageParser:
    parser = PageParser()
    parser.feed(text)
    parser.close()
    return parser


def csrf_of(text: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]*)"', text)
    assert match, "page has no CSRF token"
    return html.unescape(match.group(1))


def field_errors(text: str) -> list[str]:
    return [html.unescape(e) for e in re.findall(r'class="field-error"[^>]*>([^<]*)</span>', text)]


def flash_of(text: str) -> str:
    match = re.search(r'class="flash"[^>]*>(.*?)</p>', text, re.S)
    return re.sub(r"<[^>]+>", "", html.unescape(match.group(1))) if match else ""


class Browser:
    """Requests to `base` over HTTPS from a simulated host, as a browser and an API
    client make them: plain functions that advance the simulated loop."""

    sim: SimWorld
    session: aiohttp.ClientSession | None
    base: str
    admin_password: str

    async def _request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        assert self.session is not None
        async with self.session.request(
            method, self.base + path, ssl=False, headers=dict(headers or {}), **kwargs
        ) as response:
            text = await response.text(errors="replace")
            return Reply(
                response.status,
                text,
                str(response.url),
                tuple(r.status for r in response.history),
            )

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        return self.sim.run(self._request(method, path, **kwargs))

    def login(self, user: str = "admin", password: str | None = None) -> Reply:
        return self.request(
            "POST",
            "/login",
            data={
                "username": user,
                "password": self.admin_password if password is None else password,
            },
        )

    def page(self, path: str) -> Reply:
        return self.request("GET", path)

    def post_form(
        self,
        path: str,
        data: Mapping[str, str],
        *,
        csrf: str | bool | None = True,
        token_from: str | None = None,
        follow: bool = True,
    ) -> Reply:
        """POST a form the way a browser does: with the CSRF token of the page at
        `token_from` (default `path`), `csrf=False` for none, or a given token."""
        form = dict(data)
        if csrf is True:
            form["csrf_token"] = csrf_of(self.page(token_from or path).text)
        elif isinstance(csrf, str):
            form["csrf_token"] = csrf
        return self.request("POST", path, data=form, allow_redirects=follow)


class PeerLab(Browser):
    def __init__(self, seed: int = 7) -> None:
        self.sim = SimWorld(parse_topology(TOPOLOGY, source="peer-pages"), seed=seed)
        self.base = f"https://{PEER_IP}:8443"
        self.admin_password = DEFAULT_PASSWORD
        self.node = PeerNode(self.sim.runtime("conductor-a"))
        self._task: asyncio.Task[Outcome] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.sim.run(self._start())

    # ------------------------------------------------------------ lifecycle
    async def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.node.run())
        await asyncio.sleep(START_S)
        if self.session is None:
            client = self.sim.runtime("vcs").network
            self.session = aiohttp.ClientSession(
                connector=NetsimConnector(client, ssl_context=None),
                cookie_jar=aiohttp.CookieJar(unsafe=True),
            )

    def restart(self, *, via: str = "api") -> Outcome:
        """Maintenance > Restart options > Restart (over the API, or the page's form);
        then the lab starts a new PeerNode on the same runtime, as the supervisor
        would (G-P7)."""
        if via == "api":
            reply = self.api("POST", "/api/v1/maintenance/restart")
            assert reply.status == 202, reply.text
        else:
            reply = self.post_form("/maintenance/restart", {})
            assert reply.status == 200, reply.text
            assert "The system is restarting" in reply.text
        return self.restarted()

    def restarted(self) -> Outcome:
        """After a restart was asked for (Maintenance > Restart options, Upgrade): wait
        until the node ends, then start a new PeerNode on the same runtime."""
        outcome = self.sim.run(self._wait_done())
        self.node = PeerNode(self.sim.runtime("conductor-a"))
        self.sim.run(self._start())
        return outcome

    async def _wait_done(self) -> Outcome:
        assert self._task is not None
        return await self._task

    def close(self) -> None:
        async def stop() -> None:
            self.node.stop()
            if self._task is not None:
                await self._task
            if self.session is not None:
                await self.session.close()

        try:
            self.sim.run(stop())
        finally:
            self.sim.close()

    # ------------------------------------------------------------- requests

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        password: str | None = None,
        user: str = "admin",
        authorization: str | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        if authorization is None:
            authorization = basic_auth(user, self.admin_password if password is None else password)
        headers = {"Authorization": authorization} if authorization else {}
        kwargs: dict[str, Any] = {}
        if raw is not None:
            kwargs["data"] = raw
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        return self.request(method, path, headers=headers, **kwargs)

    # ---------------------------------------------------------------- state
    def running(self) -> bool:
        """The node still serves (no restart or stop has ended its run)."""
        self.sim.run(asyncio.sleep(START_S))
        return self._task is not None and not self._task.done()

    def snapshot(self) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        """Everything a refused request must leave alone."""
        store = self.node.store
        return store.settings(), store.pending(), store.default_passwords()


@contextmanager
def peer_lab(seed: int = 7) -> Iterator[PeerLab]:
    lab = PeerLab(seed)
    try:
        yield lab
    finally:
        lab.close()
