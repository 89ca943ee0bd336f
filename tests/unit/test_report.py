"""The HTML report of a scenario run, read back with the stdlib HTML parser.

Traces are recorded with the runner's own `Trace` (a fake clock sets `t`) and
read back through JSON, so every trace here has the documented file format.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.scenario.report import MAX_CALL_BUCKETS, REPORT_NAME, render_report, write_report
from emulator.scenario.screenshot import screenshot
from emulator.scenario.trace import Result, Trace

PEERS = {"conductor-1": "127.1.2.31", "conductor-2": "127.1.2.32", "conductor-3": "127.1.2.33"}

Event = tuple[float, str, dict[str, Any]]


def make_trace(
    events: list[Event],
    *,
    name: str = "peer-crash-failover",
    passed: bool = True,
    steps: int | None = None,
    failed_step: int | None = None,
    message: str = "",
    duration_s: float | None = None,
    mode: str = "sim",
    seed: int | None = 7,
) -> dict[str, Any]:
    """A valid trace dict of `events` ((t, kind, fields), t never decreasing)."""
    clock = {"t": 0.0}
    trace = Trace(
        scenario={
            "name": name,
            "description": "A peer crashes; the VCS fails over.",
            "source": "scenarios/test.yaml",
            "topology": "topologies/default.yaml",
            "hosts": [{"name": h, "role": "conductor", "ip": ip} for h, ip in PEERS.items()],
        },
        mode=mode,
        seed=seed,
        now=lambda: clock["t"],
    )
    for t_s, kind, fields in events:
        clock["t"] = t_s
        trace.record(kind, **fields)
    step_numbers = {f["number"] for _, k, f in events if k.startswith("step_")}
    trace.result = Result(
        passed=passed,
        steps=steps if steps is not None else len(step_numbers),
        steps_passed=sum(1 for _, k, _f in events if k == "step_passed"),
        failed_step=failed_step,
        message=message,
        duration_s=duration_s if duration_s is not None else (events[-1][0] if events else 0.0),
    )
    data: dict[str, Any] = json.loads(trace.dumps())
    return data


def peer_status(t_s: float, observer: str, slot: int, state: str) -> Event:
    peer = list(PEERS.values())[slot - 1]
    text = {"this": "This system", "active": "Active", "failed": "Failed"}.get(state, state)
    return (
        t_s,
        "peer_status",
        {"observer": observer, "peer": peer, "slot": slot, "state": state, "text": text},
    )


def call(t_s: float, outcome: str) -> Event:
    fields = {
        "vcs": "vcs",
        "source": "alice@example.com",
        "destination": "meet.1@example.com",
        "outcome": outcome,
        "status": 200 if outcome == "connected" else 403,
        "reason": "",
        "via": "127.1.2.31",
        "bridge": "ts-1",
        "setup_ms": 120.0,
    }
    return (t_s, "call", fields)


def step(t_s: float, number: int, kind: str, title: str, text: str = "") -> Event:
    fields: dict[str, Any] = {"number": number, "action": "wait", "title": title}
    if kind == "step_started":
        fields["line"] = 10 + number
    elif kind == "step_passed":
        fields["detail"] = text
    else:
        fields["message"] = text
    return (t_s, kind, fields)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    parts: list[str | Node] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def own_text(self) -> str:
        """Text without that of descendant <title> tooltips."""
        return "".join(
            p if isinstance(p, str) else ("" if p.tag == "title" else p.own_text())
            for p in self.parts
        )

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find_all(self, tag: str = "", cls: str = "", **attrs: str) -> list[Node]:
        return [
            n
            for n in self.walk()
            if (not tag or n.tag == tag)
            and (not cls or cls in n.classes)
            and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def one(self, tag: str = "", cls: str = "", **attrs: str) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert len(found) == 1, f"{len(found)} matches of {tag}.{cls} {attrs}"
        return found[0]

    def by_id(self, element_id: str) -> Node:
        return self.one(id=element_id)


VOID = {"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "wbr", "source"}


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def timeline_xml(html: str) -> ET.Element:
    """The timeline SVG parsed as XML: it must be well-formed on its own."""
    match = re.search(r"<svg id=\"timeline\".*?</svg>", html, re.DOTALL)
    assert match is not None
    return ET.fromstring(match.group(0))


def lanes(doc: Node) -> dict[str, Node]:
    svg = doc.by_id("timeline")
    return {lane.attrs["data-lane"]: lane for lane in svg.find_all("g", "lane")}


def segments(lane: Node) -> list[tuple[str, str]]:
    return [
        (seg.attrs["data-state"], (seg.classes - {"seg"}).pop())
        for seg in lane.find_all("rect", "seg")
    ]


def cluster_run() -> dict[str, Any]:
    """Three peers form a cluster; conductor-2 is killed for 40 s and comes back."""
    events: list[Event] = [(0.0, "host_state", {"host": h, "state": "up"}) for h in PEERS]
    events.append(step(0.5, 1, "step_started", "Cluster forms"))
    for t_s in range(0, 120, 2):
        for observer in PEERS:
            for slot, peer in enumerate(PEERS, 1):
                if observer == peer:
                    state = "this"
                elif peer == "conductor-2" and 40 <= t_s < 80:
                    state = "failed"
                else:
                    state = "active"
                events.append(peer_status(float(t_s), observer, slot, state))
    events.extend(
        [
            (39.0, "fault_started", {"fault": "kill-2", "label": "conductor-2 killed"}),
            (40.0, "host_state", {"host": "conductor-2", "state": "killed"}),
            (60.0, "fault_started", {"fault": "part-1", "label": "partition vcs | conductor-1"}),
            (70.0, "host_state", {"host": "conductor-2", "state": "restarting"}),
            (75.0, "host_state", {"host": "conductor-2", "state": "up"}),
            (79.0, "fault_ended", {"fault": "kill-2"}),
        ]
    )
    events.append(step(20.0, 1, "step_passed", "Cluster forms", "all peers active"))
    for index in range(30):
        events.append(call(21.0 + 3 * index, "connected" if index % 5 else "rejected"))
    events.extend(
        [
            (
                41.0,
                "alarm_raised",
                {
                    "host": "conductor-1",
                    "id": "40010",
                    "subject": "Cluster communication failure",
                    "description": "Peer 127.1.2.32 is unreachable",
                },
            ),
            (
                80.0,
                "alarm_cleared",
                {"host": "conductor-1", "id": "40010", "subject": "Cluster communication failure"},
            ),
        ]
    )
    events.sort(key=lambda e: e[0])
    return make_trace(events, steps=1, duration_s=120.0)


def test_passed_run_header_verdict_and_sections() -> None:
    html = render_report(cluster_run())
    doc = parse(html)
    assert doc.one("html").attrs["lang"] == "en"
    assert len(doc.find_all("h1")) == 1
    assert "peer-crash-failover" in doc.one("h1").text()
    verdict = doc.by_id("verdict")
    assert verdict.classes == {"passed"}
    assert verdict.text() == "PASSED"
    assert doc.by_id("mode").text() == "sim"
    assert doc.by_id("seed").text() == "7"
    assert doc.by_id("steps-passed").text() == "1 / 1"
    assert "120.0 s" in doc.by_id("duration").text()
    assert not doc.find_all(id="failure")
    headings = [h.text() for h in doc.find_all("h2")]
    assert headings == ["Timeline", "Legend", "Steps", "Calls", "Alarms", "Events"]
    svg = doc.by_id("timeline")
    assert svg.attrs["role"] == "img"
    title_id = svg.attrs["aria-labelledby"].split()[0]
    assert svg.one("title", id=title_id).text() == "Timeline of peer-crash-failover"
    event_list = doc.by_id("event-list")
    assert event_list.tag == "details"
    assert len(event_list.one("tbody").find_all("tr")) == len(cluster_run()["events"])


def test_report_is_self_contained() -> None:
    """Nothing to fetch: no script, no stylesheet link, no image, no URL in CSS."""
    html = render_report(cluster_run())
    doc = parse(html)
    assert not doc.find_all("script")
    assert not doc.find_all("link")
    assert not doc.find_all("img")
    assert not [n for n in doc.walk() if "src" in n.attrs or "href" in n.attrs]
    assert "url(" not in html
    assert "@import" not in html
    # the one URL is the SVG namespace name, which is never fetched
    assert re.findall(r"https?://[^\"' <]+", html) == ["http://www.w3.org/2000/svg"]


def test_lane_for_every_observer_and_peer_slot_in_chart_order() -> None:
    html = render_report(cluster_run())
    found = lanes(parse(html))
    expected_peers = [f"peer:{o}:{slot}" for o in PEERS for slot in (1, 2, 3)]
    expected_hosts = [f"host:{h}" for h in PEERS]
    assert list(found) == [*expected_peers, *expected_hosts, "calls"]
    for key, lane in found.items():
        label = lane.one("text", "lane-label")
        assert label.own_text().strip(), f"lane {key} has no label"
    assert found["peer:conductor-1:2"].one("text", "lane-label").own_text() == (
        "conductor-1 → Peer 2"
    )
    timeline_xml(html)


def test_same_state_events_merge_into_one_segment_coloured_by_state() -> None:
    """60 samples per lane become at most 3 segments; this=blue, active=green, failed=red."""
    found = lanes(parse(render_report(cluster_run())))
    assert segments(found["peer:conductor-1:1"]) == [("this", "c-blue")]
    assert segments(found["peer:conductor-1:2"]) == [
        ("active", "c-green"),
        ("failed", "c-red"),
        ("active", "c-green"),
    ]
    assert segments(found["host:conductor-2"]) == [
        ("up", "c-green"),
        ("killed", "c-red"),
        ("restarting", "c-amber"),
        ("up", "c-green"),
    ]
    tips = [seg.one("title").text() for seg in found["peer:conductor-1:2"].find_all("rect", "seg")]
    assert tips[1].startswith("conductor-1 says Peer 2 (127.1.2.32) is failed: Failed (40.000")


def test_server_lanes_follow_the_vcs_status_colours() -> None:
    """G-V3: a policy server line is green when Active, red when Failed."""
    events: list[Event] = []
    for t_s in range(0, 60, 10):
        for server in (1, 2):
            state = "failed" if server == 2 and t_s >= 30 else "active"
            fields = {
                "vcs": "vcs",
                "server": server,
                "address": f"127.1.2.3{server}",
                "state": state,
                "text": "Active. Last communication: 12:00:00" if state == "active" else "Failed",
            }
            events.append((float(t_s), "server_status", fields))
    events.append((55.0, "server_status", {**events[0][2], "server": 3, "state": "unknown"}))
    found = lanes(parse(render_report(make_trace(events))))
    assert segments(found["server:vcs:1"]) == [("active", "c-green")]
    assert segments(found["server:vcs:2"]) == [("active", "c-green"), ("failed", "c-red")]
    assert segments(found["server:vcs:3"]) == [("unknown", "c-grey")]


def test_fault_bands_labelled_and_an_unended_fault_lasts_to_the_end() -> None:
    doc = parse(render_report(cluster_run()))
    svg = doc.by_id("timeline")
    bands = {g.attrs["data-fault"]: g for g in svg.find_all("g", "fault")}
    assert set(bands) == {"kill-2", "part-1"}
    assert bands["kill-2"].one("text", "fault-label").text() == "conductor-2 killed"
    assert bands["kill-2"].one("title").text() == "conductor-2 killed: 39.000 s to 79.000 s"
    assert "never ended" in bands["part-1"].one("title").text()
    plot_bg = svg.find_all("rect", "lane-bg")[0]
    left_px, width_px = float(plot_bg.attrs["x"]), float(plot_bg.attrs["width"])

    def span_s(band: Node) -> tuple[float, float]:
        rect = band.one("rect", "fault-band")
        x_px, w_px = float(rect.attrs["x"]), float(rect.attrs["width"])
        return ((x_px - left_px) / width_px * 120, (x_px + w_px - left_px) / width_px * 120)

    assert span_s(bands["kill-2"]) == pytest.approx((39, 79), abs=0.2)
    assert span_s(bands["part-1"]) == pytest.approx((60, 120), abs=0.2)


def test_failed_at_step_1() -> None:
    message = "timed out after 30 s waiting for conductor-1: peer 2 status == Active"
    events = [
        step(0.0, 1, "step_started", "Cluster forms"),
        step(30.0, 1, "step_failed", "Cluster forms", message),
    ]
    trace = make_trace(events, passed=False, steps=4, failed_step=1, message=message)
    doc = parse(render_report(trace))
    verdict = doc.by_id("verdict")
    assert verdict.classes == {"failed"}
    assert verdict.text() == "FAILED"
    failure = doc.by_id("failure")
    assert message in failure.text()
    assert "Step 1 failed" in failure.text()
    rows = doc.by_id("steps").one("tbody").find_all("tr")
    assert len(rows) == 1
    cells = [td.text() for td in rows[0].find_all("td")]
    assert cells == ["1", "Cluster forms", "wait", "0.000 s", "failed", message]
    assert doc.by_id("not-run").text() == "Not run: steps 2, 3, 4."
    svg = doc.by_id("timeline")
    failed = svg.one("g", "failed", data_step="1")
    assert "step-marker" in failed.classes
    assert message in failed.one("title").text()
    started = [m for m in svg.find_all("g", "step-marker") if "failed" not in m.classes]
    assert [m.one("title").text() for m in started] == [
        "Step 1 (wait) started at 0.000 s: Cluster forms"
    ]
    assert svg.find_all("line", "failed-line")


def test_calls_bucketed_and_counted_by_outcome() -> None:
    events = [
        call(float(i), ("connected", "connected", "rejected", "failed")[i % 4]) for i in range(40)
    ]
    doc = parse(render_report(make_trace(events, duration_s=40.0)))
    summary = {
        row.attrs["data-outcome"]: int(row.find_all("td")[1].text())
        for row in doc.by_id("calls").one("tbody").find_all("tr")
    }
    assert summary == {"connected": 20, "rejected": 10, "failed": 10}
    assert "40 calls" in doc.by_id("calls").one("caption").text()
    bars = lanes(doc)["calls"].find_all("rect", "bar")
    drawn: Counter[str] = Counter()
    for bar in bars:
        count = int(bar.one("title").text().split(": ")[1].split()[0])
        drawn[bar.attrs["data-outcome"]] += count
        expected_colour = {"connected": "c-green", "rejected": "c-amber", "failed": "c-red"}
        assert expected_colour[bar.attrs["data-outcome"]] in bar.classes
    assert drawn == summary


def test_alarms_table_pairs_raised_and_cleared() -> None:
    trace = cluster_run()
    trace["events"].append(
        {
            "t": 120.0,
            "kind": "alarm_raised",
            "host": "vcs",
            "id": "20021",
            "subject": "Policy server failed",
            "description": "",
        }
    )
    doc = parse(render_report(trace))
    rows = [[td.text() for td in tr.find_all("td")] for tr in doc.by_id("alarms").find_all("tr")]
    assert rows[1][:3] == ["conductor-1", "40010", "Cluster communication failure"]
    assert rows[1][4:] == ["41.000 s", "80.000 s"]
    assert rows[2][4:] == ["120.000 s", "not cleared"]


def test_untrusted_names_and_texts_are_escaped() -> None:
    evil = '<script>alert("x")</script>'
    events = [
        step(0.0, 1, "step_started", evil),
        (1.0, "fault_started", {"fault": evil, "label": evil}),
        peer_status(2.0, evil, 1, "active"),
        (3.0, "host_state", {"host": "<img src=x onerror=alert(1)>", "state": "up"}),
        step(4.0, 1, "step_failed", evil, evil),
    ]
    trace = make_trace(events, name=evil, passed=False, failed_step=1, message=evil)
    trace["scenario"]["description"] = evil
    html = render_report(trace)
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;" in html
    doc = parse(html)
    assert evil in doc.one("h1").text()
    assert f"peer:{evil}:1" in lanes(doc)
    timeline_xml(html)


def test_empty_event_list() -> None:
    html = render_report(make_trace([], passed=False, steps=0, message="lab did not start"))
    doc = parse(html)
    assert doc.by_id("verdict").classes == {"failed"}
    assert "lab did not start" in doc.by_id("failure").text()
    assert list(lanes(doc)) == ["calls"]
    assert "No events were recorded." in doc.by_id("timeline").text()
    assert doc.by_id("event-list").one("summary").text() == "All 0 events"
    assert not doc.by_id("steps").one("tbody").find_all("tr")
    timeline_xml(html)


def test_a_trace_with_almost_nothing_in_it() -> None:
    """Missing sections of a damaged trace render as empty, not as an exception."""
    html = render_report({"events": [{"t": 1.0, "kind": "call"}]})
    doc = parse(html)
    assert doc.by_id("verdict").classes == {"failed"}
    assert "unnamed scenario" in doc.one("h1").text()


def one_hour_run() -> dict[str, Any]:
    """A 1-hour sim run: peer status every 10 s, ~1,000 calls, faults every 10 minutes."""
    events: list[Event] = [(0.0, "host_state", {"host": h, "state": "up"}) for h in PEERS]
    for t_s in range(0, 3600, 10):
        broken = (t_s // 600) % 2 == 1 and t_s % 600 < 120
        for observer in PEERS:
            for slot, peer in enumerate(PEERS, 1):
                state = "this" if observer == peer else "active"
                if broken and peer == "conductor-3" and observer != peer:
                    state = "failed"
                events.append(peer_status(float(t_s), observer, slot, state))
    for index in range(10):
        number = index + 1
        events.append(step(index * 360.0, number, "step_started", f"step {number}"))
        events.append(step(index * 360.0 + 1, number, "step_passed", f"step {number}", "ok"))
    for window in range(6):
        start_s = window * 600.0 + 300
        fault = f"loss-{window}"
        events.append((start_s, "fault_started", {"fault": fault, "label": f"30 % loss #{window}"}))
        events.append((start_s + 90, "fault_ended", {"fault": fault}))
    for index in range(1000):
        events.append(call(index * 3.6, "failed" if index % 50 == 0 else "connected"))
    events.sort(key=lambda e: e[0])
    return make_trace(events, steps=10, duration_s=3600.0)


def test_one_hour_run_stays_small() -> None:
    trace = one_hour_run()
    assert len(trace["events"]) > 3000
    html = render_report(trace)
    assert len(html.encode()) < 2_000_000
    svg = timeline_xml(html)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(list(svg.iter(f"{ns}rect"))) < 1000
    doc = parse(html)
    found = lanes(doc)
    assert len(found) == 9 + 3 + 1
    assert len(found["peer:conductor-1:3"].find_all("rect", "seg")) == 7
    buckets = {bar.attrs["x"] for bar in found["calls"].find_all("rect", "bar")}
    assert len(buckets) <= MAX_CALL_BUCKETS
    assert len(doc.by_id("timeline").find_all("g", "fault")) == 6
    assert len(doc.by_id("event-list").one("tbody").find_all("tr")) == len(trace["events"])


def test_write_report(tmp_path: Path) -> None:
    path = write_report(cluster_run(), tmp_path / "run-1")
    assert path == tmp_path / "run-1" / REPORT_NAME
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_screenshot_names_the_missing_browser(tmp_path: Path) -> None:
    missing = tmp_path / "no-chromium"
    with pytest.raises(RuntimeError, match=re.escape(str(missing))):
        screenshot(tmp_path / "report.html", tmp_path / "report.png", chromium=missing)


names = st.sampled_from(["conductor-1", "conductor-2", "vcs", "<b>&x</b>", ""])
texts = st.text(max_size=20)
numbers = st.integers(min_value=0, max_value=12)
FIELDS: dict[str, Callable[[], st.SearchStrategy[dict[str, Any]]]] = {
    "step_started": lambda: st.fixed_dictionaries(
        {"number": numbers, "action": texts, "title": texts, "line": numbers}
    ),
    "step_passed": lambda: st.fixed_dictionaries(
        {"number": numbers, "action": texts, "title": texts, "detail": texts}
    ),
    "step_failed": lambda: st.fixed_dictionaries(
        {"number": numbers, "action": texts, "title": texts, "message": texts}
    ),
    "host_state": lambda: st.fixed_dictionaries(
        {"host": names, "state": st.sampled_from(["up", "killed", "restarting", "stopped"])}
    ),
    "peer_status": lambda: st.fixed_dictionaries(
        {
            "observer": names,
            "peer": names,
            "slot": st.integers(1, 3),
            "state": st.sampled_from(["this", "active", "failed", "empty", "unreachable"]),
            "text": texts,
        }
    ),
    "server_status": lambda: st.fixed_dictionaries(
        {
            "vcs": names,
            "server": st.integers(1, 3),
            "address": names,
            "state": st.sampled_from(["active", "failed", "unknown", "unreachable"]),
            "text": texts,
        }
    ),
    "alarm_raised": lambda: st.fixed_dictionaries(
        {"host": names, "id": texts, "subject": texts, "description": texts}
    ),
    "alarm_cleared": lambda: st.fixed_dictionaries({"host": names, "id": texts, "subject": texts}),
    "fault_started": lambda: st.fixed_dictionaries({"fault": names, "label": texts}),
    "fault_ended": lambda: st.fixed_dictionaries({"fault": names}),
    "impairment": lambda: st.fixed_dictionaries(
        {"action": texts}, optional={"delay_ms": numbers, "link": names}
    ),
    "call": lambda: st.fixed_dictionaries(
        {
            "vcs": names,
            "source": texts,
            "destination": texts,
            "outcome": st.sampled_from(["connected", "rejected", "failed"]),
            "status": numbers,
            "reason": texts,
            "via": names,
            "bridge": names,
            "setup_ms": st.floats(0, 10_000),
        }
    ),
    "load_started": lambda: st.fixed_dictionaries(
        {"vcs": names, "load_id": texts, "rate": numbers, "duration_s": numbers, "total": numbers}
    ),
    "load_finished": lambda: st.fixed_dictionaries(
        {
            "vcs": names,
            "load_id": texts,
            "by_outcome": st.dictionaries(st.sampled_from(["connected", "failed"]), numbers),
        }
    ),
    "expectation": lambda: st.fixed_dictionaries(
        {"number": numbers, "condition": texts, "held": st.booleans(), "observed": texts}
    ),
}


@st.composite
def traces(draw: st.DrawFn) -> dict[str, Any]:
    kinds = draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=60))
    t_s = 0.0
    events: list[Event] = []
    for kind in kinds:
        t_s += draw(st.sampled_from([0.0, 0.001, 0.5, 3.0, 700.0]))
        events.append((t_s, kind, draw(FIELDS[kind]())))
    return make_trace(
        events,
        name=draw(texts),
        passed=draw(st.booleans()),
        steps=draw(numbers),
        failed_step=draw(st.none() | numbers),
        message=draw(texts),
        duration_s=draw(st.floats(0, 5000)),
        mode=draw(st.sampled_from(["sim", "real"])),
        seed=draw(st.none() | st.integers(0, 2**32)),
    )


@given(traces())
def test_any_valid_trace_renders(trace: dict[str, Any]) -> None:
    doc = parse(render_report(trace))
    assert doc.by_id("verdict").text() in ("PASSED", "FAILED")
    pairs = {(e["observer"], str(e["slot"])) for e in trace["events"] if e["kind"] == "peer_status"}
    found = lanes(doc)
    assert {key for key in found if key.startswith("peer:")} == {f"peer:{o}:{s}" for o, s in pairs}
    assert "calls" in found


def test_phases_are_labelled_bands_from_each_start_to_the_next() -> None:
    """A run's phases (e.g. the seven tasks of G-P6's rolling upgrade) are shown as a
    row of labelled bands, each lasting until the next phase or the end."""
    html = render_report(
        make_trace(
            [
                (0.0, "phase", {"label": "Task 1: VCS keeps only the last peer"}),
                (40.0, "phase", {"label": "Task 2: two peers leave the cluster"}),
                (100.0, "phase", {"label": "Task 3: upgrade them"}),
            ],
            duration_s=120.0,
        )
    )
    svg = timeline_xml(html)
    ns = {"s": "http://www.w3.org/2000/svg"}
    phases = svg.findall(".//s:g[@class='phase']", ns)
    assert len(phases) == 3
    titles = [p.findtext("s:title", namespaces=ns) for p in phases]
    assert titles[0] == "Task 1: VCS keeps only the last peer: 0.000 s to 40.000 s"
    assert titles[2] == "Task 3: upgrade them: 100.000 s to 120.000 s"
    labels = [p.findtext("s:text", namespaces=ns) for p in phases]
    assert labels[0] == "Task 1: VCS keeps only the last peer"
