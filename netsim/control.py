"""The REST control API of a world, and a small client for it.

`make_app(world)` serves JSON under `/api/`: the world's state, link
impairments, partitions, firewall rules, clock offsets, the event trace and
port exposure, plus a hand-maintained OpenAPI 3.1 document (`OPENAPI`) that
describes every route (a test keeps the two in step).

Invariants:
- bad input never answers 5xx: malformed JSON, wrong types, unknown fields and
  out-of-range values answer 400, an unknown host in the path or an unknown
  firewall rule id 404, and what the backend cannot do 409 -- always as
  `{"error": "<message>"}`, and always with nothing changed;
- handlers are thin: they check the shape of the request and call the
  `World` Python API, which validates values, applies and records the change.

`ControlClient` is what `tplab net ...` uses; it raises `ControlError` (and
`ControlUnreachable` when no world answers).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn
from urllib.parse import quote

import aiohttp
from aiohttp import web

from netsim.api import Proto
from netsim.core.impairments import ImpairmentError, LinkSpec
from netsim.world import ImpairmentUnsupported, World

WORLD = web.AppKey("world", World)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_INTEGER_FIELDS = frozenset({"mtu_bytes"})
_NULLABLE_FIELDS = frozenset({"rate_kbit", "mtu_bytes"})


class ApiError(Exception):
    """An error answer: HTTP status and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _bad(message: str) -> NoReturn:
    raise ApiError(400, message)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda obj: json.dumps(obj, default=str, allow_nan=True)
    )


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status=status)


# ------------------------------------------------------------ request parsing
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def _body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if optional and not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        _bad(f"request body is not UTF-8: {exc.reason}")
    except (ValueError, RecursionError) as exc:
        _bad(f"request body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        _bad(f"request body must be a JSON object, got {type(data).__name__}")
    return data


def _fields(
    data: Mapping[str, Any], *, known: tuple[str, ...], required: tuple[str, ...] = ()
) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        _bad(f"unknown field {names}; known: {', '.join(known) or 'none'}")
    missing = [name for name in required if name not in data]
    if missing:
        _bad(f"missing field {', '.join(repr(name) for name in missing)}")


def _query(request: web.Request, known: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query) - set(known))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        _bad(f"unknown query parameter {names}; known: {', '.join(known) or 'none'}")


def _query_bool(request: web.Request, name: str) -> bool:
    text = request.query.get(name)
    if text is None:
        return False
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    _bad(f"{name} must be true or false, got {text!r}")


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _bad(f"{name} must be true or false, got {value!r}")
    return value


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        _bad(f"{name} must be a string, got {value!r}")
    return value


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _bad(f"{name} must be an integer, got {value!r}")
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _bad(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        _bad(f"{name} is out of range, got {value!r}")
    if not math.isfinite(number):
        _bad(f"{name} must be a finite number, got {value!r}")
    return number


def _link_changes(data: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in LinkSpec.FIELDS:
        if name not in data:
            continue
        value = data[name]
        if value is None and name in _NULLABLE_FIELDS:
            changes[name] = None
        elif name == "down":
            changes[name] = _boolean(name, value)
        elif name in _INTEGER_FIELDS:
            changes[name] = _integer(name, value)
        else:
            changes[name] = _number(name, value)
    return changes


def _host(world: World, name: str) -> str:
    if name not in world.topology.names:
        raise ApiError(404, f"unknown host {name!r}; hosts: {', '.join(world.topology.names)}")
    return name


def _link(world: World, src: str, dst: str) -> dict[str, Any]:
    return {"src": src, "dst": dst, **world.table.spec(src, dst).to_dict()}


# ------------------------------------------------------------------ handlers
async def get_world(request: web.Request) -> web.Response:
    _query(request, ())
    return _json(request.app[WORLD].show())


async def get_capabilities(request: web.Request) -> web.Response:
    _query(request, ())
    caps = request.app[WORLD].capabilities()
    return _json({name: cap.to_dict() for name, cap in caps.items()})


async def get_links(request: web.Request) -> web.Response:
    _query(request, ())
    snapshot = request.app[WORLD].table.snapshot()
    return _json({"default": snapshot["default"], "links": snapshot["links"]})


async def put_link(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    _query(request, ())
    src = _host(world, request.match_info["src"])
    dst = _host(world, request.match_info["dst"])
    data = await _body(request)
    _fields(data, known=(*LinkSpec.FIELDS, "both"))
    both = _boolean("both", data.get("both", False))
    world.impair(src, dst, both=both, **_link_changes(data))
    return _json(_link(world, src, dst))


async def delete_link(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    _query(request, ("both",))
    src = _host(world, request.match_info["src"])
    dst = _host(world, request.match_info["dst"])
    world.clear(src, dst, both=_query_bool(request, "both"))
    return _json(_link(world, src, dst))


async def post_partition(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    _query(request, ())
    data = await _body(request)
    _fields(data, known=("groups",), required=("groups",))
    groups = data["groups"]
    if not isinstance(groups, list) or not all(
        isinstance(group, list) and all(isinstance(host, str) for host in group) for group in groups
    ):
        _bad(f"groups must be a list of lists of host names, got {groups!r}")
    world.partition(*groups)
    return _json(world.show())


async def post_heal(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    _query(request, ())
    _fields(await _body(request, optional=True), known=())
    world.heal()
    return _json(world.show())


async def post_reset(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    _query(request, ())
    _fields(await _body(request, optional=True), known=())
    world.reset()
    return _json(world.show())


async def get_firewall(request: web.Request) -> web.Response:
    _query(request, ())
    return _json({"rules": [rule.to_dict() for rule in request.app[WORLD].table.firewall]})


async def post_firewall(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    _query(request, ())
    data = await _body(request)
    _fields(data, known=("proto", "ports", "action", "src", "dst"), required=("proto", "ports"))
    ports = data["ports"]
    parsed_ports: int | str | tuple[int, int]
    if isinstance(ports, list):
        if len(ports) != 2:
            _bad(f"ports as a list must be [low, high], got {ports!r}")
        parsed_ports = (_integer("ports[0]", ports[0]), _integer("ports[1]", ports[1]))
    elif isinstance(ports, str):
        parsed_ports = ports
    else:
        parsed_ports = _integer("ports", ports)
    rule = world.firewall_add(
        _string("proto", data["proto"]),
        parsed_ports,
        action=_string("action", data.get("action", "drop")),
        src=_string("src", data.get("src", "*")),
        dst=_string("dst", data.get("dst", "*")),
    )
    return _json(rule.to_dict(), status=201)


async def delete_firewall(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    _query(request, ())
    text = request.match_info["id"]
    try:
        rule_id = int(text)
    except ValueError:
        _bad(f"a firewall rule id is an integer, got {text!r}")
    for rule in world.table.firewall:
        if rule.id == rule_id:
            world.firewall_remove(rule_id)
            return _json({"removed": rule.to_dict()})
    raise ApiError(404, f"no firewall rule with id {rule_id}")


async def put_clock(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    _query(request, ())
    host = _host(world, request.match_info["host"])
    data = await _body(request)
    _fields(data, known=("offset_s",), required=("offset_s",))
    world.set_clock_offset(host, _number("offset_s", data["offset_s"]))
    return _json({"host": host, "offset_s": world.table.clock_offset_s(host)})


async def get_trace(request: web.Request) -> web.Response:
    trace = request.app[WORLD].trace
    _query(request, ("since",))
    text = request.query.get("since", "0")
    try:
        since = int(text)
    except ValueError:
        _bad(f"since must be a non-negative integer, got {text!r}")
    if since < 0:
        _bad(f"since must be a non-negative integer, got {text!r}")
    # sequence number = position among every event ever recorded (EventTrace.since)
    first = max(since, trace.total - len(trace))
    events = [
        {**event.to_dict(), "seq": first + index} for index, event in enumerate(trace.since(since))
    ]
    return _json({"events": events, "next": trace.total, "dropped": trace.dropped})


async def post_host_port(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    _query(request, ())
    host = _host(world, request.match_info["host"])
    data = await _body(request)
    _fields(data, known=("proto", "port"), required=("proto", "port"))
    proto_text = _string("proto", data["proto"])
    try:
        proto = Proto(proto_text)
    except ValueError:
        _bad(f"proto must be udp or tcp, got {proto_text!r}")
    port = _integer("port", data["port"])
    if not 1 <= port <= 65535:
        _bad(f"port must be an integer 1-65535, got {port}")
    expose = getattr(world.backend, "expose", None)
    if expose is None or not inspect.iscoroutinefunction(expose):
        raise ApiError(
            409,
            f"the {world.backend.name} backend does not expose ports: "
            "nodes already listen on their hosts' addresses",
        )
    where = f"{proto.value}/{port} on {host}"
    try:
        await expose(host, proto, port)
    except ValueError as exc:
        _bad(f"cannot expose {where}: {exc}")
    except OSError as exc:
        raise ApiError(
            409, f"the {world.backend.name} backend could not expose {where}: {exc}"
        ) from exc
    return _json({"host": host, "proto": proto.value, "port": port})


async def get_openapi(request: web.Request) -> web.Response:
    _query(request, ())
    return _json(OPENAPI)


# ---------------------------------------------------------------- the app
ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/api/world", get_world),
    ("GET", "/api/capabilities", get_capabilities),
    ("GET", "/api/links", get_links),
    ("PUT", "/api/links/{src}/{dst}", put_link),
    ("DELETE", "/api/links/{src}/{dst}", delete_link),
    ("POST", "/api/partition", post_partition),
    ("POST", "/api/heal", post_heal),
    ("POST", "/api/reset", post_reset),
    ("GET", "/api/firewall", get_firewall),
    ("POST", "/api/firewall", post_firewall),
    ("DELETE", "/api/firewall/{id}", delete_firewall),
    ("PUT", "/api/clock/{host}", put_clock),
    ("GET", "/api/trace", get_trace),
    ("POST", "/api/hosts/{host}/ports", post_host_port),
    ("GET", "/api/openapi.json", get_openapi),
)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    trace = request.app[WORLD].trace
    recorded = trace.total
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.message)
    except ImpairmentUnsupported as exc:
        return _error(409, str(exc))
    except ImpairmentError as exc:
        # a change the backend refused was rolled back: not the caller's input
        failed = any(event.kind == "impairment_failed" for event in trace.since(recorded))
        return _error(409 if failed else 400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            message = f"no endpoint {request.path}; see /api/openapi.json"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        else:
            message = exc.reason
        return _error(exc.status, message)


def make_app(world: World) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[WORLD] = world
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app


# ------------------------------------------------------------------ OpenAPI
def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": dict(schema)}}


def _ok(description: str, schema: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": _content(_ref(schema))}}


def _errors_doc(*statuses: str) -> dict[str, Any]:
    text = {
        "400": "Bad input (malformed JSON, wrong type, unknown field or query parameter, "
        "out-of-range value)",
        "404": "Unknown host in the path, or unknown firewall rule id",
        "409": "The backend cannot do this (the message says why)",
    }
    return {s: {"description": text[s], "content": _content(_ref("Error"))} for s in statuses}


def _body_doc(schema: str) -> dict[str, Any]:
    return {"required": True, "content": _content(_ref(schema))}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_HOST = {"type": "string", "description": "host name from the topology"}
_FLOAT_MS = {"type": "number", "minimum": 0, "maximum": 60_000}
_PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}
_LINK_FIELDS: dict[str, Any] = {
    "latency_ms": {**_FLOAT_MS, "description": "one-way delay added to every packet"},
    "jitter_ms": {**_FLOAT_MS, "description": "uniform random extra delay, 0..jitter_ms"},
    "loss": {**_PROBABILITY, "description": "probability a packet is dropped"},
    "duplicate": {**_PROBABILITY, "description": "probability a packet is sent twice"},
    "reorder": {**_PROBABILITY, "description": "probability a packet is held back"},
    "reorder_gap_ms": {**_FLOAT_MS, "description": "how long a reordered packet is held"},
    "rate_kbit": {
        "type": ["number", "null"],
        "minimum": 1,
        "maximum": 100_000_000,
        "description": "bandwidth limit; null = unlimited",
    },
    "mtu_bytes": {
        "type": ["integer", "null"],
        "minimum": 68,
        "maximum": 65535,
        "description": "path MTU (don't-fragment: bigger packets are dropped); null = none",
    },
    "down": {"type": "boolean", "description": "link down: every packet is dropped"},
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "LinkSpec": {
        "type": "object",
        "required": list(LinkSpec.FIELDS),
        "properties": _LINK_FIELDS,
        "additionalProperties": False,
    },
    "LinkChanges": {
        "type": "object",
        "description": "the impairments to change (at least one); the others keep their value",
        "properties": {
            **_LINK_FIELDS,
            "both": {"type": "boolean", "default": False, "description": "also dst -> src"},
        },
        "additionalProperties": False,
    },
    "Link": {
        "type": "object",
        "description": "the impairments of one direction src -> dst",
        "required": ["src", "dst", *LinkSpec.FIELDS],
        "properties": {"src": _HOST, "dst": _HOST, **_LINK_FIELDS},
        "additionalProperties": False,
    },
    "Links": {
        "type": "object",
        "required": ["default", "links"],
        "properties": {
            "default": _ref("LinkSpec"),
            "links": {
                "type": "array",
                "items": _ref("Link"),
                "description": "directions that differ from the default",
            },
        },
    },
    "Capability": {
        "type": "object",
        "required": ["support", "note"],
        "properties": {
            "support": {"enum": ["kernel", "userspace", "unavailable"]},
            "note": {"type": "string"},
        },
    },
    "Capabilities": {
        "type": "object",
        "description": "impairment name -> how this backend realises it",
        "additionalProperties": _ref("Capability"),
    },
    "Host": {
        "type": "object",
        "required": ["name", "role", "ip", "mtu_bytes", "ports"],
        "properties": {
            "name": {"type": "string"},
            "role": {"type": "string"},
            "ip": {"type": "string"},
            "mtu_bytes": {"type": "integer"},
            "ports": {"type": "array", "items": {"type": "string"}, "examples": [["udp/500"]]},
        },
    },
    "Topology": {
        "type": "object",
        "required": ["name", "source", "links", "hosts"],
        "properties": {
            "name": {"type": "string"},
            "source": {"type": "string"},
            "links": _ref("LinkSpec"),
            "hosts": {"type": "array", "items": _ref("Host")},
        },
    },
    "FirewallRule": {
        "type": "object",
        "required": ["id", "proto", "port_lo", "port_hi", "action", "src", "dst"],
        "properties": {
            "id": {"type": "integer"},
            "proto": {"enum": ["udp", "tcp", "any"]},
            "port_lo": {"type": "integer", "minimum": 1, "maximum": 65535},
            "port_hi": {"type": "integer", "minimum": 1, "maximum": 65535},
            "action": {"enum": ["drop", "reject"]},
            "src": {"type": "string", "description": "host name or * (any)"},
            "dst": {"type": "string", "description": "host name or * (any)"},
        },
    },
    "FirewallRuleRequest": {
        "type": "object",
        "required": ["proto", "ports"],
        "properties": {
            "proto": {"enum": ["udp", "tcp", "any"]},
            "ports": {
                "description": "destination port, 'LOW-HIGH', or [low, high]",
                "oneOf": [
                    {"type": "integer", "minimum": 1, "maximum": 65535},
                    {"type": "string", "pattern": r"^\s*\d+(-\d+)?\s*$"},
                    {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "minItems": 2,
                        "maxItems": 2,
                    },
                ],
            },
            "action": {"enum": ["drop", "reject"], "default": "drop"},
            "src": {"type": "string", "default": "*"},
            "dst": {"type": "string", "default": "*"},
        },
        "additionalProperties": False,
    },
    "FirewallRules": {
        "type": "object",
        "required": ["rules"],
        "properties": {"rules": {"type": "array", "items": _ref("FirewallRule")}},
    },
    "FirewallRemoved": {
        "type": "object",
        "required": ["removed"],
        "properties": {"removed": _ref("FirewallRule")},
    },
    "World": {
        "type": "object",
        "required": [
            "backend",
            "seed",
            "topology",
            "capabilities",
            "generation",
            "default",
            "links",
            "partition",
            "firewall",
            "clock_offsets",
        ],
        "properties": {
            "backend": {"type": "string"},
            "seed": {"type": "integer"},
            "topology": _ref("Topology"),
            "capabilities": _ref("Capabilities"),
            "generation": {"type": "integer", "description": "bumped on every change"},
            "default": _ref("LinkSpec"),
            "links": {"type": "array", "items": _ref("Link")},
            "partition": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "string"}},
                "description": "groups; hosts not named form one more group; [] = none",
            },
            "firewall": {"type": "array", "items": _ref("FirewallRule")},
            "clock_offsets": {
                "type": "object",
                "additionalProperties": {"type": "number"},
                "description": "host -> seconds added to its wall clock",
            },
        },
    },
    "PartitionRequest": {
        "type": "object",
        "required": ["groups"],
        "properties": {
            "groups": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "examples": [[["conductor-initial", "conductor-2"], ["conductor-3"]]],
            }
        },
        "additionalProperties": False,
    },
    "EmptyRequest": {
        "type": "object",
        "description": "no fields; the body may also be empty",
        "additionalProperties": False,
    },
    "ClockRequest": {
        "type": "object",
        "required": ["offset_s"],
        "properties": {
            "offset_s": {"type": "number", "minimum": -315_360_000, "maximum": 315_360_000}
        },
        "additionalProperties": False,
    },
    "ClockOffset": {
        "type": "object",
        "required": ["host", "offset_s"],
        "properties": {"host": _HOST, "offset_s": {"type": "number"}},
    },
    "TraceEvent": {
        "type": "object",
        "required": ["seq", "t", "kind"],
        "properties": {
            "seq": {"type": "integer", "description": "position among every event recorded"},
            "t": {"type": "number", "description": "world time, seconds"},
            "kind": {"type": "string"},
        },
        "additionalProperties": True,
    },
    "Trace": {
        "type": "object",
        "required": ["events", "next", "dropped"],
        "properties": {
            "events": {"type": "array", "items": _ref("TraceEvent")},
            "next": {"type": "integer", "description": "pass as ?since= to get newer events"},
            "dropped": {"type": "integer", "description": "old events no longer kept"},
        },
    },
    "ExposeRequest": {
        "type": "object",
        "required": ["proto", "port"],
        "properties": {
            "proto": {"enum": ["udp", "tcp"]},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        },
        "additionalProperties": False,
    },
    "Exposed": {
        "type": "object",
        "required": ["host", "proto", "port"],
        "properties": {
            "host": _HOST,
            "proto": {"enum": ["udp", "tcp"]},
            "port": {"type": "integer"},
        },
    },
    "OpenApi": {"type": "object", "description": "this document"},
}

_LINK_PARAMS = [
    _path_param("src", "source host of the direction"),
    _path_param("dst", "destination host of the direction"),
]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "tplab netsim control API",
        "version": "1",
        "description": "Impair, partition and firewall the network of a running tplab world.",
    },
    "paths": {
        "/api/world": {
            "get": {
                "summary": "The whole state: topology, impairments, capabilities",
                "operationId": "getWorld",
                "responses": {**_ok("The world", "World"), **_errors_doc("400")},
            }
        },
        "/api/capabilities": {
            "get": {
                "summary": "What the backend can realise, per impairment",
                "operationId": "getCapabilities",
                "responses": {**_ok("Capabilities", "Capabilities"), **_errors_doc("400")},
            }
        },
        "/api/links": {
            "get": {
                "summary": "The default link spec and every impaired direction",
                "operationId": "getLinks",
                "responses": {**_ok("Links", "Links"), **_errors_doc("400")},
            }
        },
        "/api/links/{src}/{dst}": {
            "parameters": _LINK_PARAMS,
            "put": {
                "summary": "Change impairments of src -> dst (and back, with both)",
                "operationId": "impairLink",
                "requestBody": _body_doc("LinkChanges"),
                "responses": {
                    **_ok("The new spec of src -> dst", "Link"),
                    **_errors_doc("400", "404", "409"),
                },
            },
            "delete": {
                "summary": "Clear every impairment of src -> dst (and back, with ?both=true)",
                "operationId": "clearLink",
                "parameters": [
                    {
                        "name": "both",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean", "default": False},
                    }
                ],
                "responses": {
                    **_ok("The spec of src -> dst, now the default", "Link"),
                    **_errors_doc("400", "404"),
                },
            },
        },
        "/api/partition": {
            "post": {
                "summary": "Split the hosts into groups that cannot reach each other",
                "operationId": "partition",
                "requestBody": _body_doc("PartitionRequest"),
                "responses": {**_ok("The world", "World"), **_errors_doc("400", "409")},
            }
        },
        "/api/heal": {
            "post": {
                "summary": "End the partition and bring every link up (other impairments stay)",
                "operationId": "heal",
                "requestBody": {"required": False, "content": _content(_ref("EmptyRequest"))},
                "responses": {**_ok("The world", "World"), **_errors_doc("400")},
            }
        },
        "/api/reset": {
            "post": {
                "summary": "Remove every impairment, partition, firewall rule and clock offset",
                "operationId": "reset",
                "requestBody": {"required": False, "content": _content(_ref("EmptyRequest"))},
                "responses": {**_ok("The world", "World"), **_errors_doc("400")},
            }
        },
        "/api/firewall": {
            "get": {
                "summary": "Firewall rules, in the order they apply",
                "operationId": "listFirewallRules",
                "responses": {**_ok("Rules", "FirewallRules"), **_errors_doc("400")},
            },
            "post": {
                "summary": "Add a rule dropping or rejecting traffic to a port range",
                "operationId": "addFirewallRule",
                "requestBody": _body_doc("FirewallRuleRequest"),
                "responses": {
                    **_ok("The new rule", "FirewallRule", "201"),
                    **_errors_doc("400", "409"),
                },
            },
        },
        "/api/firewall/{id}": {
            "parameters": [_path_param("id", "firewall rule id")],
            "delete": {
                "summary": "Remove a firewall rule",
                "operationId": "removeFirewallRule",
                "responses": {
                    **_ok("The removed rule", "FirewallRemoved"),
                    **_errors_doc("400", "404"),
                },
            },
        },
        "/api/clock/{host}": {
            "parameters": [_path_param("host", "host name")],
            "put": {
                "summary": "Set a host's wall-clock offset (0 = in sync)",
                "operationId": "setClockOffset",
                "requestBody": _body_doc("ClockRequest"),
                "responses": {
                    **_ok("The host's offset", "ClockOffset"),
                    **_errors_doc("400", "404", "409"),
                },
            },
        },
        "/api/trace": {
            "get": {
                "summary": "Trace events with sequence number >= since",
                "operationId": "getTrace",
                "parameters": [
                    {
                        "name": "since",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                    }
                ],
                "responses": {**_ok("Events", "Trace"), **_errors_doc("400")},
            }
        },
        "/api/hosts/{host}/ports": {
            "parameters": [_path_param("host", "host name")],
            "post": {
                "summary": "Ask the backend to expose a port of a host (proxy backend)",
                "operationId": "exposePort",
                "requestBody": _body_doc("ExposeRequest"),
                "responses": {
                    **_ok("Exposed", "Exposed"),
                    **_errors_doc("400", "404", "409"),
                },
            },
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "getOpenApi",
                "responses": {**_ok("OpenAPI 3.1 document", "OpenApi"), **_errors_doc("400")},
            }
        },
    },
    "components": {"schemas": _SCHEMAS},
}


# ------------------------------------------------------------------ client
class ControlError(Exception):
    """The control API answered an error (status >= 400), or did not answer (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ControlUnreachable(ControlError):
    """Nothing answers at the control URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"cannot reach {url}: {reason}")
        self.url = url


def _seg(value: object) -> str:
    return quote(str(value), safe="")


class ControlClient:
    """One method per endpoint; use as `async with ControlClient(url) as client:`."""

    def __init__(self, base_url: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        url = self.base_url + path
        try:
            async with self._session.request(
                method, url, json=None if body is None else dict(body), params=params
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise ControlUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc
        except aiohttp.InvalidURL as exc:
            raise ControlError(0, f"invalid control URL {self.base_url!r}") from exc
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if status >= 400:
            if isinstance(data, dict) and isinstance(data.get("error"), str):
                raise ControlError(status, data["error"])
            raise ControlError(status, f"HTTP {status}: {text.strip()[:200]}")
        if data is None:
            raise ControlError(status, f"{url} did not answer JSON; is it a tplab world?")
        return data

    async def world(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/api/world")
        return result

    async def capabilities(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/api/capabilities")
        return result

    async def links(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/api/links")
        return result

    async def impair(self, src: str, dst: str, *, both: bool = False, **changes: Any) -> Any:
        body = {**changes, "both": both} if both else changes
        return await self.request("PUT", f"/api/links/{_seg(src)}/{_seg(dst)}", body=body)

    async def clear(self, src: str, dst: str, *, both: bool = False) -> Any:
        params = {"both": "true"} if both else None
        return await self.request("DELETE", f"/api/links/{_seg(src)}/{_seg(dst)}", params=params)

    async def partition(self, *groups: list[str]) -> Any:
        return await self.request("POST", "/api/partition", body={"groups": list(groups)})

    async def heal(self) -> Any:
        return await self.request("POST", "/api/heal")

    async def reset(self) -> Any:
        return await self.request("POST", "/api/reset")

    async def firewall_list(self) -> list[dict[str, Any]]:
        result = await self.request("GET", "/api/firewall")
        rules: list[dict[str, Any]] = result["rules"]
        return rules

    async def firewall_add(
        self,
        proto: str,
        ports: int | str | tuple[int, int],
        *,
        action: str = "drop",
        src: str = "*",
        dst: str = "*",
    ) -> dict[str, Any]:
        body = {
            "proto": proto,
            "ports": list(ports) if isinstance(ports, tuple) else ports,
            "action": action,
            "src": src,
            "dst": dst,
        }
        rule: dict[str, Any] = await self.request("POST", "/api/firewall", body=body)
        return rule

    async def firewall_remove(self, rule_id: int) -> Any:
        return await self.request("DELETE", f"/api/firewall/{_seg(rule_id)}")

    async def set_clock_offset(self, host: str, offset_s: float) -> Any:
        return await self.request("PUT", f"/api/clock/{_seg(host)}", body={"offset_s": offset_s})

    async def trace(self, since: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "GET", "/api/trace", params={"since": str(since)}
        )
        return result

    async def expose(self, host: str, proto: str, port: int) -> Any:
        return await self.request(
            "POST", f"/api/hosts/{_seg(host)}/ports", body={"proto": proto, "port": port}
        )

    async def openapi(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/api/openapi.json")
        return result
