"""Grading a live training lab: every task passed or "not yet", with hints that name
the host, the page and the field to look at.

`Grader(exercise, lab).grade()` reads the lab through the same public JSON APIs
and the same `Runner` requests as scenarios (so it works in both worlds, and
tries every password the lab uses, the factory one first) and evaluates every
check of every task. Tasks are graded independently: a later task can pass
before an earlier one.

Invariants: grading only reads (GET requests); a host that does not answer
fails the checks that need it with a hint saying so, never an exception; the
hints of a check are empty exactly when it passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emulator.scenario.conditions import parse_condition
from emulator.scenario.lab import Lab
from emulator.scenario.runner import ProbeError, Runner, Unreachable, compare
from emulator.training.exercise import Check, Exercise

CLUSTERING = "System > Clustering"
SLOTS = (1, 2, 3)
GRADE_TIMEOUT_S = 30.0
#: what to look at when a peer's status says why it is not Active (G-R6, G-R12, G-R14)
ADVICE: tuple[tuple[str, str], ...] = (
    ("pre-shared key mismatch", "the Cluster pre-shared key differs between these two peers"),
    ("peer list mismatch", "the two peers' Peer IP address lists differ"),
    (
        "unreachable",
        "the peers cannot reach each other: check that UDP 500, 1719 and 4369-4380 are "
        "open between them (firewall) and that the peer is running",
    ),
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: Check
    hints: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.hints


@dataclass(frozen=True, slots=True)
class TaskResult:
    id: str
    title: str
    checks: tuple[CheckResult, ...]
    #: when a latching task was first seen passed ("" when not latched)
    latched: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.latched) or all(c.passed for c in self.checks)

    @property
    def hints(self) -> list[str]:
        return [hint for c in self.checks for hint in c.hints]

    def to_dict(self) -> dict[str, Any]:
        hints = [] if self.latched else self.hints
        return {
            "id": self.id,
            "title": self.title,
            "passed": self.passed,
            "hints": hints,
            "latched": self.latched,
        }


@dataclass(frozen=True, slots=True)
class Grade:
    lab: str
    tasks: tuple[TaskResult, ...]
    checked: str

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "passed": self.passed,
            "checked": self.checked,
            "tasks": [t.to_dict() for t in self.tasks],
        }


class _NoAnswer(Exception):
    """A host did not answer a request a check needs (the hint is the message)."""


class Grader:
    def __init__(self, exercise: Exercise, lab: Lab) -> None:
        self.exercise = exercise
        self.lab = lab
        self.runner = Runner(exercise.scenario(topology=lab.topology), lab, poll_s=0.5)
        self.runner.known_passwords = exercise.passwords()
        self.roles = {h.name: h.role for h in lab.topology.hosts}
        self._cache: dict[tuple[str, str], Any] = {}
        self._checks: dict[str, Callable[[Mapping[str, Any]], Awaitable[list[str]]]] = {
            "clustered": self._clustered,
            "standalone": self._standalone,
            "no_bridges": self._no_bridges,
            "vcs_servers": self._vcs_servers,
            "same_setting": self._same_setting,
            "no_alarms": self._no_alarms,
            "synchronised": self._synchronised,
            "software_version": self._software_version,
            "backup_before_joining": self._backup_before_joining,
            "expect": self._expect,
        }

    async def grade(self, latched: dict[str, str] | None = None) -> Grade:
        """Every task of the lab, graded against the lab as it is now. `latched` (task id
        -> when first seen passed) is read and updated for the tasks that latch."""
        self._cache.clear()
        latched = {} if latched is None else latched
        now = datetime.now(UTC).isoformat(timespec="seconds")
        tasks = []
        for task in self.exercise.tasks:
            results = tuple([await self.check(check) for check in task.checks])
            if task.latch and task.id not in latched and all(r.passed for r in results):
                latched[task.id] = now
            since = latched.get(task.id, "") if task.latch else ""
            tasks.append(TaskResult(task.id, task.title, results, since))
        return Grade(self.exercise.name, tuple(tasks), now)

    async def check(self, check: Check) -> CheckResult:
        try:
            async with asyncio.timeout(GRADE_TIMEOUT_S):
                hints = await self._checks[check.kind](check.params)
        except _NoAnswer as exc:
            hints = [str(exc)]
        except TimeoutError:
            hints = [f"the lab did not answer within {GRADE_TIMEOUT_S:g} s: is it running?"]
        return CheckResult(check, tuple(hints))

    # ------------------------------------------------------------- reading
    def ip(self, host: str) -> str:
        return self.lab.topology.host(host).ip

    def host_at(self, address: str) -> str | None:
        return next((h.name for h in self.lab.topology.hosts if h.ip == address), None)

    async def get(self, host: str, path: str) -> Any:
        key = (host, path)
        if key not in self._cache:
            try:
                status, answer = await self.runner.call(host, "GET", path, timeout_s=10.0)
            except Unreachable as exc:
                state = self.lab.host_state(host)
                why = f"its process is {state}" if state != "up" else type(exc).__name__
                raise _NoAnswer(f"{host} does not answer ({why})") from exc
            if status == 401:
                raise _NoAnswer(
                    f"{host}: the lab's admin password does not log in; set Users > admin "
                    f"to {self.exercise.password(self.roles[host])!r}"
                )
            if status != 200:
                raise _NoAnswer(f"{host}: GET {path} answered HTTP {status}")
            self._cache[key] = answer
        return self._cache[key]

    async def clustering(self, peer: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self.get(peer, "/api/v1/system/clustering")
        return answer

    @staticmethod
    def addresses(clustering: Mapping[str, Any]) -> dict[int, str]:
        settings = clustering.get("settings", {})
        return {n: str(settings.get(f"peer{n}") or "") for n in SLOTS if settings.get(f"peer{n}")}

    def describe(self, address: str) -> str:
        host = self.host_at(address)
        return f"{address} ({host})" if host else f"{address} (no host of the lab)"

    # -------------------------------------------------------------- checks
    async def _clustered(self, params: Mapping[str, Any]) -> list[str]:
        """G-P1, G-P2, G-R12, G-P7."""
        peers: list[str] = list(params["peers"])
        exact = bool(params.get("exact", True))
        wanted = {self.ip(p): p for p in peers}
        hints: list[str] = []
        reference = peers[0]
        reference_list = sorted(self.addresses(await self.clustering(reference)).values())
        for peer in peers:
            config = await self.clustering(peer)
            settings = config.get("settings", {})
            listed = self.addresses(config)
            mine: list[str] = []
            if not settings.get("key_set") and not listed:
                hints.append(
                    f"{peer}: {CLUSTERING}: Cluster pre-shared key and every Peer N IP "
                    "address are empty: the peer is not clustered yet"
                )
                continue
            if not settings.get("key_set"):
                mine.append(f"{peer}: {CLUSTERING}: Cluster pre-shared key is empty")
            for address, host in wanted.items():
                if address not in listed.values():
                    mine.append(
                        f"{peer}: {CLUSTERING}: no Peer N IP address holds {host}'s address "
                        f"{address}"
                    )
            if exact:
                for slot, address in listed.items():
                    if address in wanted:
                        continue
                    if peer != reference and address not in reference_list:
                        theirs = ", ".join(reference_list) or "empty"
                        mine.append(
                            f"{peer}: {CLUSTERING}: Peer {slot} IP address "
                            f"{self.describe(address)} differs from {reference}'s list ({theirs})"
                        )
                    else:
                        mine.append(
                            f"{peer}: {CLUSTERING}: Peer {slot} IP address "
                            f"{self.describe(address)} is not a peer of this cluster"
                        )
            mine += _restart_pending(peer, config)
            if not mine:
                mine += self._status_hints(peer, config, wanted)
            hints += mine
        return hints

    def _status_hints(
        self, peer: str, config: Mapping[str, Any], wanted: Mapping[str, str]
    ) -> list[str]:
        statuses = config.get("status", {}).get("peer_status", {})
        hints = []
        for slot, address in self.addresses(config).items():
            if address not in wanted:
                continue
            text = str(statuses.get(f"clustering.peer{slot}", {}).get("text", ""))
            expected = "This system" if address == self.ip(peer) else "Active as"
            if text.startswith(expected):
                continue
            hint = f"{peer}: {CLUSTERING}: Peer {slot} ({self.describe(address)}) shows {text!r}"
            advice = next((a for key, a in ADVICE if key in text), "")
            if not text:
                advice = "it has not been contacted yet: wait a few seconds"
            hints.append(f"{hint}; {advice}" if advice else hint)
        return hints

    async def _standalone(self, params: Mapping[str, Any]) -> list[str]:
        """G-P5: the removed peer in standalone mode."""
        peer = str(params["peer"])
        config = await self.clustering(peer)
        hints = []
        if config.get("settings", {}).get("key_set"):
            hints.append(f"{peer}: {CLUSTERING}: Cluster pre-shared key is still set: delete it")
        for slot, address in self.addresses(config).items():
            hints.append(
                f"{peer}: {CLUSTERING}: Peer {slot} IP address still holds "
                f"{self.describe(address)}: delete it"
            )
        hints += _restart_pending(peer, config)
        return hints

    async def _no_bridges(self, params: Mapping[str, Any]) -> list[str]:
        """G-P5: a peer leaving the cluster deletes its conference bridges."""
        peer = str(params["peer"])
        answer = await self.get(peer, "/api/v1/conference/bridges")
        items = (
            answer.get("items", answer.get("bridges", [])) if isinstance(answer, dict) else answer
        )
        names = [str(b.get("name", "?")) for b in items or []]
        if not names:
            return []
        return [
            f"{peer}: Conference configuration > Conference bridges still lists "
            f"{', '.join(names)}: delete them"
        ]

    async def _vcs_servers(self, params: Mapping[str, Any]) -> list[str]:
        """G-P3, G-P5, G-P6: the VCS's policy service points at exactly these peers."""
        vcs = str(params["vcs"])
        peers: list[str] = list(params["peers"])
        wanted = {self.ip(p): p for p in peers}
        answer = await self.get(vcs, "/api/v1/status/policy-services")
        services = answer.get("policy_services", [])
        page = f"{vcs}: Configuration > Dial plan > Policy services"
        if not services:
            return [f"{page}: no policy service yet: add one" + (
                f" with Server addresses {', '.join(wanted)}" if wanted else "")]  # fmt: skip
        hints: list[str] = []
        for service in services:
            name = service.get("name", "?")
            servers = service.get("servers", [])
            listed = {str(s.get("address")): s for s in servers}
            for address, host in wanted.items():
                if address not in listed:
                    hints.append(
                        f"{page} > {name}: no Server N address holds {host}'s address {address}"
                    )
            for server in servers:
                address = str(server.get("address"))
                if address not in wanted:
                    hints.append(
                        f"{page} > {name}: Server {server.get('slot')} address "
                        f"{self.describe(address)} should not be there: remove it"
                    )
                elif server.get("status") != "Active":
                    text = server.get("text") or server.get("status")
                    reason = server.get("reason")
                    detail = f"{text} ({reason})" if reason and reason not in str(text) else text
                    hints.append(
                        f"{vcs}: Status > Policy services > {name}: Server {server.get('slot')} "
                        f"({self.describe(address)}) shows {detail!r}"
                    )
        return hints

    async def _same_setting(self, params: Mapping[str, Any]) -> list[str]:
        """G-R14, G-R6: a change reached every peer (replication delivered it)."""
        from emulator.scenario.pages import CONDUCTOR_SETTINGS

        peers: list[str] = list(params["peers"])
        page, field = str(params["page"]), str(params["field"])
        if page not in CONDUCTOR_SETTINGS:
            return [f"no settings page {page!r} (pages: {', '.join(CONDUCTOR_SETTINGS)})"]
        values = {}
        for peer in peers:
            answer = await self.get(peer, CONDUCTOR_SETTINGS[page])
            values[peer] = answer.get("settings", {}).get(field)
        reference = peers[0]
        title = page.replace("-", " ").capitalize()
        label = field.replace("_", " ").capitalize()
        return [
            f"{peer}: System > {title} > {label} differs from {reference}'s "
            f"({_clip(values[peer])} here, {_clip(values[reference])} there): the change has "
            "not replicated"
            for peer in peers[1:]
            if values[peer] != values[reference]
        ]

    async def _no_alarms(self, params: Mapping[str, Any]) -> list[str]:
        ids = {int(i) for i in params["ids"]}
        hints = []
        for host in params["hosts"]:
            answer = await self.get(host, "/api/v1/status/alarms")
            for alarm in answer.get("alarms", []):
                if int(alarm.get("id", 0)) in ids:
                    subject = f" {alarm['subject']}" if alarm.get("subject") else ""
                    hints.append(
                        f"{host}: Status > Alarms: {alarm['id']}{subject} {alarm.get('title', '')}"
                        f": {alarm.get('description', '')}"
                        + (f" ({alarm['action']})" if alarm.get("action") else "")
                    )
        return hints

    async def _synchronised(self, params: Mapping[str, Any]) -> list[str]:
        """G-R3."""
        hints = []
        for host in params["hosts"]:
            answer = await self.get(host, "/api/v1/system/time")
            state = answer.get("status", {}).get("ntp_state")
            if state == "Synchronized":
                continue
            servers = answer.get("settings", {}).get("ntp_servers") or []
            first = f"NTP server 1 is {servers[0]}" if servers else "NTP server 1 is empty"
            hints.append(f"{host}: System > Time: NTP state is {state!r} ({first})")
        return hints

    async def _software_version(self, params: Mapping[str, Any]) -> list[str]:
        """G-P6, G-R1."""
        version = str(params["version"])
        hints = []
        for host in params["hosts"]:
            running = (await self.get(host, "/api/v1/status")).get("software_version")
            if running != version:
                hints.append(
                    f"{host}: Maintenance > Upgrade: runs {running}; install {version} "
                    "(the lab's image)"
                )
        return hints

    async def _backup_before_joining(self, params: Mapping[str, Any]) -> list[str]:
        """G-P4: a backup of the peer's own configuration, made before it joins."""
        peer = str(params["peer"])
        answer = await self.get(peer, "/api/v1/status/events?limit=1000")
        events = sorted(answer.get("events", []), key=lambda e: int(e.get("id", 0)))
        backups = [e for e in events if e.get("event") == "backup_created"]
        if not backups:
            return [
                f"{peer}: Maintenance > Backup and restore: no system backup made yet: "
                "make one before the peer joins the cluster"
            ]
        joined = [e for e in events if e.get("event") == "cluster_started"]
        if joined and int(joined[0]["id"]) < int(backups[0]["id"]):
            return [
                f"{peer}: the first system backup ({backups[0].get('time')}) was made after the "
                f"peer joined the cluster ({joined[0].get('time')}): too late, its own "
                "configuration was already replaced"
            ]
        return []

    async def _expect(self, params: Mapping[str, Any]) -> list[str]:
        condition = parse_condition(str(params["condition"]), self.roles)
        try:
            observed = await self.runner.probe(condition)
        except ProbeError as exc:
            return [f"{params['hint']} ({exc})"]
        if compare(condition.op, observed, condition.value):
            return []
        return [f"{params['hint']} (now: {observed!r})"]


def _restart_pending(peer: str, config: Mapping[str, Any]) -> list[str]:
    """G-P7: saved clustering settings take effect on restart, not on Save."""
    if not (config.get("pending") or config.get("restart_required")):
        return []
    return [
        f"{peer}: saved clustering settings wait for a restart "
        "(Maintenance > Restart options > Restart)"
    ]


def _clip(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return (
        text
        if len(text) <= limit
        else f"{text[: limit - 5]}...{text[-1]} ({len(str(value))} characters)"
    )
