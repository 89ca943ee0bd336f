"""Scenario files (issue 7, part 1): every shipped scenario validates; every broken
file gives a ScenarioError naming file, line, column and step, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from emulator.cli import cli
from emulator.paths import SCENARIO_SCHEMA, SCENARIOS_DIR
from emulator.scenario import ScenarioError, load_scenario, parse_scenario, shipped_scenarios
from emulator.scenario.conditions import ConditionError, Op, parse_condition
from emulator.scenario.model import Load, Partition, Wait, resolve_placeholders

SHIPPED = shipped_scenarios()

HEAD = """\
version: 1
name: t
description: test
topology: topologies/default.yaml
steps:
"""


def bad(step_lines: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(HEAD + step_lines, source="s.yaml")
    return caught.value


def test_shipped_scenarios_validate_with_unique_names() -> None:
    """G-P1, G-P2, G-P3 (create-cluster) and G-V4 (peer-crash-failover) are shipped."""
    names = [load_scenario(path).name for path in SHIPPED]
    assert {"create-cluster", "peer-crash-failover"} <= set(names)
    assert len(names) == len(set(names))


def test_scenario_model_and_placeholders() -> None:
    scenario = load_scenario(SCENARIOS_DIR / "peer-crash-failover.yaml")
    load = next(s for s in scenario.steps if isinstance(s, Load))
    assert load.vcs == "vcs"
    assert load.rate == 5
    wait = next(s for s in scenario.steps if isinstance(s, Wait))
    assert wait.until.op is Op.CONTAINS
    text = resolve_placeholders("${ip:conductor-2}:8443", scenario.topology)
    assert text == "127.1.2.32:8443"


def test_every_action_of_the_format() -> None:
    scenario = parse_scenario(
        HEAD
        + """\
  - set: {host: conductor-initial, page: clustering, values: {key: k, peer1: "${ip:vcs}"}}
  - restart: conductor-initial
  - wait: {until: "conductor-initial: clustering.peer1 == 'This system'", within_s: 30}
  - expect: "conductor-2: alarms contains 20009"
  - impair: {src: conductor-initial, dst: conductor-2, latency_ms: 20, loss: 0.1, both: true}
  - partition: [[conductor-initial], [conductor-2, conductor-3]]
  - heal: {}
  - clock: {host: conductor-3, offset_s: 30}
  - firewall: {proto: udp, ports: 4369-4380, action: drop, dst: conductor-3}
  - kill: conductor-2
  - start: conductor-2
  - call: {from: a@example.com, to: meet.1@example.com, expect: connected}
  - load: {rate: 10, duration_s: 10, aliases: "meet.{1-10}@example.com", expect: {failed: 0}}
  - backup: {host: conductor-initial, password: secret}
  - {name: pause, sleep_s: 5}
"""
    )
    assert [s.action for s in scenario.steps][:3] == ["set", "restart", "wait"]
    partition = scenario.steps[5]
    assert isinstance(partition, Partition)
    assert partition.groups == (("conductor-initial",), ("conductor-2", "conductor-3"))
    assert scenario.steps[-1].title == "step 15 (sleep_s): pause"


@pytest.mark.parametrize(
    ("steps", "where", "message"),
    [
        ("  - restart: nobody\n", "6:14", "step 1 (restart): unknown host 'nobody'"),
        ("  - restart: mcu\n", "6:14", "restart applies to conductor hosts"),
        ("  - kill: a\n    start: b\n", "7:5", "step 1: more than one action (kill, start)"),
        ("  - frobnicate: x\n", "6:5", "step 1: unknown action 'frobnicate'"),
        ("  - name: only a name\n", "6:5", "step 1: no action"),
        ("  - sleep_s: -1\n", "6:14", "step 1 (sleep_s): -1 is less than or equal"),
        (
            "  - wait: {until: 'vcs: vcs.server1 contains x', within_s: 3}\n",
            "6:19",
            "step 1 (wait): value 'x' must be a quoted string",
        ),
        (
            "  - expect: \"conductor-2: clustering.peer9 == 'x'\"\n",
            "6:13",
            "step 1 (expect): unknown probe 'clustering.peer9'",
        ),
        (
            "  - expect: \"conductor-2: vcs.server1 == 'x'\"\n",
            "6:13",
            "probe 'vcs.server1' applies to vcs hosts; 'conductor-2' is a conductor",
        ),
        (
            '  - expect: "vcs: vcs.calls.failed contains 1"\n',
            "6:13",
            "operator 'contains' does not apply to number probe",
        ),
        ("  - expect: 'no colon here'\n", "6:13", "is not 'HOST: PROBE OP VALUE'"),
        (
            "  - partition: [[conductor-2], [conductor-3, conductor-2]]\n",
            "6:46",
            "step 1 (partition): host 'conductor-2' is in group 1 and group 2",
        ),
        (
            "  - impair: {src: vcs, dst: mcu, loss: 1.5}\n",
            "6:40",
            "step 1 (impair): loss: 1.5 is greater than the maximum of 1",
        ),
        ("  - impair: {src: vcs, dst: mcu}\n", "6:13", "give at least one impairment"),
        ("  - impair: {src: vcs, dst: mcu, colour: red}\n", "6:34", "unknown key 'colour'"),
        (
            "  - firewall: {proto: udp, ports: 90-80, action: drop}\n",
            "6:35",
            "port range '90-80' must satisfy",
        ),
        (
            "  - set: {host: vcs, page: p, values: {a: '${ip:ghost}'}}\n",
            "6:43",
            "placeholder '${ip:ghost}' names no host",
        ),
        ("  - call: {from: a, to: b, vcs: conductor-2}\n", "6:33", "call applies to vcs hosts"),
        (
            "  - load: {rate: 1, duration_s: 1, aliases: 'm.{9-1}@x'}\n",
            "6:45",
            "LOW must not exceed HIGH",
        ),
        ("  - call: {from: a}\n", "6:11", "step 1 (call): 'to' is missing"),
    ],
)
def test_broken_steps_name_file_line_column_and_step(steps: str, where: str, message: str) -> None:
    error = bad(steps)
    assert str(error).startswith(f"s.yaml:{where}: "), str(error)
    assert message in str(error)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "file is empty"),
        ("version: 1\nsteps: [\n", 3, "invalid YAML"),
        (HEAD.replace("version: 1", "version: 2") + "  - kill: vcs\n", 1, "version"),
        (HEAD.replace("name: t", "name: Bad_Name") + "  - kill: vcs\n", 2, "name"),
        (HEAD.replace("default.yaml", "missing.yaml") + "  - kill: vcs\n", 4, "no file"),
        (HEAD + "  - kill: vcs\ncolour: red\n", 7, "unknown key 'colour'"),
        (HEAD + "  - kill: vcs\ntiming: {vcs_poll_s: 0}\n", 7, "timing/vcs_poll_s"),
        (HEAD + "  - kill: vcs\nmodes: [sim, lab]\n", 7, "modes/1"),
        (HEAD + "  - kill: vcs\nname: again\n", 7, "duplicate key 'name'"),
        (HEAD + "  - kill: &a vcs\n  - kill: *a\n", 6, "aliases"),
    ],
)
def test_broken_files_name_file_line_and_problem(text: str, line: int, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, source="s.yaml")
    assert str(caught.value).startswith("s.yaml:")
    assert message in str(caught.value)
    assert caught.value.line == line


def test_a_topology_error_is_reported_at_the_topology_key(tmp_path: Path) -> None:
    (tmp_path / "lab.yaml").write_text("version: 1\nhosts: []\n")
    with pytest.raises(ScenarioError, match=r"s\.yaml:4:\d+: topology: .*lab\.yaml"):
        parse_scenario(
            HEAD.replace("topologies/default.yaml", "lab.yaml") + "  - kill: vcs\n",
            source="s.yaml",
            base=tmp_path,
        )


def test_conditions() -> None:
    roles = {"c": "conductor", "v": "vcs"}
    condition = parse_condition("c:  setting.clustering.peer1 != '10.0.0.1' ", roles)
    assert (condition.host, condition.op, condition.value) == ("c", Op.NE, "10.0.0.1")
    assert parse_condition("v: vcs.calls.connected >= 10", roles).value == 10
    assert parse_condition("c: alarms excludes 20009", roles).op is Op.EXCLUDES
    assert parse_condition("c: restart_required == true", roles).value is True
    for text in ("c: alarms > 1", "c: clustering.peer1 == 1", "v: vcs.calls.total == 'x'"):
        with pytest.raises(ConditionError):
            parse_condition(text, roles)


def test_published_schema_is_valid_json_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(json.loads(SCENARIO_SCHEMA.read_text()))


# ----------------------------------------------------------------- fuzz
def parse_or_error(text: str) -> None:
    """Anything but a Scenario or a ScenarioError escapes and fails the test."""
    try:
        parse_scenario(text, source="fuzz.yaml")
    except ScenarioError as error:
        caught = error
    else:
        return
    assert str(caught).startswith("fuzz.yaml")
    assert caught.message
    assert caught.line is None or caught.line >= 1


@given(st.text(max_size=300))
def test_any_text_loads_or_gives_a_clear_error(text: str) -> None:
    parse_or_error(text)


_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.sampled_from(["vcs", "conductor-2", "mcu", "${ip:x}", "${ip:vcs}", "a: b == 1"]),
    st.lists(st.sampled_from(["vcs", "conductor-2", 3]), max_size=3),
    st.dictionaries(st.sampled_from(["host", "src", "x"]), st.sampled_from(["vcs", 1]), max_size=2),
)
_VALID = [yaml.safe_load(path.read_text()) for path in SHIPPED]


@st.composite
def _mutated(draw: st.DrawFn) -> object:
    document = json.loads(json.dumps(draw(st.sampled_from(_VALID))))
    for _ in range(draw(st.integers(1, 4))):
        target = document
        # walk down to a random container, then drop or replace one of its entries
        while isinstance(target, dict | list) and target and draw(st.booleans()):
            keys = list(target) if isinstance(target, dict) else list(range(len(target)))
            child = target[draw(st.sampled_from(keys))]
            if not isinstance(child, dict | list):
                break
            target = child
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)))
            if draw(st.booleans()):
                del target[key]
            else:
                target[key] = draw(_junk)
        elif isinstance(target, list) and target:
            target[draw(st.integers(0, len(target) - 1))] = draw(_junk)
    return document


@given(_mutated())
def test_mutated_shipped_scenarios_load_or_give_a_clear_error(document: object) -> None:
    parse_or_error(yaml.safe_dump(document))


# ----------------------------------------------------------------- CLI
def test_cli_validate_exit_0_and_2(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(cli, ["scenario", "validate", str(SHIPPED[0])])
    assert good.exit_code == 0, good.output
    assert "is valid" in good.output
    broken = tmp_path / "broken.yaml"
    broken.write_text(HEAD + "  - restart: nobody\n")
    result = runner.invoke(cli, ["scenario", "validate", str(broken)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {broken}:6:14: step 1 (restart): unknown host 'nobody' "
        "(hosts: conductor-initial, conductor-2, conductor-3, vcs, telepresence-server, mcu)"
    )
    missing = runner.invoke(cli, ["scenario", "validate", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2
    assert "cannot read file" in missing.stderr


def test_cli_list_shows_name_and_description(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["scenario", "list"])
    assert result.exit_code == 0, result.output
    assert "peer-crash-failover" in result.output
    assert "fails over" in result.output
    (tmp_path / "a.yaml").write_text(HEAD.replace("topologies/", "") + "  - kill: vcs\n")
    result = CliRunner().invoke(cli, ["scenario", "list", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "a.yaml:4:11: topology: no file 'default.yaml'" in result.stderr


def test_cli_schema_prints_the_published_schema() -> None:
    result = CliRunner().invoke(cli, ["scenario", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == json.loads(SCENARIO_SCHEMA.read_text())
