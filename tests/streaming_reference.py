"""A deliberately plain reference for the streaming jobs: per-card features by brute force, then the rules.

No state, no increments, no pruning: for each event, scan every on-time event of its card. Slow and
obviously right, so the Spark streaming job's incremental state can be checked against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hybrid_platform import features
from hybrid_platform.rules import score_transaction


@dataclass(frozen=True)
class RefEvent:
    txn_id: str
    card_id: str
    mcc: str
    channel: str
    country: str
    amount_cents: int
    event_time: int
    ts: int  # event time used for ordering and windows
    partition: int = 0
    offset: int = 0

    def order(self) -> tuple[int, int, int]:
        return (self.ts, self.partition, self.offset)


def reference_features(on_time: Iterable[RefEvent]) -> dict[str, dict[str, float]]:
    """``txn_id -> features`` per ``hybrid_platform.features``: windows ``[ts - w, ts]`` over the card's events."""
    by_card: dict[str, list[RefEvent]] = {}
    for event in on_time:
        by_card.setdefault(event.card_id, []).append(event)
    result: dict[str, dict[str, float]] = {}
    for event in (e for card_events in by_card.values() for e in card_events):
        same_card = sorted(by_card[event.card_id], key=RefEvent.order)
        values: dict[str, float] = {}
        for feature in features.WINDOW_FEATURES:
            inside = [e for e in same_card if event.ts - feature.window_seconds * 1000 <= e.ts <= event.ts]
            if feature.function == "COUNT":
                values[feature.name] = float(len(inside))
            elif feature.function == "SUM":
                values[feature.name] = float(sum(e.amount_cents for e in inside)) / 100
            else:
                values[feature.name] = float(len({e.country for e in inside}))
        position = same_card.index(event)
        if position == 0:
            values[features.PREVIOUS_GAP_FEATURE] = -1.0
        else:
            previous = same_card[position - 1]
            values[features.PREVIOUS_GAP_FEATURE] = (
                event.event_time - min(previous.event_time, event.event_time)
            ) / 1000.0
        result[event.txn_id] = values
    return result


LATE_FEATURES = {name: -1.0 if name == features.PREVIOUS_GAP_FEATURE else 0.0 for name in features.FEATURE_NAMES}


def reference_alerts(
    on_time: list[RefEvent], late: list[RefEvent], threshold: float = 0.5
) -> dict[str, tuple[float, list[str], str]]:
    """``txn_id -> (score, reasons, model_version)`` for every event that should alert (rules only)."""
    expected: dict[str, tuple[float, list[str], str]] = {}
    feature_maps = reference_features(on_time)
    for events, is_late in ((on_time, False), (late, True)):
        for event in events:
            feature_map = LATE_FEATURES if is_late else feature_maps[event.txn_id]
            score, reasons, version = score_transaction(
                feature_map, event.amount_cents / 100, event.mcc, event.channel, event.country, is_late, None
            )
            if score >= threshold:
                expected[event.txn_id] = (score, reasons, version)
    return expected
