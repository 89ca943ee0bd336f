"""The scenario report as a person sees it: opened from disk in headless Chromium.

Each test renders a synthetic trace to a file, opens it through file://, finds
the key elements by role and text, checks that the page asked for nothing
beyond its own file, and saves a full-page screenshot as
`test-artifacts/report-<name>.png`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from emulator.scenario.report import write_report
from emulator.scenario.screenshot import screenshot
from tests.browser.conftest import NetworkLog
from tests.unit.test_report import cluster_run, make_trace, one_hour_run, step

pytestmark = pytest.mark.browser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def open_report(page: Page, trace: dict[str, Any], directory: Path) -> Path:
    path = write_report(trace, directory)
    page.goto(path.as_uri(), wait_until="load")
    return path


def assert_offline(network_log: NetworkLog, report: Path) -> None:
    assert network_log.blocked == []
    assert network_log.requested == [report.as_uri()]


def assert_timeline_drawn(page: Page, name: str) -> None:
    timeline = page.get_by_role("img", name=f"Timeline of {name}")
    expect(timeline).to_be_visible()
    box = timeline.bounding_box()
    assert box is not None
    assert box["width"] > 500
    assert box["height"] > 100


def test_passed_run(
    page: Page, network_log: NetworkLog, tmp_path: Path, artifacts_dir: Path
) -> None:
    report = open_report(page, cluster_run(), tmp_path)
    expect(page).to_have_title("peer-crash-failover: PASSED (tplab scenario report)")
    expect(page.get_by_role("heading", level=1)).to_have_text("Scenario peer-crash-failover")
    expect(page.locator("#verdict")).to_have_text("PASSED")
    expect(page.locator("#verdict")).to_have_class("passed")
    assert_timeline_drawn(page, "peer-crash-failover")
    lanes = page.locator("svg#timeline g.lane")
    expect(lanes).to_have_count(9 + 3 + 1)
    for label in ("conductor-1 → Peer 1", "conductor-3 → Peer 3", "conductor-2"):
        expect(page.locator("svg#timeline text.lane-label", has_text=label).first).to_be_visible()
    expect(page.locator("svg#timeline g.fault")).to_have_count(2)
    steps = page.get_by_role("table", name="Steps: 1 of 1 passed")
    expect(steps.locator("tbody tr")).to_have_count(1)
    expect(steps.locator("tbody tr").first).to_contain_text("passed")
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_role("table", name="30 calls by outcome")).to_be_visible()
    page.screenshot(path=artifacts_dir / "report-passed.png", full_page=True)
    assert_offline(network_log, report)


def test_failed_run_shows_the_failure(
    page: Page, network_log: NetworkLog, tmp_path: Path, artifacts_dir: Path
) -> None:
    message = "timed out after 60 s: vcs: server 2 status == Active (observed Failed)"
    events = [
        step(0.0, 1, "step_started", "Cluster forms"),
        step(12.0, 1, "step_passed", "Cluster forms", "3 peers active"),
        step(12.0, 2, "step_started", "VCS fails over"),
        (13.0, "fault_started", {"fault": "kill", "label": "conductor-2 killed"}),
        step(73.0, 2, "step_failed", "VCS fails over", message),
    ]
    trace = make_trace(events, passed=False, steps=3, failed_step=2, message=message)
    report = open_report(page, trace, tmp_path)
    expect(page.locator("#verdict")).to_have_text("FAILED")
    expect(page.locator("#verdict")).to_have_class("failed")
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Step 2 failed")
    expect(alert).to_contain_text(message)
    assert_timeline_drawn(page, "peer-crash-failover")
    expect(page.locator("svg#timeline g.step-marker.failed")).to_have_count(1)
    expect(page.locator("svg#timeline g.fault", has_text="conductor-2 killed")).to_be_visible()
    rows = page.locator("table#steps tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("failed")
    expect(rows.nth(1)).to_contain_text(message)
    expect(page.get_by_text("Not run: step 3.")).to_be_visible()
    page.screenshot(path=artifacts_dir / "report-failed.png", full_page=True)
    assert_offline(network_log, report)


def test_empty_trace(
    page: Page, network_log: NetworkLog, tmp_path: Path, artifacts_dir: Path
) -> None:
    trace = make_trace([], passed=False, steps=2, message="lab did not start")
    report = open_report(page, trace, tmp_path)
    expect(page.locator("#verdict")).to_have_text("FAILED")
    expect(page.get_by_role("alert")).to_contain_text("lab did not start")
    assert_timeline_drawn(page, "peer-crash-failover")
    expect(page.locator("svg#timeline g.lane")).to_have_count(1)
    expect(page.locator("svg#timeline")).to_contain_text("No events were recorded.")
    expect(page.locator("table#steps tbody tr")).to_have_count(0)
    page.screenshot(path=artifacts_dir / "report-empty.png", full_page=True)
    assert_offline(network_log, report)


def test_one_hour_run_and_its_event_list(
    page: Page, network_log: NetworkLog, tmp_path: Path, artifacts_dir: Path
) -> None:
    trace = one_hour_run()
    report = open_report(page, trace, tmp_path)
    expect(page.locator("#verdict")).to_have_text("PASSED")
    assert_timeline_drawn(page, "peer-crash-failover")
    expect(page.locator("svg#timeline g.lane")).to_have_count(9 + 3 + 1)
    expect(page.locator("svg#timeline g.fault")).to_have_count(6)
    expect(page.locator("table#steps tbody tr")).to_have_count(10)
    page.screenshot(path=artifacts_dir / "report-one-hour.png", full_page=True)
    events = page.locator("table#events")
    expect(events).to_be_hidden()
    count = len(trace["events"])
    page.get_by_text(f"All {count} events").click()
    expect(events).to_be_visible()
    expect(events.locator("tbody tr")).to_have_count(count)
    assert_offline(network_log, report)


def test_screenshot_function(browser: object, tmp_path: Path) -> None:
    """The picture `make bench` keeps of a report (needs the same browser)."""
    report = write_report(cluster_run(), tmp_path)
    png = tmp_path / "pictures" / "report.png"
    screenshot(report, png)
    assert png.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(FileNotFoundError):
        screenshot(tmp_path / "missing.html", png)
