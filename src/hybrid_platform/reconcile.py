"""Produced = landed: check what the streaming path wrote to the lake against what the generator sent.

Each output by its guarantee: ``raw.transactions`` exactly once (no txn_id twice); ``raw.fraud_decisions``
and ``raw.transactions_dlq`` copy at-least-once topics, so they are complete when every produced record is
there at least once (repeats, after a failure, are counted, and readers deduplicate on the id).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from hybrid_platform import names
from hybrid_platform.config import PlatformConfig


@dataclass(frozen=True)
class Reconciliation:
    valid_produced: int
    valid_landed: int  # distinct produced txn_ids found in raw.transactions
    duplicates: int  # extra rows for those txn_ids (must be 0: exactly once)
    malformed_produced: int
    dead_lettered: int  # distinct DLQ records (source partition, offset) from this run's offsets
    valid_decided: int  # distinct produced txn_ids with a decision in raw.fraud_decisions
    waited_s: float
    dead_letter_repeats: int = 0  # extra copies (at least once: a replay after a failure)
    decision_repeats: int = 0  # extra copies of decisions, identical but for scored_at

    @property
    def complete(self) -> bool:
        return (
            self.valid_landed == self.valid_produced
            and self.dead_lettered >= self.malformed_produced
            and self.valid_decided == self.valid_produced
        )

    @property
    def exact(self) -> bool:
        """Nothing lost anywhere, nothing twice where the guarantee is exactly once."""
        return self.complete and self.duplicates == 0 and self.dead_lettered == self.malformed_produced

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exact": self.exact}


def end_offsets(cfg: PlatformConfig, topic: str) -> dict[int, int]:
    """Next offset of every partition of ``topic``: taken before producing, it marks where a run starts."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**cfg.kafka_client("observer", log_level=3), "group.id": "hdp-offsets"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.topics[topic].partitions
        }
    finally:
        consumer.close()


def _scan(cfg: PlatformConfig, table: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import NoSuchTableError

    catalog = load_catalog(cfg.catalog.name, **cfg.catalog.pyiceberg_properties())
    try:
        rows: list[dict[str, Any]] = catalog.load_table(table).scan(selected_fields=columns).to_arrow().to_pylist()
    except NoSuchTableError:
        return []
    return rows


def check(cfg: PlatformConfig, valid_txn_ids: set[str], malformed: int, since: dict[int, int]) -> Reconciliation:
    landed = [r["txn_id"] for r in _scan(cfg, names.RAW_TRANSACTIONS, ("txn_id",)) if r["txn_id"] in valid_txn_ids]
    dlq = [
        (r["source_partition"], r["source_offset"])
        for r in _scan(cfg, names.RAW_TRANSACTIONS_DLQ, ("source_topic", "source_partition", "source_offset"))
        if r["source_topic"] == names.TOPIC_TRANSACTIONS and r["source_offset"] >= since.get(r["source_partition"], 0)
    ]
    decided = [r["txn_id"] for r in _scan(cfg, names.RAW_FRAUD_DECISIONS, ("txn_id",)) if r["txn_id"] in valid_txn_ids]
    return Reconciliation(
        valid_produced=len(valid_txn_ids),
        valid_landed=len(set(landed)),
        duplicates=len(landed) - len(set(landed)),
        malformed_produced=malformed,
        dead_lettered=len(set(dlq)),
        valid_decided=len(set(decided)),
        waited_s=0.0,
        dead_letter_repeats=len(dlq) - len(set(dlq)),
        decision_repeats=len(decided) - len(set(decided)),
    )


def wait_until_landed(
    cfg: PlatformConfig, valid_txn_ids: set[str], malformed: int, since: dict[int, int], timeout_s: float = 120
) -> Reconciliation:
    """Poll the lake until everything produced has landed (commits happen at lake_ingest's checkpoints)."""
    started = time.monotonic()
    while True:
        result = check(cfg, valid_txn_ids, malformed, since)
        waited = time.monotonic() - started
        if result.complete or waited > timeout_s:
            return Reconciliation(**{**asdict(result), "waited_s": round(waited, 1)})
        time.sleep(2)
