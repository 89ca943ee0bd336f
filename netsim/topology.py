"""Declarative topology: named hosts with role and IPv4 address, ports, link defaults.

Files are YAML validated against `netsim/schema/topology.schema.json`, then
checked for what a schema cannot say (unique names and addresses, valid IPv4,
ordered port ranges). Every error is a `TopologyError` that names the file,
line and column of the offending value.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netsim.api import HostAddress, Proto
from netsim.core.impairments import ImpairmentError, LinkSpec
from netsim.yamldoc import (
    LocatedError,
    Locator,
    compose,
    first_schema_error,
    read_source,
    schema_message,
)

if TYPE_CHECKING:
    import jsonschema

DEFAULT_HOST_MTU = 1500


class TopologyError(LocatedError):
    """A topology file is unreadable or invalid; names file, line and column."""


@dataclass(frozen=True, slots=True)
class PortRange:
    proto: Proto
    lo: int
    hi: int

    def __str__(self) -> str:
        ports = str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"
        return f"{self.proto.value}/{ports}"

    def ports(self) -> range:
        return range(self.lo, self.hi + 1)


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    role: str
    ip: str
    mtu_bytes: int = DEFAULT_HOST_MTU
    ports: tuple[PortRange, ...] = ()

    @property
    def address(self) -> HostAddress:
        return HostAddress(self.name, self.role, self.ip)


@dataclass(frozen=True, slots=True)
class Topology:
    name: str
    hosts: tuple[HostSpec, ...]
    link_defaults: LinkSpec = field(default_factory=LinkSpec)
    source: str = "<memory>"

    def host(self, name: str) -> HostSpec:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host {name!r} in topology {self.name!r}")

    def host_by_ip(self, ip: str) -> HostSpec | None:
        return _by_ip(self.hosts).get(ip)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hosts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "links": self.link_defaults.to_dict(),
            "hosts": [
                {
                    "name": h.name,
                    "role": h.role,
                    "ip": h.ip,
                    "mtu_bytes": h.mtu_bytes,
                    "ports": [str(p) for p in h.ports],
                }
                for h in self.hosts
            ],
        }


@cache
def _by_ip(hosts: tuple[HostSpec, ...]) -> dict[str, HostSpec]:
    return {host.ip: host for host in hosts}


@cache
def topology_schema() -> dict[str, Any]:
    text = (Path(__file__).parent / "schema" / "topology.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_topology(path: str | Path) -> Topology:
    path = Path(path)
    return parse_topology(read_source(path, TopologyError), source=str(path))


def parse_topology(text: str | bytes, *, source: str = "<string>") -> Topology:
    node, data = compose(
        text, source, TopologyError, "file is empty; expected a mapping with version and hosts"
    )
    locate = Locator(node, source, TopologyError)
    found = first_schema_error(data, topology_schema())
    if found is not None:
        path, error = found
        where = "/".join(str(p) for p in path) or "top level"
        raise locate.error(path, f"{where}: {_schema_message(error)}")
    return _build(data, locate, source)


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "pattern" and error.absolute_path and error.absolute_path[-1] == "name":
        return f"{error.instance!r} is not a host name (lower-case letters, digits, '-')"
    return schema_message(error)


def _parse_port(text: str, locate: Locator, path: list[str | int]) -> PortRange:
    proto, _, ports = text.partition("/")
    lo_text, _, hi_text = ports.partition("-")
    lo = int(lo_text)
    hi = int(hi_text) if hi_text else lo
    if not 1 <= lo <= hi <= 65535:
        raise locate.error(path, f"port range {text!r} must satisfy 1 <= low <= high <= 65535")
    return PortRange(Proto(proto), lo, hi)


def _build(data: dict[str, Any], locate: Locator, source: str) -> Topology:
    services: dict[str, tuple[PortRange, ...]] = {
        role: tuple(
            _parse_port(text, locate, ["services", role, i]) for i, text in enumerate(ports)
        )
        for role, ports in data.get("services", {}).items()
    }
    names: set[str] = set()
    ips: dict[str, str] = {}
    hosts: list[HostSpec] = []
    for index, raw in enumerate(data["hosts"]):
        name, ip = raw["name"], raw["ip"]
        if name in names:
            raise locate.error(["hosts", index, "name"], f"duplicate host name {name!r}")
        names.add(name)
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError as exc:
            raise locate.error(["hosts", index, "ip"], f"{ip!r} is not an IPv4 address") from exc
        if address.is_unspecified or address.is_multicast or ip.endswith(".255"):
            raise locate.error(["hosts", index, "ip"], f"{ip} cannot be a host address")
        if ip in ips:
            raise locate.error(
                ["hosts", index, "ip"], f"address {ip} is already used by host {ips[ip]!r}"
            )
        ips[ip] = name
        own = tuple(
            _parse_port(text, locate, ["hosts", index, "ports", i])
            for i, text in enumerate(raw.get("ports", []))
        )
        hosts.append(
            HostSpec(
                name=name,
                role=raw["role"],
                ip=ip,
                mtu_bytes=raw.get("mtu_bytes", DEFAULT_HOST_MTU),
                ports=services.get(raw["role"], ()) + own,
            )
        )
    try:
        links = LinkSpec.from_changes(LinkSpec(), data.get("links", {}))
    except ImpairmentError as exc:
        raise locate.error(["links"], f"links: {exc}") from exc
    return Topology(
        name=data.get("name", Path(source).stem),
        hosts=tuple(hosts),
        link_defaults=links,
        source=source,
    )
