"""The peer's configuration store: durable, versioned, shared and peer-specific apart."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from peers.core.settings import SETTINGS, Scope, SettingErrors
from peers.store import DEFAULT_PASSWORD, SCHEMA_VERSION, ConfigStore, StoreError


def open_store(path: Path) -> ConfigStore:
    return ConfigStore(f"sqlite:///{path / 'store.sqlite'}", rng=random.Random(1))


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    serial = store.serial
    store.save({"dns.domain": "example.com", "clustering.peer1": "127.1.2.4"}, user="admin")
    store.set_password("admin", "s3cret-pass", user="admin")
    store.close()
    again = open_store(tmp_path)
    assert again.serial == serial
    assert again.get("dns.domain") == "example.com"
    assert again.pending() == {"clustering.peer1": "127.1.2.4"}  # G-P7: still pending
    assert again.verify_password("admin", "s3cret-pass")
    assert again.default_passwords() == ["root"]
    assert again.apply_pending() == {"clustering.peer1": "127.1.2.4"}
    assert again.get("clustering.peer1") == "127.1.2.4"


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    engine = create_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE meta SET value = :v WHERE key = 'schema_version'"),
            {"v": str(SCHEMA_VERSION + 1)},
        )
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this software"):
        open_store(tmp_path)


def test_invalid_changes_save_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    before = (store.settings(), store.pending(), store.config_log())
    with pytest.raises(SettingErrors) as caught:
        store.save({"dns.domain": "ok.example", "ethernet.mtu": 99999}, user="admin")
    assert "MTU" in str(caught.value)
    assert (store.settings(), store.pending(), store.config_log()) == before


def test_password_rules_and_default_password(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert store.verify_password("admin", DEFAULT_PASSWORD)
    for bad in ("short", DEFAULT_PASSWORD, "x" * 200):
        with pytest.raises(SettingErrors):
            store.set_password("admin", bad, user="admin")
    assert store.default_passwords() == ["admin", "root"]


def test_shared_and_peer_specific_scopes_follow_the_guide_g_s1_g_s2() -> None:
    """G-S2: the guide's peer-specific list is PEER scope; the admin account is shared."""
    peer_specific = {
        "clustering.key", "clustering.peer1", "ethernet.speed", "ip.lan1_address",
        "ip.lan1_mask", "ip.gateway", "ip.additional_addresses", "dns.host_name", "dns.domain",
        "dns.servers", "time.ntp_servers", "time.zone", "snmp.community",
        "logging.syslog_servers", "access.ssh", "access.lcd_panel", "locations.adhoc_ip",
        "locations.rendezvous_ip",
    }  # fmt: skip
    for key in peer_specific:
        assert SETTINGS[key].scope is Scope.PEER, key
    assert SETTINGS["administration.system_name"].scope is Scope.SHARED
