"""`tplab scenario run` (issue 7): exit status 0 only when every step held, 1 when one
failed (named with what was observed), 2 for a bad file or a mode the scenario does not
run in; `--report` writes the JSON trace and the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from emulator.cli import cli

HEAD = "version: 1\nname: t\ndescription: a test\ntopology: topologies/default.yaml\n"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["scenario", "run", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_passing_scenario_exits_0_and_writes_trace_and_report(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        HEAD
        + "steps:\n"
        + "  - name: a setting saved\n"
        + "    set: {host: conductor-2, page: administration, values: {system_name: Two}}\n"
        + "  - expect: \"conductor-2: setting.administration.system_name == 'Two'\"\n"
    )
    code, out, _ = run(str(path), "--report", str(tmp_path / "out"), "--seed", "3")
    assert code == 0, out
    assert "PASS step 1 (set): a setting saved - saved" in out
    assert "PASSED 2/2 steps" in out
    trace = json.loads((tmp_path / "out" / "trace.json").read_text())
    assert trace["result"]["passed"] is True
    assert trace["seed"] == 3
    assert trace["mode"] == "sim"
    assert "PASSED" in (tmp_path / "out" / "report.html").read_text()


def test_a_failing_step_exits_1_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + "steps:\n  - expect: 'conductor-2: alarms.count == 0'\n")
    code, out, _ = run(str(path))
    assert code == 1
    assert "FAIL step 1 (expect): conductor-2: alarms.count == 0 does not hold" in out
    assert "FAILED 0/1 steps" in out


def test_bad_file_and_unsupported_mode_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + "steps:\n  - kill: nobody\n")
    code, _, err = run(str(path))
    assert code == 2
    assert "step 1 (kill): unknown host 'nobody'" in err
    path.write_text(HEAD + "modes: [sim]\nsteps:\n  - sleep_s: 1\n")
    code, _, err = run(str(path), "--mode", "real")
    assert code == 2
    assert "runs only in sim mode" in err
