"""Same seed, same inputs -> byte-identical event trace; another seed -> another trace."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from aiohttp import ClientSession, web

from netsim.http import NetsimConnector, NetsimSite
from netsim.sim import SimWorld
from netsim.topology import Topology, parse_topology
from tests.sim.conftest import TOPOLOGY
from tests.sim.helpers import Inbox

ROOT = Path(__file__).resolve().parents[2]


def run_world(topology: Topology, seed: int) -> str:
    """A busy little world: lossy jittery datagrams both ways, impairment changes, HTTP."""
    sim = SimWorld(topology, seed=seed)
    try:

        async def scenario() -> None:
            a, b = sim.runtime("a"), sim.runtime("b")
            inbox_a, inbox_b = Inbox(a.clock), Inbox(b.clock)
            ea = await a.network.open_datagram(500, inbox_a)
            eb = await b.network.open_datagram(500, inbox_b)
            sim.world.impair("a", "b", latency_ms=5, jitter_ms=4, loss=0.1, both=True)
            sim.world.impair("b", "a", duplicate=0.1, reorder=0.2)
            for i in range(200):
                ea.send(b"ping %d" % i, ("127.50.0.2", 500))
                eb.send(b"pong %d" % (a.rng.randrange(1000)), ("127.50.0.1", 500))
                await asyncio.sleep(b.rng.uniform(0.0, 0.004))
            sim.world.partition(["a"])
            await asyncio.sleep(1)
            sim.world.heal()
            app = web.Application()

            async def hello(request: web.Request) -> web.Response:
                return web.Response(text="x" * 3000)

            app.router.add_get("/", hello)
            runner = web.AppRunner(app)
            await runner.setup()
            await NetsimSite(runner, b.network, 8443).start()
            async with ClientSession(connector=NetsimConnector(a.network)) as session:
                for _ in range(3):
                    async with session.get("http://127.50.0.2:8443/") as response:
                        await response.read()
            await runner.cleanup()
            ea.close()
            eb.close()

        sim.run(scenario())
        return sim.trace.dumps()
    finally:
        sim.close()


def test_same_seed_gives_byte_identical_trace() -> None:
    topology = parse_topology(TOPOLOGY)
    first = run_world(topology, seed=5)
    assert first.count("\n") > 500
    assert run_world(topology, seed=5) == first


def test_different_seed_gives_different_trace_where_randomness_matters() -> None:
    topology = parse_topology(TOPOLOGY)
    assert run_world(topology, seed=5) != run_world(topology, seed=6)


def test_trace_is_identical_across_processes_with_different_hash_seeds() -> None:
    """String hashing differs between processes; the trace must not depend on it."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.sim.test_determinism import run_world;"
        "from tests.sim.conftest import TOPOLOGY;"
        "from netsim.topology import parse_topology;"
        "sys.stdout.write(run_world(parse_topology(TOPOLOGY), 9))"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code, str(ROOT)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(hash_seed), "PATH": "/usr/bin:/bin"},
            timeout=120,
        ).stdout
        for hash_seed in (1, 2)
    ]
    assert outputs[0] == outputs[1]
    assert outputs[0]
