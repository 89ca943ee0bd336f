"""The `tplab` command line.

`tplab net serve` opens a world (a topology realised by a netsim backend) and
serves its REST control API; the other `tplab net` commands are clients of
that API. `tplab up` runs a whole lab: the world, its control API and one
process per host, under `emulator.supervisor`; `tplab status` and `tplab down`
read the lab's `lab.json` from any shell. `tplab call` and `tplab load` place
calls on the running lab's VCS through its JSON API. `tplab scenario` validates
and lists scenario files; later groups hang off the top-level `cli` group the
same way `net` does.

Exit status: 0 on success, 2 for bad input (usage errors, and what the world
or the VCS refuses), 1 when the world cannot be reached or cannot start; for
`call` and `load`, 1 also when a call did not connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, TypeVar

import click
from aiohttp import web
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from yarl import URL

from emulator.paths import CONTROL_ENV, DEFAULT_CONTROL, DEFAULT_STATE_DIR, DEFAULT_TOPOLOGY
from netsim.control import ControlClient, ControlError, ControlUnreachable, make_app
from netsim.core.impairments import LinkSpec
from netsim.launch import BACKENDS, open_world
from netsim.topology import Topology, TopologyError, load_topology

if TYPE_CHECKING:
    from emulator.supervisor import LabConfig
    from emulator.vcs_api import VcsApi

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: exit statuses
EXIT_UNREACHABLE = 1
EXIT_BAD_INPUT = 2

TRACE_POLL_S = 0.5
PIPE_WIDTH = 160


class CliError(click.ClickException):
    """Bad input: a one-line error on stderr, exit status 2."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file or sys.stderr)


class CliFailure(CliError):
    """The world is unreachable or cannot start: exit status 1."""

    exit_code: ClassVar[int] = EXIT_UNREACHABLE


class TplabGroup(click.Group):
    """A group whose usage errors are one line, like every other error of tplab."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _one_line_usage_errors(ctx):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line_usage_errors(ctx):
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line_usage_errors(ctx: click.Context) -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
        raise CliError(f"{exc.format_message()} (see '{where} --help')") from exc


def _console() -> Console:
    # created per command so it writes to the stdout of the moment (CliRunner swaps it);
    # piped output gets room for whole host names and port lists instead of 80 columns
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


# ----------------------------------------------------------------- addresses
def _parse_url(text: str, schemes: tuple[str, ...], expected: str) -> URL:
    text = text.strip()
    try:
        url = URL(text if "://" in text else f"http://{text}")
        valid = url.scheme in schemes and bool(url.host) and url.path in ("", "/")
        valid = valid and (url.explicit_port is None or 0 <= url.explicit_port <= 65535)
    except ValueError:
        valid = False
    if not valid:
        raise click.BadParameter(f"{text!r} is not {expected}")
    return url


def control_url(text: str) -> str:
    """`HOST:PORT` or `http://HOST:PORT` -> `http://HOST:PORT` (BadParameter otherwise)."""
    return str(_parse_url(text, ("http", "https"), "HOST:PORT or http://HOST:PORT").origin())


def listen_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `http://HOST:PORT`) -> (host, port) to serve the control API on."""
    url = _parse_url(text, ("http",), "HOST:PORT")
    assert url.host is not None
    port = url.explicit_port
    return url.host, int(DEFAULT_CONTROL.rsplit(":", 1)[1]) if port is None else port


def _default_control() -> str:
    return control_url(_env_control() or DEFAULT_CONTROL)


def _env_control() -> str:
    return os.environ.get(CONTROL_ENV, "").strip()


def _control_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    return _default_control() if value is None else control_url(value)


def control_option(f: F) -> F:
    return click.option(
        "--control",
        "control",
        metavar="URL",
        default=None,
        callback=_control_callback,
        help=f"control API of the world [default: ${CONTROL_ENV} or http://{DEFAULT_CONTROL}]",
    )(f)


def _call(url: str, action: Callable[[ControlClient], Awaitable[T]]) -> T:
    """Run one client action against the world at `url`, mapping errors to exit statuses."""

    async def go() -> T:
        async with ControlClient(url) as client:
            return await action(client)

    try:
        return asyncio.run(go())
    except ControlUnreachable as exc:
        raise CliFailure(f"no world is running at {url}; start one with `tplab net serve`") from exc
    except ControlError as exc:
        if exc.status == 0 or 400 <= exc.status < 500:
            raise CliError(exc.message) from exc
        raise CliFailure(exc.message) from exc


# ---------------------------------------------------------------- formatting
def _number(value: float) -> str:
    return f"{value:g}"


def describe_spec(spec: dict[str, Any], default: dict[str, Any] | None = None) -> str:
    """The fields of a link spec that differ from `default`, for people."""
    base = default or {}
    parts: list[str] = []
    for name, value in spec.items():
        if name in ("src", "dst") or base.get(name, _CLEAR.get(name)) == value:
            continue
        if name == "down":
            parts.append("down" if value else "up")
        elif value is None:
            parts.append(f"no {name.removesuffix('_kbit').removesuffix('_bytes')} limit")
        elif name in ("loss", "duplicate", "reorder"):
            parts.append(f"{name} {_number(value * 100)}%")
        elif name.endswith("_ms"):
            parts.append(f"{name.removesuffix('_ms').replace('_', ' ')} {_number(value)} ms")
        elif name == "rate_kbit":
            parts.append(f"rate {_number(value)} kbit/s")
        elif name == "mtu_bytes":
            parts.append(f"mtu {value} B")
        else:
            parts.append(f"{name} {value}")
    return ", ".join(parts) or "not impaired"


_CLEAR: dict[str, Any] = LinkSpec().to_dict()


def _hosts_table(world: dict[str, Any]) -> Table:
    offsets: dict[str, float] = world.get("clock_offsets", {})
    table = Table(title=f"hosts of topology {world['topology']['name']}", title_justify="left")
    for column in ("host", "role", "ip", "mtu", "ports", "clock offset"):
        table.add_column(column)
    for host in world["topology"]["hosts"]:
        offset = offsets.get(host["name"])
        table.add_row(
            host["name"],
            host["role"],
            host["ip"],
            str(host["mtu_bytes"]),
            " ".join(host["ports"]),
            "" if offset is None else f"{offset:+g} s",
        )
    return table


def render_world(world: dict[str, Any], console: Console) -> None:
    console.print(
        f"backend [bold]{world['backend']}[/], seed {world['seed']}, "
        f"generation {world['generation']}, topology {world['topology']['source']}"
    )
    console.print(_hosts_table(world))
    default: dict[str, Any] = world["default"]
    if describe_spec(default) != "not impaired":
        console.print(f"every link by default: {describe_spec(default)}")
    if world["links"]:
        links = Table(title="impaired links", title_justify="left")
        links.add_column("src")
        links.add_column("dst")
        links.add_column("impairments")
        for link in world["links"]:
            links.add_row(link["src"], link["dst"], describe_spec(link, default))
        console.print(links)
    else:
        console.print("impaired links: none")
    if world["partition"]:
        named = {host for group in world["partition"] for host in group}
        rest = [h["name"] for h in world["topology"]["hosts"] if h["name"] not in named]
        groups = [", ".join(group) for group in world["partition"]]
        if rest:
            groups.append(", ".join(rest) + " (not named)")
        console.print("partition: " + "  |  ".join(f"{{{g}}}" for g in groups))
    else:
        console.print("partition: none")
    if world["firewall"]:
        console.print(_firewall_table(world["firewall"]))
    else:
        console.print("firewall rules: none")
    caps = Table(title=f"capabilities of the {world['backend']} backend", title_justify="left")
    for column in ("impairment", "support", "note"):
        caps.add_column(column)
    for name, cap in world["capabilities"].items():
        caps.add_row(name, cap["support"], cap["note"])
    console.print(caps)


def _ports(rule: dict[str, Any]) -> str:
    lo, hi = rule["port_lo"], rule["port_hi"]
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _firewall_table(rules: list[dict[str, Any]]) -> Table:
    table = Table(title="firewall rules", title_justify="left")
    for column in ("id", "proto", "ports", "action", "src", "dst"):
        table.add_column(column)
    for rule in rules:
        table.add_row(
            str(rule["id"]), rule["proto"], _ports(rule), rule["action"], rule["src"], rule["dst"]
        )
    return table


def format_event(event: dict[str, Any]) -> str:
    fields = {k: v for k, v in event.items() if k not in ("seq", "t", "kind")}
    text = " ".join(
        f"{k}={json.dumps(v, separators=(',', ':'), default=str)}" for k, v in fields.items()
    )
    return f"{event['seq']:>6} {event['t']:>12.6f}  {event['kind']:<18} {text}".rstrip()


# ----------------------------------------------------------------- commands
@click.group("tplab", cls=TplabGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """tplab: a Cisco TelePresence Conductor cluster emulator and its network simulator."""


topology_option = click.option(
    "--topology",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_TOPOLOGY,
    show_default="scenarios/topologies/default.yaml",
    help="topology YAML file",
)


def backend_option(name: str) -> Callable[[F], F]:
    """`--backend` for `net serve`, `--netsim` for `up`: the same choice under two names."""
    return click.option(
        name,
        "backend",
        type=click.Choice(BACKENDS),
        default="proxy",
        show_default=True,
        help="how the network is realised",
    )


@cli.group(cls=TplabGroup)
def net() -> None:
    """The simulated network: serve a world, then impair, partition and firewall it."""


@net.command()
@topology_option
@backend_option("--backend")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of every random choice")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default="state/",
    help="where the world keeps its runtime state",
)
@click.option(
    "--control",
    "control",
    metavar="HOST:PORT",
    default=None,
    help=f"address of the control API [default: ${CONTROL_ENV} or {DEFAULT_CONTROL}]",
)
def serve(topology: Path, backend: str, seed: int, state_dir: Path, control: str | None) -> None:
    """Open a world and serve its control API until Ctrl-C or SIGTERM."""
    try:
        host, port = listen_address(control or _env_control() or DEFAULT_CONTROL)
    except click.BadParameter as exc:
        raise CliError(f"--control: {exc.format_message()}") from exc
    try:
        parsed = load_topology(topology)
    except TopologyError as exc:
        raise CliError(str(exc)) from exc
    asyncio.run(_serve(parsed, backend, seed, state_dir, host, port))


_IN_USE_HINT = "; is a world already running? (`tplab net show`)"


async def _serve(
    topology: Topology, backend: str, seed: int, state_dir: Path, host: str, port: int
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        try:
            world = await stack.enter_async_context(
                open_world(topology, backend=backend, seed=seed, state_dir=state_dir)
            )
        except ImportError as exc:
            raise CliFailure(f"the {backend} backend is not available: {exc}") from exc
        except ValueError as exc:
            raise CliError(f"the {backend} backend cannot run this topology: {exc}") from exc
        except (OSError, RuntimeError) as exc:
            hint = _IN_USE_HINT if getattr(exc, "errno", None) == errno.EADDRINUSE else ""
            raise CliFailure(f"cannot start the {backend} backend: {exc}{hint}") from exc
        runner = web.AppRunner(make_app(world), access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            hint = _IN_USE_HINT if exc.errno == errno.EADDRINUSE else ""
            raise CliFailure(
                f"cannot serve the control API on {host}:{port}: {exc.strerror or exc}{hint}"
            ) from exc
        bound_host, bound_port = runner.addresses[0][:2]
        _console().print(_hosts_table(world.show()))
        click.echo(
            f"world {topology.name} is up on the {backend} backend; control API at "
            f"http://{bound_host}:{bound_port} (Ctrl-C to stop)"
        )
        await _wait_for_stop()
    click.echo("world stopped")


async def _wait_for_stop() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


@net.command()
@control_option
@click.option("--json", "as_json", is_flag=True, help="print the raw state as JSON")
def show(control: str, as_json: bool) -> None:
    """Hosts, impaired links, partition, firewall rules, clock offsets and capabilities."""
    world = _call(control, lambda c: c.world())
    if as_json:
        click.echo(json.dumps(world, indent=2, sort_keys=True))
    else:
        render_world(world, _console())


_MS = click.FloatRange(min=0.0)
_PROBABILITY = click.FloatRange(0.0, 1.0)


@net.command()
@control_option
@click.argument("src")
@click.argument("dst")
@click.option("--latency-ms", type=_MS, help="one-way delay")
@click.option("--jitter-ms", type=_MS, help="random extra delay, up to this")
@click.option("--loss", type=_PROBABILITY, help="probability a packet is lost (0-1)")
@click.option("--duplicate", type=_PROBABILITY, help="probability a packet is doubled (0-1)")
@click.option("--reorder", type=_PROBABILITY, help="probability a packet is held back (0-1)")
@click.option("--reorder-gap-ms", type=_MS, help="how long a reordered packet is held")
@click.option("--rate-kbit", type=click.FloatRange(min=1.0), help="bandwidth limit")
@click.option("--mtu", "mtu_bytes", type=click.IntRange(68, 65535), help="path MTU in bytes")
@click.option("--down/--up", "down", default=None, help="take the link down or bring it up")
@click.option("--both", is_flag=True, help="impair dst -> src as well")
def impair(control: str, src: str, dst: str, both: bool, **options: Any) -> None:
    """Change impairments of the link SRC -> DST; the others keep their value."""
    changes = {name: value for name, value in options.items() if value is not None}
    if not changes:
        raise click.UsageError("name at least one impairment, e.g. --latency-ms 20")
    link = _call(control, lambda c: c.impair(src, dst, both=both, **changes))
    arrow = "<->" if both else "->"
    click.echo(f"{src} {arrow} {dst}: {describe_spec(link)}")


@net.command()
@control_option
@click.argument("src")
@click.argument("dst")
@click.option("--both", is_flag=True, help="clear dst -> src as well")
def clear(control: str, src: str, dst: str, both: bool) -> None:
    """Clear every impairment of the link SRC -> DST."""
    _call(control, lambda c: c.clear(src, dst, both=both))
    click.echo(f"cleared {src} {'<->' if both else '->'} {dst}")


@net.command()
@control_option
@click.argument("groups", nargs=-1, required=True, metavar="GROUP...")
def partition(control: str, groups: tuple[str, ...]) -> None:
    """Split the hosts into groups that cannot reach each other.

    Each GROUP is a comma-separated list of host names; hosts not named form
    one more group. Example: tplab net partition conductor-initial,conductor-2 conductor-3
    """
    parsed = [[name.strip() for name in group.split(",")] for group in groups]
    for text, group in zip(groups, parsed, strict=True):
        if not all(group):
            raise click.BadParameter(f"{text!r} has an empty host name", param_hint="GROUP")
    world = _call(control, lambda c: c.partition(*parsed))
    click.echo("partition: " + "  |  ".join("{" + ", ".join(g) + "}" for g in world["partition"]))


@net.command()
@control_option
def heal(control: str) -> None:
    """End the partition and bring every link up (other impairments stay)."""
    _call(control, lambda c: c.heal())
    click.echo("healed: no partition, every link up")


@net.command()
@control_option
def reset(control: str) -> None:
    """Remove every impairment, partition, firewall rule and clock offset."""
    _call(control, lambda c: c.reset())
    click.echo("reset: the network is clean")


@net.group(cls=TplabGroup)
def firewall() -> None:
    """Drop or reject traffic by protocol and destination port."""


@firewall.command("add")
@control_option
@click.option("--proto", type=click.Choice(["udp", "tcp", "any"]), required=True)
@click.option("--ports", required=True, help="destination port N or range LOW-HIGH")
@click.option("--action", type=click.Choice(["drop", "reject"]), default="drop", show_default=True)
@click.option("--src", default="*", show_default=True, help="source host, * = any")
@click.option("--dst", default="*", show_default=True, help="destination host, * = any")
def firewall_add(control: str, proto: str, ports: str, action: str, src: str, dst: str) -> None:
    """Add a firewall rule."""
    rule = _call(control, lambda c: c.firewall_add(proto, ports, action=action, src=src, dst=dst))
    click.echo(
        f"rule {rule['id']}: {rule['action']} {rule['proto']}/{_ports(rule)} "
        f"from {rule['src']} to {rule['dst']}"
    )


@firewall.command("list")
@control_option
@click.option("--json", "as_json", is_flag=True, help="print the rules as JSON")
def firewall_list(control: str, as_json: bool) -> None:
    """List firewall rules, in the order they apply."""
    rules = _call(control, lambda c: c.firewall_list())
    if as_json:
        click.echo(json.dumps(rules, indent=2))
    elif rules:
        _console().print(_firewall_table(rules))
    else:
        click.echo("firewall rules: none")


@firewall.command("remove")
@control_option
@click.argument("rule_id", metavar="ID", type=int)
def firewall_remove(control: str, rule_id: int) -> None:
    """Remove the firewall rule ID."""
    _call(control, lambda c: c.firewall_remove(rule_id))
    click.echo(f"removed rule {rule_id}")


@net.command()
@control_option
@click.argument("host")
@click.option("--offset-s", type=float, required=True, help="seconds added to HOST's wall clock")
def clock(control: str, host: str, offset_s: float) -> None:
    """Set the wall-clock offset of HOST (0 = in sync)."""
    result = _call(control, lambda c: c.set_clock_offset(host, offset_s))
    click.echo(f"{result['host']}: clock offset {result['offset_s']:+g} s")


@net.command()
@control_option
@click.option("--since", type=click.IntRange(min=0), default=0, help="first sequence number")
@click.option("--follow", "-f", is_flag=True, help="keep printing new events until Ctrl-C")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def trace(control: str, since: int, follow: bool, as_json: bool) -> None:
    """Print the world's event trace."""

    def emit(event: dict[str, Any]) -> None:
        click.echo(json.dumps(event, sort_keys=True) if as_json else format_event(event))

    async def run(client: ControlClient) -> None:
        position = since
        while True:
            page = await client.trace(position)
            for event in page["events"]:
                emit(event)
            position = page["next"]
            if not follow:
                return
            await asyncio.sleep(TRACE_POLL_S)

    with contextlib.suppress(KeyboardInterrupt):
        _call(control, run)


# ---------------------------------------------------------------------- lab
#: how long `tplab up -d` waits beyond the start timeout, and `tplab down` for the supervisor
DETACH_MARGIN_S = 30.0
DOWN_TIMEOUT_S = 30.0
LAB_POLL_S = 0.05
LIVE_REFRESH_S = 0.5

_STATE_STYLE = {
    "up": "green",
    "starting": "yellow",
    "restarting": "yellow",
    "stopping": "yellow",
    "failed": "bold red",
    "stopped": "dim",
    "not built yet": "dim",
}


class LabFailure(CliFailure):
    """A lab failed to start: the message keeps its lines (it may end with a log tail)."""

    def __init__(self, message: str) -> None:
        click.ClickException.__init__(self, message.rstrip())


def _state_dir_option(f: F) -> F:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_STATE_DIR,
        show_default="state/",
        help="where the lab keeps its state (lab.json, logs, each host's data)",
    )(f)


def describe_calls(calls: dict[str, Any]) -> str:
    """A VCS's call summary in a table cell: `N ok / M rejected / K failed, p50 X ms`."""
    text = (
        f"{calls.get('connected', 0)} ok / {calls.get('rejected', 0)} rejected / "
        f"{calls.get('failed', 0)} failed"
    )
    p50 = calls.get("setup_ms_p50")
    return text if p50 is None else f"{text}, p50 {p50:.1f} ms"


def policy_lines(lab: dict[str, Any]) -> list[str]:
    """One line per policy service server of each VCS, as its Status page shows it."""
    lines = []
    for host in lab.get("hosts", []):
        for service in host.get("policy_services") or []:
            head = f"{host['host']} policy service {service.get('name', '?')}:"
            servers = service.get("servers") or []
            if not servers:
                lines.append(f"{head} {service.get('status', 'No servers')}")
            for server in servers:
                line = f"{head} Server {server.get('slot')} {server.get('address')} "
                line += str(server.get("text") or server.get("status") or "")
                if server.get("status") == "Failed" and server.get("reason"):
                    line += f" ({server['reason']})"
                lines.append(line)
    return lines


def lab_view(lab: dict[str, Any]) -> Group:
    """The lab table, then the policy service lines of its VCS hosts (the live display)."""
    return Group(lab_table(lab), *(Text(line) for line in policy_lines(lab)))


def _print_lab(lab: dict[str, Any], console: Console) -> None:
    console.print(lab_table(lab))
    for line in policy_lines(lab):
        click.echo(line)


def lab_table(lab: dict[str, Any]) -> Table:
    """One row per host: URL, state, PID, alarms, restart required, restarts, the VCS's
    calls and notes."""
    table = Table(
        title=f"lab {lab.get('topology_name', '?')} ({lab.get('backend', '?')} backend): "
        f"{lab.get('state', '?')}",
        title_justify="left",
    )
    columns = ("host", "role", "URL", "state", "pid", "restarts", "alarms", "restart req.")
    for column in (*columns, "calls", "note"):
        table.add_column(column, no_wrap=column in ("URL", "host"))
    for host in lab.get("hosts", []):
        state = str(host.get("state", "?"))
        style = _STATE_STYLE.get(state, "")
        built = state != "not built yet"
        alarms, required = host.get("alarms"), host.get("restart_required")
        calls = host.get("calls")
        table.add_row(
            host["host"],
            host.get("role", ""),
            host.get("url") or "",
            f"[{style}]{state}[/]" if style else state,
            "" if host.get("pid") is None or not built else str(host["pid"]),
            str(host.get("restarts", 0)) if built else "",
            "" if alarms is None else str(alarms),
            "" if required is None else ("yes" if required else "no"),
            "" if calls is None else describe_calls(calls),
            str(host.get("note") or ""),
        )
    return table


#: roles whose hosts are conference bridges (factory account: admin, no password)
BRIDGE_ROLES = ("telepresence-server", "mcu")


def _login_lines(lab: dict[str, Any]) -> list[str]:
    from emulator.supervisor import DEFAULT_PASSWORD, DEFAULT_USER

    hosts = [h for h in lab.get("hosts", []) if h.get("url")]
    bridges = [h["url"] for h in hosts if h.get("role") in BRIDGE_ROLES]
    urls = [h["url"] for h in hosts if h.get("role") not in BRIDGE_ROLES]
    lines = [
        f"log in at {', '.join(urls)} as {DEFAULT_USER} / {DEFAULT_PASSWORD} "
        "(each host signs its certificate with its own CA: accept the browser's warning)"
    ]
    if bridges:
        lines.append(
            f"conference bridges (XML-RPC at /RPC2): {', '.join(bridges)}, user "
            f"{DEFAULT_USER} with no password"
        )
    if lab.get("backend") == "kernel":
        lines.append(
            "kernel backend: the hosts' addresses exist only inside their namespaces "
            f"({', '.join(lab.get('namespaces', []))}); use `ip netns exec NAMESPACE ...`"
        )
    lines.append(f"lab home page (hosts and their admin pages): {lab.get('control')}/")
    lines.append(f"network control API: {lab.get('control')} (tplab net ... --control URL)")
    return lines


#: `tplab up --start-timeout` and `tplab lab start --start-timeout`
start_timeout_option = click.option(
    "--start-timeout",
    "start_timeout_s",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="seconds each host has to answer before the lab gives up",
)


def _refuse_running_lab(state_dir: Path) -> None:
    from emulator.supervisor import read_lab, supervisor_alive

    lab = read_lab(state_dir)
    if lab is None:
        return
    if supervisor_alive(lab):
        raise CliFailure(
            f"a lab is already running on {state_dir} (supervisor pid {lab['supervisor_pid']}); "
            f"see `tplab status --state-dir {state_dir}`, stop it with "
            f"`tplab down --state-dir {state_dir}`"
        )
    _refuse_orphans(lab, state_dir)


def _refuse_orphans(lab: dict[str, Any], state_dir: Path) -> None:
    """Processes of a lab whose supervisor died (killed with SIGKILL, crashed)."""
    from emulator.supervisor import live_children

    orphans = live_children(lab)
    if orphans:
        listed = ", ".join(f"{h['host']} (pid {h['pid']})" for h in orphans)
        raise CliFailure(
            f"the supervisor of the lab on {state_dir} is gone but its processes still run: "
            f"{listed}; stop them with `tplab down --state-dir {state_dir}`"
        )


def _running_lab(state_dir: Path) -> dict[str, Any]:
    """`lab_status` of the lab running on `state_dir` (CliFailure when none runs)."""
    from emulator.supervisor import lab_status

    lab = lab_status(state_dir)
    if lab is not None and not lab["running"]:
        _refuse_orphans(lab, state_dir)
    if lab is None or not lab["running"]:
        raise CliFailure(f"no lab is running on {state_dir}; start one with `tplab up`")
    return lab


def _down_hint(state_dir: Path) -> str:
    default = state_dir.resolve() == DEFAULT_STATE_DIR.resolve()
    return "tplab down" if default else f"tplab down --state-dir {state_dir}"


@cli.command()
@topology_option
@backend_option("--netsim")
@_state_dir_option
@click.option("--seed", type=int, default=None, help="seed of the world and of every host")
@click.option(
    "--control",
    "control",
    metavar="HOST:PORT",
    default=None,
    help=f"address of the network control API [default: ${CONTROL_ENV} or {DEFAULT_CONTROL}]",
)
@start_timeout_option
@click.option("-d", "--detach", is_flag=True, help="run the lab in the background and return")
def up(
    topology: Path,
    backend: str,
    state_dir: Path,
    seed: int | None,
    control: str | None,
    start_timeout_s: float,
    detach: bool,
) -> None:
    """Start the lab: the world, its control API and one process per host.

    In the foreground it shows a live status table until Ctrl-C, then stops
    everything. With -d it returns once every host answers; stop it with
    `tplab down`.
    """
    from emulator.supervisor import LabConfig

    try:
        host, port = listen_address(control or _env_control() or DEFAULT_CONTROL)
    except click.BadParameter as exc:
        raise CliError(f"--control: {exc.format_message()}") from exc
    try:
        parsed = load_topology(topology)
    except TopologyError as exc:
        raise CliError(str(exc)) from exc
    _refuse_running_lab(state_dir)
    config = LabConfig(
        topology_path=topology,
        state_dir=state_dir,
        backend=backend,
        seed=seed,
        control_host=host,
        control_port=port,
        start_timeout_s=start_timeout_s,
    )
    if detach:
        _up_detached(config)
    else:
        _up_foreground(config, parsed)


def _up_foreground(config: LabConfig, topology: Topology) -> None:
    from rich.live import Live

    from emulator.supervisor import Supervisor, SupervisorError, run_until_signalled
    from emulator.supervisor import with_peer_status as merge

    console = _console()

    def event(message: str) -> None:
        console.print(f"[dim]{datetime.now(UTC).astimezone():%H:%M:%S}[/] {message}")

    supervisor = Supervisor(config, topology, on_event=event)

    def table() -> Group:
        return lab_view(merge(supervisor.snapshot(), supervisor.state_dir))

    def ready(sup: Supervisor) -> None:
        for line in _login_lines(sup.snapshot()):
            console.print(line, soft_wrap=True)
        console.print(
            f"Ctrl-C (or `{_down_hint(config.state_dir)}` elsewhere) stops the lab", soft_wrap=True
        )

    async def go() -> None:
        with Live(table(), console=console, auto_refresh=False) as live:

            async def refresh() -> None:
                while True:
                    live.update(table(), refresh=True)
                    await asyncio.sleep(LIVE_REFRESH_S)

            refresher = asyncio.create_task(refresh())
            try:
                await run_until_signalled(supervisor, ready)
            finally:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
                live.update(table(), refresh=True)

    try:
        asyncio.run(go())
    except SupervisorError as exc:
        raise LabFailure(str(exc)) from exc
    finally:
        if not console.is_terminal:
            click.echo()  # a live display that is not a terminal ends without a newline
    click.echo("lab stopped")


def _up_detached(config: LabConfig, *, show_logins: bool = True) -> None:
    """Start the supervisor in the background and return once the lab runs (a training
    lab prints its own accounts: `show_logins=False`)."""
    from emulator.supervisor import (
        LAB_FILE,
        SUPERVISOR_LOG,
        lab_status,
        live_children,
        log_tail,
        signal_pids,
    )

    state_dir: Path = config.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / SUPERVISOR_LOG
    with log.open("a") as f:
        f.write(f"--- {datetime.now(UTC).astimezone().isoformat(timespec='seconds')} tplab up -d\n")
    argv = [
        sys.executable,
        "-m",
        "emulator.supervisor",
        "--topology",
        str(config.topology_path.resolve()),
        "--netsim",
        config.backend,
        "--state-dir",
        str(state_dir),
        "--control-host",
        config.control_host,
        "--control-port",
        str(config.control_port),
        "--start-timeout",
        str(config.start_timeout_s),
    ]
    if config.seed is not None:
        argv += ["--seed", str(config.seed)]
    if config.subnet is not None:
        argv += ["--subnet", str(config.subnet)]
    # a session of its own, no Popen object: the supervisor outlives this command
    pid = os.posix_spawn(
        sys.executable,
        argv,
        dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    total_s = config.start_timeout_s + DETACH_MARGIN_S
    deadline = time.monotonic() + total_s
    exit_code: int | None = None
    while True:
        if exit_code is None:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                exit_code = os.waitstatus_to_exitcode(status)
        lab = lab_status(state_dir)
        mine = lab is not None and lab.get("supervisor_pid") == pid
        if lab is not None and mine and lab["state"] == "running":
            break
        if exit_code is not None or (lab is not None and mine and lab["state"] == "failed"):
            if exit_code is None:
                exit_code = _reap(pid, config.stop_timeout_s * 3 + DETACH_MARGIN_S)
            reason = lab["error"] if lab is not None and mine and lab.get("error") else ""
            if not reason:
                reason = f"the supervisor exited ({exit_code}); last lines of {log}:\n"
                reason += log_tail(log)
            raise LabFailure(f"the lab did not start: {reason}")
        if time.monotonic() > deadline:
            # the supervisor stops its children on SIGTERM; if it cannot, they go by PID
            os.kill(pid, signal.SIGTERM)
            if _reap(pid, DOWN_TIMEOUT_S) is None:
                os.kill(pid, signal.SIGKILL)
                _reap(pid, DOWN_TIMEOUT_S)
                left = live_children(lab) if lab is not None and mine else []
                signal_pids([(h["pid"], h.get("pid_start")) for h in left], signal.SIGKILL)
            raise LabFailure(
                f"the lab did not come up within {total_s:g} s; "
                f"see {log} and {state_dir / LAB_FILE}"
            )
        time.sleep(LAB_POLL_S)
    console = _console()
    _print_lab(lab, console)
    click.echo(
        f"lab {lab['topology_name']} is running in the background (supervisor pid {pid}, log {log})"
    )
    if show_logins:
        for line in _login_lines(lab):
            click.echo(line)
        click.echo(f"stop it with `{_down_hint(config.state_dir)}`")


def _reap(pid: int, timeout_s: float) -> int | None:
    """Wait (bounded) for our child `pid` to exit; its exit status, or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(LAB_POLL_S)
    return None


@cli.command()
@_state_dir_option
@click.option("--json", "as_json", is_flag=True, help="print the lab's state as JSON")
def status(state_dir: Path, as_json: bool) -> None:
    """Show the running lab: each host's URL, state, PID, alarms and restart notices, the
    VCS's calls and the status of its policy service servers."""
    lab = _running_lab(state_dir)
    if as_json:
        click.echo(json.dumps(lab, indent=2, sort_keys=True))
        return
    _print_lab(lab, _console())
    click.echo(
        f"supervisor pid {lab['supervisor_pid']}, started {lab['started']}, "
        f"state dir {lab['state_dir']}"
    )
    for line in _login_lines(lab):
        click.echo(line)


@cli.command()
@_state_dir_option
def down(state_dir: Path) -> None:
    """Stop the lab running on the state dir: every host process, the control API, the world."""
    from emulator.supervisor import (
        live_children,
        read_lab,
        same_process,
        signal_pids,
        supervisor_alive,
    )

    lab = read_lab(state_dir)
    if lab is None:
        click.echo(f"no lab is running on {state_dir}")
        return
    children = live_children(lab)
    pids = [(h["pid"], h.get("pid_start")) for h in children]
    if supervisor_alive(lab):
        supervisor = (lab["supervisor_pid"], lab.get("supervisor_start"))
        signal_pids([supervisor], signal.SIGTERM)
        click.echo(f"stopping lab {lab.get('topology_name')} (supervisor pid {supervisor[0]})")
        if not _wait_gone([supervisor], DOWN_TIMEOUT_S):
            signal_pids([supervisor], signal.SIGKILL)
            click.echo(f"the supervisor did not stop within {DOWN_TIMEOUT_S:g} s: killed it")
    elif children:
        click.echo(f"the supervisor of the lab on {state_dir} is gone; stopping what it left")
    else:
        click.echo(f"no lab is running on {state_dir}")
        return
    # what the supervisor did not stop (it was killed, or crashed): by PID, bounded
    left = signal_pids(pids, signal.SIGTERM)
    if left and not _wait_gone(pids, DOWN_TIMEOUT_S):
        signal_pids(pids, signal.SIGKILL)
        _wait_gone(pids, DOWN_TIMEOUT_S)
    if not supervisor_alive(lab):
        _remove_namespaces(lab.get("namespaces", []))
    stopped = ", ".join(f"{h['host']} (pid {h['pid']})" for h in children) or "no host process"
    still = [pid for pid, start in pids if same_process(pid, start)]
    if still:
        raise CliFailure(f"stopped {stopped}, but these processes are still there: {still}")
    click.echo(f"stopped {stopped}; the world is down")


def _wait_gone(pids: list[tuple[int, int | None]], timeout_s: float) -> bool:
    from emulator.supervisor import same_process

    deadline = time.monotonic() + timeout_s
    while any(same_process(pid, start) for pid, start in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(LAB_POLL_S)
    return True


def _remove_namespaces(names: list[str]) -> None:
    """Namespaces a dead supervisor of a kernel-backend lab left behind (only those it
    recorded)."""
    if not names:
        return
    try:
        from pyroute2 import netns
    except ImportError:
        return
    existing = set(netns.listnetns())
    for name in names:
        if name in existing:
            with contextlib.suppress(OSError):
                netns.remove(name)
                click.echo(f"removed network namespace {name}")


# ---------------------------------------------------------------------- VCS
#: environment variable with the VCS admin password (`--password` wins)
VCS_PASSWORD_ENV = "TPLAB_VCS_PASSWORD"
#: bound on one call: a search rule's policy service may try three servers in turn
CALL_TIMEOUT_S = 120.0
#: how often `tplab load` asks how far the load got
LOAD_POLL_S = 0.25
#: how long `tplab load` waits beyond the load's duration for its last calls to end
LOAD_MARGIN_S = 120.0
#: the VCS's own limits of a load (`vcs_policy.node.MAX_LOAD_RATE`, `MAX_LOAD_DURATION_S`)
MAX_LOAD_RATE = 10_000.0
MAX_LOAD_DURATION_S = 86_400.0
_PROTOCOL = click.Choice(["SIP", "H323"], case_sensitive=False)


def _vcs_options(f: F) -> F:
    """--state-dir, --vcs, --user and --password: which lab's VCS, and its admin account."""
    options = (
        click.option(
            "--password",
            envvar=VCS_PASSWORD_ENV,
            default=None,
            help=f"the account's password [default: ${VCS_PASSWORD_ENV} or TANDBERG]",
        ),
        click.option("--user", default="admin", show_default=True, help="the VCS admin account"),
        click.option(
            "--vcs",
            "vcs_name",
            metavar="HOST",
            default=None,
            help="the VCS host, when the topology has more than one",
        ),
        _state_dir_option,
    )
    for option in options:
        f = option(f)
    return f


def _lab_vcs(state_dir: Path, name: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The running lab on `state_dir` and its VCS host (the one named `name`), up."""
    lab = _running_lab(state_dir)
    hosts = [h for h in lab.get("hosts", []) if h.get("role") == "vcs"]
    names = ", ".join(h["host"] for h in hosts)
    if name is not None:
        named = [h for h in hosts if h["host"] == name]
        if not named:
            known = f"its VCS hosts: {names}" if hosts else "it has none"
            raise CliError(f"the lab on {state_dir} has no VCS host named {name!r}; {known}")
        hosts = named
    if not hosts:
        raise CliFailure(
            f"the lab on {state_dir} has no VCS: its topology {lab.get('topology_name')} "
            f"({lab.get('topology')}) has no host with role vcs"
        )
    if len(hosts) > 1:
        raise CliError(
            f"the lab on {state_dir} has several VCS hosts ({names}); name one with --vcs"
        )
    host = hosts[0]
    if host.get("state") != "up" or not host.get("url"):
        note = f" ({host['note']})" if host.get("note") else ""
        raise CliFailure(
            f"the VCS {host['host']} is {host.get('state')}{note}, not up; "
            f"see `tplab status --state-dir {state_dir}`"
        )
    return lab, host


def _vcs_call(
    lab: dict[str, Any],
    host: dict[str, Any],
    user: str,
    password: str | None,
    action: Callable[[VcsApi], Awaitable[T]],
) -> T:
    """Run one client action against the VCS `host`, mapping errors to exit statuses."""
    from emulator.supervisor import DEFAULT_PASSWORD
    from emulator.vcs_api import VcsApi, VcsApiError, VcsUnreachable

    async def go() -> T:
        async with VcsApi(host["url"], user, password or DEFAULT_PASSWORD) as api:
            return await action(api)

    try:
        return asyncio.run(go())
    except VcsUnreachable as exc:
        hint = ""
        if lab.get("backend") == "kernel":
            hint = (
                "; with the kernel backend its address exists only inside its namespace: "
                "run tplab there with `ip netns exec`"
            )
        raise CliFailure(
            f"{exc.message}; see `tplab status --state-dir {lab['state_dir']}`{hint}"
        ) from exc
    except VcsApiError as exc:
        if exc.status == 401:
            raise CliError(
                f"the VCS {host['host']} refused the credentials of {user!r} (401); "
                f"give its password with --password or ${VCS_PASSWORD_ENV}"
            ) from exc
        if 400 <= exc.status < 500:
            raise CliError(f"the VCS {host['host']} refused: {exc.message}") from exc
        raise CliFailure(f"the VCS {host['host']} answered {exc.status}: {exc.message}") from exc


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def describe_call(call: dict[str, Any]) -> str:
    """`connected to X via Y (rule R, N ms)`, or `rejected 404 Not found ... (N ms)`."""
    extras = ["Default CPL"] if call.get("default_cpl") else []
    if call.get("rule"):
        extras.append(f"rule {call['rule']}")
    extras.append(_ms(call.get("setup_ms")))
    if call.get("outcome") == "connected":
        via = call.get("via") or "the Default CPL"
        head = f"connected to {call.get('target')} via {via}"
    else:
        parts = (call.get("outcome"), call.get("status"), call.get("reason"))
        head = " ".join(str(part) for part in parts if part not in (None, ""))
        if call.get("via") and not call.get("default_cpl"):
            head += f" by {call['via']}"
    return f"{head} ({', '.join(extras)})"


def attempt_lines(call: dict[str, Any]) -> list[str]:
    """The call's policy requests, one line each: service, server, what came of it."""
    lines = []
    for n, attempt in enumerate(call.get("attempts") or [], start=1):
        # the Default CPL's own line has no server
        server = f" server {attempt['server']}" if attempt.get("server") else ""
        lines.append(f"  {n}. {attempt.get('service')}{server}: {attempt.get('result')}")
    return lines


def describe_stats(stats: dict[str, Any]) -> str:
    """The VCS's call totals and setup latency percentiles on one line."""
    via = ", ".join(
        f"{name or 'the Default CPL'} {n}" for name, n in stats.get("by_via", {}).items()
    )
    return (
        f"{stats.get('total', 0)} calls: {stats.get('connected', 0)} connected"
        + (f" (via {via})" if via else "")
        + f", {stats.get('rejected', 0)} rejected ({stats.get('default_cpl', 0)} by the "
        f"Default CPL), {stats.get('failed', 0)} failed; setup p50 "
        f"{_ms(stats.get('setup_ms_p50'))}, p99 {_ms(stats.get('setup_ms_p99'))}"
    )


@cli.command()
@click.argument("source", metavar="FROM")
@click.argument("destination", metavar="TO")
@click.option("--protocol", type=_PROTOCOL, default="SIP", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the VCS's call result as JSON")
@_vcs_options
def call(
    source: str,
    destination: str,
    protocol: str,
    as_json: bool,
    state_dir: Path,
    vcs_name: str | None,
    user: str,
    password: str | None,
) -> None:
    """Place one call on the lab's VCS, from alias FROM to alias TO, and show how its
    search rules and policy services routed it.

    Exit status 0 when the call connected, 1 when it was rejected or failed.
    """
    lab, host = _lab_vcs(state_dir, vcs_name)
    result = _vcs_call(
        lab,
        host,
        user,
        password,
        lambda api: api.place_call(source, destination, protocol, timeout_s=CALL_TIMEOUT_S),
    )
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        click.echo(describe_call(result))
        lines = attempt_lines(result)
        if lines:
            click.echo("policy requests:")
            for line in lines:
                click.echo(line)
    if result.get("outcome") != "connected":
        click.get_current_context().exit(1)


@cli.command()
@click.option(
    "--rate",
    type=click.FloatRange(0, MAX_LOAD_RATE, min_open=True),
    required=True,
    help="calls per second",
)
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(0, MAX_LOAD_DURATION_S, min_open=True),
    required=True,
    help="seconds to place calls for",
)
@click.option(
    "--aliases",
    metavar="PATTERN",
    required=True,
    help="the aliases dialled; one {LOW-HIGH} range is drawn anew for each call, "
    "e.g. 'meet.{1-10}@example.com'",
)
@click.option("--source", default="load@example.com", show_default=True, help="the caller")
@click.option("--protocol", type=_PROTOCOL, default="SIP", show_default=True)
@click.option(
    "--hold",
    "hold_s",
    type=click.FloatRange(0, MAX_LOAD_DURATION_S),
    default=0.0,
    show_default=True,
    help="seconds each call connected to a bridge stays up before it hangs up (0: stays)",
)
@_vcs_options
def load(
    rate: float,
    duration_s: float,
    aliases: str,
    source: str,
    protocol: str,
    hold_s: float,
    state_dir: Path,
    vcs_name: str | None,
    user: str,
    password: str | None,
) -> None:
    """Run a call load on the lab's VCS: RATE calls a second for DURATION seconds.

    Shows how many calls were placed and have ended until the load is over,
    then the outcomes and the VCS's setup times. Exit status 0 when every call
    connected, 1 otherwise.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    lab, host = _lab_vcs(state_dir, vcs_name)
    console = _console()
    wait_s = duration_s + hold_s + LOAD_MARGIN_S
    started: dict[str, Any] = {}

    async def run(api: VcsApi) -> tuple[dict[str, Any], dict[str, Any]]:
        current = await api.start_load(
            rate=rate,
            duration_s=duration_s,
            aliases=aliases,
            source=source,
            protocol=protocol,
            hold_s=hold_s,
        )
        started.update(current)
        total = int(current["total"])
        click.echo(
            f"load {current['id']} on {host['host']}: {total} calls at {rate:g}/s "
            f"for {duration_s:g} s to {aliases} from {source} ({protocol})"
        )
        deadline = time.monotonic() + wait_s
        columns = (TextColumn("{task.description:>6}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as progress:
            placed = progress.add_task("placed", total=total)
            ended = progress.add_task("ended", total=total)
            while True:
                progress.update(placed, completed=current.get("placed", 0))
                progress.update(ended, completed=current.get("done", 0))
                if current.get("finished") or time.monotonic() > deadline:
                    break
                await asyncio.sleep(LOAD_POLL_S)
                current = await api.load(int(current["id"]))
        return current, (await api.calls())["stats"]

    try:
        final, stats = _vcs_call(lab, host, user, password, run)
    except KeyboardInterrupt:
        if not started:
            raise
        raise CliFailure(
            f"stopped watching load {started['id']}; it goes on on the VCS "
            f"(GET {host['url']}api/v1/calls/load/{started['id']})"
        ) from None
    outcomes = final.get("by_outcome", {})
    counts = ", ".join(
        f"{outcomes.get(name, 0)} {name}" for name in ("connected", "rejected", "failed")
    )
    click.echo(
        f"load {final['id']}: {final.get('placed', 0)} of {final['total']} calls placed, "
        f"{final.get('done', 0)} ended: {counts}"
    )
    click.echo(f"VCS {host['host']} so far: {describe_stats(stats)}")
    if not final.get("finished"):
        raise CliFailure(
            f"load {final['id']} did not end within {wait_s:g} s; it goes on on the VCS "
            f"(GET {host['url']}api/v1/calls/load/{final['id']})"
        )
    if outcomes.get("connected", 0) != final["total"]:
        click.get_current_context().exit(1)


# ----------------------------------------------------------------- scenarios
def _probe_help() -> str:
    from emulator.scenario.conditions import probe_table

    lines = [f"  {name} ({roles}; {ops}): {doc}" for name, roles, ops, doc in probe_table()]
    return "\n\n\b\nProbes of conditions (HOST: PROBE OP VALUE):\n" + "\n".join(lines)


@cli.group(cls=TplabGroup)
def scenario() -> None:
    """Scenario files: the guide's procedures and failure drills."""


@scenario.command(epilog=_probe_help())
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Check a scenario file against its schema and its topology."""
    from emulator.scenario import ScenarioError, load_scenario

    try:
        loaded = load_scenario(file)
    except ScenarioError as exc:
        raise CliError(str(exc)) from exc
    modes = ", ".join(m.value for m in loaded.modes)
    click.echo(
        f"{file}: scenario {loaded.name} is valid: {len(loaded.steps)} steps on topology "
        f"{loaded.topology.name}, modes {modes}"
    )


@scenario.command("list")
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="directory of scenario files [default: the shipped scenarios/]",
)
def list_scenarios(directory: Path | None) -> None:
    """Show every scenario of a directory: name and description."""
    from emulator.paths import SCENARIOS_DIR
    from emulator.scenario import load_all, shipped_scenarios

    scenarios, errors = load_all(shipped_scenarios(directory or SCENARIOS_DIR))
    width = max((len(s.name) for s in scenarios), default=0)
    for item in scenarios:
        click.echo(f"{item.name:<{width}}  {' '.join(item.description.split())}")
    if errors:
        for error in errors:
            click.echo(f"Error: {error}", err=True)
        click.get_current_context().exit(EXIT_BAD_INPUT)


@scenario.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["sim", "real"]),
    default="sim",
    show_default=True,
    help="sim: the simulated world, virtual time; real: one process per host",
)
@click.option("--seed", type=int, default=None, help="seed [default: the scenario's, else 0]")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="write trace.json and report.html into this directory",
)
@click.option(
    "--subnet",
    type=click.IntRange(1, 127),
    default=None,
    help="real mode: move the lab's addresses to 127.N.x.x (labs side by side)",
)
@click.option("-v", "--verbose", is_flag=True, help="also print status changes and alarms")
def run_scenario_command(
    file: Path, mode: str, seed: int | None, report_dir: Path | None, subnet: int | None,
    verbose: bool,
) -> None:  # fmt: skip
    """Run a scenario; exit status 0 only when every step and expectation held."""
    from emulator.scenario import ScenarioError, load_scenario
    from emulator.scenario.console import StepConsole
    from emulator.scenario.lab import LabError
    from emulator.scenario.model import Mode
    from emulator.scenario.runner import run_scenario

    try:
        loaded = load_scenario(file)
    except ScenarioError as exc:
        raise CliError(str(exc)) from exc
    chosen = Mode(mode)
    if chosen not in loaded.modes:
        raise CliError(
            f"{file}: scenario {loaded.name} runs only in "
            f"{', '.join(m.value for m in loaded.modes)} mode"
        )
    console = Console(stderr=False, highlight=False)
    console.print(
        f"[bold]{loaded.name}[/bold] ({chosen.value} mode, {len(loaded.steps)} steps): "
        f"{loaded.description}"
    )
    started = time.monotonic()
    try:
        with StepConsole(console, len(loaded.steps), verbose=verbose) as live:
            trace = run_scenario(
                loaded,
                chosen,
                seed=seed,
                second_octet=subnet,
                listeners=[live],
                on_lab_event=(lambda m: console.print(f"[dim]lab: {m}[/dim]")) if verbose else None,
            )
    except LabError as exc:
        raise CliError(f"the lab did not start: {exc}") from exc
    wall_s = time.monotonic() - started
    result = trace.result
    if report_dir is not None:
        from emulator.scenario.report import write_report

        trace.write(report_dir / "trace.json")
        html = write_report(trace.to_dict(), report_dir)
        console.print(f"report: {html}  trace: {report_dir / 'trace.json'}")
    verdict = "[bold green]PASSED[/bold green]" if result.passed else "[bold red]FAILED[/bold red]"
    console.print(
        f"{verdict} {result.steps_passed}/{result.steps} steps, "
        f"{result.duration_s:.1f} s of lab time in {wall_s:.1f} s"
        + (f"\n{result.message}" if result.message else "")
    )
    click.get_current_context().exit(0 if result.passed else 1)


@scenario.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    from emulator.scenario import scenario_schema

    click.echo(json.dumps(scenario_schema(), indent=2))


# ---------------------------------------------------------------- images
@cli.group(cls=TplabGroup)
def image() -> None:
    """TelePresence Conductor software images (Maintenance > Upgrade on a peer)."""


@image.command("build")
@click.option("--version", "version", required=True, help="software version, e.g. XC3.1")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="directory to write the image into (made if missing)",
)
@click.option("--notes", help="release notes carried in the image (default: a short text)")
def image_build(version: str, out_dir: Path, notes: str | None) -> None:
    """Build and sign a software image and print its path.

    Upload it on a peer's Maintenance > Upgrade page, or send its bytes as the body of
    POST /api/v1/maintenance/upgrade; the peer restarts on VERSION.
    """
    from emulator.image import write_image
    from peers.core.image import ImageError

    try:
        path = write_image(version, out_dir, built=datetime.now(UTC), notes=notes)
    except ImageError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliFailure(f"cannot write the image into {out_dir}: {exc.strerror or exc}") from exc
    click.echo(str(path))


@image.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def image_show(file: Path) -> None:
    """Check a software image as a peer would and print its manifest (exit 2 if refused)."""
    from peers.core.image import MAX_IMAGE_BYTES, ImageError, verify_image
    from peers.software import trusted_key

    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        checked = verify_image(data, trusted_key())
    except ImageError as exc:
        raise CliError(f"{file}: {exc}") from exc
    click.echo(
        f"{file}: {checked.product} {checked.version}, built "
        f"{checked.built.isoformat(timespec='seconds')}, payload {len(checked.payload)} bytes "
        f"(SHA-256 {checked.payload_sha256}), signed with the release key"
    )


def _add_lab_group() -> None:
    # the training labs' commands live with them and reuse this module's helpers
    from emulator.training.cli import lab

    cli.add_command(lab)


if __name__ != "__main__":
    _add_lab_group()


def main() -> None:
    """Entry point of the `tplab` script."""
    cli()


if __name__ == "__main__":
    # `python -m emulator.cli`: run the importable module (the lab commands import it by
    # name, and this copy under __main__ is another module object)
    from emulator.cli import main as _main

    _main()
