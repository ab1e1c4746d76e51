"""The per-card features of ``hybrid_platform.features``, computed offline by Spark over event time."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from hybrid_platform.features import (
    HORIZON_SECONDS,
    KEY_COLUMN,
    PREVIOUS_GAP_FEATURE,
    TIME_COLUMN,
    WINDOW_FEATURES,
    WindowAggregate,
)


def _aggregate(feature: WindowAggregate, window: WindowSpec) -> Column:
    column = feature.column or ""
    if feature.function == "COUNT":
        return F.count(F.lit(1)).over(window).cast("double")
    if feature.function == "SUM":
        return F.sum(column).over(window).cast("double")
    if feature.function == "COUNT_DISTINCT":
        # Spark has no DISTINCT window aggregate; the size of the set is the same number.
        return F.size(F.collect_set(column).over(window)).cast("double")
    raise ValueError(f"unknown aggregate {feature.function}")


def add_card_features(transactions: DataFrame) -> DataFrame:
    """Add every feature column to ``transactions`` (needs card_id, amount, country, event_time in ms)."""
    by_card = Window.partitionBy(KEY_COLUMN).orderBy(TIME_COLUMN)
    result = transactions
    for feature in WINDOW_FEATURES:
        # (t - W, t] on integer milliseconds: from t - W + 1 to t, both inclusive.
        frame = by_card.rangeBetween(-feature.window_seconds * 1000 + 1, 0)
        result = result.withColumn(feature.name, _aggregate(feature, frame))
    gap_ms = F.col(TIME_COLUMN) - F.lag(TIME_COLUMN).over(by_card)
    return result.withColumn(
        PREVIOUS_GAP_FEATURE,
        F.when(gap_ms.isNull() | (gap_ms >= HORIZON_SECONDS * 1000), F.lit(-1.0)).otherwise(
            gap_ms.cast("double") / 1000.0
        ),
    )
