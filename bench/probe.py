"""Latency probes, each run as its own process so that producing and measuring never share a GIL.

Every latency is measured on this machine's clock from a record's Kafka timestamp, which the producers
set to the record's *scheduled* send time (open loop: a producer that falls behind makes the latency
worse, it does not hide it), to the moment a consumer here received the result.

    python -m bench.probe floor-produce --topic T --rate R --duration S --bytes B --linger-ms L
    python -m bench.probe floor-consume --topic T --start-ms MS --duration S --out FILE
    python -m bench.probe alerts --alerts-topic T --start-ms MS --duration S --out FILE
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hybrid_platform import config, names
from hybrid_platform.latency import consumer_from, receive

#: The floor producer's first record, sent before its schedule starts; the floor consumer skips it.
WARM_UP_KEY = b"warm-up"


def _now_ms() -> float:
    return time.time_ns() / 1_000_000


def floor_produce(topic: str, rate: int, duration_s: float, record_bytes: int, linger_ms: int) -> dict[str, Any]:
    from confluent_kafka import Producer

    cfg = config.load()
    producer = Producer(
        {
            "bootstrap.servers": cfg.kafka_bootstrap,
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


def alerts(
    alerts_topic: str,
    start_ms: int,
    duration_s: float,
    min_duration_s: float,
    quiet_s: float,
    ready_file: Path | None = None,
    expect_fraction: float = 0.0,
) -> dict[str, Any]:
    """Transactions' scheduled send times and the alerts a read-committed consumer saw, matched by txn_id.

    Reads for at least ``min_duration_s``, then until no alert arrived for ``quiet_s`` (a job that fell
    behind is waited for, so its late alerts count), at most ``duration_s``. With ``expect_fraction`` (the
    job alerts on every transaction), a quiet spell counts only once that share of the run's transactions
    has its alert, or once it lasts ``MAX_QUIET_S``.
    """
    import threading

    cfg = config.load()
    produced_at: dict[str, int] = {}
    alert_seen_at: dict[str, float] = {}
    # The same alerts read uncommitted: when the job wrote them, before the checkpoint commits the Kafka
    # transaction. The difference to alert_seen_at is what exactly-once delivery costs.
    alert_written_at: dict[str, float] = {}
    last_alert_ms = [0.0]  # written by the alert reader only; read by the loop that decides when to stop
    stop = threading.Event()  # the transaction reader finishes what was produced, then ends
    alerts_done = threading.Event()

    readers_ready = threading.Barrier(4)

    def caught_up(consumer: Any) -> bool:
        for position in consumer.position(consumer.assignment()):
            high = consumer.get_watermark_offsets(position, timeout=5, cached=False)[1]
            if position.offset < high:
                return False
        return True

    def read_transactions() -> None:
        consumer = consumer_from(cfg, names.TOPIC_TRANSACTIONS, start_ms, read_committed=False)
        consumer.consume(1, 0.5)
        readers_ready.wait()
        try:
            # Every transaction of the run is read, even after the alerts went quiet: at high rates this
            # reader can trail, and an alert whose transaction it has not seen yet would be lost as a sample.
            deadline: float | None = None
            while deadline is None or time.monotonic() < deadline:
                if stop.is_set():
                    deadline = deadline or time.monotonic() + 60
                    if caught_up(consumer):
                        break
                for message in receive(consumer, 1000, 0.1):
                    if message.error():
                        continue
                    try:
                        produced_at[str(json.loads(message.value())["txn_id"])] = message.timestamp()[1]
                    except (ValueError, KeyError, TypeError):
                        continue
        finally:
            consumer.close()

    def read_alerts(read_committed: bool) -> None:
        seen_at = alert_seen_at if read_committed else alert_written_at
        consumer = consumer_from(cfg, alerts_topic, start_ms, read_committed=read_committed)
        consumer.consume(1, 0.5)
        readers_ready.wait()
        try:
            while not alerts_done.is_set():
                for message in receive(consumer, 1000, 0.02):
                    received = _now_ms()
                    if message.error():
                        continue
                    seen_at.setdefault(str(json.loads(message.value())["txn_id"]), received)
                    if read_committed:
                        last_alert_ms[0] = received
        finally:
            consumer.close()

    threads = [
        threading.Thread(target=read_transactions, daemon=True),
        threading.Thread(target=read_alerts, args=(True,), daemon=True),
        threading.Thread(target=read_alerts, args=(False,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    readers_ready.wait()
    if ready_file is not None:
        ready_file.write_text("ready")
    started = time.monotonic()
    while time.monotonic() - started < duration_s:
        time.sleep(0.2)
        if time.monotonic() - started < min_duration_s:
            continue
        if not last_alert_ms[0]:
            # No alert yet: a job further behind than min_duration_s (or whose exactly-once commits stall
            # under overload) is waited for, up to duration_s, like any job that fell behind.
            continue
        quiet_for_ms = _now_ms() - last_alert_ms[0]
        if expect_fraction and produced_at:
            # Every transaction yields an alert: a quiet spell ends the run only once most of them arrived (a
            # slow micro-batch is waited for), or once it lasts MAX_QUIET_S (a job that has stopped).
            try:
                complete = len(alert_seen_at.keys() & produced_at.keys()) / len(produced_at)
            except RuntimeError:  # a reader added a key mid-count: count again on the next round
                continue
            if complete >= expect_fraction and quiet_for_ms > quiet_s * 1000:
                break
            if quiet_for_ms > max(quiet_s, MAX_QUIET_S) * 1000:
                break
        elif quiet_for_ms > quiet_s * 1000:
            break
    alerts_done.set()
    stop.set()
    for thread in threads:
        thread.join(timeout=70)

    def matched(seen_at: dict[str, float]) -> list[list[float]]:
        return sorted(
            [produced_at[txn], seen - produced_at[txn]]
            for txn, seen in seen_at.items()
            if txn in produced_at and seen >= produced_at[txn]
        )

    production_end_ms = start_ms + (min_duration_s - quiet_s) * 1000
    last_ms = last_alert_ms[0] or None
    # Every alert's arrival, matched or not (a job behind by more than a run delivers an earlier run's): the
    # longest wait between two is how far apart the job emits (Spark: once per micro-batch).
    arrivals = sorted(alert_seen_at.values())
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    return {
        "max_alert_gap_s": round(max(gaps) / 1000, 2) if gaps else None,
        "samples": matched(alert_seen_at),
        "samples_written": matched(alert_written_at),
        "transactions_seen": len(produced_at),
        "alerts_seen": len(alert_seen_at),
        # How long after the producer stopped the last alert arrived: near zero when the job kept up.
        "drain_s": round((last_ms - production_end_ms) / 1000, 2) if last_ms else None,
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
    for name in ("floor-consume", "alerts"):
        reader = sub.add_parser(name)
        reader.add_argument("--topic" if name == "floor-consume" else "--alerts-topic", required=True)
        reader.add_argument("--start-ms", type=int, required=True)
        reader.add_argument("--duration", type=float, required=True)
        reader.add_argument("--out", type=Path, required=True)
        reader.add_argument("--min-duration", type=float, default=0.0)
        reader.add_argument("--quiet-s", type=float, default=3.0)
        reader.add_argument("--ready-file", type=Path)
        reader.add_argument("--expect-fraction", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.probe == "floor-produce":
        result = floor_produce(args.topic, args.rate, args.duration, args.bytes, args.linger_ms)
        print(json.dumps(result))
        return 0
    if args.probe == "floor-consume":
        result = floor_consume(args.topic, args.start_ms, args.duration, args.ready_file)
    else:
        result = alerts(
            args.alerts_topic,
            args.start_ms,
            args.duration,
            args.min_duration,
            args.quiet_s,
            args.ready_file,
            args.expect_fraction,
        )
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
