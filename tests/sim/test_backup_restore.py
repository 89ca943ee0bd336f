"""Maintenance > Backup and restore (G-P4) on a peer in the simulated world: back up,
change, restore, restart, and find the configuration exactly as backed up; encrypted
files through the API; refusals (another peer's backup, wrong password, not a backup)
change nothing; the page's forms; a restored peer's shared configuration replaces the
cluster's (G-S1)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from peers.backup import PENDING_FILE
from peers.core.backup import ENC_MAGIC
from peers.web.views import SETTINGS_PAGES
from tests.sim.cluster_lab import IPS, ClusterLab
from tests.sim.peer_helpers import PeerLab, basic_auth, csrf_of, flash_of, peer_lab

BACKUP = "/api/v1/maintenance/backup"
RESTORE = "/api/v1/maintenance/restore"
ALIASES = "/api/v1/conference/aliases"
PAGE = "/maintenance/backup"
NEW_ADMIN_PASSWORD = "Conductor-admin-1"
FILE_NAME = re.compile(
    r'attachment; filename="XC3\.0_([0-9A-F]{8})_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}'
    r'_backup\.tar\.gz(\.enc)?"'
)


@dataclass
class Raw:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def raw(
    lab: PeerLab,
    method: str,
    path: str,
    *,
    data: Any = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    api: bool = True,
) -> Raw:
    """A request answering the body's bytes and the headers (downloads)."""

    if isinstance(data, bytes) and len(data) > 1024 * 1024:
        data = io.BytesIO(data)  # aiohttp warns about large raw bodies

    async def call() -> Raw:
        assert lab.session is not None
        sent = dict(headers or {})
        if api:
            sent["Authorization"] = basic_auth("admin", lab.admin_password)
        async with lab.session.request(
            method, lab.base + path, data=data, json=json_body, headers=sent, ssl=False
        ) as response:
            return Raw(response.status, await response.read(), dict(response.headers))

    return lab.sim.run(call())


@pytest.fixture
def lab() -> Iterator[PeerLab]:
    with peer_lab() as the_lab:
        yield the_lab


def configuration(lab: PeerLab) -> dict[str, Any]:
    """Everything the pages show of the configuration: every settings page's JSON
    (active and pending), the conference aliases, the default-password accounts."""
    out: dict[str, Any] = {}
    for spec in SETTINGS_PAGES.values():
        reply = lab.api("GET", spec.api_path)
        assert reply.status == 200, reply.text
        body = reply.json()
        out[spec.page] = {"settings": body["settings"], "pending": body["pending"]}
    out["aliases"] = lab.api("GET", ALIASES).json()["aliases"]
    out["users"] = lab.api("GET", "/api/v1/users").json()["users"]
    return out


def configure(lab: PeerLab, domain: str, name: str, alias: str) -> None:
    for path, body in (
        ("/api/v1/system/dns", {"domain": domain, "servers": ["127.60.0.53"]}),
        ("/api/v1/system/administration", {"system_name": name}),
    ):
        reply = lab.api("PUT", path, body)
        assert reply.status == 200, reply.text
    reply = lab.api(
        "POST",
        ALIASES,
        {"name": alias, "incoming_alias": f"{alias}@.*", "conference_name": alias},
    )
    assert reply.status == 201, reply.text


def alarm_ids(lab: PeerLab) -> set[tuple[int, str]]:
    return {
        (a["id"], a["subject"]) for a in lab.api("GET", "/api/v1/status/alarms").json()["alarms"]
    }


def events(lab: PeerLab) -> list[str]:
    return [e["event"] for e in lab.api("GET", "/api/v1/status/events").json()["events"]]


def make_backup(lab: PeerLab, password: str | None = None) -> Raw:
    reply = raw(lab, "POST", BACKUP, json_body={"password": password} if password else None)
    assert reply.status == 200, reply.body[:300]
    return reply


def restore(lab: PeerLab, data: bytes, password: str | None = None) -> Raw:
    headers = {"Content-Type": "application/octet-stream"}
    if password is not None:
        headers["X-Backup-Password"] = password
    return raw(lab, "POST", RESTORE, data=data, headers=headers)


def staged(lab: PeerLab) -> bool:
    return (lab.node.runtime.data_dir / PENDING_FILE).exists()


# -------------------------------------------------------------------- API
def test_backup_change_restore_restart_gives_the_backed_up_configuration_g_p4(
    lab: PeerLab,
) -> None:
    """G-P4: back up, change settings (peer-specific and shared), aliases and the admin
    password, restore, restart: everything is exactly as backed up."""
    configure(lab, "before.example", "Before", "meet")
    before = configuration(lab)
    reply = make_backup(lab)
    assert reply.headers["Content-Type"] == "application/gzip"
    match = FILE_NAME.fullmatch(reply.headers["Content-Disposition"])
    assert match is not None, reply.headers["Content-Disposition"]
    assert match.group(1) == lab.node.store.serial
    assert match.group(2) is None
    assert "backup_created" in events(lab)

    configure(lab, "after.example", "After", "other")
    assert lab.api("PUT", "/api/v1/system/ip", {"lan1_address": "127.60.0.5"}).status == 200
    changed = lab.api(
        "PUT",
        "/api/v1/users/admin/password",
        {"new_password": NEW_ADMIN_PASSWORD, "confirm_password": NEW_ADMIN_PASSWORD},
    )
    assert changed.status == 200
    lab.admin_password = NEW_ADMIN_PASSWORD
    assert configuration(lab) != before

    staged_reply = restore(lab, reply.body)
    assert staged_reply.status == 202, staged_reply.body
    body = staged_reply.json()
    assert body["restart_required"] is True
    assert body["encrypted"] is False
    assert body["serial"] == lab.node.store.serial
    # staged, not applied: nothing changes before the restart; 20007 says so
    assert staged(lab)
    assert lab.node.store.get("dns.domain") == "after.example"
    assert (20007, "backup") in alarm_ids(lab)
    assert lab.api("GET", "/api/v1/status").json()["restart_required"] is True

    lab.restart()
    lab.admin_password = "TANDBERG"  # the admin account is the backup's again
    assert configuration(lab) == before
    assert not staged(lab)
    assert (20007, "backup") not in alarm_ids(lab)
    assert "backup_restored" in events(lab)  # the event log itself was kept
    assert "backup_created" in events(lab)


def test_encrypted_round_trip_through_the_api_g_p4(lab: PeerLab) -> None:
    """G-P4: with an encryption password the file is .tar.gz.enc; it is refused without
    the password or with a wrong one, nothing changed; with it, it is restored."""
    configure(lab, "before.example", "Before", "meet")
    before = configuration(lab)
    reply = make_backup(lab, "backup-secret-1")
    assert reply.headers["Content-Type"] == "application/octet-stream"
    match = FILE_NAME.fullmatch(reply.headers["Content-Disposition"])
    assert match is not None
    assert match.group(2) == ".enc"
    assert reply.body.startswith(ENC_MAGIC)
    configure(lab, "after.example", "After", "other")
    after = configuration(lab)

    for password, words in (
        (None, "this backup file is encrypted"),
        ("wrong-password", "wrong encryption password, or the file was changed"),
    ):
        refused = restore(lab, reply.body, password)
        assert refused.status == 400
        assert words in refused.json()["error"]
        assert "nothing was changed" in refused.json()["error"]
        assert not staged(lab)
        assert (20007, "backup") not in alarm_ids(lab)
    assert "backup_restore_refused" in events(lab)

    accepted = restore(lab, reply.body, "backup-secret-1")
    assert accepted.status == 202, accepted.body
    assert accepted.json()["encrypted"] is True
    assert configuration(lab) == after
    lab.restart()
    assert configuration(lab) == before


def test_restore_onto_another_peer_is_refused_g_p4() -> None:
    """G-P4: a system backup can only be restored to the peer from which it was taken."""
    with peer_lab(seed=7) as first:
        data = make_backup(first).body
        serial = first.node.store.serial
    with peer_lab(seed=8) as other:
        assert other.node.store.serial != serial
        before = configuration(other)
        snapshot = other.snapshot()
        reply = restore(other, data)
        assert reply.status == 400
        error = reply.json()["error"]
        assert f"this backup was made on peer {serial}" in error
        assert "can only be restored to the peer from which it was taken" in error
        assert not staged(other)
        assert other.snapshot() == snapshot
        other.restart()
        assert configuration(other) == before


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"", {}, 400, "the request body must be the backup file"),
        (b"not a backup", {}, 400, "not a tplab backup file"),
        (b"x", {"X-Backup-Password": "p" * 1025}, 400, "at most 1024 characters"),
        (b"\x1f\x8b" + b"\x00" * (1024 * 1024), {}, 413, "larger than any system backup"),
    ],
)
def test_restore_api_refusals_change_nothing_g_p4(
    lab: PeerLab, body: bytes, headers: dict[str, str], status: int, words: str
) -> None:
    snapshot = lab.snapshot()
    reply = raw(lab, "POST", RESTORE, data=body, headers=headers)
    assert reply.status == status
    assert words in reply.json()["error"]
    assert lab.snapshot() == snapshot
    assert not staged(lab)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([], "must be a JSON object"),
        ({"password": 5}, "password must be text"),
        ({"pasword": "x"}, "unknown field(s) pasword"),
        ({"password": "p" * 1025}, "at most 1024 characters"),
    ],
)
def test_backup_api_refuses_bad_bodies_g_p4(lab: PeerLab, body: Any, words: str) -> None:
    reply = lab.api("POST", BACKUP, body)
    assert reply.status == 400
    assert words in reply.json()["error"]


def test_api_needs_http_basic_g_p4(lab: PeerLab) -> None:
    assert raw(lab, "POST", BACKUP, api=False).status == 401
    assert raw(lab, "POST", RESTORE, data=b"x", api=False).status == 401


# ------------------------------------------------------------------- page
def restore_form(
    token: str, data: bytes, *, password: str = "", name: str = "b.tar.gz"
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("action", "restore")
    form.add_field("password", password)
    form.add_field("backup_file", data, filename=name, content_type="application/gzip")
    return form


def test_page_forms_create_and_restore_g_p4(lab: PeerLab) -> None:
    """Maintenance > Backup and restore: Create system backup file downloads the file;
    Restore uploads it, refusals are the page's error, nothing changed; an accepted
    file is restored at the restart (Maintenance > Restart options)."""
    assert lab.login().status == 200
    configure(lab, "before.example", "Before", "meet")
    before = configuration(lab)
    page = lab.page(PAGE)
    assert page.status == 200
    for words in ("Encryption password", "Create system backup file", "Restore file", "Restore"):
        assert words in page.text
    token = csrf_of(page.text)

    download = raw(
        lab,
        "POST",
        PAGE,
        data={"csrf_token": token, "action": "create", "password": "page-secret-1"},
        api=False,
    )
    assert download.status == 200
    match = FILE_NAME.fullmatch(download.headers["Content-Disposition"])
    assert match is not None
    assert match.group(2) == ".enc"

    configure(lab, "after.example", "After", "other")
    after = configuration(lab)
    for data, password, words in (
        (b"not a backup", "", "Restore refused: not a tplab backup file"),
        (download.body, "", "this backup file is encrypted"),
        (download.body, "wrong", "wrong encryption password, or the file was changed"),
    ):
        reply = lab.request("POST", PAGE, data=restore_form(token, data, password=password))
        assert reply.status == 400
        assert words in reply.text
        assert "Nothing was changed" in reply.text
        assert not staged(lab)
    assert configuration(lab) == after

    no_file = lab.request("POST", PAGE, data={"csrf_token": token, "action": "restore"})
    assert no_file.status == 400
    assert "Choose a system backup file" in no_file.text

    reply = lab.request(
        "POST", PAGE, data=restore_form(token, download.body, password="page-secret-1")
    )
    assert reply.status == 200
    assert reply.history == (303,)
    assert flash_of(reply.text).startswith("Restore:")
    assert 'id="restore-staged"' in reply.text
    assert "Restart required" in reply.text
    assert "A restored system backup" in lab.page("/maintenance/restart").text
    assert configuration(lab) == after

    lab.restart(via="page")
    assert configuration(lab) == before
    assert lab.login().status == 200
    assert 'id="restore-staged"' not in lab.page(PAGE).text


def test_page_forms_need_the_csrf_token_g_p4(lab: PeerLab) -> None:
    assert lab.login().status == 200
    reply = raw(lab, "POST", PAGE, data={"action": "create"}, api=False)
    assert reply.status == 403
    reply = raw(lab, "POST", PAGE, data=restore_form("forged", b"x"), api=False)
    assert reply.status == 403
    assert not staged(lab)


# ---------------------------------------------------------------- cluster
def test_a_restored_peer_s_shared_configuration_replaces_the_cluster_s_g_p4_g_s1() -> None:
    """The restored shared entries are written as new versions: they replicate, and
    win, on the other peers; peer-specific settings stay each peer's own (G-S2)."""
    initial, second = IPS["conductor-initial"], IPS["conductor-2"]
    lab = ClusterLab(hosts=("conductor-initial", "conductor-2"))
    try:
        lab.put("conductor-initial", "clustering", {"key": "cluster-secret", "peer1": initial})
        lab.restart("conductor-initial")
        for host in ("conductor-initial", "conductor-2"):
            lab.put(
                host, "clustering", {"key": "cluster-secret", "peer1": initial, "peer2": second}
            )
            lab.restart(host)
        lab.put("conductor-initial", "administration", {"system_name": "Backed up"})
        lab.wait(10)
        assert lab.statuses("conductor-2")[initial] == "Active as conductor-initial"

        async def download() -> bytes:
            assert lab.session is not None
            async with lab.session.post(
                f"https://{initial}:8443{BACKUP}",
                ssl=False,
                headers={"Authorization": basic_auth("admin", "TANDBERG")},
            ) as response:
                assert response.status == 200
                return await response.read()

        data = lab.sim.run(download())
        lab.put("conductor-2", "administration", {"system_name": "Changed later"})
        lab.put("conductor-2", "dns", {"domain": "two.example"})
        lab.wait(5)

        async def upload() -> int:
            assert lab.session is not None
            async with lab.session.post(
                f"https://{initial}:8443{RESTORE}",
                data=data,
                ssl=False,
                headers={"Authorization": basic_auth("admin", "TANDBERG")},
            ) as response:
                return response.status

        assert lab.sim.run(upload()) == 202
        lab.restart("conductor-initial")
        lab.wait(10)
        for host in ("conductor-initial", "conductor-2"):
            _, admin = lab.api(host, "GET", "/api/v1/system/administration")
            assert admin["settings"]["system_name"] == "Backed up", host
        _, dns = lab.api("conductor-2", "GET", "/api/v1/system/dns")
        assert dns["settings"]["domain"] == "two.example"  # G-S2: its own
        assert lab.statuses("conductor-2")[initial] == "Active as conductor-initial"
    finally:
        lab.close()
