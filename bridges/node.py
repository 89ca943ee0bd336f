"""The bridge node: a TelePresence MCU or TelePresence Server on a host (G-B1).

The node gets everything from its `Runtime`, so it runs unchanged as a real
process (`python -m bridges`) and inside the simulated world. One core
(`McuCore` / `TsCore`) holds the state; the node serves it on three listeners of
the host's network (`netsim.http.NetsimSite`):

- HTTPS (`https_port`, 8443): `POST /RPC2`, `GET /login`, the drill API;
- plain HTTP (`http_port`, 8080; None for none): the same (G-R8: a bridge is
  reachable over HTTP and/or HTTPS, and the Conductor must use what it offers);
- signalling (`sip_port`, 5060, plain HTTP): tplab's stand-in for SIP / H.323
  (`bridges.wire.signalling`), and the drill API.

The drill (`GET`/`PUT /api/v1/drill`, HTTP Basic with the admin account):
`full` (no free port: new participants and calls refused), `healthy` (False: the
health queries say so), `http` / `https` (each web listener on or off; off closes
the port and its connections, as switching the service off on the device does).

TLS identity: a CA of its own and a server certificate for the host's address
(`netsim.certs`), made at first start and kept in `data_dir/identity.json` with
the bridge's serial number, so a client that trusts the CA keeps trusting it
after a restart. Conferences live in memory: a restarted bridge is empty.

`status.json` in the data dir (kind, conferences, participants, ports, drill,
listeners) is published for `tplab status`, at most once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import Any

from aiohttp import web

from bridges.core import BridgeCore, CallAnswer, Fault, McuCore, TsCore
from bridges.web import make_app
from bridges.wire import (
    CallRequest,
    FaultCode,
    LocalProtocolError,
    RemoteProtocolError,
    decode_call,
    encode_fault,
    encode_result,
    fault_for,
    fault_string,
)
from bridges.wire.signalling import SIGNALLING_PORT
from netsim.api import Runtime
from netsim.certs import make_certificates, server_ssl_context
from netsim.http import NetsimSite
from netsim.statusfile import StatusFile

DEFAULT_HTTPS_PORT = 8443
DEFAULT_HTTP_PORT = 8080
KINDS = ("mcu", "ts")
#: the topology role of each kind
ROLES = {"mcu": "mcu", "ts": "telepresence-server"}
#: how long closing a listener waits for requests in progress
SHUTDOWN_TIMEOUT_S = 1.0
IDENTITY_FILE = "identity.json"
log = logging.getLogger("bridges")


class BridgeNode:
    def __init__(
        self,
        runtime: Runtime,
        kind: str,
        *,
        https_port: int = DEFAULT_HTTPS_PORT,
        http_port: int | None = DEFAULT_HTTP_PORT,
        sip_port: int = SIGNALLING_PORT,
        user: str = "admin",
        password: str = "",
        ports: int | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        self.runtime = runtime
        self.kind = kind
        self.https_port = https_port
        self.http_port = http_port
        self.sip_port = sip_port
        self.user = user
        self.password = password
        self.identity = self._identity()
        options: dict[str, Any] = {
            "ip": runtime.host.ip,
            "user": user,
            "password": password,
            "serial": self.identity["serial"],
            "started_s": runtime.clock.monotonic(),
        }
        if ports is not None:
            options["ports"] = ports
        self.core: BridgeCore = (
            McuCore(**options) if kind == "mcu" else TsCore(rng=runtime.rng, **options)
        )
        self.http_enabled = http_port is not None
        self.https_enabled = True
        self._runners: dict[str, web.AppRunner] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: asyncio.Future[None] | None = None
        self._status_file = StatusFile(runtime.data_dir / "status.json", self.status)

    # ------------------------------------------------------------ lifecycle
    def _identity(self) -> dict[str, str]:
        path = self.runtime.data_dir / IDENTITY_FILE
        with contextlib.suppress(OSError, ValueError):
            identity = json.loads(path.read_text())
            keys = ("ca", "ca_key", "server", "server_key", "serial")
            if isinstance(identity, dict) and all(isinstance(identity.get(k), str) for k in keys):
                return identity
        prefix = "SM" if self.kind == "mcu" else "TS"
        serial = f"{prefix}{self.runtime.rng.getrandbits(32):08X}"
        certs = make_certificates(
            host_name=self.runtime.host.name,
            ip=self.runtime.host.ip,
            fqdn="",
            serial=serial,
            now=self.runtime.clock.wall(),
            rng=self.runtime.rng,
        )
        identity = {
            "ca": certs.ca_cert_pem,
            "ca_key": certs.ca_key_pem,
            "server": certs.server_cert_pem,
            "server_key": certs.server_key_pem,
            "serial": serial,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(json.dumps(identity))
        os.replace(tmp, path)
        return identity

    @property
    def ca_pem(self) -> str:
        """The bridge's own CA certificate (what a client trusts to verify it)."""
        return self.identity["ca"]

    def _port(self, listener: str) -> int:
        port = {"https": self.https_port, "http": self.http_port, "sip": self.sip_port}[listener]
        assert port is not None
        return port

    async def _open(self, listener: str) -> None:
        context = None
        if listener == "https":
            identity = self.identity
            context = server_ssl_context(
                identity["server"],
                identity["server_key"],
                identity["ca"],
                self.runtime.data_dir / "tls",
            )
        runner = web.AppRunner(
            make_app(self, listener), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        try:
            await NetsimSite(
                runner, self.runtime.network, self._port(listener), ssl_context=context
            ).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runners[listener] = runner

    async def _sync_listeners(self) -> None:
        """Open or close the web listeners to match `http_enabled` / `https_enabled`."""
        async with self._lock:
            for listener, wanted in (("https", self.https_enabled), ("http", self.http_enabled)):
                if wanted and listener not in self._runners:
                    await self._open(listener)
                elif not wanted and listener in self._runners:
                    await self._runners.pop(listener).cleanup()
            self.publish_status()

    async def start(self) -> None:
        await self._open("sip")
        await self._sync_listeners()
        self._done = asyncio.get_running_loop().create_future()
        self.publish_status(force=True)

    async def run(self) -> None:
        try:
            await self.start()
            assert self._done is not None
            await self._done
        finally:
            await self.close()

    def stop(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._status_file.close()
        async with self._lock:
            for runner in self._runners.values():
                await runner.cleanup()
            self._runners.clear()

    # ---------------------------------------------------------------- drill
    def drill(self) -> dict[str, bool]:
        return {
            "full": self.core.full,
            "healthy": self.core.healthy,
            "http": self.http_enabled,
            "https": self.https_enabled,
        }

    async def set_drill(
        self,
        *,
        full: bool | None = None,
        healthy: bool | None = None,
        http: bool | None = None,
        https: bool | None = None,
        listener: str = "",
    ) -> None:
        """Change the drill state. A listener that the change closes is closed after
        the answer to a request it carries (`listener`), else before this returns."""
        self.core.set_drill(full=full, healthy=healthy)
        if http is not None:
            if http and self.http_port is None:
                raise ValueError("this bridge has no HTTP port")
            self.http_enabled = http
        if https is not None:
            self.https_enabled = https
        closing_own = listener in ("http", "https") and not getattr(self, f"{listener}_enabled")
        if closing_own:
            task = asyncio.get_running_loop().create_task(self._sync_listeners())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            await self._sync_listeners()
        self.publish_status()

    # ------------------------------------------------------------- requests
    def xmlrpc(self, body: bytes) -> bytes:
        """One `POST /RPC2` body -> the answer's body (a result or a fault, always)."""
        try:
            method, params = decode_call(body)
        except RemoteProtocolError as exc:
            code, text = fault_for(exc)
            return encode_fault(code, text)
        try:
            result = self.core.handle(method, params, self.runtime.clock.monotonic())
            answer = encode_result(result)
        except Fault as exc:
            return encode_fault(exc.code, exc.text)
        except LocalProtocolError:
            log.exception("cannot encode the result of %s", method)
            return self.internal_fault()
        finally:
            self.publish_status()
        return answer

    def internal_fault(self) -> bytes:
        return encode_fault(
            FaultCode.OPERATION_FAILED, fault_string(FaultCode.OPERATION_FAILED, "internal error")
        )

    def incoming_call(self, call: CallRequest) -> CallAnswer:
        try:
            return self.core.incoming_call(
                call.call_id, call.caller, call.to, call.protocol, self.runtime.clock.monotonic()
            )
        finally:
            self.publish_status()

    def hang_up(self, call_id: str) -> CallAnswer:
        try:
            return self.core.hang_up(call_id, self.runtime.clock.monotonic())
        finally:
            self.publish_status()

    def active_calls(self) -> list[CallAnswer]:
        return [self.core.describe_call(call_id) for call_id in self.core.calls]

    # --------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        ip = self.runtime.host.ip
        return {
            "host": self.runtime.host.name,
            "role": ROLES[self.kind],
            "url": f"https://{ip}:{self.https_port}/",
            "model": self.core.model,
            "version": self.core.software_version,
            "serial": self.core.serial,
            **self.core.summary(),
            "drill": self.drill(),
            "listeners": {
                "https": self.https_port if "https" in self._runners else None,
                "http": self.http_port if "http" in self._runners else None,
                "sip": self.sip_port if "sip" in self._runners else None,
            },
        }

    def publish_status(self, *, force: bool = False) -> None:
        """`status.json` for `tplab status` (`netsim.statusfile`: at most once a second)."""
        self._status_file.publish(force=force)
