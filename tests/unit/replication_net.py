"""An in-memory network of replication cores for tests: seeded loss, duplication,
reordering, partitions and per-pair path MTU, all under a test-controlled clock."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from peers.core.replication import Event, Replicator, Role

WALL_EPOCH_MS = 1_760_000_000_000


@dataclass
class Net:
    names: list[str]
    seed: int = 0
    loss: float = 0.0
    duplicate: float = 0.0
    jitter_s: float = 0.0
    latency_s: float = 0.001
    now: float = 0.0
    groups: list[set[str]] = field(default_factory=list)
    path_mtu: dict[tuple[str, str], int] = field(default_factory=dict)
    events: list[tuple[str, Event]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.nodes: dict[str, Replicator] = {}
        self._flight: list[tuple[float, int, str, str, bytes]] = []
        self._seq = 0
        for name in self.names:
            self.add(name)

    def add(self, name: str, role: Role = Role.ESTABLISHED, max_payload: int = 1400) -> Replicator:
        node = Replicator(
            name, rng=random.Random(f"{self.seed}:{name}"), role=role, max_payload=max_payload
        )
        self.nodes[name] = node
        node.set_peers([n for n in self.names if n != name], self.now)
        return node

    def wall_ms(self, name: str) -> int:
        return WALL_EPOCH_MS + int(self.now * 1000)

    def connected(self, a: str, b: str) -> bool:
        if not self.groups:
            return True
        group_of = {n: i for i, g in enumerate(self.groups) for n in g}
        return group_of.get(a, -1) == group_of.get(b, -1)

    def flush(self) -> None:
        for name, node in self.nodes.items():
            for peer, data in node.outgoing():
                self._transmit(name, peer, data)

    def _transmit(self, src: str, dst: str, data: bytes) -> None:
        if dst not in self.nodes or not self.connected(src, dst):
            return
        if len(data) > self.path_mtu.get((src, dst), 1 << 30):
            return
        if self.rng.random() < self.loss:
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            at = self.now + self.latency_s + self.rng.uniform(0, self.jitter_s)
            self._seq += 1
            heapq.heappush(self._flight, (at, self._seq, src, dst, data))

    def step(self, until: float) -> None:
        """Advance to `until`, delivering messages and firing timers in time order."""
        for _ in range(1_000_000):
            self.flush()
            deadlines = [d for n in self.nodes.values() if (d := n.next_deadline()) is not None]
            next_timer = min(deadlines) if deadlines else None
            next_msg = self._flight[0][0] if self._flight else None
            candidates = [t for t in (next_timer, next_msg) if t is not None and t <= until]
            if not candidates:
                self.now = max(self.now, until)
                self.flush()
                return
            self.now = max(self.now, min(candidates))
            if next_msg is not None and next_msg <= self.now:
                _, _, src, dst, data = heapq.heappop(self._flight)
                if dst in self.nodes:
                    for event in self.nodes[dst].receive(src, data, self.now, self.wall_ms(dst)):
                        self.events.append((dst, event))
            for name, node in self.nodes.items():
                deadline = node.next_deadline()
                if deadline is not None and deadline <= self.now:
                    for event in node.on_timer(self.now):
                        self.events.append((name, event))
        raise AssertionError("network did not settle")

    def run(self, seconds: float) -> None:
        self.step(self.now + seconds)
