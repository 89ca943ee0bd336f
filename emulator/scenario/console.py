"""Live terminal output of a scenario run: a progress bar over the steps, and one
line per step result, fault, host state change and finished call load.

`StepConsole` is a trace listener (`Runner(listeners=[...])`); it only prints.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text


class StepConsole:
    def __init__(self, console: Console, total_steps: int, *, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[now]}"),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("steps", total=total_steps, now="")

    def __enter__(self) -> StepConsole:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def _line(self, t: float, style: str, mark: str, text: str) -> None:
        line = Text(f"{t:8.1f}s ", style="dim")
        line.append(f"{mark} ", style=style)
        line.append(text)
        self.progress.console.print(line)

    def __call__(self, event: dict[str, Any]) -> None:
        kind, t = event["kind"], float(event["t"])
        if kind == "step_started":
            self.progress.update(self.task, now=f"{event['title']}  (t={t:.1f}s)")
        elif kind == "step_passed":
            self.progress.advance(self.task)
            detail = f" - {event['detail']}" if event.get("detail") else ""
            self._line(t, "green", "PASS", f"{event['title']}{detail}")
        elif kind == "step_failed":
            self._line(t, "bold red", "FAIL", f"{event['title']}: {event['message']}")
        elif kind == "fault_started":
            self._line(t, "magenta", "FAULT", str(event["label"]))
        elif kind == "fault_ended":
            self._line(t, "magenta", "ENDED", str(event["fault"]))
        elif kind == "host_state" and self.verbose:
            self._line(t, "cyan", "HOST", f"{event['host']} {event['state']}")
        elif kind == "load_finished":
            counts = ", ".join(f"{k} {v}" for k, v in sorted(event["by_outcome"].items()))
            self._line(t, "cyan", "LOAD", f"load {event['load_id']} finished: {counts or 'none'}")
        elif kind in ("peer_status", "server_status", "alarm_raised") and self.verbose:
            self._line(t, "dim", "...", _describe(event))


def _describe(event: dict[str, Any]) -> str:
    if event["kind"] == "peer_status":
        return f"{event['observer']}: Peer {event['slot']} {event['text'] or '(empty)'}"
    if event["kind"] == "server_status":
        return f"{event['vcs']}: Server {event['server']} {event['text']}"
    return f"{event['host']}: alarm {event['id']} {event['description']}"
