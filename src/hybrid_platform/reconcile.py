"""Produced = landed: check what the streaming path wrote to the lake against what the generator sent."""

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
    dead_lettered: int  # DLQ rows from this run's offsets
    waited_s: float

    @property
    def complete(self) -> bool:
        return self.valid_landed == self.valid_produced and self.dead_lettered >= self.malformed_produced

    @property
    def exact(self) -> bool:
        return self.complete and self.duplicates == 0 and self.dead_lettered == self.malformed_produced

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exact": self.exact}


def end_offsets(cfg: PlatformConfig, topic: str) -> dict[int, int]:
    """Next offset of every partition of ``topic``: taken before producing, it marks where a run starts."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": cfg.kafka_bootstrap, "group.id": "hdp-offsets", "log_level": 3})
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
        r
        for r in _scan(cfg, names.RAW_TRANSACTIONS_DLQ, ("source_topic", "source_partition", "source_offset"))
        if r["source_topic"] == names.TOPIC_TRANSACTIONS and r["source_offset"] >= since.get(r["source_partition"], 0)
    ]
    return Reconciliation(
        len(valid_txn_ids), len(set(landed)), len(landed) - len(set(landed)), malformed, len(dlq), 0.0
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
