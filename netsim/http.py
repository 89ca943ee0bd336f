"""aiohttp on any netsim `Network`: a site for servers and a connector for clients.

Both go through `Network.create_server` / `Network.create_connection`, so the
same node code serves and calls HTTP(S) on real sockets and in the simulated
world. This module relies on aiohttp's `BaseSite` and `BaseConnector` extension
points, which is why pyproject pins aiohttp's minor version; the contract test
`tests/sim/test_http_adapter.py` fails first if an upgrade breaks them.
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.helpers import ceil_timeout

from netsim.api import Listener, Network


class NetsimSite(web.BaseSite):
    """Serve an `AppRunner` on a host's network (like `web.TCPSite`)."""

    __slots__ = ("_listener", "_network", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        network: Network,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._network = network
        self._port = port
        self._listener: Listener | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._network.host.ip}:{self.port}"

    @property
    def port(self) -> int:
        return self._listener.port if self._listener else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._listener = await self._network.create_server(
            server, self._port, ssl_context=self._ssl_context
        )

    async def stop(self) -> None:
        self._runner._check_site(self)
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
        self._runner._unreg_site(self)


class NetsimConnector(aiohttp.BaseConnector):
    """Open client connections from a host's network (like `aiohttp.TCPConnector`).

    `ssl_context` is used for https URLs; without one, https verifies against the
    system's default trust store.
    """

    def __init__(
        self, network: Network, *, ssl_context: ssl.SSLContext | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._network = network
        self._ssl_context = ssl_context
        # built once: a default context loads the system's CA store (~0.1 s of CPU), far
        # too slow to repeat for every new connection when many open at once (failover)
        self._unverified: ssl.SSLContext | None = None
        self._default: ssl.SSLContext | None = None

    def _context_for(self, req: ClientRequest) -> ssl.SSLContext:
        if isinstance(req.ssl, ssl.SSLContext):
            return req.ssl
        if req.ssl is False:
            if self._unverified is None:
                self._unverified = ssl.create_default_context()
                self._unverified.check_hostname = False
                self._unverified.verify_mode = ssl.CERT_NONE
            return self._unverified
        if self._ssl_context is not None:
            return self._ssl_context
        if self._default is None:
            self._default = ssl.create_default_context()
        return self._default

    async def _create_connection(
        self,
        req: ClientRequest,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's signature
    ) -> ResponseHandler:
        host = req.url.raw_host
        port = req.url.port
        if host is None or port is None:
            raise aiohttp.InvalidURL(req.url)
        context = self._context_for(req) if req.is_ssl() else None
        try:
            async with ceil_timeout(timeout.sock_connect, timeout.ceil_threshold):
                _, proto = await self._network.create_connection(
                    self._factory,
                    host,
                    port,
                    ssl_context=context,
                    server_hostname=(req.server_hostname or host) if context else None,
                )
        except ssl.SSLCertVerificationError as exc:
            raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
        except ssl.SSLError as exc:
            raise aiohttp.ClientConnectorSSLError(req.connection_key, exc) from exc
        except OSError as exc:
            raise aiohttp.ClientConnectorError(req.connection_key, exc) from exc
        assert isinstance(proto, ResponseHandler)
        return proto
