"""Run one Conductor peer as a process: `python -m peers --host NAME ...`.

Exit status: 0 when stopped (SIGTERM / SIGINT), 75 when Maintenance > Restart
asked for a restart (the supervisor starts the process again), 2 on bad
arguments, 1 when the peer cannot start (the reason is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from netsim.proxy import private_ip
from netsim.real import FileClockOffset, RealClock, RealNetwork, RealRuntime
from netsim.topology import HostSpec, TopologyError, load_topology
from peers.node import DEFAULT_PORT, EXIT_RESTART, SOFTWARE_VERSION, Outcome, PeerNode
from peers.store import StoreError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m peers", description=__doc__)
    parser.add_argument("--host", required=True, help="host name in the topology")
    parser.add_argument("--topology", type=Path, help="topology file naming the host")
    parser.add_argument(
        "--ip", help="the host's address, instead of --topology (the supervisor passes it)"
    )
    parser.add_argument("--mtu", type=int, default=1500, help="the host's link MTU, with --ip")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--netsim", choices=("proxy", "off", "kernel"), default="proxy")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: SQLite)")
    parser.add_argument(
        "--software-version",
        default=None,
        help="run as this version (default: the image Maintenance > Upgrade installed, "
        f"else {SOFTWARE_VERSION})",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> Outcome:
    if args.ip is not None:
        host = HostSpec(args.host, "conductor", args.ip, mtu_bytes=args.mtu)
    elif args.topology is not None:
        try:
            host = load_topology(args.topology).host(args.host)
        except KeyError as exc:
            raise SystemExit(f"error: {exc.args[0]}") from exc
    else:
        raise SystemExit("error: give --topology FILE or --ip ADDRESS")
    if host.role != "conductor":
        raise SystemExit(f"error: host {host.name!r} is a {host.role}, not a conductor")
    bind_ip = private_ip(host.ip) if args.netsim == "proxy" else host.ip
    runtime = RealRuntime(
        host.address,
        RealNetwork(host.address, bind_ip=bind_ip, mtu_bytes=host.mtu_bytes),
        data_dir=args.state_dir / "hosts" / host.name,
        clock=RealClock(FileClockOffset(args.state_dir / "netsim" / "clock.json", host.name)),
        seed=args.seed,
        database_url=args.database_url,
    )
    node = PeerNode(runtime, port=args.port, software_version=args.software_version)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.stop)
    return await node.run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        outcome = asyncio.run(serve(args))
    except (TopologyError, StoreError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return EXIT_RESTART if outcome is Outcome.RESTART else 0


if __name__ == "__main__":
    sys.exit(main())
