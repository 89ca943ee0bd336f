"""Smoke test of `make bench` group `scenarios` (issue 7): a tiny run writes its JSON
with the sim wall time of a scenario and of a short simulated "hour" with calls and
faults; the figures are judged by the benchmark itself, never here."""

from __future__ import annotations

import json
from pathlib import Path

from emulator.bench.__main__ import main
from emulator.bench.scenario_bench import FAULTS, hour_steps


def test_scenarios_group_tiny_run_writes_expected_json(tmp_path: Path) -> None:
    assert main(["scenarios", "--scale", "0.01", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "scenarios.json").read_text())
    figures = data["figures"]
    assert set(figures) == {"sim_wall_create_cluster", "sim_hour_wall"}
    assert figures["sim_wall_create_cluster"]["details"]["passed"] is True
    hour = figures["sim_hour_wall"]["details"]
    assert hour["passed"] is True, hour["message"]
    assert hour["calls"] == {"connected": 20}
    assert data["params"]["hour_faults"] == 2


def test_the_hour_has_its_faults_each_undone() -> None:
    steps = hour_steps(3600, 1000, 20)
    faults = [s for s in steps if str(s.get("name", "")).startswith("fault ")]
    assert len(faults) == 40
    assert len({next(k for k in f if k != "name") for f in faults}) == len(
        {next(iter(a)) for pair in FAULTS for a in pair}
    )
    load = next(s for s in steps if "load" in s)["load"]
    assert round(load["rate"] * load["duration_s"]) == 1000


def test_maintenance_group_tiny_run_writes_expected_json(tmp_path: Path) -> None:
    """Group `maintenance` (G-P4): backup and restore times of a tiny configuration."""
    assert main(["maintenance", "--scale", "0.01", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "maintenance.json").read_text())
    assert set(data["figures"]) == {
        "backup_plain_s",
        "restore_plain_s",
        "backup_encrypted_s",
        "restore_encrypted_s",
    }
    assert data["params"]["aliases"] == 10
