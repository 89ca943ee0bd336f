"""pytest plugin: a tplab lab as a fixture, so a failover test takes a few lines.

    def test_failover(tplab_lab):
        lab = tplab_lab()                      # the default topology, sim mode
        lab.include("steps/cluster-of-three.yaml")
        lab.kill("conductor-2")
        lab.wait("conductor-initial: clustering.peer2 contains 'Failed'", within_s=30)

`tplab_lab(topology=..., mode=..., seed=..., timing=..., subnet=...)` opens a lab
(`emulator.scenario.lab`) and returns a `LabSession`; every lab a test opened is
closed after it. Each method runs one scenario step (the same steps, checks and
errors as scenario files: `emulator.scenario.loader.parse_steps`) through the
same runner, and raises `StepFailed` (an AssertionError) when the step fails,
with the runner's message. `--tplab-mode sim|real` picks the default mode of a
run; `--tplab-report DIR` writes each lab's trace and HTML report there.

Registered as the `tplab` pytest11 entry point of the package.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from emulator.paths import SCENARIOS_DIR
from emulator.scenario.lab import Lab, open_lab, relocate
from emulator.scenario.loader import parse_steps
from emulator.scenario.model import Mode, Scenario, Timing
from emulator.scenario.runner import Runner
from emulator.scenario.trace import Trace
from netsim.topology import load_topology


class StepFailed(AssertionError):
    """A lab step did not do what it should; the message says what happened."""


class LabSession:
    """One open lab and its runner; methods run steps and return their detail text."""

    def __init__(self, lab: Lab, runner: Runner, name: str) -> None:
        self.lab = lab
        self.runner = runner
        self.name = name
        self._numbered = 0
        self._closed = False
        self.lab.run(self.runner.begin())

    # ---------------------------------------------------------------- steps
    def steps(self, raw: list[dict[str, Any]] | str) -> list[str]:
        """Run steps given as scenario step mappings (or a step file's YAML text)."""
        steps = parse_steps(raw, self.lab.topology, source=f"<{self.name}>", base=SCENARIOS_DIR)
        numbered = []
        for step in steps:
            self._numbered += 1
            numbered.append(dataclasses.replace(step, number=self._numbered))
        self.runner.trace.result.steps += len(numbered)
        before = len(self.runner.trace.events)
        passed = self.lab.run(self.runner.run_steps(numbered))
        new = self.runner.trace.events[before:]
        if not passed:
            failed = [e for e in new if e["kind"] == "step_failed"]
            raise StepFailed(
                f"{failed[-1]['title']}: {failed[-1]['message']}"
                if failed
                else self.runner.trace.result.message
            )
        return [str(e["detail"]) for e in new if e["kind"] == "step_passed"]

    def step(self, action: str, body: Any, *, name: str | None = None) -> str:
        raw: dict[str, Any] = {action: body}
        if name is not None:
            raw["name"] = name
        details = self.steps([raw])
        return details[-1] if details else ""

    def set(self, host: str, page: str, *, refused: str | None = None, **values: Any) -> str:
        body: dict[str, Any] = {"host": host, "page": page, "values": values}
        if refused is not None:
            body["refused"] = refused
        return self.step("set", body)

    def restart(self, host: str) -> str:
        return self.step("restart", host)

    def kill(self, host: str) -> str:
        return self.step("kill", host)

    def start(self, host: str) -> str:
        return self.step("start", host)

    def wait(self, until: str, *, within_s: float = 60) -> str:
        return self.step("wait", {"until": until, "within_s": within_s})

    def expect(self, condition: str) -> str:
        return self.step("expect", condition)

    def impair(self, src: str, dst: str, *, both: bool = False, **changes: Any) -> str:
        return self.step("impair", {"src": src, "dst": dst, "both": both, **changes})

    def partition(self, *groups: list[str]) -> str:
        return self.step("partition", [list(g) for g in groups])

    def heal(self) -> str:
        return self.step("heal", {})

    def clock(self, host: str, offset_s: float) -> str:
        return self.step("clock", {"host": host, "offset_s": offset_s})

    def firewall(self, proto: str, ports: int | str, action: str = "drop", **where: str) -> str:
        return self.step("firewall", {"proto": proto, "ports": ports, "action": action, **where})

    def call(self, source: str, destination: str, *, expect: str | None = None) -> str:
        body = {"from": source, "to": destination}
        if expect is not None:
            body["expect"] = expect
        return self.step("call", body)

    def load(self, rate: float, duration_s: float, aliases: str, **options: Any) -> str:
        return self.step(
            "load", {"rate": rate, "duration_s": duration_s, "aliases": aliases, **options}
        )

    def settle_loads(self) -> None:
        """Wait for every load started so far; StepFailed if one missed its counts."""
        before = len(self.runner.trace.events)
        if not self.lab.run(self.runner.settle_loads()):
            failed = [e for e in self.runner.trace.events[before:] if e["kind"] == "step_failed"]
            raise StepFailed(failed[-1]["message"] if failed else self.runner.trace.result.message)

    def include(self, step_file: str) -> list[str]:
        return self.steps([{"include": step_file}])

    def sleep(self, seconds: float) -> str:
        return self.step("sleep_s", seconds)

    def api(self, host: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A raw request to a host's JSON API (status, answer); never raises on a status."""
        return self.lab.run(self.runner.call(host, method, path, body))

    # ---------------------------------------------------------------- views
    def ip(self, host: str) -> str:
        return self.lab.topology.host(host).ip

    @property
    def trace(self) -> Trace:
        return self.runner.trace

    def close(self, report_dir: Path | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.lab.run(self.runner.end())
            if report_dir is not None:
                from emulator.scenario.report import write_report

                directory = report_dir / re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)
                self.trace.write(directory / "trace.json")
                write_report(self.trace.to_dict(), directory)
        finally:
            self.lab.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tplab")
    group.addoption(
        "--tplab-mode",
        choices=("sim", "real"),
        default="sim",
        help="tplab_lab: sim (simulated world, virtual time) or real (processes)",
    )
    group.addoption(
        "--tplab-report",
        default=None,
        metavar="DIR",
        help="tplab_lab: write each lab's trace.json and report.html under DIR",
    )


OpenLab = Callable[..., LabSession]


@pytest.fixture
def tplab_lab(request: pytest.FixtureRequest) -> Iterator[OpenLab]:
    """A factory of labs: `tplab_lab(topology="default", mode=None, seed=1, timing=None,
    subnet=None)`; `mode` defaults to --tplab-mode. Every lab is closed after the test."""
    sessions: list[LabSession] = []

    def open_(
        topology: str | Path = "default",
        *,
        mode: str | None = None,
        seed: int = 1,
        timing: Mapping[str, float] | None = None,
        subnet: int | None = None,
    ) -> LabSession:
        path = Path(topology)
        if not path.suffix:
            path = SCENARIOS_DIR / "topologies" / f"{topology}.yaml"
        loaded = load_topology(path)
        if subnet is not None:
            loaded = relocate(loaded, subnet)
        chosen = Mode(mode or request.config.getoption("--tplab-mode"))
        scenario = Scenario(
            name=request.node.name,
            description=f"pytest {request.node.nodeid}",
            source=str(request.node.path),
            topology_file=path,
            topology=loaded,
            steps=(),
            seed=seed,
            timing=Timing(**dict(timing or {})),
        )
        lab = open_lab(loaded, chosen, seed=seed, topology_path=path)
        try:
            runner = Runner(
                scenario,
                lab,
                sample_s=1.0,
                poll_s=0.5,
            )
            session = LabSession(lab, runner, request.node.name)
        except BaseException:
            lab.close()
            raise
        sessions.append(session)
        return session

    yield open_
    report = request.config.getoption("--tplab-report")
    for session in sessions:
        session.close(Path(report) if report else None)
