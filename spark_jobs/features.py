"""The per-card features of ``hybrid_platform.features``, computed offline by Spark (training sets, parity)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hybrid_platform.features import PREVIOUS_GAP_FEATURE, WINDOW_FEATURES, WindowAggregate


def _aggregate(feature: WindowAggregate, window: Window) -> Column:
    if feature.function == "COUNT":
        return F.count(F.lit(1)).over(window).cast("double")
    if feature.function == "SUM":
        return F.sum(feature.column).over(window).cast("double")
    if feature.function == "COUNT_DISTINCT":
        # Spark has no DISTINCT window aggregate; the size of the set is the same number.
        return F.size(F.collect_set(feature.column).over(window)).cast("double")
    raise ValueError(f"unknown aggregate {feature.function}")


def add_card_features(transactions: DataFrame) -> DataFrame:
    """Add every feature column to ``transactions`` (needs card_id, amount, country, event_time in ms)."""
    by_card = Window.partitionBy("card_id").orderBy("event_time")
    result = transactions
    for feature in WINDOW_FEATURES:
        frame = by_card.rangeBetween(-feature.window_seconds * 1000, 0)
        result = result.withColumn(feature.name, _aggregate(feature, frame))
    previous = F.lag("event_time").over(by_card)
    return result.withColumn(
        PREVIOUS_GAP_FEATURE,
        F.when(previous.isNull(), F.lit(-1.0)).otherwise((F.col("event_time") - previous).cast("double") / 1000.0),
    )
