"""Training end to end: a generated day through seed_day and daily_etl, then the MLlib model on silver.

The model must beat the rules-only baseline on the holdout, be registered, become the champion, load in
the stream's hot-reloading scorer, and must not be replaced by a retrain on identical data. A cutoff
before the labels arrived must fail the training-set gate (exit 1) and register nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from spark_jobs import daily_etl, seed_day, session, train_fraud_model
from spark_jobs.train_fraud_model import Options, cutoff_ms

from hybrid_platform import config, names
from hybrid_platform.features import FEATURE_SPEC_VERSION
from hybrid_platform.model import HotReloadingModel, ModelRegistry

pytestmark = pytest.mark.integration

#: Far before the days other tests publish: with the cutoff and lookback below, training sees this day only.
DAY = date(2019, 6, 3)
TRANSACTIONS = 60_000
#: Every label of the day is known 60 days later (chargebacks take up to 30).
AS_OF = DAY + timedelta(days=60)
LOOKBACK_DAYS = 61


@pytest.fixture(scope="module")
def published_day(spark: Any, platform_cfg: config.PlatformConfig) -> dict[str, Any]:
    """One generated day, published to silver.transactions by the real daily ETL; its report."""
    seed_day.seed(spark, DAY, TRANSACTIONS, seed_value=7, labels_as_of_ms=2**62)
    return daily_etl.run(spark, platform_cfg, DAY, f"training_{uuid.uuid4().hex[:6]}")


@pytest.fixture
def registry_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private registry, also for ``main`` (which resolves it through HDP_MODEL_REGISTRY)."""
    root = tmp_path / "models"
    monkeypatch.setenv("HDP_MODEL_REGISTRY", str(root))
    return root


class _SharedSession:
    """The test session handed to ``main``, which stops its session at the end: this one keeps running."""

    def __init__(self, spark: Any) -> None:
        self._spark = spark

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spark, name)

    def stop(self) -> None:
        pass


def run_main(spark: Any, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(session, "build_session", lambda app_name, cfg=None: _SharedSession(spark))
    return train_fraud_model.main(list(args), prog="hdp batch train")


def test_model_beats_the_rules_is_promoted_once_and_a_retrain_does_not_replace_it(
    spark: Any,
    platform_cfg: config.PlatformConfig,
    published_day: dict[str, Any],
    registry_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    silver = f"{platform_cfg.catalog.name}.{names.SILVER_TRANSACTIONS}"
    silver_rows = published_day["tables"][silver]["rows"]
    assert silver_rows >= 50_000
    registry = ModelRegistry(registry_dir)
    options = Options(as_of_ms=cutoff_ms(AS_OF), lookback_days=LOOKBACK_DAYS)

    first = train_fraud_model.run(spark, platform_cfg, options, registry, "training-first")
    assert first["gate"]["success"], first["gate"]["summary"]
    metrics = first["metrics"]
    assert metrics["train_rows"] + metrics["holdout_rows"] == silver_rows
    assert metrics["holdout_rows"] == pytest.approx(0.2 * silver_rows, rel=0.02)
    assert metrics["holdout_fraud"] >= 100, "the holdout must hold enough fraud to compare models on"
    # The model ranks fraud far better than the rules, and far better than chance (the prevalence).
    assert metrics["auc_pr"] > metrics["baseline_auc_pr"] + 0.1, metrics
    assert metrics["auc_pr"] > 10 * metrics["prevalence"], metrics
    assert metrics["precision_at_budget"] > 0.8, metrics
    assert first["promoted"], first["decision"]
    assert registry.champion_version() == first["model_version"]

    artifact = registry.get(first["model_version"])
    assert artifact.feature_spec_version == FEATURE_SPEC_VERSION
    assert artifact.trained_on["snapshot_id"] == str(published_day["published_snapshots"][silver])
    assert artifact.trained_on["table"] == names.SILVER_TRANSACTIONS
    assert 0.0 < artifact.threshold < 1.0
    assert artifact.code_version
    # What the Flink UDF does on its next reload check: load the champion, checking the feature definition.
    scorer = HotReloadingModel(registry, expected_feature_spec_version=FEATURE_SPEC_VERSION)
    assert scorer.last_error is None
    assert scorer.model_version == first["model_version"]

    # Retraining on identical data (through the entrypoint) gives an equal model: registered, not promoted.
    assert run_main(spark, monkeypatch, "--as-of", AS_OF.isoformat(), "--lookback-days", str(LOOKBACK_DAYS)) == 0
    second = json.loads(capsys.readouterr().out)
    assert not second["promoted"], second["decision"]
    assert "champion" in second["decision"]
    assert second["champion_before"] == second["champion_after"] == first["model_version"]
    assert second["metrics"]["champion_auc_pr"] == pytest.approx(second["metrics"]["auc_pr"], abs=0.001)
    assert registry.champion_version() == first["model_version"]
    assert set(registry.list_versions()) == {first["model_version"], second["model_version"]}


def test_a_cutoff_before_the_labels_arrived_fails_the_gate_and_trains_nothing(
    spark: Any,
    published_day: dict[str, Any],
    registry_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # As of the end of the day itself almost no chargeback has arrived: the label share is implausibly low.
    code = run_main(spark, monkeypatch, "--as-of", DAY.isoformat(), "--lookback-days", "1", "--min-rows", "1000")
    captured = capsys.readouterr()
    assert code == 1, captured.err
    report = json.loads(captured.out)
    assert not report["gate"]["success"]
    assert "expect_column_mean_to_be_between on label" in report["gate"]["summary"]
    assert "gate failed" in captured.err
    assert "model_version" not in report
    assert ModelRegistry(registry_dir).list_versions() == []


# [template:streaming]
def test_the_running_flink_job_scores_with_the_promoted_model(
    local_runtime: config.PlatformConfig, spark: Any, published_day: dict[str, Any], tmp_path: Path
) -> None:
    """The loop closes: Spark trains and promotes, the deployed fraud_scoring job alerts with that model."""
    import time

    # pytest puts this folder on sys.path (rootdir-style test modules): reuse the streaming checks.
    from test_streaming_path import _end_offsets, _read_committed

    from hybrid_platform import flink_ops, generator

    cfg = local_runtime
    registry = ModelRegistry(tmp_path / "flink-models")
    trained = train_fraud_model.run(
        spark, cfg, Options(as_of_ms=cutoff_ms(AS_OF), lookback_days=LOOKBACK_DAYS), registry, "training-flink"
    )
    assert trained["promoted"], trained["decision"]
    generator.ensure_topics(cfg, names.ALL_TOPICS)
    alerts_start = _end_offsets(cfg, names.TOPIC_FRAUD_ALERTS)
    job_args = ["--model-registry", str(registry.root)]
    flink_ops.deploy(cfg, names.JOB_FRAUD_SCORING, job_args)
    try:
        time.sleep(3)
        generator.produce(cfg, rate=200, duration_s=8, seed=21)
        alerts = [json.loads(m.value()) for m in _read_committed(cfg, names.TOPIC_FRAUD_ALERTS, alerts_start)]
    finally:
        flink_ops.cancel(cfg, names.JOB_FRAUD_SCORING)
    versions = {a["model_version"] for a in alerts}
    assert versions == {trained["model_version"]}, versions
    assert any(any(r.startswith("model:") for r in a["reasons"]) for a in alerts), "the model itself raised alerts"


# [/template:streaming]
