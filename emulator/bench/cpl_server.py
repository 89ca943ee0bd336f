"""A bare HTTPS endpoint answering a fixed CPL: the baseline of the `policy` group.

`python -m emulator.bench.cpl_server --ip 127.0.0.1 --tls-dir DIR` serves, in its own
process, an aiohttp application that answers every POST with the allow CPL a
Conductor peer sends for a matching conference alias (`vcs_policy.wire.cpl_allow()`),
after reading the body, and nothing else: no authentication, no decoding, no
decision. TLS is what every tplab node serves (`netsim.certs`: an ECDSA P-256
server certificate signed by its own CA, `server_ssl_context`), so the `policy`
group compares a peer's policy endpoint with the same TLS and HTTP stack doing
no work.

It binds an ephemeral port (unless `--port` names one), prints `READY <port>` on
stdout once it listens, and runs until SIGTERM or SIGINT (exit status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from netsim.certs import make_certificates, server_ssl_context
from vcs_policy.wire import cpl_allow
from vcs_policy.wire.cpl import CONTENT_TYPE

READY = "READY"


def make_app() -> web.Application:
    body = cpl_allow().encode()

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    return app


async def serve(ip: str, port: int, tls_dir: Path) -> None:
    certs = make_certificates(
        host_name="bench-cpl",
        ip=ip,
        fqdn="",
        serial="BENCH",
        now=datetime.now(UTC),
        rng=random.Random(0),
    )
    context = server_ssl_context(
        certs.server_cert_pem, certs.server_key_pem, certs.ca_cert_pem, tls_dir
    )
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, ip, port, ssl_context=context)
        await site.start()
        bound = runner.addresses[0][1]
        print(f"{READY} {bound}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.bench.cpl_server")
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-dir", required=True, type=Path)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    asyncio.run(serve(args.ip, args.port, args.tls_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
