"""Maintenance > Upgrade on a real peer process (G-P6, G-R1).

A supervisor runs in the test's event loop with a lab of one conductor on
127.92.X.1 (X drawn per session), in a temporary state dir, with its control API on
a free port, so it runs beside a live lab and other test sessions. The image is
uploaded over HTTPS; the peer exits with status 75, the supervisor starts it again
and the new process runs the image's version. Waits are bounded; nothing asserts on
durations. The teardown stops the supervisor and signals, by PID, every child seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.image import build_image
from emulator.supervisor import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    LabConfig,
    Supervisor,
    peer_status,
    read_lab,
    same_process,
    signal_pids,
)
from netsim.topology import load_topology
from peers.node import SOFTWARE_VERSION

#: bound on every wait (generous: two shared cores, the peer generates keys on first start)
WAIT_S = 60.0
POLL_S = 0.1
HOST = "conductor-a"
IP = f"127.92.{random.Random().randrange(1, 250)}.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class UpgradeLab:
    supervisor: Supervisor
    run: asyncio.Task[None]
    state_dir: Path
    seen: set[tuple[int, int | None]] = field(default_factory=set)

    def host(self) -> dict[str, Any]:
        host = next(h for h in self.supervisor.snapshot()["hosts"] if h["host"] == HOST)
        if host["pid"]:
            self.seen.add((host["pid"], host["pid_start"]))
        return host


@pytest.fixture
async def lab() -> AsyncIterator[UpgradeLab]:
    with tempfile.TemporaryDirectory(prefix="tplab-upgrade-") as tmp:
        topology = Path(tmp) / "lab.yaml"
        topology.write_text(
            "version: 1\nname: upgrade-test\nservices:\n  conductor: [tcp/8443]\nhosts:\n"
            f"  - {{name: {HOST}, role: conductor, ip: {IP}}}\n"
        )
        state_dir = Path(tmp) / "state"
        config = LabConfig(topology, state_dir, control_port=free_port())
        events: list[str] = []
        supervisor = Supervisor(config, load_topology(topology), on_event=events.append)
        ready = asyncio.Event()
        run = asyncio.create_task(supervisor.run(lambda _: ready.set()))
        the_lab = UpgradeLab(supervisor, run, state_dir)
        try:
            ready_wait = asyncio.ensure_future(ready.wait())
            await asyncio.wait(
                {ready_wait, run}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED
            )
            ready_wait.cancel()
            assert ready.is_set(), events
            the_lab.host()
            yield the_lab
        finally:
            supervisor.request_stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run, WAIT_S)
            recorded = (read_lab(state_dir) or {}).get("hosts", [])
            pids = the_lab.seen | {(h["pid"], h["pid_start"]) for h in recorded if h["pid"]}
            signal_pids(pids, signal.SIGKILL)
            deadline = time.monotonic() + WAIT_S
            while any(same_process(p, s) for p, s in pids):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(POLL_S)


async def test_g_p6_uploaded_image_restarts_the_process_on_the_new_version(
    lab: UpgradeLab,
) -> None:
    """G-P6: POST the image to a real peer -> 202; the process exits 75, the supervisor
    starts a new one, which runs XC3.1 (its status, status.json via the supervisor)."""
    before = lab.host()
    assert before["state"] == "up"
    url = f"https://{IP}:8443/api/v1/"
    image = build_image("XC3.1", built=datetime(2026, 1, 5, tzinfo=UTC))
    auth = {"Authorization": aiohttp.encode_basic_auth(DEFAULT_USER, DEFAULT_PASSWORD)}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(headers=auth, timeout=timeout) as session:
        async with session.get(url + "status", ssl=False) as response:
            assert (await response.json())["software_version"] == SOFTWARE_VERSION
        async with session.post(
            url + "maintenance/upgrade",
            data=image,
            ssl=False,
            headers={"Content-Type": "application/octet-stream"},
        ) as response:
            assert response.status == 202, await response.text()
            assert await response.json() == {
                "version": "XC3.1",
                "previous": SOFTWARE_VERSION,
                "restarting": True,
            }

        deadline = time.monotonic() + WAIT_S
        while True:
            host = lab.host()
            if host["state"] == "up" and host["pid"] != before["pid"]:
                break
            assert host["state"] != "failed", host
            assert time.monotonic() < deadline, f"{HOST} did not come back: {host}"
            await asyncio.sleep(POLL_S)
        assert (host["restarts"], host["note"]) == (1, "restarted on request")

        async with session.get(url + "status", ssl=False) as response:
            assert (await response.json())["software_version"] == "XC3.1"
        async with session.get(url + "maintenance/upgrade", ssl=False) as response:
            answer = await response.json()
        assert answer["version"] == "XC3.1"
        assert answer["installed"]["previous"] == SOFTWARE_VERSION

    published = peer_status(lab.state_dir, HOST)  # status.json: `tplab status` shows it
    assert published is not None
    assert published["version"] == "XC3.1"
