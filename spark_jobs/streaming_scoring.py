"""streaming_scoring: fraud_scoring's decide-on-arrival logic in Spark Structured Streaming, for the engine comparison.

The same logic as ``flink_jobs/fraud_scoring.py`` on the same ``transactions`` topic, writing to its own
topics (default ``fraud_decisions_spark`` / ``fraud_alerts_spark`` / ``transactions_dlq_spark``) so both
engines can run side by side:

- Kafka source; parse and validate with ``hybrid_platform.events.parse_transaction`` in one Arrow (pandas)
  UDF per micro-batch; malformed records go to the DLQ topic with the reason, the job never fails on data;
- per card, in Spark state (``transformWithState``, keyed by ``card_id``, RocksDB state store), the card's
  compact history; each micro-batch decides the card's new transactions in arrival order (Kafka offset
  order: the topic is keyed by card) with ``hybrid_platform.decisions.ArrivalDecider``'s algorithm: the
  features as of arrival, the rules and the champion model (hot reloaded), a decision;
- every decision to the decisions topic, those at or above the alert threshold to the alerts topic.

**Delivery guarantee: at least once**, like Flink's ``fraud_decisions``: Spark's Kafka sink is not
transactional, so after a failure a replayed micro-batch may write its decisions twice (readers
deduplicate on ``txn_id``). The benchmark therefore compares it with Flink's decision latency, and
reports Flink's exactly-once alerts separately.

**Where the time goes.** A decision is written when its micro-batch completes: the batch's planning, the
shuffle to the keyed state, the Python state calls (each a round trip to the JVM's state server) and the
Kafka commit. That is the micro-batch model, not a setting: Spark 4.1's Real-Time Mode
(``--trigger realtime``) would remove it but runs stateless queries only, and is refused with one line
(``REAL_TIME_MODE_UNSUPPORTED``): ``DataStreamWriter.trigger`` in PySpark 4.1.3 has no realTime trigger, and
the JVM's ``RealTimeModeAllowlist`` has no state store, shuffle or Python UDF node.

Run: ``python -m spark_jobs.streaming_scoring --trigger asap`` (checkpoint in
``<HDP_HOME>/spark/checkpoints/streaming_scoring``; delete it, or pass ``--checkpoint-dir``, to start over).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped]  # at module level: pandas_udf resolves the type hints of parse_batch at run time
from pyspark.sql import Row
from pyspark.sql.streaming.stateful_processor import StatefulProcessor, StatefulProcessorHandle, TimerValues

from hybrid_platform import events, features, kafka_auth, names
from hybrid_platform.argparsing import OneLineParser
from hybrid_platform.config import PlatformConfig
from hybrid_platform.decisions import alert_of, decide_on_arrival, decision_record
from hybrid_platform.rules import DEFAULT_ALERT_THRESHOLD

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming.query import StreamingQuery

JOB_NAME = "streaming_scoring"
DEFAULT_DECISIONS_TOPIC, DEFAULT_ALERTS_TOPIC, DEFAULT_DLQ_TOPIC = names.SPARK_SCORING_TOPICS
#: Malformed records carry no card: they share this grouping key, which no valid card_id can have (empty).
MALFORMED_KEY = ""
TRIGGERS = ("asap", "1s", "realtime")
REAL_TIME_MODE_UNSUPPORTED = (
    "--trigger realtime: Spark 4.1.3's Real-Time Mode runs stateless queries only (its operator allowlist has "
    "no stateful operator, shuffle or Python UDF node, and PySpark 4.1 has no realTime trigger); "
    "this job keeps per-card state, use --trigger asap or 1s"
)

# --- state (de)serialisation for Spark's ValueState: one card's history --------------------------------

STATE_SCHEMA = "times array<long>, cents array<long>, countries array<string>"


def history_to_tuple(history: features.History) -> tuple[list[int], list[int], list[str]]:
    cents = [int(amount * 100) for amount in history.columns["amount"]]  # type: ignore[operator]
    return history.times, cents, [str(c) for c in history.columns["country"]]


def history_from_tuple(value: tuple[Any, ...] | None) -> features.History | None:
    if value is None:
        return None
    times, cents, countries = value
    amounts: list[object] = [Decimal(c) / 100 for c in cents]
    return features.History(list(times), {"amount": amounts, "country": list(countries)})


# --- the Spark parts ------------------------------------------------------------------------------------

PARSED_FIELDS = (
    "ok boolean, reason string, txn_id string, card_id string, mcc string, channel string, country string, "
    "amount_cents long, event_time long, received_at long"
)
OUTPUT_SCHEMA = "topic string, key string, value string"

_MODELS: dict[tuple[str, float], Any] = {}


def _champion(registry_root: str, reload_interval_s: float) -> Any:
    """One hot-reloading champion per Python worker (workers are reused across micro-batches)."""
    cache_key = (registry_root, reload_interval_s)
    if cache_key not in _MODELS:
        from hybrid_platform.model import HotReloadingModel, ModelRegistry

        _MODELS[cache_key] = HotReloadingModel(
            ModelRegistry(Path(registry_root)),
            check_interval_s=reload_interval_s,
            # A champion trained on other feature definitions is refused; the previous model stays.
            expected_feature_spec_version=features.FEATURE_SPEC_VERSION,
        )
    return _MODELS[cache_key]


def parse_batch(values: pd.Series) -> pd.DataFrame:
    """The Arrow UDF body: ``events.parse_transaction`` on each record of a batch (the Flink UDF's contract)."""
    rows: list[tuple[Any, ...]] = []
    for raw in values:
        received_at = time.time_ns() // 1_000_000
        txn, reason = events.parse_transaction(raw)
        if txn is None:
            rows.append((False, reason, None, None, None, None, None, None, None, received_at))
        else:
            cents = int(txn.amount * 100)  # exact: the parser guarantees two decimals
            rows.append(
                (True, None, txn.txn_id, txn.card_id, txn.mcc, txn.channel, txn.country, cents, txn.event_time, None)
            )
    columns = [spec.split()[0] for spec in PARSED_FIELDS.split(", ")]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("amount_cents", "event_time", "received_at"):
        frame[column] = frame[column].astype("Int64")
    return frame


@dataclass(frozen=True)
class ScoringSettings:
    decisions_topic: str = DEFAULT_DECISIONS_TOPIC
    alerts_topic: str = DEFAULT_ALERTS_TOPIC
    dlq_topic: str = DEFAULT_DLQ_TOPIC
    alert_threshold: float = DEFAULT_ALERT_THRESHOLD
    registry_root: str = ""
    model_reload_interval_s: float = 5.0


class CardScoringProcessor(StatefulProcessor):
    """Per card: its new transactions decided in arrival order over its history, one state read and write."""

    def __init__(self, settings: ScoringSettings) -> None:
        self.settings = settings

    def init(self, handle: StatefulProcessorHandle) -> None:
        # One value per card (one state-store round trip to read it, one to write it): the per-call cost
        # of the Python state API dominates, not the size of the value.
        self.card = handle.getValueState("card", STATE_SCHEMA)
        self.model = _champion(self.settings.registry_root, self.settings.model_reload_interval_s)

    def handleInputRows(self, key: Any, rows: Iterator[Row], timerValues: TimerValues) -> Iterator[Row]:
        card_id = key[0]
        if card_id == MALFORMED_KEY:
            return self._dead_letters(rows)
        history = history_from_tuple(self.card.get())
        model = self.model.current()
        messages: list[Row] = []
        for row in sorted(rows, key=lambda r: (r.partition, r.offset)):  # arrival order
            txn = events.Transaction(
                row.txn_id,
                card_id,
                "",
                row.mcc,
                Decimal(row.amount_cents) / 100,
                "",
                row.country,
                row.channel,
                row.event_time,
            )
            now = time.time_ns() // 1_000_000
            decision, history = decide_on_arrival(history, txn, now, model, self.settings.alert_threshold)
            record = decision_record(txn, decision, now, row.partition, row.offset, row.source_ts)
            messages.append(Row(topic=self.settings.decisions_topic, key=card_id, value=_json(record)))
            if decision.score >= self.settings.alert_threshold:
                alert = alert_of(txn, decision, now)
                messages.append(Row(topic=self.settings.alerts_topic, key=card_id, value=_json(alert)))
        if history is None:
            self.card.clear()
        else:
            self.card.update(history_to_tuple(history))
        return iter(messages)

    def _dead_letters(self, rows: Iterator[Row]) -> Iterator[Row]:
        for row in rows:
            record = events.dlq_record(
                bytes(row.raw), row.reason, row.topic, row.partition, row.offset, row.received_at
            )
            yield Row(topic=self.settings.dlq_topic, key=None, value=_json(record))

    def close(self) -> None:
        pass


def _json(record: Mapping[str, object]) -> str:
    return json.dumps(record, separators=(",", ":"))


def build_pipeline(source: DataFrame, settings: ScoringSettings) -> DataFrame:
    """Kafka source rows -> ``topic, key, value`` rows for the Kafka sink (decisions, alerts, dead letters)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.functions import pandas_udf

    parse = pandas_udf(parse_batch, returnType=f"struct<{PARSED_FIELDS}>")  # type: ignore[call-overload]
    parsed = source.select(
        parse(F.col("value")).alias("p"),
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.unix_millis(F.col("timestamp")).alias("source_ts"),
    )
    keyed = parsed.select(
        F.when(F.col("p.ok"), F.col("p.card_id")).otherwise(F.lit(MALFORMED_KEY)).alias("card_key"),
        "p.txn_id",
        "p.mcc",
        "p.channel",
        "p.country",
        "p.amount_cents",
        "p.event_time",
        "source_ts",
        "p.reason",
        "p.received_at",
        # Only dead letters carry their original bytes through the shuffle.
        F.when(~F.col("p.ok"), F.col("value")).alias("raw"),
        "topic",
        "partition",
        "offset",
    )
    # transformWithState (Rows), not transformWithStateInPandas: with a few events per card per micro-batch,
    # building a pandas DataFrame for every card costs more than the scoring.
    return keyed.groupBy("card_key").transformWithState(
        statefulProcessor=CardScoringProcessor(settings),
        outputStructType=OUTPUT_SCHEMA,
        outputMode="Append",
        timeMode="None",
    )


def progress_line(progress: Sequence[Mapping[str, Any]]) -> str:
    """One line over some micro-batches: rows, processing rate, the last batch's time, the watermark."""
    if not progress:
        return f"{JOB_NAME}: no micro-batch completed in this interval"
    rows = sum(int(p["numInputRows"]) for p in progress)
    busy_ms = sum(int(p["durationMs"].get("triggerExecution", 0)) for p in progress)
    last = progress[-1]
    return (
        f"{JOB_NAME}: batch {last['batchId']}, {rows} rows in {len(progress)} batches, "
        f"{rows / (busy_ms / 1000) if busy_ms else 0.0:,.0f} rows/s while busy, "
        f"last batch {last['durationMs'].get('triggerExecution', 0)} ms"
    )


def checkpoint_dir(cfg: PlatformConfig) -> Path:
    return cfg.home / "spark" / "checkpoints" / JOB_NAME


def configure(spark: SparkSession, shuffle_partitions: int) -> None:
    """Settings that decide latency and state (recorded here, not left to defaults)."""
    for key, value in {
        # transformWithState needs the RocksDB state store; changelog checkpointing commits only the changes
        # of each micro-batch instead of uploading RocksDB files, which is what a low-latency query needs.
        "spark.sql.streaming.stateStore.providerClass": (
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
        ),
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
        # One task per core for the keyed state (fixed by the checkpoint once the query has run).
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
    }.items():
        spark.conf.set(key, value)


def start(
    spark: SparkSession,
    cfg: PlatformConfig,
    settings: ScoringSettings,
    trigger: str,
    checkpoint: Path,
    starting_offsets: str = "latest",
) -> StreamingQuery:
    if trigger == "realtime":
        raise ValueError(REAL_TIME_MODE_UNSUPPORTED)
    auth = kafka_auth.spark_options(cfg.kafka_java("spark-scoring"))
    source = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", cfg.kafka_bootstrap)
        .options(**auth)
        .option("subscribe", names.TOPIC_TRANSACTIONS)
        .option("startingOffsets", starting_offsets)
        .load()
    )
    writer = (
        build_pipeline(source, settings)
        .writeStream.format("kafka")
        .queryName(JOB_NAME)
        .option("kafka.bootstrap.servers", cfg.kafka_bootstrap)
        .options(**auth)
        # Each task flushes its producer when it commits; lingering would only delay that flush.
        .option("kafka.linger.ms", "0")
        .option("checkpointLocation", str(checkpoint))
        .outputMode("append")
        .trigger(processingTime="0 seconds" if trigger == "asap" else "1 second")
    )
    return writer.start()


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from spark_jobs.session import build_session

    from hybrid_platform import config
    from hybrid_platform.model import registry_root

    cfg = config.load()
    parser = OneLineParser(prog=prog, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trigger", choices=TRIGGERS, default="asap", help="asap (processingTime 0), 1s, realtime")
    parser.add_argument("--starting-offsets", choices=("latest", "earliest"), default="latest")
    parser.add_argument("--decisions-topic", default=DEFAULT_DECISIONS_TOPIC)
    parser.add_argument("--alerts-topic", default=DEFAULT_ALERTS_TOPIC)
    parser.add_argument("--dlq-topic", default=DEFAULT_DLQ_TOPIC)
    parser.add_argument("--alert-threshold", type=float, default=DEFAULT_ALERT_THRESHOLD)
    parser.add_argument("--model-registry", default=str(registry_root(cfg)))
    parser.add_argument("--model-reload-interval-s", type=float, default=5.0)
    parser.add_argument("--checkpoint-dir", type=Path, default=checkpoint_dir(cfg))
    parser.add_argument("--shuffle-partitions", type=int, default=2)
    parser.add_argument("--run-for-s", type=float, default=None, help="stop after this many seconds (tests, bench)")
    parser.add_argument("--progress-interval-s", type=float, default=10.0, help="print throughput and lag (0: never)")
    args = parser.parse_args(argv)
    if args.trigger == "realtime":
        parser.exit(2, f"{parser.prog}: {REAL_TIME_MODE_UNSUPPORTED}\n")
    if args.shuffle_partitions < 1:
        parser.error("--shuffle-partitions must be >= 1")

    from hybrid_platform import generator

    # The output topics with the same partitioning the generator gives the platform's topics.
    generator.ensure_topics(cfg, [names.TOPIC_TRANSACTIONS, args.decisions_topic, args.alerts_topic, args.dlq_topic])
    spark = build_session(JOB_NAME, cfg)
    try:
        configure(spark, args.shuffle_partitions)
        settings = ScoringSettings(
            args.decisions_topic,
            args.alerts_topic,
            args.dlq_topic,
            args.alert_threshold,
            args.model_registry,
            args.model_reload_interval_s,
        )
        query = start(spark, cfg, settings, args.trigger, args.checkpoint_dir, args.starting_offsets)
        print(
            f"{JOB_NAME}: running ({args.trigger}); decisions -> {args.decisions_topic}, alerts -> "
            f"{args.alerts_topic}, dead letters -> {args.dlq_topic}",
            flush=True,  # a log follower (the bench) starts its traffic on this line
        )
        deadline = None if args.run_for_s is None else time.monotonic() + args.run_for_s
        interval_s = args.progress_interval_s or 60.0
        printed_batch = -1
        while query.isActive and (deadline is None or time.monotonic() < deadline):
            wait_s = interval_s if deadline is None else min(interval_s, deadline - time.monotonic())
            timeout: Any = max(wait_s, 0.001)  # seconds; pyspark's hint says int, a float works (ms inside)
            if query.awaitTermination(timeout) or not args.progress_interval_s:
                continue
            fresh = [p for p in query.recentProgress if p["batchId"] > printed_batch]
            printed_batch = fresh[-1]["batchId"] if fresh else printed_batch
            print(progress_line(fresh), flush=True)
        if query.isActive:
            query.stop()
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
