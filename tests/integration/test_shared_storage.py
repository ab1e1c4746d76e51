"""One lakehouse, both ways: Spark writes what Flink reads, Flink writes what Spark reads; pyiceberg reads both."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_jobs import lakehouse_roundtrip

from hybrid_platform import demo, runtime
from hybrid_platform.config import REPO_ROOT, PlatformConfig

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tables() -> dict[str, str]:
    namespace = f"interop_{uuid.uuid4().hex[:8]}"
    return {"spark": f"{namespace}.from_spark", "flink": f"{namespace}.from_flink"}


def test_spark_writes_flink_reads_and_writes_back(
    local_runtime: PlatformConfig, spark: Any, tables: dict[str, str]
) -> None:
    lakehouse_roundtrip.write(spark, tables["spark"], count=2000)
    runtime.flink_run(
        local_runtime,
        REPO_ROOT / "flink_jobs" / "lakehouse_roundtrip.py",
        ["--source", tables["spark"], "--sink", tables["flink"]],
    )
    spark.catalog.clearCache()
    written_by_flink = spark.table(tables["flink"])
    expected = lakehouse_roundtrip.expected_from_flink(spark.table(tables["spark"]))
    assertDataFrameEqual(written_by_flink, expected)
    assert written_by_flink.count() == 2000


def test_pyiceberg_reads_both_tables(local_runtime: PlatformConfig, spark: Any, tables: dict[str, str]) -> None:
    counts = demo.pyiceberg_read(local_runtime, [tables["spark"], tables["flink"]])
    assert counts == {tables["spark"]: 2000, tables["flink"]: 2000}
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog(local_runtime.catalog.name, **local_runtime.catalog.pyiceberg_properties())
    rows = catalog.load_table(tables["flink"]).scan(row_filter="id == 7").to_arrow().to_pylist()
    assert rows == [
        {
            "id": 7,
            "name": "card-00007",
            "amount": lakehouse_roundtrip.sample_rows(7)[6][2] * 2,
            "written_by": "flink",
        }
    ]
    namespace = tables["spark"].split(".")[0]
    assert sorted(catalog.list_tables(namespace)) == [(namespace, "from_flink"), (namespace, "from_spark")]


def test_rerun_of_flink_job_replaces_rather_than_duplicates(
    local_runtime: PlatformConfig, spark: Any, tables: dict[str, str]
) -> None:
    runtime.flink_run(
        local_runtime,
        REPO_ROOT / "flink_jobs" / "lakehouse_roundtrip.py",
        ["--source", tables["spark"], "--sink", tables["flink"]],
    )
    assert spark.table(tables["flink"]).count() == 2000
