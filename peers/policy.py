"""The policy service's state on one peer: its endpoints' paths, the conference
aliases ready for decisions, counters, and the throttled log of failed logins.

Decisions themselves are pure (`peers.core.policy`); this module feeds them
from the store without touching the database per request: the paths and the
compiled aliases are rebuilt only when the store has written something since
(`ConfigStore.generation`), counters live in memory, and failed logins reach
the event log through `FailureThrottle` (at most one line per source a minute).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from peers.core.policy import (
    ALIAS_PREFIX,
    ConferenceAlias,
    FailureReport,
    FailureThrottle,
    PolicyCounters,
    load_aliases,
)

if TYPE_CHECKING:
    from netsim.api import Clock
    from peers.store import ConfigStore


class PolicyService:
    def __init__(self, store: ConfigStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.counters = PolicyCounters()
        self.throttle = FailureThrottle()
        self._generation = -1
        self._paths = ("", "")
        self._aliases: tuple[ConferenceAlias, ...] = ()
        self._timer: asyncio.TimerHandle | None = None
        self._wall_second = -1
        self._wall_text = ""

    def _refresh(self) -> None:
        generation = self.store.generation
        if generation == self._generation:
            return
        settings = self.store.settings()
        self._paths = ("/" + settings["policy.policy_path"], "/" + settings["policy.status_path"])
        self._aliases = load_aliases(
            entry.value
            for entry in self.store.shared_entries()
            if entry.key.startswith(ALIAS_PREFIX) and not entry.deleted
        )
        self._generation = generation

    def paths(self) -> tuple[str, str]:
        """(policy path, status path) in force, each with its leading slash."""
        self._refresh()
        return self._paths

    def aliases(self) -> tuple[ConferenceAlias, ...]:
        """Every conference alias, in decision order (priority, then name)."""
        self._refresh()
        return self._aliases

    def wall(self) -> str:
        """Now, to the second, for the counters: formatted at most once a second (it is
        asked on every policy request)."""
        second = int(self.clock.monotonic())
        if second != self._wall_second:
            self._wall_second = second
            self._wall_text = self.clock.wall().isoformat(timespec="seconds")
        return self._wall_text

    def status(self) -> dict[str, Any]:
        """Status > Overview > Policy service (and its JSON twin)."""
        policy_path, status_path = self.paths()
        return {
            "policy_path": policy_path,
            "status_path": status_path,
            "conference_aliases": len(self.aliases()),
            **self.counters.as_json(),
        }

    # ------------------------------------------------------------ failed logins
    def login_failed(self, source: str, user: str) -> None:
        report = self.throttle.failed(source, user[:64], self.clock.monotonic())
        if report is not None:
            self._log(report)
        self._arm()

    def _log(self, report: FailureReport) -> None:
        self.store.log_event(
            "login_failed",
            level="warning",
            user=report.user,
            source=report.source,
            via="policy",
            failures=report.failures,
        )

    def _arm(self) -> None:
        deadline = self.throttle.next_deadline()
        if deadline is None or self._timer is not None:
            return
        delay_s = max(0.0, deadline - self.clock.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        for report in self.throttle.on_timer(self.clock.monotonic()):
            self._log(report)
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
