"""The cluster service of a peer: the driver around the channel, membership and replication cores.

It owns two datagram endpoints on the host's network: UDP 500 (ISAKMP: the
handshake) and UDP 4369 (the encrypted records that carry HELLOs and
replication; the guide's "IP protocol 51" and UDP 4369-4380 ports, G-R6). All
decisions are in the sans-I/O cores; this module moves bytes, keeps one timer
and writes what the cores decide into the store (aioquic style: after every
input, drain the outgoing data and re-arm the timer).

Clustering settings are read once, at start: they change only on restart (G-P7).
The cluster interface MTU (System > Ethernet, G-R14) applies at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from netsim.api import Address, DatagramEndpoint, MessageTooLong
from peers.core.channel import (
    ChannelConfig,
    ChannelSet,
    Established,
    Failed,
    PayloadReceived,
    PeerChannel,
    Rejected,
)
from peers.core.membership import (
    DEAD_AFTER_S,
    Hello,
    LocalFacts,
    PeerView,
    Status,
    cluster_alarms,
)
from peers.core.replication import (
    Adopted,
    Applied,
    Entry,
    Recovered,
    Replicator,
    Role,
    Stalled,
)
from peers.core.replication import Rejected as ReplicationRejected
from peers.rules import PEER_KEYS
from peers.wire.channel import MsgType

if TYPE_CHECKING:
    from peers.node import PeerNode

log = logging.getLogger(__name__)

ISAKMP_PORT = 500
SYNC_PORT = 4369
HELLO_INTERVAL_S = 1.0
ALARM_REFRESH_S = 1.0
#: a silent peer's established channel is renegotiated at most this often (dead-peer detection)
PROBE_INTERVAL_S = 30.0
#: at most this many rejected datagrams per reason are written to the event log per minute
REJECT_LOG_PER_MINUTE = 5


class _Inbox:
    def __init__(self, service: ClusterService) -> None:
        self.service = service

    def datagram_received(self, data: bytes, src: Address) -> None:
        self.service.datagram_received(data, src)

    def error_received(self, exc: Exception) -> None:
        self.service.node.store.log_event("cluster_socket_error", level="warning", error=str(exc))


class ClusterService:
    def __init__(self, node: PeerNode) -> None:
        self.node = node
        runtime = node.runtime
        settings = node.store.settings()
        self.ip = runtime.host.ip
        self.peer_list = tuple(sorted(settings[k] for k in PEER_KEYS if settings[k]))
        self.key = settings["clustering.key"]
        self.others = [p for p in self.peer_list if p != self.ip]
        self.enabled = bool(self.key) and bool(self.others) and self.ip in self.peer_list
        mtu = int(settings["ethernet.mtu"])
        self.channels = ChannelSet(
            self.ip,
            list(self.others) if self.enabled else [],
            self.key or "-",
            runtime.rng,
            ChannelConfig(mtu_bytes=mtu),
        )
        role = Role.ESTABLISHED if node.store.established else Role.JOINING
        self.replicator = Replicator(
            self.ip,
            rng=runtime.rng,
            role=role,
            max_payload=self._max_payload(),
            entries=node.store.shared_entries(),
            clock=node.store.hlc,
        )
        self.views = {ip: PeerView(ip) for ip in self.others}
        self.rejected: Counter[str] = Counter()
        self._logged: dict[str, tuple[float, int]] = {}
        self._endpoints: dict[int, DatagramEndpoint] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_hello = 0.0
        self._next_alarms = 0.0
        self._started_at = 0.0
        self._next_probe: dict[str, float] = {}

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if not self.enabled:
            return
        network = self.node.runtime.network
        now = self._started_at = self.now()
        self._sync_replication_peers(now)
        for port in (ISAKMP_PORT, SYNC_PORT):
            self._endpoints[port] = await network.open_datagram(port, _Inbox(self))
        self.channels.connect(now)
        self.node.store.log_event(
            "cluster_started", peers=list(self.peer_list), role=self.replicator.role.value
        )
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for endpoint in self._endpoints.values():
            endpoint.close()
        self._endpoints.clear()

    def now(self) -> float:
        return self.node.runtime.clock.monotonic()

    def wall_ms(self) -> int:
        return int(self.node.runtime.clock.wall().timestamp() * 1000)

    # ----------------------------------------------------------------- loop
    async def _run(self) -> None:
        while True:
            now = self.now()
            self._on_timers(now)
            self._flush(now)
            deadlines = [self._next_hello, self._next_alarms]
            for deadline in (self.channels.next_deadline(), self.replicator.next_deadline()):
                if deadline is not None:
                    deadlines.append(deadline)
            delay = max(0.0, min(deadlines) - self.now())
            self._wake.clear()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
            # cancellation that races with the wake-up, and stop() would wait for ever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _on_timers(self, now: float) -> None:
        deadline = self.channels.next_deadline()
        if deadline is not None and deadline <= now:
            self._channel_events(self.channels.on_timer(now), now)
        deadline = self.replicator.next_deadline()
        if deadline is not None and deadline <= now:
            self._replication_events(self.replicator.on_timer(now))
        if now >= self._next_hello:
            self._next_hello = now + HELLO_INTERVAL_S
            for ip in self.others:
                self.channels.send(ip, self._hello(ip, now).encode(), now)
            self._probe_silent_peers(now)
        if now >= self._next_alarms:
            self._next_alarms = now + ALARM_REFRESH_S
            self.node.refresh_alarms()

    def _flush(self, now: float) -> None:
        for peer, payload in self.replicator.outgoing():
            if peer in self.channels.channels:
                self.channels.send(peer, payload, now)
        for ip, data in self.channels.datagrams_to_send(now):
            port = SYNC_PORT if data and data[0] == MsgType.RECORD else ISAKMP_PORT
            endpoint = self._endpoints.get(port)
            if endpoint is None:
                continue
            try:
                endpoint.send(data, (ip, port))
            except MessageTooLong as exc:  # G-R14: never fragmented
                self._log_rejected("message_too_long", ip, str(exc), now)
            except OSError as exc:
                self._log_rejected("send_failed", ip, str(exc), now)

    # --------------------------------------------------------------- inputs
    def datagram_received(self, data: bytes, src: Address) -> None:
        now = self.now()
        self._channel_events(self.channels.receive_datagram(data, src[0], now), now)
        self._flush(now)
        self._wake.set()

    def _channel_events(self, events: Sequence[object], now: float) -> None:
        for event in events:
            if isinstance(event, PayloadReceived):
                self._payload(event.peer_ip, event.payload, now)
            elif isinstance(event, Established):
                self.views[event.peer_ip].channel_established(now)
                self.node.store.log_event("cluster_peer_connected", peer=event.peer_ip)
            elif isinstance(event, Failed):
                view = self.views.get(event.peer_ip)
                if view is not None:
                    if view.channel_failure != event.reason.value:
                        self.node.store.log_event(
                            "cluster_peer_failed",
                            level="warning",
                            peer=event.peer_ip,
                            reason=event.reason.value,
                        )
                    view.channel_failure = event.reason.value
            elif isinstance(event, Rejected):  # G-R15: counted and logged
                self._log_rejected(event.reason.value, event.peer_ip, event.detail, now)

    def _payload(self, peer: str, payload: bytes, now: float) -> None:
        if payload[:1] == b"H":
            try:
                hello = Hello.decode(payload)
            except (ValueError, RecursionError) as exc:
                self._log_rejected("bad_hello", peer, str(exc), now)
                return
            self.views[peer].received(hello, now, self.wall_ms())
            self._sync_replication_peers(now)
            return
        if peer not in self.replicator.peers:  # G-R1: paused with this peer (or no HELLO yet)
            return
        self._replication_events(self.replicator.receive(peer, payload, now, self.wall_ms()))

    def _replication_events(self, events: Sequence[object]) -> None:
        applied: list[Entry] = []
        for event in events:
            if isinstance(event, Applied):
                applied.append(event.entry)
            elif isinstance(event, Adopted):
                self.node.store.replace_shared(
                    self.replicator.entries.values(), source=event.source
                )
            elif isinstance(event, Stalled):
                self.node.store.log_event(
                    "replication_stalled",
                    level="warning",
                    peer=event.peer,
                    attempts=event.attempts,
                    max_payload=event.max_payload,
                )
            elif isinstance(event, Recovered):
                self.node.store.log_event("replication_recovered", peer=event.peer)
            elif isinstance(event, ReplicationRejected):
                self._log_rejected("replication", event.source, event.reason, self.now())
        if applied:
            self.node.store.merge_entries(applied)

    def _log_rejected(self, reason: str, peer: str, detail: str, now: float) -> None:
        self.rejected[reason] += 1
        start, count = self._logged.get(reason, (now, 0))
        if now - start >= 60.0:
            start, count = now, 0
        if count < REJECT_LOG_PER_MINUTE:
            self.node.store.log_event(
                "cluster_datagram_rejected",
                level="warning",
                reason=reason,
                source=peer,
                detail=detail[:200],
            )
        self._logged[reason] = (start, count + 1)

    # ------------------------------------------------------------- commands
    def publish(self, entries: list[Entry]) -> None:
        """Entries the store just wrote locally go to every peer."""
        now = self.now()
        for entry in entries:
            self.replicator.publish(entry, now)
        if self.enabled:
            self._flush(now)
            self._wake.set()

    def keep_only(self, addresses: set[str]) -> None:
        """G-P5: peers whose address was deleted are forgotten at once (also dead ones)."""
        gone = [ip for ip in self.others if ip not in addresses]
        if not gone:
            return
        self.others = [ip for ip in self.others if ip in addresses]
        self.peer_list = tuple(ip for ip in self.peer_list if ip in addresses)
        for ip in gone:
            self.channels.channels.pop(ip, None)
            self.views.pop(ip, None)
        self._sync_replication_peers(self.now())
        self.node.store.log_event("cluster_peers_removed", peers=gone)
        self._wake.set()

    def _sync_replication_peers(self, now: float) -> None:
        """G-R1: replication runs only with peers whose HELLO shows this peer's software
        version; with any other peer it is paused (alarm 20008), so a peer on another
        version neither joins the cluster nor changes its data."""
        version = self.node.software_version
        wanted = [
            ip
            for ip in self.others
            if (hello := self.views[ip].last) is not None and hello.version == version
        ]
        if wanted != self.replicator.peers:
            self.replicator.set_peers(wanted, now)

    def _probe_silent_peers(self, now: float) -> None:
        """Dead-peer detection: an established channel to a peer that has sent nothing for
        DEAD_AFTER_S is negotiated afresh. A peer that restarted without this one in its
        list answers UNKNOWN_PEER, so this side shows the peer list mismatch (G-R12)
        instead of waiting for the next rekey; a peer that restarted keeps working."""
        for ip in self.others:
            channel = self.channels.channels.get(ip)
            view = self.views[ip]
            heard = self._started_at if view.last_at is None else view.last_at
            if (
                channel is None
                or not channel.established
                or channel.rekeying
                or now - heard <= DEAD_AFTER_S
                or now < self._next_probe.get(ip, 0.0)
            ):
                continue
            self._next_probe[ip] = now + PROBE_INTERVAL_S
            fresh = PeerChannel(self.ip, ip, self.key, self.node.runtime.rng, self.channels.config)
            fresh.set_mtu(channel.mtu_bytes)
            self.channels.channels[ip] = fresh
            fresh.connect(now)
            self.node.store.log_event("cluster_peer_probed", peer=ip, silent_s=round(now - heard))

    def set_mtu(self, mtu_bytes: int) -> None:
        """System > Ethernet MTU changed: records and fragments resize at once (G-R14)."""
        for channel in self.channels.channels.values():
            channel.set_mtu(mtu_bytes)
        self.replicator.max_payload = self._max_payload()
        self._wake.set()

    def _max_payload(self) -> int:
        from peers.wire.channel import max_payload

        return (
            max_payload(self.channels.config.mtu_bytes)
            if not self.channels.channels
            else min(c.max_payload() for c in self.channels.channels.values())
        )

    # -------------------------------------------------------------- queries
    def facts(self) -> LocalFacts:
        store = self.node.store
        pending = store.pending()
        return LocalFacts(
            ip=self.ip,
            host_name=store.get("dns.host_name"),
            version=self.node.software_version,
            licensed=bool(store.get("options.release_key")),
            capacity=store.get("options.capacity"),
            ntp_synchronized=self.node.ntp_state() == "Synchronized",
            peers=self.peer_list,
            restart_pending=any(k.startswith("clustering.") for k in pending),
        )

    def _hello(self, ip: str, now: float) -> Hello:
        facts = self.facts()
        view = self.views[ip]
        last = view.last
        return Hello(
            host_name=facts.host_name,
            version=facts.version,
            licensed=facts.licensed,
            capacity=facts.capacity,
            ntp_synchronized=facts.ntp_synchronized,
            wall_ms=self.wall_ms(),
            peers=facts.peers,
            restart_pending=facts.restart_pending,
            sent_at=now,
            echo_sent_at=None if last is None else last.sent_at,
            echo_hold_s=0.0 if view.last_at is None else max(0.0, now - view.last_at),
        )

    def status_of(self, ip: str) -> Status | None:
        view = self.views.get(ip)
        return None if view is None else view.status(self.facts(), self.now())

    def alarms(self) -> list[tuple[int, str, str]]:
        if not self.enabled:
            return []
        wanted = cluster_alarms(self.facts(), self.views.values(), self.now())
        for peer in self.others:
            if self.replicator.stalled(peer):  # G-R14 / G-R6: replication fails visibly
                wanted.append(
                    (
                        20009,
                        peer,
                        f"Replication to {peer} fails: messages are not acknowledged "
                        f"(datagrams up to {self.replicator.max_payload} bytes of payload; "
                        "check the path MTU and the cluster interface MTU on System > Ethernet)",
                    )
                )
        return wanted
