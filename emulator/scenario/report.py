"""The HTML report of a scenario run: one self-contained page drawn from its trace.

`render_report(trace)` turns a trace dict (the format documented in
`emulator.scenario.trace`) into one HTML document: a header with the verdict,
a timeline chart, a legend, the steps, a call summary, the alarms and every
event. `write_report(trace, directory)` writes it as `report.html`.

The timeline is an inline SVG whose geometry is computed here and whose markup
comes from the Jinja template `templates/report.html.j2`, so every text from
the trace (scenario names, step titles, status texts are untrusted) goes
through autoescaping and nothing is concatenated into markup by hand.

Invariants:
- the document loads nothing: no external CSS, script, font or image, and no
  JavaScript at all; it reads the same offline as online;
- its size grows with the number of state *changes*, not of events:
  consecutive status events of a lane in the same state make one segment, and
  calls are counted in at most `MAX_CALL_BUCKETS` time buckets (the event list
  in the `<details>` element is the one part linear in the events);
- any trace of valid events renders, including an empty one; fields missing
  from an event are shown as empty rather than raising.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

#: the file `write_report` writes in its directory
REPORT_NAME = "report.html"

#: the calls lane counts calls in at most this many time buckets
MAX_CALL_BUCKETS = 120

# Chart geometry, in SVG user units (the SVG scales to the page width).
WIDTH_PX = 1100.0
LABEL_X_PX = 8.0
PLOT_LEFT_PX = 250.0
PLOT_RIGHT_PX = WIDTH_PX - 24.0
TOP_PX = 8.0
STEPS_ROW_HEIGHT_PX = 26.0
PHASE_ROW_HEIGHT_PX = 20.0
FAULT_ROW_HEIGHT_PX = 15.0
MAX_FAULT_LABEL_ROWS = 4
GROUP_HEADING_HEIGHT_PX = 20.0
LANE_HEIGHT_PX = 16.0
LANE_GAP_PX = 5.0
CALLS_LANE_HEIGHT_PX = 44.0
AXIS_HEIGHT_PX = 44.0
MIN_SEGMENT_WIDTH_PX = 1.5
#: a label's width estimated per character (11 px sans-serif text)
CHAR_WIDTH_PX = 6.2
MAX_LABEL_CHARS = 38

# Colour classes (defined in the template's style sheet) per lane kind and state.
BLUE, GREEN, RED, GREY, AMBER = "c-blue", "c-green", "c-red", "c-grey", "c-amber"
PEER_COLOURS = {"this": BLUE, "active": GREEN, "failed": RED, "empty": GREY, "unreachable": GREY}
SERVER_COLOURS = {"active": GREEN, "failed": RED, "unknown": GREY, "unreachable": GREY}
HOST_COLOURS = {"up": GREEN, "killed": RED, "stopped": RED, "restarting": AMBER}
CALL_COLOURS = {"connected": GREEN, "rejected": AMBER, "failed": RED}
#: call outcomes in the order they are stacked (bottom first) and listed
CALL_OUTCOMES = ("connected", "rejected", "failed")

LEGEND: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Clustering: what the observer's System > Clustering says of Peer N",
        (
            (BLUE, "this peer"),
            (GREEN, "active"),
            (RED, "failed"),
            (GREY, "empty or unreachable"),
        ),
    ),
    (
        "VCS policy service servers",
        ((GREEN, "active"), (RED, "failed"), (GREY, "unknown or unreachable")),
    ),
    ("Hosts", ((GREEN, "up"), (RED, "killed or stopped"), (AMBER, "restarting"))),
    (
        "Calls (stacked counts per time bucket)",
        ((GREEN, "connected"), (AMBER, "rejected"), (RED, "failed")),
    ),
    (
        "Markers",
        (
            ("fault-swatch", "impairment window (fault)"),
            ("step-swatch", "step started"),
            (RED, "step failed"),
        ),
    ),
)


@dataclass(frozen=True)
class Segment:
    """A stretch of one lane in one state."""

    x_px: float
    width_px: float
    colour: str
    state: str
    title: str


@dataclass(frozen=True)
class Bar:
    """One outcome's part of a calls bucket's stacked bar."""

    x_px: float
    y_px: float
    width_px: float
    height_px: float
    colour: str
    outcome: str
    title: str


@dataclass
class Lane:
    """A horizontal row of the chart with its label at the left."""

    key: str
    group: str
    label: str
    full_label: str
    y_px: float
    height_px: float
    segments: list[Segment] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    note: str = ""

    @property
    def label_y_px(self) -> float:
        return round(self.y_px + self.height_px / 2 + 4, 1)


@dataclass(frozen=True)
class Heading:
    text: str
    y_px: float


@dataclass(frozen=True)
class FaultBand:
    """An impairment window shaded across every lane."""

    fault: str
    x_px: float
    width_px: float
    title: str
    label: str
    label_x_px: float
    label_y_px: float
    label_anchor: str
    label_row: int
    show_label: bool

    @property
    def end_x_px(self) -> float:
        return round(self.x_px + self.width_px, 1)


@dataclass(frozen=True)
class PhaseBand:
    """A named phase of the run (a `phase` step: e.g. a task of the guide's procedure),
    from its start to the next phase or the end."""

    x_px: float
    width_px: float
    label: str
    title: str
    shade: int


@dataclass(frozen=True)
class StepMarker:
    number: str
    x_px: float
    failed: bool
    title: str
    show_number: bool


@dataclass(frozen=True)
class Tick:
    x_px: float
    label: str


@dataclass
class Timeline:
    """Everything the template needs to draw the chart."""

    width_px: float
    height_px: float
    plot_left_px: float
    plot_right_px: float
    t_end_s: float
    faults_y_px: float
    phases_y_px: float
    steps_y_px: float
    band_top_px: float
    band_bottom_px: float
    axis_y_px: float
    headings: list[Heading]
    lanes: list[Lane]
    faults: list[FaultBand]
    phases: list[PhaseBand]
    markers: list[StepMarker]
    ticks: list[Tick]
    description: str
    empty: bool

    @property
    def band_height_px(self) -> float:
        return round(self.band_bottom_px - self.band_top_px, 1)

    @property
    def plot_width_px(self) -> float:
        return round(self.plot_right_px - self.plot_left_px, 1)

    @property
    def plot_middle_px(self) -> float:
        return round((self.plot_left_px + self.plot_right_px) / 2, 1)


@dataclass(frozen=True)
class StepRow:
    number: str
    title: str
    action: str
    started: str
    result: str
    detail: str


@dataclass(frozen=True)
class AlarmRow:
    host: str
    alarm_id: str
    subject: str
    description: str
    raised: str
    cleared: str


@dataclass(frozen=True)
class EventRow:
    t: str
    kind: str
    fields: str


@dataclass(frozen=True)
class _Status:
    """A status sample of one lane: its state, colour and tooltip text."""

    t_s: float
    state: str
    colour: str
    title: str


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _seconds(t_s: float) -> str:
    return f"{t_s:.3f} s"


def _duration(duration_s: float) -> str:
    if duration_s < 60:
        return f"{duration_s:.1f} s"
    minutes, seconds = divmod(duration_s, 60)
    return f"{duration_s:.1f} s ({int(minutes)} min {seconds:04.1f} s)"


def _t(event: Mapping[str, Any]) -> float:
    value = event.get("t", 0.0)
    t_s = float(value) if isinstance(value, int | float) else 0.0
    return t_s if math.isfinite(t_s) and t_s > 0 else 0.0


def _slot_key(slot: str) -> tuple[int, str]:
    return (int(slot), "") if slot.isdigit() else (1 << 30, slot)


def _shorten(label: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    return label if len(label) <= max_chars else label[: max_chars - 1] + "…"


def _nice_step(span: float, target_count: int) -> float:
    """The smallest 1, 2 or 5 times a power of ten giving at most `target_count` steps."""
    raw = span / target_count
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if factor * power >= raw:
            return factor * power
    return 10.0 * power


def _call_bucket_s(t_end_s: float) -> float:
    for bucket_s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if t_end_s / bucket_s <= MAX_CALL_BUCKETS:
            return float(bucket_s)
    return _nice_step(t_end_s, MAX_CALL_BUCKETS)


def _tick_label(t_s: float, step_s: float) -> str:
    decimals = max(0, -math.floor(math.log10(step_s))) if step_s < 1 else 0
    return f"{t_s:.{decimals}f}"


class _Scale:
    """Lab seconds to x pixels."""

    def __init__(self, t_end_s: float) -> None:
        self.t_end_s = t_end_s
        self.span_px = PLOT_RIGHT_PX - PLOT_LEFT_PX

    def x(self, t_s: float) -> float:
        return round(PLOT_LEFT_PX + min(t_s, self.t_end_s) / self.t_end_s * self.span_px, 1)

    def width(self, start_s: float, end_s: float) -> float:
        return round(max(self.x(end_s) - self.x(start_s), MIN_SEGMENT_WIDTH_PX), 1)


def _segments(samples: list[_Status], scale: _Scale) -> list[Segment]:
    """Samples to segments; consecutive samples in the same state make one segment."""
    runs: list[tuple[_Status, float]] = []
    for sample in samples:
        if runs and runs[-1][0].state == sample.state:
            continue
        if runs:
            runs[-1] = (runs[-1][0], sample.t_s)
        runs.append((sample, scale.t_end_s))
    return [
        Segment(
            x_px=scale.x(start.t_s),
            width_px=scale.width(start.t_s, end_s),
            colour=start.colour,
            state=start.state,
            title=f"{start.title} ({start.t_s:.3f} s to {end_s:.3f} s)",
        )
        for start, end_s in runs
    ]


class _Builder:
    """Walks the events once and lays out the chart and the tables."""

    def __init__(self, trace: Mapping[str, Any]) -> None:
        raw_events = trace.get("events") or []
        self.events: list[Mapping[str, Any]] = [e for e in raw_events if isinstance(e, Mapping)]
        result = trace.get("result") or {}
        scenario = trace.get("scenario") or {}
        self.result: Mapping[str, Any] = result if isinstance(result, Mapping) else {}
        self.scenario: Mapping[str, Any] = scenario if isinstance(scenario, Mapping) else {}
        duration = self.result.get("duration_s", 0.0)
        duration_s = float(duration) if isinstance(duration, int | float) else 0.0
        self.duration_s = duration_s if math.isfinite(duration_s) and duration_s > 0 else 0.0
        last_s = max((_t(e) for e in self.events), default=0.0)
        self.t_end_s = max(self.duration_s, last_s)
        if self.t_end_s <= 0:
            self.t_end_s = 1.0
        self.scale = _Scale(self.t_end_s)

    def _of(self, kind: str) -> Iterable[Mapping[str, Any]]:
        return (e for e in self.events if e.get("kind") == kind)

    # -- lanes ---------------------------------------------------------------

    def _status_lanes(self) -> list[tuple[str, str, str, str, list[_Status]]]:
        """(group, key, label, full label, samples) for every status lane, in chart order."""
        peers: dict[tuple[str, str], list[_Status]] = {}
        peer_names: dict[tuple[str, str], str] = {}
        observer_order: dict[str, int] = {}
        servers: dict[tuple[str, str], list[_Status]] = {}
        server_addresses: dict[tuple[str, str], str] = {}
        vcs_order: dict[str, int] = {}
        hosts: dict[str, list[_Status]] = {}
        for event in self.events:
            kind = event.get("kind")
            t_s = _t(event)
            if kind == "peer_status":
                observer, slot = _text(event.get("observer")), _text(event.get("slot"))
                peer, state = _text(event.get("peer")), _text(event.get("state"))
                observer_order.setdefault(observer, len(observer_order))
                peer_names.setdefault((observer, slot), peer)
                title = f"{observer} says Peer {slot} ({peer}) is {state}"
                if event.get("text"):
                    title += f": {_text(event.get('text'))}"
                colour = PEER_COLOURS.get(state, GREY)
                peers.setdefault((observer, slot), []).append(_Status(t_s, state, colour, title))
            elif kind == "server_status":
                vcs, server = _text(event.get("vcs")), _text(event.get("server"))
                address, state = _text(event.get("address")), _text(event.get("state"))
                vcs_order.setdefault(vcs, len(vcs_order))
                server_addresses.setdefault((vcs, server), address)
                title = f"{vcs} policy server {server} ({address}) is {state}"
                if event.get("text"):
                    title += f": {_text(event.get('text'))}"
                colour = SERVER_COLOURS.get(state, GREY)
                servers.setdefault((vcs, server), []).append(_Status(t_s, state, colour, title))
            elif kind == "host_state":
                host, state = _text(event.get("host")), _text(event.get("state"))
                colour = HOST_COLOURS.get(state, GREY)
                hosts.setdefault(host, []).append(_Status(t_s, state, colour, f"{host} {state}"))
        lanes: list[tuple[str, str, str, str, list[_Status]]] = []
        for observer, slot in sorted(
            peers, key=lambda k: (observer_order[k[0]], _slot_key(k[1]), k[1])
        ):
            label = f"{observer} → Peer {slot}"
            full = f"{label} ({peer_names[(observer, slot)]})"
            lanes.append(("peers", f"peer:{observer}:{slot}", label, full, peers[(observer, slot)]))
        for vcs, server in sorted(servers, key=lambda k: (vcs_order[k[0]], _slot_key(k[1]), k[1])):
            label = f"{vcs} → Server {server}"
            full = f"{label} ({server_addresses[(vcs, server)]})"
            lanes.append(("servers", f"server:{vcs}:{server}", label, full, servers[(vcs, server)]))
        for host, samples in hosts.items():
            lanes.append(("hosts", f"host:{host}", host, host, samples))
        return lanes

    def _call_bars(self, lane: Lane) -> None:
        bucket_s = _call_bucket_s(self.t_end_s)
        buckets: dict[int, dict[str, int]] = {}
        for event in self._of("call"):
            index = min(int(_t(event) // bucket_s), max(0, math.ceil(self.t_end_s / bucket_s) - 1))
            outcome = _text(event.get("outcome"))
            counts = buckets.setdefault(index, {})
            counts[outcome] = counts.get(outcome, 0) + 1
        lane.label = f"Calls per {bucket_s:g} s"
        lane.full_label = f"Call outcomes, counted per {bucket_s:g} s bucket"
        if not buckets:
            lane.note = "no calls"
            return
        peak = max(sum(counts.values()) for counts in buckets.values())
        unit_px = lane.height_px / peak
        for index in sorted(buckets):
            counts = buckets[index]
            start_s = index * bucket_s
            end_s = min(start_s + bucket_s, self.t_end_s)
            x_px = self.scale.x(start_s)
            width_px = round(max(self.scale.x(end_s) - x_px - 0.6, 1.0), 1)
            bottom_px = lane.y_px + lane.height_px
            others = sorted(o for o in counts if o not in CALL_OUTCOMES)
            for outcome in (*CALL_OUTCOMES, *others):
                count = counts.get(outcome, 0)
                if not count:
                    continue
                height_px = count * unit_px
                bottom_px -= height_px
                lane.bars.append(
                    Bar(
                        x_px=x_px,
                        y_px=round(bottom_px, 1),
                        width_px=width_px,
                        height_px=round(height_px, 1),
                        colour=CALL_COLOURS.get(outcome, GREY),
                        outcome=outcome or "unknown",
                        title=f"{start_s:g} s to {end_s:g} s: {count} {outcome or 'unknown'}",
                    )
                )

    def _fault_bands(self, top_px: float) -> list[FaultBand]:
        """Every impairment window; labels go in up to `MAX_FAULT_LABEL_ROWS` rows from `top_px`."""
        open_faults: dict[str, list[tuple[float, str]]] = {}
        windows: list[tuple[float, float, str, str, bool]] = []
        for event in self.events:
            kind = event.get("kind")
            fault = _text(event.get("fault"))
            if kind == "fault_started":
                label = _text(event.get("label")) or fault
                open_faults.setdefault(fault, []).append((_t(event), label))
            elif kind == "fault_ended" and open_faults.get(fault):
                start_s, label = open_faults[fault].pop(0)
                windows.append((start_s, _t(event), fault, label, True))
        for fault, starts in open_faults.items():
            for start_s, label in starts:
                windows.append((start_s, self.t_end_s, fault, label, False))
        windows.sort(key=lambda w: (w[0], w[1]))
        row_ends_px = [-math.inf] * MAX_FAULT_LABEL_ROWS
        bands: list[FaultBand] = []
        for start_s, end_s, fault, label, ended in windows:
            x_px = self.scale.x(start_s)
            short = _shorten(label, 40)
            text_px = len(short) * CHAR_WIDTH_PX
            anchor, label_x_px = "start", x_px + 3
            if label_x_px + text_px > PLOT_RIGHT_PX:
                anchor, label_x_px = "end", round(self.scale.x(end_s) - 3, 1)
            left_px = label_x_px if anchor == "start" else label_x_px - text_px
            row = next((i for i, end_px in enumerate(row_ends_px) if end_px < left_px), None)
            if row is not None:
                row_ends_px[row] = left_px + text_px + 6
            until = f"{end_s:.3f} s" if ended else "the end of the run (never ended)"
            bands.append(
                FaultBand(
                    fault=fault,
                    x_px=x_px,
                    width_px=self.scale.width(start_s, end_s),
                    title=f"{label}: {start_s:.3f} s to {until}",
                    label=short,
                    label_x_px=round(label_x_px, 1),
                    label_y_px=top_px + (row or 0) * FAULT_ROW_HEIGHT_PX + FAULT_ROW_HEIGHT_PX - 4,
                    label_anchor=anchor,
                    label_row=row or 0,
                    show_label=row is not None,
                )
            )
        return bands

    def _phases(self) -> list[PhaseBand]:
        starts = [(_t(e), _text(e.get("label"))) for e in self._of("phase")]
        bands: list[PhaseBand] = []
        for index, (start_s, label) in enumerate(starts):
            end_s = starts[index + 1][0] if index + 1 < len(starts) else self.t_end_s
            width_px = self.scale.width(start_s, end_s)
            fits = max(0, int((width_px - 6) / CHAR_WIDTH_PX))
            bands.append(
                PhaseBand(
                    x_px=self.scale.x(start_s),
                    width_px=width_px,
                    label=_shorten(label, fits) if fits >= 4 else "",
                    title=f"{label}: {start_s:.3f} s to {end_s:.3f} s",
                    shade=index % 2,
                )
            )
        return bands

    def _markers(self) -> list[StepMarker]:
        markers: list[StepMarker] = []
        last_number_px = -math.inf
        for event in self.events:
            kind = event.get("kind")
            if kind not in ("step_started", "step_failed"):
                continue
            number, title = _text(event.get("number")), _text(event.get("title"))
            x_px = self.scale.x(_t(event))
            failed = kind == "step_failed"
            if failed:
                tip = f"Step {number} failed at {_t(event):.3f} s: {title}"
                message = _text(event.get("message"))
                if message:
                    tip += f" — {message}"
            else:
                action = _text(event.get("action"))
                tip = f"Step {number} ({action}) started at {_t(event):.3f} s: {title}"
            show = not failed and x_px - last_number_px >= 7 + 6 * len(number)
            if show:
                last_number_px = x_px
            markers.append(StepMarker(number, x_px, failed, tip, show))
        return markers

    def _ticks(self) -> list[Tick]:
        step_s = _nice_step(self.t_end_s, 10)
        count = math.floor(self.t_end_s / step_s + 1e-9)
        return [
            Tick(self.scale.x(i * step_s), _tick_label(i * step_s, step_s))
            for i in range(count + 1)
        ]

    def timeline(self, name: str) -> Timeline:
        faults = self._fault_bands(TOP_PX)
        label_rows = max((b.label_row + 1 for b in faults if b.show_label), default=0)
        y_px = TOP_PX + label_rows * FAULT_ROW_HEIGHT_PX
        phases = self._phases()
        phases_y_px = y_px
        if phases:
            y_px += PHASE_ROW_HEIGHT_PX
        steps_y_px = y_px
        y_px += STEPS_ROW_HEIGHT_PX
        band_top_px = y_px - 4
        headings: list[Heading] = []
        lanes: list[Lane] = []
        group_titles = {
            "peers": "Clustering (observer → peer slot)",
            "servers": "VCS policy service",
            "hosts": "Hosts",
        }
        current_group = ""
        for group, key, label, full, samples in self._status_lanes():
            if group != current_group:
                headings.append(Heading(group_titles[group], y_px + 14))
                y_px += GROUP_HEADING_HEIGHT_PX
                current_group = group
            lane = Lane(key, group, _shorten(label), full, y_px, LANE_HEIGHT_PX)
            lane.segments = _segments(samples, self.scale)
            lanes.append(lane)
            y_px += LANE_HEIGHT_PX + LANE_GAP_PX
        headings.append(Heading("Calls", y_px + 14))
        y_px += GROUP_HEADING_HEIGHT_PX
        calls = Lane("calls", "calls", "Calls", "Calls", y_px, CALLS_LANE_HEIGHT_PX)
        self._call_bars(calls)
        lanes.append(calls)
        y_px += CALLS_LANE_HEIGHT_PX + 4
        band_bottom_px = y_px
        markers = self._markers()
        failed = sum(1 for m in markers if m.failed)
        description = (
            f"Lab time from 0 to {self.t_end_s:.3f} s. {len(lanes) - 1} status lanes, "
            f"{sum(1 for _ in self._of('call'))} calls, {len(faults)} impairment windows, "
            f"{len(markers) - failed} steps started, {failed} failed."
        )
        return Timeline(
            width_px=WIDTH_PX,
            height_px=y_px + AXIS_HEIGHT_PX,
            plot_left_px=PLOT_LEFT_PX,
            plot_right_px=PLOT_RIGHT_PX,
            t_end_s=self.t_end_s,
            faults_y_px=TOP_PX + FAULT_ROW_HEIGHT_PX - 4,
            phases_y_px=phases_y_px,
            steps_y_px=steps_y_px,
            band_top_px=band_top_px,
            band_bottom_px=band_bottom_px,
            axis_y_px=y_px,
            headings=headings,
            lanes=lanes,
            faults=faults,
            phases=phases,
            markers=markers,
            ticks=self._ticks(),
            description=f"Timeline of {name}. {description}",
            empty=not self.events,
        )

    # -- tables --------------------------------------------------------------

    def steps(self) -> list[StepRow]:
        started: dict[str, Mapping[str, Any]] = {}
        order: list[str] = []
        ended: dict[str, Mapping[str, Any]] = {}
        for event in self.events:
            kind = event.get("kind")
            number = _text(event.get("number"))
            if kind == "step_started":
                if number not in started:
                    order.append(number)
                started[number] = event
            elif kind in ("step_passed", "step_failed"):
                if number not in started and number not in ended:
                    order.append(number)
                ended[number] = event
        rows: list[StepRow] = []
        for number in order:
            start = started.get(number, {})
            end = ended.get(number, {})
            end_kind = end.get("kind")
            result = {"step_passed": "passed", "step_failed": "failed"}.get(
                _text(end_kind), "not finished"
            )
            detail_key = "message" if end_kind == "step_failed" else "detail"
            rows.append(
                StepRow(
                    number=number,
                    title=_text(start.get("title") or end.get("title")),
                    action=_text(start.get("action") or end.get("action")),
                    started=_seconds(_t(start)) if start else "",
                    result=result,
                    detail=_text(end.get(detail_key)),
                )
            )
        return rows

    def calls(self) -> tuple[list[tuple[str, int, str]], int, str]:
        """(outcome, count, percent) rows, the total, and the connected calls' setup times."""
        counts: dict[str, int] = {}
        setups_ms: list[float] = []
        for event in self._of("call"):
            outcome = _text(event.get("outcome")) or "unknown"
            counts[outcome] = counts.get(outcome, 0) + 1
            setup = event.get("setup_ms")
            if outcome == "connected" and isinstance(setup, int | float) and math.isfinite(setup):
                setups_ms.append(float(setup))
        total = sum(counts.values())
        outcomes = [*CALL_OUTCOMES, *sorted(o for o in counts if o not in CALL_OUTCOMES)]
        rows = [
            (o, counts.get(o, 0), f"{100 * counts.get(o, 0) / total:.1f} %" if total else "")
            for o in outcomes
        ]
        setup_text = ""
        if setups_ms:
            setups_ms.sort()
            median = setups_ms[len(setups_ms) // 2]
            p95 = setups_ms[min(len(setups_ms) - 1, math.ceil(0.95 * len(setups_ms)) - 1)]
            setup_text = f"median {median:.0f} ms, 95th percentile {p95:.0f} ms"
        return rows, total, setup_text

    def loads(self) -> list[tuple[str, str, str, str, str, str]]:
        """(vcs, load id, started, rate, total, outcome counts) per call load."""
        finished = {
            (_text(e.get("vcs")), _text(e.get("load_id"))): e for e in self._of("load_finished")
        }
        rows = []
        for event in self._of("load_started"):
            key = (_text(event.get("vcs")), _text(event.get("load_id")))
            end = finished.get(key)
            by_outcome = end.get("by_outcome") if end else None
            outcome_text = (
                ", ".join(f"{k}: {v}" for k, v in sorted(by_outcome.items()))
                if isinstance(by_outcome, Mapping)
                else "not finished"
            )
            rows.append(
                (
                    key[0],
                    key[1],
                    _seconds(_t(event)),
                    f"{_text(event.get('rate'))} /s for {_text(event.get('duration_s'))} s",
                    _text(event.get("total")),
                    outcome_text,
                )
            )
        return rows

    def alarms(self) -> list[AlarmRow]:
        rows: list[dict[str, str]] = []
        open_rows: dict[tuple[str, str], list[dict[str, str]]] = {}
        for event in self.events:
            kind = event.get("kind")
            if kind not in ("alarm_raised", "alarm_cleared"):
                continue
            key = (_text(event.get("host")), _text(event.get("id")))
            if kind == "alarm_raised":
                row = {
                    "host": key[0],
                    "alarm_id": key[1],
                    "subject": _text(event.get("subject")),
                    "description": _text(event.get("description")),
                    "raised": _seconds(_t(event)),
                    "cleared": "not cleared",
                }
                rows.append(row)
                open_rows.setdefault(key, []).append(row)
            elif open_rows.get(key):
                open_rows[key].pop(0)["cleared"] = _seconds(_t(event))
            else:
                rows.append(
                    {
                        "host": key[0],
                        "alarm_id": key[1],
                        "subject": _text(event.get("subject")),
                        "description": "",
                        "raised": "before the trace",
                        "cleared": _seconds(_t(event)),
                    }
                )
        return [AlarmRow(**row) for row in rows]

    def event_rows(self) -> list[EventRow]:
        return [
            EventRow(
                t=f"{_t(e):.3f}",
                kind=_text(e.get("kind")),
                fields="; ".join(
                    f"{k}={_text(v)}" for k, v in sorted(e.items()) if k not in ("t", "kind")
                ),
            )
            for e in self.events
        ]


_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("emulator.scenario", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_report(trace: Mapping[str, Any]) -> str:
    """The run's report as one self-contained HTML document."""
    builder = _Builder(trace)
    scenario, result = builder.scenario, builder.result
    name = _text(scenario.get("name")) or "unnamed scenario"
    passed = result.get("passed") is True
    steps = builder.steps()
    steps_total = result.get("steps")
    numbers = {row.number for row in steps}
    not_run = (
        [str(n) for n in range(1, steps_total + 1) if str(n) not in numbers]
        if isinstance(steps_total, int)
        else []
    )
    call_rows, calls_total, setup_text = builder.calls()
    hosts = scenario.get("hosts")
    seed = trace.get("seed")
    return _environment.get_template("report.html.j2").render(
        name=name,
        description=_text(scenario.get("description")),
        source=_text(scenario.get("source")),
        topology=_text(scenario.get("topology")),
        hosts=[h for h in hosts if isinstance(h, Mapping)] if isinstance(hosts, list) else [],
        mode=_text(trace.get("mode")) or "unknown",
        seed="none" if seed is None else _text(seed),
        passed=passed,
        duration=_duration(builder.duration_s),
        steps_passed=_text(result.get("steps_passed", 0)),
        steps_total=_text(steps_total if steps_total is not None else 0),
        failed_step=_text(result.get("failed_step")),
        message=_text(result.get("message")),
        timeline=builder.timeline(name),
        legend=LEGEND,
        steps=steps,
        not_run=", ".join(not_run),
        call_rows=call_rows,
        calls_total=calls_total,
        setup_text=setup_text,
        loads=builder.loads(),
        alarms=builder.alarms(),
        events=builder.event_rows(),
    )


def write_report(trace: Mapping[str, Any], directory: Path) -> Path:
    """Write the run's report as `directory/report.html` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / REPORT_NAME
    path.write_text(render_report(trace), encoding="utf-8")
    return path
