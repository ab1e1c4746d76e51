import math

import pytest

from hybrid_platform.model import RULES_ONLY_VERSION, CompiledModel, LogisticRegressionParameters, ModelArtifact
from hybrid_platform.rules import (
    DECLINE_THRESHOLD,
    DEFAULT_ALERT_THRESHOLD,
    RULES,
    RULES_BY_NAME,
    Condition,
    decide,
    score_transaction,
)

card_testing = RULES_BY_NAME["card_testing"].check
geo_velocity = RULES_BY_NAME["geo_velocity"].check
high_risk_mcc_large_amount = RULES_BY_NAME["high_risk_mcc_large_amount"].check
velocity_burst = RULES_BY_NAME["velocity_burst"].check
amount_spike = RULES_BY_NAME["amount_spike"].check

QUIET = {
    "txn_count_1m": 1.0,
    "amount_sum_1m": 40.0,
    "txn_count_1h": 2.0,
    "amount_sum_1h": 90.0,
    "distinct_countries_10m": 1.0,
    "seconds_since_prev_txn": 1800.0,
}
WEIGHTS = {rule.name: rule.weight for rule in RULES}


def features(**changes: float) -> dict[str, float]:
    return QUIET | changes


def make_model(intercept: float, mcc_risk_coefficient: float = 0.0, threshold: float = 0.7) -> CompiledModel:
    """A model whose score is sigmoid(intercept), plus sigmoid shift for high-risk merchants."""
    return ModelArtifact(
        model_version="lr-test",
        kind="logistic_regression",
        feature_names=("mcc_risk=high",),
        feature_spec_version="card_features/v2",
        parameters=LogisticRegressionParameters(
            means=(0.0,), stds=(1.0,), coefficients=(mcc_risk_coefficient,), intercept=intercept
        ),
        threshold=threshold,
        code_version="test",
        created_at="2026-11-24T10:15:00+00:00",
    ).compiled


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# --- each rule at its boundary --------------------------------------------------------------------------


def test_card_testing_boundary() -> None:
    assert card_testing(features(txn_count_1m=4.0), 5.00, "5411") == "card_testing"
    assert card_testing(features(txn_count_1m=3.0), 5.00, "5411") is None
    assert card_testing(features(txn_count_1m=4.0), 5.01, "5411") is None


def test_geo_velocity_boundary() -> None:
    fast = features(distinct_countries_10m=2.0, seconds_since_prev_txn=599.9)
    assert geo_velocity(fast, 10.0, "5411") == "geo_velocity"
    assert geo_velocity(fast | {"seconds_since_prev_txn": 0.0}, 10.0, "5411") == "geo_velocity"
    assert geo_velocity(fast | {"seconds_since_prev_txn": 600.0}, 10.0, "5411") is None
    assert geo_velocity(fast | {"seconds_since_prev_txn": -1.0}, 10.0, "5411") is None  # first transaction
    assert geo_velocity(fast | {"distinct_countries_10m": 1.0}, 10.0, "5411") is None


def test_high_risk_mcc_large_amount_boundary() -> None:
    assert high_risk_mcc_large_amount(QUIET, 500.0, "7995") == "high_risk_mcc_large_amount"
    assert high_risk_mcc_large_amount(QUIET, 499.99, "7995") is None
    assert high_risk_mcc_large_amount(QUIET, 5000.0, "5411") is None
    for mcc in ("7995", "6051", "4829", "5967", "5993", "7273"):
        assert high_risk_mcc_large_amount(QUIET, 500.0, mcc) is not None


def test_velocity_burst_boundary() -> None:
    assert velocity_burst(features(txn_count_1h=20.0), 10.0, "5411") == "velocity_burst"
    assert velocity_burst(features(txn_count_1h=19.0), 10.0, "5411") is None


def test_amount_spike_boundary() -> None:
    assert amount_spike(QUIET, 2000.0, "5411") == "amount_spike"
    assert amount_spike(QUIET, 1999.99, "5411") is None


def test_rules_tolerate_missing_features() -> None:
    assert all(rule.check({}, 10.0, "5411") is None for rule in RULES)


def test_weights_are_probabilities_and_strong_rules_alert_alone() -> None:
    assert all(0.0 < rule.weight < 1.0 for rule in RULES)
    assert WEIGHTS["card_testing"] >= DEFAULT_ALERT_THRESHOLD
    assert WEIGHTS["geo_velocity"] >= DEFAULT_ALERT_THRESHOLD
    assert WEIGHTS["amount_spike"] < DEFAULT_ALERT_THRESHOLD


# --- the combined score without a model -----------------------------------------------------------------


def test_no_rule_fired_scores_zero() -> None:
    assert score_transaction(QUIET, 25.0, "5411", "pos", "DE", None) == (0.0, [], RULES_ONLY_VERSION)


def test_one_rule_scores_its_weight() -> None:
    score, reasons, version = score_transaction(QUIET, 2500.0, "5411", "pos", "DE", None)
    assert score == pytest.approx(WEIGHTS["amount_spike"])
    assert reasons == ["amount_spike"]
    assert version == RULES_ONLY_VERSION


def test_fired_rules_combine_as_independent_evidence() -> None:
    busy = features(txn_count_1h=25.0, distinct_countries_10m=3.0, seconds_since_prev_txn=30.0)
    score, reasons, _ = score_transaction(busy, 2500.0, "7995", "online", "US", None)
    assert reasons == ["geo_velocity", "high_risk_mcc_large_amount", "velocity_burst", "amount_spike"]
    expected = 1.0 - math.prod(1.0 - WEIGHTS[name] for name in reasons)
    assert score == pytest.approx(expected)
    assert WEIGHTS["geo_velocity"] < score < 1.0


def test_scoring_is_deterministic_and_does_not_mutate_inputs() -> None:
    snapshot = dict(QUIET)
    first = score_transaction(QUIET, 3.0, "5411", "online", "DE", make_model(0.0))
    assert score_transaction(QUIET, 3.0, "5411", "online", "DE", make_model(0.0)) == first
    assert snapshot == QUIET


# --- the combined score with a model ----------------------------------------------------------------------


def test_model_that_sets_the_score_is_named_even_below_its_threshold() -> None:
    score, reasons, version = score_transaction(QUIET, 25.0, "5411", "pos", "DE", make_model(-1.0))
    assert score == pytest.approx(sigmoid(-1.0))
    assert reasons == ["model:lr-test"]
    assert version == "lr-test"


def test_an_alert_always_has_a_reason_when_the_model_threshold_is_above_the_alert_threshold() -> None:
    # A trained model's threshold is the score at its alert budget (e.g. 0.9998), the job alerts at 0.5.
    model = make_model(1.0, threshold=0.9998)
    score, reasons, _ = score_transaction(QUIET, 25.0, "5411", "pos", "DE", model)
    assert DEFAULT_ALERT_THRESHOLD <= score < model.threshold
    assert reasons == ["model:lr-test"]


def test_model_at_or_above_threshold_adds_its_reason() -> None:
    model = make_model(-3.0, mcc_risk_coefficient=5.0, threshold=0.8)
    score, reasons, _ = score_transaction(QUIET, 25.0, "7995", "pos", "DE", model)
    assert score == pytest.approx(sigmoid(2.0))
    assert reasons == ["model:lr-test"]
    low, low_reasons, _ = score_transaction(QUIET, 25.0, "5411", "pos", "DE", model)
    assert low == pytest.approx(sigmoid(-3.0)) and low_reasons == ["model:lr-test"]


def test_rules_win_when_they_score_higher_than_the_model() -> None:
    score, reasons, version = score_transaction(
        features(txn_count_1m=6.0), 1.0, "5411", "online", "DE", make_model(-5.0)
    )
    assert score == pytest.approx(WEIGHTS["card_testing"])
    assert reasons == ["card_testing"]
    assert version == "lr-test"


def test_rule_reasons_come_before_the_model_reason() -> None:
    model = make_model(4.0, threshold=0.5)
    score, reasons, _ = score_transaction(QUIET, 2500.0, "5411", "pos", "DE", model)
    assert score == pytest.approx(sigmoid(4.0))
    assert reasons == ["amount_spike", "model:lr-test"]


# --- decisions and conditions -----------------------------------------------------------------------------


def test_decision_follows_the_thresholds() -> None:
    assert decide(0.0) == "approve"
    assert decide(DEFAULT_ALERT_THRESHOLD - 1e-9) == "approve"
    assert decide(DEFAULT_ALERT_THRESHOLD) == "review"
    assert decide(DECLINE_THRESHOLD) == "decline"
    assert decide(0.3, review_threshold=0.2) == "review"


def test_conditions_compare_and_test_membership() -> None:
    assert Condition("amount", ">=", 5.0).holds({"amount": 5.0})
    assert not Condition("amount", ">", 5.0).holds({"amount": 5.0})
    assert Condition("mcc", "in", frozenset({"7995"})).holds({"mcc": "7995"})
    assert not Condition("mcc", "in", frozenset({"7995"})).holds({"mcc": "5411"})
    assert not Condition("txn_count_1m", ">=", 1.0).holds({}), "a missing feature counts as 0"
    with pytest.raises(ValueError, match="unknown operator"):
        Condition("amount", "==", 1.0)
