"""The VCS node: its store, TLS identity, admin web server, policy-service clients and calls.

The node gets everything from its `Runtime` (clock, rng, network, data dir,
database URL), so it runs unchanged as a real process (`python -m vcs_policy`)
and inside the simulated world.

A call (`place_call`) walks the search rules for the dialled alias (G-V2): a
rule whose target is LocalZone connects the call to the alias; a rule whose
target is a policy service asks that service (`PolicyClient.request`, with
failover and the Default CPL, G-V4) and follows its CPL: allow connects the
call to its destination, reject ends the rule (Stop) or goes on to the next
(Continue), redirect restarts call processing for the new alias, or connects
it straight away when the alias names an IP address (see `core.search`).

Calls are counted in memory (`core.calls.CallStats`) and published with the
policy-service statuses in `status.json` for `tplab status`, at most once a second.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from netsim.api import Runtime
from netsim.certs import make_certificates, server_ssl_context
from netsim.http import NetsimConnector, NetsimSite
from netsim.statusfile import StatusFile
from vcs_policy.client import Decision, PolicyClient, describe_error
from vcs_policy.core.calls import Attempt, CallResult, CallStats, Outcome
from vcs_policy.core.config import LOCAL_ZONE
from vcs_policy.core.health import StatusChanged
from vcs_policy.core.search import MAX_HOPS, direct_address, matching_rules
from vcs_policy.store import VcsStore
from vcs_policy.wire import Action, PolicyRequest

SOFTWARE_VERSION = "X8.5.2"
DEFAULT_PORT = 8443
#: where a conference bridge takes calls (tplab's stand-in for SIP on TCP 5060)
SIGNALLING_PORT = 5060
DIAL_TIMEOUT = aiohttp.ClientTimeout(total=10.0)
MAX_LOAD_CALLS = 1_000_000
MAX_LOAD_RATE = 10_000.0
MAX_LOAD_DURATION_S = 86_400.0
_RANGE = re.compile(r"\{(\d{1,9})-(\d{1,9})\}")


class LoadError(ValueError):
    pass


@dataclass
class LoadRun:
    """A call load: `rate` calls per second for `duration_s`, aliases from a pattern."""

    load_id: int
    rate: float
    duration_s: float
    aliases: str
    source: str
    protocol: str
    started_s: float
    hold_s: float = 0.0  # a connected call hangs up after this long (0: stays up)
    placed: int = 0
    done: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    finished: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def total(self) -> int:
        """How many calls the load places."""
        return max(1, round(self.rate * self.duration_s))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.load_id,
            "total": self.total,
            "rate": self.rate,
            "duration_s": self.duration_s,
            "aliases": self.aliases,
            "source": self.source,
            "protocol": self.protocol,
            "hold_s": self.hold_s,
            "placed": self.placed,
            "done": self.done,
            "by_outcome": dict(sorted(self.by_outcome.items())),
            "finished": self.finished,
        }


def expand_alias(pattern: str, pick: Any) -> str:
    """`meet.{1-10}@example.com` -> one alias, the number drawn by `pick(low, high)`."""
    match = _RANGE.search(pattern)
    if match is None:
        return pattern
    low, high = int(match.group(1)), int(match.group(2))
    return pattern[: match.start()] + str(pick(low, high)) + pattern[match.end() :]


def check_alias_pattern(pattern: Any) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise LoadError("aliases: give an alias pattern such as meet.{1-10}@example.com")
    if len(pattern) > 256 or re.search(r"[\x00-\x20\x7f]", pattern):
        raise LoadError("aliases: at most 256 printable characters without spaces")
    ranges = _RANGE.findall(pattern)
    if len(ranges) > 1:
        raise LoadError("aliases: at most one {LOW-HIGH} range")
    if ranges and int(ranges[0][0]) > int(ranges[0][1]):
        raise LoadError("aliases: in {LOW-HIGH}, LOW must not exceed HIGH")
    return pattern


class VcsNode:
    def __init__(self, runtime: Runtime, *, port: int = DEFAULT_PORT) -> None:
        self.runtime = runtime
        self.port = port
        self.software_version = SOFTWARE_VERSION
        self.store = VcsStore(runtime.database_url, wall=runtime.clock.wall, rng=runtime.rng)
        self.stats = CallStats()
        self.clients: dict[str, PolicyClient] = {}
        self.loads: dict[int, LoadRun] = {}
        #: connected calls with a far end to hang up: call id -> bridge address
        self.active: dict[str, str] = {}
        self._load_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._done: asyncio.Future[None] | None = None
        self._status_file = StatusFile(runtime.data_dir / "status.json", self._published_status)
        self.started_wall = runtime.clock.wall()

    # ------------------------------------------------------------ lifecycle
    def _identity(self) -> dict[str, str]:
        identity = self.store.identity()
        if not identity:
            certs = make_certificates(
                host_name=self.runtime.host.name,
                ip=self.runtime.host.ip,
                fqdn="",
                serial=self.store.serial,
                now=self.runtime.clock.wall(),
                rng=self.runtime.rng,
            )
            identity = {
                "ca": certs.ca_cert_pem,
                "ca_key": certs.ca_key_pem,
                "server": certs.server_cert_pem,
                "server_key": certs.server_key_pem,
            }
            self.store.set_identity(identity)
        return identity

    async def start(self) -> None:
        identity = self._identity()
        self.store.log_event("system_started", version=self.software_version)
        from vcs_policy.web import make_app

        self._runner = web.AppRunner(make_app(self), access_log=None)
        await self._runner.setup()
        context = server_ssl_context(
            identity["server"],
            identity["server_key"],
            identity["ca"],
            self.runtime.data_dir / "tls",
        )
        await NetsimSite(self._runner, self.runtime.network, self.port, ssl_context=context).start()
        self._session = aiohttp.ClientSession(
            connector=NetsimConnector(self.runtime.network, limit=0)
        )
        await self.reload_services()
        self._done = asyncio.get_running_loop().create_future()
        self.publish_status(force=True)

    async def run(self) -> None:
        await self.start()
        assert self._done is not None
        try:
            await self._done
        finally:
            await self.close()

    def stop(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def close(self) -> None:
        for load in self.loads.values():
            if load.task is not None:
                load.task.cancel()
        await asyncio.gather(
            *(load.task for load in self.loads.values() if load.task is not None),
            return_exceptions=True,
        )
        for client in self.clients.values():
            await client.stop()
        self.clients.clear()
        self._status_file.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.store.close()

    async def reload_services(self) -> None:
        """After a change of policy services or trusted CAs: a changed service starts
        afresh (its servers are polled at once, as the product polls after Save)."""
        assert self._session is not None
        wanted = {s.name: s for s in self.store.services()}
        trusted = self.store.trusted_cas()
        for name, client in list(self.clients.items()):
            if wanted.get(name) != client.service or client.trusted_pem != trusted:
                await client.stop()
                del self.clients[name]
        for name, service in wanted.items():
            if name not in self.clients:
                client = PolicyClient(
                    service, self._session, self.runtime.clock, trusted, self._status_changed
                )
                self.clients[name] = client
                client.start()
        self.publish_status()

    def _status_changed(self, change: StatusChanged) -> None:
        level = "info" if change.status.value == "Active" else "warning"
        self.store.log_event(
            "policy_server_" + change.status.value.lower(),
            level=level,
            service=change.service,
            server=change.address,
            slot=change.slot,
            reason=change.reason,
        )
        self.publish_status()

    # ---------------------------------------------------------------- calls
    def _call_id(self) -> str:
        return str(uuid.UUID(int=self.runtime.rng.getrandbits(128), version=4))

    def _request(self, source: str, alias: str, protocol: str, call_id: str) -> PolicyRequest:
        wall = self.runtime.clock.wall()
        return PolicyRequest(
            POLICY_TYPE="SEARCH",
            METHOD="INVITE" if protocol == "SIP" else "SETUP",
            PROTOCOL=protocol,
            DESTINATION_ALIAS=alias,
            UNAUTHENTICATED_SOURCE_ALIAS=source,
            AUTHENTICATED="FALSE",
            LOCAL_CALL_SERIAL_NUMBER=call_id,
            GLOBAL_CALL_SERIAL_NUMBER=call_id,
            NETWORK_TYPE="IPV4",
            SOURCE_IP=self.runtime.host.ip,
            ZONE_NAME="DefaultSubZone",
            CLUSTER_NAME=self.runtime.host.name,
            UTCTIME=wall.strftime("%Y-%m-%d %H:%M:%S"),
        )

    async def place_call(self, source: str, destination: str, protocol: str = "SIP") -> CallResult:
        """Route one call and record its result (G-V2, G-V4)."""
        clock = self.runtime.clock
        started_s, started = clock.monotonic(), clock.wall().isoformat(timespec="milliseconds")
        call_id = self._call_id()
        fields: dict[str, Any] = {}
        try:
            fields = await self._route(source, destination, protocol, call_id)
        except Exception as exc:  # a bug must not lose the call's record
            fields = {"outcome": Outcome.FAILED, "reason": f"{type(exc).__name__}: {exc}"}
        result = CallResult(
            call_id=call_id,
            source=source,
            destination=destination,
            protocol=protocol,
            setup_ms=round((clock.monotonic() - started_s) * 1000, 3),
            started=started,
            started_s=started_s,
            **fields,
        )
        self.stats.record(result)
        self.publish_status()
        return result

    async def _route(
        self, source: str, destination: str, protocol: str, call_id: str
    ) -> dict[str, Any]:
        alias, attempts = destination, list[Attempt]()
        services = {s.name: s for s in self.store.services()}
        for _hop in range(MAX_HOPS + 1):
            failure: dict[str, Any] = {
                "status": 404,
                "reason": "Not found: no search rule matches " + alias,
            }
            rules = matching_rules(self.store.rules(), alias, protocol)
            redirected = None
            for rule in rules:
                if rule.target == LOCAL_ZONE:
                    return {
                        "outcome": Outcome.CONNECTED,
                        "target": alias,
                        "via": LOCAL_ZONE,
                        "rule": rule.name,
                        "attempts": tuple(attempts),
                    }
                client = self.clients.get(rule.target)
                if client is None or rule.target not in services:
                    failure = {"status": 404, "reason": f"policy service {rule.target} is gone"}
                    continue
                decision: Decision = await client.request(
                    self._request(source, alias, protocol, call_id)
                )
                attempts.extend(decision.attempts)
                result = decision.result
                common = {"rule": rule.name, "attempts": tuple(attempts)}
                if result.action is Action.ALLOW:
                    return {
                        "outcome": Outcome.CONNECTED,
                        "target": alias,
                        "via": decision.server,
                        **common,
                    }
                if result.action is Action.REDIRECT:
                    new = result.locations[0]
                    address = direct_address(new)
                    if address is not None:
                        dialled = await self._dial(call_id, source, new, address, protocol)
                        return {"via": decision.server, **common, **dialled}
                    redirected = new
                    break
                failure = {
                    "status": result.status,
                    "reason": result.reason,
                    "default_cpl": decision.default_cpl,
                    "via": decision.server,
                    **common,
                }
                if rule.on_match == "Stop":
                    break
            if redirected is None:
                return {"outcome": Outcome.REJECTED, "attempts": tuple(attempts), **failure}
            alias = redirected
        return {
            "outcome": Outcome.REJECTED,
            "status": 483,
            "reason": f"Too many hops: more than {MAX_HOPS} redirects",
            "attempts": tuple(attempts),
        }

    # ------------------------------------------------------- call signalling
    async def _dial(
        self, call_id: str, source: str, target: str, address: str, protocol: str
    ) -> dict[str, Any]:
        """Set the call up with the host at `address` (a conference bridge): tplab's
        stand-in for SIP / H.323 signalling, `POST http://ADDRESS:5060/calls` (see
        `bridges.node`). The call is connected when the bridge accepts it."""
        assert self._session is not None
        url = f"http://{address}:{SIGNALLING_PORT}/calls"
        body = {"call_id": call_id, "from": source, "to": target, "protocol": protocol}
        try:
            async with self._session.post(url, json=body, timeout=DIAL_TIMEOUT) as response:
                answer = await response.json(content_type=None)
                status = response.status
        except Exception as exc:  # no bridge answered: the call fails, with why
            return {
                "outcome": Outcome.FAILED,
                "target": target,
                "reason": f"{address} did not answer the call: {describe_error(exc, 10.0)}",
            }
        if not isinstance(answer, dict):
            answer = {}
        if status == 200:
            self.active[call_id] = address
            return {
                "outcome": Outcome.CONNECTED,
                "target": target,
                "bridge": address,
                "participant": str(answer.get("participant", "")),
            }
        return {
            "outcome": Outcome.REJECTED,
            "target": target,
            "status": status,
            "reason": str(answer.get("error", f"{address} refused the call")),
        }

    async def hang_up(self, call_id: str) -> bool:
        """End a connected call (a BYE to its bridge); False when no such call is up."""
        address = self.active.pop(call_id, None)
        if address is None:
            return False
        assert self._session is not None
        url = f"http://{address}:{SIGNALLING_PORT}/calls/{call_id}"
        try:
            async with self._session.delete(url, timeout=DIAL_TIMEOUT) as response:
                await response.read()
        except Exception as exc:  # the bridge is gone: the call is over all the same
            self.store.log_event("hang_up_unanswered", call_id=call_id, bridge=address,
                                 reason=describe_error(exc, 10.0))  # fmt: skip
        self.stats.hung_up += 1
        self.publish_status()
        return True

    # ----------------------------------------------------------------- load
    def start_load(
        self,
        *,
        rate: Any,
        duration_s: Any,
        aliases: Any,
        source: Any,
        protocol: Any,
        hold_s: Any = 0,
    ) -> LoadRun:
        """Place calls at `rate` per second for `duration_s` in the background."""
        for name, value, high in (
            ("rate", rate, MAX_LOAD_RATE),
            ("duration_s", duration_s, MAX_LOAD_DURATION_S),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise LoadError(f"{name}: must be a number")
            if not 0 < value <= high:
                raise LoadError(f"{name}: must be above 0 and at most {high:g}")
        if isinstance(hold_s, bool) or not isinstance(hold_s, int | float) or hold_s != hold_s:
            raise LoadError("hold_s: must be a number")
        if not 0 <= hold_s <= MAX_LOAD_DURATION_S:
            raise LoadError(f"hold_s: must be 0 (stay connected) to {MAX_LOAD_DURATION_S:g}")
        if rate * duration_s > MAX_LOAD_CALLS:
            raise LoadError(f"rate x duration_s: at most {MAX_LOAD_CALLS} calls in one load")
        if protocol not in ("SIP", "H323"):
            raise LoadError("protocol: must be SIP or H323")
        if not isinstance(source, str) or not 0 < len(source) <= 256:
            raise LoadError("source: must be an alias of 1-256 characters")
        load = LoadRun(
            next(self._load_ids),
            float(rate),
            float(duration_s),
            check_alias_pattern(aliases),
            source,
            protocol,
            self.runtime.clock.monotonic(),
            hold_s=float(hold_s),
        )
        self.loads[load.load_id] = load
        load.task = asyncio.get_running_loop().create_task(self._run_load(load))
        return load

    async def _run_load(self, load: LoadRun) -> None:
        total = load.total
        interval = 1.0 / load.rate
        calls: set[asyncio.Task[None]] = set()
        rng = self.runtime.rng

        async def one(alias: str) -> None:
            result = await self.place_call(load.source, alias, load.protocol)
            load.done += 1
            key = result.outcome.value
            load.by_outcome[key] = load.by_outcome.get(key, 0) + 1
            if load.hold_s > 0 and result.call_id in self.active:
                await asyncio.sleep(load.hold_s)
                await self.hang_up(result.call_id)

        try:
            for index in range(total):
                due = load.started_s + index * interval
                delay = due - self.runtime.clock.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.get_running_loop().create_task(
                    one(expand_alias(load.aliases, rng.randint))
                )
                calls.add(task)
                task.add_done_callback(calls.discard)
                load.placed += 1
            await asyncio.gather(*calls, return_exceptions=True)
        finally:
            for task in calls:
                task.cancel()
            load.finished = True
            self.publish_status()

    # --------------------------------------------------------------- status
    def policy_status(self) -> list[dict[str, Any]]:
        """Status > Policy services: name, URL in use, status, last used, per-server lines."""
        out = []
        for service in self.store.services():
            client = self.clients.get(service.name)
            servers = [s.to_dict() for s in client.health.servers] if client else []
            in_use = client.health.in_use() if client else None
            last_used = client.health.last_used if client else None
            out.append(
                {
                    "name": service.name,
                    "url": service.url(in_use.address, service.path) if in_use else "",
                    "status": "Active" if in_use else ("Failed" if servers else "No servers"),
                    "last_used": last_used.isoformat(timespec="seconds") if last_used else None,
                    "servers": servers,
                }
            )
        return out

    def status(self) -> dict[str, Any]:
        return {
            "host": self.runtime.host.name,
            "role": "vcs",
            "url": f"https://{self.runtime.host.ip}:{self.port}/",
            "version": self.software_version,
            "serial": self.store.serial,
            "default_password": self.store.default_password(),
            "policy_services": self.policy_status(),
            "calls": {**self.stats.summary(), "active": len(self.active)},
            "loads": [load.to_dict() for load in self.loads.values()],
            "started": self.started_wall.isoformat(timespec="seconds"),
        }

    def _published_status(self) -> dict[str, Any]:
        status = self.status()
        status.pop("started", None)
        return status

    def publish_status(self, *, force: bool = False) -> None:
        """`status.json` for `tplab status` (`netsim.statusfile`: at most once a second)."""
        self._status_file.publish(force=force)
