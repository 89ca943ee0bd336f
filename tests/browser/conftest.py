"""Real Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

The `browser` fixture skips, with the reason, where the browser or Playwright
is missing (`make sysdeps` installs the browser as root; Playwright never
downloads one). Every `page` is offline: requests for anything but a file://
URL are aborted and listed in `network_log`, which a test checks is empty.
A `lab_page` talks to a running lab only: http(s) to loopback (127.0.0.0/8)
goes through, with the hosts' self-signed certificates accepted; anything
else is aborted and listed in `network_log`. The `axe` fixture runs axe-core
on a page and fails listing every violation (`AxeCheck` says which rules and
why). Screenshots go to `test-artifacts/` at the repository root (`make
clean` removes it).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from emulator.scenario.screenshot import (
    VIEWPORT_HEIGHT_PX,
    VIEWPORT_WIDTH_PX,
    block_network,
    chromium_missing_reason,
    launch,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Route

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
#: bound on each Playwright action and expectation in a lab page (2 shared cores)
LAB_TIMEOUT_MS = 15_000
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


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


def on_loopback(url: str) -> bool:
    """An http(s) URL whose host is a 127.x.y.z address (no names: nothing is looked up)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    try:
        return ipaddress.ip_address(parts.hostname) in LOOPBACK
    except ValueError:
        return False


@pytest.fixture
def lab_page(browser: Browser, network_log: NetworkLog) -> Iterator[Page]:
    """A page for a running lab: loopback http(s) only, self-signed certificates accepted.

    Each host signs its certificate with its own CA, as the real products do
    out of the box; the person in the guide accepts the browser's warning,
    which `ignore_https_errors` stands for. Actions and expectations wait at
    most `LAB_TIMEOUT_MS`.
    """
    from playwright.sync_api import expect

    context = browser.new_context(
        viewport={"width": VIEWPORT_WIDTH_PX, "height": VIEWPORT_HEIGHT_PX},
        ignore_https_errors=True,
    )
    context.set_default_timeout(LAB_TIMEOUT_MS)
    context.set_default_navigation_timeout(LAB_TIMEOUT_MS)
    expect.set_options(timeout=LAB_TIMEOUT_MS)
    new_page = context.new_page()

    def record(request: Request) -> None:
        network_log.requested.append(request.url)

    def route(route: Route) -> None:
        url = route.request.url
        if on_loopback(url):
            route.continue_()
        else:
            network_log.blocked.append(url)
            route.abort()

    new_page.on("request", record)
    context.route("**/*", route)
    try:
        yield new_page
    finally:
        expect.set_options(timeout=5_000)  # Playwright's default, for the other tests
        context.close()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


# ---------------------------------------------------------------- training labs

TPLAB = (sys.executable, "-m", "emulator.cli")
#: bound on `tplab lab start` (the processes, then the lab's setup steps)
LAB_START_TIMEOUT_S = 150.0
#: bound on `tplab lab check` and `tplab down`
LAB_COMMAND_TIMEOUT_S = 60.0


@dataclass
class TrainingLab:
    """A training lab run by the `tplab lab` commands on a state dir of the test's own."""

    name: str
    state_dir: Path
    control: str  # HOST:PORT of the control API, which serves the lab home page
    printed: str = ""
    running: bool = False

    @property
    def home(self) -> str:
        """The lab home page: hosts, instructions and the live check of every task."""
        return f"http://{self.control}/"

    def start(self, *options: str) -> str:
        """`tplab lab start NAME OPTIONS...`; returns what it printed."""
        self.running = True  # stopped at the end even when the start fails half way
        done = subprocess.run(
            [*TPLAB, "lab", "start", self.name, "--state-dir", str(self.state_dir),
             "--control", self.control, *options],
            capture_output=True, text=True, timeout=LAB_START_TIMEOUT_S, check=False,
        )  # fmt: skip
        self.printed = done.stdout
        assert done.returncode == 0, f"tplab lab start failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def check(self) -> tuple[int, dict[str, Any]]:
        """`tplab lab check --json`: its exit status and its answer."""
        done = subprocess.run(
            [*TPLAB, "lab", "check", "--state-dir", str(self.state_dir), "--json"],
            capture_output=True, text=True, timeout=LAB_COMMAND_TIMEOUT_S, check=False,
        )  # fmt: skip
        assert done.stdout, f"tplab lab check printed nothing:\n{done.stderr}"
        answer: dict[str, Any] = json.loads(done.stdout)
        return done.returncode, answer

    def down(self) -> None:
        if self.running:
            subprocess.run(
                [*TPLAB, "down", "--state-dir", str(self.state_dir)],
                capture_output=True, timeout=LAB_COMMAND_TIMEOUT_S, check=False,
            )  # fmt: skip
            self.running = False


@pytest.fixture
def training_lab(tmp_path: Path) -> Iterator[Callable[[str, int], TrainingLab]]:
    """`training_lab(NAME, CONTROL_PORT)`: a lab on the test's own state dir and control
    port (not yet started); every lab made is stopped with `tplab down` at the end,
    whatever happened."""
    made: list[TrainingLab] = []

    def make(name: str, port: int) -> TrainingLab:
        lab = TrainingLab(name, tmp_path / name, f"127.0.0.1:{port}")
        made.append(lab)
        return lab

    try:
        yield make
    finally:
        for lab in made:
            lab.down()


# ---------------------------------------------------------------- accessibility

#: axe-core rule tags run on every page: WCAG 2.0, 2.1 and 2.2 levels A and AA, and
#: Deque's best practices (headings, landmarks, tabindex, label-title-only...)
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice")
#: rules outside those tags, switched on by name: duplicate ids (deprecated in axe 4.x
#: because browsers repair them, but our labels and aria-describedby point at ids, so
#: a duplicate silently detaches a label) and the experimental focus-order check
AXE_EXTRA_RULES = ("duplicate-id", "duplicate-id-active", "focus-order-semantics")
#: rules that must have run on every page checked: the forms are driven by their
#: labels, the menus by link names, and an admin uses the keyboard
AXE_REQUIRED_RULES = frozenset(
    {
        # forms: every control has a visible label, not just a title
        "label",
        "label-title-only",
        "select-name",
        # headings: one h1, no skipped levels, none empty
        "page-has-heading-one",
        "heading-order",
        "empty-heading",
        # the tab title names the page
        "document-title",
        # every link and button says what it does
        "link-name",
        "button-name",
        # ids are unique
        "duplicate-id",
        "duplicate-id-active",
        "duplicate-id-aria",
        # keyboard
        "tabindex",
        "focus-order-semantics",
        "scrollable-region-focusable",
        "nested-interactive",
        "bypass",
    }
)


@functools.cache
def axe_script() -> str:
    """axe-core's source, as the axe-playwright-python package ships it."""
    return (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


@dataclass
class AxeCheck:
    """axe-core (bundled by axe-playwright-python) run in the current page.

    The rule set, and why: every rule tagged WCAG 2.0/2.1/2.2 A or AA (the
    level public-sector sites are held to, and what a customer's accessibility
    review of an admin interface asks for) plus Deque's best-practice rules,
    because the ones that matter most for pages driven by a person with a
    screen reader or a keyboard are only best practices in axe: one h1, heading
    order, empty headings, labels that are not only titles, tabindex. Three more
    are switched on by name (`AXE_EXTRA_RULES`). Every rule of
    `AXE_REQUIRED_RULES` must appear in axe's answer (passed, violated,
    inapplicable or needing review), so an axe upgrade that drops or renames
    one fails loudly instead of checking less. Results that axe cannot decide
    ("incomplete", e.g. contrast over a background image) do not fail: they
    need a person.

    `check(page, name)` raises AssertionError naming every violation with its
    impact, help text and the CSS target of every offending element; the
    pages checked are kept in `checked`.
    """

    checked: list[str] = field(default_factory=list)

    def run(self, page: Page) -> dict[str, Any]:
        options = {
            "runOnly": {"type": "tag", "values": list(AXE_TAGS)},
            "rules": {rule: {"enabled": True} for rule in AXE_EXTRA_RULES},
            "resultTypes": ["violations"],
        }
        page.wait_for_load_state("load")  # the style sheets decide target sizes and contrast
        page.evaluate(axe_script())
        results: dict[str, Any] = page.evaluate("options => axe.run(document, options)", options)
        return results

    def check(self, page: Page, name: str) -> None:
        results = self.run(page)
        self.checked.append(name)
        ran = {
            rule["id"]
            for kind in ("passes", "violations", "incomplete", "inapplicable")
            for rule in results[kind]
        }
        missing = AXE_REQUIRED_RULES - ran
        assert not missing, f"axe did not run {sorted(missing)} on {name}"
        violations = results["violations"]
        if violations:
            raise AssertionError(f"{name} ({page.url}):\n{violation_report(violations)}")

    __call__ = check


def violation_report(violations: list[dict[str, Any]]) -> str:
    """One line per violation, then one per offending element with its CSS target."""
    lines = [f"{len(violations)} accessibility violation(s):"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v['helpUrl']}]")
        for node in v["nodes"]:
            target = " ".join(" >> ".join(t) if isinstance(t, list) else t for t in node["target"])
            summary = " ".join(line.strip() for line in node.get("failureSummary", "").splitlines())
            lines.append(f"    {target}  {node.get('html', '')[:160]}")
            lines.append(f"      {summary}")
    return "\n".join(lines)


@pytest.fixture
def axe() -> AxeCheck:
    """`axe(page, "name")`: fails listing every accessibility violation of the page."""
    return AxeCheck()
