"""The REST control API of a world (netsim.control) and its client, on loopback.

Every answer is checked against the schema the OpenAPI document gives for its
route and status, so the document and the code cannot drift apart.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from emulator.paths import DEFAULT_TOPOLOGY
from netsim.api import Proto
from netsim.control import (
    OPENAPI,
    ControlClient,
    ControlError,
    ControlUnreachable,
    make_app,
)
from netsim.core.impairments import ImpairmentTable, LinkSpec
from netsim.topology import Topology, load_topology
from netsim.world import IMPAIRMENTS, Capability, NullBackend, Support, World

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(DEFAULT_TOPOLOGY)


def make_world(topology: Topology, backend: Any = None) -> World:
    ticks = itertools.count()
    return World(topology, seed=7, now=lambda: float(next(ticks)), backend=backend)


@pytest.fixture
def world(topology: Topology) -> World:
    return make_world(topology)


Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(world: World) -> AsyncIterator[Client]:
    async with TestClient(TestServer(make_app(world), host="127.0.0.1")) as test_client:
        yield test_client


# ------------------------------------------------------------------- helpers
def _template(path: str) -> str:
    for template in OPENAPI["paths"]:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
        if re.fullmatch(pattern, path):
            return str(template)
    raise AssertionError(f"{path} matches no path of the OpenAPI document")


def check_documented(method: str, path: str, status: int, body: Any) -> None:
    """`body` is valid for the schema the document gives (method, path, status)."""
    operation = OPENAPI["paths"][_template(path.split("?")[0])][method.lower()]
    response = operation["responses"].get(str(status))
    assert response is not None, f"{method} {path} answered undocumented status {status}"
    schema = response["content"]["application/json"]["schema"]
    jsonschema.validate(
        body,
        {**schema, "components": OPENAPI["components"]},
        cls=jsonschema.Draft202012Validator,
    )


async def call(
    client: Client,
    method: str,
    path: str,
    *,
    body: Any = None,
    raw: bytes | str | None = None,
    status: int = 200,
) -> Any:
    data = raw if raw is not None else (None if body is None else json.dumps(body))
    async with client.request(method, path, data=data) as response:
        payload = await response.json()
        assert response.status == status, payload
        assert response.content_type == "application/json"
    check_documented(method, path, status, payload)
    return payload


class ExposingBackend(NullBackend):
    """A backend that exposes ports (as the proxy backend does), recording the calls."""

    name = "exposing"

    def __init__(self, error: Exception | None = None) -> None:
        self.exposed: list[tuple[str, Proto, int]] = []
        self.error = error

    async def expose(self, host: str, proto: Proto, port: int) -> None:
        if self.error is not None:
            raise self.error
        self.exposed.append((host, proto, port))


class NoPartitionBackend(NullBackend):
    name = "nopart"

    def capabilities(self) -> dict[str, Capability]:
        caps = super().capabilities()
        caps["partition"] = Capability(Support.UNAVAILABLE, "no partitions here")
        return caps


class RefusingBackend(NullBackend):
    """Refuses any table with a firewall rule, as a backend failing to install it would."""

    name = "refusing"

    def apply(self, table: ImpairmentTable) -> None:
        if table.firewall:
            raise RuntimeError("nft exited with status 1")


# --------------------------------------------------------------- happy paths
async def test_get_world_capabilities_links_and_openapi(client: Client, world: World) -> None:
    assert await call(client, "GET", "/api/world") == json.loads(json.dumps(world.show()))
    caps = await call(client, "GET", "/api/capabilities")
    assert set(caps) == set(IMPAIRMENTS)
    links = await call(client, "GET", "/api/links")
    assert links == {"default": LinkSpec().to_dict(), "links": []}
    assert await call(client, "GET", "/api/openapi.json") == OPENAPI


async def test_put_link_answers_the_new_spec(client: Client, world: World) -> None:
    """A path MTU set over the API is what the table enforces (G-R14)."""
    link = await call(
        client,
        "PUT",
        "/api/links/conductor-2/conductor-3",
        body={"latency_ms": 20, "mtu_bytes": 1300, "rate_kbit": None},
    )
    assert link == {
        "src": "conductor-2",
        "dst": "conductor-3",
        **LinkSpec(latency_ms=20.0, mtu_bytes=1300).to_dict(),
    }
    assert world.table.spec("conductor-2", "conductor-3").mtu_bytes == 1300
    assert world.table.spec("conductor-3", "conductor-2") == LinkSpec()
    links = await call(client, "GET", "/api/links")
    assert [(x["src"], x["dst"]) for x in links["links"]] == [("conductor-2", "conductor-3")]


async def test_put_link_both_directions_then_clear(client: Client, world: World) -> None:
    await call(client, "PUT", "/api/links/vcs/mcu", body={"loss": 0.25, "down": True, "both": True})
    assert world.table.spec("mcu", "vcs") == LinkSpec(loss=0.25, down=True)
    cleared = await call(client, "DELETE", "/api/links/vcs/mcu")
    assert cleared == {"src": "vcs", "dst": "mcu", **LinkSpec().to_dict()}
    assert world.table.spec("mcu", "vcs").loss == 0.25  # only one direction cleared
    await call(client, "DELETE", "/api/links/vcs/mcu?both=true")
    assert world.table.links == {}


async def test_partition_heal_and_reset(client: Client, world: World) -> None:
    state = await call(
        client,
        "POST",
        "/api/partition",
        body={"groups": [["conductor-initial", "conductor-2"], ["conductor-3"]]},
    )
    assert state["partition"] == [["conductor-2", "conductor-initial"], ["conductor-3"]]
    assert world.table.partitioned("conductor-2", "conductor-3")
    await call(client, "PUT", "/api/links/vcs/mcu", body={"down": True, "latency_ms": 5})
    healed = await call(client, "POST", "/api/heal")
    assert healed["partition"] == []
    assert world.table.spec("vcs", "mcu") == LinkSpec(latency_ms=5.0)
    await call(client, "PUT", "/api/clock/vcs", body={"offset_s": 3})
    reset = await call(client, "POST", "/api/reset", raw="{}")
    assert reset["links"] == []
    assert reset["clock_offsets"] == {}
    assert world.table.links == {}


async def test_firewall_add_list_remove(client: Client, world: World) -> None:
    """Blocking the cluster ports (UDP 4369-4380) is one call (G-R6)."""
    first = await call(
        client,
        "POST",
        "/api/firewall",
        body={"proto": "udp", "ports": "4369-4380", "dst": "conductor-3"},
        status=201,
    )
    assert first == {
        "id": 1,
        "proto": "udp",
        "port_lo": 4369,
        "port_hi": 4380,
        "action": "drop",
        "src": "*",
        "dst": "conductor-3",
    }
    second = await call(
        client,
        "POST",
        "/api/firewall",
        body={"proto": "tcp", "ports": 8443, "action": "reject"},
        status=201,
    )
    third = await call(
        client, "POST", "/api/firewall", body={"proto": "any", "ports": [500, 501]}, status=201
    )
    assert (second["port_lo"], second["port_hi"]) == (8443, 8443)
    assert (third["port_lo"], third["port_hi"]) == (500, 501)
    listed = await call(client, "GET", "/api/firewall")
    assert [rule["id"] for rule in listed["rules"]] == [1, 2, 3]
    removed = await call(client, "DELETE", "/api/firewall/2")
    assert removed == {"removed": second}
    assert [rule.id for rule in world.table.firewall] == [1, 3]


async def test_clock_offset(client: Client, world: World) -> None:
    """Clock skew between peers is set per host (G-R3)."""
    answer = await call(client, "PUT", "/api/clock/conductor-3", body={"offset_s": -30.5})
    assert answer == {"host": "conductor-3", "offset_s": -30.5}
    assert world.table.clock_offset_s("conductor-3") == -30.5


async def test_trace_has_sequence_numbers(client: Client) -> None:
    await call(client, "PUT", "/api/clock/vcs", body={"offset_s": 1})
    await call(client, "POST", "/api/heal")
    page = await call(client, "GET", "/api/trace")
    assert [(e["seq"], e["kind"]) for e in page["events"]] == [(0, "clock"), (1, "heal")]
    assert page["events"][0]["host"] == "vcs"
    assert page["next"] == 2
    assert page["dropped"] == 0
    assert (await call(client, "GET", "/api/trace?since=1"))["events"][0]["seq"] == 1
    assert (await call(client, "GET", "/api/trace?since=2"))["events"] == []
    assert (await call(client, "GET", "/api/trace?since=99"))["events"] == []


async def test_expose_port_calls_the_backend(topology: Topology) -> None:
    backend = ExposingBackend()
    world = make_world(topology, backend)
    async with TestClient(TestServer(make_app(world), host="127.0.0.1")) as client:
        answer = await call(
            client, "POST", "/api/hosts/vcs/ports", body={"proto": "udp", "port": 5060}
        )
    assert answer == {"host": "vcs", "proto": "udp", "port": 5060}
    assert backend.exposed == [("vcs", Proto.UDP, 5060)]


# ------------------------------------------------------------- 409 answers
async def test_expose_on_a_backend_without_expose_is_409(client: Client, world: World) -> None:
    before = world.show()
    answer = await call(
        client, "POST", "/api/hosts/vcs/ports", body={"proto": "tcp", "port": 8443}, status=409
    )
    assert "null backend does not expose ports" in answer["error"]
    assert world.show() == before


async def test_expose_failure_is_409(topology: Topology) -> None:
    world = make_world(topology, ExposingBackend(OSError(98, "Address already in use")))
    async with TestClient(TestServer(make_app(world), host="127.0.0.1")) as client:
        answer = await call(
            client, "POST", "/api/hosts/vcs/ports", body={"proto": "tcp", "port": 80}, status=409
        )
    assert "could not expose tcp/80 on vcs" in answer["error"]
    assert "Address already in use" in answer["error"]


async def test_unsupported_impairment_is_409_and_changes_nothing(topology: Topology) -> None:
    world = make_world(topology, NoPartitionBackend())
    before = world.show()
    async with TestClient(TestServer(make_app(world), host="127.0.0.1")) as client:
        answer = await call(
            client, "POST", "/api/partition", body={"groups": [["vcs"]]}, status=409
        )
    assert answer["error"] == "the nopart backend cannot apply partition: no partitions here"
    assert world.show() == before


async def test_backend_refusal_is_409_and_rolled_back(topology: Topology) -> None:
    world = make_world(topology, RefusingBackend())
    async with TestClient(TestServer(make_app(world), host="127.0.0.1")) as client:
        answer = await call(
            client, "POST", "/api/firewall", body={"proto": "udp", "ports": 500}, status=409
        )
    assert "refusing backend could not apply it: nft exited with status 1" in answer["error"]
    assert world.table.firewall == []


# ----------------------------------------------------------- bad input: 4xx
HUGE_INT = "1" + "0" * 400

BAD_REQUESTS: list[tuple[str, str, bytes | str | None, int, str]] = [
    # (method, path, raw body, status, fragment of the error message)
    ("PUT", "/api/links/vcs/mcu", "{", 400, "not valid JSON"),
    ("PUT", "/api/links/vcs/mcu", "", 400, "not valid JSON"),
    ("PUT", "/api/links/vcs/mcu", b"\xff\xfe", 400, "not UTF-8"),
    ("PUT", "/api/links/vcs/mcu", "[1, 2]", 400, "must be a JSON object, got list"),
    ("PUT", "/api/links/vcs/mcu", "{}", 400, "nothing to change"),
    ("PUT", "/api/links/vcs/mcu", '{"both": true}', 400, "nothing to change"),
    ("PUT", "/api/links/vcs/mcu", '{"latncy_ms": 5}', 400, "unknown field 'latncy_ms'"),
    ("PUT", "/api/links/vcs/mcu", '{"latency_ms": "20"}', 400, "latency_ms must be a number"),
    ("PUT", "/api/links/vcs/mcu", '{"latency_ms": -1}', 400, "between 0 and 60000"),
    ("PUT", "/api/links/vcs/mcu", '{"latency_ms": 1e400}', 400, "finite"),
    ("PUT", "/api/links/vcs/mcu", '{"jitter_ms": ' + HUGE_INT + "}", 400, "out of range"),
    ("PUT", "/api/links/vcs/mcu", '{"loss": 2}', 400, "loss must be between 0 and 1"),
    ("PUT", "/api/links/vcs/mcu", '{"loss": NaN}', 400, "NaN is not a JSON number"),
    ("PUT", "/api/links/vcs/mcu", '{"loss": true}', 400, "loss must be a number"),
    ("PUT", "/api/links/vcs/mcu", '{"mtu_bytes": 1300.5}', 400, "mtu_bytes must be an integer"),
    ("PUT", "/api/links/vcs/mcu", '{"mtu_bytes": 40}', 400, "between 68 and 65535"),
    ("PUT", "/api/links/vcs/mcu", '{"rate_kbit": 0}', 400, "rate_kbit must be between"),
    ("PUT", "/api/links/vcs/mcu", '{"down": 1}', 400, "down must be true or false"),
    ("PUT", "/api/links/vcs/mcu", '{"loss": 0.1, "both": "y"}', 400, "both must be true"),
    ("PUT", "/api/links/vcs/mcu?both=true", '{"loss": 0.1}', 400, "unknown query parameter"),
    ("PUT", "/api/links/vcs/vcs", '{"loss": 0.1}', 400, "same host"),
    ("PUT", "/api/links/nope/mcu", '{"loss": 0.1}', 404, "unknown host 'nope'"),
    ("PUT", "/api/links/vcs/nope", '{"loss": 0.1}', 404, "unknown host 'nope'"),
    ("DELETE", "/api/links/nope/mcu", None, 404, "unknown host 'nope'"),
    ("DELETE", "/api/links/vcs/mcu?both=maybe", None, 400, "both must be true or false"),
    ("DELETE", "/api/links/vcs/mcu?bth=1", None, 400, "unknown query parameter 'bth'"),
    ("POST", "/api/partition", "{}", 400, "missing field 'groups'"),
    ("POST", "/api/partition", '{"groups": "vcs"}', 400, "list of lists of host names"),
    ("POST", "/api/partition", '{"groups": [["vcs", 1]]}', 400, "list of lists of host names"),
    ("POST", "/api/partition", '{"groups": []}', 400, "at least one non-empty group"),
    ("POST", "/api/partition", '{"groups": [[]]}', 400, "at least one non-empty group"),
    ("POST", "/api/partition", '{"groups": [["nope"]]}', 400, "unknown host 'nope'"),
    ("POST", "/api/partition", '{"groups": [["vcs"], ["vcs"]]}', 400, "more than one group"),
    ("POST", "/api/heal", '{"now": true}', 400, "unknown field 'now'"),
    ("POST", "/api/reset", "[]", 400, "must be a JSON object"),
    ("POST", "/api/firewall", '{"ports": 500}', 400, "missing field 'proto'"),
    ("POST", "/api/firewall", '{"proto": "udp"}', 400, "missing field 'ports'"),
    ("POST", "/api/firewall", '{"proto": "icmp", "ports": 5}', 400, "udp, tcp or any"),
    ("POST", "/api/firewall", '{"proto": 17, "ports": 5}', 400, "proto must be a string"),
    ("POST", "/api/firewall", '{"proto": "udp", "ports": "abc"}', 400, "N or LOW-HIGH"),
    ("POST", "/api/firewall", '{"proto": "udp", "ports": 0}', 400, "integer 1-65535"),
    ("POST", "/api/firewall", '{"proto": "udp", "ports": 70000}', 400, "integer 1-65535"),
    ("POST", "/api/firewall", '{"proto": "udp", "ports": "9-5"}', 400, "is empty"),
    ("POST", "/api/firewall", '{"proto": "udp", "ports": [5]}', 400, "[low, high]"),
    ("POST", "/api/firewall", '{"proto": "udp", "ports": [5, "6"]}', 400, "must be an integer"),
    ("POST", "/api/firewall", '{"proto": "udp", "ports": true}', 400, "must be an integer"),
    ("POST", "/api/firewall", '{"proto": "udp", "ports": 5, "action": "allow"}', 400, "drop or"),
    ("POST", "/api/firewall", '{"proto": "udp", "ports": 5, "src": "nope"}', 400, "'nope'"),
    ("POST", "/api/firewall", '{"proto": "udp", "ports": 5, "to": "vcs"}', 400, "'to'"),
    ("DELETE", "/api/firewall/abc", None, 400, "rule id is an integer"),
    ("DELETE", "/api/firewall/99", None, 404, "no firewall rule with id 99"),
    ("PUT", "/api/clock/nope", '{"offset_s": 1}', 404, "unknown host 'nope'"),
    ("PUT", "/api/clock/vcs", "{}", 400, "missing field 'offset_s'"),
    ("PUT", "/api/clock/vcs", '{"offset_s": "1"}', 400, "offset_s must be a number"),
    ("PUT", "/api/clock/vcs", '{"offset_s": 1e12}', 400, "within +-10 years"),
    ("PUT", "/api/clock/vcs", '{"offset_s": ' + HUGE_INT + "}", 400, "out of range"),
    ("GET", "/api/trace?since=-1", None, 400, "non-negative integer"),
    ("GET", "/api/trace?since=abc", None, 400, "non-negative integer"),
    ("GET", "/api/world?verbose=1", None, 400, "unknown query parameter 'verbose'"),
    ("POST", "/api/hosts/nope/ports", '{"proto": "udp", "port": 5}', 404, "unknown host"),
    ("POST", "/api/hosts/vcs/ports", '{"proto": "sctp", "port": 5}', 400, "udp or tcp"),
    ("POST", "/api/hosts/vcs/ports", '{"proto": "udp", "port": 0}', 400, "1-65535"),
    ("POST", "/api/hosts/vcs/ports", '{"proto": "udp"}', 400, "missing field 'port'"),
]


@pytest.mark.parametrize(
    ("method", "path", "raw", "status", "fragment"),
    BAD_REQUESTS,
    ids=[f"{m} {p} {r!r}"[:80] for m, p, r, _, _ in BAD_REQUESTS],
)
async def test_bad_input_is_4xx_with_a_message_and_changes_nothing(
    client: Client,
    world: World,
    method: str,
    path: str,
    raw: bytes | str | None,
    status: int,
    fragment: str,
) -> None:
    world.firewall_add("tcp", 8443)  # something to leave untouched
    before = world.show()
    answer = await call(client, method, path, raw=raw, status=status)
    assert fragment in answer["error"]
    assert world.show() == before


async def test_unknown_endpoint_and_method_answer_json(client: Client) -> None:
    async with client.get("/api/nope") as response:
        assert response.status == 404
        assert "no endpoint /api/nope" in (await response.json())["error"]
    async with client.post("/api/world") as response:
        assert response.status == 405
        assert (await response.json())["error"] == "POST is not allowed on /api/world"


# ---------------------------------------------------------------- hypothesis
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def json_objects(
    fields: tuple[str, ...],
    near_valid: dict[str, st.SearchStrategy[Any]],
    required: tuple[str, ...] = (),
) -> st.SearchStrategy[Any]:
    """Objects close to valid (each field optional, values around the limits), objects
    with the endpoint's field names and arbitrary values, and anything at all."""
    keys = st.sampled_from(fields) | st.text(max_size=10)
    plausible = st.sampled_from(PLAUSIBLE)
    close = st.fixed_dictionaries(
        {name: near_valid[name] for name in required},
        optional={k: v for k, v in near_valid.items() if k not in required},
    )
    return close | st.dictionaries(keys, JSON_VALUES | plausible, max_size=5) | JSON_VALUES


PLAUSIBLE: list[Any] = [0, 1, 0.5, 20, 1300, True, None, "udp", "drop", "*", "vcs", [500, 501]]
FRACTION = st.floats(min_value=-0.1, max_value=1.1)
MILLISECONDS = st.floats(min_value=-1, max_value=70_000) | st.integers(-1, 70_000)
PORT = st.integers(min_value=-1, max_value=65536)
HOST = st.sampled_from(["vcs", "mcu", "conductor-2", "*", "nope"])
LINK_FIELDS = (*LinkSpec.FIELDS, "both")
NEAR_VALID_LINK: dict[str, st.SearchStrategy[Any]] = {
    "latency_ms": MILLISECONDS,
    "jitter_ms": MILLISECONDS,
    "loss": FRACTION,
    "duplicate": FRACTION,
    "reorder": FRACTION,
    "reorder_gap_ms": MILLISECONDS,
    "rate_kbit": st.none() | st.floats(min_value=0, max_value=1e9),
    "mtu_bytes": st.none() | st.integers(min_value=60, max_value=70_000),
    "down": st.booleans(),
    "both": st.booleans(),
}
FIREWALL_FIELDS = ("proto", "ports", "action", "src", "dst")
NEAR_VALID_FIREWALL: dict[str, st.SearchStrategy[Any]] = {
    "proto": st.sampled_from(["udp", "tcp", "any", "icmp"]),
    "ports": PORT
    | st.lists(PORT, min_size=1, max_size=3)
    | st.tuples(PORT, PORT).map(lambda p: f"{p[0]}-{p[1]}"),
    "action": st.sampled_from(["drop", "reject", "allow"]),
    "src": HOST,
    "dst": HOST,
}


def _encode(body: Any) -> str:
    return json.dumps(body)  # NaN and Infinity come out as the non-JSON tokens


def _unchanged_unless_ok(status: int, before: dict[str, Any], world: World) -> None:
    event(f"status {status}")
    assert status < 500
    if status >= 400:
        assert world.show() == before


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_objects(LINK_FIELDS, NEAR_VALID_LINK))
async def test_any_json_body_for_put_link_is_never_5xx(
    client: Client, world: World, body: Any
) -> None:
    before = world.show()
    async with client.put("/api/links/conductor-2/vcs", data=_encode(body)) as response:
        status = response.status
        payload = await response.json()
    _unchanged_unless_ok(status, before, world)
    check_documented("PUT", "/api/links/conductor-2/vcs", status, payload)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_objects(FIREWALL_FIELDS, NEAR_VALID_FIREWALL, ("proto", "ports")))
async def test_any_json_body_for_post_firewall_is_never_5xx(
    client: Client, world: World, body: Any
) -> None:
    before = world.show()
    async with client.post("/api/firewall", data=_encode(body)) as response:
        status = response.status
        payload = await response.json()
    _unchanged_unless_ok(status, before, world)
    check_documented("POST", "/api/firewall", status, payload)


# ------------------------------------------------------------------- OpenAPI
def test_openapi_describes_every_route_and_nothing_else(world: World) -> None:
    app = make_app(world)
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    assert len(routes) == len(app.router.routes())
    documented = {
        (method.upper(), path)
        for path, item in OPENAPI["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert routes == documented


def test_openapi_document_is_well_formed() -> None:
    assert OPENAPI["openapi"].startswith("3.1")
    schemas = OPENAPI["components"]["schemas"]
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    text = json.dumps(OPENAPI)
    for name in re.findall(r'"#/components/schemas/([^"]+)"', text):
        assert name in schemas, f"dangling $ref to {name}"
    operation_ids = []
    for path, item in OPENAPI["paths"].items():
        in_path = set(re.findall(r"\{([^}]+)\}", path))
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert in_path == declared, path
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            operation_ids.append(operation["operationId"])
            assert operation["responses"], (method, path)
            for response in operation["responses"].values():
                assert response["description"]
    assert len(operation_ids) == len(set(operation_ids))


# -------------------------------------------------------------------- client
@pytest.fixture
async def control(client: Client) -> AsyncIterator[ControlClient]:
    async with ControlClient(str(client.make_url(""))) as control_client:
        yield control_client


async def test_client_has_a_method_per_endpoint(control: ControlClient, world: World) -> None:
    assert (await control.world())["backend"] == "null"
    assert (await control.capabilities())["loss"]["support"] == "userspace"
    link = await control.impair("vcs", "mcu", both=True, latency_ms=10, down=True)
    assert link["latency_ms"] == 10.0
    assert link["down"] is True
    assert len((await control.links())["links"]) == 2
    await control.clear("vcs", "mcu", both=True)
    assert world.table.links == {}
    state = await control.partition(["vcs"], ["mcu"])
    assert state["partition"] == [["vcs"], ["mcu"]]
    assert (await control.heal())["partition"] == []
    rule = await control.firewall_add("udp", (4369, 4380), src="conductor-2")
    assert [r["id"] for r in await control.firewall_list()] == [rule["id"]]
    assert (await control.firewall_remove(rule["id"]))["removed"] == rule
    assert (await control.set_clock_offset("vcs", 12.5))["offset_s"] == 12.5
    assert (await control.reset())["clock_offsets"] == {}
    kinds = [e["kind"] for e in (await control.trace())["events"]]
    assert kinds[0] == "impair"
    assert kinds[-1] == "reset"
    assert (await control.openapi())["openapi"].startswith("3.1")
    with pytest.raises(ControlError) as excinfo:
        await control.expose("vcs", "udp", 5)
    assert excinfo.value.status == 409


async def test_client_raises_control_error_with_status_and_message(
    control: ControlClient,
) -> None:
    with pytest.raises(ControlError) as excinfo:
        await control.impair("vcs", "mcu", loss=2)
    assert excinfo.value.status == 400
    assert excinfo.value.message == "loss must be between 0 and 1, got 2.0"
    with pytest.raises(ControlError) as excinfo:
        await control.impair("a/b?c", "mcu", loss=0.5)  # quoted: one path segment
    assert excinfo.value.status == 404
    assert "unknown host 'a/b?c'" in excinfo.value.message
    with pytest.raises(ControlError) as excinfo:
        await control.firewall_remove(41)
    assert excinfo.value.status == 404


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_client_reports_an_unreachable_world() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    async with ControlClient(url) as control_client:
        with pytest.raises(ControlUnreachable) as excinfo:
            await control_client.world()
    assert excinfo.value.status == 0
    assert url in excinfo.value.message
