"""The impairment state of a world and the decision it makes for each segment.

Models, per direction of each ordered host pair (src -> dst): latency, jitter,
loss, duplication, reordering, bandwidth, path MTU (don't-fragment) and link
down; plus partitions into groups, firewall rules by protocol and destination
port range, and per-host clock offsets.

Invariants:
- every mutation is validated first and either applies whole or raises
  `ImpairmentError` with nothing changed;
- every mutation returns the trace event that describes it;
- `decide` is deterministic given the seed and the sequence of calls: each
  direction draws from its own `random.Random` seeded from (seed, src, dst),
  so traffic on one pair never shifts the randomness of another;
- a host pair with nothing configured has an empty toxic chain (fast path).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netsim.api import MAX_IPV4_PACKET, MIN_IPV4_MTU
from netsim.core.toxics import (
    BandwidthToxic,
    BlackholeToxic,
    DuplicateToxic,
    FirewallToxic,
    LatencyToxic,
    LossToxic,
    MtuToxic,
    Outcome,
    ReorderToxic,
    Segment,
    Toxic,
    run_chain,
)

MAX_LATENCY_MS = 60_000.0
DEFAULT_REORDER_GAP_MS = 10.0


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


class ImpairmentError(ValueError):
    """A requested impairment change is invalid; nothing was changed."""


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """Impairments of one direction of one host pair. Zero / None = not impaired."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_gap_ms: float = DEFAULT_REORDER_GAP_MS
    rate_kbit: float | None = None
    mtu_bytes: int | None = None
    down: bool = False

    FIELDS = (
        "latency_ms",
        "jitter_ms",
        "loss",
        "duplicate",
        "reorder",
        "reorder_gap_ms",
        "rate_kbit",
        "mtu_bytes",
        "down",
    )

    def validate(self) -> None:
        def number(name: str, value: object, lo: float, hi: float) -> None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ImpairmentError(f"{name} must be a number, got {value!r}")
            if not _finite(value) or not lo <= value <= hi:
                raise ImpairmentError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")

        number("latency_ms", self.latency_ms, 0.0, MAX_LATENCY_MS)
        number("jitter_ms", self.jitter_ms, 0.0, MAX_LATENCY_MS)
        number("reorder_gap_ms", self.reorder_gap_ms, 0.0, MAX_LATENCY_MS)
        for name in ("loss", "duplicate", "reorder"):
            number(name, getattr(self, name), 0.0, 1.0)
        if self.rate_kbit is not None:
            number("rate_kbit", self.rate_kbit, 1.0, 100_000_000.0)
        if self.mtu_bytes is not None:
            if isinstance(self.mtu_bytes, bool) or not isinstance(self.mtu_bytes, int):
                raise ImpairmentError(f"mtu_bytes must be an integer, got {self.mtu_bytes!r}")
            if not MIN_IPV4_MTU <= self.mtu_bytes <= MAX_IPV4_PACKET:
                raise ImpairmentError(
                    f"mtu_bytes must be between {MIN_IPV4_MTU} and {MAX_IPV4_PACKET}, "
                    f"got {self.mtu_bytes}"
                )
        if not isinstance(self.down, bool):
            raise ImpairmentError(f"down must be true or false, got {self.down!r}")

    @property
    def is_clear(self) -> bool:
        return self == LinkSpec(reorder_gap_ms=self.reorder_gap_ms)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_changes(cls, base: LinkSpec, changes: Mapping[str, Any]) -> LinkSpec:
        unknown = sorted(set(changes) - set(cls.FIELDS))
        if unknown:
            raise ImpairmentError(
                f"unknown impairment {', '.join(unknown)}; known: {', '.join(cls.FIELDS)}"
            )
        spec = dataclasses.replace(base, **changes)
        spec.validate()
        return spec


class FirewallAction:
    DROP = "drop"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class FirewallRule:
    """Applies to segments from `src` to `dst` ("*" = any host) whose destination port
    lies in [port_lo, port_hi] and whose protocol is `proto` ("udp", "tcp" or "any")."""

    id: int
    proto: str
    port_lo: int
    port_hi: int
    action: str
    src: str = "*"
    dst: str = "*"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def matches_pair(self, src: str, dst: str) -> bool:
        return self.src in ("*", src) and self.dst in ("*", dst)


class ImpairmentTable:
    """All impairments of one world; answers `decide(segment, now)`."""

    def __init__(
        self,
        hosts: Iterable[str],
        *,
        seed: int,
        default: LinkSpec | None = None,
    ) -> None:
        self.hosts: tuple[str, ...] = tuple(hosts)
        self._host_set = frozenset(self.hosts)
        self.seed = seed
        self.default = default or LinkSpec()
        self.default.validate()
        self.links: dict[tuple[str, str], LinkSpec] = {}
        self.partition: tuple[frozenset[str], ...] = ()
        self.firewall: list[FirewallRule] = []
        self.clock_offsets: dict[str, float] = {}
        self._next_rule_id = 1
        self._rngs: dict[tuple[str, str], random.Random] = {}
        self._chains: dict[tuple[str, str], list[Toxic]] = {}
        #: bumped on every change; backends compare it to know when to reconcile
        self.generation = 0

    # ---------------------------------------------------------------- queries
    def spec(self, src: str, dst: str) -> LinkSpec:
        return self.links.get((src, dst), self.default)

    def group_of(self, host: str) -> int:
        for index, group in enumerate(self.partition):
            if host in group:
                return index
        return len(self.partition)  # hosts not named form one more group

    def partitioned(self, src: str, dst: str) -> bool:
        return bool(self.partition) and self.group_of(src) != self.group_of(dst)

    def rules_for(self, src: str, dst: str) -> list[FirewallRule]:
        return [r for r in self.firewall if r.matches_pair(src, dst)]

    def clock_offset_s(self, host: str) -> float:
        return self.clock_offsets.get(host, 0.0)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able picture of the whole state (for `net show`, the REST API, reports)."""
        return {
            "generation": self.generation,
            "default": self.default.to_dict(),
            "links": [
                {"src": src, "dst": dst, **spec.to_dict()}
                for (src, dst), spec in sorted(self.links.items())
            ],
            "partition": [sorted(group) for group in self.partition],
            "firewall": [rule.to_dict() for rule in self.firewall],
            "clock_offsets": dict(sorted(self.clock_offsets.items())),
        }

    # --------------------------------------------------------------- decision
    def rng(self, src: str, dst: str) -> random.Random:
        key = (src, dst)
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = random.Random(f"{self.seed}:{src}>{dst}")
        return rng

    def chain(self, src: str, dst: str) -> list[Toxic]:
        key = (src, dst)
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = self._build_chain(src, dst)
        return chain

    def _build_chain(self, src: str, dst: str) -> list[Toxic]:
        chain: list[Toxic] = []
        rules = self.rules_for(src, dst)
        if rules:
            chain.append(
                FirewallToxic(tuple((r.id, r.proto, r.port_lo, r.port_hi, r.action) for r in rules))
            )
        spec = self.spec(src, dst)
        if self.partitioned(src, dst):
            chain.append(BlackholeToxic(f"partition separates {src} from {dst}"))
        elif spec.down:
            chain.append(BlackholeToxic(f"link {src} -> {dst} is down"))
        if spec.mtu_bytes is not None:
            chain.append(MtuToxic(spec.mtu_bytes))
        rng = self.rng(src, dst)
        if spec.loss:
            chain.append(LossToxic(spec.loss, rng))
        if spec.rate_kbit is not None:
            chain.append(BandwidthToxic(spec.rate_kbit))
        if spec.latency_ms or spec.jitter_ms:
            chain.append(LatencyToxic(spec.latency_ms, spec.jitter_ms, rng))
        if spec.reorder:
            chain.append(ReorderToxic(spec.reorder, spec.reorder_gap_ms, rng))
        if spec.duplicate:
            chain.append(DuplicateToxic(spec.duplicate, rng))
        return chain

    def decide(self, seg: Segment, now: float) -> list[Outcome]:
        return run_chain(self.chain(seg.src, seg.dst), now, seg)

    # -------------------------------------------------------------- mutations
    def save(self) -> tuple[Any, ...]:
        """An opaque copy of the mutable state, for `restore` (rollback)."""
        return (
            dict(self.links),
            self.partition,
            list(self.firewall),
            dict(self.clock_offsets),
            self._next_rule_id,
        )

    def restore(self, saved: tuple[Any, ...]) -> None:
        links, self.partition, firewall, offsets, self._next_rule_id = saved
        self.links, self.firewall, self.clock_offsets = dict(links), list(firewall), dict(offsets)
        self._changed()

    def _check_host(self, host: str, *, wildcard: bool = False) -> None:
        if wildcard and host == "*":
            return
        if host not in self._host_set:
            raise ImpairmentError(f"unknown host {host!r}; hosts: {', '.join(self.hosts)}")

    def _changed(self) -> None:
        self.generation += 1
        self._chains.clear()

    def impair(
        self, src: str, dst: str, changes: Mapping[str, Any], *, both: bool = False
    ) -> dict[str, Any]:
        """Change some impairments of src -> dst (and dst -> src with `both`)."""
        self._check_host(src)
        self._check_host(dst)
        if src == dst:
            raise ImpairmentError(f"source and destination are the same host {src!r}")
        pairs = [(src, dst), (dst, src)] if both else [(src, dst)]
        new = {pair: LinkSpec.from_changes(self.spec(*pair), changes) for pair in pairs}
        for pair, spec in new.items():
            if spec == self.default:
                self.links.pop(pair, None)
            else:
                self.links[pair] = spec
        self._changed()
        return {"kind": "impair", "src": src, "dst": dst, "both": both, "changes": dict(changes)}

    def clear(self, src: str, dst: str, *, both: bool = False) -> dict[str, Any]:
        self._check_host(src)
        self._check_host(dst)
        self.links.pop((src, dst), None)
        if both:
            self.links.pop((dst, src), None)
        self._changed()
        return {"kind": "clear", "src": src, "dst": dst, "both": both}

    def set_partition(self, groups: Sequence[Iterable[str]]) -> dict[str, Any]:
        parsed = [frozenset(group) for group in groups]
        if not parsed or any(not group for group in parsed):
            raise ImpairmentError("a partition needs at least one non-empty group of hosts")
        seen: set[str] = set()
        for group in parsed:
            for host in sorted(group):
                self._check_host(host)
                if host in seen:
                    raise ImpairmentError(f"host {host!r} appears in more than one group")
                seen.add(host)
        self.partition = tuple(parsed)
        self._changed()
        return {"kind": "partition", "groups": [sorted(g) for g in parsed]}

    def heal(self) -> dict[str, Any]:
        """End partitions and bring every link back up; other impairments stay."""
        self.partition = ()
        for pair, spec in list(self.links.items()):
            if spec.down:
                healed = dataclasses.replace(spec, down=False)
                if healed == self.default:
                    del self.links[pair]
                else:
                    self.links[pair] = healed
        self._changed()
        return {"kind": "heal"}

    def reset(self) -> dict[str, Any]:
        """Remove every impairment, partition, firewall rule and clock offset."""
        self.links.clear()
        self.partition = ()
        self.firewall.clear()
        self.clock_offsets.clear()
        self._changed()
        return {"kind": "reset"}

    def add_firewall_rule(
        self,
        *,
        proto: str,
        port_lo: int,
        port_hi: int | None = None,
        action: str = FirewallAction.DROP,
        src: str = "*",
        dst: str = "*",
    ) -> tuple[FirewallRule, dict[str, Any]]:
        if proto not in ("udp", "tcp", "any"):
            raise ImpairmentError(f"protocol must be udp, tcp or any, got {proto!r}")
        if action not in (FirewallAction.DROP, FirewallAction.REJECT):
            raise ImpairmentError(f"action must be drop or reject, got {action!r}")
        hi = port_lo if port_hi is None else port_hi
        for name, port in (("port", port_lo), ("port range end", hi)):
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise ImpairmentError(f"{name} must be an integer 1-65535, got {port!r}")
        if hi < port_lo:
            raise ImpairmentError(f"port range {port_lo}-{hi} is empty")
        self._check_host(src, wildcard=True)
        self._check_host(dst, wildcard=True)
        rule = FirewallRule(self._next_rule_id, proto, port_lo, hi, action, src, dst)
        self._next_rule_id += 1
        self.firewall.append(rule)
        self._changed()
        return rule, {"kind": "firewall_add", **rule.to_dict()}

    def remove_firewall_rule(self, rule_id: int) -> dict[str, Any]:
        if isinstance(rule_id, bool) or not isinstance(rule_id, int):
            raise ImpairmentError(f"a firewall rule id is a whole number, got {rule_id!r}")
        for index, rule in enumerate(self.firewall):
            if rule.id == rule_id:
                del self.firewall[index]
                self._changed()
                return {"kind": "firewall_remove", "id": rule_id}
        raise ImpairmentError(f"no firewall rule with id {rule_id}")

    def set_clock_offset(self, host: str, offset_s: float) -> dict[str, Any]:
        self._check_host(host)
        if isinstance(offset_s, bool) or not isinstance(offset_s, int | float):
            raise ImpairmentError(f"offset_s must be a number, got {offset_s!r}")
        if not _finite(offset_s) or abs(offset_s) > 10 * 365 * 86400:
            raise ImpairmentError(f"offset_s must be within +-10 years, got {offset_s!r}")
        if offset_s:
            self.clock_offsets[host] = float(offset_s)
        else:
            self.clock_offsets.pop(host, None)
        self._changed()
        return {"kind": "clock", "host": host, "offset_s": float(offset_s)}
