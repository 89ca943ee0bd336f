"""Smoke test of `make bench`: every netsim measurement runs with tiny counts and the JSON
has the expected shape. No performance thresholds here (STYLE.md section 5): targets are
judged by the benchmark itself."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from emulator.bench import BenchOptions, Target, load_groups
from emulator.bench.__main__ import main
from emulator.bench.netsim_bench import NetsimParams, quantile

NETSIM_FIGURES = {
    "proxy_added_delay_median",
    "proxy_added_delay_p99",
    "proxy_added_delay_median_inproc",
    "proxy_added_delay_p99_inproc",
    "latency_15ms_error_median",
    "latency_15ms_error_p99",
    "latency_15ms_error_median_inproc",
    "latency_15ms_error_p99_inproc",
    "relay_windowed_delivered_per_s",
    "relay_windowed_loss_fraction",
    "relay_blast_delivered_per_s",
    "relay_blast_loss_fraction",
    "sim_msg_per_s_trace_off",
    "sim_msg_per_s_trace_on",
}


def test_netsim_group_tiny_run_writes_expected_json(tmp_path: Path) -> None:
    assert main(["netsim", "--scale", "0.01", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "netsim.json").read_text())
    assert data["group"] == "netsim"
    assert isinstance(data["all_targets_met"], bool)
    assert isinstance(data["duration_s"], float)
    machine = data["machine"]
    assert isinstance(machine["python_version"], str)
    assert isinstance(machine["cpu_count"], int)
    assert machine["timestamp_utc"].endswith("+00:00")
    assert data["params"]["scale"] == 0.01
    assert set(data["figures"]) == NETSIM_FIGURES
    for name, figure in data["figures"].items():
        assert set(figure) >= {"value", "unit", "description", "method", "target", "met"}, name
        assert isinstance(figure["value"], float), name
        assert isinstance(figure["method"], str), name
        assert figure["method"], name
        if figure["target"] is None:
            assert figure["met"] is None, name
        else:
            assert isinstance(figure["met"], bool), name
            assert figure["target"]["kind"] in ("max", "min", "abs_max"), name
    figures = data["figures"]
    for name in ("relay_windowed_loss_fraction", "relay_blast_loss_fraction"):
        assert 0.0 <= figures[name]["value"] <= 1.0
    for name in ("sim_msg_per_s_trace_off", "sim_msg_per_s_trace_on"):
        assert figures[name]["value"] > 0
        assert figures[name]["details"]["messages"] > 0
    assert figures["proxy_added_delay_median"]["details"]["samples"] > 0
    assert figures["latency_15ms_error_median"]["details"]["received"] > 0


def test_groups_are_registered_and_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert "netsim" in load_groups()
    assert main(["--list"]) == 0
    assert "netsim" in capsys.readouterr().out


def test_unknown_group_is_refused() -> None:
    with pytest.raises(SystemExit):
        main(["no-such-group"])


def test_targets_and_quantiles() -> None:
    assert Target("max", 0.3).met_by(0.3)
    assert not Target("max", 0.3).met_by(0.31)
    assert Target("min", 100.0).met_by(100.0)
    assert Target("abs_max", 1.0).met_by(-0.9)
    assert not Target("abs_max", 1.0).met_by(math.nan)
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile([0.0, 10.0], 0.99) == pytest.approx(9.9)
    assert math.isnan(quantile([], 0.5))


def test_scaled_params_stay_positive() -> None:
    tiny = NetsimParams.scaled(BenchOptions(scale=0.0001).scale)
    assert tiny.pingpong_samples >= 1
    assert tiny.sim_messages >= 1
    assert tiny.relay_windowed_s > 0
