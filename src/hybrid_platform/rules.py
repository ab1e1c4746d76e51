"""Explainable fraud rules and the one score Flink emits per transaction: rules combined with the model.

Rules work from the first event on, need no training data, and name why a transaction scored; the model
(``hybrid_platform.model``) adds what the rules miss. Everything here is pure and deterministic, and runs
inside the Flink scoring UDF for every transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hybrid_platform.model import HIGH_RISK_MCCS, RULES_ONLY_VERSION, CompiledModel, model_inputs

#: Score at or above which a transaction becomes an alert (the job may override it from the environment).
DEFAULT_ALERT_THRESHOLD = 0.5

# Card testing: fraudsters check stolen card numbers with bursts of tiny charges before cashing out.
CARD_TESTING_MIN_TXNS_1M = 4
CARD_TESTING_MAX_AMOUNT = 5.00
# Geo velocity: a physical card cannot be in two countries minutes apart, so one of them is a clone.
GEO_VELOCITY_MIN_COUNTRIES_10M = 2
GEO_VELOCITY_MAX_GAP_S = 600.0
# Gambling, quasi-cash and money transfer convert a stolen card into cash; small amounts are common there.
HIGH_RISK_MCC_MIN_AMOUNT = 500.0
# Twenty payments in an hour is far beyond a normal card's day; automated abuse looks like this.
VELOCITY_BURST_MIN_TXNS_1H = 20
# Large single amounts are rare for a consumer card and expensive when fraudulent.
AMOUNT_SPIKE_MIN_AMOUNT = 2000.0

LATE_EVENT_REASON = "late_event"
MODEL_REASON_PREFIX = "model:"


def card_testing(features: Mapping[str, float], amount: float, mcc: str) -> str | None:
    fired = features.get("txn_count_1m", 0.0) >= CARD_TESTING_MIN_TXNS_1M and amount <= CARD_TESTING_MAX_AMOUNT
    return "card_testing" if fired else None


def geo_velocity(features: Mapping[str, float], amount: float, mcc: str) -> str | None:
    # seconds_since_prev_txn is -1.0 for a card's first transaction, which never counts as fast travel.
    gap = features.get("seconds_since_prev_txn", -1.0)
    fired = features.get("distinct_countries_10m", 0.0) >= GEO_VELOCITY_MIN_COUNTRIES_10M and (
        0.0 <= gap < GEO_VELOCITY_MAX_GAP_S
    )
    return "geo_velocity" if fired else None


def high_risk_mcc_large_amount(features: Mapping[str, float], amount: float, mcc: str) -> str | None:
    fired = mcc in HIGH_RISK_MCCS and amount >= HIGH_RISK_MCC_MIN_AMOUNT
    return "high_risk_mcc_large_amount" if fired else None


def velocity_burst(features: Mapping[str, float], amount: float, mcc: str) -> str | None:
    fired = features.get("txn_count_1h", 0.0) >= VELOCITY_BURST_MIN_TXNS_1H
    return "velocity_burst" if fired else None


def amount_spike(features: Mapping[str, float], amount: float, mcc: str) -> str | None:
    return "amount_spike" if amount >= AMOUNT_SPIKE_MIN_AMOUNT else None


@dataclass(frozen=True)
class Rule:
    """A rule and how much it alone raises the score; ``stateless`` rules ignore the windowed features."""

    check: Callable[[Mapping[str, float], float, str], str | None]
    weight: float
    stateless: bool


# Weights are probabilities that a firing rule means fraud: card testing and geo velocity alert on their
# own (>= DEFAULT_ALERT_THRESHOLD); the weaker signals alert only in combination.
RULES: tuple[Rule, ...] = (
    Rule(card_testing, weight=0.7, stateless=False),
    Rule(geo_velocity, weight=0.6, stateless=False),
    Rule(high_risk_mcc_large_amount, weight=0.45, stateless=True),
    Rule(velocity_burst, weight=0.4, stateless=False),
    Rule(amount_spike, weight=0.3, stateless=True),
)
#: For late events the windowed features are unreliable (all 0 / -1), so only these rules apply.
STATELESS_RULES: tuple[Rule, ...] = tuple(rule for rule in RULES if rule.stateless)


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
    is_late: bool,
    model: CompiledModel | None,
) -> tuple[float, list[str], str]:
    """``(score in [0, 1], reasons, model_version)`` for one transaction.

    Rules alone without a model; with one, the higher of the model and rules scores, so neither can
    mask an alert from the other. ``model:<version>`` is a reason when the model reaches its own
    threshold or its score is the higher one. A late event scores with the stateless rules only (and
    the model, whose windowed inputs are then 0 / -1), and ``late_event`` marks any non-zero score as
    computed without card history.
    """
    score, reasons = rules_score(features, amount, mcc, STATELESS_RULES if is_late else RULES)
    model_version = RULES_ONLY_VERSION
    if model is not None:
        model_version = model.model_version
        model_score = model.score(model_inputs(features, amount, mcc, channel, country))
        # Named when it reaches its own threshold, or when it is what sets the score: an alert is never
        # raised without a reason (a trained model's threshold can sit above the job's alert threshold).
        if model_score >= model.threshold or model_score > score:
            reasons.append(MODEL_REASON_PREFIX + model_version)
        score = max(score, model_score)
    if is_late and score > 0.0:
        reasons.append(LATE_EVENT_REASON)
    return score, reasons, model_version


#: The rules as SQL predicates over the feature columns, for the SQL-only benchmark variant of fraud_scoring
#: (``flink_jobs/fraud_scoring_sql.py``). Same names, weights and thresholds; a unit test checks each
#: predicate against its Python rule.
_SQL_PREDICATES = {
    "card_testing": f"txn_count_1m >= {CARD_TESTING_MIN_TXNS_1M} AND amount <= {CARD_TESTING_MAX_AMOUNT}",
    "geo_velocity": (
        f"distinct_countries_10m >= {GEO_VELOCITY_MIN_COUNTRIES_10M} AND seconds_since_prev_txn >= 0 "
        f"AND seconds_since_prev_txn < {GEO_VELOCITY_MAX_GAP_S}"
    ),
    "high_risk_mcc_large_amount": (
        f"mcc IN ({', '.join(repr(m) for m in sorted(HIGH_RISK_MCCS))}) AND amount >= {HIGH_RISK_MCC_MIN_AMOUNT}"
    ),
    "velocity_burst": f"txn_count_1h >= {VELOCITY_BURST_MIN_TXNS_1H}",
    "amount_spike": f"amount >= {AMOUNT_SPIKE_MIN_AMOUNT}",
}


def sql_rule_conditions(is_late: bool) -> list[tuple[str, float, str]]:
    """``(reason, weight, SQL predicate)`` of the rules a (late or on-time) transaction is scored with."""
    chosen = STATELESS_RULES if is_late else RULES
    return [(rule.check.__name__, rule.weight, _SQL_PREDICATES[rule.check.__name__]) for rule in chosen]
