"""Training lab files (`emulator.training.exercise`): every shipped lab loads and names
its checklist ids; every broken file gives an ExerciseError naming file, line and
column, never a traceback; the seed's draw of a troubleshooting lab's fault and victim
is deterministic and reaches every fault and every victim."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.paths import SCENARIOS_DIR
from emulator.scenario.model import Restart, SetValues, Wait
from emulator.training.exercise import (
    Draw,
    Exercise,
    ExerciseError,
    draw,
    fault_steps,
    fill_victim,
    find_lab,
    load_exercise,
    parse_exercise,
    shipped_labs,
)

SHIPPED = shipped_labs()
TROUBLESHOOTING = "troubleshoot-cluster"


@cache
def labs() -> dict[str, Exercise]:
    return {path.stem: load_exercise(path) for path in SHIPPED}


def lab(name: str) -> Exercise:
    return labs()[name]


# Two small labs whose line numbers the error tests below count on.
PROCEDURE = """\
version: 1
name: mini
title: Mini lab
kind: procedure
topology: topologies/default.yaml
ids: [G-P1]
introduction: Do it.
setup:
  - kill: mcu
  - start: mcu
  - kill: telepresence-server
tasks:
  - id: one
    title: One
    instructions: Do one.
    checks:
      - clustered: {peers: [conductor-initial]}
    solution:
      - restart: conductor-initial
"""
TROUBLESHOOT = """\
version: 1
name: mini-t
title: Mini troubleshooting
kind: troubleshooting
topology: topologies/default.yaml
ids: [G-R12]
introduction: Find it.
faults:
  broken:
    description: the victim restarts
    victims: [conductor-2, conductor-3]
    setup:
      - restart: "${victim}"
      - wait: {until: "${other}: alarms contains 20004", within_s: 5}
    solution:
      - restart: "${victim}"
tasks:
  - id: one
    title: One
    instructions: Fix it.
    checks:
      - clustered: {peers: [conductor-2, conductor-3]}
"""


def replaced(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def error_of(text: str, base: Path = SCENARIOS_DIR / "labs") -> ExerciseError:
    with pytest.raises(ExerciseError) as caught:
        parse_exercise(text, source="lab.yaml", base=base)
    return caught.value


def test_the_small_labs_of_these_tests_load() -> None:
    procedure = parse_exercise(PROCEDURE, source="lab.yaml")
    assert procedure.kind == "procedure"
    assert [s.action for s in procedure.setup] == ["kill", "start", "kill"]
    assert not procedure.faults
    troubleshoot = parse_exercise(TROUBLESHOOT, source="lab.yaml")
    assert troubleshoot.troubleshooting
    assert troubleshoot.faults["broken"].victims == ("conductor-2", "conductor-3")


# ------------------------------------------------------------ shipped labs
def test_every_shipped_lab_loads_with_a_unique_name_equal_to_its_file_stem() -> None:
    assert SHIPPED
    names = [lab(path.stem).name for path in SHIPPED]
    assert names == [path.stem for path in SHIPPED]
    assert len(set(names)) == len(names)
    for path in SHIPPED:
        exercise = lab(path.stem)
        assert exercise.source == str(path)
        assert exercise.tasks
        assert len({task.id for task in exercise.tasks}) == len(exercise.tasks)
        assert all(task.checks for task in exercise.tasks)


def test_every_shipped_lab_names_checklist_ids() -> None:
    for exercise in labs().values():
        assert exercise.ids, exercise.name
        assert all(re.fullmatch(r"G-[A-Z]+[0-9]+", i) for i in exercise.ids), exercise.ids


def test_procedure_labs_cover_g_p1_to_g_p7_with_a_solution_for_every_task() -> None:
    """G-P1..G-P7: the guide's procedures each have a lab whose every task the tests
    (and an instructor's demo) can do by its solution."""
    procedures = [e for e in labs().values() if e.kind == "procedure"]
    assert {"create-cluster", "remove-peer", "backup-before-join", "rolling-upgrade"} <= {
        e.name for e in procedures
    }
    covered = {i for e in procedures for i in e.ids}
    assert {f"G-P{n}" for n in range(1, 8)} <= covered
    for exercise in procedures:
        assert not exercise.faults, exercise.name
        for task in exercise.tasks:
            assert task.solution, f"{exercise.name}/{task.id}"


def test_troubleshooting_labs_have_faults_each_with_a_solution() -> None:
    """troubleshoot-cluster: G-R3, G-R6, G-R12, G-R14, G-P3, each a fault the seed may
    pick; a troubleshooting lab's tasks have no solution of their own."""
    troubleshooting = [e for e in labs().values() if e.troubleshooting]
    assert [e.name for e in troubleshooting] == [TROUBLESHOOTING]
    assert {"G-R3", "G-R6", "G-R12", "G-R14", "G-P3"} <= set(lab(TROUBLESHOOTING).ids)
    for exercise in troubleshooting:
        assert len(exercise.faults) >= 1
        for name, fault in exercise.faults.items():
            assert fault.name == name
            assert fault.description
            assert fault.raw_steps, name
            assert fault.raw_solution, name
        assert all(not task.solution for task in exercise.tasks)


def test_find_lab_by_name_or_path_and_unknown_names_list_the_labs() -> None:
    path = find_lab("create-cluster")
    assert path == SCENARIOS_DIR / "labs" / "create-cluster.yaml"
    assert find_lab(str(path)) == path
    with pytest.raises(ExerciseError) as caught:
        find_lab("no-such-lab")
    assert "no lab named 'no-such-lab'" in caught.value.message
    assert all(p.stem in caught.value.message for p in SHIPPED)


def test_an_unreadable_lab_file_is_an_exercise_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ExerciseError, match="cannot read file") as caught:
        load_exercise(missing)
    assert caught.value.source == str(missing)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        pytest.param("version: 1\ntasks: [\n", 3, 1, "invalid YAML", id="not-yaml"),
        pytest.param("", 1, 1, "file is empty; expected a lab mapping", id="empty"),
        pytest.param("- a\n- b\n", 1, 1, "is not of type 'object'", id="not-a-mapping"),
        pytest.param(
            replaced(PROCEDURE, "kind: procedure\n", ""),
            1,
            1,
            "'kind' is a required property",
            id="missing-kind",
        ),
        pytest.param(
            replaced(PROCEDURE, "version: 1", "version: 2"), 1, 10, "version", id="version"
        ),
        pytest.param(
            replaced(
                PROCEDURE, "      - clustered:", "      - frobnicate: {x: 1}\n      - clustered:"
            ),
            17,
            9,
            "unknown key 'frobnicate'",
            id="unknown-check-kind",
        ),
        pytest.param(
            replaced(PROCEDURE, "[conductor-initial]", "[conductor-initial, nobody]"),
            17,
            28,
            "task 1 check clustered: unknown host 'nobody' (hosts: conductor-initial,",
            id="check-unknown-host",
        ),
        pytest.param(
            replaced(
                PROCEDURE,
                "      - clustered: {peers: [conductor-initial]}\n",
                "      - clustered: {peers: [conductor-initial]}\n"
                "      - vcs_servers: {vcs: conductor-2, peers: [conductor-initial]}\n",
            ),
            18,
            28,
            "task 1 check vcs_servers: 'conductor-2' is a conductor, not a vcs",
            id="check-wrong-role-vcs",
        ),
        pytest.param(
            replaced(PROCEDURE, "[conductor-initial]", "[conductor-initial, vcs]"),
            17,
            28,
            "task 1 check clustered: 'vcs' is a vcs, not a conductor",
            id="check-wrong-role-peer",
        ),
        pytest.param(
            replaced(
                PROCEDURE,
                "      - clustered: {peers: [conductor-initial]}\n",
                "      - clustered: {peers: [conductor-initial]}\n"
                "      - expect: {condition: 'no colon here', hint: look}\n",
            ),
            18,
            29,
            "task 1 check expect: ",
            id="expect-condition",
        ),
        pytest.param(
            replaced(
                PROCEDURE,
                "      - clustered: {peers: [conductor-initial]}\n",
                "      - clustered: {peers: [conductor-initial]}\n"
                "      - expect: {condition: \"conductor-2: vcs.server1 == 'x'\", hint: h}\n",
            ),
            18,
            29,
            "applies to vcs hosts",
            id="expect-probe-of-wrong-role",
        ),
        pytest.param(
            replaced(
                PROCEDURE,
                "  - start: mcu\n",
                "  - set: {host: vcs, page: nowhere, values: {a: 1}}\n",
            ),
            10,
            5,
            "setup: step 2 (set): unknown page 'nowhere'",
            id="setup-step-unknown-page",
        ),
        pytest.param(
            replaced(PROCEDURE, "  - kill: telepresence-server\n", "  - restart: nobody\n"),
            11,
            5,
            "setup: step 3 (restart): unknown host 'nobody'",
            id="setup-step-unknown-host",
        ),
        pytest.param(
            replaced(PROCEDURE, "    solution:\n      - restart: conductor-initial\n", ""),
            13,
            5,
            "tasks/0: a procedure lab's task has a solution",
            id="procedure-task-without-solution",
        ),
        pytest.param(
            replaced(
                PROCEDURE,
                "    solution:\n      - restart: conductor-initial\n",
                "    solution:\n      - sleep_s: 1\n      - restart: vcs\n",
            ),
            20,
            9,
            "tasks/0/solution: step 2 (restart): restart applies to conductor hosts",
            id="procedure-solution-step",
        ),
        pytest.param(
            PROCEDURE + "  - id: one\n    title: Again\n    instructions: x\n"
            "    checks: [{standalone: {peer: conductor-2}}]\n    solution: [{sleep_s: 1}]\n",
            20,
            9,
            "tasks: id 'one' is used twice",
            id="duplicate-task-id",
        ),
        pytest.param(
            replaced(
                PROCEDURE,
                "tasks:\n",
                "faults:\n  f:\n    description: d\n    setup: [{kill: mcu}]\n"
                "    solution: [{start: mcu}]\ntasks:\n",
            ),
            13,
            3,
            "faults: only a troubleshooting lab has faults",
            id="procedure-with-faults",
        ),
        pytest.param(
            replaced(PROCEDURE, "topologies/default.yaml", "topologies/nowhere.yaml"),
            5,
            11,
            "topology: no file 'topologies/nowhere.yaml' in ",
            id="unknown-topology",
        ),
        pytest.param(
            replaced(
                TROUBLESHOOT,
                "[conductor-2, conductor-3]\n    setup",
                "[conductor-2, ghost]\n    setup",
            ),
            11,
            28,
            "faults/broken/victims: unknown host 'ghost' (hosts: conductor-initial,",
            id="victim-not-a-host",
        ),
        pytest.param(
            replaced(TROUBLESHOOT, "    victims: [conductor-2, conductor-3]\n", ""),
            12,
            7,
            "faults/broken/setup: its steps name ${victim} but it lists no victims",
            id="victim-without-victims",
        ),
        pytest.param(
            replaced(
                TROUBLESHOOT, "[conductor-2, conductor-3]\n    setup", "[conductor-2]\n    setup"
            ),
            13,
            7,
            "faults/broken/setup: ${other} needs at least two victims",
            id="other-with-one-victim",
        ),
        pytest.param(
            replaced(
                TROUBLESHOOT,
                "[conductor-2, conductor-3]\n    setup",
                "[mcu, conductor-2]\n    setup",
            ),
            13,
            9,
            "faults/broken/setup: step 1 (restart): restart applies to conductor hosts; "
            "'mcu' is a mcu",
            id="fault-step-for-the-victim",
        ),
        pytest.param(
            replaced(
                TROUBLESHOOT,
                "[conductor-2, conductor-3]\n    setup",
                "[conductor-2, mcu]\n    setup",
            ),
            14,
            9,
            "faults/broken/setup: step 2 (wait): probe 'alarms' applies to conductor hosts; "
            "'mcu' is a mcu",
            id="fault-step-for-the-other",
        ),
        pytest.param(
            TROUBLESHOOT + "    solution:\n      - restart: conductor-2\n",
            24,
            7,
            "tasks/0/solution: a troubleshooting lab's solutions are its faults'",
            id="troubleshooting-task-with-solution",
        ),
        pytest.param(
            replaced(
                TROUBLESHOOT,
                TROUBLESHOOT[TROUBLESHOOT.index("faults:") : TROUBLESHOOT.index("tasks:")],
                "",
            ),
            4,
            7,
            "a troubleshooting lab lists its faults (faults:)",
            id="troubleshooting-without-faults",
        ),
        pytest.param(
            PROCEDURE + "colour: red\n",
            20,
            1,
            "unknown key",
            id="unknown-top-level-key",
        ),
        pytest.param(
            replaced(PROCEDURE, "    title: One\n", "    title: One\n    colour: red\n"),
            15,
            5,
            "unknown key",
            id="unknown-task-key",
        ),
    ],
)
def test_broken_labs_name_file_line_column_and_problem(
    text: str, line: int, column: int, message: str
) -> None:
    error = error_of(text)
    assert (error.source, error.line, error.column) == ("lab.yaml", line, column), str(error)
    assert message in error.message, error.message
    assert str(error).startswith(f"lab.yaml:{line}:{column}: ")


def test_unknown_keys_are_exercise_errors_naming_the_key() -> None:
    """Unknown keys are named (and placed at the key: the cases above)."""
    assert "'colour'" in error_of(PROCEDURE + "colour: red\n").message
    task = replaced(PROCEDURE, "    title: One\n", "    title: One\n    colour: red\n")
    assert "'colour'" in error_of(task).message


def test_a_broken_topology_file_is_reported_at_the_topology_key(tmp_path: Path) -> None:
    (tmp_path / "net.yaml").write_text("version: 1\nhosts: []\n")
    error = error_of(replaced(PROCEDURE, "topologies/default.yaml", "net.yaml"), base=tmp_path)
    assert (error.line, error.column) == (5, 11)
    assert error.message.startswith("topology: ")
    assert "net.yaml" in error.message


def test_a_topology_next_to_the_lab_is_found_before_the_shipped_ones(tmp_path: Path) -> None:
    (tmp_path / "topologies").mkdir()
    shipped = (SCENARIOS_DIR / "topologies" / "default.yaml").read_text()
    (tmp_path / "topologies" / "default.yaml").write_text(shipped)
    exercise = parse_exercise(PROCEDURE, source="lab.yaml", base=tmp_path)
    assert exercise.topology_file == tmp_path / "topologies" / "default.yaml"


@pytest.mark.parametrize("where", ["topology", "find_lab"])
def test_an_overlong_file_name_is_an_exercise_error(where: str) -> None:
    name = "x" * 300
    if where == "topology":
        text = replaced(PROCEDURE, "topologies/default.yaml", f"{name}.yaml")
        with pytest.raises(ExerciseError):
            parse_exercise(text)
    else:
        with pytest.raises(ExerciseError):
            find_lab(name)


def test_an_error_inside_an_included_step_file_names_that_file(tmp_path: Path) -> None:
    steps = tmp_path / "bad-steps.yaml"
    steps.write_text("steps:\n  - kill: vcs\n  - kill: vcs\n  - restart: nobody\n")
    include = os.path.relpath(steps, SCENARIOS_DIR)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\.yaml", include):
        pytest.skip(f"{include!r} is not a path a step file may be included by")
    error = error_of(replaced(PROCEDURE, "  - kill: mcu\n", f"  - include: {include}\n"))
    assert "unknown host 'nobody'" in error.message
    # either the step file's own place, or the include step's line naming the step file
    assert (Path(error.source).resolve(), error.line) == (steps.resolve(), 4) or (
        error.line == 9 and "bad-steps.yaml" in error.message
    ), str(error)


# ------------------------------------------------------------------- fuzz
def parse_or_error(text: str | bytes) -> None:
    """Anything but an Exercise or an ExerciseError escapes and fails the test."""
    try:
        parse_exercise(text, source="fuzz.yaml")
    except ExerciseError as error:
        caught = error
    else:
        return
    assert str(caught).startswith("fuzz.yaml")
    assert caught.message
    assert caught.line is None or caught.line >= 1
    assert (caught.line is None) == (caught.column is None)


@given(st.one_of(st.text(max_size=300), st.binary(max_size=100)))
def test_any_text_loads_or_gives_a_clear_error(text: str | bytes) -> None:
    parse_or_error(text)


_TEXTS = [path.read_text() for path in SHIPPED] + [PROCEDURE, TROUBLESHOOT]
#: what a replaced character becomes: mostly YAML's own punctuation
_CHARS = st.one_of(st.sampled_from(list(":-[]{}'\"#&*!|>%@`,? \t\n$")), st.characters())


@st.composite
def _mutated_lab(pick: st.DrawFn) -> str:
    lines = pick(st.sampled_from(_TEXTS)).splitlines(keepends=True)
    for _ in range(pick(st.integers(1, 3))):
        index = pick(st.integers(0, len(lines) - 1))
        operation = pick(st.sampled_from(["delete", "duplicate", "replace-line", "replace-char"]))
        if operation == "delete" and len(lines) > 1:
            del lines[index]
        elif operation == "duplicate":
            lines.insert(index, lines[index])
        elif operation == "replace-line":
            lines[index] = pick(st.one_of(st.sampled_from(lines), st.text(max_size=40)))
            lines[index] = lines[index].rstrip("\n") + "\n"
        elif lines[index]:
            at = pick(st.integers(0, len(lines[index]) - 1))
            lines[index] = lines[index][:at] + pick(_CHARS) + lines[index][at + 1 :]
    return "".join(lines)


@settings(max_examples=max(30, settings().max_examples // 4))
@given(_mutated_lab())
def test_mutated_shipped_labs_load_or_give_a_clear_error(text: str) -> None:
    parse_or_error(text)


# ------------------------------------------------------------------- draw
def test_draw_is_deterministic_for_a_seed() -> None:
    """G-R3, G-R6, G-R12, G-R14, G-P3: the same seed gives the same problem, also from a
    freshly loaded lab."""
    exercise = lab(TROUBLESHOOTING)
    again = load_exercise(find_lab(TROUBLESHOOTING))
    for seed in range(50):
        assert draw(exercise, seed) == draw(exercise, seed) == draw(again, seed)


def test_seeds_0_to_299_draw_every_fault_and_every_victim() -> None:
    """troubleshoot-cluster: every fault (G-R3, G-R6, G-R12, G-R14, G-P3) is drawn, every
    victim of a fault with victims is hit, and `other` is another of its victims."""
    exercise = lab(TROUBLESHOOTING)
    drawn: dict[str, set[str | None]] = {name: set() for name in exercise.faults}
    for seed in range(300):
        chosen = draw(exercise, seed)
        assert chosen.fault is not None
        assert chosen.fault in exercise.faults
        victims = exercise.faults[chosen.fault].victims
        drawn[chosen.fault].add(chosen.victim)
        if victims:
            assert chosen.victim in victims
            assert chosen.other in victims
            assert chosen.other != chosen.victim
        else:
            assert (chosen.victim, chosen.other) == (None, None)
    for name, fault in exercise.faults.items():
        assert drawn[name] == (set[str | None](fault.victims) or {None}), name


def test_a_named_fault_is_drawn_with_a_victim_still_from_the_seed() -> None:
    exercise = lab(TROUBLESHOOTING)
    for name, fault in exercise.faults.items():
        victims: set[str | None] = set()
        for seed in range(60):
            chosen = draw(exercise, seed, fault=name)
            assert chosen.fault == name
            assert chosen == draw(exercise, seed, fault=name)
            if fault.victims:
                assert chosen.other != chosen.victim
                assert chosen.other in fault.victims
            victims.add(chosen.victim)
        assert victims == (set[str | None](fault.victims) or {None}), name


def test_an_unknown_fault_is_an_error_naming_the_known_faults() -> None:
    exercise = lab(TROUBLESHOOTING)
    with pytest.raises(ExerciseError) as caught:
        draw(exercise, 1, fault="gremlins")
    assert "no fault 'gremlins'" in caught.value.message
    assert all(name in caught.value.message for name in exercise.faults)
    assert caught.value.source == exercise.source


def test_a_procedure_lab_draws_nothing_and_has_no_fault_to_name() -> None:
    """G-P1..G-P7: a procedure lab is the same for every seed."""
    for exercise in labs().values():
        if exercise.troubleshooting:
            continue
        assert {draw(exercise, seed) for seed in range(5)} == {Draw()}
        assert fault_steps(exercise, Draw()) == ()
        with pytest.raises(ExerciseError, match="not a troubleshooting lab: it has no faults"):
            draw(exercise, 1, fault="key-mismatch")


# ------------------------------------------------------------ fault steps
def test_key_mismatch_sets_and_fixes_the_key_on_the_drawn_victim() -> None:
    """G-R12: the pre-shared key differs on the victim, and the solution restores it there."""
    exercise = lab(TROUBLESHOOTING)
    for seed in range(10):
        chosen = draw(exercise, seed, fault="key-mismatch")
        assert chosen.victim is not None
        setup = fault_steps(exercise, chosen)
        assert isinstance(setup[0], SetValues)
        assert (setup[0].host, setup[0].page) == (chosen.victim, "clustering")
        assert setup[0].values["key"] == "not-the-cluster-secret"
        assert isinstance(setup[1], Restart)
        assert setup[1].host == chosen.victim
        assert isinstance(setup[2], Wait)
        assert setup[2].until.host == chosen.victim
        solution = fault_steps(exercise, chosen, solution=True)
        assert isinstance(solution[0], SetValues)
        assert (solution[0].host, solution[0].values["key"]) == (chosen.victim, "cluster-secret")


def test_ntp_unsynchronised_waits_for_the_alarm_on_the_other_peer() -> None:
    """G-R3: ${other} is a peer of the victims other than the victim."""
    exercise = lab(TROUBLESHOOTING)
    for seed in range(10):
        chosen = draw(exercise, seed, fault="ntp-unsynchronised")
        steps = fault_steps(exercise, chosen)
        assert isinstance(steps[0], SetValues)
        assert steps[0].host == chosen.victim
        waits = [s for s in steps if isinstance(s, Wait)]
        assert [w.until.host for w in waits] == [chosen.victim, chosen.other]


def test_peer_list_mismatch_fills_the_victim_inside_an_address_placeholder() -> None:
    """G-R12: `${ip:${victim}}` becomes the victim's address placeholder."""
    exercise = lab(TROUBLESHOOTING)
    chosen = draw(exercise, 0, fault="peer-list-mismatch")
    step = fault_steps(exercise, chosen)[0]
    assert isinstance(step, SetValues)
    assert step.values["peer2"] == f"${{ip:{chosen.victim}}}"


def test_every_fault_s_steps_and_solution_act_on_its_victim() -> None:
    """G-R3, G-R6, G-R12, G-R14, G-P3: for every fault and victim the steps parse; a fault
    with victims sets and restarts only its victim; one without is the same for all seeds."""
    exercise = lab(TROUBLESHOOTING)
    for name, fault in exercise.faults.items():
        for seed in range(6):
            chosen = draw(exercise, seed, fault=name)
            for solution in (False, True):
                steps = fault_steps(exercise, chosen, solution=solution)
                raw = fault.raw_solution if solution else fault.raw_steps
                assert len(steps) == len(raw)
                if fault.victims:
                    hosts = {s.host for s in steps if isinstance(s, SetValues | Restart)}
                    assert hosts == {chosen.victim}, (name, solution)
                else:
                    assert steps == fault_steps(
                        exercise, draw(exercise, 0, fault=name), solution=solution
                    )


def test_fault_steps_of_a_small_lab_hit_victim_and_other() -> None:
    exercise = parse_exercise(TROUBLESHOOT, source="lab.yaml")
    for seed in range(20):
        chosen = draw(exercise, seed)
        assert {chosen.victim, chosen.other} == {"conductor-2", "conductor-3"}
        restart, wait = fault_steps(exercise, chosen)
        assert isinstance(restart, Restart)
        assert isinstance(wait, Wait)
        assert (restart.host, wait.until.host) == (chosen.victim, chosen.other)


def test_fill_victim_replaces_victim_and_other_in_nested_lists_dicts_and_strings() -> None:
    raw: list[Any] = [
        {"set": {"host": "${victim}", "values": {"peers": ["${other}", "x-${victim}-y", 3]}}},
        "${victim}/${other}/${victim}",
        [None, True, 1.5, {"until": "${other}: alarms contains 1"}],
        "${ip:${victim}}",
    ]
    before = repr(raw)
    assert fill_victim(raw, "a", "b") == [
        {"set": {"host": "a", "values": {"peers": ["b", "x-a-y", 3]}}},
        "a/b/a",
        [None, True, 1.5, {"until": "b: alarms contains 1"}],
        "${ip:a}",
    ]
    assert repr(raw) == before  # the lab's raw steps are not changed
    assert fill_victim(raw, None) == raw
    assert fill_victim("${other}", "a") == "a"
    assert fill_victim(7, "a", "b") == 7
