"""The accessibility check itself: axe-core in Chromium finds what the lab pages must
not have, and names each offending element; a clean page passes."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import AxeCheck, NetworkLog

pytestmark = pytest.mark.browser

CLEAN = """<!DOCTYPE html><html lang="en"><head><title>Clustering</title></head><body>
<a href="#content">Skip to main content</a>
<nav aria-label="Main menu"><ul><li><a href="#content">Clustering</a></li></ul></nav>
<main id="content"><h1>Clustering</h1><h2>Cluster peers</h2>
<form><p><label for="key">Cluster pre-shared key</label> <input id="key" type="password"></p>
<p><label for="mode">Mode</label> <select id="mode"><option>On</option></select></p>
<p><button type="submit">Save</button></p></form></main></body></html>"""

BROKEN = """<!DOCTYPE html><html lang="en"><head><title></title></head><body>
<main><h2>Cluster peers</h2><h4></h4>
<form><input id="peer1"><input id="peer1" title="Peer 2 IP address">
<select id="mode"><option>On</option></select>
<button type="submit"></button><a href="/x"></a>
<span tabindex="5">status</span><span id="st">a</span><span id="st">b</span>
</form></main></body></html>"""


def test_a_clean_page_passes(page: Page, network_log: NetworkLog, axe: AxeCheck) -> None:
    page.set_content(CLEAN)
    axe(page, "clean page")
    assert axe.checked == ["clean page"]
    assert network_log.blocked == []


def test_every_violation_is_listed_with_its_target(page: Page, axe: AxeCheck) -> None:
    page.set_content(BROKEN)
    with pytest.raises(AssertionError) as failure:
        axe(page, "broken page")
    report = str(failure.value)
    for rule in (
        "document-title",
        "page-has-heading-one",
        "empty-heading",
        "label",
        "label-title-only",
        "select-name",
        "button-name",
        "link-name",
        "duplicate-id",
        "duplicate-id-active",
        "heading-order",
        "tabindex",
    ):
        assert f"- {rule} (" in report, (rule, report)
    # each offender by axe's CSS selector for it, then its markup
    for offender in ("    #mode  <select", '  <a href="/x"></a>', '  <span tabindex="5">'):
        assert offender in report, (offender, report)
