"""The troubleshoot-cluster training lab done as a trainee does it: in Chromium, by
menus and labels only (G-R12, G-P7).

`tplab lab start troubleshoot-cluster --fault key-mismatch` starts a working
three-peer cluster and its VCS on 127.73.x.y (home page on port 7473), then
gives one peer (the seed picks which) another pre-shared key. The test finds
that peer the way the lab's introduction says, in System > Clustering, and
mends it in the admin pages with `tests.browser.admin`. axe-core checks every
distinct page visited; pictures go to `test-artifacts/labs/troubleshoot-cluster/`.
The lab is always stopped.
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
    row_text,
    save,
    shot,
    task,
    until_status,
)
from tests.browser.conftest import AxeCheck, NetworkLog, TrainingLab

pytestmark = pytest.mark.browser

#: the lab's accounts and key (scenarios/labs/troubleshoot-cluster.yaml)
PEER_PASSWORD = "Lab-Passw0rd"
CLUSTER_KEY = "cluster-secret"
PEERS = ["conductor-initial", "conductor-2", "conductor-3"]
CLUSTER_TASK = "Every peer is Active with the other two"
MISMATCH = "pre-shared key mismatch"
#: the home page grades the lab on request; alarms may take a moment to clear
GRADE_TIMEOUT_S = 60.0


def test_troubleshoot_lab_in_the_browser(
    lab_page: Page,
    network_log: NetworkLog,
    axe: AxeCheck,
    artifacts_dir: Path,
    training_lab: Callable[[str, int], TrainingLab],
) -> None:
    """The key-mismatch fault (G-R12): the lab home page shows the cluster task not yet
    done, with a hint naming the pre-shared key; conductor-initial's System > Clustering
    shows which peer disagrees, and on that peer both others show the mismatch; the key
    is typed again, saved and put in force by Maintenance > Restart options > Restart
    (G-P7); every peer is Active again, and the lab home page and `tplab lab check` say
    every task passed."""
    page = lab_page
    shots = artifacts_dir / "labs" / "troubleshoot-cluster"
    accept_dialogs(page)
    lab = training_lab("troubleshoot-cluster", 7473)
    lab.start("--fault", "key-mismatch", "--seed", "7", "--subnet", "73")

    check_now(page, lab.home)
    cluster = task(page, CLUSTER_TASK)
    expect(cluster.get_by_role("heading", level=3)).to_contain_text("not yet")
    expect(cluster.get_by_role("list")).to_contain_text(MISMATCH)
    axe(page, "lab home page (troubleshooting)")
    shot(page, shots, "01-lab-home-not-yet")
    accounts = host_accounts(page, lab.home, dict.fromkeys(PEERS, PEER_PASSWORD))
    ips = {host: address_of(accounts[host]) for host in PEERS}
    by_ip = {ip: host for host, ip in ips.items()}

    # the introduction's first look: Status > Alarms and System > Clustering
    initial = accounts["conductor-initial"]
    login(page, initial.url, initial.user, initial.password)
    open_menu(page, "Status", "Alarms")
    expect(page.get_by_role("main")).to_contain_text(MISMATCH)
    axe(page, "Conductor Status > Alarms")
    open_menu(page, "System", "Clustering")
    slots = [n for n in (1, 2, 3) if MISMATCH in row_text(page, f"Peer {n} IP address")]
    assert slots, f"conductor-initial shows no peer with a {MISMATCH}"
    shot(page, shots, "02-initial-sees-a-mismatch")
    if len(slots) > 1:  # both others disagree with conductor-initial: it is the odd one
        odd = "conductor-initial"
    else:
        odd = by_ip[field(page, f"Peer {slots[0]} IP address").input_value()]

    # on the odd peer both others show the mismatch; type the cluster's key again
    account = accounts[odd]
    login(page, account.url, account.user, account.password)
    open_menu(page, "System", "Clustering")
    for n, host in enumerate(PEERS, start=1):
        if host != odd:
            until_status(page, f"Peer {n} IP address", MISMATCH)
    shot(page, shots, f"03-{odd}-mismatch")
    fill(page, {"Cluster pre-shared key": CLUSTER_KEY})
    save(page)
    restart(page, account)
    open_menu(page, "System", "Clustering")
    expect_cluster_view(page, PEERS, odd)
    shot(page, shots, f"04-{odd}-active")

    expect_every_task_passed(page, lab.home, timeout_s=GRADE_TIMEOUT_S)
    shot(page, shots, "05-lab-home-passed")
    code, grade = lab.check()
    assert code == 0, grade
    assert grade["passed"] is True
    assert network_log.blocked == []
