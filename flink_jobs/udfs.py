"""Parsing as Table API UDFs, for lake_ingest: the contract's parsers (``hybrid_platform.events``) on each row.

The logic lives in the shared package and is unit-tested there; these wrappers only adapt types.
"""

from __future__ import annotations

import time
from typing import Any

from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import udf

from hybrid_platform import events

PARSED_TRANSACTION = DataTypes.ROW(
    [
        DataTypes.FIELD("ok", DataTypes.BOOLEAN()),
        DataTypes.FIELD("reason", DataTypes.STRING()),
        DataTypes.FIELD("txn_id", DataTypes.STRING()),
        DataTypes.FIELD("card_id", DataTypes.STRING()),
        DataTypes.FIELD("merchant_id", DataTypes.STRING()),
        DataTypes.FIELD("mcc", DataTypes.STRING()),
        DataTypes.FIELD("amount", DataTypes.DECIMAL(12, 2)),
        DataTypes.FIELD("currency", DataTypes.STRING()),
        DataTypes.FIELD("country", DataTypes.STRING()),
        DataTypes.FIELD("channel", DataTypes.STRING()),
        DataTypes.FIELD("event_time", DataTypes.BIGINT()),
        # Only for malformed records: the original as text, or base64 when it is not valid UTF-8.
        DataTypes.FIELD("original", DataTypes.STRING()),
        DataTypes.FIELD("original_encoding", DataTypes.STRING()),
        DataTypes.FIELD("received_at", DataTypes.BIGINT()),
    ]
)

PARSED_LABEL = DataTypes.ROW(
    [
        DataTypes.FIELD("ok", DataTypes.BOOLEAN()),
        DataTypes.FIELD("reason", DataTypes.STRING()),
        DataTypes.FIELD("txn_id", DataTypes.STRING()),
        DataTypes.FIELD("is_fraud", DataTypes.BOOLEAN()),
        DataTypes.FIELD("labeled_at", DataTypes.BIGINT()),
        DataTypes.FIELD("original", DataTypes.STRING()),
        DataTypes.FIELD("original_encoding", DataTypes.STRING()),
        DataTypes.FIELD("received_at", DataTypes.BIGINT()),
    ]
)


def _now_ms() -> int:
    return int(time.time() * 1000)


@udf(result_type=PARSED_TRANSACTION)
def parse_transaction(raw: bytes | None) -> Any:
    txn, reason = events.parse_transaction(raw)
    if txn is None:
        original, encoding = events.original_text(raw)
        return Row(False, reason, None, None, None, None, None, None, None, None, None, original, encoding, _now_ms())
    return Row(
        True,
        None,
        txn.txn_id,
        txn.card_id,
        txn.merchant_id,
        txn.mcc,
        txn.amount,
        txn.currency,
        txn.country,
        txn.channel,
        txn.event_time,
        None,
        None,
        None,
    )


@udf(result_type=PARSED_LABEL)
def parse_label(raw: bytes | None) -> Any:
    label, reason = events.parse_label(raw)
    if label is None:
        original, encoding = events.original_text(raw)
        return Row(False, reason, None, None, None, original, encoding, _now_ms())
    return Row(True, None, label.txn_id, label.is_fraud, label.labeled_at, None, None, None)
