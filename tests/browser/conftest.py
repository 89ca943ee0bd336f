"""Real Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

The `browser` fixture skips, with the reason, where the browser or Playwright
is missing (`make sysdeps` installs the browser as root; Playwright never
downloads one). Every `page` is offline: requests for anything but a file://
URL are aborted and listed in `network_log`, which a test checks is empty.
Screenshots go to `test-artifacts/` at the repository root (`make clean`
removes it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from emulator.scenario.screenshot import (
    VIEWPORT_HEIGHT_PX,
    VIEWPORT_WIDTH_PX,
    block_network,
    chromium_missing_reason,
    launch,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class NetworkLog:
    """What a page asked for: every request, and those aborted for leaving the machine."""

    requested: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # module scope: the synchronous Playwright session is closed before any other
    # module's tests (and their event loops) run in this process
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(f"browser tests: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def network_log() -> NetworkLog:
    return NetworkLog()


@pytest.fixture
def page(browser: Browser, network_log: NetworkLog) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": VIEWPORT_WIDTH_PX, "height": VIEWPORT_HEIGHT_PX}
    )
    new_page = context.new_page()

    def record(request: Request) -> None:
        network_log.requested.append(request.url)

    new_page.on("request", record)
    block_network(new_page, network_log.blocked)
    yield new_page
    context.close()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
