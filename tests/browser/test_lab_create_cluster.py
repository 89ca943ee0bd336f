"""The create-cluster training lab done as a trainee does it: in Chromium, by menus
and labels only (G-P1, G-P2, G-P3, G-P7).

`tplab lab start create-cluster` starts three standalone peers (passwords
already changed) and a VCS whose policy service has no server yet, on
127.72.x.y with the lab home page on port 7472. From the home page on, the
work is done in the hosts' admin pages with `tests.browser.admin`: main menu
entries, fields found by their visible labels, buttons by their names,
statuses read the way a person reads them (reloading the page). No JSON API
and no URL path is used for the work itself. axe-core checks every distinct
page visited; pictures of the key moments go to
`test-artifacts/labs/create-cluster/`. The lab is always stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.admin import (
    accept_dialogs,
    address_of,
    check_now,
    expect_cluster_view,
    expect_every_task_passed,
    field,
    fill,
    host_accounts,
    login,
    open_menu,
    restart,
    save,
    set_clustering,
    shot,
    tasks,
    until_status,
)
from tests.browser.conftest import AxeCheck, NetworkLog, TrainingLab

pytestmark = pytest.mark.browser

#: the lab's accounts and names (scenarios/labs/create-cluster.yaml)
PEER_PASSWORD = "Lab-Passw0rd"
VCS_PASSWORD = "TANDBERG"
CLUSTER_KEY = "cluster-secret"
VCS_SERVICE = "Conductors"
PEERS = ["conductor-initial", "conductor-2", "conductor-3"]
#: the home page grades the lab on request; how long the last task may take to show passed
GRADE_TIMEOUT_S = 60.0


def test_create_cluster_lab_in_the_browser(
    lab_page: Page,
    network_log: NetworkLog,
    axe: AxeCheck,
    artifacts_dir: Path,
    training_lab: Callable[[str, int], TrainingLab],
) -> None:
    """The deployment guide's procedure in the admin pages. G-P1: on conductor-initial
    a Cluster pre-shared key and Peer 1 = itself, Save, Restart: This system.
    G-P2: conductor-2 then conductor-3 join: the existing peers list the new one and
    restart; the new peer sets the key and the peer list and restarts; every peer shows
    This system / Active as NAME. G-P7: a saved clustering change waits for Maintenance >
    Restart options > Restart. G-P3: the VCS's policy service gets the three addresses
    and the Conductor's admin account and shows Active. Last communication. Then the lab
    home page shows every task passed and `tplab lab check` exits 0."""
    page = lab_page
    shots = artifacts_dir / "labs" / "create-cluster"
    accept_dialogs(page)
    lab = training_lab("create-cluster", 7472)
    printed = lab.start("--subnet", "72")
    # what the trainee is told: the home page and the changed passwords
    assert lab.home in printed, printed
    assert f"admin / {PEER_PASSWORD}" in printed, printed

    check_now(page, lab.home)
    expect(tasks(page)).to_have_count(4)
    for article in tasks(page).all():
        expect(article.get_by_role("heading", level=3)).to_contain_text("not yet")
    axe(page, "lab home page")
    shot(page, shots, "01-lab-home")
    passwords = dict.fromkeys(PEERS, PEER_PASSWORD) | {"vcs": VCS_PASSWORD}
    accounts = host_accounts(page, lab.home, passwords)
    ips = {host: address_of(accounts[host]) for host in PEERS}

    # G-P1: the initial peer
    initial = accounts["conductor-initial"]
    page.goto(initial.url)
    axe(page, "Conductor login")
    login(page, initial.url, initial.user, initial.password)
    open_menu(page, "System", "Clustering")
    axe(page, "Conductor System > Clustering")
    fill(page, {"Cluster pre-shared key": CLUSTER_KEY, "Peer 1 IP address": ips[PEERS[0]]})
    save(page)
    # G-P7: saved, not yet in force
    expect(page.get_by_role("alert")).to_contain_text("Restart required")
    shot(page, shots, "02-initial-saved")
    open_menu(page, "Maintenance", "Restart options")
    axe(page, "Conductor Maintenance > Restart options")
    restart(page, initial)
    open_menu(page, "System", "Clustering")
    expect_cluster_view(page, PEERS[:1], PEERS[0])
    shot(page, shots, "03-initial-this-system")

    # G-P2: conductor-2, then conductor-3
    for slot, new in enumerate(PEERS[1:], start=2):
        members = PEERS[:slot]
        for existing in members[:-1]:
            set_clustering(page, accounts[existing], {f"Peer {slot} IP address": ips[new]})
        values = {"Cluster pre-shared key": CLUSTER_KEY}
        values |= {f"Peer {n} IP address": ips[host] for n, host in enumerate(members, 1)}
        set_clustering(page, accounts[new], values)
        expect_cluster_view(page, members, new)
        shot(page, shots, f"04-{new}-joined")
    for host in PEERS[:-1]:  # conductor-3's own view was seen just now
        account = accounts[host]
        login(page, account.url, account.user, account.password)
        open_menu(page, "System", "Clustering")
        expect_cluster_view(page, PEERS, host)
    shot(page, shots, "05-cluster-of-three")

    # G-P3: the VCS's policy service for the cluster
    vcs = accounts["vcs"]
    page.goto(vcs.url)
    axe(page, "VCS login")
    login(page, vcs.url, vcs.user, vcs.password)
    open_menu(page, "Configuration", "Dial plan > Policy services")
    axe(page, "VCS Configuration > Dial plan > Policy services")
    # the guide: "Click on the policy service for the TelePresence Conductor cluster"
    page.get_by_role("main").get_by_role("link", name=VCS_SERVICE, exact=True).click()
    fill(page, {"Username": "admin", "Password": PEER_PASSWORD})
    fill(page, {f"Server {n} address": ips[host] for n, host in enumerate(PEERS, 1)})
    axe(page, "VCS policy service")
    save(page)
    page.get_by_role("main").get_by_role("link", name=VCS_SERVICE, exact=True).click()
    for n in (1, 2, 3):
        until_status(page, f"Server {n} address", "Active. Last communication:")
    expect(field(page, "Server 1 address")).to_have_value(ips[PEERS[0]])
    shot(page, shots, "06-vcs-active")
    open_menu(page, "Status", "Policy services")
    expect(page.get_by_role("main")).to_contain_text("Active. Last communication:")
    axe(page, "VCS Status > Policy services")

    expect_every_task_passed(page, lab.home, timeout_s=GRADE_TIMEOUT_S)
    shot(page, shots, "07-lab-home-passed")
    code, grade = lab.check()
    assert code == 0, grade
    assert grade["passed"] is True
    assert network_log.blocked == []
