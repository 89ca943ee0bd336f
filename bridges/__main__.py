"""Run a bridge as a process: `python -m bridges --kind mcu|ts --host NAME --ip ADDRESS
--state-dir DIR`.

Takes the same arguments the supervisor gives every node (`--port` is the HTTPS
port of the XML-RPC API), plus the bridge's own: `--kind` (`mcu`, or `ts` for a
TelePresence Server; the topology role names `telepresence-server` and `mcu` are
accepted too), `--ports`, `--user`, `--password`, `--http-port` / `--no-http`,
`--sip-port`. Exit status: 0 when stopped (SIGTERM / SIGINT), 2 on bad
arguments, 1 when the bridge cannot start (the reason is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from bridges.node import DEFAULT_HTTP_PORT, DEFAULT_HTTPS_PORT, ROLES, BridgeNode
from bridges.wire.signalling import SIGNALLING_PORT
from netsim.proxy import private_ip
from netsim.real import FileClockOffset, RealClock, RealNetwork, RealRuntime
from netsim.topology import HostSpec

KIND_NAMES = {"mcu": "mcu", "ts": "ts", "telepresence-server": "ts"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bridges", description=__doc__)
    parser.add_argument("--kind", required=True, choices=sorted(KIND_NAMES))
    parser.add_argument("--host", required=True, help="host name in the topology")
    parser.add_argument("--ip", required=True, help="the host's address")
    parser.add_argument("--mtu", type=int, default=1500, help="the host's link MTU")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--netsim", choices=("proxy", "off", "kernel"), default="proxy")
    parser.add_argument("--port", type=int, default=DEFAULT_HTTPS_PORT, help="HTTPS port")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
    parser.add_argument("--no-http", action="store_true", help="no plain-HTTP API listener")
    parser.add_argument("--sip-port", type=int, default=SIGNALLING_PORT)
    parser.add_argument("--ports", type=int, default=None, help="video ports (capacity)")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="")
    args = parser.parse_args(argv)
    if args.ports is not None and args.ports < 1:
        parser.error("--ports must be at least 1")
    args.kind = KIND_NAMES[args.kind]
    return args


async def serve(args: argparse.Namespace) -> None:
    host = HostSpec(args.host, ROLES[args.kind], args.ip, mtu_bytes=args.mtu)
    bind_ip = private_ip(host.ip) if args.netsim == "proxy" else host.ip
    runtime = RealRuntime(
        host.address,
        RealNetwork(host.address, bind_ip=bind_ip, mtu_bytes=host.mtu_bytes),
        data_dir=args.state_dir / "hosts" / host.name,
        clock=RealClock(FileClockOffset(args.state_dir / "netsim" / "clock.json", host.name)),
        seed=args.seed,
    )
    node = BridgeNode(
        runtime,
        args.kind,
        https_port=args.port,
        http_port=None if args.no_http else args.http_port,
        sip_port=args.sip_port,
        user=args.user,
        password=args.password,
        ports=args.ports,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.stop)
    await node.run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(serve(args))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
