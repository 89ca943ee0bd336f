"""Scenario steps beyond the format (issue 7): step files (`include`), the `set` page
table, refused saves, `api` steps and the runner's comparisons. Broken step files give
a ScenarioError naming the step file, line and step, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.scenario import ScenarioError, load_scenario
from emulator.scenario.conditions import Op
from emulator.scenario.model import Api, SetValues
from emulator.scenario.pages import PageError, PageKind, password_body, resolve_page
from emulator.scenario.runner import compare

HEAD = """\
version: 1
name: t
description: test
topology: topologies/default.yaml
steps:
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    return str(caught.value)


def test_include_expands_step_files_in_place_and_numbers_steps_in_run_order(
    tmp_path: Path,
) -> None:
    write(tmp_path, "steps/two.yaml", "steps:\n  - restart: conductor-2\n  - sleep_s: 1\n")
    path = write(
        tmp_path,
        "s.yaml",
        HEAD + "  - sleep_s: 2\n  - include: steps/two.yaml\n  - kill: conductor-3\n",
    )
    scenario = load_scenario(path)
    assert [s.action for s in scenario.steps] == ["sleep_s", "restart", "sleep_s", "kill"]
    assert [s.number for s in scenario.steps] == [1, 2, 3, 4]
    assert scenario.steps[1].origin == "two.yaml"
    assert scenario.steps[1].title == "step 2 (restart) [two.yaml:2]"
    assert scenario.steps[3].origin == ""


def test_shipped_step_files_load_through_the_shipped_scenarios() -> None:
    scenario = load_scenario(Path("scenarios/peer-crash-failover.yaml"))
    origins = {s.origin for s in scenario.steps}
    assert {"cluster-of-three.yaml", "conferencing.yaml", "vcs-policy.yaml"} <= origins


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ("steps:\n  - restart: mcu\n", "two.yaml:2:14: step 1 (restart): restart applies to"),
        ("steps:\n  - nonsense: 1\n", "two.yaml:2:5: step 1: unknown action 'nonsense'"),
        ("steps: []\n", "two.yaml:1:8: steps: [] should be non-empty"),
        ("", "two.yaml:1:1: step file is empty"),
        ("steps:\n  - include: two.yaml\n", "includes itself"),
        ("steps:\n  - wait: {until: 'vcs: nope == 1', within_s: 1}\n", "unknown probe 'nope'"),
    ],
)
def test_broken_step_files_name_the_step_file(tmp_path: Path, fragment: str, message: str) -> None:
    write(tmp_path, "steps/two.yaml", fragment)
    path = write(tmp_path, "s.yaml", HEAD + "  - include: steps/two.yaml\n")
    assert message in error_of(path)


def test_a_missing_step_file_is_named_at_the_include(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", HEAD + "  - include: steps/none.yaml\n")
    assert error_of(path).startswith(f"{path}:6:14: step 1 (include): no step file 'steps/none")


@given(st.text(max_size=200))
def test_any_step_file_text_loads_or_gives_a_clear_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write(directory, "f.yaml", text)
        path = write(directory, "s.yaml", HEAD + "  - include: f.yaml\n")
        try:
            load_scenario(path)
        except ScenarioError as exc:
            message = str(exc)
            assert message.startswith(str(directory)), message


# ------------------------------------------------------------------- pages
def test_set_pages_map_to_the_json_apis() -> None:
    assert resolve_page("conductor", "clustering").path == "/api/v1/system/clustering"
    assert resolve_page("conductor", "option-keys").path == "/api/v1/maintenance/option-keys"
    password = resolve_page("conductor", "users/root")
    assert (password.kind, password.path) == (PageKind.PASSWORD, "/api/v1/users/root/password")
    alias = resolve_page("conductor", "conference/aliases/meetings")
    assert alias.kind is PageKind.OBJECT
    assert alias.item_path == "/api/v1/conference/aliases/meetings"
    service = resolve_page("vcs", "policy-services/Conductors")
    assert service.path == "/api/v1/policy-services"
    assert password_body({"password": "x"}) == {"new_password": "x", "confirm_password": "x"}
    with pytest.raises(PageError, match="unknown page 'clustering'; pages of a vcs: users/admin"):
        resolve_page("vcs", "clustering")
    with pytest.raises(PageError, match="a mcu has no pages"):
        resolve_page("mcu", "x")


def test_unknown_pages_and_wrong_password_values_are_refused_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path, "s.yaml", HEAD + "  - set: {host: vcs, page: users/root, values: {password: x}}\n"
    )
    assert "step 1 (set): unknown page 'users/root'" in error_of(path)
    path = write(
        tmp_path,
        "s.yaml",
        HEAD + "  - set: {host: conductor-2, page: users/admin, values: {pw: x}}\n",
    )
    assert "takes exactly one value: password" in error_of(path)


def test_refused_set_and_api_steps_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        HEAD
        + "  - set: {host: conductor-2, page: clustering, values: {peer3: x}, refused: at most}\n"
        + "  - api: {host: conductor-2, method: DELETE, path: /api/v1/conference/bridges}\n"
        + "  - api: {host: vcs, method: GET, path: /api/v1/calls, status: 200}\n",
    )
    first, second, third = load_scenario(path).steps
    assert isinstance(first, SetValues)
    assert first.refused == "at most"
    assert isinstance(second, Api)
    assert (second.method, second.status) == ("DELETE", None)
    assert isinstance(third, Api)
    assert third.status == 200
    path = write(tmp_path, "s.yaml", HEAD + "  - api: {host: vcs, method: GET, path: /etc}\n")
    assert "step 1 (api): path:" in error_of(path)


# ---------------------------------------------------------------- compare
def test_condition_comparisons() -> None:
    assert compare(Op.CONTAINS, "Active as conductor-2", "Active as")
    assert compare(Op.EXCLUDES, [20004, 20009], 20012)
    assert compare(Op.CONTAINS, [20004, 20009], 20009)
    assert not compare(Op.CONTAINS, None, "x")
    assert compare(Op.EQ, False, False)
    assert compare(Op.GE, 3, 2)
    assert not compare(Op.GE, "3", 2)
    assert not compare(Op.LT, True, 2)
