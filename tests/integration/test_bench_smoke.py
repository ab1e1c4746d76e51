"""`make bench` end to end on the tiny profile: the harness runs its legs on a private runtime and reports.

Numbers are not checked (performance belongs to the benchmark itself); that the legs ran, that the three
batch engines agree on the result, and that the report and plots were written, are.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import harness, report

pytestmark = pytest.mark.integration


def test_bench_smoke_profile_runs_end_to_end(tmp_path: Path, local_runtime: object) -> None:
    # local_runtime: the session's runtime is up first, so the bench proves it leaves other runtimes alone.
    out = tmp_path / "results"
    results = harness.run(harness.PROFILES["smoke"], out, home=tmp_path / "bench-home")
    report.write_report(results, out)
    legs = results["legs"]
    assert set(legs) == set(harness.PROFILES["smoke"].legs)
    assert not [leg for leg, data in legs.items() if "error" in data], {k: v.get("error") for k, v in legs.items()}
    floor = legs["kafka_floor"]["by_linger_ms"]["5"]
    assert floor["p99_ms"]["n"] == harness.PROFILES["smoke"].repeats and floor["p99_ms"]["median"] > 0
    batch = legs["batch"]
    assert batch["same_result_everywhere"], batch
    assert batch["input_rows"] >= harness.PROFILES["smoke"].batch_rows
    assert set(batch["engines"]) == {"spark", "flink_batch", "duckdb"}
    saved = json.loads((out / "results.json").read_text())
    assert saved["machine"]["cores"] and saved["versions"]["jars"]
    assert (out / "REPORT.md").read_text().count("| ") > 5 and (out / "batch_throughput.png").exists()
