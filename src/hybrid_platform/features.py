"""Per-card features, defined once: computed online as of arrival, offline over event time, and equal in order.

**What a feature means** (for the data scientist who trains on them). Each transaction at event time ``t``
gets, over *its card's* transactions:

- ``txn_count_1m`` / ``amount_sum_1m``: how many, and how much, in ``(t - 1 min, t]``;
- ``distinct_countries_10m``: how many countries in ``(t - 10 min, t]``;
- ``txn_count_1h`` / ``amount_sum_1h``: how many, and how much, in ``(t - 1 h, t]``;
- ``seconds_since_prev_txn``: seconds since the card's latest earlier transaction, or -1 when there is
  none within the last hour (the horizon: no feature looks further back).

The transaction itself is in its own windows. **Online** (the Flink job, ``flink_jobs/jvm``) a
transaction is decided the moment it arrives, so "the card's transactions" are those that *have arrived*
before it: a transaction decided before an earlier-stamped one of its card arrived (out of order) does not
count that one, and one arriving late sees the full history it belongs to (late by up to
``ALLOWED_LATENESS_SECONDS``).
**Offline** (Spark, training) every transaction sees all of the card's transactions by event time. The
two agree exactly whenever a card's transactions arrive in time order; the parity test measures how often
the generator's out-of-order traffic makes them differ (rarely, and only for the out-of-order events). The
decision records log the features that were served, so training can use exactly those where they exist.

Online state per card is the compact history of its last hour (plus the allowed lateness), at most
``MAX_EVENTS_PER_KEY`` events. ``OnlineFeatures`` is the same algorithm in Python: the reference the Java
operator is tested against, and what Spark's streaming benchmark job runs.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from decimal import Decimal

FEATURE_SPEC_VERSION = "card_features/v2"


@dataclass(frozen=True)
class WindowAggregate:
    """``function(column)`` over the card's events with event time in ``(t - window_seconds, t]``."""

    name: str
    function: str  # COUNT | SUM | COUNT_DISTINCT
    column: str | None
    window_seconds: int


WINDOW_FEATURES: tuple[WindowAggregate, ...] = (
    WindowAggregate("txn_count_1m", "COUNT", None, 60),
    WindowAggregate("amount_sum_1m", "SUM", "amount", 60),
    WindowAggregate("distinct_countries_10m", "COUNT_DISTINCT", "country", 600),
    WindowAggregate("txn_count_1h", "COUNT", None, 3600),
    WindowAggregate("amount_sum_1h", "SUM", "amount", 3600),
)
#: Seconds between this event and the card's latest earlier one; -1.0 when there is none within the horizon.
PREVIOUS_GAP_FEATURE = "seconds_since_prev_txn"
FEATURE_NAMES: tuple[str, ...] = (*(f.name for f in WINDOW_FEATURES), PREVIOUS_GAP_FEATURE)
KEY_COLUMN = "card_id"
TIME_COLUMN = "event_time"  # epoch milliseconds
#: Columns the features read; both engines must supply them with these types.
INPUT_COLUMNS = {KEY_COLUMN: "STRING", "amount": "DECIMAL(12, 2)", "country": "STRING", TIME_COLUMN: "BIGINT"}

#: No feature looks further back than this: the longest window, and the gap's limit.
HORIZON_SECONDS = max(f.window_seconds for f in WINDOW_FEATURES)
#: Online, a card's history is kept this much longer, so an event up to this late still sees its full windows.
ALLOWED_LATENESS_SECONDS = 300
#: An event stamped further ahead of the job's clock than this does not move eviction: a record with a
#: far-future time cannot make a card forget its history.
MAX_AHEAD_SECONDS = 60
#: Most events one card keeps online (the oldest go first): one abusive key cannot grow state without bound.
#: Far above any real card (the velocity rule fires at 20 an hour); counts saturate here.
MAX_EVENTS_PER_KEY = 4096


def history_columns() -> list[str]:
    """The columns online history keeps per event, in first-use order."""
    columns: list[str] = []
    for feature in WINDOW_FEATURES:
        if feature.column is not None and feature.column not in columns:
            columns.append(feature.column)
    return columns


# --- online: as of arrival ------------------------------------------------------------------------------


@dataclass
class History:
    """One card's recent events, sorted by event time (arrival order among equal times)."""

    times: list[int]
    columns: dict[str, list[object]]


class OnlineFeatures:
    """The features of each event as it arrives, over its card's history (the Java operator's algorithm)."""

    def __init__(self) -> None:
        self.columns = history_columns()

    def update(
        self, history: History | None, t: int, values: dict[str, object], clock_ms: int
    ) -> tuple[dict[str, float], History | None]:
        """``(features of an event at t with column values, the card's new history or None)``."""
        times = history.times if history else []
        at = bisect.bisect_right(times, t)  # events [0, at) are at or before t
        result: dict[str, float] = {}
        for feature in WINDOW_FEATURES:
            lo = bisect.bisect_right(times, t - feature.window_seconds * 1000, 0, at)
            if feature.function == "COUNT":
                result[feature.name] = float(at - lo + 1)
                continue
            assert history is not None or at == lo
            column = feature.column or ""
            window = [*(history.columns[column][lo:at] if history else []), values[column]]
            if feature.function == "SUM":
                result[feature.name] = float(
                    sum((Decimal(str(v)) if not isinstance(v, Decimal) else v for v in window), Decimal(0))
                )
            elif feature.function == "COUNT_DISTINCT":
                result[feature.name] = float(len(set(window)))
            else:
                raise ValueError(f"unknown aggregate {feature.function}")
        gap = t - times[at - 1] if at > 0 else -1
        result[PREVIOUS_GAP_FEATURE] = gap / 1000.0 if 0 <= gap < HORIZON_SECONDS * 1000 else -1.0

        newest = max(t, times[-1]) if times else t
        reference = min(newest, clock_ms + MAX_AHEAD_SECONDS * 1000)
        cutoff = reference - (HORIZON_SECONDS + ALLOWED_LATENESS_SECONDS) * 1000  # keep times > cutoff
        keep_from = bisect.bisect_right(times, cutoff)
        new_times = times[keep_from:]
        new_columns = {c: (history.columns[c][keep_from:] if history else []) for c in self.columns}
        if t > cutoff:
            position = at - keep_from
            new_times.insert(position, t)
            for c in self.columns:
                new_columns[c].insert(position, values[c])
        excess = len(new_times) - MAX_EVENTS_PER_KEY
        if excess > 0:
            new_times = new_times[excess:]
            new_columns = {c: v[excess:] for c, v in new_columns.items()}
        if not new_times:
            return result, None
        return result, History(new_times, new_columns)
