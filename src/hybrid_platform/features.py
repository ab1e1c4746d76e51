"""Per-card features, defined once and rendered for both engines (no training/serving skew).

Flink computes them online as event-time ``OVER`` aggregates (JVM-managed keyed state: per-key state in
Python would cost two orders of magnitude in throughput); Spark computes them offline with window
functions of the same frame. A parity test runs both on the same events and requires equal results.
"""

from __future__ import annotations

from dataclasses import dataclass

FEATURE_SPEC_VERSION = "card_features/v1"


@dataclass(frozen=True)
class WindowAggregate:
    """``function(column)`` over the card's events in ``(event_time - window_seconds, event_time]``, inclusive.

    The current event is part of its own window, in both engines (Flink: ``RANGE BETWEEN INTERVAL ...
    PRECEDING AND CURRENT ROW``; Spark: ``rangeBetween(-window_ms, 0)``).
    """

    name: str
    function: str  # COUNT | SUM | COUNT_DISTINCT
    column: str | None
    window_seconds: int


#: Grouped by window length: Flink evaluates one OVER window per stage, so each group is one stage.
WINDOW_FEATURES: tuple[WindowAggregate, ...] = (
    WindowAggregate("txn_count_1m", "COUNT", None, 60),
    WindowAggregate("amount_sum_1m", "SUM", "amount", 60),
    WindowAggregate("distinct_countries_10m", "COUNT_DISTINCT", "country", 600),
    WindowAggregate("txn_count_1h", "COUNT", None, 3600),
    WindowAggregate("amount_sum_1h", "SUM", "amount", 3600),
)
#: Seconds between this event and the card's previous one (by event time); -1.0 for a card's first event.
PREVIOUS_GAP_FEATURE = "seconds_since_prev_txn"
FEATURE_NAMES: tuple[str, ...] = (*(f.name for f in WINDOW_FEATURES), PREVIOUS_GAP_FEATURE)

#: Columns the features read; both engines must supply them with these types.
INPUT_COLUMNS = {"card_id": "STRING", "amount": "DECIMAL(12, 2)", "country": "STRING", "event_time": "BIGINT"}


def windows() -> list[int]:
    """Window lengths in the order Flink stages them."""
    seen: list[int] = []
    for feature in WINDOW_FEATURES:
        if feature.window_seconds not in seen:
            seen.append(feature.window_seconds)
    return seen


def _flink_aggregate(feature: WindowAggregate) -> str:
    if feature.function == "COUNT":
        return "CAST(COUNT(*) OVER w AS DOUBLE)"
    if feature.function == "SUM":
        return f"CAST(SUM({feature.column}) OVER w AS DOUBLE)"
    if feature.function == "COUNT_DISTINCT":
        return f"CAST(COUNT(DISTINCT {feature.column}) OVER w AS DOUBLE)"
    raise ValueError(f"unknown aggregate {feature.function}")


def _flink_interval(seconds: int) -> str:
    # HOUR TO SECOND literals ('01:00:00') avoid Flink's 2-digit precision limit on plain SECOND intervals.
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def flink_feature_stages(source: str, rowtime: str = "event_ts") -> list[tuple[str, str]]:
    """``(view_name, SELECT ...)`` pairs that add every feature to ``source``, one OVER window each.

    ``source`` must have the ``INPUT_COLUMNS`` and the event-time attribute ``rowtime``. Flink allows
    one window definition per SELECT, so the windows are chained; each stage keeps every column and the
    time attribute. The last view has all ``FEATURE_NAMES``.
    """
    stages: list[tuple[str, str]] = []
    previous = source
    for seconds in windows():
        aggregates = ",\n  ".join(
            f"{_flink_aggregate(f)} AS {f.name}" for f in WINDOW_FEATURES if f.window_seconds == seconds
        )
        view = f"features_{seconds}s"
        stages.append(
            (
                view,
                f"SELECT *,\n  {aggregates}\nFROM {previous}\n"
                f"WINDOW w AS (PARTITION BY card_id ORDER BY {rowtime} "
                f"RANGE BETWEEN INTERVAL '{_flink_interval(seconds)}' HOUR TO SECOND PRECEDING AND CURRENT ROW)",
            )
        )
        previous = view
    # The previous event: the first row of a 2-row frame (its own row when the card has no previous one).
    stages.append(
        (
            "card_features",
            f"SELECT *,\n  CASE WHEN COUNT(*) OVER w < 2 THEN -1.0 "
            f"ELSE CAST(event_time - MIN(event_time) OVER w AS DOUBLE) / 1000.0 END AS {PREVIOUS_GAP_FEATURE}\n"
            f"FROM {previous}\n"
            f"WINDOW w AS (PARTITION BY card_id ORDER BY {rowtime} ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)",
        )
    )
    return stages
