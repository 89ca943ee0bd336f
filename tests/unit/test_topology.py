"""Topology files: the default mirrors the deployment guide; every bad file gets a clear error
naming its file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from netsim.api import Proto
from netsim.topology import Topology, TopologyError, load_topology, parse_topology

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "scenarios" / "topologies" / "default.yaml"

GOOD = """\
version: 1
services:
  conductor: [tcp/8443, udp/4369-4380]
hosts:
  - {name: a, role: conductor, ip: 127.9.0.1}
  - {name: b, role: vcs, ip: 127.9.0.2, mtu_bytes: 1300, ports: [udp/5060]}
"""


def test_default_topology_mirrors_the_deployment_guide() -> None:
    topology = load_topology(DEFAULT)
    assert {h.name: h.ip for h in topology.hosts} == {
        "conductor-initial": "127.1.2.4",
        "conductor-2": "127.1.2.32",
        "conductor-3": "127.1.2.33",
        "vcs": "127.1.2.10",
        "telepresence-server": "127.1.3.10",
        "mcu": "127.1.3.11",
    }
    initial = topology.host("conductor-initial")
    assert initial.role == "conductor"
    assert {str(p) for p in initial.ports} >= {"tcp/8443", "udp/500", "udp/1719", "udp/4369-4380"}


def test_services_apply_per_role_and_hosts_add_their_own_ports() -> None:
    topology = parse_topology(GOOD)
    a, b = topology.hosts
    assert [str(p) for p in a.ports] == ["tcp/8443", "udp/4369-4380"]
    assert [str(p) for p in b.ports] == ["udp/5060"]
    assert b.mtu_bytes == 1300
    assert a.mtu_bytes == 1500
    assert a.ports[1].proto is Proto.UDP
    assert list(a.ports[1].ports())[-1] == 4380
    assert topology.host_by_ip("127.9.0.2") == b


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version: 1\nhosts: [\n", 3, "invalid YAML"),
        ("", 1, "file is empty"),
        ("- a\n", 1, "is not of type 'object'"),
        ("version: 2\nhosts: []\n", 1, "version"),
        ("version: 1\nhosts:\n  - {name: a, role: router, ip: 127.0.0.2}\n", 3, "router"),
        ("version: 1\nhosts:\n  - {name: A!, role: vcs, ip: 127.0.0.2}\n", 3, "not a host name"),
        ("version: 1\nhosts:\n  - {name: a, role: vcs, ip: 127.0.0.300}\n", 3, "not an IPv4"),
        ("version: 1\nhosts:\n  - {name: a, role: vcs, ip: 0.0.0.0}\n", 3, "cannot be a host"),
        (
            "version: 1\nhosts:\n  - {name: a, role: vcs, ip: 127.0.0.2}\n"
            "  - {name: b, role: vcs, ip: 127.0.0.2}\n",
            4,
            "already used by host 'a'",
        ),
        (
            "version: 1\nhosts:\n  - {name: a, role: vcs, ip: 127.0.0.2}\n"
            "  - {name: a, role: vcs, ip: 127.0.0.3}\n",
            4,
            "duplicate host name",
        ),
        ("version: 1\nversion: 1\nhosts: []\n", 2, "duplicate key 'version'"),
        ("version: 1\n1: x\nhosts: []\n", 2, "keys must be plain strings"),
        (
            "version: 1\nhosts:\n  - {name: a, role: vcs, ip: 127.0.0.2, colour: red}\n",
            3,
            "unknown key",
        ),
        (
            "version: 1\nservices:\n  vcs: [udp/90-80]\n"
            "hosts:\n  - {name: a, role: vcs, ip: 127.0.0.2}\n",
            3,
            "low <= high",
        ),
        ("version: 1\nlinks: {loss: 3}\nhosts: [{name: a, role: vcs, ip: 127.0.0.2}]\n", 2, "loss"),
        ("version: 1\nx: &a [1]\ny: *a\nhosts: []\n", 2, "aliases"),
    ],
)
def test_bad_files_name_file_line_and_problem(text: str, line: int, message: str) -> None:
    with pytest.raises(TopologyError) as caught:
        parse_topology(text, source="lab.yaml")
    error = caught.value
    assert message in str(error)
    assert str(error).startswith("lab.yaml:")
    assert error.line == line


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read file"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"version: 1\nhosts: \xff\n")
    with pytest.raises(TopologyError, match="not UTF-8"):
        load_topology(bad)


def parse_or_error(text: str, source: str) -> Topology | TopologyError:
    """Anything but a Topology or a TopologyError escapes and fails the test."""
    try:
        return parse_topology(text, source=source)
    except TopologyError as error:
        return error


@given(st.text(max_size=400))
def test_any_text_loads_or_gives_a_clear_error(text: str) -> None:
    result = parse_or_error(text, "fuzz.yaml")
    if isinstance(result, TopologyError):
        assert str(result).startswith("fuzz.yaml")
        assert result.message


_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.floats(), st.text(max_size=12)
)
_host = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(["a", "b", "conductor-2"]), _scalar),
        "role": st.one_of(st.sampled_from(["conductor", "vcs", "mcu"]), _scalar),
        "ip": st.one_of(st.sampled_from(["127.0.0.2", "127.0.0.3", "10.0.0.300"]), _scalar),
        "mtu_bytes": _scalar,
        "ports": st.lists(st.one_of(st.sampled_from(["udp/1-2", "tcp/8443", "udp/9-1"]), _scalar)),
    },
)
_document = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), _scalar),
        "name": _scalar,
        "links": st.one_of(
            st.dictionaries(st.sampled_from(["loss", "latency_ms", "mtu_bytes", "x"]), _scalar),
            _scalar,
        ),
        "services": st.one_of(
            st.dictionaries(
                st.sampled_from(["conductor", "vcs", "router"]),
                st.lists(st.one_of(st.sampled_from(["tcp/1", "udp/5-4"]), _scalar), max_size=3),
            ),
            _scalar,
        ),
        "hosts": st.one_of(st.lists(_host, max_size=4), _scalar),
    },
)


@given(_document)
def test_any_structured_document_loads_or_gives_a_clear_error(document: dict[str, object]) -> None:
    result = parse_or_error(yaml.safe_dump(document), "gen.yaml")
    if isinstance(result, TopologyError):
        assert str(result).startswith("gen.yaml")
        assert result.line is None or result.line >= 1
    else:
        topology = result
        assert len({h.name for h in topology.hosts}) == len(topology.hosts)
        assert len({h.ip for h in topology.hosts}) == len(topology.hosts)
