"""A peer killed with SIGKILL in the middle of a burst of config writes loses none it
acknowledged (the store commits each change before the API answers 200).

One `python -m peers` process (`--netsim off`, its own loopback address 127.93.X.10,
a temporary state dir and topology). Two writers change one field each, one write
after the other, through the JSON API; a third task sends SIGKILL to the process by
its PID shortly after `KILL_AFTER_ACKS` writes were acknowledged. The peer is started again
on the same state dir: each field holds its last acknowledged value (or the write
that was in flight when the process died, which may have committed without its
answer), and the configuration log holds every acknowledged write.

Bounded: at most `MAX_WRITES_PER_FIELD` writes per field and `BURST_LIMIT_S` of wall
time; every wait has a timeout. The test kills only the PID it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from peers.store import DEFAULT_PASSWORD, ConfigStore

WAIT_S = 60.0
STOP_WAIT_S = 10.0
KILL_AFTER_ACKS = 40
#: after the K-th acknowledgement, up to about one write's time (drawn per run), so
#: that across runs the kill lands at every stage of handling the next writes
KILL_DELAY_S = random.Random().uniform(0.0, 0.06)
MAX_WRITES_PER_FIELD = 300
BURST_LIMIT_S = 60.0
REQUEST_TIMEOUT_S = 10.0

IP = f"127.93.{random.Random().randrange(1, 250)}.10"
BASE = f"https://{IP}:8443"
#: setting key -> (API page, API field, value of write number i)
FIELDS: dict[str, tuple[str, str, Callable[[int], str]]] = {
    "snmp.contact": ("snmp", "contact", lambda i: f"write-{i}"),
    "dns.domain": ("dns", "domain", lambda i: f"d{i}.example"),
}


@dataclass
class PeerDir:
    root: Path
    topology: Path
    state_dir: Path
    database_url: str
    log: Path


@dataclass
class Writes:
    """Per setting key: values acknowledged with 200, in order, and the one in flight."""

    acked: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in FIELDS})
    in_flight: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(FIELDS))
    count: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)

    def ack(self, key: str, value: str) -> None:
        self.acked[key].append(value)
        self.in_flight[key] = None
        self.count += 1
        if self.count >= KILL_AFTER_ACKS:
            self.enough.set()


@pytest.fixture
def peer_dir() -> Iterator[PeerDir]:
    with tempfile.TemporaryDirectory(prefix="tplab-crash-") as tmp:
        root = Path(tmp)
        topology = root / "one.yaml"
        topology.write_text(
            f"version: 1\nname: crash-test\nhosts:\n  - {{name: c1, role: conductor, ip: {IP}}}\n"
        )
        yield PeerDir(
            root,
            topology,
            root / "state",
            f"sqlite:///{root / 'store.sqlite'}",
            root / "process.log",
        )


@contextlib.asynccontextmanager
async def peer_process(d: PeerDir) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start the peer, wait until it answers, and always stop it (by its PID) at the end."""
    with d.log.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "peers",
            "--host",
            "c1",
            "--topology",
            str(d.topology),
            "--state-dir",
            str(d.state_dir),
            "--netsim",
            "off",
            "--database-url",
            d.database_url,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await wait_answering(proc, d.log)
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_WAIT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def wait_answering(proc: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    async with session() as s:
        while True:
            assert proc.returncode is None, f"the peer exited: {tail(log)}"
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with s.get(f"{BASE}/login", ssl=False) as response:
                    if response.status == 200:
                        return
            assert time.monotonic() < deadline, f"no answer: {tail(log)}"
            await asyncio.sleep(0.05)


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Authorization": aiohttp.encode_basic_auth("admin", DEFAULT_PASSWORD)},
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


async def writer(s: aiohttp.ClientSession, key: str, writes: Writes, deadline: float) -> None:
    """One write after the other until the peer stops answering (or the bounds)."""
    page, name, value_of = FIELDS[key]
    for i in range(MAX_WRITES_PER_FIELD):
        if time.monotonic() > deadline:
            return
        value = value_of(i)
        writes.in_flight[key] = value
        try:
            async with s.put(f"{BASE}/api/v1/system/{page}", json={name: value}, ssl=False) as r:
                body = await r.json()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return  # the process is gone; the write may or may not have committed
        assert r.status == 200, body
        assert body["saved"] == {name: value}, body
        writes.ack(key, value)


async def killer(proc: asyncio.subprocess.Process, writes: Writes) -> None:
    await asyncio.wait_for(writes.enough.wait(), BURST_LIMIT_S)
    await asyncio.sleep(KILL_DELAY_S)
    assert proc.returncode is None
    os.kill(proc.pid, signal.SIGKILL)  # our own child, not yet reaped: its PID is still its own


async def test_sigkill_during_write_burst_loses_no_acknowledged_write(peer_dir: PeerDir) -> None:
    writes = Writes()
    async with peer_process(peer_dir) as proc:
        deadline = time.monotonic() + BURST_LIMIT_S
        async with session() as s:
            await asyncio.wait_for(
                asyncio.gather(
                    killer(proc, writes), *(writer(s, key, writes, deadline) for key in FIELDS)
                ),
                BURST_LIMIT_S + WAIT_S,
            )
        assert await asyncio.wait_for(proc.wait(), WAIT_S) == -signal.SIGKILL
    assert writes.count >= KILL_AFTER_ACKS
    assert all(writes.acked.values()), writes.acked

    async with peer_process(peer_dir), session() as s:
        for key, (page, name, _) in FIELDS.items():
            async with s.get(f"{BASE}/api/v1/system/{page}", ssl=False) as r:
                assert r.status == 200
                value = (await r.json())["settings"][name]
            allowed = {writes.acked[key][-1], writes.in_flight[key]} - {None}
            assert value in allowed, (key, value, allowed, f"kill delay {KILL_DELAY_S} s")

    # the configuration log holds every acknowledged write, in order
    store = ConfigStore(peer_dir.database_url)
    try:
        log = list(reversed(store.config_log(limit=10 * MAX_WRITES_PER_FIELD)))
    finally:
        store.close()
    for key in FIELDS:
        logged = [json.loads(entry["new"]) for entry in log if entry["setting"] == key]
        acked = writes.acked[key]
        assert logged[: len(acked)] == acked, (key, f"kill delay {KILL_DELAY_S} s")
        assert len(logged) - len(acked) in (0, 1), (key, logged[len(acked) :])
