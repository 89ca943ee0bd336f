"""Health and failover of one policy service's servers (G-V1, G-V3, G-V4, G-R7).

Models cisco-behaviour.md 1.3 / 1.4:
- every configured server is polled at the Status path when the service starts
  and then every `poll_interval_s`; a 2xx answer is success, anything else
  (no answer, timeout, TLS failure, other status) marks the server *Failed*;
- a policy request goes to Server 1, then 2, then 3, lowest first among the
  servers not marked Failed; no load balancing (sticky to the lowest healthy one);
- a server whose poll failed is skipped until a later poll succeeds.

tplab's choices where the sources are silent (UNCONFIRMED there):
- a request that fails on a server (no answer, non-200, malformed CPL) marks that
  server Failed at once, like a failed poll, and the same request moves on to the
  next server; the next successful poll or answer marks it Active again;
- when every configured server is marked Failed, a request still tries each of
  them in order before the Default CPL is used, so a server that came back since
  its last poll serves at once: the Default CPL means no server answered *this*
  request.

Invariants: `attempt_order()` lists every configured server exactly once;
healthy servers come first, in server order; `next_deadline()` is the earliest
poll due; polls of a server never overlap.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from vcs_policy.core.config import PolicyService


class ServerStatus(enum.Enum):
    UNKNOWN = "Unknown"  # configured, not polled yet
    ACTIVE = "Active"
    FAILED = "Failed"


@dataclass(slots=True)
class ServerState:
    slot: int  # 1, 2 or 3: the Server N address it came from
    address: str
    status: ServerStatus = ServerStatus.UNKNOWN
    last_communication: datetime | None = None
    reason: str = ""
    next_poll_s: float = 0.0
    polling: bool = False
    requests: int = 0
    failures: int = 0

    @property
    def healthy(self) -> bool:
        return self.status is not ServerStatus.FAILED

    def line(self) -> str:
        """The page's per-server line (G-V3, G-P3)."""
        if self.status is ServerStatus.ACTIVE and self.last_communication is not None:
            stamp = self.last_communication.strftime("%Y-%m-%d %H:%M:%S")
            return f"Active. Last communication: {stamp}"
        if self.status is ServerStatus.FAILED:
            return "Failed"
        return "Checking"

    def to_dict(self) -> dict[str, object]:
        return {
            "slot": self.slot,
            "address": self.address,
            "status": self.status.value,
            "text": self.line(),
            "reason": self.reason,
            "last_communication": (
                self.last_communication.isoformat(timespec="seconds")
                if self.last_communication
                else None
            ),
            "requests": self.requests,
            "failures": self.failures,
        }


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A server turned Active or Failed (the event log and the trace record it)."""

    service: str
    slot: int
    address: str
    status: ServerStatus
    reason: str


class ServiceHealth:
    def __init__(self, service: PolicyService, now: float) -> None:
        self.service = service
        self.servers = [
            ServerState(slot, address, next_poll_s=now)
            for slot, address in enumerate(service.servers, start=1)
            if address
        ]
        self.last_used: datetime | None = None

    # ------------------------------------------------------------- polls
    def next_deadline(self) -> float | None:
        due = [s.next_poll_s for s in self.servers if not s.polling]
        return min(due) if due else None

    def due_polls(self, now: float) -> list[ServerState]:
        """Servers to poll now; each is marked in flight until `poll_done`."""
        due = [s for s in self.servers if not s.polling and s.next_poll_s <= now]
        for server in due:
            server.polling = True
            server.next_poll_s = now + self.service.poll_interval_s
        return due

    def poll_done(
        self, server: ServerState, ok: bool, reason: str, wall: datetime
    ) -> StatusChanged | None:
        server.polling = False
        return self._record(server, ok, reason, wall)

    # ---------------------------------------------------------- requests
    def attempt_order(self) -> list[ServerState]:
        healthy = [s for s in self.servers if s.healthy]
        return healthy + [s for s in self.servers if not s.healthy]

    def request_done(
        self, server: ServerState, ok: bool, reason: str, wall: datetime
    ) -> StatusChanged | None:
        server.requests += 1
        if ok:
            self.last_used = wall
        else:
            server.failures += 1
        return self._record(server, ok, reason, wall)

    def in_use(self) -> ServerState | None:
        """Status > Policy services "URL": the server requests go to now."""
        for server in self.servers:
            if server.healthy:
                return server
        return None

    def _record(
        self, server: ServerState, ok: bool, reason: str, wall: datetime
    ) -> StatusChanged | None:
        before = server.status
        if ok:
            server.status = ServerStatus.ACTIVE
            server.last_communication = wall
            server.reason = ""
        else:
            server.status = ServerStatus.FAILED
            server.reason = reason
        if server.status is before:
            return None
        return StatusChanged(
            self.service.name, server.slot, server.address, server.status, server.reason
        )
