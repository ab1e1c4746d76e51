import math

import pytest

from hybrid_platform.model import RULES_ONLY_VERSION, CompiledModel, LogisticRegressionParameters, ModelArtifact
from hybrid_platform.rules import (
    DEFAULT_ALERT_THRESHOLD,
    RULES,
    amount_spike,
    card_testing,
    geo_velocity,
    high_risk_mcc_large_amount,
    score_transaction,
    velocity_burst,
)

QUIET = {
    "txn_count_1m": 1.0,
    "amount_sum_1m": 40.0,
    "txn_count_1h": 2.0,
    "amount_sum_1h": 90.0,
    "distinct_countries_10m": 1.0,
    "seconds_since_prev_txn": 1800.0,
}
# What the job passes for an event that arrived too late for the windows.
LATE = {name: 0.0 for name in QUIET} | {"seconds_since_prev_txn": -1.0}
WEIGHTS = {rule.check.__name__: rule.weight for rule in RULES}


def features(**changes: float) -> dict[str, float]:
    return QUIET | changes


def make_model(intercept: float, mcc_risk_coefficient: float = 0.0, threshold: float = 0.7) -> CompiledModel:
    """A model whose score is sigmoid(intercept), plus sigmoid shift for high-risk merchants."""
    return ModelArtifact(
        model_version="lr-test",
        kind="logistic_regression",
        feature_names=("mcc_risk=high",),
        feature_spec_version="card_features/v1",
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
    assert score_transaction(QUIET, 25.0, "5411", "pos", "DE", False, None) == (0.0, [], RULES_ONLY_VERSION)


def test_one_rule_scores_its_weight() -> None:
    score, reasons, version = score_transaction(QUIET, 2500.0, "5411", "pos", "DE", False, None)
    assert score == pytest.approx(WEIGHTS["amount_spike"])
    assert reasons == ["amount_spike"]
    assert version == RULES_ONLY_VERSION


def test_fired_rules_combine_as_independent_evidence() -> None:
    busy = features(txn_count_1h=25.0, distinct_countries_10m=3.0, seconds_since_prev_txn=30.0)
    score, reasons, _ = score_transaction(busy, 2500.0, "7995", "online", "US", False, None)
    assert reasons == ["geo_velocity", "high_risk_mcc_large_amount", "velocity_burst", "amount_spike"]
    expected = 1.0 - math.prod(1.0 - WEIGHTS[name] for name in reasons)
    assert score == pytest.approx(expected)
    assert WEIGHTS["geo_velocity"] < score < 1.0


def test_scoring_is_deterministic_and_does_not_mutate_inputs() -> None:
    snapshot = dict(QUIET)
    first = score_transaction(QUIET, 3.0, "5411", "online", "DE", False, make_model(0.0))
    assert score_transaction(QUIET, 3.0, "5411", "online", "DE", False, make_model(0.0)) == first
    assert snapshot == QUIET


# --- the combined score with a model ----------------------------------------------------------------------


def test_model_that_sets_the_score_is_named_even_below_its_threshold() -> None:
    score, reasons, version = score_transaction(QUIET, 25.0, "5411", "pos", "DE", False, make_model(-1.0))
    assert score == pytest.approx(sigmoid(-1.0))
    assert reasons == ["model:lr-test"]
    assert version == "lr-test"


def test_an_alert_always_has_a_reason_when_the_model_threshold_is_above_the_alert_threshold() -> None:
    # A trained model's threshold is the score at its alert budget (e.g. 0.9998), the job alerts at 0.5.
    model = make_model(1.0, threshold=0.9998)
    score, reasons, _ = score_transaction(QUIET, 25.0, "5411", "pos", "DE", False, model)
    assert DEFAULT_ALERT_THRESHOLD <= score < model.threshold
    assert reasons == ["model:lr-test"]


def test_model_at_or_above_threshold_adds_its_reason() -> None:
    model = make_model(-3.0, mcc_risk_coefficient=5.0, threshold=0.8)
    score, reasons, _ = score_transaction(QUIET, 25.0, "7995", "pos", "DE", False, model)
    assert score == pytest.approx(sigmoid(2.0))
    assert reasons == ["model:lr-test"]
    low, low_reasons, _ = score_transaction(QUIET, 25.0, "5411", "pos", "DE", False, model)
    assert low == pytest.approx(sigmoid(-3.0)) and low_reasons == ["model:lr-test"]


def test_rules_win_when_they_score_higher_than_the_model() -> None:
    score, reasons, version = score_transaction(
        features(txn_count_1m=6.0), 1.0, "5411", "online", "DE", False, make_model(-5.0)
    )
    assert score == pytest.approx(WEIGHTS["card_testing"])
    assert reasons == ["card_testing"]
    assert version == "lr-test"


def test_rule_reasons_come_before_the_model_reason() -> None:
    model = make_model(4.0, threshold=0.5)
    score, reasons, _ = score_transaction(QUIET, 2500.0, "5411", "pos", "DE", False, model)
    assert score == pytest.approx(sigmoid(4.0))
    assert reasons == ["amount_spike", "model:lr-test"]


# --- late events ------------------------------------------------------------------------------------------


def test_late_event_ignores_windowed_rules() -> None:
    # Even if stale windowed values slip through, only the stateless rules may fire for a late event.
    stale = features(txn_count_1m=9.0, txn_count_1h=50.0, distinct_countries_10m=3.0, seconds_since_prev_txn=5.0)
    assert score_transaction(stale, 1.0, "5411", "pos", "DE", True, None) == (0.0, [], RULES_ONLY_VERSION)
    on_time = score_transaction(stale, 1.0, "5411", "pos", "DE", False, None)
    assert on_time[1] == ["card_testing", "geo_velocity", "velocity_burst"]


def test_late_event_keeps_stateless_rules_and_says_it_was_late() -> None:
    score, reasons, _ = score_transaction(LATE, 2500.0, "7995", "online", "DE", True, None)
    assert reasons == ["high_risk_mcc_large_amount", "amount_spike", "late_event"]
    assert score == pytest.approx(1.0 - (1.0 - WEIGHTS["high_risk_mcc_large_amount"]) * (1.0 - WEIGHTS["amount_spike"]))


def test_late_event_is_still_scored_by_the_model() -> None:
    model = make_model(-3.0, mcc_risk_coefficient=5.0, threshold=0.8)
    score, reasons, version = score_transaction(LATE, 25.0, "7995", "online", "DE", True, model)
    assert score == pytest.approx(sigmoid(2.0))
    assert reasons == ["model:lr-test", "late_event"]
    assert version == "lr-test"


def test_sql_rule_predicates_match_the_python_rules() -> None:
    """The SQL-only benchmark variant scores with these predicates: each must fire exactly when its rule does."""
    import random

    from hybrid_platform import rules as rules_module

    rng = random.Random(11)
    mccs = [*sorted(rules_module.HIGH_RISK_MCCS), "5411", "5812"]
    for is_late in (False, True):
        conditions = rules_module.sql_rule_conditions(is_late)
        chosen = rules_module.STATELESS_RULES if is_late else rules_module.RULES
        assert [(c[0], c[1]) for c in conditions] == [(r.check.__name__, r.weight) for r in chosen]
        for _ in range(2000):
            features = {
                "txn_count_1m": float(rng.randint(0, 8)),
                "amount_sum_1m": 0.0,
                "distinct_countries_10m": float(rng.randint(0, 3)),
                "txn_count_1h": float(rng.randint(0, 30)),
                "amount_sum_1h": 0.0,
                "seconds_since_prev_txn": rng.choice([-1.0, 0.0, 30.0, 599.9, 600.0, 5000.0]),
            }
            amount = rng.choice([1.0, 4.99, 5.0, 5.01, 499.99, 500.0, 1999.0, 2000.0, 9000.0])
            mcc = rng.choice(mccs)
            python_expression_vars = {**features, "amount": amount, "mcc": mcc}
            for (reason, _, predicate), rule in zip(conditions, chosen, strict=True):
                as_python = predicate.replace(" AND ", " and ").replace(" IN (", " in (")
                fired_sql = bool(eval(as_python, {}, python_expression_vars))
                assert fired_sql == (rule.check(features, amount, mcc) is not None), (reason, features, amount, mcc)
