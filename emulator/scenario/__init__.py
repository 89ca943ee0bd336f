"""Scenarios: the guide's procedures and failure drills as YAML files.

`loader` turns a file into a validated `model.Scenario` (or a `ScenarioError`
naming file, line, column and step); `conditions` holds the probe table and
the parser of `HOST: PROBE OP VALUE`.
"""

from emulator.scenario.conditions import PROBES, Condition, Op
from emulator.scenario.loader import (
    ScenarioError,
    load_all,
    load_scenario,
    parse_scenario,
    scenario_schema,
    shipped_scenarios,
)
from emulator.scenario.model import Mode, Scenario, Step, resolve_placeholders

__all__ = [
    "PROBES",
    "Condition",
    "Mode",
    "Op",
    "Scenario",
    "ScenarioError",
    "Step",
    "load_all",
    "load_scenario",
    "parse_scenario",
    "resolve_placeholders",
    "scenario_schema",
    "shipped_scenarios",
]
