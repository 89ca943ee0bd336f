"""A picture of a page: headless Debian Chromium, driven by Playwright, saves a PNG.

`screenshot(html_path, png_path)` opens a local HTML file (a scenario report)
and saves a full-page screenshot of it; `make bench` uses it to keep a picture
of a run's report. The browser tests launch Chromium through `launch()` too,
so the pictures and the tests see the same browser with the same switches.

Invariants:
- the browser is the Debian package's `/usr/bin/chromium` (`make sysdeps`
  installs it); Playwright never downloads a browser of its own;
- the page is offline: every request that is not for a `file://` URL is
  aborted before it leaves, and `screenshot` raises if the page tried one;
- when the browser or Playwright is missing, `RuntimeError` says which and
  how to install it.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright, Route

#: the Debian package's browser binary
CHROMIUM_PATH = Path("/usr/bin/chromium")

#: headless, no sandbox (root in containers), and nothing that phones home
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: the page width a report is drawn at, in CSS pixels
VIEWPORT_WIDTH_PX = 1280
VIEWPORT_HEIGHT_PX = 900


def chromium_missing_reason(chromium: Path = CHROMIUM_PATH) -> str | None:
    """Why the browser cannot be launched here, or None when it can."""
    if not chromium.exists():
        return (
            f"Chromium not found at {chromium} "
            "(Debian package chromium; `make sysdeps` installs it as root)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is missing (pip install -e '.[dev]')"
    return None


def launch(playwright: Playwright, chromium: Path = CHROMIUM_PATH) -> Browser:
    """Headless Chromium from `chromium`, with the switches every caller uses."""
    return playwright.chromium.launch(
        executable_path=str(chromium), headless=True, args=list(CHROMIUM_ARGS)
    )


def block_network(page: Page, blocked: list[str] | None = None) -> list[str]:
    """Abort every request of `page` not for a file:// URL; returns the list they are added to."""
    blocked = [] if blocked is None else blocked

    def route(route: Route) -> None:
        url = route.request.url
        if url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", route)
    return blocked


def _screenshot(html_path: Path, png_path: Path, chromium: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page(
                viewport={"width": VIEWPORT_WIDTH_PX, "height": VIEWPORT_HEIGHT_PX}
            )
            blocked = block_network(page)
            page.goto(html_path.resolve().as_uri(), wait_until="load")
            png_path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(png_path), full_page=True)
        finally:
            browser.close()
    if blocked:
        raise RuntimeError(f"{html_path} tried to load from the network: {blocked[:5]}")


def screenshot(html_path: Path, png_path: Path, *, chromium: Path = CHROMIUM_PATH) -> None:
    """Save a full-page PNG of the local HTML file `html_path` as `png_path`.

    Blocks until the picture is written. The browser is driven from a worker
    thread of its own: Playwright's synchronous API refuses to run in a thread
    with a running event loop or another Playwright session, and a caller may
    have either.
    """
    reason = chromium_missing_reason(chromium)
    if reason:
        raise RuntimeError(f"cannot take a screenshot: {reason}")
    if not html_path.is_file():
        raise FileNotFoundError(f"no page to take a picture of: {html_path}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_screenshot, html_path, png_path, chromium).result()
