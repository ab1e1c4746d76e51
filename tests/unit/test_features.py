"""The one feature definition renders the windows both engines must agree on."""

import itertools

from hybrid_platform import features


def test_feature_names_are_the_model_inputs_contract() -> None:
    assert features.FEATURE_NAMES == (
        "txn_count_1m",
        "amount_sum_1m",
        "distinct_countries_10m",
        "txn_count_1h",
        "amount_sum_1h",
        "seconds_since_prev_txn",
    )
    assert features.FEATURE_SPEC_VERSION == "card_features/v1"


def test_one_flink_stage_per_window_length_then_the_previous_event() -> None:
    stages = features.flink_feature_stages("on_time")
    assert [name for name, _ in stages] == ["features_60s", "features_600s", "features_3600s", "card_features"]
    first_sql = stages[0][1]
    assert "FROM on_time" in first_sql
    assert "RANGE BETWEEN INTERVAL '00:01:00' HOUR TO SECOND PRECEDING AND CURRENT ROW" in first_sql
    assert "PARTITION BY card_id ORDER BY event_ts" in first_sql
    assert "INTERVAL '01:00:00' HOUR TO SECOND" in stages[2][1]
    # Each stage reads the previous one, so every column and the time attribute flow through.
    assert all(f"FROM {previous}" in sql for (previous, _), (_, sql) in itertools.pairwise(stages))
    assert "ROWS BETWEEN 1 PRECEDING AND CURRENT ROW" in stages[-1][1]


def test_distinct_countries_uses_a_distinct_aggregate() -> None:
    ten_minutes = dict(features.flink_feature_stages("src"))["features_600s"]
    assert "COUNT(DISTINCT country) OVER w AS DOUBLE) AS distinct_countries_10m" in ten_minutes
