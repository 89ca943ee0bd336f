"""Schemathesis against the JSON API of a Conductor peer on real loopback sockets.

The peer runs in-process, in a thread with its own event loop, on a fresh
public loopback address 127.91.X.Y (HTTPS on 8443, the peer's own CA trusted).
Every operation of its OpenAPI document gets schema-conformant and
schema-breaking requests with HTTP Basic auth: no 5xx ever, every response
matches the document (status, content type, body schema), and every body the
schema forbids is refused.

Restart is called once at the end (fuzzing it would take the server away
between requests). A successful admin password change switches the
credentials used from then on. G-P3: the password operations are fuzzed too.
"""

from __future__ import annotations

import asyncio
import base64
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from netsim.api import HostAddress
from netsim.real import RealNetwork, RealRuntime
from peers.node import Outcome, PeerNode
from peers.store import DEFAULT_PASSWORD
from peers.web.openapi import document

PORT = 8443
#: bound on waiting for the peer to listen or stop (generous: shared CI cores)
WAIT_S = 20.0
EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
RESTART = "/api/v1/maintenance/restart"


def fresh_ip() -> str:
    """A public loopback address no other test session or lab is likely to use."""
    rng = random.Random()
    while True:
        ip = f"127.91.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"
        with socket.socket() as probe:
            try:
                probe.bind((ip, PORT))
            except OSError:
                continue
        return ip


class ThreadedPeer:
    """A PeerNode serving from its own thread and event loop."""

    def __init__(self, data_dir: Path) -> None:
        self.ip = fresh_ip()
        host = HostAddress("conductor-fuzz", "conductor", self.ip)
        self.runtime = RealRuntime(host, RealNetwork(host), data_dir=data_dir, seed=5)
        self.loop = asyncio.new_event_loop()
        self.node: PeerNode | None = None
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, name="peer", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.node = PeerNode(self.runtime, port=PORT)
            self.outcome = self.loop.run_until_complete(self.node.run())
        except BaseException as exc:
            self.error = exc
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            assert self.error is None, self.error
            try:
                socket.create_connection((self.ip, PORT), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the peer did not listen on {self.ip}:{PORT}")

    def stop(self) -> None:
        if self.thread.is_alive() and self.node is not None:
            self.loop.call_soon_threadsafe(self.node.stop)
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the peer did not stop"
        if self.error is not None:
            raise self.error

    @property
    def base_url(self) -> str:
        return f"https://{self.ip}:{PORT}"

    def ca_file(self) -> Path:
        """The chain the peer serves (server certificate and its CA), to verify it."""
        return self.runtime.data_dir / "tls" / "server-chain.pem"


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[ThreadedPeer]:
    the_peer = ThreadedPeer(tmp_path / "peer")
    the_peer.start()
    try:
        yield the_peer
    finally:
        the_peer.stop()


def basic(password: str) -> dict[str, str]:
    token = base64.b64encode(f"admin:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_schemathesis_every_api_operation_no_5xx_and_conformant(peer: ThreadedPeer) -> None:
    """Positive and negative cases for every operation; restart once at the end (G-P7)."""
    schema = schemathesis.openapi.from_dict(document())
    # credentials are sent by the test (and switched after a password change), so a
    # missing Authorization header is not one of the generated negative cases
    schema.config.generation.update(with_security_parameters=False)
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {(op.method.upper(), op.path) for op in operations}
    assert ("PUT", "/api/v1/users/admin/password") in paths
    assert ("POST", RESTART) in paths
    credentials = {"password": DEFAULT_PASSWORD}
    calls = {"positive": 0, "negative": 0}
    session = requests.Session()
    try:
        for operation in operations:
            if operation.path == RESTART:
                continue
            strategy = st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE),
                operation.as_strategy(GenerationMode.NEGATIVE),
            )

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                response = case.call(
                    base_url=peer.base_url,
                    session=session,
                    headers=basic(credentials["password"]),
                    timeout=WAIT_S,
                    verify=str(peer.ca_file()),
                )
                mode = case.meta.generation.mode if case.meta is not None else None
                checks = list(CHECKS)
                if mode is GenerationMode.NEGATIVE:
                    checks.append(negative_data_rejection)
                    calls["negative"] += 1
                else:
                    calls["positive"] += 1
                case.validate_response(response, checks=checks)
                if response.status_code == 200 and case.path == "/api/v1/users/admin/password":
                    credentials["password"] = case.body["new_password"]

            run()
        restart = next(op for op in operations if op.path == RESTART)
        case = restart.Case()
        response = case.call(
            base_url=peer.base_url,
            session=session,
            headers=basic(credentials["password"]),
            verify=str(peer.ca_file()),
        )
        case.validate_response(response, checks=CHECKS)
        assert response.status_code == 202
    finally:
        session.close()
    peer.thread.join(WAIT_S)
    assert peer.outcome is Outcome.RESTART
    assert calls["positive"] > 0
    assert calls["negative"] > 0
