from pathlib import Path

import pytest

from hybrid_platform import flink_ops
from hybrid_platform.latency import LatencyReport, percentile


def test_nearest_rank_percentiles_are_real_samples() -> None:
    values = [float(v) for v in range(1, 101)]
    # Identity, not closeness: the percentile is one of the measured samples (the 50th, the 99th, ...).
    assert percentile(values, 0.50) is values[49]
    assert percentile(values, 0.99) is values[98]
    assert percentile(values, 1.0) is values[99]
    single = [7.0]
    assert percentile(single, 0.99) is single[0]


def test_report_summary_without_samples_says_so() -> None:
    report = LatencyReport(10, 100, 0, 0, 10.0, None, None, None, None)
    assert report.summary().startswith("no alerts matched")


def test_local_uris_compare_in_flinks_form(tmp_path: Path) -> None:
    savepoint = tmp_path / "savepoint-abc123-1"
    savepoint.mkdir()
    assert flink_ops._flink_uri(savepoint) == f"file:{savepoint}"
    assert flink_ops._local_path(f"file:{savepoint}") == savepoint
    assert flink_ops._local_path(savepoint.as_uri()) == savepoint
    assert not flink_ops._restorable(f"file:{savepoint}"), "no _metadata: not restorable"
    (savepoint / "_metadata").write_bytes(b"x")
    assert flink_ops._restorable(f"file:{savepoint}")
    assert flink_ops._restorable("s3://bucket/savepoints/sp-1")


def test_unknown_job_is_one_clear_line() -> None:
    with pytest.raises(flink_ops.FlinkOpsError, match="unknown job 'nope'; choose one of: fraud_scoring, lake_ingest"):
        flink_ops._check_job("nope")
