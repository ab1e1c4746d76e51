"""The small, stateless Python parts of the Flink jobs, as Table API UDFs: parsing and scoring.

Keyed state and windows stay in Flink SQL (JVM-managed); Python only sees one row at a time. The logic
itself lives in the shared package (``hybrid_platform.events``, ``rules``, ``model``) and is unit-tested
there; these wrappers only adapt types.
"""

from __future__ import annotations

import time
from typing import Any

from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from hybrid_platform import events, features

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

SCORE = DataTypes.ROW(
    [
        DataTypes.FIELD("score", DataTypes.DOUBLE()),
        DataTypes.FIELD("reasons", DataTypes.ARRAY(DataTypes.STRING())),
        DataTypes.FIELD("model_version", DataTypes.STRING()),
        DataTypes.FIELD("scored_at", DataTypes.BIGINT()),
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


class ScoreTransaction(ScalarFunction):  # type: ignore[misc]
    """Rules plus the current champion model, re-read from the registry without restarting the job."""

    def __init__(self, registry_root: str, reload_interval_s: float) -> None:
        self.registry_root = registry_root
        self.reload_interval_s = reload_interval_s
        self.model: Any = None

    def open(self, function_context: FunctionContext) -> None:
        from pathlib import Path

        from hybrid_platform.model import HotReloadingModel, ModelRegistry

        self.model = HotReloadingModel(
            ModelRegistry(Path(self.registry_root)),
            check_interval_s=self.reload_interval_s,
            # A champion trained on other feature definitions is refused; the previous model stays.
            expected_feature_spec_version=features.FEATURE_SPEC_VERSION,
        )

    def eval(
        self,
        amount: Any,
        mcc: str,
        channel: str,
        country: str,
        is_late: bool,
        *feature_values: float,
    ) -> Any:
        from hybrid_platform.rules import score_transaction

        if amount is None:
            # The planner may evaluate this UDF before the filter that drops malformed rows has run;
            # such a row is discarded downstream, so its score does not matter (it must not fail the job).
            return Row(0.0, [], "", _now_ms())
        feature_map = dict(zip(features.FEATURE_NAMES, feature_values, strict=True))
        score, reasons, model_version = score_transaction(
            feature_map, float(amount), mcc, channel, country, bool(is_late), self.model.current()
        )
        return Row(float(score), list(reasons), model_version, _now_ms())


def score_transaction_udf(registry_root: str, reload_interval_s: float = 5.0) -> Any:
    return udf(ScoreTransaction(registry_root, reload_interval_s), result_type=SCORE)
