"""The `channel` benchmark group: what the secure peer channel (G-R15) costs in CPU.

Measurements (every loop is bounded in count and in wall time):

1. handshake time: two in-memory `PeerChannel`s (`peers.core.channel`), datagrams
   handed from one to the other directly (no network, no latency), wall time from
   `connect` to both sides established: M1..M4, one modp4096 keygen and one
   exchange per side, HKDF, four AES-GCM operations. A fresh pair per sample;
   median and p99.
2. DH share of it: the time of one modp4096 keygen + exchange (what each side pays),
   median, so the handshake figure can be read against its floor.
3. records/s: 1 KB payloads sealed by one established channel and opened by the
   other (one record = one seal + one open, anti-replay window and decode included),
   in batches; records per wall second.

Randomness is a seeded `random.Random` (the channel's cost does not depend on it;
real processes inject `random.SystemRandom()`).
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
import time
from dataclasses import dataclass

from emulator.bench import BenchOptions, Figure, GroupResult, Target, bench_group, quantile
from peers.core.channel import ChannelConfig, PayloadReceived, PeerChannel, dh_keypair, dh_shared

A_IP = "10.99.0.1"
B_IP = "10.99.0.2"
PSK = b"bench pre-shared key"

HANDSHAKE_MEDIAN_TARGET_MS = 50.0
RECORDS_TARGET_PER_S = 20_000.0


@dataclass(frozen=True, slots=True)
class ChannelParams:
    handshakes: int = 50
    handshake_time_limit_s: float = 20.0
    dh_samples: int = 50
    records: int = 50_000
    record_batch: int = 500
    records_time_limit_s: float = 10.0
    payload_bytes: int = 1024

    @classmethod
    def scaled(cls, scale: float) -> ChannelParams:
        base = cls()

        def count(value: int, least: int) -> int:
            return max(least, round(value * scale))

        return dataclasses.replace(
            base,
            handshakes=count(base.handshakes, 3),
            dh_samples=count(base.dh_samples, 3),
            records=count(base.records, 200),
            record_batch=min(base.record_batch, count(base.records, 200)),
            handshake_time_limit_s=base.handshake_time_limit_s * max(1.0, scale),
            records_time_limit_s=base.records_time_limit_s * max(1.0, scale),
        )


def _shuttle(a: PeerChannel, b: PeerChannel, now: float) -> int:
    """Hand datagrams back and forth until both sides are quiet; returns how many."""
    moved = 0
    for _ in range(100):
        out_a = a.datagrams_to_send(now)
        out_b = b.datagrams_to_send(now)
        if not out_a and not out_b:
            return moved
        for data in out_a:
            b.receive_datagram(data, A_IP, now)
        for data in out_b:
            a.receive_datagram(data, B_IP, now)
        moved += len(out_a) + len(out_b)
    raise RuntimeError("handshake did not settle")


def _pair(seed: int) -> tuple[PeerChannel, PeerChannel]:
    config = ChannelConfig()
    a = PeerChannel(A_IP, B_IP, PSK, random.Random(f"{seed}:a"), config)
    b = PeerChannel(B_IP, A_IP, PSK, random.Random(f"{seed}:b"), config)
    return a, b


def measure_handshakes(params: ChannelParams, seed: int) -> list[float]:
    """Wall milliseconds per complete handshake between two fresh in-memory channels."""
    samples: list[float] = []
    deadline = time.perf_counter() + params.handshake_time_limit_s
    for i in range(params.handshakes + 1):  # the first one warms caches, not counted
        a, b = _pair(seed * 100_000 + i)
        started = time.perf_counter()
        a.connect(0.0)
        _shuttle(a, b, 0.0)
        elapsed = time.perf_counter() - started
        if not (a.established and b.established):
            raise RuntimeError("bench handshake failed")
        if i:
            samples.append(elapsed * 1000.0)
        if time.perf_counter() > deadline:
            break
    return samples


def measure_dh(params: ChannelParams, seed: int) -> list[float]:
    """Wall milliseconds of one side's modp4096 work: keygen + exchange."""
    rng = random.Random(seed)
    _, peer_public = dh_keypair(rng)
    samples: list[float] = []
    for _ in range(params.dh_samples):
        started = time.perf_counter()
        key, _public = dh_keypair(rng)
        dh_shared(key, peer_public)
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def measure_records(params: ChannelParams, seed: int) -> dict[str, float]:
    """1 KB records sealed by A and opened by B, in batches; records per wall second."""
    a, b = _pair(seed)
    a.connect(0.0)
    _shuttle(a, b, 0.0)
    payload = bytes(random.Random(seed).getrandbits(8) for _ in range(params.payload_bytes))
    done = 0
    busy_s = 0.0
    wire_bytes = 0
    deadline = time.perf_counter() + params.records_time_limit_s
    while done < params.records and time.perf_counter() < deadline:
        batch = min(params.record_batch, params.records - done)
        started = time.perf_counter()
        for _ in range(batch):
            a.send(payload, 1.0)
        datagrams = a.datagrams_to_send(1.0)
        delivered = 0
        for data in datagrams:
            for event in b.receive_datagram(data, A_IP, 1.0):
                delivered += isinstance(event, PayloadReceived)
        busy_s += time.perf_counter() - started
        if delivered != batch:
            raise RuntimeError(f"{batch - delivered} bench records not delivered")
        wire_bytes += sum(len(d) for d in datagrams)
        done += batch
    return {
        "records": done,
        "seconds": busy_s,
        "per_s": done / busy_s if busy_s > 0 else math.nan,
        "datagram_bytes": wire_bytes / done if done else math.nan,
    }


@bench_group("channel", "secure peer channel: handshake time, modp4096 cost, 1 KB records/s")
def run_channel_bench(options: BenchOptions) -> GroupResult:
    params = ChannelParams.scaled(options.scale)
    result = GroupResult(group="channel", params=dataclasses.asdict(params))
    handshakes = measure_handshakes(params, options.seed)
    dh_ms = measure_dh(params, options.seed)
    records = measure_records(params, options.seed)
    hs_method = (
        "two in-memory PeerChannels, datagrams handed over directly; wall time from "
        "connect() to both established (M1..M4); fresh pair per sample, first discarded"
    )
    summary = (
        f"n={len(handshakes)}, min {min(handshakes):.2f} ms, max {max(handshakes):.2f} ms"
        if handshakes
        else "no samples"
    )
    result.figures += [
        Figure(
            "handshake_ms_median",
            quantile(handshakes, 0.5),
            "ms",
            "complete handshake (modp4096, PSK auth, HKDF, AES-GCM), median",
            hs_method,
            Target("max", HANDSHAKE_MEDIAN_TARGET_MS),
            {"summary": summary, "samples": len(handshakes)},
        ),
        Figure(
            "handshake_ms_p99",
            quantile(handshakes, 0.99),
            "ms",
            "complete handshake, p99",
            hs_method,
            None,
            {"summary": summary},
        ),
        Figure(
            "dh_side_ms_median",
            quantile(dh_ms, 0.5),
            "ms",
            "one side's modp4096 work (512-bit exponent keygen + exchange), median",
            "peers.core.channel DH helpers timed alone; a handshake does this twice",
            None,
            {
                "summary": f"n={len(dh_ms)}, mean {statistics.fmean(dh_ms):.2f} ms"
                if dh_ms
                else "no samples"
            },
        ),
        Figure(
            "records_per_s_1kb",
            records["per_s"],
            "datagrams/s",
            f"{params.payload_bytes}-byte payloads sealed by one channel and opened by the other",
            f"batches of {params.record_batch}: send() x N, datagrams_to_send(), "
            "receive_datagram() x N; wall time of the batches only",
            Target("min", RECORDS_TARGET_PER_S),
            {
                "summary": f"{records['records']:.0f} records, "
                f"{records['datagram_bytes']:.0f} B per datagram",
                **records,
            },
        ),
    ]
    return result
