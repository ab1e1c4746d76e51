"""The ``fraud_decisions`` record and the Python twin of the Flink job's decide-on-arrival operator.

``ArrivalDecider`` does what the Java operator does (``flink_jobs/jvm``) with the same definitions: per
card history, features as of arrival (``features.OnlineFeatures``), rules and model
(``rules.score_transaction``), a decision. The conformance tests hold the two to identical outputs; Spark's
streaming benchmark job runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hybrid_platform import features, rules
from hybrid_platform.events import Transaction, alert_record
from hybrid_platform.model import CompiledModel


@dataclass(frozen=True)
class Decision:
    features: dict[str, float]
    score: float
    reasons: list[str]
    model_version: str
    decision: str


def decision_record(
    txn: Transaction,
    decision: Decision,
    scored_at: int,
    source_partition: int,
    source_offset: int,
    source_ts: int,
) -> dict[str, object]:
    """A ``fraud_decisions`` record (schema ``fraud_decision.v1``); ``score`` rounded to 6 decimals."""
    if not 0.0 <= decision.score <= 1.0:  # also rejects NaN
        raise ValueError(f"score {decision.score!r} is outside [0, 1]")
    return {
        "txn_id": txn.txn_id,
        "card_id": txn.card_id,
        "score": round(float(decision.score), 6),
        "decision": decision.decision,
        "reasons": list(decision.reasons),
        "model_version": decision.model_version,
        "feature_spec_version": features.FEATURE_SPEC_VERSION,
        "features": {name: decision.features[name] for name in features.FEATURE_NAMES},
        "event_time": txn.event_time,
        "scored_at": scored_at,
        "source_partition": source_partition,
        "source_offset": source_offset,
        "source_ts": source_ts,
    }


def alert_of(txn: Transaction, decision: Decision, scored_at: int) -> dict[str, object]:
    """The ``fraud_alerts`` record of a decision at or above the alert threshold."""
    return alert_record(
        txn.txn_id, txn.card_id, decision.score, decision.reasons, decision.model_version, txn.event_time, scored_at
    )


_ONLINE = features.OnlineFeatures()


def decide_on_arrival(
    history: features.History | None,
    txn: Transaction,
    clock_ms: int,
    model: CompiledModel | None,
    review_threshold: float = rules.DEFAULT_ALERT_THRESHOLD,
) -> tuple[Decision, features.History | None]:
    """One transaction's decision over its card's ``history``, and the card's new history (None: empty)."""
    values = {"amount": txn.amount, "country": txn.country}
    feature_map, history = _ONLINE.update(history, txn.event_time, values, clock_ms)
    score, reasons, version = rules.score_transaction(
        feature_map, float(txn.amount), txn.mcc, txn.channel, txn.country, model
    )
    return Decision(feature_map, score, reasons, version, rules.decide(score, review_threshold)), history


class ArrivalDecider:
    """Decide each transaction as it arrives, over its card's history (held here, one per card)."""

    def __init__(self, review_threshold: float = rules.DEFAULT_ALERT_THRESHOLD) -> None:
        self.review_threshold = review_threshold
        self.histories: dict[str, features.History] = {}

    def decide(self, txn: Transaction, clock_ms: int, model: CompiledModel | None) -> Decision:
        decision, history = decide_on_arrival(
            self.histories.get(txn.card_id), txn, clock_ms, model, self.review_threshold
        )
        if history is None:
            self.histories.pop(txn.card_id, None)
        else:
            self.histories[txn.card_id] = history
        return decision
