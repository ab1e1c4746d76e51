"""The training job's pieces on small inline DataFrames: labels, inputs, export, metrics and promotion."""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_jobs import tables
from spark_jobs import train_fraud_model as training

from hybrid_platform.features import FEATURE_NAMES, FEATURE_SPEC_VERSION
from hybrid_platform.model import (
    KIND_LOGISTIC_REGRESSION,
    LogisticRegressionParameters,
    ModelArtifact,
    model_inputs,
    score_features,
)

AS_OF = 1_764_000_000_000
MINUTE = 60_000
SILVER = (
    "txn_id STRING, card_id STRING, mcc STRING, amount DECIMAL(12, 2), country STRING, channel STRING, "
    "event_time BIGINT, is_fraud BOOLEAN, labeled_at BIGINT"
)


def silver_row(txn_id: str, event_time: int, **values: Any) -> tuple[Any, ...]:
    row = {"card_id": "c1", "mcc": "5411", "amount": Decimal("10.00"), "country": "DE", "channel": "pos"}
    row |= {"is_fraud": None, "labeled_at": None} | values
    columns = ("card_id", "mcc", "amount", "country", "channel")
    return (txn_id, *(row[name] for name in columns), event_time, row["is_fraud"], row["labeled_at"])


# --- labels and examples ----------------------------------------------------------------------------------


def test_label_is_fraud_only_when_the_label_was_known_at_the_cutoff(spark: Any) -> None:
    silver = spark.createDataFrame(
        [
            ("known_fraud", True, AS_OF - 1),
            ("fraud_at_cutoff", True, AS_OF),
            ("fraud_reported_later", True, AS_OF + 1),
            ("confirmed_genuine", False, AS_OF - 1),
            ("unlabeled", None, None),
            ("fraud_without_time", True, None),
        ],
        "txn_id STRING, is_fraud BOOLEAN, labeled_at BIGINT",
    )
    expected = spark.createDataFrame(
        [
            ("known_fraud", 1),
            ("fraud_at_cutoff", 1),
            ("fraud_reported_later", 0),
            ("confirmed_genuine", 0),
            ("unlabeled", 0),
            ("fraud_without_time", 0),
        ],
        "txn_id STRING, label INT",
    )
    assertDataFrameEqual(training.label_known_at(silver, AS_OF).select("txn_id", "label"), expected)


def test_examples_are_point_in_time_and_windows_see_history_outside_the_example_range(spark: Any) -> None:
    silver = spark.createDataFrame(
        [
            silver_row("before_range", AS_OF - 50 * MINUTE),
            silver_row("in_range", AS_OF - 40 * MINUTE, is_fraud=True, labeled_at=AS_OF - MINUTE),
            silver_row("too_recent", AS_OF - 5 * MINUTE),
            silver_row("after_cutoff", AS_OF + MINUTE, is_fraud=True, labeled_at=AS_OF - MINUTE),
        ],
        SILVER,
    )
    examples = training.training_examples(silver, AS_OF, maturity_ms=10 * MINUTE, since_ms=AS_OF - 45 * MINUTE)
    expected = spark.createDataFrame(
        # The older transaction is outside the examples but inside the 1-hour window; the later ones are
        # invisible (one is after the cutoff, the other after in_range).
        [("in_range", 1, 2.0, 20.0, 600.0)],
        "txn_id STRING, label INT, txn_count_1h DOUBLE, amount_sum_1h DOUBLE, seconds_since_prev_txn DOUBLE",
    )
    columns = ["txn_id", "label", "txn_count_1h", "amount_sum_1h", "seconds_since_prev_txn"]
    assertDataFrameEqual(examples.select(*columns), expected)
    assert set(FEATURE_NAMES) <= set(examples.columns)
    assert {"is_fraud", "labeled_at"}.isdisjoint(examples.columns), "the raw label must not leak as an input"


# --- model inputs -----------------------------------------------------------------------------------------

SAMPLES = [
    # amount, mcc, channel, country: each derived input on and off, the clamp, an unseen channel/country
    (Decimal("99.00"), "7995", "online", "DE"),
    (Decimal("0.01"), "5411", "pos", "US"),
    (Decimal("4999.99"), "6051", "atm", "BR"),
    (Decimal("0.00"), "5967", "moto", "DE"),
    (Decimal("-5.00"), "4829", "pos", "ZZ"),
    (Decimal("123456.78"), "5812", "online", "US"),
]


def test_spark_model_inputs_equal_model_inputs_exactly(spark: Any) -> None:
    countries = ["BR", "DE", "US"]
    names = training.input_names(countries)
    rng = random.Random(3)
    rows, expected_rows = [], []
    for index, (amount, mcc, channel, country) in enumerate(SAMPLES):
        features = {name: float(rng.randint(-1, 50)) for name in FEATURE_NAMES}
        rows.append((f"t{index}", amount, mcc, channel, country, *features.values()))
        inputs = model_inputs(features, float(amount), mcc, channel, country)
        expected_rows.append((f"t{index}", *(inputs.get(name, 0.0) for name in names)))
    schema = "txn_id STRING, amount DECIMAL(12, 2), mcc STRING, channel STRING, country STRING, " + ", ".join(
        f"{name} DOUBLE" for name in FEATURE_NAMES
    )
    examples = spark.createDataFrame(rows, schema)
    actual = training.add_model_inputs(examples, countries).select("txn_id", *[F.col(f"`{n}`") for n in names])
    expected = spark.createDataFrame(expected_rows, ["txn_id", *names])
    assert names[: len(FEATURE_NAMES)] == FEATURE_NAMES
    assert {"log1p_amount", "channel=pos", "mcc_risk=high", "country=DE"} <= set(names)
    assertDataFrameEqual(actual, expected, rtol=0.0, atol=0.0)  # exact, not approximately equal


def test_countries_are_the_most_frequent_with_enough_rows() -> None:
    counts = [("US", 500), ("DE", 300), ("BR", 25), ("NG", 5), ("FR", 300), ("", 900)]
    assert training.choose_countries(counts, top_n=3, min_rows=20) == ["DE", "FR", "US"]
    assert training.choose_countries(counts, top_n=10, min_rows=20) == ["BR", "DE", "FR", "US"]
    assert training.choose_countries(counts, top_n=0, min_rows=1) == []


# --- the model and its export -----------------------------------------------------------------------------


def _synthetic_training_set(spark: Any, rows: int) -> Any:
    """Examples whose fraud odds grow with the amount, online channel and 1-minute bursts."""
    rng = random.Random(11)
    data = []
    for index in range(rows):
        burst = rng.random() < 0.1
        features = {name: float(rng.randint(0, 3)) for name in FEATURE_NAMES}
        features["txn_count_1m"] = float(rng.randint(3, 8) if burst else rng.randint(1, 2))
        channel = rng.choice(("pos", "online"))  # never "atm": its indicator is constant (std 0)
        amount = Decimal(f"{math.exp(rng.gauss(3.5, 1.2)):.2f}")
        logit = -4.0 + 1.5 * burst + 0.8 * (channel == "online") + 0.4 * (float(amount) > 200)
        label = int(rng.random() < 1 / (1 + math.exp(-logit)))
        data.append((f"t{index}", amount, rng.choice(("5411", "7995")), channel, rng.choice(("DE", "FR")), label))
        data[-1] += tuple(features.values())
    schema = "txn_id STRING, amount DECIMAL(12, 2), mcc STRING, channel STRING, country STRING, label INT, " + (
        ", ".join(f"{name} DOUBLE" for name in FEATURE_NAMES)
    )
    return training.add_model_inputs(spark.createDataFrame(data, schema), ["DE"])


def test_exported_artifact_scores_exactly_like_the_mllib_pipeline(spark: Any) -> None:
    names = training.input_names(["DE"])
    examples = _synthetic_training_set(spark, 600).cache()
    by_label = {row["label"]: row["count"] for row in examples.groupBy("label").count().collect()}
    genuine_weight, fraud_weight = training.balanced_weights(by_label[0], by_label[1])
    weighted = training.with_class_weights(examples, genuine_weight, fraud_weight)
    fitted = training.pipeline(names, reg_param=0.01, max_iter=50).fit(weighted)

    parameters = training.export_parameters(fitted)
    atm = names.index("channel=atm")
    assert not parameters.stds[atm], "a constant input: the scaler outputs 0, the artifact ignores it"
    artifact = _artifact(names, parameters)
    mllib = fitted.transform(weighted).orderBy("txn_id")
    mllib_probability = [row["probability"][1] for row in mllib.select("probability").collect()]
    rows = training.collect_holdout(mllib)
    ours = training.score_rows(rows, training.model_scorer(artifact))
    assert ours == pytest.approx(mllib_probability, rel=1e-9, abs=1e-12)

    # The prior correction only moves the intercept: every log-odds shifts by the same constant.
    shift = training.prior_correction(genuine_weight, fraud_weight)
    assert shift == pytest.approx(math.log(by_label[1] / by_label[0]))
    calibrated = _artifact(names, training.export_parameters(fitted, shift))
    for features, amount, mcc, channel, country, weighted_p in zip(
        rows.features, rows.amount, rows.mcc, rows.channel, rows.country, mllib_probability, strict=True
    ):
        p = score_features(calibrated, features, amount, mcc, channel, country)
        assert math.log(p / (1 - p)) == pytest.approx(math.log(weighted_p / (1 - weighted_p)) + shift, abs=1e-9)
    examples.unpersist()


def _artifact(names: tuple[str, ...], parameters: LogisticRegressionParameters) -> ModelArtifact:
    return ModelArtifact(
        model_version="lr-20261124T000000Z-test",
        kind=KIND_LOGISTIC_REGRESSION,
        feature_names=names,
        feature_spec_version=FEATURE_SPEC_VERSION,
        parameters=parameters,
        threshold=0.5,
        code_version="test",
        created_at="2026-11-24T00:00:00+00:00",
    )


def test_balanced_weights_give_both_classes_equal_total_weight() -> None:
    genuine_weight, fraud_weight = training.balanced_weights(980, 20)
    assert 980 * genuine_weight == pytest.approx(20 * fraud_weight) == pytest.approx(500.0)


def test_model_version_names_time_and_content() -> None:
    parameters = LogisticRegressionParameters(means=(1.0,), stds=(2.0,), coefficients=(0.5,), intercept=-3.0)
    created = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
    version = training.model_version(created, ("txn_count_1m",), parameters)
    assert re.fullmatch(r"lr-20261124T101500Z-[0-9a-f]{8}", version)
    assert training.model_version(created, ("txn_count_1m",), parameters) == version
    other = LogisticRegressionParameters(means=(1.0,), stds=(2.0,), coefficients=(0.6,), intercept=-3.0)
    assert training.model_version(created, ("txn_count_1m",), other) != version


def test_cutoff_is_the_end_of_the_utc_day() -> None:
    end = datetime(2026, 11, 24, 23, 59, 59, 999_000, tzinfo=UTC)
    assert training.cutoff_ms(date(2026, 11, 24)) == int(end.timestamp() * 1000)


# --- metrics ----------------------------------------------------------------------------------------------


def test_average_precision_steps_through_the_ranking() -> None:
    assert training.average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # Tied scores are one threshold: the tie's precision applies to all of its positives.
    assert training.average_precision([1, 0, 0, 1], [0.5, 0.5, 0.5, 0.1]) == pytest.approx(0.5 / 3 + 0.5 * 2 / 4)
    assert training.average_precision([0, 1], [0.2, 0.9]) == pytest.approx(1.0)
    with pytest.raises(training.TrainingError):
        training.average_precision([0, 0], [0.1, 0.2])


def test_budget_precision_fills_ties_pro_rata() -> None:
    labels = [1, 0, 0, 1, 0, 0, 0, 0]
    result = training.at_budget(labels, [0.5, 0.5, 0.5, 0.1, 0, 0, 0, 0], budget=0.25)  # 2 alerts from 3 tied
    assert (result.alerts, result.precision, result.recall, result.threshold) == pytest.approx((2, 1 / 3, 1 / 3, 0.5))
    ranked = training.at_budget(labels, [0.9, 0.8, 0.7, 0.95, 0, 0, 0, 0], budget=0.25)
    assert (ranked.precision, ranked.recall, ranked.threshold) == pytest.approx((1.0, 1.0, 0.9))


# --- promotion --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auc_pr", "baseline", "champion", "promote", "reason"),
    [
        (0.90, 0.60, None, True, "no champion"),
        (0.55, 0.60, None, False, "baseline"),
        (0.60, 0.60, None, False, "baseline"),  # a tie with the rules adds nothing
        (0.90, 0.60, 0.85, True, "beats the champion"),
        (0.90, 0.60, 0.90, False, "champion"),  # retrained on identical data: equal, not promoted
        (0.9005, 0.60, 0.90, False, "champion"),  # within the noise margin
        (0.80, 0.60, 0.90, False, "champion"),  # worse than the champion
        (0.95, 0.97, 0.50, False, "baseline"),  # beats a weak champion but not the rules
    ],
)
def test_promotion_needs_to_beat_the_baseline_and_the_champion(
    auc_pr: float, baseline: float, champion: float | None, promote: bool, reason: str
) -> None:
    decision = training.promotion_decision(auc_pr, baseline, champion, min_gain=0.001)
    assert decision.promote is promote
    assert reason in decision.reason


def test_table_exists_lists_instead_of_failing_on_the_jdbc_catalog(spark: Any) -> None:
    spark.sql("CREATE NAMESPACE IF NOT EXISTS train_unit")
    spark.sql("CREATE TABLE IF NOT EXISTS train_unit.present (a INT) USING iceberg")
    catalog = spark.conf.get("spark.sql.defaultCatalog")
    assert tables.table_exists(spark, "train_unit.present")
    assert tables.table_exists(spark, f"{catalog}.train_unit.present")
    assert not tables.table_exists(spark, "train_unit.absent")
    assert not tables.table_exists(spark, "no_such_namespace.absent")
    with pytest.raises(training.TrainingError, match="does not exist"):
        training.main_snapshot_id(spark, "train_unit.absent")


def test_main_rejects_a_bad_date_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        training.main(["--as-of", "yesterday"], prog="hdp batch train")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_training_uses_the_features_the_online_job_served_where_it_logged_them(spark: Any) -> None:
    computed = {name: 1.0 for name in FEATURE_NAMES}
    served = {name: 2.0 for name in FEATURE_NAMES}
    examples = spark.createDataFrame(
        [{"txn_id": "a", **computed}, {"txn_id": "b", **computed}, {"txn_id": "c", **computed}]
    )
    decisions = spark.createDataFrame(
        [
            ("a", FEATURE_SPEC_VERSION, served),
            ("a", FEATURE_SPEC_VERSION, served),  # at least once: a repeat after a restart
            ("c", "card_features/v1", served),  # another feature definition: not the same features
        ],
        "txn_id string, feature_spec_version string, features map<string, double>",
    )
    rows = {r["txn_id"]: r for r in training.with_served_features(examples, decisions).collect()}
    assert len(rows) == 3
    assert rows["a"]["served"] == 1 and all(rows["a"][name] == pytest.approx(2.0) for name in FEATURE_NAMES)
    assert rows["b"]["served"] == 0 and rows["b"]["txn_count_1m"] == pytest.approx(1.0)
    assert rows["c"]["served"] == 0 and rows["c"]["txn_count_1m"] == pytest.approx(1.0)


def test_a_model_records_the_images_revision_where_there_is_no_git(tmp_path: Any) -> None:
    from hybrid_platform import config

    built = config.load({"HDP_HOME": str(tmp_path), "HDP_CODE_VERSION": "0123abc"})
    assert training.code_version(built) == "0123abc"
    import subprocess

    head = subprocess.run(["git", "-C", str(config.REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    in_a_clone = training.code_version(config.load({"HDP_HOME": str(tmp_path)}))
    assert in_a_clone.removesuffix("-dirty") == (head.stdout.strip() if head.returncode == 0 else "unknown")
