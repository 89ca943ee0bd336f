"""Maintenance > Upgrade in the simulated world (G-P6, G-R1).

A software image uploaded over the JSON API or the page's form is verified,
installed in the peer's data dir, and the peer restarts on its version; a refused
image changes nothing. A cluster peer upgraded alone stops clustering with the
others (software version mismatch on both sides, alarm 20008) until they run the
same version again. Virtual time is free: the tests wait generously.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from emulator.image import build_image
from emulator.scenario.lab import SimLab
from netsim.topology import parse_topology
from peers.core.image import MAX_IMAGE_BYTES
from peers.node import SOFTWARE_VERSION
from tests.sim.cluster_lab import AUTH, IPS, ClusterLab
from tests.sim.peer_helpers import PeerLab, csrf_of, peer_lab

BUILT = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)
XC31 = build_image("XC3.1", built=BUILT)
UPGRADE = "/api/v1/maintenance/upgrade"
KEY = "cluster-secret"
NTP = ["127.1.9.1"]
#: HELLOs settle, a restarted peer is seen again
SETTLE_S = 30.0
INITIAL, SECOND = IPS["conductor-initial"], IPS["conductor-2"]


def upload(lab: ClusterLab, host: str, data: bytes) -> tuple[int, Any]:
    """POST the image's bytes as the request body, as `tplab` scenarios and scripts do."""

    async def call() -> tuple[int, Any]:
        assert lab.session is not None
        async with lab.session.post(
            f"https://{IPS[host]}:8443{UPGRADE}",
            data=io.BytesIO(data),
            ssl=False,
            headers={"Authorization": AUTH, "Content-Type": "application/octet-stream"},
        ) as response:
            return response.status, await response.json()

    return lab.sim.run(call())


def version(lab: ClusterLab, host: str) -> str:
    status, answer = lab.api(host, "GET", "/api/v1/status")
    assert status == 200, answer
    running: str = answer["software_version"]
    return running


def events(lab: ClusterLab, host: str, name: str) -> list[dict[str, Any]]:
    _, answer = lab.api(host, "GET", "/api/v1/status/events")
    return [e for e in answer["events"] if e["event"] == name]


@pytest.fixture
def single() -> Iterator[ClusterLab]:
    lab = ClusterLab(hosts=("conductor-initial",))
    yield lab
    lab.close()


# -------------------------------------------------------------------- API
def test_g_p6_upload_installs_restarts_and_runs_the_new_version(single: ClusterLab) -> None:
    """G-P6: POST the image -> 202, the peer restarts and reports XC3.1 (status, upgrade
    page twin, event log); the image survives later restarts."""
    lab, host = single, "conductor-initial"
    status, answer = lab.api(host, "GET", UPGRADE)
    assert (status, answer) == (200, {"version": SOFTWARE_VERSION, "installed": None})
    before = lab.nodes[host]

    status, answer = upload(lab, host, XC31)
    assert (status, answer) == (
        202,
        {"version": "XC3.1", "previous": SOFTWARE_VERSION, "restarting": True},
    )
    lab.wait(2.0)
    assert lab.nodes[host] is not before  # a new node: the peer restarted
    assert version(lab, host) == "XC3.1"
    status, answer = lab.api(host, "GET", UPGRADE)
    assert answer["version"] == "XC3.1"
    installed = answer["installed"]
    assert (installed["version"], installed["previous"]) == ("XC3.1", SOFTWARE_VERSION)
    assert installed["file"] == "tplab-conductor-XC3.1.img"
    assert installed["built"] == "2026-01-05T10:00:00+00:00"
    (event,) = events(lab, host, "software_installed")
    assert event["detail"]["version"] == "XC3.1"
    assert event["detail"]["downgrade"] is False

    lab.restart(host, settle_s=2.0)  # Maintenance > Restart keeps the installed version
    assert version(lab, host) == "XC3.1"


def test_g_p6_downgrade_is_allowed_and_logged(single: ClusterLab) -> None:
    """An older image may be installed (the guide does not forbid it): logged as one."""
    lab, host = single, "conductor-initial"
    assert upload(lab, host, build_image("XC3.2", built=BUILT))[0] == 202
    lab.wait(2.0)
    assert version(lab, host) == "XC3.2"
    status, answer = upload(lab, host, XC31)
    assert (status, answer["previous"]) == (202, "XC3.2")
    lab.wait(2.0)
    assert version(lab, host) == "XC3.1"
    assert events(lab, host, "software_installed")[0]["detail"]["downgrade"] is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a software image: the file is empty"),
        (b"<html>not an image</html>", "not a TelePresence Conductor software image"),
        (XC31[:-10], "the image is truncated"),
        (
            build_image("XC3.1", built=BUILT, key=Ed25519PrivateKey.generate()),
            "not signed with the TelePresence Conductor release key",
        ),
    ],
)
def test_g_p6_refused_image_changes_nothing(single: ClusterLab, data: bytes, message: str) -> None:
    lab, host = single, "conductor-initial"
    before = lab.nodes[host]
    status, answer = upload(lab, host, data)
    assert status == 400
    assert message in answer["error"]
    assert answer["error"].startswith("upgrade refused: ")
    assert answer["error"].endswith("; nothing was changed")
    lab.wait(2.0)
    assert lab.nodes[host] is before  # no restart
    assert version(lab, host) == SOFTWARE_VERSION
    assert lab.api(host, "GET", UPGRADE)[1]["installed"] is None
    assert not (lab.sim.runtime(host).data_dir / "software.json").exists()
    (event,) = events(lab, host, "upgrade_refused")
    assert message in event["detail"]["reason"]


@pytest.mark.parametrize("size", [MAX_IMAGE_BYTES + 1, 3 * 1024 * 1024])
def test_g_p6_oversized_upload_refused_with_413(single: ClusterLab, size: int) -> None:
    lab, host = single, "conductor-initial"
    status, answer = upload(lab, host, XC31 + bytes(size - len(XC31)))
    assert status == 413
    assert "larger than any software image" in answer["error"]
    assert version(lab, host) == SOFTWARE_VERSION


def test_explicit_software_version_wins_over_the_installed_image(single: ClusterLab) -> None:
    """Tests and `python -m peers --software-version` may still pin a version (G-R1)."""
    lab, host = single, "conductor-initial"
    assert upload(lab, host, XC31)[0] == 202
    lab.wait(2.0)
    lab.kill(host)
    lab.start(host, version="XC9.9")
    assert version(lab, host) == "XC9.9"
    assert lab.api(host, "GET", UPGRADE)[1]["installed"]["version"] == "XC3.1"


def test_damaged_installed_image_falls_back_to_the_factory_version(single: ClusterLab) -> None:
    """A damaged image in the data dir is not run: the factory version, and the event
    log says why."""
    lab, host = single, "conductor-initial"
    assert upload(lab, host, XC31)[0] == 202
    lab.wait(2.0)
    image = lab.sim.runtime(host).data_dir / "software" / "tplab-conductor-XC3.1.img"
    image.write_bytes(XC31[:-1])
    lab.restart(host, settle_s=2.0)
    assert version(lab, host) == SOFTWARE_VERSION
    (event,) = events(lab, host, "installed_software_unusable")
    assert "truncated" in event["detail"]["reason"]


# ---------------------------------------------------------------- cluster
def alarm_subjects(lab: ClusterLab, host: str, code: int) -> set[str]:
    _, answer = lab.api(host, "GET", "/api/v1/status/alarms")
    return {a["subject"] for a in answer["alarms"] if a["id"] == code}


def test_g_r1_g_p6_one_upgraded_peer_mismatches_until_the_other_is_upgraded() -> None:
    """G-R1: with one peer of two upgraded, both sides show the software version
    mismatch and alarm 20008; once the other runs the same version too (G-P6), both are
    Active again and the alarm clears."""
    lab = ClusterLab(hosts=("conductor-initial", "conductor-2"))
    try:
        for host in ("conductor-initial", "conductor-2"):
            lab.put(host, "time", {"ntp_servers": NTP})
        lab.put("conductor-initial", "clustering", {"key": KEY, "peer1": INITIAL})
        lab.restart("conductor-initial")
        lab.put("conductor-initial", "clustering", {"peer2": SECOND})
        lab.restart("conductor-initial")
        lab.put("conductor-2", "clustering", {"key": KEY, "peer1": INITIAL, "peer2": SECOND})
        lab.restart("conductor-2")
        lab.wait(SETTLE_S)
        assert lab.statuses("conductor-initial")[SECOND] == "Active as conductor-2"
        assert lab.statuses("conductor-2")[INITIAL] == "Active as conductor-initial"

        assert upload(lab, "conductor-2", XC31)[0] == 202
        lab.wait(SETTLE_S)
        assert version(lab, "conductor-2") == "XC3.1"
        mismatch = "Failed: software version mismatch"
        assert lab.statuses("conductor-initial")[SECOND] == (
            f"{mismatch} ({SOFTWARE_VERSION} here, XC3.1 on peer)"
        )
        assert lab.statuses("conductor-2")[INITIAL] == (
            f"{mismatch} (XC3.1 here, {SOFTWARE_VERSION} on peer)"
        )
        assert SECOND in alarm_subjects(lab, "conductor-initial", 20008)
        assert INITIAL in alarm_subjects(lab, "conductor-2", 20008)

        assert upload(lab, "conductor-initial", XC31)[0] == 202
        lab.wait(SETTLE_S)
        assert version(lab, "conductor-initial") == "XC3.1"
        assert lab.statuses("conductor-initial")[SECOND] == "Active as conductor-2"
        assert lab.statuses("conductor-2")[INITIAL] == "Active as conductor-initial"
        assert not alarm_subjects(lab, "conductor-initial", 20008)
        assert not alarm_subjects(lab, "conductor-2", 20008)
    finally:
        lab.close()


# ------------------------------------------------------------------- page
@pytest.fixture
def admin() -> Iterator[PeerLab]:
    with peer_lab() as lab:
        reply = lab.login()
        assert reply.status == 200, reply.text
        yield lab


def post_image(lab: PeerLab, data: bytes | None, *, csrf: bool = True) -> Any:
    form = aiohttp.FormData()
    if csrf:
        form.add_field("csrf_token", csrf_of(lab.page("/maintenance/upgrade").text))
    if data is not None:
        form.add_field("image", data, filename="image.img", content_type="application/octet-stream")
    return lab.request("POST", "/maintenance/upgrade", data=form)


def test_g_p6_upgrade_page_form_installs_and_restarts(admin: PeerLab) -> None:
    """Maintenance > Upgrade: Browse, select the image, Upgrade; the peer comes back on
    the new version and the page shows it."""
    page = admin.page("/maintenance/upgrade")
    assert page.status == 200
    assert '<label for="software-image">Software image</label>' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert f"<strong>{SOFTWARE_VERSION}</strong>" in page.text
    assert "None: the factory software runs" in page.text

    reply = post_image(admin, XC31)
    assert reply.status == 200, reply.text
    assert "The software image XC3.1 is installed. The system is restarting" in reply.text
    admin.restarted()
    assert admin.node.software_version == "XC3.1"
    page = admin.page("/maintenance/upgrade")
    assert page.status == 200  # still logged in
    assert "<strong>XC3.1</strong>" in page.text
    assert "tplab-conductor-XC3.1.img" in page.text
    assert admin.api("GET", "/api/v1/status").json()["software_version"] == "XC3.1"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "Choose a software image file to upload."),
        (b"not an image", "Upgrade refused: not a TelePresence Conductor software image."),
        (
            build_image("XC3.1", built=BUILT, key=Ed25519PrivateKey.generate()),
            "Upgrade refused: the image is not signed with the TelePresence Conductor "
            "release key. Nothing was changed.",
        ),
    ],
)
def test_g_p6_upgrade_page_refusal_shows_why_and_changes_nothing(
    admin: PeerLab, data: bytes | None, message: str
) -> None:
    reply = post_image(admin, data)
    assert reply.status == 400
    assert message in reply.text
    assert 'aria-invalid="true"' in reply.text
    assert admin.running()
    assert admin.node.software_version == SOFTWARE_VERSION


def test_upgrade_form_without_its_security_token_is_refused(admin: PeerLab) -> None:
    reply = post_image(admin, XC31, csrf=False)
    assert reply.status == 403
    assert admin.running()
    assert admin.node.software_version == SOFTWARE_VERSION


# --------------------------------------------------------- scenario SimLab
def test_scenario_sim_lab_restarts_an_upgraded_peer_on_its_new_version() -> None:
    """The scenario runner's SimLab makes a new node after the upgrade's restart, and it
    runs the installed version (as the supervisor's new process does)."""
    topology = parse_topology(
        "version: 1\nhosts:\n  - {name: conductor-a, role: conductor, ip: 127.62.9.1}\n",
        source="upgrade-test",
    )
    lab = SimLab(topology, seed=3)
    try:
        lab.run(lab.open())

        async def upgrade() -> int:
            assert lab.session is not None
            async with lab.session.post(
                f"https://127.62.9.1:8443{UPGRADE}",
                data=XC31,
                ssl=False,
                headers={"Authorization": AUTH},
            ) as response:
                return response.status

        assert lab.run(upgrade()) == 202
        lab.run(asyncio.sleep(2.0))
        assert lab.restarts("conductor-a") == 1
        status, answer = lab.run(
            lab.request("conductor-a", "GET", "/api/v1/status", password="TANDBERG")
        )
        assert (status, answer["software_version"]) == (200, "XC3.1")
    finally:
        lab.close()
