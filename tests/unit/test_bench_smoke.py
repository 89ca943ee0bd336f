"""Smoke test of `make bench`: every netsim measurement runs with tiny counts and the JSON
has the expected shape. No performance thresholds here (STYLE.md section 5): targets are
judged by the benchmark itself."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import random
import sys
from pathlib import Path

import aiohttp
import pytest

from bridges.core import mcu, ts
from emulator.bench import BenchOptions, Target, bridge_bench, load_groups
from emulator.bench.__main__ import main
from emulator.bench.bridge_bench import BridgeParams
from emulator.bench.labkit import poll_until
from emulator.bench.netsim_bench import NetsimParams, quantile
from emulator.bench.policy_bench import (
    PolicyParams,
    policy_request,
    start_bare,
    stop_process,
)
from emulator.paths import REPO_ROOT
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


BRIDGES_FIGURES = {
    *(
        f"xmlrpc_{what}_{kind}{variant}"
        for kind in ("mcu", "ts")
        for what, variant in (
            ("calls_per_s", ""),
            ("calls_per_s", "_serverproxy"),
            ("calls_per_s", "_https"),
            ("calls_per_s", "_https_serverproxy"),
        )
    ),
    "xmlrpc_ratio_mcu",
    "xmlrpc_ratio_ts",
    "participants_placed_per_s",
    "participant_setup_ms_p50",
    "participant_setup_ms_p99",
    "participants_on_mcu",
    "participants_on_ts",
}


def test_bridges_params_scale_down_and_stay_below_the_bridges_ports() -> None:
    full, tiny = BridgeParams.scaled(1.0), BridgeParams.scaled(0.0001)
    assert 1 <= tiny.rpc_calls <= full.rpc_calls
    assert tiny.rpc_pairs >= 1  # each pair has a round of both clients: the ratio exists
    assert tiny.rpc_warmup >= tiny.concurrency == full.concurrency
    assert 1 <= tiny.rounds <= full.rounds
    assert 1 <= tiny.participants <= full.participants
    # hold_s 0 keeps every call of a round up: a round fits on either bridge alone
    assert full.participants <= min(mcu.DEFAULT_PORTS, ts.DEFAULT_PORTS)


def test_bridges_figures_of_a_run_that_measured_nothing_are_nan() -> None:
    params = BridgeParams.scaled(0.01)
    figures = bridge_bench.figures({"skipped": "a lab already answers"}, params)
    assert {f.name for f in figures} == BRIDGES_FIGURES
    assert all(math.isnan(f.value) for f in figures)
    assert all(f.method and f.met is None for f in figures)


async def _start_bridge(kind: str, ip: str, state_dir: Path) -> asyncio.subprocess.Process:
    host = "mcu" if kind == "mcu" else "telepresence-server"
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridges", "--kind", kind, "--host", host, "--ip", ip,
        "--state-dir", str(state_dir), "--netsim", "off", "--seed", "5",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=REPO_ROOT,
    )  # fmt: skip


async def test_bridges_xmlrpc_measurement_against_bridge_processes(tmp_path: Path) -> None:
    """The measurement of xmlrpc_calls_per_s_*: both clients against both bridge kinds
    (processes of their own, default ports and account, `--netsim off` on addresses of
    this test) over HTTP and HTTPS; every series measured, every answer a result; both
    stop on SIGTERM with status 0."""
    x = random.Random().randrange(1, 250)
    ips = {"mcu": f"127.98.{x}.11", "ts": f"127.98.{x}.10"}
    procs = {kind: await _start_bridge(kind, ip, tmp_path) for kind, ip in ips.items()}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:

            async def answering() -> bool:
                for ip in ips.values():
                    try:
                        await bridge_bench.device_query(session, bridge_bench.rpc_url(ip, "http"))
                    except (aiohttp.ClientError, OSError, TimeoutError):
                        return False
                return True

            await poll_until(answering, 30.0, "the bridges answering")
        params = dataclasses.replace(
            BridgeParams.scaled(0.0001), rpc_calls=20, rpc_warmup=8, concurrency=4
        )
        run = await bridge_bench.measure_xmlrpc(ips, params)
    finally:
        for proc in procs.values():
            await stop_process(proc)
    assert [proc.returncode for proc in procs.values()] == [0, 0]
    assert run["device"]["mcu"]["totalVideoPorts"] == mcu.DEFAULT_PORTS
    assert run["device"]["ts"]["totalVideoPorts"] == ts.DEFAULT_PORTS
    summary = bridge_bench.xmlrpc_summary(run["rounds"])
    assert set(summary["per_s"]) == {
        f"{kind} {scheme} {client}"
        for kind in ("mcu", "ts")
        for scheme in ("http", "https")
        for client in ("aiohttp", "serverproxy")
    }
    assert all(value > 0 for value in summary["per_s"].values()), summary["per_s"]
    assert set(summary["ratios"]) == {"mcu http", "mcu https", "ts http", "ts https"}
    assert all(r["outcomes"] == {"result": 20} for r in summary["rounds"])
    assert len(summary["rounds"]) == 8 * params.rpc_pairs


@pytest.mark.soak
@pytest.mark.skipif(
    os.environ.get("HYPOTHESIS_PROFILE") != "soak",
    reason="starts a lab (3 peers, the VCS, both bridges) for 15-30 s: make soak runs it",
)
def test_bridges_group_tiny_run_writes_expected_json(tmp_path: Path) -> None:
    assert main(["bridges", "--scale", "0.01", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "bridges.json").read_text())
    assert data["group"] == "bridges"
    if any(note.startswith("not measured") for note in data["notes"]):
        pytest.skip(f"a lab already runs on the default topology: {data['notes']}")
    assert set(data["figures"]) == BRIDGES_FIGURES
    figures = data["figures"]
    for name, figure in figures.items():
        assert isinstance(figure["value"], float), name
        assert figure["method"], name
    for name in BRIDGES_FIGURES - {"participants_on_mcu", "participants_on_ts"}:
        assert figures[name]["value"] > 0, name
    placed = figures["participants_placed_per_s"]["details"]
    assert (
        placed["connected"]
        == placed["calls"]
        == data["params"]["calls_per_round"] * len(placed["rounds"])
    )
    on_bridges = figures["participants_on_mcu"]["value"] + figures["participants_on_ts"]["value"]
    assert on_bridges == placed["connected"]
    for kind in ("mcu", "ts"):
        details = figures[f"participants_on_{kind}"]["details"]
        assert details["ports_used_by_the_loads"] == figures[f"participants_on_{kind}"]["value"]
    assert figures["participant_setup_ms_p99"]["details"]["samples"] == placed["connected"]
    assert (
        figures["participant_setup_ms_p50"]["value"] <= figures["participant_setup_ms_p99"]["value"]
    )
