"""The pure conference configuration core: validation of conference bridges (G-B1, G-R8),
pools, service preferences and templates, the reference rules, deleting all bridges
(G-P5, G-B2), loading replicated entries (G-S1) and the cached accessors."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peers.core.conference_config import (
    DEFAULT_PORTS,
    FIELDS,
    PRODUCT_PORTS,
    ConferenceConfig,
    ConferenceTemplate,
    Section,
    alias_templates_of,
    api_json,
    bridges_of,
    changed_values,
    conference_config_of,
    config_of,
    delete_refusal,
    emptied_pools,
    key_of,
    load_conference_config,
    referrers,
    stored_json,
    template_for_alias,
    templates_of,
    validate,
)
from peers.core.hlc import Version
from peers.core.placement import Bridge, BridgeKind, Pool, ServicePreference, Template
from peers.core.policy import ALIAS_PREFIX, validate_alias
from peers.core.replication import Entry
from peers.core.settings import SettingErrors
from peers.store import ConfigStore

TS = {
    "name": "ts1",
    "type": "telepresence_server",
    "address": "127.1.3.1",
    "username": "admin",
    "password": "secret",
}
MCU = {"name": "mcu1", "type": "telepresence_mcu", "address": "mcu1.example.com", "username": "a"}
_T = TypeVar("_T")


def errors_of(section: Section, values: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    with pytest.raises(SettingErrors) as caught:
        validate(section, values, **kwargs)
    return {e.key: str(e) for e in caught.value.errors}


def chain() -> ConferenceConfig:
    """ts1, mcu1; pool ts-pool [ts1]; preference pref [ts-pool]; template t; alias a -> t."""
    return load_conference_config(
        [
            ("conference_bridge:ts1", {**TS, "protocol": "HTTPS", "port": 8443, "enabled": True}),
            ("conference_bridge:mcu1", stored_json(validate(Section.BRIDGE, MCU))),
            (
                "conference_pool:ts-pool",
                {"name": "ts-pool", "type": "telepresence_server", "bridges": ["ts1"]},
            ),
            ("service_preference:pref", {"name": "pref", "pools": ["ts-pool"]}),
            (
                "conference_template:t",
                {
                    "name": "t",
                    "type": "meeting",
                    "service_preference": "pref",
                    "participant_limit": 0,
                    "cascades_reserved": 0,
                },
            ),
            (
                ALIAS_PREFIX + "a",
                {"name": "a", "incoming_alias": "x", "conference_name": "c", "template": "t"},
            ),
        ]
    )


# ------------------------------------------------------------------ bridges
def test_bridge_defaults_port_follows_protocol_with_tplab_ports_g_r8() -> None:
    bridge = validate(Section.BRIDGE, TS, strict_types=True)
    assert bridge == Bridge(
        "ts1", BridgeKind.TELEPRESENCE_SERVER, "127.1.3.1", "HTTPS", 8443, "admin", "secret"
    )
    http = validate(Section.BRIDGE, {**TS, "protocol": "HTTP"}, strict_types=True)
    assert isinstance(http, Bridge)
    assert http.port == DEFAULT_PORTS["HTTP"] == 8080
    assert PRODUCT_PORTS == {"HTTPS": 443, "HTTP": 80}  # the product's, for the record
    # G-R8: on a change of protocol a default port follows it; a chosen port stays
    assert validate(Section.BRIDGE, changed_values(bridge, {"protocol": "HTTP"})) == http
    custom = validate(Section.BRIDGE, {**TS, "port": 9000})
    assert isinstance(custom, Bridge)
    moved = validate(Section.BRIDGE, changed_values(custom, {"protocol": "HTTP"}))
    assert isinstance(moved, Bridge)
    assert (moved.protocol, moved.port) == ("HTTP", 9000)
    # a secret not given is kept
    assert changed_values(bridge, {"enabled": False})["password"] == "secret"


def test_bridge_page_values_are_text_api_values_typed() -> None:
    page = {**TS, "port": "", "protocol": "HTTP", "enabled": "disabled"}
    bridge = validate(Section.BRIDGE, page)
    assert isinstance(bridge, Bridge)
    assert (bridge.port, bridge.enabled) == (8080, False)
    assert validate(Section.BRIDGE, {**TS, "port": " 81 "}).port == 81  # type: ignore[union-attr]
    strict = errors_of(
        Section.BRIDGE, {**TS, "port": "81", "enabled": "enabled"}, strict_types=True
    )
    assert strict == {
        "port": "Port: must be a whole number (a JSON number)",
        "enabled": "State: must be true or false",
    }


def test_bridge_address_is_ipv4_or_host_name() -> None:
    for given_address, stored in (
        ("127.1.3.1", "127.1.3.1"),
        (" MCU1.Example.COM. ", "mcu1.example.com"),
        ("ts", "ts"),
    ):
        bridge = validate(Section.BRIDGE, {**TS, "address": given_address})
        assert isinstance(bridge, Bridge)
        assert bridge.address == stored
    for bad in ("1.2.3", "127.001.2.3", "a..b", "-a.com", "a_b.com", "0.0.0.0", "239.1.1.1", ""):
        errors = errors_of(Section.BRIDGE, {**TS, "address": bad})
        assert list(errors) == ["address"], bad
        assert errors["address"].startswith("Address: "), bad


def test_every_bad_field_is_named_by_its_label_in_form_order() -> None:
    errors = errors_of(
        Section.BRIDGE,
        {
            "name": "a/b",
            "type": "codec",
            "address": 5,
            "protocol": "ftp",
            "port": 70000,
            "username": " ",
            "password": "\x00",
            "enabled": None,
            "colour": "blue",
        },
        strict_types=True,
    )
    assert list(errors) == [*FIELDS[Section.BRIDGE], "colour"]
    assert errors["colour"] == "colour: unknown field"
    assert errors["type"] == "Type: must be one of telepresence_server, telepresence_mcu"
    assert errors["protocol"] == "Protocol: must be one of HTTPS, HTTP"
    assert errors["port"] == "Port: must be between 1 and 65535 (got 70000)"
    assert errors["username"] == "Username: must not be empty"
    missing = errors_of(Section.BRIDGE, {})
    assert set(missing) == {"name", "type", "address", "username"}
    assert all(m.endswith(": is required") for m in missing.values())


# ------------------------------------------------------------------ references
def test_pool_holds_existing_bridges_of_its_type_only_g_b1() -> None:
    config = chain()
    pool = validate(
        Section.POOL, {"name": "p", "type": "telepresence_mcu", "bridges": ["mcu1"]}, config
    )
    assert pool == Pool("p", BridgeKind.MCU, ("mcu1",))
    assert validate(Section.POOL, {"name": "e", "type": "telepresence_mcu"}, config) == Pool(
        "e", BridgeKind.MCU, ()
    )
    for bridges, words in (
        (["ts1"], "Bridges: 'ts1' is a TelePresence Server: a TelePresence MCU pool holds"),
        (["nope"], "Bridges: there is no conference bridge named 'nope'"),
        (["mcu1", "mcu1"], "Bridges: names must not repeat: 'mcu1'"),
        ([""], "Bridges: names must not be empty"),
    ):
        values = {"name": "p", "type": "telepresence_mcu", "bridges": bridges}
        assert errors_of(Section.POOL, values, config=config)["bridges"].startswith(words)
    # without a configuration (stored entries) names are not resolved
    assert validate(Section.POOL, {"name": "p", "type": "telepresence_mcu", "bridges": ["x"]})


def test_preference_and_template_references() -> None:
    config = chain()
    assert validate(Section.PREFERENCE, {"name": "q", "pools": ["ts-pool"]}, config) == (
        ServicePreference("q", ("ts-pool",))
    )
    for pools, words in (
        ([], "must name at least one conference bridge pool"),
        (["gone"], "there is no conference bridge pool named 'gone'"),
        (["a", "b", "c", "d", "e", "f"], "may hold at most 5 (got 6)"),
        ("ts-pool", "must be a list of names"),
    ):
        got = errors_of(Section.PREFERENCE, {"name": "q", "pools": pools}, config=config)
        assert got == {"pools": f"Pools: {words}"}
    template = validate(
        Section.TEMPLATE,
        {"name": "big", "service_preference": "pref", "type": "lecture", "participant_limit": 9},
        config,
    )
    assert template == ConferenceTemplate("big", "lecture", "pref", 9, 0)
    assert isinstance(template, ConferenceTemplate)
    assert template.template() == Template("big", "pref", "lecture", 9)
    got = errors_of(
        Section.TEMPLATE,
        {"name": "x", "service_preference": "nope", "cascades_reserved": 101},
        config=config,
    )
    assert got == {
        "service_preference": "Service preference: there is no service preference named 'nope'",
        "cascades_reserved": "Cascades reserved: must be between 0 and 100 (got 101)",
    }


def test_names_are_unique_per_kind_ignoring_case() -> None:
    config = chain()
    got = errors_of(Section.BRIDGE, {**TS, "name": "TS1"}, config=config)
    assert got == {"name": "Name: a conference bridge named 'TS1' already exists"}
    # the object being changed does not collide with itself; other kinds do not count
    assert validate(Section.BRIDGE, {**MCU, "name": "MCU1"}, config, current="mcu1")
    assert validate(Section.POOL, {"name": "ts1", "type": "telepresence_server"}, config)


def test_referenced_objects_refuse_delete_rename_and_bridge_retype() -> None:
    config = chain()
    assert referrers(Section.BRIDGE, "ts1", config) == ["ts-pool"]
    assert referrers(Section.TEMPLATE, "t", config) == ["a"]
    assert referrers(Section.BRIDGE, "mcu1", config) == []
    assert delete_refusal(Section.BRIDGE, "mcu1", config) is None
    assert delete_refusal(Section.POOL, "ts-pool", config) == (
        "conference bridge pool 'ts-pool' is used by service preference 'pref': "
        "remove it there first"
    )
    assert delete_refusal(Section.TEMPLATE, "t", config) == (
        "conference template 't' is used by conference alias 'a': remove it there first"
    )
    renamed = errors_of(
        Section.PREFERENCE, {"name": "p2", "pools": ["ts-pool"]}, config=config, current="pref"
    )
    assert renamed == {
        "name": "Name: cannot rename it while in use: service preference 'pref' is used by "
        "conference template 't'"
    }
    retyped = errors_of(
        Section.BRIDGE, {**TS, "type": "telepresence_mcu"}, config=config, current="ts1"
    )
    assert retyped == {
        "type": "Type: cannot change to TelePresence MCU: conference bridge 'ts1' is used by "
        "conference bridge pool 'ts-pool'"
    }
    more = load_conference_config(
        [
            *((key_of(r), stored_json(r)) for r in config.bridges.values()),
            *((key_of(r), stored_json(r)) for r in config.pools.values()),
            (
                "conference_pool:other",
                {"name": "other", "type": "telepresence_server", "bridges": ["ts1"]},
            ),
        ]
    )
    assert delete_refusal(Section.BRIDGE, "ts1", more) == (
        "conference bridge 'ts1' is used by conference bridge pools 'other', 'ts-pool': "
        "remove it there first"
    )


def test_deleting_all_bridges_empties_every_pool_holding_any_g_p5_g_b2() -> None:
    config = chain()
    assert emptied_pools(config) == [Pool("ts-pool", BridgeKind.TELEPRESENCE_SERVER, ())]
    assert emptied_pools(ConferenceConfig()) == []


# ------------------------------------------------------------------ aliases
def test_alias_template_is_optional_and_checked_when_templates_are_given() -> None:
    base = {"name": "a", "incoming_alias": "x", "conference_name": "c"}
    assert validate_alias(base).template == ""  # stored before templates existed
    assert validate_alias({**base, "template": "t"}, templates=["t"]).template == "t"
    assert validate_alias({**base, "template": "gone"}).template == "gone"  # stored: unchecked
    with pytest.raises(SettingErrors) as caught:
        validate_alias({**base, "template": "gone"}, templates=["t"])
    assert str(caught.value) == "Conference template: there is no conference template named 'gone'"
    with pytest.raises(SettingErrors) as caught:
        validate_alias({**base, "template": 5}, strict_types=True)
    assert caught.value.by_key() == {"template": "must be text (empty for none)"}
    assert validate_alias({**base, "template": "t"}).to_json()["template"] == "t"


# ------------------------------------------------------------------ loading (G-S1)
def test_loading_skips_what_is_not_a_valid_object_and_keeps_dangling_names_g_s1() -> None:
    config = load_conference_config(
        [
            ("conference_bridge:ts1", {**TS, "protocol": "HTTPS", "port": 8443, "enabled": True}),
            (
                "conference_bridge:wrong-key",
                {**TS, "protocol": "HTTPS", "port": 1, "enabled": True},
            ),
            ("conference_bridge:bad", {"name": "bad"}),
            ("conference_bridge:junk", [1, 2]),
            (
                "conference_pool:p",
                {"name": "p", "type": "telepresence_mcu", "bridges": ["ts1", "gone"]},
            ),
            ("conference_template:t", {"name": "t", "service_preference": "nowhere"}),
            ("setting:x", {"name": "x"}),
            (ALIAS_PREFIX + "old", {"name": "old", "incoming_alias": "x", "conference_name": "c"}),
        ]
    )
    assert list(config.bridges) == ["ts1"]
    assert config.pools["p"].bridges == ("ts1", "gone")  # as replicated: not resolved here
    assert config.templates() == {"t": Template("t", "nowhere", "meeting", 0)}
    assert dict(config.alias_templates) == {}
    with pytest.raises(TypeError):
        config.bridges["x"] = config.bridges["ts1"]  # type: ignore[index]


def test_api_json_hides_the_password_and_stored_json_round_trips() -> None:
    bridge = validate(Section.BRIDGE, TS)
    assert "password" not in api_json(bridge)
    assert api_json(bridge)["password_set"] is True
    assert stored_json(bridge)["password"] == "secret"
    config = chain()
    for section in Section:
        for row in config.rows(section).values():
            assert key_of(row) == section.prefix + row.name
            assert validate(section, stored_json(row), strict_types=True) == row


@given(
    section=st.sampled_from(list(Section)),
    values=st.dictionaries(
        st.sampled_from(
            [
                "name",
                "type",
                "address",
                "protocol",
                "port",
                "username",
                "password",
                "enabled",
                "bridges",
                "pools",
                "service_preference",
                "participant_limit",
                "cascades_reserved",
                "other",
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=10)
        | st.lists(st.text(max_size=5) | st.integers(), max_size=6)
        | st.sampled_from(["telepresence_server", "HTTP", "meeting", "ts1", "ts-pool", "pref"]),
        max_size=8,
    ),
    strict=st.booleans(),
)
def test_hypothesis_validate_answers_an_object_or_setting_errors(
    section: Section, values: dict[str, Any], strict: bool
) -> None:
    """Any values: a valid object whose stored form validates back to itself, or
    SettingErrors naming fields of that kind (or unknown ones) by label."""
    config = chain()
    try:
        row = validate(section, values, config, strict_types=strict)
    except SettingErrors as exc:
        errors = exc.errors
    else:
        errors = []
    if errors:
        for error in errors:
            known = error.key in FIELDS[section]
            assert known or error.message == "unknown field", error
            assert str(error).startswith(FIELDS[section][error.key] if known else error.key)
        return
    assert validate(section, stored_json(row), strict_types=True) == row
    assert load_conference_config([(key_of(row), stored_json(row))]).rows(section) == {
        row.name: row
    }


# ------------------------------------------------------------------ accessors
class Source:
    """A stand-in store: entries, and `derived` memoised per generation."""

    def __init__(self, entries: list[tuple[str, Any]]) -> None:
        self.entries = entries
        self.generation = 0
        self.builds = 0
        self._memo: dict[str, tuple[int, Any]] = {}

    def shared_entries(self) -> list[Entry]:
        return [Entry(k, Version(1, 0, "x"), False, v) for k, v in self.entries]

    def derived(self, name: str, build: Callable[[], _T]) -> _T:
        held = self._memo.get(name)
        if held is not None and held[0] == self.generation:
            return held[1]  # type: ignore[no-any-return]
        self.builds += 1
        value = build()
        self._memo[name] = (self.generation, value)
        return value


def test_accessors_answer_placement_types_rebuilt_only_after_a_write() -> None:
    config = chain()
    entries: list[tuple[str, Any]] = [
        *((key_of(r), stored_json(r)) for s in Section for r in config.rows(s).values()),
        (
            ALIAS_PREFIX + "a",
            {"name": "a", "incoming_alias": "x", "conference_name": "c", "template": "t"},
        ),
    ]
    source = Source(entries)
    bridges, pools, preferences = config_of(source)
    assert set(bridges) == {"ts1", "mcu1"}
    assert pools == {"ts-pool": Pool("ts-pool", BridgeKind.TELEPRESENCE_SERVER, ("ts1",))}
    assert preferences == {"pref": ServicePreference("pref", ("ts-pool",))}
    assert templates_of(source) == {"t": Template("t", "pref", "meeting", 0)}
    assert alias_templates_of(source) == {"a": "t"}
    assert template_for_alias(source, "a") == Template("t", "pref", "meeting", 0)
    assert template_for_alias(source, "b") is None
    bridges.clear()  # callers get their own dicts
    assert set(bridges_of(source)) == {"ts1", "mcu1"}
    assert source.builds == 1
    source.entries = entries[:1]
    assert len(bridges_of(source)) == 2  # the same generation: the cached configuration
    source.generation += 1
    assert len(bridges_of(source)) == 1
    assert source.builds == 2


def test_store_derived_follows_its_generation_and_hides_secrets_in_the_log(
    tmp_path: Path,
) -> None:
    store = ConfigStore(f"sqlite:///{tmp_path / 'store.sqlite'}", rng=random.Random(1))
    try:
        assert conference_config_of(store).bridges == {}
        first = conference_config_of(store)
        assert conference_config_of(store) is first
        bridge = validate(Section.BRIDGE, TS)
        store.write_shared(
            {key_of(bridge): stored_json(bridge)}, user="admin", secret_fields=("password",)
        )
        assert bridges_of(store) == {"ts1": bridge}
        changed = validate(Section.BRIDGE, changed_values(bridge, {"password": "other"}))
        store.write_shared(
            {key_of(changed): stored_json(changed)}, user="admin", secret_fields=("password",)
        )
        log = store.config_log()
        assert [entry["setting"] for entry in log[:2]] == ["conference_bridge:ts1"] * 2
        assert '"password": "(set)"' in log[0]["old"]
        assert '"password": "(set)"' in log[0]["new"]
        assert "secret" not in str(log)
        assert "other" not in str(log)
    finally:
        store.close()
