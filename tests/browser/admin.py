"""Driving the admin web pages as a person does: menus, labelled fields, buttons.

Every helper finds what it touches by what a person sees: the main menu's
group and item text, a field's visible label, a button's name, a status
text. Nothing here knows a URL path, a form field name or a CSS class, so a
test written with these helpers is also a check that the pages can be used
that way (and, with the `axe` fixture, by a screen reader or a keyboard).

Waits are bounded: each Playwright action and expectation by the page's
default timeout, and the waits for something that happens later (a peer
that restarts, a status that changes) by their own `timeout_s`. A status
that changes on its own is found the way a person finds it: by reloading
the page until it shows.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Dialog, Error, Locator, Page, expect

#: how long a peer may take to come back after Restart (2 shared cores, a busy suite)
RESTART_TIMEOUT_S = 45.0
#: how long a status may take to show (a cluster forms, the VCS polls)
STATUS_TIMEOUT_S = 45.0
#: pause between two reloads while waiting for a status
RELOAD_EVERY_S = 0.5


@dataclass(frozen=True, slots=True)
class Account:
    """Where a host's admin pages are and how to log in to them."""

    url: str  # the host's home page, e.g. https://127.72.2.4:8443/
    user: str
    password: str


def accept_dialogs(page: Page) -> list[str]:
    """Say OK to every confirmation the page asks for; returns the list of their texts."""
    messages: list[str] = []

    def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    return messages


def main_menu(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main menu")


def login(page: Page, url: str, user: str, password: str) -> None:
    """Open `url`; when the host asks, log in as `user`; return once its menu shows."""
    page.goto(url)
    if page.get_by_role("button", name="Login").count():
        page.get_by_label("Username", exact=True).fill(user)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Login").click()
    refused = page.get_by_role("alert")
    menu = main_menu(page)
    expect(menu.or_(refused).first).to_be_visible()
    if not menu.is_visible():
        raise AssertionError(f"login to {url} as {user} refused: {refused.first.inner_text()}")


def open_menu(page: Page, group: str, item: str) -> None:
    """Main menu > `group` > `item`, e.g. ("System", "Clustering"); waits for the page."""
    menu = main_menu(page)
    title = menu.get_by_text(group, exact=True).first
    title.hover()  # the vendor's menus open on hover; ours are always open
    entries = menu.get_by_role("listitem").filter(has=page.get_by_text(group, exact=True))
    link = entries.first.get_by_role("link", name=item, exact=True)
    href = link.get_attribute("href") or ""
    link.click()
    # the page we came from has a heading too: wait for the new one, styles included
    page.wait_for_url(lambda url: url.split("?")[0].split("#")[0].endswith(href))
    page.wait_for_load_state("load")
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def field(page: Page, label: str) -> Locator:
    """The form control whose visible label is `label` (exactly)."""
    return page.get_by_label(label, exact=True)


def fill(page: Page, values: dict[str, str]) -> None:
    """Type each value into the field labelled with its key (select boxes: choose it)."""
    for label, value in values.items():
        control = field(page, label)
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(label=value)
        else:
            control.fill(value)


def click(page: Page, button: str) -> None:
    page.get_by_role("button", name=button, exact=True).click()


def save(page: Page) -> None:
    """Save the form and check that the page says it was saved (not "Nothing was saved")."""
    click(page, "Save")
    saved = page.get_by_role("status").filter(has_text="Saved")
    refused = page.get_by_role("alert").filter(has_text="Nothing was saved")
    expect(saved.or_(refused).first).to_be_visible()
    if refused.count():
        raise AssertionError(f"{page.url}: not saved: {page.get_by_role('main').inner_text()}")


def started(page: Page, account: Account) -> str:
    """When the host's current process started: Status > Overview, row Started."""
    login(page, account.url, account.user, account.password)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Started"))
    return row.get_by_role("cell").first.inner_text()


def restart(page: Page, account: Account, *, timeout_s: float = RESTART_TIMEOUT_S) -> None:
    """Maintenance > Restart options > Restart, then reload until the host answers again
    from its new process (Status > Overview shows another Started time) (G-P7)."""
    before = started(page, account)
    open_menu(page, "Maintenance", "Restart options")
    click(page, "Restart")
    expect(page.get_by_role("status")).to_contain_text("restarting")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            # a person reloads until the peer is back (logging in again if it asks)
            if started(page, account) != before:
                return
            raise AssertionError(f"still the process started {before}")
        except (Error, AssertionError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{account.url} not back within {timeout_s} s: {exc}") from exc
            page.wait_for_timeout(RELOAD_EVERY_S * 1000)


def until(
    page: Page, seen: Callable[[], object], what: str, *, timeout_s: float = STATUS_TIMEOUT_S
) -> None:
    """Reload the page until `seen()` is true (an AssertionError or a Playwright error
    counts as not yet); fail after `timeout_s` showing what the page says."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if seen():
                return
            why = ""
        except (Error, AssertionError) as exc:
            why = str(exc).splitlines()[0]
        if time.monotonic() > deadline:
            try:
                shown = page.get_by_role("main").inner_text(timeout=1_000)
            except Error:
                shown = "(no page)"
            raise AssertionError(
                f"{what}: not seen on {page.url} within {timeout_s} s {why}\npage:\n{shown}"
            )
        page.wait_for_timeout(RELOAD_EVERY_S * 1000)
        with contextlib.suppress(Error):  # the host is restarting: the next reload will tell
            page.reload()


def until_shown(
    page: Page, target: Locator | str, *, timeout_s: float = STATUS_TIMEOUT_S
) -> Locator:
    """Reload until `target` (a locator, or a text in the page's main part) is visible."""
    locator = page.get_by_role("main").get_by_text(target) if isinstance(target, str) else target
    until(page, lambda: locator.first.is_visible(), f"{target}", timeout_s=timeout_s)
    return locator.first


def until_gone(
    page: Page, target: Locator, what: str, *, timeout_s: float = STATUS_TIMEOUT_S
) -> None:
    """Reload until no element matches `target` (the page itself must have loaded)."""

    def gone() -> bool:
        expect(page.get_by_role("heading", level=1)).to_be_visible(timeout=1_000)
        return target.count() == 0

    until(page, gone, what, timeout_s=timeout_s)


def until_status(
    page: Page, label: str, text: str, *, timeout_s: float = STATUS_TIMEOUT_S
) -> Locator:
    """Reload until the field labelled `label` is described by a status containing `text`.

    The status line next to a field is part of its accessible description (what
    a screen reader says with it), so this also checks that it is wired to it.
    """
    control = field(page, label)
    pattern = re.compile(re.escape(text))

    def described() -> bool:
        expect(control).to_have_accessible_description(pattern, timeout=RELOAD_EVERY_S * 1000)
        return True

    until(page, described, f"{label}: {text}", timeout_s=timeout_s)
    return control


def shot(page: Page, directory: Path, name: str) -> Path:
    """A full-page screenshot `directory/NAME.png`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


def row_text(page: Page, label: str) -> str:
    """What the form's row of the field labelled `label` says (label, status, help)."""
    return page.get_by_role("row").filter(has=field(page, label)).inner_text()


# ------------------------------------------------------------ Conductor procedures


def set_clustering(page: Page, account: Account, values: dict[str, str]) -> None:
    """System > Clustering: type `values`, Save, then put them in force with Maintenance >
    Restart options > Restart (G-P7); ends logged in again, on System > Clustering."""
    login(page, account.url, account.user, account.password)
    open_menu(page, "System", "Clustering")
    fill(page, values)
    save(page)
    restart(page, account)
    open_menu(page, "System", "Clustering")


def expect_cluster_view(page: Page, peers: list[str], me: str) -> None:
    """On `me`'s System > Clustering, Peer N shows This system for `me` and Active as
    NAME for every other peer of `peers` (in slot order); reloads until it does."""
    for slot, name in enumerate(peers, start=1):
        wanted = "This system" if name == me else f"Active as {name}"
        until_status(page, f"Peer {slot} IP address", wanted)


# --------------------------------------------------------------- the lab home page


def check_now(page: Page, home: str) -> None:
    """Lab home page > Check now: it grades the lab and shows every task's result."""
    page.goto(home)
    click(page, "Check now")
    expect(page.get_by_text("Last checked")).to_be_visible()


def tasks(page: Page) -> Locator:
    """The lab home page's tasks: one article each, named by its heading
    ("N. Title: passed" or "N. Title: not yet")."""
    return page.get_by_role("region", name="Tasks").get_by_role("article")


def task(page: Page, title: str) -> Locator:
    return tasks(page).filter(has=page.get_by_role("heading", name=title))


def expect_every_task_passed(page: Page, home: str, *, timeout_s: float) -> None:
    """Lab home page > Check now, again until it says every task passed."""
    check_now(page, home)
    until_shown(page, page.get_by_text("every task passed"), timeout_s=timeout_s)
    for article in tasks(page).all():
        expect(article.get_by_role("heading", level=3)).to_contain_text("passed")


def host_accounts(
    page: Page, home: str, passwords: dict[str, str], user: str = "admin"
) -> dict[str, Account]:
    """The admin pages of the hosts named in `passwords`, by the links of the lab home page."""
    page.goto(home)
    accounts = {}
    for host, password in passwords.items():
        link = page.get_by_role("link", name=f"{host} admin pages", exact=True)
        href = link.get_attribute("href")
        assert href, f"the lab home page has no link to {host}'s admin pages"
        accounts[host] = Account(href, user, password)
    return accounts


def address_of(account: Account) -> str:
    """The host's IP address, from its URL (what the home page's Address column says)."""
    host = urlsplit(account.url).hostname
    assert host, account.url
    return host
