"""The lab home page, served by the supervisor on its control address (`GET /`).

It lists the hosts with links to their admin pages and their accounts; for a
training lab (`exercise.json` on the state dir, see `emulator.training.session`)
also the introduction and every task's instructions (Markdown, rendered without
raw HTML), each task's live result (passed / not yet, with the hints), and the
world's firewall rules with a Remove button each (a firewall belongs to the
network team: removing a rule stands for asking them).

While a training lab is ready, a background task grades it every
`GRADE_EVERY_S` seconds, so tasks that latch are seen passed even when the
trainee never asks; `GET /` with `?check=now` (the page's "Check now" button)
grades at once, and `GET /lab/grade` answers the latest grade as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from aiohttp import web

from emulator.training.session import TrainingError, exercise_of, grade_lab, read_state

if TYPE_CHECKING:
    from emulator.supervisor import Supervisor

GRADE_EVERY_S = 10.0

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("emulator.training", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def markdown(text: str) -> str:
    """Markdown to HTML; raw HTML in the text is escaped, not passed through."""
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": False}).render(text))


class Home:
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.state_dir: Path = supervisor.state_dir
        self.grade: dict[str, Any] | None = None
        self.error = ""
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def regrade(self) -> None:
        """Grade the training lab now (one grading at a time); keeps the latest result."""
        async with self._lock:
            state = read_state(self.state_dir)
            if state is None or state.get("state") != "ready":
                return
            try:
                grade = await asyncio.to_thread(grade_lab, self.state_dir)
            except TrainingError as exc:
                self.error = str(exc)
                return
            self.grade, self.error = grade.to_dict(), ""

    async def _grade_forever(self) -> None:
        while True:
            await asyncio.sleep(GRADE_EVERY_S)
            await self.regrade()

    async def start(self, _: web.Application) -> Any:
        self._task = asyncio.get_running_loop().create_task(self._grade_forever())
        yield
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def context(self) -> dict[str, Any]:
        snapshot = self.supervisor.snapshot()
        state = read_state(self.state_dir)
        context: dict[str, Any] = {
            "lab": snapshot,
            "hosts": snapshot["hosts"],
            "training": None,
            "grade": None,
            "error": self.error,
            "firewall": [],
            "markdown": markdown,
        }
        world = self.supervisor.world
        if world is not None:
            context["firewall"] = [rule.to_dict() for rule in world.table.firewall]
        if state is None:
            return context
        try:
            exercise, _ = exercise_of(self.state_dir)
        except TrainingError as exc:
            context["error"] = str(exc)
            return context
        results = {t["id"]: t for t in (self.grade or {}).get("tasks", [])}
        context["training"] = {"exercise": exercise, "state": state, "results": results}
        context["grade"] = self.grade
        return context


async def home_page(request: web.Request) -> web.Response:
    home = request.app[HOME]
    if request.query.get("check") == "now":
        await home.regrade()
        raise web.HTTPSeeOther("/#tasks")
    html = _environment.get_template("home.html.j2").render(**home.context())
    return web.Response(text=html, content_type="text/html")


async def grade_json(request: web.Request) -> web.Response:
    home = request.app[HOME]
    await home.regrade()
    if home.grade is None:
        state = read_state(home.state_dir)
        reason = home.error or (
            f"the lab is {state.get('state')}" if state else "no training lab runs here"
        )
        return web.json_response({"error": reason}, status=409)
    return web.json_response(home.grade)


async def remove_rule(request: web.Request) -> web.Response:
    """The network team removes a firewall rule (the page's Remove button)."""
    from netsim.core.impairments import ImpairmentError

    home = request.app[HOME]
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        message = f"a form of {origin} cannot change this lab's firewall"
        return web.json_response({"error": message}, status=403)
    world = home.supervisor.world
    text = request.match_info["rule"]
    if world is None or not text.isdigit():
        return web.json_response({"error": f"no firewall rule {text!r}"}, status=404)
    try:
        world.firewall_remove(int(text))
    except (ImpairmentError, KeyError, ValueError) as exc:
        return web.json_response({"error": str(exc)}, status=404)
    raise web.HTTPSeeOther("/#network")


HOME = web.AppKey("training_home", Home)


def add_routes(app: web.Application, supervisor: Supervisor) -> None:
    home = Home(supervisor)
    app[HOME] = home
    app.router.add_get("/", home_page)
    app.router.add_get("/lab/grade", grade_json)
    app.router.add_post("/lab/firewall/{rule}/remove", remove_rule)
    app.cleanup_ctx.append(home.start)
