"""Benchmark group `maintenance`: system backup and restore of a large configuration.

Figures: the time to back up and to restore (check + apply) a peer's configuration
holding 1,000 conference aliases, without and with an encryption password (scrypt
n=2^15 dominates the encrypted figures), and the file sizes. Medians of `RUNS`
runs on a real SQLite store in a temporary directory (`peers.backup.backup_bytes`
and `restore_bytes`: what Maintenance > Backup and restore does, without HTTP).
The wall time of the `rolling-upgrade` scenario in both modes is in group
`scenarios`, with every other shipped scenario.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator.bench import BenchOptions, Figure, GroupResult, bench_group

ALIASES = 1000
RUNS = 5
PASSWORD = "Bench-backup-1"
METHOD = (
    "peers.backup.backup_bytes / restore_bytes on a ConfigStore (SQLite, temporary dir) "
    "holding {aliases} conference aliases; median of {runs} runs; time.perf_counter"
)


def _store(directory: Path, aliases: int) -> Any:
    from netsim.certs import make_certificates
    from peers.store import ConfigStore

    store = ConfigStore(f"sqlite:///{directory / 'store.sqlite'}", rng=random.Random(1))
    certs = make_certificates(
        host_name="bench",
        ip="127.1.2.4",
        fqdn="bench.example.com",
        serial=store.serial,
        now=datetime(2026, 1, 1, tzinfo=UTC),
        rng=random.Random(2),
    )
    store.set_certificates(
        {
            "ca": (certs.ca_cert_pem, certs.ca_key_pem),
            "server": (certs.server_cert_pem, certs.server_key_pem),
        }
    )
    store.write_shared(
        {
            f"conference_alias:meet{i}": {
                "name": f"meet{i}",
                "incoming_alias": rf"meet{i}\.(.+)@example\.com",
                "conference_name": rf"meeting {i} \1",
                "priority": i % 65535,
                "template": "Meeting",
            }
            for i in range(aliases)
        },
        user="bench",
    )
    return store


def measure(aliases: int, runs: int) -> dict[str, Any]:
    from peers.backup import backup_bytes, restore_bytes

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tplab-bench-backup-") as tmp:
        store = _store(Path(tmp), aliases)
        for label, password in (("plain", None), ("encrypted", PASSWORD)):
            backups, restores = [], []
            size = 0
            for _ in range(runs):
                started = time.perf_counter()
                _, data = backup_bytes(store, software_version="XC3.0", password=password)
                backups.append(time.perf_counter() - started)
                size = len(data)
                started = time.perf_counter()
                restore_bytes(store, data, password=password)
                restores.append(time.perf_counter() - started)
            out[label] = {"backup_s": backups, "restore_s": restores, "size_bytes": size}
    return out


@bench_group("maintenance", "maintenance: backup and restore of 1,000 conference aliases")
def run_maintenance(options: BenchOptions) -> GroupResult:
    full = options.scale >= 1.0
    aliases = ALIASES if full else max(10, round(ALIASES * options.scale))
    runs = RUNS if full else 1
    data = measure(aliases, runs)
    method = METHOD.format(aliases=aliases, runs=runs)
    figures = []
    for label, runs_of in data.items():
        for step in ("backup", "restore"):
            samples = runs_of[f"{step}_s"]
            figures.append(
                Figure(
                    f"{step}_{label}_s",
                    statistics.median(samples),
                    "s",
                    f"{step} of a configuration with {aliases} conference aliases, {label}",
                    method,
                    None,
                    {"runs_s": [round(s, 4) for s in samples], "size_bytes": runs_of["size_bytes"]},
                )
            )
    return GroupResult(
        group="maintenance",
        figures=figures,
        params={"aliases": aliases, "runs": runs, "kdf": "scrypt n=2^15 r=8 p=1"},
    )
