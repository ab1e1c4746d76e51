"""Great Expectations gates for the batch path: run a versioned suite, report, and keep what failed.

Suites live in ``quality/suites/<name>.json`` (GX 1.x ExpectationSuite JSON, reviewed like code). Values
that depend on the run (the day's bounds, the priced currencies, silver's row count) are suite
parameters (``{"$PARAMETER": "day_start_ms"}``) filled in by the caller, so the files stay static.

A gate runs on an ephemeral GX context (nothing to configure, no files besides the Data Docs), renders
Data Docs under ``<HDP_HOME>/quality/data_docs``, and returns a ``GateResult`` whose ``summary()`` names
each failed expectation with its unexpected count. ``quarantine`` then keeps the failing rows, with the
reason, in ``quarantine.transactions`` and a JSON summary next to the docs: a failed gate loses nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs import tables

from hybrid_platform import config, names

SUITES_DIR = config.REPO_ROOT / "quality" / "suites"
#: Row-level expectations whose failing rows can be selected (and so quarantined) one by one.
ROW_LEVEL = {
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_be_unique",
}


class GateFailed(RuntimeError):
    """A quality gate failed: nothing was published. The message is the readable report."""

    def __init__(self, results: list[GateResult], quarantined_rows: int, summary_path: Path | None) -> None:
        self.results = results
        self.quarantined_rows = quarantined_rows
        self.summary_path = summary_path
        lines = [result.summary() for result in results if not result.success]
        lines.append(f"Quarantined {quarantined_rows:,} rows in {names.QUARANTINE_TRANSACTIONS}.")
        if summary_path is not None:
            lines.append(f"Summary: {summary_path}")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class FailedExpectation:
    type: str
    column: str | None
    kwargs: dict[str, Any]
    why: str
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: Any

    def describe(self) -> str:
        target = f" on {self.column}" if self.column else ""
        if self.unexpected_count is not None:
            share = f" ({self.unexpected_percent:.3f}%)" if self.unexpected_percent is not None else ""
            found = f"{self.unexpected_count:,} rows{share} failed"
        else:
            found = f"observed {self.observed_value!r}"
        return f"{self.type}{target}: {found} — {self.why}"


@dataclass(frozen=True)
class GateResult:
    suite: str
    table: str
    success: bool
    evaluated: int
    row_count: int
    failures: list[FailedExpectation] = field(default_factory=list)
    data_docs_path: str = ""

    def summary(self) -> str:
        verdict = "passed" if self.success else f"FAILED {len(self.failures)} of {self.evaluated} expectations"
        lines = [f"Gate {self.suite} on {self.table} ({self.row_count:,} rows): {verdict}"]
        lines += [f"  - {failure.describe()}" for failure in self.failures]
        if not self.success:
            lines.append(f"  Data Docs: {self.data_docs_path}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_suite(name: str) -> dict[str, Any]:
    path = SUITES_DIR / f"{name}.json"
    try:
        suite: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no quality suite {name!r}: expected {path}") from None
    return suite


def data_docs_dir(cfg: config.PlatformConfig) -> Path:
    return cfg.home / "quality" / "data_docs"


def _resolve(value: Any, parameters: Mapping[str, Any]) -> Any:
    if isinstance(value, dict) and set(value) == {"$PARAMETER"}:
        return parameters[value["$PARAMETER"]]
    return value


def run_gate(
    df: DataFrame,
    suite: str,
    parameters: Mapping[str, Any],
    cfg: config.PlatformConfig,
    run_id: str,
    table: str,
) -> GateResult:
    """Validate ``df`` against ``quality/suites/<suite>.json``; render Data Docs; never raises on failure."""
    import great_expectations as gx  # heavy (seconds): only where a gate actually runs
    from great_expectations.checkpoint.actions import UpdateDataDocsAction

    # GX logs every metric batch and draws progress bars; a job log needs the verdict only.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    definition = load_suite(suite)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]  # GX's TypedDict
    docs = data_docs_dir(cfg)
    for site in list(context.variables.data_docs_sites or {}):
        context.delete_data_docs_site(site)  # the default one points at a temp dir
    context.add_data_docs_site(
        site_name="platform",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    asset = context.data_sources.add_spark("lakehouse").add_dataframe_asset(table)
    batch = asset.add_batch_definition_whole_dataframe(run_id)
    expectation_suite = context.suites.add(
        gx.ExpectationSuite(name=definition["name"], expectations=definition["expectations"])
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite}-{run_id}", data=batch, suite=expectation_suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{suite}-{run_id}",
            validation_definitions=[validation],
            actions=[UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "SUMMARY"},
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": df}, expectation_parameters=dict(parameters))
    row_count = df.count()
    failures: list[FailedExpectation] = []
    evaluated = 0
    docs_page = str(docs / "index.html")
    for identifier, run_result in outcome.run_results.items():
        for page in context.get_docs_sites_urls(resource_identifier=identifier):
            docs_page = str(page["site_url"] or "").removeprefix("file://")
        for item in run_result.results:
            evaluated += 1
            if item.success:
                continue
            expectation = item.expectation_config
            if expectation is None:  # GX reports a result without its configuration only for errors it raised
                raise RuntimeError(f"{suite}: a validation result without its expectation: {item}")
            result = item.result or {}
            kwargs = {k: _resolve(v, parameters) for k, v in expectation.kwargs.items() if k != "batch_id"}
            failures.append(
                FailedExpectation(
                    type=expectation.type,
                    column=kwargs.get("column"),
                    kwargs=kwargs,
                    why=str((expectation.meta or {}).get("why", "")),
                    unexpected_count=result.get("unexpected_count"),
                    unexpected_percent=result.get("unexpected_percent"),
                    observed_value=result.get("observed_value"),
                )
            )
    return GateResult(suite, table, not failures, evaluated, row_count, failures, docs_page)


def failing_rows(df: DataFrame, failure: FailedExpectation) -> DataFrame | None:
    """The rows of ``df`` that broke a row-level expectation; None for table-level ones (counts, shares)."""
    if failure.type not in ROW_LEVEL or failure.column is None:
        return None
    column = F.col(failure.column)
    kwargs = failure.kwargs
    if failure.type == "expect_column_values_to_not_be_null":
        return df.where(column.isNull())
    if failure.type == "expect_column_values_to_be_unique":
        copies = F.count(F.lit(1)).over(Window.partitionBy(failure.column))
        return df.withColumn("_copies", copies).where(column.isNotNull() & (F.col("_copies") > 1)).drop("_copies")
    if failure.type == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        broken = F.lit(False)
        if low is not None:
            broken = broken | (column < F.lit(low))
        if high is not None:
            broken = broken | (column > F.lit(high))
        return df.where(column.isNotNull() & broken)
    if failure.type == "expect_column_values_to_be_in_set":
        return df.where(column.isNotNull() & ~column.isin(list(kwargs["value_set"])))
    return df.where(column.isNotNull() & ~column.rlike(kwargs["regex"]))


def quarantine_frame(df: DataFrame, logical_date: str, run_id: str, stage: str, reason: Any) -> DataFrame:
    """Rows in the shape of quarantine.transactions: the original row as JSON text, with why and when."""
    columns = df.columns
    return df.select(
        F.lit(logical_date).cast("date").alias("logical_date"),
        F.lit(run_id).alias("run_id"),
        F.lit(stage).alias("stage"),
        (reason if not isinstance(reason, str) else F.lit(reason)).alias("reason"),
        (F.col("txn_id").cast("string") if "txn_id" in columns else F.lit(None).cast("string")).alias("txn_id"),
        F.to_json(F.struct(*columns)).alias("record"),
        F.current_timestamp().alias("quarantined_at"),
    )


def quarantine(
    spark: SparkSession,
    failed: list[tuple[GateResult, DataFrame]],
    cfg: config.PlatformConfig,
    logical_date: str,
    run_id: str,
) -> tuple[int, Path]:
    """Keep the rows behind every failed row-level expectation and write the run's summary; returns both."""
    tables.ensure(spark, names.QUARANTINE_TRANSACTIONS)
    total = 0
    for result, df in failed:
        for failure in result.failures:
            rows = failing_rows(df, failure)
            if rows is None:
                continue
            reason = f"gate:{result.suite}:{failure.type}:{failure.column}"
            frame = quarantine_frame(rows, logical_date, run_id, f"gate:{result.table}", reason).cache()
            count = frame.count()
            if count:
                frame.writeTo(names.QUARANTINE_TRANSACTIONS).append()
            frame.unpersist()
            total += count
    summary_path = cfg.home / "quality" / "quarantine" / logical_date / f"{run_id}.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "logical_date": logical_date,
        "run_id": run_id,
        "quarantined_rows": total,
        "quarantine_table": names.QUARANTINE_TRANSACTIONS,
        "gates": [result.to_dict() for result, _ in failed],
    }
    summary_path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return total, summary_path
