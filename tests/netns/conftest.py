"""Kernel-backend worlds for the netns tests: root only, skipped with a reason elsewhere.

Every world gets a namespace prefix starting with this session's own random
`SESSION_PREFIX`, so parallel runs never collide, and the session ends by
checking that no namespace with that prefix is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from pyroute2 import netns

from netsim.kernel import KernelBackend
from netsim.topology import Topology
from netsim.world import World

SESSION_PREFIX = f"tq{secrets.token_hex(3)}"
_worlds = itertools.count()


def _unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("nft") is None:
        return "needs the nft binary (Debian package nftables; `make sysdeps` installs it)"
    probe = f"{SESSION_PREFIX}probe"
    try:
        netns.create(probe)
        netns.remove(probe)
    except Exception as exc:
        return f"cannot create network namespaces here: {exc}"
    return None


@pytest.fixture(scope="session")
def kernel_available() -> None:
    reason = _unavailable_reason()
    if reason:
        pytest.skip(f"kernel backend: {reason}")


@pytest.fixture(scope="session", autouse=True)
def no_namespace_left() -> Iterator[None]:
    yield
    left = [name for name in netns.listnetns() if name.startswith(SESSION_PREFIX)]
    assert not left, f"namespaces left behind: {left}"


WorldFactory = Callable[[Topology], contextlib.AbstractAsyncContextManager[World]]


@pytest.fixture
def kernel_world(kernel_available: None, tmp_path: Path) -> WorldFactory:
    """`async with kernel_world(topology) as world`: a started kernel-backend world."""

    @contextlib.asynccontextmanager
    async def make(topo: Topology) -> AsyncIterator[World]:
        index = next(_worlds)
        backend = KernelBackend(topo, prefix=f"{SESSION_PREFIX}{index}")
        loop = asyncio.get_running_loop()
        world = World(
            topo,
            now=loop.time,
            backend=backend,
            clock_file=tmp_path / f"world{index}" / "clock.json",
        )
        await backend.start(world)
        try:
            yield world
        finally:
            await backend.stop()

    return make
