"""Kernel backend: every host in its own network namespace, wired to one router namespace.

What it models. Each host of the topology gets a namespace `<prefix>-<host>`
holding one veth, `eth0`, with the host's topology address and its link MTU
(`HostSpec.mtu_bytes`). The other end of every veth sits in the router
namespace `<prefix>_router` (a host name cannot contain "_", so it cannot
collide), which forwards between hosts and enforces the impairment table with
nftables and tc. Nothing is created in the caller's namespace, so several
worlds (each with its own random prefix) run side by side without colliding.

Address scheme: the topology's own addresses, unchanged. The topology uses
127.x.y.z addresses, which Linux normally keeps on `lo`; inside a namespace
they work on a veth once
- `lo` carries only 127.0.0.1/32 instead of 127.0.0.1/8, so the kernel no
  longer treats all of 127/8 as local (the 127.0.0.1/32 is left out entirely
  when a topology host itself uses 127.0.0.1);
- the host address is added with global scope (so it is chosen as the source
  of outgoing packets) and `net.ipv4.conf.all.route_localnet=1` lets 127/8
  packets and ARP cross a non-loopback link (else they are martians);
- `rp_filter` is off, since the router answers from a link-local address.
A host's routes: default via the router (169.254.0.1, or the next free
169.254.0.x, "onlink") with the host address as source. The router's port
`h<i>` towards host i has the router address /32 and a /32 route to the host.
Non-loopback topology addresses work the same way.

Each impairment, per direction src -> dst, as the kernel realises it (rules
live in the router's forward chain, table `inet tplab`, rebuilt atomically with
`nft -f -` on every `apply`; the order follows the toxic chain of
`netsim.core.impairments`):
- firewall: `[ip saddr S] [ip daddr D] udp|tcp dport LO-HI drop`, or reject:
  a TCP reset for TCP, ICMP port-unreachable for UDP (a connected UDP socket
  sees ECONNREFUSED) (G-R6);
- down and partition: an nft set of blocked (src . dst) address pairs, dropped;
- mtu: path MTU with don't-fragment: a UDP packet longer than the path MTU is
  dropped (`meta length > N drop`), never fragmented (G-R14); the host's own
  link MTU is the veth MTU, so the sender's kernel refuses larger datagrams
  with EMSGSIZE;
- loss: `numgen random mod 1000000 < p*1e6 drop`, UDP only as in the toxic
  model; kernel randomness, so not reproducible from the world's seed;
- bandwidth: an htb class per source on the router's port towards dst, chosen
  by a u32 filter on the source address (tc, when the kernel has htb and u32);
- latency, jitter, reorder, duplicate: need the netem qdisc. Unavailable; the
  note says whether the kernel lacks netem or this backend does not drive it;
- clock_offset: userspace: the World writes its clock file and nodes read it
  through `netsim.real.FileClockOffset`.
Capabilities are probed at `start` (nft expressions loaded into a scratch
table, qdiscs added to a scratch veth), never assumed. Missing root, network
namespaces or the `nft` binary make `start` fail with a clear message.

Processes join a host with `exec_prefix(host)` (`ip netns exec <ns>`);
in-process code uses `network_for(host)`, whose sockets are created inside the
host's namespace (a socket keeps its namespace for life).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsim.api import HostAddress
from netsim.core.impairments import FirewallRule, ImpairmentTable, LinkSpec
from netsim.real import (
    RealNetwork,
)
from netsim.topology import HostSpec, Topology
from netsim.world import IMPAIRMENTS, Capability, ImpairmentUnsupported, Support, World

HOST_IFNAME = "eth0"
TABLE = "tplab"
PROBE_TABLE = "tplab_probe"
#: impairments that only the netem qdisc can realise in the kernel
NETEM_IMPAIRMENTS = ("latency", "jitter", "reorder", "duplicate")
#: nft's numgen draws integers below this for the loss rule (parts per million)
LOSS_SCALE = 1_000_000
COMMAND_TIMEOUT_S = 20.0
RT_SCOPE_HOST = 254
RTNH_F_ONLINK = 4
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,15}$")


class KernelBackendError(RuntimeError):
    """The kernel cannot build or change the network as asked."""


@contextlib.contextmanager
def entered_namespace(namespace: str) -> Iterator[None]:
    """Move the calling thread into `namespace` for the block, then back.

    Sockets and child processes made inside the block belong to `namespace`
    for their whole life. Do not await inside the block: other tasks of the
    same event loop would run in the namespace too.
    """
    from pyroute2 import netns

    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        netns.setns(namespace, flags=0)  # flags=0: never create it by accident
        try:
            yield
        finally:
            netns.setns(saved, flags=0)
    finally:
        os.close(saved)


class NamespacedNetwork(RealNetwork):
    """A host's network as seen from inside its namespace: every socket is created
    inside it (synchronously, so no other task runs meanwhile) and then handed to
    asyncio, so callers may use it from any task of the loop."""

    def __init__(self, host: HostAddress, *, namespace: str, mtu_bytes: int) -> None:
        super().__init__(host, mtu_bytes=mtu_bytes, socket_factory=self.socket)
        self.namespace = namespace

    def socket(self, kind: socket.SocketKind) -> socket.socket:
        """A fresh IPv4 socket of `kind` living in this host's namespace."""
        with entered_namespace(self.namespace):
            return socket.socket(socket.AF_INET, kind)


@dataclass(frozen=True, slots=True)
class _ShapedClass:
    src_ip: str
    minor: int
    rate_bit: int


class KernelBackend:
    """Realises a world with network namespaces, veth pairs, nftables and tc."""

    name = "kernel"

    def __init__(self, topology: Topology, *, prefix: str | None = None) -> None:
        prefix = prefix if prefix is not None else f"tp{secrets.token_hex(3)}"
        if not _PREFIX_RE.match(prefix):
            raise ValueError(
                f"namespace prefix must be 1-16 lower-case letters, digits or '-', got {prefix!r}"
            )
        self.topology = topology
        self.prefix = prefix
        self.router_namespace = f"{prefix}_router"
        self.router_ip = _router_ip(topology)
        self._ports = {host.name: f"h{index}" for index, host in enumerate(topology.hosts)}
        self._minors = {host.name: index + 1 for index, host in enumerate(topology.hosts)}
        #: namespaces this instance made (or began to make), for `stop`
        self._made: list[str] = []
        self._started = False
        self._caps: dict[str, Capability] | None = None
        self._ruleset: str | None = None
        self._shaped: dict[str, tuple[_ShapedClass, ...]] = {}

    # ------------------------------------------------------------------ names
    def namespace(self, host_name: str) -> str:
        """The network namespace of `host_name`."""
        self.topology.host(host_name)  # KeyError naming the topology for unknown hosts
        return f"{self.prefix}-{host_name}"

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace this backend has made and not yet deleted."""
        return tuple(self._made)

    def address_of(self, host_name: str) -> str:
        """The host's address inside its namespace: the topology's own, unchanged."""
        return self.topology.host(host_name).ip

    def exec_prefix(self, host_name: str) -> list[str]:
        """argv prefix that runs a program inside `host_name`'s namespace."""
        return ["ip", "netns", "exec", self.namespace(host_name)]

    @contextlib.contextmanager
    def in_namespace(self, host_name: str) -> Iterator[None]:
        """Run the block in `host_name`'s namespace (see `entered_namespace`; never await in it)."""
        with entered_namespace(self.namespace(host_name)):
            yield

    def network_for(self, host_name: str) -> NamespacedNetwork:
        host = self.topology.host(host_name)
        return NamespacedNetwork(
            host.address, namespace=self.namespace(host_name), mtu_bytes=host.mtu_bytes
        )

    # ----------------------------------------------------------- capabilities
    def capabilities(self) -> dict[str, Capability]:
        if self._caps is None:
            caps = {
                name: Capability(
                    Support.UNAVAILABLE,
                    "kernel backend not started: capabilities are probed at start",
                )
                for name in IMPAIRMENTS
            }
            caps["clock_offset"] = _CLOCK_CAPABILITY
            return caps
        return dict(self._caps)

    # -------------------------------------------------------------- lifecycle
    async def start(self, world: World) -> None:
        if world.topology != self.topology:
            raise KernelBackendError(
                "the world's topology is not the one this backend was made for"
            )
        build = asyncio.ensure_future(asyncio.to_thread(self._build))
        try:
            self._caps = await asyncio.shield(build)
            self._started = True
            self.apply(world.table)
        except BaseException:
            # A cancelled start must let the building thread finish first, or
            # `stop` would miss the namespaces it makes afterwards.
            with contextlib.suppress(BaseException):
                await build
            await self.stop()
            raise

    async def stop(self) -> None:
        self._started = False
        self._ruleset = None
        self._shaped = {}
        await asyncio.to_thread(self._teardown)

    def _teardown(self) -> None:
        from pyroute2 import netns

        errors: list[str] = []
        # Deleting a namespace destroys its veths, and with them their peers.
        for name in reversed(self._made):
            try:
                netns.remove(name)
            except FileNotFoundError:
                pass
            except OSError as exc:
                errors.append(f"{name}: {exc}")
        self._made = [name for name in self._made if name in netns.listnetns()]
        if errors:
            raise KernelBackendError(f"could not delete namespaces: {'; '.join(errors)}")

    # ------------------------------------------------------------------ build
    def _build(self) -> dict[str, Capability]:
        """Blocking: preflight checks, namespaces, links, addresses, routes, probes."""
        from pyroute2 import IPRoute

        if os.geteuid() != 0:
            raise KernelBackendError(
                "the kernel backend needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) to create "
                "network namespaces; use the proxy backend otherwise"
            )
        if shutil.which("nft") is None:
            raise KernelBackendError(
                "the kernel backend needs the nft binary (Debian package nftables; "
                "`make sysdeps` installs it)"
            )
        hosts = self.topology.hosts
        keep_localhost = all(host.ip != "127.0.0.1" for host in hosts)
        router = self.router_namespace
        self._create_namespace(router)
        with entered_namespace(router):
            _write_sysctls(router=True)
            with IPRoute() as ipr:
                _loopback_up(ipr, keep_localhost=False)
        for host in hosts:
            self._create_namespace(self.namespace(host.name))
            with entered_namespace(self.namespace(host.name)):
                _write_sysctls(router=False)
        with entered_namespace(router), IPRoute() as ipr:
            for host in hosts:
                self._add_router_port(ipr, host)
        for host in hosts:
            with entered_namespace(self.namespace(host.name)), IPRoute() as ipr:
                _loopback_up(ipr, keep_localhost=keep_localhost)
                index = _link_index(ipr, HOST_IFNAME)
                ipr.addr("add", index=index, address=host.ip, prefixlen=32, scope=0)
                ipr.link("set", index=index, state="up")
                ipr.route(
                    "add",
                    dst="0.0.0.0/0",
                    gateway=self.router_ip,
                    oif=index,
                    flags=RTNH_F_ONLINK,
                    prefsrc=host.ip,
                )
        return self._probe()

    def _create_namespace(self, name: str) -> None:
        from pyroute2 import netns

        if name in netns.listnetns():
            raise KernelBackendError(
                f"network namespace {name} already exists: another world uses prefix "
                f"{self.prefix!r} (or a crashed run left it: `ip netns delete {name}`)"
            )
        self._made.append(name)
        try:
            netns.create(name)
        except OSError as exc:
            raise KernelBackendError(f"cannot create network namespace {name}: {exc}") from exc

    def _add_router_port(self, ipr: Any, host: HostSpec) -> None:
        port = self._ports[host.name]
        ipr.link(
            "add",
            ifname=port,
            kind="veth",
            mtu=host.mtu_bytes,
            peer={
                "ifname": HOST_IFNAME,
                "net_ns_fd": self.namespace(host.name),
                "mtu": host.mtu_bytes,
            },
        )
        index = _link_index(ipr, port)
        ipr.link("set", index=index, ifalias=f"tplab host {host.name} {host.ip}")
        ipr.addr("add", index=index, address=self.router_ip, prefixlen=32, scope=0)
        ipr.link("set", index=index, state="up")
        ipr.route("add", dst=f"{host.ip}/32", oif=index)

    # ----------------------------------------------------------------- probes
    def _probe(self) -> dict[str, Capability]:
        """Find out what this kernel can do, by trying it in the router namespace."""
        base = self._nft(_nft_table(PROBE_TABLE, []) + f"delete table inet {PROBE_TABLE}\n")
        if base:
            raise KernelBackendError(f"nftables does not work in a network namespace here: {base}")
        caps: dict[str, Capability] = {}

        def nft_feature(name: str, note: str, *rules: str) -> None:
            error = self._nft(_nft_table(PROBE_TABLE, rules) + f"delete table inet {PROBE_TABLE}\n")
            caps[name] = (
                Capability(Support.UNAVAILABLE, f"nftables refused it: {error}")
                if error
                else Capability(Support.KERNEL, note)
            )

        nft_feature(
            "firewall",
            "nftables in the router: drop, or reject (TCP reset / ICMP port unreachable)",
            "udp dport 1-2 drop",
            "meta l4proto { tcp, udp } th dport 3 drop",
            "meta l4proto tcp tcp dport 4 reject with tcp reset",
            "udp dport 5 reject with icmpx type port-unreachable",
        )
        nft_feature(
            "down", "nftables drop of the pair in the router", "ip saddr . ip daddr @blocked drop"
        )
        caps["partition"] = (
            caps["down"]
            if caps["down"].support is Support.UNAVAILABLE
            else Capability(Support.KERNEL, "nftables drop of every pair the partition cuts")
        )
        nft_feature(
            "mtu",
            "UDP packets above the path MTU are dropped (DF), never fragmented",
            "meta l4proto udp meta length > 1300 drop",
        )
        nft_feature(
            "loss",
            "nftables numgen random drop, UDP only; kernel randomness (not seeded)",
            f"meta l4proto udp numgen random mod {LOSS_SCALE} < 1 drop",
        )
        netem_note, shaping_error = self._probe_tc()
        caps["bandwidth"] = (
            Capability(Support.UNAVAILABLE, shaping_error)
            if shaping_error
            else Capability(Support.KERNEL, "tc htb class per source, u32 filter, router side")
        )
        for name in NETEM_IMPAIRMENTS:
            caps[name] = Capability(
                Support.UNAVAILABLE, f"{netem_note}; use the proxy or sim backend"
            )
        caps["clock_offset"] = _CLOCK_CAPABILITY
        return {name: caps[name] for name in IMPAIRMENTS}

    def _probe_tc(self) -> tuple[str, str | None]:
        """(why netem impairments are unavailable, why htb shaping is; None = it works)."""
        from pyroute2 import IPRoute

        if shutil.which("tc") is None:
            missing = "the tc binary is missing (Debian package iproute2)"
            return f"cannot probe for the netem qdisc: {missing}", f"cannot shape: {missing}"
        with entered_namespace(self.router_namespace), IPRoute() as ipr:
            ipr.link("add", ifname="probe0", kind="veth", peer={"ifname": "probe1"})
            try:
                netem = self._tc(["qdisc add dev probe0 root handle 1: netem delay 1ms"])
                shaping = self._tc(
                    [
                        *([] if netem else ["qdisc del dev probe0 root"]),
                        "qdisc add dev probe0 root handle 1: htb",
                        "class add dev probe0 parent 1: classid 1:1 htb rate 1000kbit",
                        "filter add dev probe0 parent 1: protocol ip prio 1 "
                        "u32 match ip src 127.0.0.1/32 flowid 1:1",
                    ]
                )
            finally:
                ipr.link("del", index=_link_index(ipr, "probe0"))
        netem_note = (
            f"kernel lacks the netem qdisc (tc: {netem.splitlines()[0]})"
            if netem
            else "the kernel has the netem qdisc, but this backend does not drive it yet"
        )
        return netem_note, (f"tc htb/u32 shaping failed: {shaping}" if shaping else None)

    # --------------------------------------------------------------- commands
    def _run(self, argv: Sequence[str], text: str) -> str | None:
        """Run `argv` in the router namespace with `text` on stdin; None, or why it failed."""
        try:
            with entered_namespace(self.router_namespace):
                done = subprocess.run(
                    list(argv),
                    input=text,
                    capture_output=True,
                    text=True,
                    timeout=COMMAND_TIMEOUT_S,
                    check=False,
                )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{argv[0]} failed: {exc}"
        if done.returncode != 0:
            return (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}")[:2000]
        return None

    def _nft(self, ruleset: str) -> str | None:
        return self._run(["nft", "-f", "-"], ruleset)

    def _tc(self, lines: Sequence[str]) -> str | None:
        return self._run(["tc", "-batch", "-"], "".join(f"{line}\n" for line in lines))

    # ------------------------------------------------------------------ apply
    def apply(self, table: ImpairmentTable) -> None:
        """Make the router's nftables rules and tc classes match `table` (idempotent).

        Raises (and changes nothing in nftables) when the table asks for an
        impairment this kernel cannot realise or the kernel refuses a rule.
        """
        if not self._started:
            return  # `start` applies the world's table once the network exists
        self._check_supported(table)
        ruleset = self._render_ruleset(table)
        if ruleset != self._ruleset:
            error = self._nft(ruleset)
            if error:
                raise KernelBackendError(f"nftables refused the rules: {error}")
            self._ruleset = ruleset
        self._apply_shaping(table)

    def _check_supported(self, table: ImpairmentTable) -> None:
        caps = self.capabilities()
        wanted: dict[str, str] = {}
        for src, dst, spec in self._pairs(table):
            for name in _spec_impairments(spec):
                wanted.setdefault(name, f"{src} -> {dst}")
        if table.partition:
            wanted.setdefault("partition", "partition")
        if table.firewall:
            wanted.setdefault("firewall", f"rule {table.firewall[0].id}")
        for name, where in sorted(wanted.items()):
            cap = caps[name]
            if cap.support is Support.UNAVAILABLE:
                raise ImpairmentUnsupported(
                    f"the kernel backend cannot apply {name} ({where}): {cap.note}"
                )

    def _pairs(self, table: ImpairmentTable) -> Iterator[tuple[str, str, LinkSpec]]:
        for src in self.topology.names:
            for dst in self.topology.names:
                if src != dst:
                    yield src, dst, table.spec(src, dst)

    def _ip(self, host_name: str) -> str:
        return self.topology.host(host_name).ip

    def _render_ruleset(self, table: ImpairmentTable) -> str:
        """The whole `inet tplab` table; loading it replaces the previous one atomically."""
        rules: list[str] = []
        for rule in table.firewall:
            rules.extend(self._firewall_rules(rule))
        blocked: list[str] = []
        path_rules: list[str] = []
        for src, dst, spec in self._pairs(table):
            pair = f"ip saddr {self._ip(src)} ip daddr {self._ip(dst)}"
            if table.partitioned(src, dst) or spec.down:
                blocked.append(f"{self._ip(src)} . {self._ip(dst)}")
            if spec.mtu_bytes is not None:  # G-R14
                path_rules.append(
                    f"{pair} meta l4proto udp meta length > {spec.mtu_bytes} drop "
                    f'comment "path mtu {src} -> {dst}"'
                )
            threshold = round(spec.loss * LOSS_SCALE)
            if threshold > 0:
                path_rules.append(
                    f"{pair} meta l4proto udp numgen random mod {LOSS_SCALE} < {threshold} drop "
                    f'comment "loss {src} -> {dst}"'
                )
        if blocked:
            rules.append('ip saddr . ip daddr @blocked drop comment "link down or partition"')
        rules.extend(path_rules)
        # "add, delete, define" in one file: one transaction that replaces the table
        return f"table inet {TABLE}\ndelete table inet {TABLE}\n" + _nft_table(
            TABLE, rules, blocked
        )

    def _firewall_rules(self, rule: FirewallRule) -> list[str]:
        """nft rules for one firewall rule (G-R6)."""
        match = ""
        if rule.src != "*":
            match += f"ip saddr {self._ip(rule.src)} "
        if rule.dst != "*":
            match += f"ip daddr {self._ip(rule.dst)} "
        ports = (
            str(rule.port_lo) if rule.port_lo == rule.port_hi else f"{rule.port_lo}-{rule.port_hi}"
        )
        comment = f'comment "firewall rule {rule.id}"'
        protos = ("tcp", "udp") if rule.proto == "any" else (rule.proto,)
        lines = []
        for proto in protos:
            if rule.action == "reject":
                verdict = (
                    "reject with tcp reset"
                    if proto == "tcp"
                    else "reject with icmpx type port-unreachable"
                )
            else:
                verdict = "drop"
            lines.append(f"{match}{proto} dport {ports} {verdict} {comment}")
        return lines

    def _apply_shaping(self, table: ImpairmentTable) -> None:
        """Reconcile the htb classes on the router's ports with the table's bandwidths."""
        wanted: dict[str, tuple[_ShapedClass, ...]] = {}
        for dst in self.topology.names:
            classes = tuple(
                _ShapedClass(self._ip(src), self._minors[src], round(spec.rate_kbit * 1000))
                for src, to, spec in self._pairs(table)
                if to == dst and spec.rate_kbit is not None
            )
            if classes:
                wanted[self._ports[dst]] = classes
        changed = sorted(
            port
            for port in set(wanted) | set(self._shaped)
            if wanted.get(port) != self._shaped.get(port)
        )
        if not changed:
            return
        lines: list[str] = []
        for port in changed:
            if port in self._shaped:
                lines.append(f"qdisc del dev {port} root")
            if port in wanted:
                lines.append(f"qdisc add dev {port} root handle 1: htb")
                for shaped in wanted[port]:
                    lines.append(
                        f"class add dev {port} parent 1: classid 1:{shaped.minor:x} "
                        f"htb rate {shaped.rate_bit}bit"
                    )
                    lines.append(
                        f"filter add dev {port} parent 1: protocol ip prio 1 u32 "
                        f"match ip src {shaped.src_ip}/32 flowid 1:{shaped.minor:x}"
                    )
        error = self._tc(lines)
        if error:
            # Leave the changed ports unshaped and known to be so; the world rolls
            # back and applies its previous table, which re-adds what it had.
            for port in changed:
                self._run(["tc", "qdisc", "del", "dev", port, "root"], "")
                self._shaped.pop(port, None)
            raise KernelBackendError(f"tc refused the bandwidth limits: {error}")
        for port in changed:
            if port in wanted:
                self._shaped[port] = wanted[port]
            else:
                self._shaped.pop(port, None)


def _nft_table(name: str, rules: Sequence[str], blocked: Sequence[str] = ()) -> str:
    """An `inet` table: the `blocked` set of (src . dst) address pairs and the forward chain."""
    elements = f"    elements = {{ {', '.join(blocked)} }}\n" if blocked else ""
    body = "".join(f"    {rule}\n" for rule in rules)
    return (
        f"table inet {name} {{\n"
        f"  set blocked {{\n    type ipv4_addr . ipv4_addr\n{elements}  }}\n"
        f"  chain forward {{\n"
        f"    type filter hook forward priority filter; policy accept;\n"
        f"{body}  }}\n"
        f"}}\n"
    )


_CLOCK_CAPABILITY = Capability(
    Support.USERSPACE, "nodes read the world's clock file (netsim.real.FileClockOffset)"
)


def _spec_impairments(spec: LinkSpec) -> list[str]:
    names = []
    if spec.latency_ms:
        names.append("latency")
    if spec.jitter_ms:
        names.append("jitter")
    if spec.loss:
        names.append("loss")
    if spec.duplicate:
        names.append("duplicate")
    if spec.reorder:
        names.append("reorder")
    if spec.rate_kbit is not None:
        names.append("bandwidth")
    if spec.mtu_bytes is not None:
        names.append("mtu")
    if spec.down:
        names.append("down")
    return names


def _router_ip(topology: Topology) -> str:
    """The router's address on every port: link-local, and not a topology address."""
    used = {host.ip for host in topology.hosts}
    for last in range(1, 255):
        candidate = f"169.254.0.{last}"
        if candidate not in used:
            return candidate
    raise KernelBackendError("no free 169.254.0.x address for the router")


def _link_index(ipr: Any, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise KernelBackendError(f"interface {ifname} vanished")
    return int(found[0])


def _loopback_up(ipr: Any, *, keep_localhost: bool) -> None:
    """Bring `lo` up holding 127.0.0.1/32 at most, so the rest of 127/8 can route out."""
    index = _link_index(ipr, "lo")
    ipr.link("set", index=index, state="up")
    for addr in list(ipr.addr("dump", index=index, family=socket.AF_INET)):
        ipr.addr("del", index=index, address=addr.get("address"), prefixlen=addr["prefixlen"])
    if keep_localhost:
        ipr.addr("add", index=index, address="127.0.0.1", prefixlen=32, scope=RT_SCOPE_HOST)


def _write_sysctls(*, router: bool) -> None:
    """Per-namespace settings; the calling thread must be inside the namespace."""
    settings = {
        # 127/8 packets and ARP may cross a veth (they are martians otherwise)
        "net/ipv4/conf/all/route_localnet": "1",
        "net/ipv4/conf/default/route_localnet": "1",
        # the router answers from a link-local address that hosts do not route to
        "net/ipv4/conf/all/rp_filter": "0",
        "net/ipv4/conf/default/rp_filter": "0",
    }
    if router:
        settings["net/ipv4/ip_forward"] = "1"
    for key, value in settings.items():
        Path("/proc/sys", key).write_text(value)
    # an IPv4-only world: keep IPv6 autoconfiguration chatter off the links
    for key in ("net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"):
        path = Path("/proc/sys", key)
        if path.exists():
            path.write_text("1")
