"""Explainable fraud rules and the one score per transaction: rules combined with the model, and a decision.

Rules work from the first event on, need no training data, and name why a transaction scored; the model
(``hybrid_platform.model``) adds what the rules miss. Rules are data (conditions over features and
transaction fields), so the same definitions score here, in the Java operator of the Flink job and in
Spark (``decision_spec`` renders them); everything is pure and deterministic.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hybrid_platform.model import HIGH_RISK_MCCS, RULES_ONLY_VERSION, CompiledModel, model_inputs

#: Score at or above which a transaction is sent for review and becomes an alert on ``fraud_alerts``.
DEFAULT_ALERT_THRESHOLD = 0.5
#: Score at or above which a transaction is declined outright (strong evidence: several rules, or the model).
DECLINE_THRESHOLD = 0.9
APPROVE, REVIEW, DECLINE = "approve", "review", "decline"
DECISIONS = (APPROVE, REVIEW, DECLINE)
MODEL_REASON_PREFIX = "model:"

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
OPERATORS = (*_COMPARE, "in")


@dataclass(frozen=True)
class Condition:
    """``input op value``; ``input`` is a feature name or a transaction field (``amount``, ``mcc``)."""

    input: str
    op: str  # >= | > | <= | < | in
    value: float | frozenset[str]

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown operator {self.op!r}; use one of {OPERATORS}")

    def holds(self, inputs: Mapping[str, float | str]) -> bool:
        x = inputs.get(self.input, 0.0)  # a feature the caller did not supply counts as 0
        if isinstance(self.value, frozenset):
            return x in self.value
        return isinstance(x, float | int) and _COMPARE[self.op](x, self.value)


@dataclass(frozen=True)
class Rule:
    """A named rule that fires when all its conditions hold, and how much it alone raises the score."""

    name: str
    weight: float
    conditions: tuple[Condition, ...]

    def check(self, features: Mapping[str, float], amount: float, mcc: str) -> str | None:
        inputs: dict[str, float | str] = {**features, "amount": amount, "mcc": mcc}
        return self.name if all(condition.holds(inputs) for condition in self.conditions) else None


# Weights are probabilities that a firing rule means fraud: card testing and geo velocity alert on their
# own (>= DEFAULT_ALERT_THRESHOLD); the weaker signals alert only in combination.
RULES: tuple[Rule, ...] = (
    # Card testing: fraudsters check stolen card numbers with bursts of tiny charges before cashing out.
    Rule("card_testing", 0.7, (Condition("txn_count_1m", ">=", 4.0), Condition("amount", "<=", 5.00))),
    # Geo velocity: a physical card cannot be in two countries minutes apart, so one of them is a clone.
    # seconds_since_prev_txn is -1.0 when the card has no earlier transaction: never fast travel.
    Rule(
        "geo_velocity",
        0.6,
        (
            Condition("distinct_countries_10m", ">=", 2.0),
            Condition("seconds_since_prev_txn", ">=", 0.0),
            Condition("seconds_since_prev_txn", "<", 600.0),
        ),
    ),
    # Gambling, quasi-cash and money transfer convert a stolen card into cash; small amounts are common there.
    Rule(
        "high_risk_mcc_large_amount", 0.45, (Condition("mcc", "in", HIGH_RISK_MCCS), Condition("amount", ">=", 500.0))
    ),
    # Twenty payments in an hour is far beyond a normal card's day; automated abuse looks like this.
    Rule("velocity_burst", 0.4, (Condition("txn_count_1h", ">=", 20.0),)),
    # Large single amounts are rare for a consumer card and expensive when fraudulent.
    Rule("amount_spike", 0.3, (Condition("amount", ">=", 2000.0),)),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}


def rules_score(
    features: Mapping[str, float], amount: float, mcc: str, rules: tuple[Rule, ...] = RULES
) -> tuple[float, list[str]]:
    """``1 - prod(1 - weight)`` over the fired rules (independent evidence), with their reasons."""
    reasons: list[str] = []
    all_miss = 1.0
    for rule in rules:
        reason = rule.check(features, amount, mcc)
        if reason is not None:
            reasons.append(reason)
            all_miss *= 1.0 - rule.weight
    return 1.0 - all_miss, reasons


def score_transaction(
    features: Mapping[str, float],
    amount: float,
    mcc: str,
    channel: str,
    country: str,
    model: CompiledModel | None,
) -> tuple[float, list[str], str]:
    """``(score in [0, 1], reasons, model_version)`` for one transaction.

    Rules alone without a model; with one, the higher of the model and rules scores, so neither can
    mask an alert from the other. ``model:<version>`` is a reason when the model reaches its own
    threshold or its score is the higher one.
    """
    score, reasons = rules_score(features, amount, mcc)
    model_version = RULES_ONLY_VERSION
    if model is not None:
        model_version = model.model_version
        model_score = model.score(model_inputs(features, amount, mcc, channel, country))
        # Named when it reaches its own threshold, or when it is what sets the score: an alert is never
        # raised without a reason (a trained model's threshold can sit above the job's alert threshold).
        if model_score >= model.threshold or model_score > score:
            reasons.append(MODEL_REASON_PREFIX + model_version)
        score = max(score, model_score)
    return score, reasons, model_version


def decide(score: float, review_threshold: float = DEFAULT_ALERT_THRESHOLD) -> str:
    """``approve`` below the review threshold, ``decline`` from ``DECLINE_THRESHOLD``, ``review`` between."""
    if score >= DECLINE_THRESHOLD:
        return DECLINE
    return REVIEW if score >= review_threshold else APPROVE
