"""Run a scenario against a lab, step by step, and record everything in a trace.

`run_scenario(scenario, mode, seed=...)` opens a lab (`emulator.scenario.lab`) in
either world, runs `Runner.run()` in it and returns the `Trace`. The runner
uses only public interfaces: the hosts' JSON APIs, the world's impairments and
the lab's host kill/start. It is the same code in both modes; only the lab
differs.

While the steps run, a sampler reads every `sample_s` seconds what an admin
would watch (each peer's System > Clustering statuses and alarms, the VCS's
policy service lines and calls) and records each change in the trace: the
timeline of the report.

Invariants:
- steps run in order; the first step that fails ends the run (later steps are
  not run) and is named in the result with the reason;
- a call load keeps running while later steps run; its expected outcome counts
  are checked when it finishes, and the run waits for every load it started
  (bounded by the load's duration plus `LOAD_GRACE_S`);
- every wait is bounded: a `wait` by its `within_s`, every request by
  `REQUEST_TIMEOUT_S`, a restart or start by `HOST_UP_S`;
- in sim mode the trace depends only on the scenario and the seed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from emulator.scenario.conditions import Condition, Op, Value
from emulator.scenario.lab import Lab, LabError, decode_json, open_lab, relocate
from emulator.scenario.model import (
    Api,
    Backup,
    Call,
    Clock,
    Expect,
    Firewall,
    Heal,
    Impair,
    Kill,
    Load,
    Mode,
    Partition,
    Phase,
    Restart,
    Restore,
    Scenario,
    SetValues,
    Sleep,
    Start,
    Step,
    Upgrade,
    Wait,
    resolve_placeholders,
)
from emulator.scenario.pages import (
    CONDUCTOR_SETTINGS,
    PageKind,
    password_body,
    resolve_page,
)
from emulator.scenario.trace import Trace

DEFAULT_PASSWORD = "TANDBERG"
HOST_UP_S = 60.0
LOAD_GRACE_S = 120.0
SIGNALLING_PORT = 5060
#: neutral values: an impairment set back to these ends its fault window
NEUTRAL: Mapping[str, object] = {
    "latency_ms": 0,
    "jitter_ms": 0,
    "loss": 0,
    "duplicate": 0,
    "reorder": 0,
    "down": False,
}
DEFAULT_MTU_BYTES = 1500

Unreachable = (OSError, TimeoutError, aiohttp.ClientError)


class StepFailed(Exception):
    """A step did not do what it should; the message says what happened instead."""


class ProbeError(Exception):
    """A condition could not be read (host down, field unknown)."""


@dataclass
class _LoadWatch:
    step: Load
    load_id: int
    task: asyncio.Task[None] | None = None
    failure: str = ""


@dataclass
class _Samples:
    peer: dict[tuple[str, int], str] = field(default_factory=dict)
    server: dict[int, str] = field(default_factory=dict)
    alarms: dict[str, dict[tuple[int, str], str]] = field(default_factory=dict)
    calls_total: dict[str, int] = field(default_factory=dict)


def _state_of_peer_text(text: str) -> str:
    if not text:
        return "empty"
    if text == "This system":
        return "this"
    if text.startswith("Active"):
        return "active"
    return "failed"


def _state_of_server(server: Mapping[str, Any]) -> str:
    status = str(server.get("status", "")).lower()
    text = str(server.get("text", ""))
    if status == "active" or text.startswith("Active"):
        return "active"
    if status == "failed" or text.startswith("Failed"):
        return "failed"
    return "unknown"


def _fill(value: Any, lab: Lab) -> Any:
    """`${ip:HOST}` placeholders filled in, recursively, with the lab's addresses."""
    if isinstance(value, str):
        return resolve_placeholders(value, lab.topology)
    if isinstance(value, tuple | list):
        return [_fill(v, lab) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, lab) for k, v in value.items()}
    return value


def _short(answer: Any, limit: int = 300) -> str:
    text = answer if isinstance(answer, str) else json.dumps(answer, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "..."


def compare(op: Op, observed: Any, expected: Value) -> bool:
    if op is Op.CONTAINS or op is Op.EXCLUDES:
        if isinstance(observed, str):
            found = str(expected) in observed
        elif isinstance(observed, Iterable):
            found = expected in observed or str(expected) in {str(v) for v in observed}
        else:
            found = False
        return found if op is Op.CONTAINS else not found
    if op is Op.EQ:
        return bool(observed == expected)
    if op is Op.NE:
        return bool(observed != expected)
    if not isinstance(observed, int | float) or isinstance(observed, bool):
        return False
    number = float(expected)  # the loader checked it is a number
    return {
        Op.GE: observed >= number,
        Op.LE: observed <= number,
        Op.GT: observed > number,
        Op.LT: observed < number,
    }[op]


class Runner:
    def __init__(
        self,
        scenario: Scenario,
        lab: Lab,
        *,
        sample_s: float = 1.0,
        poll_s: float = 0.25,
        listeners: Iterable[Callable[[dict[str, Any]], None]] = (),
    ) -> None:
        self.scenario = scenario
        self.lab = lab
        self.sample_s = sample_s
        self.poll_s = poll_s
        self.trace = Trace(
            scenario={
                "name": scenario.name,
                "description": scenario.description,
                "source": Path(scenario.source).name,
                "topology": lab.topology.name,
                "hosts": [{"name": h.name, "role": h.role, "ip": h.ip} for h in lab.topology.hosts],
            },
            mode=lab.mode.value,
            seed=lab.seed,
            now=lab.now,
            listeners=list(listeners),
        )
        self.passwords: dict[str, str] = {}
        self.known_passwords: list[str] = [DEFAULT_PASSWORD]
        self.loads: list[_LoadWatch] = []
        self.links: dict[tuple[str, str, bool], dict[str, Any]] = {}
        self.firewall_rules: dict[tuple[Any, ...], int] = {}
        #: host -> (file name, bytes) of the last backup this run took of it
        self.backups: dict[str, tuple[str, bytes]] = {}
        self.samples = _Samples()
        self._sampler: asyncio.Task[None] | None = None
        self._host_states: dict[str, str] = {}
        self._started = 0.0

    # ================================================================= run
    async def run(self) -> Trace:
        """Every step of the scenario, the loads awaited; the trace with its result."""
        result = self.trace.result
        result.steps = len(self.scenario.steps)
        try:
            await self.begin()
        except StepFailed as exc:
            result.message = f"setting up the scenario's timing: {exc}"
            result.duration_s = self.lab.now() - self._started
            return self.trace
        try:
            if await self.run_steps(self.scenario.steps):
                await self.settle_loads()
        finally:
            await self.end()
        return self.trace

    async def begin(self) -> None:
        """Record the hosts' states, apply the timing overrides, start sampling."""
        self._started = self.lab.now()
        for host in self.lab.topology.hosts:
            self._record_host_state(host.name)
        await self._apply_timing()
        self._sampler = asyncio.get_running_loop().create_task(self._sample_forever())

    async def run_steps(self, steps: Iterable[Step]) -> bool:
        """Run `steps` in order until one fails (or a load's expectation failed); whether
        every one passed."""
        for step in steps:
            if not await self._run_step(step):
                return False
            self.trace.result.steps_passed += 1
            failed = self._failed_load()
            if failed is not None:
                self._fail_load(failed)
                return False
        return True

    async def settle_loads(self) -> bool:
        """Wait for every load started so far; whether their expectations held."""
        await self._finish_loads()
        failed = self._failed_load()
        if failed is not None:
            self._fail_load(failed)
            return False
        return True

    async def end(self) -> None:
        """Stop loads still running and the sampler, take a last sample, set the result."""
        await self._stop_loads()
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
            self._sampler = None
        await self._sample_once()
        result = self.trace.result
        result.passed = result.failed_step is None and result.steps_passed == result.steps
        result.duration_s = self.lab.now() - self._started

    async def _run_step(self, step: Step) -> bool:
        self.trace.record(
            "step_started",
            number=step.number,
            action=step.action,
            title=step.title,
            line=step.line,
        )
        handler = getattr(self, "_do_" + step.action)
        try:
            detail = await handler(step)
        except (StepFailed, LabError) as exc:
            message = str(exc)
        except Unreachable as exc:
            message = f"no answer: {type(exc).__name__}: {exc}".rstrip(": ")
        else:
            self.trace.record(
                "step_passed",
                number=step.number,
                action=step.action,
                title=step.title,
                detail=detail or "",
            )
            return True
        self._step_failed(step, message)
        return False

    def _step_failed(self, step: Step, message: str) -> None:
        self.trace.record(
            "step_failed", number=step.number, action=step.action, title=step.title, message=message
        )
        result = self.trace.result
        if result.failed_step is None:
            result.failed_step = step.number
            result.message = f"{step.title}: {message}"

    # ============================================================= requests
    async def call(
        self, host: str, method: str, path: str, body: Any = None, *, timeout_s: float = 30.0
    ) -> tuple[int, Any]:
        """A host's JSON API with its admin password (see `call_raw`); (status, JSON)."""
        status, raw, _ = await self.call_raw(host, method, path, json=body, timeout_s=timeout_s)
        return status, decode_json(raw)

    async def call_raw(
        self,
        host: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """A host's API with its admin password; on 401 every password this run has set
        is tried (a replicated password change reaches the other peers)."""
        first = self.passwords.get(host, DEFAULT_PASSWORD)
        candidates = [first, *(p for p in reversed(self.known_passwords) if p != first)]
        answer: tuple[int, bytes, Mapping[str, str]] = (0, b"", {})
        for password in candidates:
            answer = await self.lab.request_raw(
                host, method, path, json=json, data=data, headers=headers,
                password=password, timeout_s=timeout_s,
            )  # fmt: skip
            if answer[0] != 401:
                self.passwords[host] = password
                break
        return answer

    async def _ok(self, host: str, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.call(host, method, path, body)
        if not 200 <= status < 300:
            raise StepFailed(f"{method} {path} on {host}: HTTP {status} {_short(answer)}")
        return answer

    async def _answers(self, host: str) -> bool:
        role = self.lab.topology.host(host).role
        path = "/api/v1/drill" if role in ("mcu", "telepresence-server") else "/api/v1/status"
        try:
            status, _ = await self.lab.request(
                host,
                "GET",
                path,
                password=self.passwords.get(host, DEFAULT_PASSWORD),
                timeout_s=5.0,
            )
        except Unreachable:
            return False
        return status in (200, 401)

    async def _until_up(self, host: str, *, restarts_before: int | None = None) -> None:
        deadline = self.lab.now() + HOST_UP_S
        while self.lab.now() < deadline:
            restarted = restarts_before is None or self.lab.restarts(host) > restarts_before
            if restarted and self.lab.host_state(host) == "up" and await self._answers(host):
                self._record_host_state(host)
                return
            if self.lab.host_state(host) == "failed":
                raise StepFailed(f"{host} failed to start")
            await asyncio.sleep(self.poll_s)
        raise StepFailed(f"{host} did not answer within {HOST_UP_S:g} s")

    # ============================================================== timing
    async def _apply_timing(self) -> None:
        timing = self.scenario.timing
        if timing.bridge_poll_s is None:
            return
        for host in self.lab.topology.hosts:
            if host.role == "conductor":
                await self._ok(
                    host.name,
                    "PUT",
                    CONDUCTOR_SETTINGS["policy"],
                    {"bridge_poll_s": timing.bridge_poll_s},
                )

    # ============================================================== actions
    async def _do_set(self, step: SetValues) -> str:
        role = self.lab.topology.host(step.host).role
        target = resolve_page(role, step.page)
        values = _fill(dict(step.values), self.lab)
        if target.kind is PageKind.PASSWORD:
            status, answer = await self.call(step.host, "PUT", target.path, password_body(values))
            method, path = "PUT", target.path
        elif target.kind is PageKind.SETTINGS:
            method, path = "PUT", target.path
            status, answer = await self.call(step.host, method, path, values)
        else:
            if role == "vcs" and step.page.startswith("policy-services/"):
                values = self._with_vcs_timing(values)
            found, current = await self.call(step.host, "GET", target.item_path)
            if found == 200:
                method, path = "PUT", target.item_path
                if role == "vcs":
                    values = self._merged(current, values, step.page)
                status, answer = await self.call(step.host, method, path, values)
            else:
                method, path = "POST", target.path
                status, answer = await self.call(
                    step.host, method, path, {"name": target.name, **values}
                )
        if step.refused is not None:
            if status != 400:
                raise StepFailed(
                    f"expected the save to be refused, but {method} {path} answered HTTP {status}"
                )
            if step.refused not in json.dumps(answer):
                raise StepFailed(f"refused, but not with {step.refused!r}: {_short(answer)}")
            return f"refused as expected: {_short(answer)}"
        if not 200 <= status < 300:
            raise StepFailed(f"{method} {path} on {step.host}: HTTP {status} {_short(answer)}")
        if target.kind is PageKind.PASSWORD and target.path.endswith("/admin/password"):
            new = str(values["password"])
            self.passwords[step.host] = new
            if new not in self.known_passwords:
                self.known_passwords.append(new)
        pending = answer.get("pending") if isinstance(answer, dict) else None
        return f"saved; restart required for {', '.join(pending)}" if pending else "saved"

    @staticmethod
    def _merged(current: Any, values: dict[str, Any], page: str) -> dict[str, Any]:
        """The VCS saves an object whole: the fields not given keep their current values.
        Its password is write-only (never read back), so a change must give it again."""
        if not isinstance(current, dict):
            return values
        if current.get("password_set") and "password" not in values:
            raise StepFailed(
                f"{page}: the VCS saves it whole and never shows its password: "
                "give password in values too"
            )
        kept = {k: v for k, v in current.items() if k != "password_set"}
        return {**kept, **values}

    def _with_vcs_timing(self, values: dict[str, Any]) -> dict[str, Any]:
        timing = self.scenario.timing
        extra: dict[str, Any] = {}
        if timing.vcs_poll_s is not None:
            extra["poll_interval_s"] = timing.vcs_poll_s
        if timing.vcs_request_timeout_s is not None:
            extra["request_timeout_s"] = timing.vcs_request_timeout_s
        return {**extra, **values}

    async def _do_api(self, step: Api) -> str:
        body = _fill(step.body, self.lab)
        status, answer = await self.call(step.host, step.method, _fill(step.path, self.lab), body)
        ok = status == step.status if step.status is not None else 200 <= status < 300
        if not ok:
            wanted = step.status if step.status is not None else "2xx"
            raise StepFailed(
                f"{step.method} {step.path} on {step.host}: HTTP {status}, expected {wanted}: "
                f"{_short(answer)}"
            )
        return f"HTTP {status}"

    async def _do_restart(self, step: Restart) -> str:
        before = self.lab.restarts(step.host)
        await self._ok(step.host, "POST", "/api/v1/maintenance/restart")
        self.trace.record("host_state", host=step.host, state="restarting")
        self._host_states[step.host] = "restarting"
        await self._until_up(step.host, restarts_before=before)
        return "restarted"

    async def _do_kill(self, step: Kill) -> str:
        await self.lab.kill(step.host)
        self._record_host_state(step.host)
        self.trace.record("fault_started", fault=f"host {step.host}", label=f"{step.host} killed")
        return "killed"

    async def _do_start(self, step: Start) -> str:
        await self.lab.start(step.host)
        await self._until_up(step.host)
        self.trace.record("fault_ended", fault=f"host {step.host}")
        return "up"

    def _resolved(self, condition: Condition) -> Condition:
        """The condition with `${ip:HOST}` filled in with the lab's addresses."""
        value = condition.value
        if isinstance(value, str):
            value = resolve_placeholders(value, self.lab.topology)
        text = resolve_placeholders(condition.text, self.lab.topology)
        return dataclasses.replace(condition, value=value, text=text)

    async def _do_wait(self, step: Wait) -> str:
        step = dataclasses.replace(step, until=self._resolved(step.until))
        deadline = self.lab.now() + step.within_s
        started = self.lab.now()
        last = "not read yet"
        while True:
            try:
                observed = await self.probe(step.until)
            except ProbeError as exc:
                last = str(exc)
            else:
                if compare(step.until.op, observed, step.until.value):
                    return (
                        f"held after {self.lab.now() - started:.1f} s "
                        f"(observed {_short(repr(observed))})"
                    )
                last = f"{step.until.probe} is {_short(repr(observed))}"
            if self.lab.now() >= deadline:
                raise StepFailed(
                    f"{step.until} not reached within {step.within_s:g} s; "
                    f"on {step.until.host}: {last}"
                )
            await asyncio.sleep(min(self.poll_s, max(0.0, deadline - self.lab.now())))

    async def _do_expect(self, step: Expect) -> str:
        step = dataclasses.replace(step, condition=self._resolved(step.condition))
        try:
            observed = await self.probe(step.condition)
        except ProbeError as exc:
            self.trace.record(
                "expectation",
                number=step.number,
                condition=str(step.condition),
                held=False,
                observed=str(exc),
            )
            raise StepFailed(f"{step.condition}: {exc}") from exc
        held = compare(step.condition.op, observed, step.condition.value)
        self.trace.record(
            "expectation",
            number=step.number,
            condition=str(step.condition),
            held=held,
            observed=(
                observed
                if isinstance(observed, int | float | bool)
                else _short(observed if isinstance(observed, str) else str(observed))
            ),
        )
        if not held:
            raise StepFailed(
                f"{step.condition} does not hold: {step.condition.probe} is "
                f"{_short(repr(observed))}"
            )
        return f"holds ({_short(repr(observed))})"

    async def _do_impair(self, step: Impair) -> str:
        await self.lab.impair(step.src, step.dst, both=step.both, changes=dict(step.changes))
        self.trace.record(
            "impairment", action="impair", src=step.src, dst=step.dst, both=step.both,
            **dict(step.changes),
        )  # fmt: skip
        key = (step.src, step.dst, step.both)
        merged = {**self.links.get(key, {}), **step.changes}
        self.links[key] = merged
        active = {
            k: v
            for k, v in merged.items()
            if not (k == "mtu_bytes" and int(v) >= DEFAULT_MTU_BYTES) and NEUTRAL.get(k) != v
        }
        arrow = "<->" if step.both else "->"
        fault = f"link {step.src}{arrow}{step.dst}"
        if active:
            label = f"{step.src}{arrow}{step.dst}: " + ", ".join(
                f"{k}={v}" for k, v in sorted(active.items())
            )
            self.trace.record("fault_started", fault=fault, label=label)
            return label
        self.trace.record("fault_ended", fault=fault)
        return "link back to normal"

    async def _do_partition(self, step: Partition) -> str:
        await self.lab.partition(step.groups)
        label = " | ".join(", ".join(g) for g in step.groups)
        self.trace.record("impairment", action="partition", groups=[list(g) for g in step.groups])
        self.trace.record("fault_started", fault="partition", label=f"partition: {label}")
        return label

    async def _do_heal(self, step: Heal) -> str:
        await self.lab.heal()
        self.trace.record("impairment", action="heal")
        self.trace.record("fault_ended", fault="partition")
        for key, merged in list(self.links.items()):
            if merged.get("down"):
                merged["down"] = False
                arrow = "<->" if key[2] else "->"
                self.trace.record("fault_ended", fault=f"link {key[0]}{arrow}{key[1]}")
        return "partitions ended, links up"

    async def _do_clock(self, step: Clock) -> str:
        await self.lab.clock(step.host, step.offset_s)
        self.trace.record("impairment", action="clock", host=step.host, offset_s=step.offset_s)
        fault = f"clock {step.host}"
        if step.offset_s:
            label = f"{step.host} clock {step.offset_s:+g} s"
            self.trace.record("fault_started", fault=fault, label=label)
            return label
        self.trace.record("fault_ended", fault=fault)
        return f"{step.host} clock back to true time"

    async def _do_firewall(self, step: Firewall) -> str:
        key = (step.proto, step.lo, step.hi, step.src, step.dst)
        ports = f"{step.lo}-{step.hi}" if step.hi != step.lo else str(step.lo)
        where = f"{step.src or '*'} -> {step.dst or '*'}"
        fault = f"firewall {step.proto}/{ports} {where}"
        if step.verdict == "remove":
            rule_id = self.firewall_rules.pop(key, None)
            if rule_id is None:
                raise StepFailed(f"no rule of this scenario blocks {step.proto}/{ports} {where}")
            await self.lab.firewall_remove(rule_id)
            self.trace.record("impairment", action="firewall_remove", rule=rule_id)
            self.trace.record("fault_ended", fault=fault)
            return f"rule {rule_id} removed"
        rule_id = await self.lab.firewall_add(
            step.proto, step.lo, step.hi, step.verdict, step.src, step.dst
        )
        self.firewall_rules[key] = rule_id
        self.trace.record(
            "impairment", action="firewall_add", rule=rule_id, proto=step.proto, ports=ports,
            verdict=step.verdict, src=step.src or "*", dst=step.dst or "*",
        )  # fmt: skip
        self.trace.record(
            "fault_started", fault=fault, label=f"{step.verdict} {step.proto}/{ports} {where}"
        )
        return f"rule {rule_id}: {step.verdict} {step.proto}/{ports} {where}"

    async def _do_call(self, step: Call) -> str:
        answer = await self._ok(
            step.vcs,
            "POST",
            "/api/v1/calls",
            {"source": step.source, "destination": step.destination},
        )
        outcome = answer.get("outcome") if isinstance(answer, dict) else None
        described = (
            f"{outcome} via {answer.get('via') or '-'}"
            + (f" on {answer['bridge']}" if answer.get("bridge") else "")
            + (
                f" ({answer.get('status')} {answer.get('reason')})"
                if outcome != "connected"
                else ""
            )
            if isinstance(answer, dict)
            else str(answer)
        )
        if step.expect is not None and outcome != step.expect.value:
            raise StepFailed(f"expected {step.expect.value}, the call was {described}")
        return described

    async def _do_load(self, step: Load) -> str:
        answer = await self._ok(
            step.vcs,
            "POST",
            "/api/v1/calls/load",
            {
                "rate": step.rate,
                "duration_s": step.duration_s,
                "aliases": step.aliases,
                "source": step.source,
                "hold_s": step.hold_s,
            },
        )
        watch = _LoadWatch(step, int(answer["id"]))
        self.trace.record(
            "load_started", vcs=step.vcs, load_id=watch.load_id, rate=step.rate,
            duration_s=step.duration_s, total=answer.get("total"),
        )  # fmt: skip
        watch.task = asyncio.get_running_loop().create_task(self._watch_load(watch))
        self.loads.append(watch)
        return f"load {watch.load_id}: {answer.get('total')} calls over {step.duration_s:g} s"

    async def _watch_load(self, watch: _LoadWatch) -> None:
        step = watch.step
        deadline = self.lab.now() + step.duration_s + step.hold_s + LOAD_GRACE_S
        path = f"/api/v1/calls/load/{watch.load_id}"
        while True:
            try:
                status, answer = await self.call(step.vcs, "GET", path)
            except Unreachable as exc:
                status, answer = 0, str(exc)
            if status == 200 and isinstance(answer, dict) and answer.get("finished"):
                break
            if self.lab.now() > deadline:
                watch.failure = (
                    f"load {watch.load_id} did not finish within "
                    f"{step.duration_s + step.hold_s + LOAD_GRACE_S:g} s (last answer: "
                    f"{status} {_short(answer)})"
                )
                return
            await asyncio.sleep(self.sample_s)
        by_outcome = {k: int(v) for k, v in dict(answer.get("by_outcome", {})).items()}
        self.trace.record(
            "load_finished", vcs=step.vcs, load_id=watch.load_id, by_outcome=by_outcome
        )
        wrong = [
            f"{outcome.value} {by_outcome.get(outcome.value, 0)} (expected {count})"
            for outcome, count in step.expect.items()
            if by_outcome.get(outcome.value, 0) != count
        ]
        held = not wrong
        self.trace.record(
            "expectation",
            number=step.number,
            condition=", ".join(f"{o.value} == {c}" for o, c in step.expect.items()) or "finished",
            held=held,
            observed=json.dumps(by_outcome, sort_keys=True),
        )
        if wrong:
            watch.failure = f"load {watch.load_id} calls: " + ", ".join(wrong)

    def _failed_load(self) -> _LoadWatch | None:
        return next((w for w in self.loads if w.failure), None)

    def _fail_load(self, watch: _LoadWatch) -> None:
        self._step_failed(watch.step, watch.failure)

    async def _finish_loads(self) -> None:
        tasks = [w.task for w in self.loads if w.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _stop_loads(self) -> None:
        for watch in self.loads:
            if watch.task is not None and not watch.task.done():
                watch.task.cancel()
        await asyncio.gather(
            *(w.task for w in self.loads if w.task is not None), return_exceptions=True
        )

    async def _do_backup(self, step: Backup) -> str:
        """Maintenance > Backup and restore: the file is kept for a later restore step."""
        body = {"password": step.password} if step.password else {}
        status, data, headers = await self.call_raw(
            step.host, "POST", "/api/v1/maintenance/backup", json=body, timeout_s=120.0
        )
        if status != 200:
            raise StepFailed(
                f"backup of {step.host}: HTTP {status} {_short(data.decode(errors='replace'))}"
            )
        disposition = headers.get("Content-Disposition", "")
        name = (
            disposition.split("filename=", 1)[-1].strip('"')
            if "filename=" in disposition
            else "backup"
        )
        self.backups[step.host] = (name, data)
        return f"{name} ({len(data)} bytes)"

    async def _do_restore(self, step: Restore) -> str:
        kept = self.backups.get(step.source)
        if kept is None:
            raise StepFailed(f"no backup of {step.source} was taken earlier in this scenario")
        name, data = kept
        headers = {"Content-Type": "application/octet-stream"}
        if step.password is not None:
            headers["X-Backup-Password"] = step.password
        status, raw, _ = await self.call_raw(
            step.host, "POST", "/api/v1/maintenance/restore", data=data, headers=headers,
            timeout_s=120.0,
        )  # fmt: skip
        text = raw.decode(errors="replace")
        if step.refused is not None:
            if status != 400:
                raise StepFailed(f"expected the restore of {name} to be refused; HTTP {status}")
            if step.refused not in text:
                raise StepFailed(f"refused, but not with {step.refused!r}: {_short(text)}")
            return f"refused as expected: {_short(text)}"
        if not 200 <= status < 300:
            raise StepFailed(f"restore of {name} on {step.host}: HTTP {status} {_short(text)}")
        return f"{name} staged; it applies at the next restart"

    async def _do_upgrade(self, step: Upgrade) -> str:
        """Maintenance > Upgrade with a signed image; the peer restarts on the new version."""
        from emulator.image import build_image

        image = build_image(step.version, built=self.lab.wall())
        before = self.lab.restarts(step.host)
        status, raw, _ = await self.call_raw(
            step.host, "POST", "/api/v1/maintenance/upgrade", data=image,
            headers={"Content-Type": "application/octet-stream"}, timeout_s=120.0,
        )  # fmt: skip
        if not 200 <= status < 300:
            raise StepFailed(
                f"upgrade of {step.host}: HTTP {status} {_short(raw.decode(errors='replace'))}"
            )
        self.trace.record("host_state", host=step.host, state="restarting")
        self._host_states[step.host] = "restarting"
        await self._until_up(step.host, restarts_before=before)
        overview = await self._get(step.host, "/api/v1/status")
        running = overview.get("software_version")
        if running != step.version:
            raise StepFailed(f"{step.host} restarted on {running}, not {step.version}")
        return f"running {running}"

    async def _do_phase(self, step: Phase) -> str:
        self.trace.record("phase", label=step.label)
        return step.label

    async def _do_sleep_s(self, step: Sleep) -> str:
        await asyncio.sleep(step.seconds)
        return f"{step.seconds:g} s"

    # =============================================================== probes
    async def probe(self, condition: Condition) -> Any:
        """The current value of `condition`'s probe on its host; ProbeError if unreadable."""
        host, name = condition.host, condition.probe
        if name == "host.state":
            return self.lab.host_state(host)
        try:
            return await self._read(host, name)
        except Unreachable as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise ProbeError(f"{host} does not answer ({reason})") from exc

    async def _get(self, host: str, path: str) -> Any:
        status, answer = await self.call(host, "GET", path, timeout_s=10.0)
        if status != 200 or not isinstance(answer, dict):
            raise ProbeError(f"GET {path} on {host}: HTTP {status} {_short(answer)}")
        return answer

    async def _read(self, host: str, name: str) -> Any:
        if name.startswith("clustering.peer"):
            answer = await self._get(host, "/api/v1/system/clustering")
            status = answer.get("status", {}).get("peer_status", {})
            return str(status.get(name, {}).get("text", ""))
        if name.startswith("alarms"):
            alarms = (await self._get(host, "/api/v1/status/alarms"))["alarms"]
            if name == "alarms.count":
                return len(alarms)
            if name == "alarms.text":
                return "; ".join(f"{a['id']} {a['subject']}: {a['description']}" for a in alarms)
            return sorted({int(a["id"]) for a in alarms})
        if name.startswith(("setting.", "status.")):
            section, page, fieldname = name.split(".", 2)
            if page not in CONDUCTOR_SETTINGS:
                raise ProbeError(f"unknown page {page!r} (pages: {', '.join(CONDUCTOR_SETTINGS)})")
            answer = await self._get(host, CONDUCTOR_SETTINGS[page])
            values = answer.get("settings" if section == "setting" else "status", {})
            if fieldname not in values:
                raise ProbeError(
                    f"page {page} has no {section} field {fieldname!r} "
                    f"(fields: {', '.join(sorted(values))})"
                )
            return values[fieldname]
        if name == "software_version":
            return str((await self._get(host, "/api/v1/status"))["software_version"])
        if name == "restart_required":
            return bool((await self._get(host, "/api/v1/status"))["restart_required"])
        if name.startswith("vcs.server"):
            services = (await self._get(host, "/api/v1/status/policy-services"))["policy_services"]
            slot = int(name.removeprefix("vcs.server"))
            servers = services[0]["servers"] if services else []
            return str(servers[slot - 1]["text"]) if len(servers) >= slot else ""
        if name.startswith("vcs.calls."):
            stats = (await self._get(host, "/api/v1/calls"))["stats"]
            return int(stats[name.removeprefix("vcs.calls.")])
        if name.startswith("bridge."):
            calls = await self._bridge_calls(host)
            if name == "bridge.participants":
                return len(calls)
            return len({c.get("conference") for c in calls})
        raise ProbeError(f"probe {name!r} cannot be read")  # the loader refuses these

    async def _bridge_calls(self, host: str) -> list[dict[str, Any]]:
        status, answer = await self.lab.request(
            host, "GET", "/calls", password="", scheme="http", port=SIGNALLING_PORT
        )
        if status != 200 or not isinstance(answer, dict):
            raise ProbeError(f"GET /calls on {host}: HTTP {status}")
        calls: list[dict[str, Any]] = answer["calls"]
        return calls

    # ============================================================== sampler
    def _record_host_state(self, host: str) -> None:
        state = self.lab.host_state(host)
        if state == "not built yet":
            return
        if self._host_states.get(host) != state:
            self._host_states[host] = state
            self.trace.record("host_state", host=host, state=state)

    async def _sample_forever(self) -> None:
        while True:
            await self._sample_once()
            await asyncio.sleep(self.sample_s)

    async def _sample_once(self) -> None:
        for host in self.lab.topology.hosts:
            self._record_host_state(host.name)
            if self.lab.host_state(host.name) != "up":
                continue
            try:
                if host.role == "conductor":
                    await self._sample_peer(host.name)
                elif host.role == "vcs":
                    await self._sample_vcs(host.name)
            except (*Unreachable, ProbeError, KeyError, TypeError):
                continue  # a host that does not answer now is sampled next time

    async def _sample_peer(self, host: str) -> None:
        answer = await self._get(host, "/api/v1/system/clustering")
        settings = answer.get("settings", {})
        status = answer.get("status", {}).get("peer_status", {})
        for slot in (1, 2, 3):
            text = str(status.get(f"clustering.peer{slot}", {}).get("text", ""))
            key = (host, slot)
            if self.samples.peer.get(key) != text:
                self.samples.peer[key] = text
                address = str(settings.get(f"peer{slot}", ""))
                spec = self.lab.topology.host_by_ip(address)
                self.trace.record(
                    "peer_status",
                    observer=host,
                    peer=spec.name if spec else address,
                    slot=slot,
                    state=_state_of_peer_text(text),
                    text=text,
                )
        alarms = (await self._get(host, "/api/v1/status/alarms"))["alarms"]
        now = {(int(a["id"]), str(a["subject"])): str(a["description"]) for a in alarms}
        before = self.samples.alarms.get(host, {})
        for alarm, description in sorted(now.items()):
            if alarm not in before:
                self.trace.record(
                    "alarm_raised",
                    host=host,
                    id=alarm[0],
                    subject=alarm[1],
                    description=description,
                )
        for alarm in sorted(before):
            if alarm not in now:
                self.trace.record("alarm_cleared", host=host, id=alarm[0], subject=alarm[1])
        self.samples.alarms[host] = now

    async def _sample_vcs(self, host: str) -> None:
        services = (await self._get(host, "/api/v1/status/policy-services"))["policy_services"]
        servers = services[0]["servers"] if services else []
        for index, server in enumerate(servers, start=1):
            state = _state_of_server(server)
            if self.samples.server.get(index) != state:
                self.samples.server[index] = state
                self.trace.record(
                    "server_status",
                    vcs=host,
                    server=index,
                    address=server.get("address", ""),
                    state=state,
                    text=str(server.get("text", "")),
                )
        calls = await self._get(host, "/api/v1/calls")
        total = int(calls["stats"]["total"])
        seen = self.samples.calls_total.get(host, 0)
        if total > seen:
            fresh = list(calls.get("recent", []))[: total - seen]
            for call in reversed(fresh):
                self.trace.record(
                    "call",
                    vcs=host,
                    source=call.get("source", ""),
                    destination=call.get("destination", ""),
                    outcome=call.get("outcome", ""),
                    status=call.get("status"),
                    reason=call.get("reason", ""),
                    via=call.get("via", ""),
                    bridge=call.get("bridge", ""),
                    setup_ms=round(float(call.get("setup_ms", 0.0)), 1),
                )
            self.samples.calls_total[host] = total


def run_scenario(
    scenario: Scenario,
    mode: Mode,
    *,
    seed: int | None = None,
    second_octet: int | None = None,
    listeners: Iterable[Callable[[dict[str, Any]], None]] = (),
    on_lab_event: Callable[[str], None] | None = None,
    sample_s: float | None = None,
) -> Trace:
    """Open a lab for `scenario` in `mode`, run it, close the lab; the trace.
    `second_octet` moves the topology's addresses (real labs side by side)."""
    topology = scenario.topology
    if second_octet is not None:
        topology = relocate(topology, second_octet)
    chosen_seed = seed if seed is not None else (scenario.seed or 0)
    lab = open_lab(
        topology,
        mode,
        seed=chosen_seed,
        topology_path=scenario.topology_file,
        on_event=on_lab_event,
    )
    try:
        runner = Runner(
            scenario,
            lab,
            # real labs sample every 2 s: each sample is 8 HTTPS requests, and
            # `make test` runs four real labs side by side on two cores
            sample_s=sample_s if sample_s is not None else (1.0 if mode is Mode.SIM else 2.0),
            poll_s=0.5,
            listeners=listeners,
        )
        return lab.run(runner.run())
    finally:
        lab.close()
