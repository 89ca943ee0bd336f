"""The peer's conference service: bridge health, placement, the shared conference
records, reconciliation and ending empty conferences (G-S3, G-B1, G-R8).

The driver around `peers.core.placement`. It speaks each bridge's XML-RPC API
(`bridges.wire.xmlrpc`, over HTTP or HTTPS as the bridge's entry says, through
the host's network) and keeps:

- health: every *Conference bridge status poll interval* each configured bridge
  is asked `device.query` (free ports = totalVideoPorts - usedVideoPorts,
  `healthy`); no answer or a
  fault makes it unusable until a later poll succeeds (G-R8: shown unavailable,
  conferences go elsewhere). A failed create marks it unusable at once.
- placement: a matched conference alias with a template finds its conference in
  the replicated records (`conference:<name>`, G-S3: every peer answers the VCS
  alike) or creates it on the bridge the core chooses (MCU `conference.create`
  with the URI as conferenceName; TelePresence Server `flex.conference.create`
  with the URI in `URIs`), writes the record (it replicates) and answers a CPL
  redirect to `<uri>@<bridge address>`; no capacity anywhere: reject 503.
- reconciliation (every `RECONCILE_INTERVAL_S`): conferences this peer created
  whose record now names another copy (two peers created the same conference
  during a partition; last writer won) are destroyed on their bridge, so after a
  heal each conference lives on one bridge; their participants are dropped
  (tplab's choice: they dial again and land on the winner).
- ending: a conference this peer created that has had no participant for *End a
  conference left empty after* seconds is destroyed and its record deleted.

TLS to bridges is not verified (tplab's choice: bridges sign with their own CA
and the Conductor pages have no trust store for bridges yet).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import aiohttp

from bridges.wire.errors import BridgeFault, RemoteProtocolError
from bridges.wire.xmlrpc import CONTENT_TYPE, decode_result, encode_call
from peers.core.placement import (
    CONFERENCE_PREFIX,
    Bridge,
    BridgeHealth,
    BridgeKind,
    ConferenceRecord,
    Create,
    Join,
    NoCapacity,
    Template,
    ended_from,
    place,
    reconcile,
    records_from,
)
from vcs_policy.wire import cpl_redirect, cpl_reject

if TYPE_CHECKING:
    from peers.node import PeerNode

RECONCILE_INTERVAL_S = 2.0
RPC_TIMEOUT = aiohttp.ClientTimeout(total=5.0)
NO_CAPACITY_STATUS = 503
#: peer-local store key of the conferences this peer created
CREATED_KEY = "conferences_created"
#: MCU fault 2: a conference of that name exists (on that bridge: adopt it)
DUPLICATE_CONFERENCE = 2
NO_SUCH_CONFERENCE = 4
#: TelePresence Server: a URI already in use (fault 18, "duplicate numeric ID")
DUPLICATE_NUMERIC_ID = 18


class BridgeUnavailable(Exception):
    """A bridge did not answer, or answered something that is not XML-RPC."""


class ConferenceService:
    def __init__(self, node: PeerNode) -> None:
        self.node = node
        self.health: dict[str, BridgeHealth] = {}
        #: conferences this peer created and has not destroyed: name -> record
        self.created: dict[str, ConferenceRecord] = {}
        self._empty_since: dict[str, float] = {}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        from netsim.http import NetsimConnector

        self._session = aiohttp.ClientSession(
            connector=NetsimConnector(self.node.runtime.network, limit=0)
        )
        # what this peer created is kept locally, so a restarted peer still destroys
        # its copies that lost while it was down
        stored = self.node.store.local(CREATED_KEY) or {}
        self.created = {name: ConferenceRecord.from_json(r) for name, r in stored.items()}
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._poll_loop()), loop.create_task(self._tick_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def me(self) -> str:
        return self.node.runtime.host.name

    # -------------------------------------------------------------- config
    def bridges(self) -> dict[str, Bridge]:
        from peers.core.conference_config import bridges_of

        return bridges_of(self.node.store)

    def records(self) -> dict[str, ConferenceRecord]:
        """The cluster's conference records (rebuilt only after the store changes)."""
        store = self.node.store

        def build() -> Mapping[str, ConferenceRecord]:
            return MappingProxyType(
                records_from(
                    [
                        (e.key, e.value)
                        for e in store.shared_entries()
                        if e.key.startswith(CONFERENCE_PREFIX) and not e.deleted
                    ]
                )
            )

        return dict(store.derived("conference_records", build))

    def ended(self) -> frozenset[str]:
        """Names of conferences whose record the cluster deleted (ended)."""
        store = self.node.store
        return store.derived(
            "conference_ended",
            lambda: ended_from([(e.key, e.deleted) for e in store.shared_entries()]),
        )

    def status(self) -> dict[str, dict[str, Any]]:
        """Conference bridges page: name -> {"text", "ok"} as this peer sees it."""
        out: dict[str, dict[str, Any]] = {}
        for name, bridge in self.bridges().items():
            seen = self.health.get(name)
            if not bridge.enabled:
                out[name] = {"text": "Disabled", "ok": False}
            elif seen is None:
                out[name] = {"text": "Checking", "ok": True}
            elif seen.usable:
                out[name] = {"text": f"Active: {seen.free_ports} ports free", "ok": True}
            elif seen.reachable and seen.healthy:
                out[name] = {"text": "Full: no free ports", "ok": False}
            else:
                out[name] = {"text": f"Unavailable: {seen.reason}", "ok": False}
        return out

    # ------------------------------------------------------------- XML-RPC
    async def rpc(self, bridge: Bridge, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._session is not None
        scheme = "https" if bridge.protocol == "HTTPS" else "http"
        url = f"{scheme}://{bridge.address}:{bridge.port}/RPC2"
        body = encode_call(
            method,
            {
                "authenticationUser": bridge.username,
                "authenticationPassword": bridge.password,
                **params,
            },
        )
        try:
            async with self._session.post(
                url,
                data=body,
                headers={"Content-Type": CONTENT_TYPE},
                ssl=False,
                timeout=RPC_TIMEOUT,
            ) as response:
                answer = await response.read()
                status = response.status
        except Exception as exc:
            raise BridgeUnavailable(f"no answer from {url}: {type(exc).__name__}: {exc}") from exc
        if status != 200:
            raise BridgeUnavailable(f"{url} answered HTTP {status}")
        try:
            return decode_result(answer)
        except RemoteProtocolError as exc:
            raise BridgeUnavailable(f"{url} answered something that is not XML-RPC: {exc}") from exc

    async def poll(self, bridge: Bridge) -> BridgeHealth:
        try:
            info = await self.rpc(bridge, "device.query", {})
            total = int(info.get("totalVideoPorts", 0))
            used = int(info.get("usedVideoPorts", 0))
            healthy = bool(info.get("healthy", True))
            seen = BridgeHealth(True, healthy, max(0, total - used), "" if healthy else "unhealthy")
        except BridgeFault as fault:
            seen = BridgeHealth(True, False, 0, f"fault {fault.code}: {fault.string}")
        except (BridgeUnavailable, ValueError, TypeError) as exc:
            seen = BridgeHealth(False, False, 0, str(exc))
        self.health[bridge.name] = seen
        return seen

    async def _poll_loop(self) -> None:
        while True:
            bridges = [b for b in self.bridges().values() if b.enabled]
            await asyncio.gather(*(self.poll(b) for b in bridges), return_exceptions=True)
            for name in set(self.health) - {b.name for b in bridges}:
                del self.health[name]
            await asyncio.sleep(float(self.node.store.get("policy.bridge_poll_s")))

    # ----------------------------------------------------------- placement
    async def place(self, conference: str, template: Template | None) -> tuple[str, str]:
        """The CPL answering a matched alias, and what happened (for the counters)."""
        # one lock per conference while requests for it are in flight, then dropped
        lock, users = self._locks.get(conference, (asyncio.Lock(), 0))
        self._locks[conference] = (lock, users + 1)
        try:
            async with lock:
                return await self._place(conference, template)
        finally:
            lock, users = self._locks[conference]
            if users == 1:
                del self._locks[conference]
            else:
                self._locks[conference] = (lock, users - 1)

    async def _place(self, conference: str, template: Template | None) -> tuple[str, str]:
        from peers.core.conference_config import config_of

        bridges, pools, preferences = config_of(self.node.store)
        for _ in range(len(bridges) + 1):
            decision = place(
                conference,
                template,
                records=self.records(),
                bridges=bridges,
                pools=pools,
                preferences=preferences,
                health=self.health,
            )
            if isinstance(decision, NoCapacity):
                return cpl_reject(NO_CAPACITY_STATUS, decision.reason), "no_capacity"
            if isinstance(decision, Join):
                record = decision.record
                return cpl_redirect(f"{record.uri}@{bridges[record.bridge].address}"), "joined"
            assert isinstance(decision, Create)
            created = await self._create(conference, decision)
            if created is not None:
                return cpl_redirect(f"{created.uri}@{decision.bridge.address}"), "created"
        return cpl_reject(NO_CAPACITY_STATUS, "no conference bridge answered"), "no_capacity"

    async def _create(self, conference: str, decision: Create) -> ConferenceRecord | None:
        bridge = decision.bridge
        try:
            if bridge.kind is BridgeKind.MCU:
                try:
                    await self.rpc(bridge, "conference.create", {"conferenceName": decision.uri})
                except BridgeFault as fault:
                    if fault.code != DUPLICATE_CONFERENCE:
                        raise
                bridge_id = decision.uri
            else:
                try:
                    answer = await self.rpc(
                        bridge,
                        "flex.conference.create",
                        {"conferenceName": conference[:80], "URIs": [{"URI": decision.uri}]},
                    )
                    bridge_id = str(answer["conferenceID"])
                except BridgeFault as fault:
                    # another peer made it there first (a partition, or a record not yet
                    # replicated): the same conference, adopt it
                    if fault.code not in (DUPLICATE_CONFERENCE, DUPLICATE_NUMERIC_ID):
                        raise
                    bridge_id = await self._ts_conference_id(bridge, conference[:80])
        except (BridgeFault, BridgeUnavailable, KeyError) as exc:
            self.health[bridge.name] = BridgeHealth(False, False, 0, str(exc))
            self.node.store.log_event(
                "conference_create_failed", level="warning", conference=conference,
                bridge=bridge.name, reason=str(exc),
            )  # fmt: skip
            return None
        record = ConferenceRecord(conference, bridge.name, decision.uri, bridge_id, self.me)
        entry = self.node.store.put_shared(CONFERENCE_PREFIX + conference, record.to_json())
        self.node.publish([entry])
        self.created[conference] = record
        self._save_created()
        self.node.store.log_event("conference_created", conference=conference, bridge=bridge.name)
        return record

    # ----------------------------------------------- reconcile and end empty
    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_INTERVAL_S)
            with contextlib.suppress(Exception):
                await self.tick()

    async def tick(self) -> None:
        records = self.records()
        bridges = self.bridges()
        for loser in reconcile(self.me, list(self.created.values()), records, self.ended()):
            if await self._destroy(loser, bridges, reason="superseded"):
                self.created.pop(loser.name, None)
                self._save_created()
        now = self.node.runtime.clock.monotonic()
        counts = await self._participant_counts(bridges)
        for name, record in list(self.created.items()):
            count = counts.get((record.bridge, record.bridge_id))
            if count is None or count > 0:
                self._empty_since.pop(name, None)
                continue
            since = self._empty_since.setdefault(name, now)
            end_s = float(self.node.store.get("policy.empty_conference_end_s"))
            if now - since >= end_s and await self._destroy(record, bridges, reason="empty"):
                if records.get(name) == record:
                    entry = self.node.store.delete_shared(CONFERENCE_PREFIX + name)
                    self.node.publish([entry])
                self.created.pop(name, None)
                self._save_created()
                self._empty_since.pop(name, None)

    async def _destroy(
        self, record: ConferenceRecord, bridges: dict[str, Bridge], *, reason: str
    ) -> bool:
        """Destroy a conference on its bridge; True once it is gone there (or its bridge
        entry is), False to try again later (the bridge did not answer)."""
        bridge = bridges.get(record.bridge)
        if bridge is None:
            return True
        method, params = (
            ("conference.destroy", {"conferenceName": record.bridge_id})
            if bridge.kind is BridgeKind.MCU
            else ("flex.conference.destroy", {"conferenceID": record.bridge_id})
        )
        try:
            await self.rpc(bridge, method, params)
        except BridgeFault as fault:
            if fault.code != NO_SUCH_CONFERENCE:
                return False
        except BridgeUnavailable:
            return False
        self.node.store.log_event(
            "conference_destroyed", conference=record.name, bridge=bridge.name, reason=reason
        )
        return True

    def _save_created(self) -> None:
        self.node.store.set_local(
            CREATED_KEY, {name: r.to_json() for name, r in self.created.items()}
        )

    async def _participant_counts(self, bridges: dict[str, Bridge]) -> dict[tuple[str, str], int]:
        """(bridge, conference id there) -> participants, for bridges holding conferences
        this peer created (a bridge that does not answer is left out)."""
        wanted = {r.bridge for r in self.created.values()}
        counts: dict[tuple[str, str], int] = {}
        for name in wanted:
            bridge = bridges.get(name)
            if bridge is None:
                continue
            try:
                if bridge.kind is BridgeKind.MCU:
                    rows = await self._enumerate(bridge, "conference.enumerate", "conferences")
                    for row in rows:
                        counts[(name, str(row.get("conferenceName")))] = int(
                            row.get("activeParticipants", 0)
                        )
                else:
                    for row in await self._enumerate(
                        bridge, "flex.conference.enumerate", "conferences"
                    ):
                        counts[(name, str(row.get("conferenceID")))] = 0
                    for row in await self._enumerate(
                        bridge, "flex.participant.enumerate", "participants"
                    ):
                        key = (name, str(row.get("conferenceID")))
                        counts[key] = counts.get(key, 0) + 1
            except (BridgeFault, BridgeUnavailable, ValueError, TypeError):
                continue
        return counts

    async def _ts_conference_id(self, bridge: Bridge, name: str) -> str:
        for row in await self._enumerate(bridge, "flex.conference.enumerate", "conferences"):
            if row.get("conferenceName") == name:
                return str(row["conferenceID"])
        raise BridgeUnavailable(f"{bridge.name} refused {name!r} as a duplicate but lists none")

    async def _enumerate(self, bridge: Bridge, method: str, field: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        for _ in range(1000):  # bounded: 1000 pages
            answer = await self.rpc(bridge, method, params)
            rows.extend(r for r in answer.get(field, []) if isinstance(r, dict))
            if "enumerateID" not in answer:
                break
            params = {"enumerateID": answer["enumerateID"]}
        return rows
