"""Where tplab finds its data and keeps its state, relative to the repository root."""

from __future__ import annotations

from pathlib import Path

#: the repository (or source tree) root: the parent of the `emulator` package
REPO_ROOT = Path(__file__).resolve().parent.parent
#: the topology `tplab net serve` opens when none is named
DEFAULT_TOPOLOGY = REPO_ROOT / "scenarios" / "topologies" / "default.yaml"
#: where a world keeps its runtime state (clock file, node data); /state/ is git-ignored
DEFAULT_STATE_DIR = REPO_ROOT / "state"
#: the control API address when neither --control nor TPLAB_CONTROL names one
DEFAULT_CONTROL = "127.0.0.1:7400"
#: environment variable that overrides the control address (HOST:PORT or URL)
CONTROL_ENV = "TPLAB_CONTROL"
#: shipped scenarios (data only) and the directory a scenario's topology is also looked up in
SCENARIOS_DIR = REPO_ROOT / "scenarios"
#: the published JSON Schema of scenario files
SCENARIO_SCHEMA = SCENARIOS_DIR / "schema" / "scenario.schema.json"
#: shipped training labs (data only) and the JSON Schema of their files
LABS_DIR = SCENARIOS_DIR / "labs"
LAB_SCHEMA = SCENARIOS_DIR / "schema" / "lab.schema.json"
