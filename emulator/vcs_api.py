"""A client of the VCS's JSON API (`vcs_policy.web.api`), for `tplab call` and `tplab load`.

The VCS is another process: this talks to it over HTTPS like an administrator's
script would, with HTTP Basic and bounded timeouts, and never imports the VCS.
Every failure is a `VcsApiError`: `VcsUnreachable` when nothing answers (status
0), otherwise the HTTP status and the API's own `error` message.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

#: bound on connecting to the VCS (it answers at once when it runs at all)
CONNECT_TIMEOUT_S = 5.0
#: bound on one request; a call may wait for each of a service's three servers in turn
REQUEST_TIMEOUT_S = 30.0


class VcsApiError(Exception):
    """The VCS answered an error (status >= 400), or did not answer (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class VcsUnreachable(VcsApiError):
    """Nothing answers at the VCS's URL (refused, timed out, TLS failed)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"the VCS at {url} is not answering: {reason}")
        self.url = url


class VcsApi:
    """One method per endpoint tplab uses; `async with VcsApi(url, user, password) as vcs:`."""

    def __init__(
        self, base_url: str, user: str, password: str, *, timeout_s: float = REQUEST_TIMEOUT_S
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=CONNECT_TIMEOUT_S)
        self._headers = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> VcsApi:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self.timeout)
        url = self.base_url + path
        timeout = None
        if timeout_s is not None:
            timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=CONNECT_TIMEOUT_S)
        try:
            # the VCS signs its certificate with a CA of its own, made on its first start:
            # there is nothing to verify it against, so the certificate is not checked
            async with self._session.request(
                method, url, json=body, ssl=False, timeout=timeout, allow_redirects=False
            ) as response:
                text = await response.text(errors="replace")
                status = response.status
        except TimeoutError as exc:
            limit = (timeout or self.timeout).total
            raise VcsUnreachable(self.base_url, f"no answer within {limit:g} s") from exc
        except aiohttp.ClientError as exc:
            raise VcsUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if status >= 400:
            if isinstance(data, dict) and isinstance(data.get("error"), str):
                raise VcsApiError(status, data["error"])
            raise VcsApiError(status, f"HTTP {status}: {text.strip()[:200]}")
        if not isinstance(data, dict):
            raise VcsApiError(status, f"{url} did not answer a JSON object; is it a tplab VCS?")
        return data

    async def place_call(
        self, source: str, destination: str, protocol: str, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        body = {"source": source, "destination": destination, "protocol": protocol}
        return await self.request("POST", "/api/v1/calls", body, timeout_s=timeout_s)

    async def calls(self) -> dict[str, Any]:
        return await self.request("GET", "/api/v1/calls")

    async def start_load(
        self,
        *,
        rate: float,
        duration_s: float,
        aliases: str,
        source: str,
        protocol: str,
        hold_s: float = 0.0,
    ) -> dict[str, Any]:
        body = {
            "rate": rate,
            "duration_s": duration_s,
            "aliases": aliases,
            "source": source,
            "protocol": protocol,
            "hold_s": hold_s,
        }
        return await self.request("POST", "/api/v1/calls/load", body)

    async def load(self, load_id: int) -> dict[str, Any]:
        return await self.request("GET", f"/api/v1/calls/load/{load_id}")
