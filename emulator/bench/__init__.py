"""Benchmarks behind `make bench`: groups of measured figures, each checked against its target.

A group is a function registered with `@bench_group(name, description)`; it takes
`BenchOptions` and returns a `GroupResult` of `Figure`s. `run_group` adds machine
information and timing, and `save_result` writes `bench-results/<group>.json`.
`python -m emulator.bench [GROUP...]` runs the named groups (all by default),
prints a table per group and saves each group's JSON.

Invariants:
- performance targets are judged here, never in unit tests (STYLE.md section 5);
- every figure that has a target records whether the value met it (`met`);
- the JSON of a group is self-contained: machine, parameters, methods, figures.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

DEFAULT_OUT_DIR = Path("bench-results")

TargetKind = Literal["max", "min", "abs_max"]


@dataclass(frozen=True, slots=True)
class Target:
    """`max`: value <= limit; `min`: value >= limit; `abs_max`: |value| <= limit."""

    kind: TargetKind
    limit: float

    def met_by(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.kind == "max":
            return value <= self.limit
        if self.kind == "min":
            return value >= self.limit
        return abs(value) <= self.limit

    def text(self, unit: str) -> str:
        symbol = {"max": "<=", "min": ">=", "abs_max": "within +-"}[self.kind]
        sep = "" if self.kind == "abs_max" else " "
        return f"{symbol}{sep}{self.limit:g} {unit}".strip()


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured number, with its unit, how it was measured and (maybe) its target."""

    name: str
    value: float
    unit: str
    description: str
    method: str
    target: Target | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met_by(self.value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _json_number(self.value),
            "unit": self.unit,
            "description": self.description,
            "method": self.method,
            "target": None
            if self.target is None
            else {
                "kind": self.target.kind,
                "limit": self.target.limit,
                "text": self.target.text(self.unit),
            },
            "met": self.met,
            "details": self.details,
        }


@dataclass(slots=True)
class GroupResult:
    group: str
    figures: list[Figure] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    started_utc: str = ""
    duration_s: float = 0.0

    @property
    def targets_met(self) -> bool:
        return all(f.met is not False for f in self.figures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "started_utc": self.started_utc,
            "duration_s": round(self.duration_s, 3),
            "machine": self.machine,
            "params": self.params,
            "notes": self.notes,
            "all_targets_met": self.targets_met,
            "figures": {f.name: f.to_dict() for f in self.figures},
        }


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """`scale` multiplies sample counts and durations (1.0 = `make bench`; tests use ~0.01)."""

    scale: float = 1.0
    seed: int = 1


GroupFn = Callable[[BenchOptions], GroupResult]


@dataclass(frozen=True, slots=True)
class BenchGroup:
    name: str
    description: str
    run: GroupFn


GROUPS: dict[str, BenchGroup] = {}


def bench_group(name: str, description: str) -> Callable[[GroupFn], GroupFn]:
    """Register a group; `python -m emulator.bench NAME` runs it."""

    def register(fn: GroupFn) -> GroupFn:
        if name in GROUPS:
            raise ValueError(f"benchmark group {name!r} is registered twice")
        GROUPS[name] = BenchGroup(name, description, fn)
        return fn

    return register


def load_groups() -> dict[str, BenchGroup]:
    """Import the modules that register groups (kept lazy so importing this package is cheap)."""
    from emulator.bench import (  # noqa: F401  (register every group)
        bridge_bench,
        channel_bench,
        cluster_bench,
        lab_bench,
        maintenance_bench,
        netsim_bench,
        policy_bench,
        scenario_bench,
    )

    return GROUPS


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "load_average": load,
        "timestamp_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }


def run_group(group: BenchGroup, options: BenchOptions) -> GroupResult:
    machine = machine_info()
    started = time.perf_counter()
    result = group.run(options)
    result.duration_s = time.perf_counter() - started
    result.machine = machine
    result.started_utc = machine["timestamp_utc"]
    result.params.setdefault("scale", options.scale)
    result.params.setdefault("seed", options.seed)
    return result


def save_result(result: GroupResult, out_dir: Path = DEFAULT_OUT_DIR) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.group}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def format_value(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "n/a"
    if unit in ("msg/s", "datagrams/s", "req/s", "calls/s"):
        return f"{value:,.0f}"
    if unit == "fraction":
        return f"{value:.4f}"
    return f"{value:.3f}"


def render(results: Iterable[GroupResult]) -> None:
    """Print one rich table per group."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # logs of `make bench`: keep rows on one line
    for result in results:
        table = Table(
            title=f"bench: {result.group} ({result.duration_s:.1f} s)",
            title_justify="left",
            show_lines=False,
        )
        table.add_column("figure", no_wrap=True)
        table.add_column("value", justify="right", no_wrap=True)
        table.add_column("unit", no_wrap=True)
        table.add_column("target", no_wrap=True)
        table.add_column("met", justify="center", no_wrap=True)
        table.add_column("notes")
        for fig in result.figures:
            met = {None: "", True: "[green]yes[/]", False: "[red]NO[/]"}[fig.met]
            table.add_row(
                fig.name,
                format_value(fig.value, fig.unit),
                fig.unit,
                fig.target.text(fig.unit) if fig.target else "",
                met,
                str(fig.details.get("summary", "")),
            )
        console.print(table)
        for note in result.notes:
            console.print(f"  note: {note}")
        machine = result.machine
        console.print(
            f"  python {machine.get('python_version')}, {machine.get('cpus_usable')} usable CPUs, "
            f"load {machine.get('load_average')}; all targets met: {result.targets_met}"
        )


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (q in [0, 1]); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
