"""Open a world on real sockets with a chosen backend: proxy (default), off or kernel.

`open_world` is what `tplab net serve` and `tplab up` use; tests use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from netsim.core.trace import EventTrace
from netsim.topology import Topology
from netsim.world import Backend, World

BACKENDS = ("proxy", "off", "kernel")


@contextlib.asynccontextmanager
async def open_world(
    topology: Topology,
    *,
    backend: str = "proxy",
    seed: int = 0,
    state_dir: Path,
    trace_packets: bool = False,
) -> AsyncIterator[World]:
    """Start the backend, yield the world, and tear everything down on exit."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    impl: Backend
    if backend == "proxy":
        from netsim.proxy import ProxyBackend

        impl = ProxyBackend(topology)
    elif backend == "off":
        from netsim.proxy import OffBackend

        impl = OffBackend()
    elif backend == "kernel":
        from netsim.kernel import KernelBackend

        impl = KernelBackend(topology)
    else:
        raise ValueError(f"unknown netsim backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    world = World(
        topology,
        seed=seed,
        now=lambda: loop.time() - started,
        backend=impl,
        trace=EventTrace(packets=trace_packets),
        clock_file=state_dir / "netsim" / "clock.json",
    )
    await impl.start(world)
    world.trace.record(world.now(), "world_started", backend=backend, seed=seed)
    try:
        yield world
    finally:
        await impl.stop()
