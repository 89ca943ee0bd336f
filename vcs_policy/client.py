"""The VCS's policy-service client: the driver around `vcs_policy.core.health`.

One `PolicyClient` per configured policy service. It polls every server at the
Status path when the core says a poll is due, and sends policy requests to the
servers in the order the core gives, moving on within the same request when a
server fails (no answer, timeout, TLS failure, non-200, malformed CPL); when no
server answers, the service's Default CPL decides (G-V4, cisco-behaviour.md 1.4).

HTTP goes through the host's `Network` (`netsim.http.NetsimConnector`), so the
same code runs on real sockets and in the simulated world. Certificate
verification (when on) checks the server's chain against the VCS's trusted CA
list and its address against the certificate's names; CRL checking (when on)
requires a CRL for the issuing CA in that list (G-R7).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from yarl import URL

from netsim.api import Clock
from vcs_policy.core.calls import Attempt
from vcs_policy.core.config import PolicyService
from vcs_policy.core.health import ServerState, ServiceHealth, StatusChanged
from vcs_policy.wire import CplResult, PolicyRequest, RemoteProtocolError, evaluate_cpl
from vcs_policy.wire.cpl import evaluate_default_cpl
from vcs_policy.wire.policy import CONTENT_TYPE

#: read at most this much of an answer (a CPL is well under 64 KiB)
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Decision:
    result: CplResult
    server: str  # the server that answered, "" for the Default CPL
    default_cpl: bool
    attempts: tuple[Attempt, ...]


def describe_error(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"certificate verification failed: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS failed: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    return f"{type(exc).__name__}: {exc}"


def client_ssl_context(service: PolicyService, trusted_pem: str) -> ssl.SSLContext | bool:
    """What aiohttp is given as `ssl=` for this service's HTTPS."""
    if not service.verify_certificate:
        return False
    # trust exactly the VCS's list, as the product does, not the host's store
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if trusted_pem.strip():
        with contextlib.suppress(ssl.SSLError):
            context.load_verify_locations(cadata=trusted_pem)
    if service.crl_check:
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


class PolicyClient:
    def __init__(
        self,
        service: PolicyService,
        session: aiohttp.ClientSession,
        clock: Clock,
        trusted_pem: str,
        on_change: Callable[[StatusChanged], None],
    ) -> None:
        self.service = service
        self.health = ServiceHealth(service, clock.monotonic())
        self._session = session
        self._clock = clock
        self.trusted_pem = trusted_pem
        self._ssl = (
            client_ssl_context(service, trusted_pem) if service.protocol == "HTTPS" else None
        )
        self._on_change = on_change
        self._headers = (
            {"Authorization": aiohttp.encode_basic_auth(service.username, service.password)}
            if service.username
            else {}
        )
        self._timeout = aiohttp.ClientTimeout(total=service.request_timeout_s)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._polls: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poller())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._polls) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _poller(self) -> None:
        while True:
            now = self._clock.monotonic()
            for server in self.health.due_polls(now):
                task = asyncio.get_running_loop().create_task(self._poll(server))
                self._polls.add(task)
                task.add_done_callback(self._polls.discard)
            deadline = self.health.next_deadline()
            self._wake.clear()
            timeout = None if deadline is None else max(0.0, deadline - self._clock.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _poll(self, server: ServerState) -> None:
        ok, reason = False, ""
        url = self.service.url(server.address, self.service.status_path)
        try:
            for _ in range(2):  # the URL, then at most one HTTP -> HTTPS redirect
                async with self._session.get(
                    url,
                    headers=self._headers,
                    ssl=self._ssl if self._ssl is not None else True,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    body = await response.content.read(1024)
                    ok = 200 <= response.status < 300
                    if not ok:
                        reason = _http_reason(response.status, body)
                    target = _https_upgrade(url, response)
                if target is None:
                    break
                url = target
        except Exception as exc:  # whatever went wrong, this poll failed
            reason = describe_error(exc, self.service.request_timeout_s)
        self._changed(self.health.poll_done(server, ok, reason, self._clock.wall()))
        self._wake.set()

    def _changed(self, change: StatusChanged | None) -> None:
        if change is not None:
            self._on_change(change)

    # ------------------------------------------------------------- requests
    async def request(self, request: PolicyRequest) -> Decision:
        body = request.encode()
        attempts: list[Attempt] = []
        for server in self.health.attempt_order():
            result, failure = await self._attempt(server, request, body)
            wall = self._clock.wall()
            if result is not None:
                self._changed(self.health.request_done(server, True, "", wall))
                attempts.append(Attempt(self.service.name, server.address, result.describe()))
                return Decision(result, server.address, False, tuple(attempts))
            self._changed(self.health.request_done(server, False, failure, wall))
            attempts.append(Attempt(self.service.name, server.address, "failed: " + failure))
        result = evaluate_default_cpl(self.service.default_cpl, request)
        attempts.append(Attempt(self.service.name, "", "Default CPL: " + result.describe()))
        return Decision(result, "", True, tuple(attempts))

    async def _attempt(
        self, server: ServerState, request: PolicyRequest, body: bytes
    ) -> tuple[CplResult | None, str]:
        try:
            async with self._session.post(
                self.service.url(server.address, self.service.path),
                data=body,
                headers={"Content-Type": CONTENT_TYPE, **self._headers},
                ssl=self._ssl if self._ssl is not None else True,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                answer = await response.content.read(MAX_ANSWER_BYTES + 1)
                if response.status != 200:
                    return None, _http_reason(response.status, answer)
        except Exception as exc:  # any failure of this server moves on to the next (G-V4)
            return None, describe_error(exc, self.service.request_timeout_s)
        if len(answer) > MAX_ANSWER_BYTES:
            return None, f"answer larger than {MAX_ANSWER_BYTES} bytes"
        try:
            return evaluate_cpl(answer, request), ""
        except RemoteProtocolError as exc:
            # UNCONFIRMED in the sources; tplab: malformed CPL is that server's failure
            return None, f"malformed CPL: {exc}"


def _https_upgrade(url: str, response: aiohttp.ClientResponse) -> str | None:
    """The HTTPS URL an HTTP status poll is redirected to, when the redirect is only
    that upgrade (same host, same path: the product follows those); else None, and
    any other redirect (such as a login page's) is a failure."""
    if response.status not in (301, 302, 307, 308):
        return None
    location = response.headers.get("Location", "")
    before = URL(url)
    after = before.join(URL(location))
    if (
        before.scheme == "http"
        and after.scheme == "https"
        and (
            after.host,
            after.path,
        )
        == (before.host, before.path)
    ):
        return str(after)
    return None


def _http_reason(status: int, body: bytes) -> str:
    first = body.decode("utf-8", errors="replace").strip().splitlines()
    detail = first[0][:120] if first else ""
    return f"HTTP {status}" + (f": {detail}" if detail else "")
