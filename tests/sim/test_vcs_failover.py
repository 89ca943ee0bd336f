"""VCS policy-service failover in the simulated world, over a real 3-peer cluster.

Hypothesis chooses when each Conductor peer is killed and restored while the VCS
places one call a second through a search rule whose target is the cluster's
policy service (Server 1..3 = the three peers). Invariant (G-V4, G-S3): every
call is connected, or gets the Default CPL (504 "Policy Service Unavailable")
only when all three peers were down at that moment; a killed peer shows
*Failed* within one poll interval and *Active* again after it is back (G-V3).

Each example starts from a copy of one lab set up once through the guide's
procedures (cluster G-P1/G-P2, passwords changed and VCS pointed at every
peer G-P3), so examples stay cheap.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sim.cluster_lab import IPS
from tests.sim.vcs_lab import SERVICE, PolicyLab
from vcs_policy.core.calls import Outcome

HOSTS = list(IPS)
TIMELINE_S = 30
POLL_S = 2.0
EXAMPLES = int(os.environ.get("TPLAB_FAILOVER_EXAMPLES", "8"))


@cache
def prepared_lab() -> Path:
    """Data dirs of a lab whose cluster and VCS are set up (made once per session)."""
    root = Path(tempfile.mkdtemp(prefix="tplab-policy-template-"))
    atexit.register(shutil.rmtree, root, True)  # made once per test session
    lab = PolicyLab(data_root=root)
    try:
        lab.setup(poll_interval_s=POLL_S, request_timeout_s=1.0)
        lab.wait(POLL_S + 1)
        lines = lab.server_lines()
        assert all(line.startswith("Active. Last communication:") for line in lines.values()), lines
        result = lab.call("meet.warmup@example.com")
        assert result.outcome is Outcome.CONNECTED, result
    finally:
        lab.close()
    return root


def down_intervals(windows: list[tuple[int, int, int]]) -> dict[str, set[int]]:
    """(peer index, start second, length) windows -> the seconds each peer is down."""
    down: dict[str, set[int]] = {host: set() for host in HOSTS}
    for index, start, length in windows:
        down[HOSTS[index]].update(range(start, min(TIMELINE_S, start + length)))
    return down


windows_strategy = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, TIMELINE_S - 1), st.integers(1, 12)), max_size=5
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(windows=windows_strategy)
def test_calls_survive_any_kill_and_restore_schedule(windows: list[tuple[int, int, int]]) -> None:
    """G-V4: a failed server is skipped and the call succeeds through another peer;
    the Default CPL only when every peer is down (G-S3: any peer answers alike)."""
    tmp = tempfile.mkdtemp(prefix="tplab-policy-example-")
    shutil.copytree(prepared_lab(), tmp, dirs_exist_ok=True)
    lab = PolicyLab(data_root=Path(tmp))
    try:
        lab.wait(POLL_S + 1)
        down = down_intervals(windows)
        alive = set(HOSTS)
        for second in range(TIMELINE_S):
            want_down = {host for host in HOSTS if second in down[host]}
            for host in sorted(alive & want_down):
                lab.kill(host)
                alive.discard(host)
            for host in sorted((set(HOSTS) - alive) - want_down):
                lab.start(host, settle_s=0.0)
                alive.add(host)
            lab.wait(0.5)
            result = lab.call(f"meet.{second}@example.com")
            if result.outcome is Outcome.CONNECTED:
                assert result.via in {IPS[h] for h in alive}, (second, result)
            else:
                assert not alive, (second, sorted(alive), result)
                assert result.default_cpl, result
                assert result.status == 504, result
                assert result.reason == "Policy Service Unavailable"
            lab.wait(0.5)
    finally:
        lab.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_killed_peer_fails_within_one_poll_and_recovers() -> None:
    """G-V3, G-V4: kill the peer in use: its line turns Failed within one poll, calls
    go on through Server 2 with none failed; restore it: Active again, and Server 1
    is back in use (sticky to the lowest healthy server)."""
    tmp = tempfile.mkdtemp(prefix="tplab-policy-example-")
    shutil.copytree(prepared_lab(), tmp, dirs_exist_ok=True)
    lab = PolicyLab(data_root=Path(tmp))
    try:
        lab.wait(POLL_S + 1)
        first, second = IPS["conductor-initial"], IPS["conductor-2"]
        assert lab.call("meet.a@example.com").via == first
        lab.kill("conductor-initial")
        lab.wait(POLL_S + 0.5)
        assert lab.server_lines()[first] == "Failed"
        results = [lab.call(f"meet.{i}@example.com") for i in range(5)]
        assert all(r.outcome is Outcome.CONNECTED and r.via == second for r in results)
        lab.start("conductor-initial", settle_s=0.5)
        lab.wait(POLL_S + 0.5)
        assert lab.server_lines()[first].startswith("Active. Last communication:")
        assert lab.call("meet.b@example.com").via == first
    finally:
        lab.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_wrong_status_path_or_path_is_failed_not_a_login_page() -> None:
    """G-P3 / G-V3: a Status path the peer does not serve is Failed (the peer's redirect
    to its login page is not an answer), and so is a wrong Path for requests."""
    lab = PolicyLab(seed=5, hosts=("conductor-initial",))
    try:
        lab.setup(cluster=False, poll_interval_s=POLL_S)
        ip = IPS["conductor-initial"]
        status, answer = lab.vcs_api("GET", f"/api/v1/policy-services/{SERVICE}")
        assert status == 200
        wrong = {**answer, "status_path": "pdp/wrong", "path": "pdp/nothing"}
        wrong.pop("password_set")
        status, answer = lab.vcs_api("PUT", f"/api/v1/policy-services/{SERVICE}", wrong)
        assert status == 200, answer
        lab.wait(POLL_S + 0.5)
        assert lab.server_lines()[ip] == "Failed"
        _, answer = lab.vcs_api("GET", "/api/v1/status/policy-services")
        assert answer["policy_services"][0]["servers"][0]["reason"].startswith("HTTP 303")
        result = lab.call("meet.x@example.com")
        assert result.default_cpl, result
        assert result.attempts[0].result.startswith("failed: HTTP 303"), result.attempts
    finally:
        lab.close()
