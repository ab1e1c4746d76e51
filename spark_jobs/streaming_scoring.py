"""streaming_scoring: the fraud_scoring pipeline in Spark Structured Streaming, for an engine comparison.

The same logic as ``flink_jobs/fraud_scoring.py`` on the same ``transactions`` topic, writing to its own
topics (default ``fraud_alerts_spark`` / ``transactions_dlq_spark``) so both engines can run side by side:

- Kafka source; event time = the record's ``event_time``, or the Kafka timestamp when it is unreadable or
  more than a minute ahead of it (Flink's rule); watermark = max event time - 200 ms;
- parse and validate with ``hybrid_platform.events.parse_transaction`` in one Arrow (pandas) UDF per
  micro-batch; malformed records go to the DLQ topic with the reason, the job never fails on data;
- per-card features of ``hybrid_platform.features`` in Spark state (``transformWithState``, state API v2,
  keyed by ``card_id``, RocksDB state store, one event-time timer per card with pending events): an
  on-time event waits in state until the watermark passes it, then the card's due events are scored in
  event-time order, exactly as Flink's event-time OVER windows emit them (the current event is in its own
  windows; events with the same time are each other's peers). A card keeps its last hour of events
  (pruned when it is next seen) and its previous event time for good, as Flink's 2-row frame does;
- events at or behind the watermark skip the windows and are scored on their stateless signals
  (``late_event``), as Flink does;
- score = ``hybrid_platform.rules.score_transaction`` with the registry's champion (hot reloaded);
  alerts at or above the threshold as ``fraud_alerts`` JSON records, keyed by card_id.

**Delivery guarantee: at least once.** Spark's Kafka sink is not transactional: after a failure the
micro-batch is replayed from the checkpoint and its alerts may be written twice (consumers deduplicate on
``txn_id``). Flink's job is exactly once (transactional producer, read-committed consumers), and pays for it
with alert visibility at checkpoint completion; the benchmark compares latency and states this difference.

**Watermark differences Spark forces** (Flink: bounded out-of-orderness per Kafka partition, minimum over
the partitions, idle partitions skipped after 2 s, advanced continuously): Spark has one global
watermark, the maximum event time over all partitions minus the delay, computed at the end of a
micro-batch and used from the next one. So an event is late here when it is behind the maximum of
*earlier* micro-batches (Flink: behind the minimum over partitions, at arrival), and an on-time event is
released one micro-batch after the watermark passes it. Spark's own late-row filter in front of an
event-time ``transformWithState`` would silently drop late events; the watermark column is therefore
projected away before the stateful operator (which still receives the query's watermark through
``TimerValues``), and the processor itself routes late events to stateless scoring like Flink does.

**Cost of Python state** (measured on the shared 2-core machine, niced, load average ~20, so read as
ratios): parsing is ~35 us per record in the Arrow UDF; each call of the Python state API
(get/update/timer) is a round trip to the JVM's state server, ~6 per event here, and dominates.
``transformWithStateInPandas`` builds a pandas DataFrame per card and micro-batch, which with one or two
events per card cost more than everything else: 60,000 events (50,913 cards) took 100 s of input
processing with it and 61 s with the Row-based ``transformWithState`` used here. This is the Spark
counterpart of the PyFlink finding that per-key state in Python costs orders of magnitude (the Flink job
keeps its windows in JVM SQL); a JVM (Scala) processor would remove it, at the price of the shared Python
feature/rule code.

**Real-Time Mode** (``--trigger realtime``) is refused with one line (``REAL_TIME_MODE_UNSUPPORTED``).
Evidence, for pyspark 4.1.3: ``DataStreamWriter.trigger`` accepts only processingTime, once, continuous
and availableNow (the JVM has ``Trigger.RealTime``, PySpark does not expose it); the operator allowlist in
``RealTimeModeAllowlist`` (spark-sql 4.1.3) lists only stateless nodes (project, filter, union, broadcast
joins, Kafka scan/write...) — no ``TransformWithState*``/state store node, no shuffle exchange, no event-time
watermark and no Python UDF evaluation node — and Real-Time Mode requires Update output mode; the 4.1 guide
says it "supports stateless queries only", transformWithState being planned from 4.3 (whose guide lists
the JVM transformWithState only). Forced through py4j (the JVM's ``Trigger.RealTime("5 seconds")``) on
this query: in Append mode it is refused at start (``STREAMING_REAL_TIME_MODE.OUTPUT_MODE_NOT_SUPPORTED``);
in Update mode it fails in its first batch (``STDS_FAILED_TO_READ_OPERATOR_METADATA`` from
``TransformWithStateExecBase.validateAndWriteStateSchema``).

Run: ``python -m spark_jobs.streaming_scoring --trigger asap`` (checkpoint in
``<HDP_HOME>/spark/checkpoints/streaming_scoring``; delete it, or pass ``--checkpoint-dir``, to start over).
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd  # at module level: pandas_udf resolves the type hints of parse_batch at run time
from pyspark.sql import Row
from pyspark.sql.streaming.stateful_processor import (
    ExpiredTimerInfo,
    StatefulProcessor,
    StatefulProcessorHandle,
    TimerValues,
)

from hybrid_platform import events, features, names
from hybrid_platform.argparsing import OneLineParser
from hybrid_platform.config import PlatformConfig
from hybrid_platform.rules import DEFAULT_ALERT_THRESHOLD, score_transaction

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from hybrid_platform.model import CompiledModel

JOB_NAME = "streaming_scoring"
DEFAULT_ALERTS_TOPIC = "fraud_alerts_spark"
DEFAULT_DLQ_TOPIC = "transactions_dlq_spark"
DEFAULT_WATERMARK_DELAY_MS = 200  # Flink's bounded out-of-orderness
#: A record's event time more than this far ahead of its Kafka timestamp is not trusted (Flink's rule).
EVENT_TIME_MAX_AHEAD_MS = 60_000
#: Malformed records carry no card: they share this grouping key, which no valid card_id can have (empty).
MALFORMED_KEY = ""
TRIGGERS = ("asap", "1s", "realtime")
REAL_TIME_MODE_UNSUPPORTED = (
    "--trigger realtime: Spark 4.1.3's Real-Time Mode runs stateless queries only (its operator allowlist has "
    "no stateful operator, shuffle, watermark or Python UDF node, and PySpark 4.1 has no realTime trigger); "
    "this job keeps per-card state, use --trigger asap or 1s"
)
_MAX_WINDOW_MS = max(w.window_seconds for w in features.WINDOW_FEATURES) * 1000
#: Late events skip the windows: every windowed feature 0, no previous transaction (Flink passes the same).
LATE_FEATURES: dict[str, float] = {
    name: -1.0 if name == features.PREVIOUS_GAP_FEATURE else 0.0 for name in features.FEATURE_NAMES
}


# --- the pure part: per-card feature state ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardEvent:
    """A valid transaction as the card's state holds it; ``ts`` is its event time for ordering/windows."""

    txn_id: str
    card_id: str
    mcc: str
    channel: str
    country: str
    amount_cents: int  # exact: sums of cents / 100 give the same double as SUM(DECIMAL) cast to DOUBLE
    event_time: int
    ts: int
    partition: int = 0
    offset: int = 0

    @property
    def amount(self) -> float:
        return self.amount_cents / 100

    def order(self) -> tuple[int, int, int]:
        # Event time first; ties in arrival order (one card's records share a partition, keyed by card_id).
        return (self.ts, self.partition, self.offset)


@dataclass
class CardState:
    """One card: its released events of the last hour (for the windows), the previous event, pending events."""

    history_ts: list[int] = field(default_factory=list)
    history_cents: list[int] = field(default_factory=list)
    history_country: list[str] = field(default_factory=list)
    prev_event_time: int | None = None  # kept for good, like Flink's 2-row frame: the gap has no horizon
    pending: list[CardEvent] = field(default_factory=list)

    def prune(self, oldest_ts_needed: int) -> None:
        """Forget released events older than ``oldest_ts_needed`` (no future window can reach them)."""
        cut = bisect.bisect_left(self.history_ts, oldest_ts_needed)
        if cut:
            del self.history_ts[:cut], self.history_cents[:cut], self.history_country[:cut]


def _window_value(feature: features.WindowAggregate, state: CardState, start: int) -> float:
    if feature.function == "COUNT":
        return float(len(state.history_ts) - start)
    if feature.function == "SUM" and feature.column == "amount":
        return sum(state.history_cents[start:]) / 100
    if feature.function == "COUNT_DISTINCT" and feature.column == "country":
        return float(len(set(state.history_country[start:])))
    raise ValueError(f"no streaming implementation of {feature.function}({feature.column})")


def release_due(state: CardState, watermark_ms: int) -> list[tuple[CardEvent, dict[str, float]]]:
    """Features of the pending events at or behind the watermark, in event-time order; updates ``state``.

    Same frames as Flink's OVER windows: ``RANGE`` windows span ``[ts - window, ts]`` and include every event
    with the same ``ts`` (peers); the gap is to the previous event in order, ``-1`` for the card's first.
    """
    due = sorted((e for e in state.pending if e.ts <= watermark_ms), key=CardEvent.order)
    if not due:
        return []
    state.pending = [e for e in state.pending if e.ts > watermark_ms]
    released: list[tuple[CardEvent, dict[str, float]]] = []
    index = 0
    while index < len(due):
        ts = due[index].ts
        peers = [e for e in due[index:] if e.ts == ts]
        index += len(peers)
        state.prune(ts - _MAX_WINDOW_MS)
        for event in peers:
            state.history_ts.append(event.ts)
            state.history_cents.append(event.amount_cents)
            state.history_country.append(event.country)
        windowed = {
            feature.name: _window_value(
                feature, state, bisect.bisect_left(state.history_ts, ts - feature.window_seconds * 1000)
            )
            for feature in features.WINDOW_FEATURES
        }
        for event in peers:
            previous = state.prev_event_time
            # Flink: event_time - MIN(event_time) over the 2-row frame, so never negative.
            gap = -1.0 if previous is None else (event.event_time - min(previous, event.event_time)) / 1000.0
            state.prev_event_time = event.event_time
            released.append((event, {**windowed, features.PREVIOUS_GAP_FEATURE: gap}))
    return released


def next_timer(state: CardState) -> int | None:
    """When the card needs the watermark next: at its earliest pending event (None: nothing pending).

    No timer expires the history: that would cost two more state-store calls per event, and the history
    of a card that went quiet is at most its last hour of events (pruned when the card is next seen).
    """
    return min(e.ts for e in state.pending) if state.pending else None


def score_event(
    event: CardEvent, feature_map: Mapping[str, float], is_late: bool, model: CompiledModel | None
) -> tuple[float, list[str], str]:
    return score_transaction(feature_map, event.amount, event.mcc, event.channel, event.country, is_late, model)


def alert_message(
    event: CardEvent, score: float, reasons: Sequence[str], model_version: str, scored_at: int
) -> tuple[str, str]:
    """``(key, value)`` of a ``fraud_alerts`` record, the contract of ``events.alert_record``."""
    record = events.alert_record(
        event.txn_id, event.card_id, score, list(reasons), model_version, event.event_time, scored_at
    )
    return event.card_id, json.dumps(record, separators=(",", ":"))


# --- state (de)serialisation for Spark's ValueState -----------------------------------------------------

PENDING_FIELDS = "txn_id string, mcc string, channel string, country string, amount_cents long, event_time long, "
PENDING_FIELDS += "ts long, partition int, offset long"
STATE_SCHEMA = (
    "history_ts array<long>, history_cents array<long>, history_country array<string>, prev_event_time long, "
    f"pending array<struct<{PENDING_FIELDS}>>, timer_ms long"
)


def state_to_tuple(state: CardState, timer_ms: int | None) -> tuple[Any, ...]:
    pending = [
        (e.txn_id, e.mcc, e.channel, e.country, e.amount_cents, e.event_time, e.ts, e.partition, e.offset)
        for e in state.pending
    ]
    return (
        state.history_ts,
        state.history_cents,
        state.history_country,
        state.prev_event_time,
        pending,
        timer_ms,
    )


def state_from_tuple(card_id: str, value: tuple[Any, ...] | None) -> tuple[CardState, int | None]:
    if value is None:
        return CardState(), None
    history_ts, history_cents, history_country, prev_event_time, pending, timer_ms = value
    return (
        CardState(
            list(history_ts or []),
            list(history_cents or []),
            list(history_country or []),
            prev_event_time,
            [CardEvent(p[0], card_id, *p[1:]) for p in pending or []],
        ),
        timer_ms,
    )


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
    rows = []
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
    alerts_topic: str = DEFAULT_ALERTS_TOPIC
    dlq_topic: str = DEFAULT_DLQ_TOPIC
    alert_threshold: float = DEFAULT_ALERT_THRESHOLD
    registry_root: str = ""
    model_reload_interval_s: float = 5.0


class CardScoringProcessor(StatefulProcessor):
    """Per card: late events scored at once; on-time ones held until the watermark passes, then scored."""

    def __init__(self, settings: ScoringSettings) -> None:
        self.settings = settings

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        # One value per card (one state-store round trip to read it, one to write it): the per-call cost
        # of the Python state API dominates, not the size of the value.
        self.card = handle.getValueState("card", STATE_SCHEMA)
        self.model = _champion(self.settings.registry_root, self.settings.model_reload_interval_s)

    def handleInputRows(self, key: Any, rows: Iterator[Row], timerValues: TimerValues) -> Iterator[Row]:
        card_id = key[0]
        if card_id == MALFORMED_KEY:
            return self._dead_letters(rows)
        watermark = timerValues.getCurrentWatermarkInMs()
        state, timer_ms = state_from_tuple(card_id, self.card.get())
        messages: list[Row] = []
        for row in rows:
            event = CardEvent(
                row.txn_id,
                card_id,
                row.mcc,
                row.channel,
                row.country,
                row.amount_cents,
                row.event_time,
                row.ts_ms,
                row.partition,
                row.offset,
            )
            if event.ts <= watermark:  # late: behind the watermark, so the windows have moved past it
                self._score(event, LATE_FEATURES, True, messages)
            else:
                state.pending.append(event)
        self._save(state, timer_ms)
        return iter(messages)

    def handleExpiredTimer(
        self, key: Any, timerValues: TimerValues, expiredTimerInfo: ExpiredTimerInfo
    ) -> Iterator[Row]:
        card_id = key[0]
        watermark = timerValues.getCurrentWatermarkInMs()
        state, timer_ms = state_from_tuple(card_id, self.card.get())
        messages: list[Row] = []
        for event, feature_map in release_due(state, watermark):
            self._score(event, feature_map, False, messages)
        if timer_ms == expiredTimerInfo.getExpiryTimeInMs():
            timer_ms = None  # Spark deletes the timer that fired
        self._save(state, timer_ms)
        return iter(messages)

    def _save(self, state: CardState, timer_ms: int | None) -> None:
        wanted = next_timer(state)
        if wanted != timer_ms:
            if timer_ms is not None:
                self.handle.deleteTimer(timer_ms)
            if wanted is not None:
                self.handle.registerTimer(wanted)
        self.card.update(state_to_tuple(state, wanted))

    def _score(self, event: CardEvent, feature_map: Mapping[str, float], is_late: bool, out: list[Row]) -> None:
        score, reasons, model_version = score_event(event, feature_map, is_late, self.model.current())
        if score >= self.settings.alert_threshold:
            key, value = alert_message(event, score, reasons, model_version, time.time_ns() // 1_000_000)
            out.append(Row(topic=self.settings.alerts_topic, key=key, value=value))

    def _dead_letters(self, rows: Iterator[Row]) -> Iterator[Row]:
        for row in rows:
            record = events.dlq_record(
                bytes(row.raw), row.reason, row.topic, row.partition, row.offset, row.received_at
            )
            yield Row(topic=self.settings.dlq_topic, key=None, value=json.dumps(record, separators=(",", ":")))

    def close(self) -> None:
        pass


def event_time_column() -> Any:
    """Flink's event-time rule as a Spark column (a timestamp) on the Kafka source's columns."""
    from pyspark.sql import functions as F

    declared = F.expr("try_cast(get_json_object(cast(value AS STRING), '$.event_time') AS BIGINT)")
    kafka_ms = F.unix_millis(F.col("timestamp"))
    trusted = declared.isNotNull() & (declared <= kafka_ms + F.lit(EVENT_TIME_MAX_AHEAD_MS))
    return F.timestamp_millis(F.when(trusted, declared).otherwise(kafka_ms))


def build_pipeline(source: DataFrame, settings: ScoringSettings, watermark_delay_ms: int) -> DataFrame:
    """Kafka source rows -> ``topic, key, value`` rows for the Kafka sink (alerts and dead letters)."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    parse = pandas_udf(parse_batch, returnType=f"struct<{PARSED_FIELDS}>")  # type: ignore[call-overload]
    with_time = source.withColumn("event_ts", event_time_column()).withWatermark(
        "event_ts", f"{watermark_delay_ms} milliseconds"
    )
    parsed = with_time.select(
        parse(F.col("value")).alias("p"),
        F.col("value"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        # A plain number, not the watermarked column: see the module docstring (Spark's late-row filter).
        F.unix_millis(F.col("event_ts")).alias("ts_ms"),
    )
    keyed = parsed.select(
        F.when(F.col("p.ok"), F.col("p.card_id")).otherwise(F.lit(MALFORMED_KEY)).alias("card_key"),
        "p.txn_id",
        "p.mcc",
        "p.channel",
        "p.country",
        "p.amount_cents",
        "p.event_time",
        "ts_ms",
        "p.reason",
        "p.received_at",
        # Only dead letters carry their original bytes through the shuffle.
        F.when(~F.col("p.ok"), F.col("value")).alias("raw"),
        "topic",
        "partition",
        "offset",
    )
    # transformWithState (Rows), not transformWithStateInPandas: with a few events per card per micro-batch,
    # building a pandas DataFrame for every card cost more than the scoring (measured: see the docstring).
    return keyed.groupBy("card_key").transformWithState(
        statefulProcessor=CardScoringProcessor(settings),
        outputStructType=OUTPUT_SCHEMA,
        outputMode="Append",
        timeMode="EventTime",
    )


def progress_line(progress: Sequence[Mapping[str, Any]]) -> str:
    """One line over some micro-batches: rows, processing rate, the last batch's time, the watermark."""
    if not progress:
        return f"{JOB_NAME}: no micro-batch completed in this interval"
    rows = sum(int(p["numInputRows"]) for p in progress)
    busy_ms = sum(int(p["durationMs"].get("triggerExecution", 0)) for p in progress)
    last = progress[-1]
    watermark = last.get("eventTime", {}).get("watermark", "-")
    return (
        f"{JOB_NAME}: batch {last['batchId']}, {rows} rows in {len(progress)} batches, "
        f"{rows / (busy_ms / 1000) if busy_ms else 0.0:,.0f} rows/s while busy, "
        f"last batch {last['durationMs'].get('triggerExecution', 0)} ms, watermark {watermark}"
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
        # A micro-batch without input must still run when the watermark moved: it releases pending events.
        "spark.sql.streaming.noDataMicroBatches.enabled": "true",
    }.items():
        spark.conf.set(key, value)


def start(
    spark: SparkSession,
    cfg: PlatformConfig,
    settings: ScoringSettings,
    trigger: str,
    checkpoint: Path,
    starting_offsets: str = "latest",
    watermark_delay_ms: int = DEFAULT_WATERMARK_DELAY_MS,
) -> StreamingQuery:
    if trigger == "realtime":
        raise ValueError(REAL_TIME_MODE_UNSUPPORTED)
    source = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", cfg.kafka_bootstrap)
        .option("subscribe", names.TOPIC_TRANSACTIONS)
        .option("startingOffsets", starting_offsets)
        .load()
    )
    writer = (
        build_pipeline(source, settings, watermark_delay_ms)
        .writeStream.format("kafka")
        .queryName(JOB_NAME)
        .option("kafka.bootstrap.servers", cfg.kafka_bootstrap)
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
    parser.add_argument("--alerts-topic", default=DEFAULT_ALERTS_TOPIC)
    parser.add_argument("--dlq-topic", default=DEFAULT_DLQ_TOPIC)
    parser.add_argument("--alert-threshold", type=float, default=DEFAULT_ALERT_THRESHOLD)
    parser.add_argument("--watermark-delay-ms", type=int, default=DEFAULT_WATERMARK_DELAY_MS)
    parser.add_argument("--model-registry", default=str(registry_root(cfg)))
    parser.add_argument("--model-reload-interval-s", type=float, default=5.0)
    parser.add_argument("--checkpoint-dir", type=Path, default=checkpoint_dir(cfg))
    parser.add_argument("--shuffle-partitions", type=int, default=2)
    parser.add_argument("--run-for-s", type=float, default=None, help="stop after this many seconds (tests, bench)")
    parser.add_argument("--progress-interval-s", type=float, default=10.0, help="print throughput and lag (0: never)")
    args = parser.parse_args(argv)
    if args.trigger == "realtime":
        parser.exit(2, f"{parser.prog}: {REAL_TIME_MODE_UNSUPPORTED}\n")
    if args.watermark_delay_ms < 0 or args.shuffle_partitions < 1:
        parser.error("--watermark-delay-ms must be >= 0 and --shuffle-partitions >= 1")

    from hybrid_platform import generator

    # The output topics with the same partitioning the generator gives the platform's topics.
    generator.ensure_topics(cfg, [names.TOPIC_TRANSACTIONS, args.alerts_topic, args.dlq_topic])
    spark = build_session(JOB_NAME, cfg)
    try:
        configure(spark, args.shuffle_partitions)
        settings = ScoringSettings(
            args.alerts_topic, args.dlq_topic, args.alert_threshold, args.model_registry, args.model_reload_interval_s
        )
        query = start(
            spark, cfg, settings, args.trigger, args.checkpoint_dir, args.starting_offsets, args.watermark_delay_ms
        )
        print(
            f"{JOB_NAME}: running ({args.trigger}); alerts -> {args.alerts_topic}, dead letters -> {args.dlq_topic}",
            flush=True,  # a log follower (the bench) starts its traffic on this line
        )
        deadline = None if args.run_for_s is None else time.monotonic() + args.run_for_s
        interval_s = args.progress_interval_s or 60.0
        printed_batch = -1
        while query.isActive and (deadline is None or time.monotonic() < deadline):
            wait_s = interval_s if deadline is None else min(interval_s, deadline - time.monotonic())
            if query.awaitTermination(max(wait_s, 0.001)) or not args.progress_interval_s:
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
