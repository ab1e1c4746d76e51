"""daily_etl's transforms, each on a small inline DataFrame (one local[2] session for the whole run)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_jobs import daily_etl, quality, tables

DAY = date(2026, 11, 23)
START = 1_795_392_000_000  # 2026-11-23T00:00:00Z
END = START + 86_400_000 - 1
RAW_SCHEMA = (
    "txn_id STRING, card_id STRING, merchant_id STRING, mcc STRING, amount DECIMAL(12,2), currency STRING, "
    "country STRING, channel STRING, event_time BIGINT, event_date DATE, source_partition INT, "
    "source_offset BIGINT, ingested_at TIMESTAMP"
)


def raw_row(txn_id: str, amount: str = "10.00", currency: str = "EUR", **overrides: Any) -> dict[str, Any]:
    row = {
        "txn_id": txn_id,
        "card_id": "c1",
        "merchant_id": "m1",
        "mcc": "5411",
        "amount": Decimal(amount),
        "currency": currency,
        "country": "DE",
        "channel": "pos",
        "event_time": START + 1000,
        "event_date": DAY,
        "source_partition": 0,
        "source_offset": 0,
        "ingested_at": datetime(2026, 11, 23, 0, 0, 5),
    }
    row.update(overrides)
    return row


@pytest.fixture
def rates(spark: Any) -> Any:
    return spark.createDataFrame(
        [(DAY, "EUR", Decimal("1.08500000")), (DAY, "USD", Decimal("1.00000000"))],
        "rate_date DATE, currency STRING, usd_per_unit DECIMAL(18,8)",
    )


def test_price_in_usd_rounds_to_cents_and_leaves_unpriced_null(spark: Any, rates: Any) -> None:
    raw = spark.createDataFrame([raw_row("a", "10.01"), raw_row("b", "3.00", "SEK")], RAW_SCHEMA)
    priced = daily_etl.price_in_usd(raw, rates).select("txn_id", "amount_usd")
    expected = spark.createDataFrame(
        [("a", Decimal("10.86")), ("b", None)], "txn_id STRING, amount_usd DECIMAL(14,2)"
    )  # 10.01 * 1.085 = 10.86085
    assertDataFrameEqual(priced, expected)


def test_validate_names_the_first_broken_rule_and_keeps_every_row(spark: Any, rates: Any) -> None:
    raw = spark.createDataFrame(
        [
            raw_row("ok"),
            raw_row("neg", "-1.00"),
            raw_row("sek", currency="SEK"),
            raw_row("mcc", mcc="54x1"),
            raw_row("chan", channel="phone"),
            raw_row("late", event_time=START - 1),
            raw_row(None),
        ],
        RAW_SCHEMA,
    )
    valid, rejected = daily_etl.validate(daily_etl.price_in_usd(raw, rates), START, END)
    assert [r["txn_id"] for r in valid.collect()] == ["ok"]
    expected = spark.createDataFrame(
        [
            ("neg", "amount_out_of_range"),
            ("sek", "no_rate_for_currency"),
            ("mcc", "invalid_mcc"),
            ("chan", "invalid_channel"),
            ("late", "outside_day"),
            (None, "missing_id"),
        ],
        "txn_id STRING, reason STRING",
    )
    assertDataFrameEqual(rejected.select("txn_id", "reason"), expected)


def test_deduplicate_keeps_the_first_ingested_copy(spark: Any) -> None:
    raw = spark.createDataFrame(
        [
            raw_row("a", source_offset=7, ingested_at=datetime(2026, 11, 23, 0, 1)),
            raw_row("a", source_offset=3, ingested_at=datetime(2026, 11, 23, 0, 0, 30)),
            raw_row("b", source_offset=4),
        ],
        RAW_SCHEMA,
    )
    result = daily_etl.deduplicate(raw).select("txn_id", "source_offset")
    assertDataFrameEqual(result, spark.createDataFrame([("a", 3), ("b", 4)], "txn_id STRING, source_offset BIGINT"))


def test_latest_label_wins_so_a_chargeback_overturns_a_confirmation(spark: Any) -> None:
    labels = spark.createDataFrame(
        [("a", False, 100), ("a", True, 200), ("b", False, 50)], "txn_id STRING, is_fraud BOOLEAN, labeled_at BIGINT"
    )
    expected = spark.createDataFrame([("a", True, 200), ("b", False, 50)], labels.schema)
    assertDataFrameEqual(daily_etl.latest_labels(labels), expected)


def _silver(spark: Any, rows: list[tuple[Any, ...]]) -> Any:
    columns = "txn_id STRING, card_id STRING, merchant_id STRING, mcc STRING, amount_usd DECIMAL(14,2), "
    columns += "country STRING, is_fraud BOOLEAN, event_date DATE"
    return spark.createDataFrame([(*row, DAY) for row in rows], columns)


def test_gold_aggregates_count_each_transaction_once(spark: Any) -> None:
    silver = _silver(
        spark,
        [
            ("t1", "c1", "m1", "5411", Decimal("10.00"), "DE", None),
            ("t2", "c1", "m1", "5411", Decimal("5.50"), "FR", True),
            ("t3", "c2", "m2", "7995", Decimal("100.00"), "US", False),
        ],
    )
    merchants = daily_etl.merchant_daily(silver)
    assertDataFrameEqual(
        merchants,
        spark.createDataFrame(
            [
                (DAY, "m1", "5411", 2, Decimal("15.50"), 1, 1, 1, Decimal("5.50")),
                (DAY, "m2", "7995", 1, Decimal("100.00"), 1, 1, 0, Decimal("0.00")),
            ],
            merchants.schema,
        ),
    )
    cards = daily_etl.card_daily(silver)
    assertDataFrameEqual(
        cards,
        spark.createDataFrame(
            [
                (DAY, "c1", 2, Decimal("15.50"), Decimal("10.00"), 1, 2, 1),
                (DAY, "c2", 1, Decimal("100.00"), Decimal("100.00"), 1, 1, 0),
            ],
            cards.schema,
        ),
    )


def test_fraud_kpis_score_the_streams_alerts_against_the_labels(spark: Any) -> None:
    silver = _silver(
        spark,
        [
            ("t1", "c1", "m1", "5411", Decimal("10.00"), "DE", True),
            ("t2", "c1", "m1", "5411", Decimal("20.00"), "DE", True),
            ("t3", "c2", "m2", "5411", Decimal("30.00"), "DE", None),
            ("t4", "c2", "m2", "5411", Decimal("40.00"), "DE", False),
        ],
    )
    # t1 alerted twice (a duplicate alert must not count twice), t3 alerted but not fraud.
    alerts = spark.createDataFrame([("t1",), ("t1",), ("t3",)], "txn_id STRING")
    row = daily_etl.fraud_kpis_daily(silver, alerts).first()
    assert row is not None
    assert (row.txn_count, row.labeled_count, row.fraud_count, row.alert_count, row.alerted_fraud_count) == (
        4,
        3,
        2,
        2,
        1,
    )
    assert (row.fraud_rate, row.alert_precision, row.fraud_recall) == (0.5, 0.5, 0.5)
    assert row.fraud_amount_usd == Decimal("30.00")


def test_checksum_ignores_row_order_and_sees_any_changed_value(spark: Any) -> None:
    rows = [("a", 1), ("b", 2), ("c", 3)]
    schema = "k STRING, v INT"
    base = tables.content_checksum(spark.createDataFrame(rows, schema))
    assert tables.content_checksum(spark.createDataFrame(rows[::-1], schema)) == base
    assert tables.content_checksum(spark.createDataFrame([("a", 1), ("b", 2), ("c", 4)], schema)) != base


def test_checksum_covers_map_columns_whatever_their_order(spark: Any) -> None:
    """raw.fraud_decisions logs features as a map: maintenance checks its content before and after."""
    schema = "k STRING, features MAP<STRING, DOUBLE>"
    one = spark.createDataFrame([("a", {"x": 1.0, "y": 2.0})], schema)
    same = spark.createDataFrame([("a", {"y": 2.0, "x": 1.0})], schema)
    other = spark.createDataFrame([("a", {"x": 1.0, "y": 3.0})], schema)
    assert tables.content_checksum(one) == tables.content_checksum(same)
    assert tables.content_checksum(one) != tables.content_checksum(other)


@pytest.mark.parametrize(
    ("expectation", "column", "kwargs", "failing"),
    [
        ("expect_column_values_to_be_between", "v", {"min_value": 2, "max_value": 3}, ["a", "d"]),
        ("expect_column_values_to_be_in_set", "k", {"value_set": ["a", "b"]}, ["c", "d", "e"]),
        ("expect_column_values_to_not_be_null", "v", {}, ["e"]),
        ("expect_column_values_to_match_regex", "k", {"regex": "^[ab]$"}, ["c", "d", "e"]),
        ("expect_column_values_to_be_unique", "v", {}, ["b", "c"]),
        ("expect_column_proportion_of_unique_values_to_be_between", "v", {}, None),
    ],
)
def test_quarantine_selects_the_rows_a_failed_expectation_names(
    spark: Any, expectation: str, column: str, kwargs: dict[str, Any], failing: list[str] | None
) -> None:
    df = spark.createDataFrame([("a", 1), ("b", 2), ("c", 2), ("d", 9), ("e", None)], "k STRING, v INT")
    failure = quality.FailedExpectation(expectation, column, kwargs, "", 1, 1.0, None)
    rows = quality.failing_rows(df, failure)
    assert (None if rows is None else sorted(r["k"] for r in rows.collect())) == failing


def test_every_suite_is_valid_gx_and_explains_each_expectation() -> None:
    import great_expectations as gx

    names = sorted(path.stem for path in quality.SUITES_DIR.glob("*.json"))
    assert {"raw_transactions", "silver_transactions", "gold_merchant_daily", "training_set"} <= set(names)
    for name in names:
        definition = quality.load_suite(name)
        suite = gx.ExpectationSuite(name=definition["name"], expectations=definition["expectations"])
        assert suite.expectations, name
        assert all(e.get("meta", {}).get("why") for e in definition["expectations"]), f"{name}: say why"
