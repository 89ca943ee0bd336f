"""Run the VCS as a process: `python -m vcs_policy --host NAME --ip ADDRESS --state-dir DIR`.

Takes the same arguments the supervisor gives every node. Exit status: 0 when
stopped (SIGTERM / SIGINT), 2 on bad arguments, 1 when the VCS cannot start
(the reason is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from netsim.proxy import private_ip
from netsim.real import FileClockOffset, RealClock, RealNetwork, RealRuntime
from netsim.topology import HostSpec
from vcs_policy.node import DEFAULT_PORT, VcsNode
from vcs_policy.store import StoreError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vcs_policy", description=__doc__)
    parser.add_argument("--host", required=True, help="host name in the topology")
    parser.add_argument("--ip", required=True, help="the host's address")
    parser.add_argument("--mtu", type=int, default=1500, help="the host's link MTU")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--netsim", choices=("proxy", "off", "kernel"), default="proxy")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: SQLite)")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    host = HostSpec(args.host, "vcs", args.ip, mtu_bytes=args.mtu)
    bind_ip = private_ip(host.ip) if args.netsim == "proxy" else host.ip
    runtime = RealRuntime(
        host.address,
        RealNetwork(host.address, bind_ip=bind_ip, mtu_bytes=host.mtu_bytes),
        data_dir=args.state_dir / "hosts" / host.name,
        clock=RealClock(FileClockOffset(args.state_dir / "netsim" / "clock.json", host.name)),
        seed=args.seed,
        database_url=args.database_url,
    )
    node = VcsNode(runtime, port=args.port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.stop)
    await node.run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(serve(args))
    except (StoreError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
