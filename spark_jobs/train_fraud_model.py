"""train_fraud_model: silver.transactions -> point-in-time training set -> MLlib logistic regression -> registry.

1. **Training set** (pure ``DataFrame -> DataFrame`` functions below) from one snapshot of
   ``silver.transactions``. The per-card features come from ``spark_jobs.features.add_card_features`` —
   the definition Flink computes online — over *every* silver transaction up to the cutoff; their
   windows look only backwards in event time, so no row sees its future. The label is what was known
   at the cutoff: 1 only if a fraud label had arrived by then (``labeled_at <= as_of``), else 0.
   **Unlabeled transactions are presumed genuine**: labels cover every reported fraud but only a sample
   of genuine payments, so "no fraud reported by the cutoff" is the negative class. Chargebacks take up
   to weeks, so fraud among the newest transactions is not reported yet; ``--maturity-days`` leaves those
   out of the examples (they still feed the features of later rows). Silver keeps only the newest label
   per transaction, so a fraud label overturned after the cutoff counts as unknown (rare).
2. **Model inputs** computed in Spark are exactly ``hybrid_platform.model.model_inputs`` — the inputs the
   Flink job computes per transaction — with ``country=<CC>`` indicators for the most frequent countries
   of the training split. A unit test compares both on the same rows.
3. **Time-based holdout**: the newest ``--holdout-share`` of the examples by event time; countries, the
   scaler and the model see only the older part. ``VectorAssembler -> StandardScaler(withMean, withStd)
   -> LogisticRegression(weightCol, standardization=False)``, so the scaler's means and stds and the
   regression's coefficients and intercept are ``LogisticRegressionParameters`` one to one. Classes are
   weighted to balance (fraud is ~1% of payments); the exported intercept is then shifted by
   ``-log(w_fraud / w_genuine)`` (the prior correction for weighted sampling), so the artifact scores a
   *calibrated* probability: Flink alerts on ``max(rules, model) >= 0.5``, and a balanced-weight score
   would flood it with alerts. The shift changes no ranking metric.
4. **Evaluation of the exported artifact**, scored in plain Python exactly as the Flink job scores
   (``model.score_features`` and ``rules.score_transaction``), on the holdout: AUC-PR (average
   precision) and precision at an alert budget (the top ``--alert-budget`` of holdout transactions),
   against the stated baseline — the rules-only scorer — and the prevalence; the current champion is
   scored on the same rows when its feature definition matches. The artifact's ``threshold`` is the
   score at the alert budget.
5. **Gate** the training set with Great Expectations (``quality/suites/training_set.json``); a failed
   gate trains nothing and exits 1.
6. **Register** the artifact; **promote** it only if it beats the rules-only baseline's AUC-PR and the
   champion's AUC-PR on the same holdout by more than ``--min-gain`` (or there is no comparable
   champion). Retraining on identical data therefore never replaces the champion.

Exit status: 0 when a model was trained and registered (promoted or not: the report says which and why),
1 when the training-set gate failed (nothing trained), 2 when there is nothing to train on.

python -m spark_jobs.train_fraud_model --as-of 2026-11-24   (or: hdp batch train --as-of 2026-11-24)
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression, LogisticRegressionModel
from pyspark.ml.feature import StandardScaler, StandardScalerModel, VectorAssembler
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import tables
from spark_jobs.features import add_card_features

from hybrid_platform import config, names, rules
from hybrid_platform.argparsing import (
    OneLineParser,
    iso_date,
    non_negative_int,
    non_negative_number,
    positive_int,
    share,
)
from hybrid_platform.features import FEATURE_NAMES, FEATURE_SPEC_VERSION
from hybrid_platform.model import (
    CHANNEL_INPUTS,
    CHANNELS,
    DERIVED_INPUT_NAMES,
    HIGH_RISK_MCCS,
    KIND_LOGISTIC_REGRESSION,
    LOG1P_AMOUNT,
    MCC_RISK_HIGH,
    CompiledModel,
    LogisticRegressionParameters,
    ModelArtifact,
    ModelError,
    ModelRegistry,
    registry_root,
    score_features,
)

TRAINING_TABLE = names.SILVER_TRANSACTIONS
SUITE = "training_set"
LABEL = "label"
WEIGHT = "weight"
#: What the features and the scoring read from silver, besides the label columns.
SOURCE_COLUMNS = ("txn_id", "card_id", "mcc", "amount", "country", "channel", "event_time")

DEFAULT_HOLDOUT_SHARE = 0.2
#: Share of transactions an analyst team can review: the top 0.5% of scores.
DEFAULT_ALERT_BUDGET = 0.005
DEFAULT_TOP_COUNTRIES = 30
#: A country needs this many training rows to get its own indicator (fewer would only be memorised).
DEFAULT_MIN_COUNTRY_ROWS = 20
DEFAULT_REG_PARAM = 0.001
DEFAULT_MAX_ITER = 100
#: AUC-PR a challenger must gain over the champion: retraining on the same data must not churn the champion.
DEFAULT_MIN_GAIN = 0.001
DEFAULT_MIN_ROWS = 10_000
#: Accuracy of the holdout boundary quantile (relative rank error 1/accuracy).
_QUANTILE_ACCURACY = 10_000


class TrainingError(RuntimeError):
    """Training cannot proceed on this data (no table, no snapshot, no positives); the message says why."""


# --- training set: pure DataFrame -> DataFrame ------------------------------------------------------------


def label_known_at(transactions: DataFrame, as_of_ms: int) -> DataFrame:
    """Add ``label``: 1 if a fraud label was known at ``as_of_ms``, else 0 (unlabeled = presumed genuine)."""
    known_fraud = F.col("is_fraud") & (F.col("labeled_at") <= F.lit(as_of_ms))
    return transactions.withColumn(LABEL, F.coalesce(known_fraud, F.lit(False)).cast("int"))


def training_examples(silver: DataFrame, as_of_ms: int, maturity_ms: int = 0, since_ms: int | None = None) -> DataFrame:
    """Labeled examples with point-in-time-correct features, as of the cutoff ``as_of_ms``.

    Features are computed over every transaction up to the cutoff (later ones cannot be known then, and
    the windows only look back); the examples are those with ``since_ms <= event_time <= as_of_ms -
    maturity_ms``, so a lookback limit or a maturity margin never truncates a feature window.
    """
    history = silver.where(F.col("event_time") <= F.lit(as_of_ms)).select(*SOURCE_COLUMNS, "is_fraud", "labeled_at")
    examples = add_card_features(history).where(F.col("event_time") <= F.lit(as_of_ms - maturity_ms))
    if since_ms is not None:
        examples = examples.where(F.col("event_time") >= F.lit(since_ms))
    return label_known_at(examples, as_of_ms).drop("is_fraud", "labeled_at")


def with_served_features(examples: DataFrame, decisions: DataFrame) -> DataFrame:
    """Where the online job logged the features it decided on (``raw.fraud_decisions``, same feature spec),
    train on those instead of the recomputed ones: the model then learns from exactly what scoring saw (they
    differ only for transactions that arrived out of order). Adds ``served`` (1 where the log was used).

    The log is at least once: any copy of a decision carries the same features (replays are deterministic).
    """
    logged = (
        decisions.where(F.col("feature_spec_version") == F.lit(FEATURE_SPEC_VERSION))
        .groupBy("txn_id")
        .agg(F.first("features").alias("_served"))
    )
    joined = examples.join(logged, "txn_id", "left")
    served = {name: F.coalesce(F.col("_served")[name], F.col(name)) for name in FEATURE_NAMES}
    return joined.withColumns({**served, "served": F.col("_served").isNotNull().cast("int")}).drop("_served")


def input_names(countries: Sequence[str]) -> tuple[str, ...]:
    """The model's inputs in artifact order: per-card features, derived inputs, country indicators."""
    return (*FEATURE_NAMES, *DERIVED_INPUT_NAMES, *(f"country={country}" for country in countries))


def add_model_inputs(examples: DataFrame, countries: Sequence[str]) -> DataFrame:
    """Add one double column per derived model input, named and valued as ``model.model_inputs`` does.

    ``model_inputs`` sets only the transaction's own ``country=<CC>``; every other indicator is absent,
    which scores as 0.0 — here each chosen country is a column that is 1.0 on its rows and 0.0 elsewhere.
    """
    amount = F.col("amount").cast("double")
    one, zero = F.lit(1.0), F.lit(0.0)
    columns = {LOG1P_AMOUNT: F.when(amount > 0.0, F.log1p(amount)).otherwise(zero)}
    for channel, name in zip(CHANNELS, CHANNEL_INPUTS, strict=True):
        columns[name] = F.when(F.col("channel") == channel, one).otherwise(zero)
    columns[MCC_RISK_HIGH] = F.when(F.col("mcc").isin(*sorted(HIGH_RISK_MCCS)), one).otherwise(zero)
    for country in countries:
        columns[f"country={country}"] = F.when(F.col("country") == country, one).otherwise(zero)
    return examples.withColumns(columns)


def country_counts(train: DataFrame) -> DataFrame:
    return train.groupBy("country").count()


def choose_countries(counts: Sequence[tuple[str, int]], top_n: int, min_rows: int) -> list[str]:
    """The ``top_n`` most frequent countries with at least ``min_rows`` training rows, sorted by code."""
    eligible = sorted(((-count, country) for country, count in counts if country and count >= min_rows))
    return sorted(country for _, country in eligible[:top_n])


def split_at(examples: DataFrame, holdout_from_ms: int) -> tuple[DataFrame, DataFrame]:
    """(train, holdout): the holdout is every example at or after ``holdout_from_ms`` in event time."""
    newer = F.col("event_time") >= F.lit(holdout_from_ms)
    return examples.where(~newer), examples.where(newer)


def with_class_weights(train: DataFrame, genuine_weight: float, fraud_weight: float) -> DataFrame:
    return train.withColumn(WEIGHT, F.when(F.col(LABEL) == 1, F.lit(fraud_weight)).otherwise(F.lit(genuine_weight)))


def balanced_weights(genuine: int, fraud: int) -> tuple[float, float]:
    """(genuine, fraud) weights that give both classes the same total weight, and the rows their count."""
    total = genuine + fraud
    return total / (2.0 * genuine), total / (2.0 * fraud)


# --- the model ---------------------------------------------------------------------------------------------


def pipeline(feature_names: Sequence[str], reg_param: float, max_iter: int) -> Pipeline:
    """Assemble, standardise explicitly, then an unstandardised weighted logistic regression.

    ``standardization=False`` because the scaler already did it; the coefficients then apply to
    ``(x - mean) / std``, which is exactly what ``LogisticRegressionParameters`` describes.
    """
    return Pipeline(
        stages=[
            VectorAssembler(inputCols=list(feature_names), outputCol="raw_inputs", handleInvalid="error"),
            StandardScaler(inputCol="raw_inputs", outputCol="scaled_inputs", withMean=True, withStd=True),
            LogisticRegression(
                featuresCol="scaled_inputs",
                labelCol=LABEL,
                weightCol=WEIGHT,
                family="binomial",
                fitIntercept=True,
                standardization=False,
                regParam=reg_param,
                elasticNetParam=0.0,
                maxIter=max_iter,
            ),
        ]
    )


def export_parameters(model: PipelineModel, intercept_shift: float = 0.0) -> LogisticRegressionParameters:
    """The fitted scaler and regression as artifact parameters (``intercept_shift`` is added to the intercept)."""
    _, scaler, regression = model.stages
    if not isinstance(scaler, StandardScalerModel) or not isinstance(regression, LogisticRegressionModel):
        raise TypeError(f"expected assembler, scaler, logistic regression; got {model.stages}")
    return LogisticRegressionParameters(
        means=tuple(float(value) for value in scaler.mean.toArray()),
        stds=tuple(float(value) for value in scaler.std.toArray()),
        coefficients=tuple(float(value) for value in regression.coefficients.toArray()),
        intercept=float(regression.intercept) + intercept_shift,
    )


def prior_correction(genuine_weight: float, fraud_weight: float) -> float:
    """Intercept shift that undoes class weighting: weighted log-odds = true log-odds + log(w_fraud / w_genuine)."""
    return -math.log(fraud_weight / genuine_weight)


def model_version(created: datetime, feature_names: Sequence[str], parameters: LogisticRegressionParameters) -> str:
    """``lr-<UTC timestamp>-<hash of what scores>``, e.g. ``lr-20261124T101500Z-1f2e3d4c``."""
    content = json.dumps(
        {
            "feature_names": list(feature_names),
            "means": list(parameters.means),
            "stds": list(parameters.stds),
            "coefficients": list(parameters.coefficients),
            "intercept": parameters.intercept,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(content.encode()).hexdigest()[:8]
    return f"lr-{created.astimezone(UTC):%Y%m%dT%H%M%SZ}-{digest}"


# --- evaluation, in plain Python as the stream scores -------------------------------------------------------


@dataclass(frozen=True)
class HoldoutRows:
    """The holdout as column lists: what the Flink job scores per transaction, and the label."""

    features: list[dict[str, float]]
    amount: list[float]
    mcc: list[str]
    channel: list[str]
    country: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)


def collect_holdout(holdout: DataFrame) -> HoldoutRows:
    """Collect through Arrow (``toArrow``): ~1 s for 200k rows, no per-row Python objects in Spark."""
    columns = [*FEATURE_NAMES, "amount", "mcc", "channel", "country", LABEL]
    table = holdout.select(
        *[F.col(name).cast("double") for name in FEATURE_NAMES],
        F.col("amount").cast("double"),  # what the scorer does: the amount as a double
        "mcc",
        "channel",
        "country",
        LABEL,
    ).toArrow()
    data = {name: table.column(name).to_pylist() for name in columns}
    columns_of_features = (data[name] for name in FEATURE_NAMES)
    features = [dict(zip(FEATURE_NAMES, values, strict=True)) for values in zip(*columns_of_features, strict=True)]
    return HoldoutRows(features, data["amount"], data["mcc"], data["channel"], data["country"], data[LABEL])


Scorer = Callable[[Mapping[str, float], float, str, str, str], float]


def score_rows(rows: HoldoutRows, scorer: Scorer) -> list[float]:
    return [
        scorer(features, amount, mcc, channel, country)
        for features, amount, mcc, channel, country in zip(
            rows.features, rows.amount, rows.mcc, rows.channel, rows.country, strict=True
        )
    ]


def model_scorer(model: ModelArtifact | CompiledModel) -> Scorer:
    """The model alone, as ``model.score_features`` computes it in the stream."""
    compiled = model if isinstance(model, CompiledModel) else model.compiled
    return lambda features, amount, mcc, channel, country: score_features(
        compiled, features, amount, mcc, channel, country
    )


def stream_scorer(model: ModelArtifact | CompiledModel | None) -> Scorer:
    """What Flink emits: ``rules.score_transaction`` (rules only without a model, else max of both)."""
    compiled = model.compiled if isinstance(model, ModelArtifact) else model

    def scorer(features: Mapping[str, float], amount: float, mcc: str, channel: str, country: str) -> float:
        score, _, _ = rules.score_transaction(features, amount, mcc, channel, country, compiled)
        return float(score)

    return scorer


def _ranked_groups(labels: Sequence[int], scores: Sequence[float]) -> list[tuple[float, int, int]]:
    """``(score, rows, positives)`` per distinct score, highest first (ties are one group)."""
    groups: dict[float, list[int]] = {}
    for label, score in zip(labels, scores, strict=True):
        group = groups.setdefault(score, [0, 0])
        group[0] += 1
        group[1] += label
    return [(score, rows, positives) for score, (rows, positives) in sorted(groups.items(), reverse=True)]


def average_precision(labels: Sequence[int], scores: Sequence[float]) -> float:
    """AUC-PR as average precision: sum over thresholds of recall gained x precision there (ties grouped)."""
    total_positives = sum(labels)
    if not total_positives:
        raise TrainingError("average precision is undefined without positives")
    seen = true_positives = 0
    area = 0.0
    for _, rows, positives in _ranked_groups(labels, scores):
        seen += rows
        true_positives += positives
        if positives:
            area += positives / total_positives * (true_positives / seen)
    return area


@dataclass(frozen=True)
class BudgetResult:
    alerts: int  # how many transactions the budget allows
    precision: float  # expected share of fraud among them (ties at the boundary filled pro rata)
    recall: float
    threshold: float  # the lowest score that still alerts


def at_budget(labels: Sequence[int], scores: Sequence[float], budget: float) -> BudgetResult:
    """Precision and recall when the top ``budget`` share of transactions alert.

    Ties at the boundary count with their average fraud rate (the expectation over random tie-breaking),
    so a coarse scorer such as the rules is neither favoured nor penalised by the order of equal scores.
    """
    alerts = max(1, math.ceil(budget * len(labels)))
    remaining = alerts
    true_positives = 0.0
    threshold = 1.0
    for score, rows, positives in _ranked_groups(labels, scores):
        taken = min(rows, remaining)
        true_positives += positives * taken / rows
        remaining -= taken
        threshold = score
        if not remaining:
            break
    total_positives = sum(labels)
    return BudgetResult(
        alerts, true_positives / alerts, true_positives / total_positives if total_positives else 0.0, threshold
    )


def share_at_or_above(scores: Sequence[float], threshold: float) -> float:
    return sum(1 for score in scores if score >= threshold) / len(scores) if scores else 0.0


def precision_at_or_above(labels: Sequence[int], scores: Sequence[float], threshold: float) -> float:
    alerted = [label for label, score in zip(labels, scores, strict=True) if score >= threshold]
    return sum(alerted) / len(alerted) if alerted else 0.0


def evaluate(rows: HoldoutRows, scorer: Scorer, budget: float) -> dict[str, float]:
    """AUC-PR and the alert-budget numbers of one scorer on the holdout."""
    scores = score_rows(rows, scorer)
    result = at_budget(rows.labels, scores, budget)
    return {
        "auc_pr": average_precision(rows.labels, scores),
        "precision_at_budget": result.precision,
        "recall_at_budget": result.recall,
        "threshold_at_budget": result.threshold,
        # What the stream's fixed alert threshold would do with these scores.
        "alert_share_at_stream_threshold": share_at_or_above(scores, rules.DEFAULT_ALERT_THRESHOLD),
        "precision_at_stream_threshold": precision_at_or_above(rows.labels, scores, rules.DEFAULT_ALERT_THRESHOLD),
    }


# --- promotion ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def promotion_decision(
    auc_pr: float, baseline_auc_pr: float, champion_auc_pr: float | None, min_gain: float = DEFAULT_MIN_GAIN
) -> Decision:
    """Promote only a model that beats the rules-only baseline and the champion by more than ``min_gain``.

    All three AUC-PRs must come from the same holdout. ``champion_auc_pr`` is None when there is no
    champion or it cannot score these inputs (another feature definition): then the baseline decides.
    An equal model (a retrain on identical data) is never promoted.
    """
    if not auc_pr > baseline_auc_pr:
        return Decision(False, f"AUC-PR {auc_pr:.4f} does not beat the rules-only baseline {baseline_auc_pr:.4f}")
    if champion_auc_pr is None:
        return Decision(True, f"AUC-PR {auc_pr:.4f} beats the rules-only baseline {baseline_auc_pr:.4f}; no champion")
    if not auc_pr > champion_auc_pr + min_gain:
        return Decision(
            False,
            f"AUC-PR {auc_pr:.4f} does not beat the champion's {champion_auc_pr:.4f} by more than {min_gain}",
        )
    return Decision(
        True, f"AUC-PR {auc_pr:.4f} beats the champion's {champion_auc_pr:.4f} and the baseline {baseline_auc_pr:.4f}"
    )


# --- the job -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    as_of_ms: int
    holdout_share: float = DEFAULT_HOLDOUT_SHARE
    alert_budget: float = DEFAULT_ALERT_BUDGET
    top_countries: int = DEFAULT_TOP_COUNTRIES
    min_country_rows: int = DEFAULT_MIN_COUNTRY_ROWS
    reg_param: float = DEFAULT_REG_PARAM
    max_iter: int = DEFAULT_MAX_ITER
    min_gain: float = DEFAULT_MIN_GAIN
    min_rows: int = DEFAULT_MIN_ROWS
    maturity_days: int = 0
    lookback_days: int | None = None
    promote: bool = True


def cutoff_ms(as_of: date) -> int:
    """The end of the UTC day ``as_of`` (inclusive), like ``seed_day --labels-as-of``."""
    return tables.day_start_ms(as_of + timedelta(days=1)) - 1


def main_snapshot_id(spark: SparkSession, table: str) -> int:
    """The snapshot ``main`` points at (the audit branches of daily_etl are not what readers see)."""
    if not tables.table_exists(spark, table):
        raise TrainingError(f"{table} does not exist: run daily_etl first")
    rows = spark.sql(f"SELECT snapshot_id FROM {table}.refs WHERE name = 'main' AND type = 'BRANCH'").collect()
    if not rows:
        raise TrainingError(f"{table} has no snapshot yet: run daily_etl first")
    return int(rows[0]["snapshot_id"])


def code_version(cfg: config.PlatformConfig | None = None) -> str:
    """The deployment's revision (HDP_CODE_VERSION, set in the images), else ``git rev-parse HEAD`` (``-dirty``
    with uncommitted changes to tracked files), else ``unknown``."""
    cfg = cfg or config.load()
    if cfg.code_version:
        return cfg.code_version
    try:
        run = ["git", "-C", str(config.REPO_ROOT)]
        head = subprocess.run([*run, "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)
        status = subprocess.run(
            [*run, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {name: round(value, 6) for name, value in values.items()}


def run(
    spark: SparkSession,
    cfg: config.PlatformConfig,
    options: Options,
    registry: ModelRegistry,
    run_id: str,
    table: str = TRAINING_TABLE,
) -> dict[str, Any]:
    """Gate, train, evaluate, register and maybe promote; returns the report.

    With ``report["gate"]["success"]`` False nothing was trained or registered.
    """
    from spark_jobs import quality  # GX is heavy to import; only the job needs it

    started = time.monotonic()
    seconds: dict[str, float] = {}
    snapshot_id = main_snapshot_id(spark, table)
    silver = spark.sql(f"SELECT * FROM {table} VERSION AS OF {snapshot_id}")
    since_ms = None if options.lookback_days is None else options.as_of_ms + 1 - options.lookback_days * 86_400_000
    examples = training_examples(silver, options.as_of_ms, options.maturity_days * 86_400_000, since_ms)
    decisions_table = f"{cfg.catalog.name}.{names.RAW_FRAUD_DECISIONS}"
    if tables.table_exists(spark, decisions_table):
        examples = with_served_features(examples, spark.table(decisions_table))
    else:
        examples = examples.withColumn("served", F.lit(0))
    examples = examples.cache()
    boundary = examples.select(
        F.percentile_approx("event_time", 1.0 - options.holdout_share, _QUANTILE_ACCURACY).alias("holdout_from")
    ).first()
    if boundary is None or boundary["holdout_from"] is None:
        raise TrainingError(f"{table} has no transactions up to {_iso(options.as_of_ms)}")
    holdout_from_ms = int(boundary["holdout_from"])
    train, _ = split_at(examples, holdout_from_ms)
    counts = [(row["country"], int(row["count"])) for row in country_counts(train).collect()]
    countries = choose_countries(counts, options.top_countries, options.min_country_rows)
    feature_names = input_names(countries)
    dataset = add_model_inputs(examples, countries).cache()
    seconds["features"] = round(time.monotonic() - started, 1)

    report: dict[str, Any] = {
        "run_id": run_id,
        "as_of": _iso(options.as_of_ms),
        "table": table,
        "snapshot_id": str(snapshot_id),
    }
    gate = quality.run_gate(
        dataset, SUITE, {"as_of_ms": options.as_of_ms, "min_rows": options.min_rows}, cfg, run_id, f"{table}:training"
    )
    report["gate"] = {"success": gate.success, "summary": gate.summary(), "data_docs": gate.data_docs_path}
    seconds["gate"] = round(time.monotonic() - started - sum(seconds.values()), 1)
    examples.unpersist()  # the gate materialised ``dataset``, which is all that is read from here on
    if not gate.success:
        dataset.unpersist()
        report["seconds"] = seconds
        return report

    train, holdout = split_at(dataset, holdout_from_ms)
    by_label = {int(row[LABEL]): int(row["count"]) for row in train.groupBy(LABEL).count().collect()}
    genuine, fraud = by_label.get(0, 0), by_label.get(1, 0)
    if not genuine or not fraud:
        raise TrainingError(f"the training split needs both classes; it has {genuine} genuine and {fraud} fraud rows")
    genuine_weight, fraud_weight = balanced_weights(genuine, fraud)
    fit_started = time.monotonic()
    fitted = pipeline(feature_names, options.reg_param, options.max_iter).fit(
        with_class_weights(train, genuine_weight, fraud_weight)
    )
    seconds["fit"] = round(time.monotonic() - fit_started, 1)
    parameters = export_parameters(fitted, prior_correction(genuine_weight, fraud_weight))
    created = datetime.now(UTC).replace(microsecond=0)
    candidate = ModelArtifact(
        model_version=model_version(created, feature_names, parameters),
        kind=KIND_LOGISTIC_REGRESSION,
        feature_names=feature_names,
        feature_spec_version=FEATURE_SPEC_VERSION,
        parameters=parameters,
        threshold=0.5,  # replaced by the score at the alert budget below
        code_version=code_version(cfg),
        created_at=created.isoformat(),
    )

    evaluate_started = time.monotonic()
    rows = collect_holdout(holdout)
    if not sum(rows.labels):
        raise TrainingError("the holdout has no known fraud: widen --holdout-share or train on more days")
    budget = options.alert_budget
    model_metrics = evaluate(rows, model_scorer(candidate), budget)
    baseline = evaluate(rows, stream_scorer(None), budget)
    stream = evaluate(rows, stream_scorer(candidate), budget)
    champion_version, champion_metrics, champion_note = _score_champion(registry, rows, budget)
    seconds["evaluate"] = round(time.monotonic() - evaluate_started, 1)

    metrics = {
        "auc_pr": model_metrics["auc_pr"],
        "precision_at_budget": model_metrics["precision_at_budget"],
        "recall_at_budget": model_metrics["recall_at_budget"],
        "alert_budget": budget,
        "baseline_auc_pr": baseline["auc_pr"],
        "baseline_precision_at_budget": baseline["precision_at_budget"],
        "baseline_recall_at_budget": baseline["recall_at_budget"],
        "prevalence": sum(rows.labels) / len(rows),
        "holdout_rows": float(len(rows)),
        "holdout_fraud": float(sum(rows.labels)),
        "train_rows": float(genuine + fraud),
        "train_fraud": float(fraud),
        # The stream alerts on max(rules, model) >= 0.5: with this model, and with the rules alone.
        "stream_alert_share": stream["alert_share_at_stream_threshold"],
        "stream_alert_precision": stream["precision_at_stream_threshold"],
        "baseline_stream_alert_share": baseline["alert_share_at_stream_threshold"],
        "baseline_stream_alert_precision": baseline["precision_at_stream_threshold"],
    }
    if champion_metrics is not None:
        metrics["champion_auc_pr"] = champion_metrics["auc_pr"]
        metrics["champion_precision_at_budget"] = champion_metrics["precision_at_budget"]
    artifact = replace(
        candidate,
        threshold=model_metrics["threshold_at_budget"],
        metrics=_rounded(metrics),
        trained_on={
            "table": table,
            "snapshot_id": str(snapshot_id),
            "as_of": _iso(options.as_of_ms),
            "rows": str(genuine + fraud + len(rows)),
            "holdout_from": _iso(holdout_from_ms),
            "maturity_days": str(options.maturity_days),
            "lookback_days": "all" if options.lookback_days is None else str(options.lookback_days),
            # Examples whose features came from the online job's decision log rather than recomputation.
            "served_feature_rows": str(examples.where(F.col("served") == 1).count()),
        },
    )
    decision = promotion_decision(
        metrics["auc_pr"],
        metrics["baseline_auc_pr"],
        None if champion_metrics is None else champion_metrics["auc_pr"],
        options.min_gain,
    )
    registry.register(artifact)
    promoted = decision.promote and options.promote
    if promoted:
        registry.promote(artifact.model_version)
    dataset.unpersist()
    seconds["total"] = round(time.monotonic() - started, 1)
    report.update(
        {
            "model_version": artifact.model_version,
            "promoted": promoted,
            "decision": decision.reason + ("" if options.promote else "; not promoted: --no-promote"),
            "champion_before": champion_version,
            "champion_after": registry.champion_version(),
            "champion_note": champion_note,
            "threshold": artifact.threshold,
            "inputs": len(feature_names),
            "countries": " ".join(countries),
            "metrics": artifact.metrics,
            "registered": str(registry.model_path(artifact.model_version)),
            "code_version": artifact.code_version,
            "seconds": seconds,
        }
    )
    return report


def _score_champion(
    registry: ModelRegistry, rows: HoldoutRows, budget: float
) -> tuple[str | None, dict[str, float] | None, str]:
    """(champion version, its metrics on this holdout or None, a note on why it was or was not scored)."""
    try:
        champion = registry.champion()
    except ModelError as error:
        return None, None, f"champion unreadable, treated as absent: {error}"
    if champion is None:
        return None, None, "no champion yet"
    if champion.feature_spec_version != FEATURE_SPEC_VERSION:
        return (
            champion.model_version,
            None,
            f"champion trained on {champion.feature_spec_version!r}, not {FEATURE_SPEC_VERSION!r}: not comparable",
        )
    return champion.model_version, evaluate(rows, model_scorer(champion), budget), "scored on the same holdout"


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from spark_jobs.session import build_session

    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--as-of", type=iso_date, required=True, help="training cutoff: the end of this UTC day")
    parser.add_argument("--holdout-share", type=share, default=DEFAULT_HOLDOUT_SHARE, help="newest share held out")
    parser.add_argument("--alert-budget", type=share, default=DEFAULT_ALERT_BUDGET, help="share of alerts reviewed")
    parser.add_argument("--top-countries", type=positive_int, default=DEFAULT_TOP_COUNTRIES)
    parser.add_argument("--reg-param", type=non_negative_number, default=DEFAULT_REG_PARAM, help="L2 regularisation")
    parser.add_argument(
        "--min-gain", type=non_negative_number, default=DEFAULT_MIN_GAIN, help="AUC-PR gain over the champion"
    )
    parser.add_argument(
        "--min-rows", type=positive_int, default=DEFAULT_MIN_ROWS, help="smallest acceptable training set"
    )
    parser.add_argument(
        "--maturity-days",
        type=non_negative_int,
        default=0,
        help="leave out the newest N days (their fraud is not reported yet)",
    )
    parser.add_argument(
        "--lookback-days", type=positive_int, help="train on the last N days only (default: all of silver)"
    )
    parser.add_argument("--no-promote", action="store_true", help="register and report, never promote")
    parser.add_argument("--run-id", help="names the gate's Data Docs (default: generated)")
    parser.add_argument(
        "--table", default=TRAINING_TABLE, help=f"silver-shaped source table (default {TRAINING_TABLE})"
    )
    args = parser.parse_args(argv)
    options = Options(
        as_of_ms=cutoff_ms(args.as_of),
        holdout_share=args.holdout_share,
        alert_budget=args.alert_budget,
        top_countries=args.top_countries,
        reg_param=args.reg_param,
        min_gain=args.min_gain,
        min_rows=args.min_rows,
        maturity_days=args.maturity_days,
        lookback_days=args.lookback_days,
        promote=not args.no_promote,
    )
    run_id = args.run_id or f"train_{args.as_of.isoformat()}_{datetime.now(UTC):%H%M%S}_{uuid.uuid4().hex[:6]}"
    cfg = config.load()
    spark = build_session("train_fraud_model", cfg)
    try:
        report = run(spark, cfg, options, ModelRegistry(registry_root(cfg)), run_id, args.table)
    except TrainingError as error:
        print(f"train_fraud_model {args.as_of}: {error}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(json.dumps(report, indent=2))
    if not report["gate"]["success"]:
        print(f"train_fraud_model {args.as_of}: training-set gate failed, nothing trained", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
