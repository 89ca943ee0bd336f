"""The world: a topology, its impairment state, its trace, and the backend that realises them.

`World` is the control plane shared by every backend (proxy, off, kernel, sim)
and the Python API behind the REST API and the `tplab net` commands. Every
change is checked against what the backend can do (never silently ignored),
validated, applied, handed to the backend, and recorded in the trace with the
world's time. A change the backend fails to realise is rolled back.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from netsim.core.impairments import FirewallRule, ImpairmentError, ImpairmentTable, LinkSpec
from netsim.core.trace import EventTrace
from netsim.topology import Topology

#: impairment names, as capabilities and error messages use them
IMPAIRMENTS = (
    "latency",
    "jitter",
    "loss",
    "duplicate",
    "reorder",
    "bandwidth",
    "mtu",
    "down",
    "partition",
    "firewall",
    "clock_offset",
)

_FIELD_TO_IMPAIRMENT = {
    "latency_ms": "latency",
    "jitter_ms": "jitter",
    "loss": "loss",
    "duplicate": "duplicate",
    "reorder": "reorder",
    "reorder_gap_ms": "reorder",
    "rate_kbit": "bandwidth",
    "mtu_bytes": "mtu",
    "down": "down",
}


class Support(enum.Enum):
    KERNEL = "kernel"
    USERSPACE = "userspace"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Capability:
    support: Support
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"support": self.support.value, "note": self.note}


class ImpairmentUnsupported(ImpairmentError):
    """The backend cannot realise this impairment; nothing was changed."""


class Backend(Protocol):
    name: str

    def capabilities(self) -> dict[str, Capability]: ...

    def apply(self, table: ImpairmentTable) -> None:
        """Make the network match `table`; raise to refuse (the world rolls back)."""

    async def start(self, world: World) -> None:
        """Build the network (relays, namespaces) for `world.topology`."""

    async def stop(self) -> None:
        """Tear down everything `start` made."""


class NullBackend:
    """Decides in userspace but moves no traffic: the sim and in-process tests drive it."""

    name = "null"

    def capabilities(self) -> dict[str, Capability]:
        return {name: Capability(Support.USERSPACE) for name in IMPAIRMENTS}

    def apply(self, table: ImpairmentTable) -> None:
        return None

    async def start(self, world: World) -> None:
        return None

    async def stop(self) -> None:
        return None


def _link_impairments(changes: Mapping[str, Any]) -> set[str]:
    return {_FIELD_TO_IMPAIRMENT.get(key, key) for key in changes}


class World:
    def __init__(
        self,
        topology: Topology,
        *,
        seed: int = 0,
        now: Callable[[], float],
        backend: Backend | None = None,
        trace: EventTrace | None = None,
        clock_file: Path | None = None,
    ) -> None:
        self.topology = topology
        self.seed = seed
        self.now = now
        self.backend: Backend = backend or NullBackend()
        self.trace = trace if trace is not None else EventTrace()
        self.clock_file = clock_file
        self.table = ImpairmentTable(topology.names, seed=seed, default=topology.link_defaults)
        self._publish_clock()

    # ----------------------------------------------------------------- plumbing
    def _require(self, impairments: Iterable[str]) -> None:
        caps = self.backend.capabilities()
        for name in sorted(set(impairments)):
            cap = caps.get(name)
            if cap is None or cap.support is Support.UNAVAILABLE:
                note = f": {cap.note}" if cap and cap.note else ""
                raise ImpairmentUnsupported(
                    f"the {self.backend.name} backend cannot apply {name}{note}"
                )

    def _commit(self, mutate: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        saved = self.table.save()
        event = mutate()
        try:
            self.backend.apply(self.table)
        except Exception as exc:
            self.table.restore(saved)
            self.backend.apply(self.table)
            self.trace.record(self.now(), "impairment_failed", change=event, error=str(exc))
            raise ImpairmentError(f"{self.backend.name} backend could not apply it: {exc}") from exc
        fields = {k: v for k, v in event.items() if k != "kind"}
        self.trace.record(self.now(), event["kind"], **fields)
        if event["kind"] in ("clock", "reset"):
            self._publish_clock()
        return event

    def _publish_clock(self) -> None:
        """Real node processes read their clock offset from this file (see netsim.real)."""
        if self.clock_file is None:
            return
        self.clock_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.table.clock_offsets, sort_keys=True))
        os.replace(tmp, self.clock_file)

    # --------------------------------------------------------------- Python API
    def impair(self, src: str, dst: str, *, both: bool = False, **changes: Any) -> LinkSpec:
        """Change impairments of src -> dst: `impair("a", "b", latency_ms=20, mtu_bytes=1300)`."""
        if not changes:
            raise ImpairmentError("nothing to change: name at least one impairment")
        LinkSpec.from_changes(LinkSpec(), changes)  # unknown names and bad values first
        self._require(_link_impairments(changes))
        self._commit(lambda: self.table.impair(src, dst, changes, both=both))
        return self.table.spec(src, dst)

    def clear(self, src: str, dst: str, *, both: bool = False) -> None:
        self._commit(lambda: self.table.clear(src, dst, both=both))

    def partition(self, *groups: Iterable[str]) -> None:
        self._require(["partition"])
        self._commit(lambda: self.table.set_partition(groups))

    def heal(self) -> None:
        self._commit(self.table.heal)

    def reset(self) -> None:
        self._commit(self.table.reset)

    def firewall_add(
        self,
        proto: str,
        ports: int | str | tuple[int, int],
        *,
        action: str = "drop",
        src: str = "*",
        dst: str = "*",
    ) -> FirewallRule:
        lo, hi = parse_ports(ports)
        self._require(["firewall"])
        holder: list[FirewallRule] = []

        def mutate() -> dict[str, Any]:
            rule, event = self.table.add_firewall_rule(
                proto=proto, port_lo=lo, port_hi=hi, action=action, src=src, dst=dst
            )
            holder.append(rule)
            return event

        self._commit(mutate)
        return holder[0]

    def firewall_remove(self, rule_id: int) -> None:
        self._commit(lambda: self.table.remove_firewall_rule(rule_id))

    def set_clock_offset(self, host: str, offset_s: float) -> None:
        self._require(["clock_offset"])
        self._commit(lambda: self.table.set_clock_offset(host, offset_s))

    def capabilities(self) -> dict[str, Capability]:
        return self.backend.capabilities()

    def show(self) -> dict[str, Any]:
        return {
            "backend": self.backend.name,
            "seed": self.seed,
            "topology": self.topology.to_dict(),
            "capabilities": {k: v.to_dict() for k, v in self.capabilities().items()},
            **self.table.snapshot(),
        }


def parse_ports(ports: int | str | tuple[int, int]) -> tuple[int, int]:
    """`500`, `"500"`, `"4369-4380"` or `(4369, 4380)` -> (lo, hi); ImpairmentError otherwise."""
    try:
        if isinstance(ports, tuple):
            lo, hi = ports
        elif isinstance(ports, bool):
            raise ValueError
        elif isinstance(ports, int):
            lo = hi = ports
        elif isinstance(ports, str):
            lo_text, sep, hi_text = ports.strip().partition("-")
            lo = int(lo_text)
            hi = int(hi_text) if sep else lo
        else:
            raise TypeError
    except (ValueError, TypeError) as exc:
        raise ImpairmentError(f"ports must be N or LOW-HIGH, got {ports!r}") from exc
    return lo, hi
