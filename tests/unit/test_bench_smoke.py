"""Smoke test of `make bench`: every netsim measurement runs with tiny counts and the JSON
has the expected shape. No performance thresholds here (STYLE.md section 5): targets are
judged by the benchmark itself."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import aiohttp
import pytest

from emulator.bench import BenchOptions, Target, load_groups
from emulator.bench.__main__ import main
from emulator.bench.netsim_bench import NetsimParams, quantile
from emulator.bench.policy_bench import PolicyParams, policy_request, start_bare, stop_process
from vcs_policy.wire import Action, evaluate_cpl

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


POLICY_FIGURES = {
    "policy_rps_ratio",
    "policy_rps_peer",
    "policy_rps_bare",
    "call_setup_ms_p50",
    "call_setup_ms_p99",
    "calls_lost_without_kill",
    "calls_lost_during_kill",
}


def test_policy_params_scale_down_and_stay_positive() -> None:
    full, tiny = PolicyParams.scaled(1.0), PolicyParams.scaled(0.0001)
    assert tiny.requests >= 1
    assert tiny.pairs >= 2  # a ratio needs rounds of both endpoints, interleaved
    assert tiny.warmup >= tiny.concurrency == full.concurrency
    assert 1 <= tiny.call_samples <= full.call_samples
    assert 0 < tiny.load_duration_s <= full.load_duration_s
    assert tiny.load_rate * tiny.load_duration_s >= 2  # the kill falls between calls


async def test_bare_cpl_endpoint_answers_the_allow_cpl(tmp_path: Path) -> None:
    """The baseline of policy_rps_ratio: its own process, HTTPS, any body, allow CPL;
    it stops on SIGTERM with status 0."""
    proc, url = await start_bare(tmp_path / "tls")
    try:
        request = policy_request(7)
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=request.encode(), ssl=False) as response,
        ):
            assert response.status == 200
            assert response.content_type == "text/xml"
            body = await response.read()
        assert evaluate_cpl(body, request).action is Action.ALLOW
    finally:
        await stop_process(proc)
    assert proc.returncode == 0


@pytest.mark.soak
@pytest.mark.skipif(
    os.environ.get("HYPOTHESIS_PROFILE") != "soak",
    reason="starts a lab (3 peers, the VCS, a CPL endpoint) for 15-40 s: make soak runs it",
)
def test_policy_group_tiny_run_writes_expected_json(tmp_path: Path) -> None:
    assert main(["policy", "--scale", "0.01", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "policy.json").read_text())
    assert data["group"] == "policy"
    if any(note.startswith("not measured") for note in data["notes"]):
        pytest.skip(f"a lab already runs on the default topology: {data['notes']}")
    assert set(data["figures"]) == POLICY_FIGURES
    figures = data["figures"]
    for name, figure in figures.items():
        assert isinstance(figure["value"], float), name
        assert figure["method"], name
    assert figures["policy_rps_peer"]["value"] > 0
    assert figures["policy_rps_bare"]["value"] > 0
    assert figures["policy_rps_ratio"]["met"] in (True, False)
    assert len(figures["policy_rps_ratio"]["details"]["pair_ratios"]) == data["params"]["pairs"]
    assert figures["call_setup_ms_p99"]["details"]["samples"] == data["params"]["call_samples"]
    assert figures["call_setup_ms_p50"]["value"] <= figures["call_setup_ms_p99"]["value"]
    for name in ("calls_lost_without_kill", "calls_lost_during_kill"):
        load = figures[name]["details"]
        assert load["placed"] == load["expected"], name
        assert set(load["by_server"]) == {"conductor-initial", "conductor-2", "conductor-3"}
        assert 0 <= figures[name]["value"] <= load["expected"], name
    assert figures["calls_lost_during_kill"]["details"]["killed_pid"] > 0
