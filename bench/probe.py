"""Latency probes, each run as its own process so that producing and measuring never share a GIL.

Every latency is measured on this machine's clock from a record's Kafka timestamp, which the producers
set to the record's *scheduled* send time (open loop: a producer that falls behind makes the latency
worse, it does not hide it), to the moment a consumer here received the result.

    python -m bench.probe floor-produce --topic T --rate R --duration S --bytes B --linger-ms L
    python -m bench.probe floor-consume --topic T --start-ms MS --duration S --out FILE
    python -m bench.probe decisions --decisions-topic T [--alerts-topic A] --start-ms MS --expect N --out FILE

``decisions`` does not measure on its own clock at all for decisions: their topic is stamped by the broker
(``LogAppendTime``), and each decision carries its transaction's scheduled send time (``source_ts``), so
``append time - source_ts`` is the engine's end-to-end latency however late this probe reads it. Only the
exactly-once alerts are timed when a read-committed consumer here receives them (that *is* their
latency: when a downstream reader can see them).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hybrid_platform import config
from hybrid_platform.latency import consumer_from, percentile, receive

#: The floor producer's first record, sent before its schedule starts; the floor consumer skips it.
WARM_UP_KEY = b"warm-up"


def _now_ms() -> float:
    return time.time_ns() / 1_000_000


def floor_produce(topic: str, rate: int, duration_s: float, record_bytes: int, linger_ms: int) -> dict[str, Any]:
    from confluent_kafka import Producer

    cfg = config.load()
    producer = Producer(
        {
            **cfg.kafka_client("producer"),
            "acks": "all",
            "enable.idempotence": True,
            # Explicit: librdkafka (like Kafka 4's Java client) defaults to 5 ms, which is part of the floor.
            "linger.ms": linger_ms,
            "log_level": 0,
        }
    )
    payload = b"x" * record_bytes
    count = int(rate * duration_s)
    # Connection, metadata and the idempotent producer id first: otherwise the schedule starts while the
    # client is still connecting, and its first second is a backlog that no steady state has.
    producer.produce(topic, key=WARM_UP_KEY, value=b"")
    producer.flush(30)
    started = time.monotonic()
    wall_started = _now_ms()
    for index in range(count):
        offset_s = index / rate
        behind = time.monotonic() - (started + offset_s)
        if behind < -0.001:
            time.sleep(-behind)
        while True:
            try:
                producer.produce(topic, value=payload, timestamp=int(wall_started + offset_s * 1000))
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(30)
    return {"sent": count, "elapsed_s": time.monotonic() - started}


def _ready(consumer: Any, ready_file: Path | None) -> None:
    """Poll once (joins the partitions, fetches the first batch) and tell the parent that reading has begun:
    a probe that starts reading late would see a backlog and report it as latency."""
    consumer.consume(1, 0.5)
    if ready_file is not None:
        ready_file.write_text("ready")


def floor_consume(topic: str, start_ms: int, duration_s: float, ready_file: Path | None = None) -> dict[str, Any]:
    cfg = config.load()
    consumer = consumer_from(cfg, topic, start_ms, read_committed=False)
    _ready(consumer, ready_file)
    latencies: list[list[float]] = []
    deadline = time.monotonic() + duration_s
    try:
        while time.monotonic() < deadline:
            for message in receive(consumer, 1000, 0.05):
                received = _now_ms()
                if message.error() or message.key() == WARM_UP_KEY:
                    continue
                produced = message.timestamp()[1]
                latencies.append([produced, received - produced])
    finally:
        consumer.close()
    return {"samples": latencies}


#: With every transaction alerting, the longest silence that still waits for the rest of a run's alerts.
MAX_QUIET_S = 30.0


_SOURCE_TS = re.compile(rb'"source_ts":(-?\d+)')
_TXN_ID = re.compile(rb'"txn_id":"([^"]+)"')


def latency_summary(samples: list[tuple[int, float]], start_ms: int, warmup_s: float) -> dict[str, Any]:
    """Percentiles of ``(source_ts, latency_ms)`` samples after the warm-up, and whether latency stayed flat.

    Kept up: the last fifth of the run (by send time) has a p50 not far above the first fifth's. A job below
    its capacity has flat latency; above it the backlog, and so the latency, grows for the whole run.
    """
    kept = sorted(s for s in samples if s[0] >= start_ms + warmup_s * 1000)
    if not kept:
        return {"samples": 0}
    latencies = sorted(s[1] for s in kept)
    fifth = max(1, len(kept) // 5)
    first = sorted(s[1] for s in kept[:fifth])
    last = sorted(s[1] for s in kept[-fifth:])
    first_p50, last_p50 = percentile(first, 0.5), percentile(last, 0.5)
    return {
        "samples": len(latencies),
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "p999_ms": percentile(latencies, 0.999),
        "max_ms": latencies[-1],
        "first_fifth_p50_ms": first_p50,
        "last_fifth_p50_ms": last_p50,
        "last_fifth_p99_ms": percentile(last, 0.99),
        "kept_up": last_p50 <= max(2 * first_p50, first_p50 + 50),
        # 500 quantiles draw the CDF; every sample of a 5-minute run would be megabytes.
        "cdf_ms": [round(v, 1) for v in _quantiles(latencies, 500)],
        # The worst latency of each second of send time: where in the run the tail happened.
        "max_by_second_ms": _max_by_second(kept, start_ms),
    }


def _max_by_second(samples: list[tuple[int, float]], start_ms: int) -> list[float]:
    worst: dict[int, float] = {}
    for sent_ms, latency_ms in samples:
        second = (sent_ms - start_ms) // 1000
        worst[second] = max(worst.get(second, 0.0), latency_ms)
    return [round(worst.get(s, 0.0), 1) for s in range(max(worst) + 1)] if worst else []


def _quantiles(sorted_values: list[float], points: int) -> list[float]:
    if len(sorted_values) <= points:
        return sorted_values
    last = len(sorted_values) - 1
    return [sorted_values[round(i * last / (points - 1))] for i in range(points)]


def decisions(
    decisions_topic: str,
    alerts_topic: str | None,
    start_ms: int,
    expect: int,
    max_s: float,
    warmup_s: float,
    ready_file: Path | None = None,
) -> dict[str, Any]:
    """Read decisions (and, read committed, alerts) from ``start_ms`` until ``expect`` distinct decisions
    are in and the alerts went quiet, at most ``max_s``; summarize both latencies and this probe's CPU."""
    import resource
    import threading

    from confluent_kafka import Consumer, TopicPartition

    cfg = config.load()
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    decided: dict[bytes, int] = {}  # txn_id -> source_ts, first copy
    alertable: dict[bytes, int] = {}  # decisions that are alerts (review or decline): txn_id -> source_ts
    decision_samples: list[tuple[int, float]] = []
    alert_seen: dict[bytes, float] = {}
    duplicates = [0]
    last_decision = [0.0]
    done = threading.Event()

    def consumer(topic: str, committed: bool, lazy: bool) -> Any:
        settings: dict[str, Any] = {
            **cfg.kafka_client("observer"),
            "group.id": f"bench-probe-{topic}-{start_ms}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "log_level": 3,
        }
        # Decisions are timed by the broker's stamp: reading them in large, lazy fetches costs the broker and
        # this process less, and changes nothing measured. Alerts are timed on arrival: fetched at once.
        settings.update({"fetch.min.bytes": 65536, "fetch.wait.max.ms": 200} if lazy else {"fetch.wait.max.ms": 5})
        c = Consumer(settings)
        metadata = c.list_topics(topic, timeout=10)
        wanted = [TopicPartition(topic, p, start_ms) for p in metadata.topics[topic].partitions]
        found = c.offsets_for_times(wanted, timeout=10)
        c.assign([TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else -1) for tp in found])
        return c

    def read_decisions() -> None:
        c = consumer(decisions_topic, committed=False, lazy=True)
        try:
            while not done.is_set():
                for message in c.consume(2000, 0.2):
                    if message.error():
                        continue
                    value = message.value()
                    txn = _TXN_ID.search(value)
                    source = _SOURCE_TS.search(value)
                    if txn is None or source is None:
                        continue
                    txn_id, source_ts = txn.group(1), int(source.group(1))
                    if txn_id in decided:
                        duplicates[0] += 1
                        continue
                    decided[txn_id] = source_ts
                    decision_samples.append((source_ts, message.timestamp()[1] - source_ts))
                    if b'"decision":"approve"' not in value:
                        alertable[txn_id] = source_ts
                    last_decision[0] = time.monotonic()
        finally:
            c.close()

    def read_alerts() -> None:
        assert alerts_topic is not None
        c = consumer(alerts_topic, committed=True, lazy=False)
        try:
            while not done.is_set():
                for message in c.consume(500, 0.05):
                    received = _now_ms()
                    if message.error():
                        continue
                    txn = _TXN_ID.search(message.value())
                    if txn is not None:
                        alert_seen.setdefault(txn.group(1), received)
        finally:
            c.close()

    threads = [threading.Thread(target=read_decisions, daemon=True)]
    if alerts_topic:
        threads.append(threading.Thread(target=read_alerts, daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # assigned and fetching before the traffic starts
    if ready_file is not None:
        ready_file.write_text("ready")
    started = time.monotonic()
    complete_at: float | None = None
    while time.monotonic() - started < max_s:
        time.sleep(0.2)
        if complete_at is None and len(decided) >= expect:
            complete_at = time.monotonic()
        # Exactly-once alerts follow their decisions by up to a checkpoint: read on for a few seconds more.
        if complete_at is not None and time.monotonic() - complete_at > (3.0 if alerts_topic else 0.5):
            break
    done.set()
    for thread in threads:
        thread.join(timeout=30)
    alert_samples = [(alertable[txn], seen - alertable[txn]) for txn, seen in alert_seen.items() if txn in alertable]
    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "decisions": len(decided),
        "expected": expect,
        "duplicates": duplicates[0],
        "alerts": len(alert_seen),
        "complete": len(decided) >= expect,
        "drain_s": round(last_decision[0] - started, 2) if last_decision[0] else None,
        "decision": latency_summary(decision_samples, start_ms, warmup_s),
        "alert_visible": latency_summary(alert_samples, start_ms, warmup_s) if alerts_topic else None,
        "probe_cpu_s": round(cpu_end.ru_utime + cpu_end.ru_stime - cpu_start.ru_utime - cpu_start.ru_stime, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe")
    sub = parser.add_subparsers(dest="probe", required=True)
    produce = sub.add_parser("floor-produce")
    produce.add_argument("--topic", required=True)
    produce.add_argument("--rate", type=int, required=True)
    produce.add_argument("--duration", type=float, required=True)
    produce.add_argument("--bytes", type=int, default=500)
    produce.add_argument("--linger-ms", type=int, required=True)
    floor = sub.add_parser("floor-consume")
    floor.add_argument("--topic", required=True)
    floor.add_argument("--start-ms", type=int, required=True)
    floor.add_argument("--duration", type=float, required=True)
    floor.add_argument("--out", type=Path, required=True)
    floor.add_argument("--ready-file", type=Path)
    reader = sub.add_parser("decisions")
    reader.add_argument("--decisions-topic", required=True)
    reader.add_argument("--alerts-topic")
    reader.add_argument("--start-ms", type=int, required=True)
    reader.add_argument("--expect", type=int, required=True)
    reader.add_argument("--max-s", type=float, required=True)
    reader.add_argument("--warmup-s", type=float, default=0.0)
    reader.add_argument("--out", type=Path, required=True)
    reader.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    if args.probe == "floor-produce":
        print(json.dumps(floor_produce(args.topic, args.rate, args.duration, args.bytes, args.linger_ms)))
        return 0
    if args.probe == "floor-consume":
        result = floor_consume(args.topic, args.start_ms, args.duration, args.ready_file)
    else:
        result = decisions(
            args.decisions_topic,
            args.alerts_topic,
            args.start_ms,
            args.expect,
            args.max_s,
            args.warmup_s,
            args.ready_file,
        )
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
