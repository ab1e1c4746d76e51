"""The benchmark harness's own logic: statistics, keeping-up detection, scheduler latencies, the report."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

import pytest

from bench import etl_sql, harness, report
from bench.legs import scheduling_latencies
from bench.probe import latency_summary
from bench.streaming import frontier, job_of_thread, latency_stats


def test_summarize_gives_median_spread_and_rerun_interval() -> None:
    stat = harness.summarize([3.0, 1.0, 2.0, None])  # type: ignore[list-item]
    assert (stat["median"], stat["min"], stat["max"], stat["n"]) == pytest.approx((2.0, 1.0, 3.0, 3))
    low, high = stat["rerun_95"]
    assert low < 1.0 and high > 3.0  # three repeats this far apart pin a rerun's median down poorly
    assert harness.summarize([0.0023456])["values"] == [0.002346]  # significant digits, not decimals
    assert harness.summarize([5.0])["rerun_95"] is None  # no spread from one repeat
    assert harness.summarize([])["median"] is None


def test_rerun_interval_holds_a_rerun_median_where_min_max_does_not() -> None:
    """Two runs of three repeats each from one log-normal distribution (a steady machine): how often does the
    second run's median land in the first run's min-max, and how often in its rerun interval?"""
    rng = random.Random(11)

    def three() -> list[float]:
        return [math.exp(rng.gauss(6.5, 0.1)) for _ in range(3)]

    trials = 4000
    in_min_max = in_interval = 0
    for _ in range(trials):
        first, second = three(), three()
        rerun = statistics.median(second)
        in_min_max += min(first) <= rerun <= max(first)
        bounds = harness.rerun_interval(first)
        assert bounds is not None
        in_interval += bounds[0] <= rerun <= bounds[1]
    assert 0.55 < in_min_max / trials < 0.65
    assert 0.94 < in_interval / trials < 0.995  # 95% by design; the pi/2 factor errs on the wide side


def test_machine_drift_widens_the_interval_to_hold_a_rerun_on_a_drifting_machine() -> None:
    """Each leg of a run meets the machine at its own speed (a factor shared by all of the leg's repeats, and
    by the reference loop read in that leg): the repeats alone cannot show it, the drift term does."""
    rng = random.Random(5)
    legs, drift_sd, noise_sd = 7, 0.08, 0.03

    def run() -> tuple[list[float], dict[str, object]]:
        speeds = [rng.gauss(0, drift_sd) for _ in range(legs)]
        results = {"legs": {f"leg{i}": {"reference_speed_ms": 10 * math.exp(s)} for i, s in enumerate(speeds)}}
        return [math.exp(6.5 + speeds[0] + rng.gauss(0, noise_sd)) for _ in range(3)], results

    trials = 3000
    held_alone = held_with_drift = 0
    for _ in range(trials):
        (first, first_run), (second, _) = run(), run()
        rerun = statistics.median(second)
        alone = harness.rerun_interval(first)
        with_drift = harness.rerun_interval(first, drift=harness.machine_drift(first_run))
        assert alone is not None and with_drift is not None
        held_alone += alone[0] <= rerun <= alone[1]
        held_with_drift += with_drift[0] <= rerun <= with_drift[1]
    assert held_alone / trials < 0.8  # the repeats' spread is the noise within a leg, not between runs
    assert 0.94 < held_with_drift / trials < 0.995


def test_add_machine_drift_widens_every_interval_but_those_sampled_across_legs() -> None:
    results = {
        "legs": {
            "orchestration": {
                "reference_speed_ms": 9.0,
                "parse_s": harness.summarize_dag_parse([("a", {"d": 0.10}), ("b", {"d": 0.11}), ("c", {"d": 0.12})]),
            },
            "batch": {"reference_speed_ms": 10.0, "engines": {"spark": {"warm_s": harness.summarize([3.0, 3.1, 3.2])}}},
            "ml": {"reference_speed_ms": 11.0},
        }
    }
    assert harness.machine_drift({"legs": {"a": {"reference_speed_ms": 9.0}}}) is None  # too few legs
    harness.add_machine_drift(results)
    drift = results["machine_drift"]
    assert drift is not None and drift["df"] == 2 and 0.08 < drift["log_sd"] < 0.12
    warm = results["legs"]["batch"]["engines"]["spark"]["warm_s"]  # type: ignore[index]
    low, high = warm["rerun_95"]
    alone_low, alone_high = warm["rerun_95_repeats_only"]
    assert low < alone_low and high > alone_high
    parse = results["legs"]["orchestration"]["parse_s"]["d"]  # type: ignore[index]
    assert parse["rerun_95"] == parse["rerun_95_repeats_only"]
    again = json.loads(json.dumps(results))
    assert harness.add_machine_drift(again) == results  # idempotent: rebuilt from the values each time


def test_latency_stats_drop_the_warm_up_and_see_a_growing_backlog() -> None:
    start = 1_000_000.0
    flat = [[start + i * 10, 50.0 + (i % 7)] for i in range(1000)]
    stats = latency_stats(flat, start, warmup_s=2.0, duration_s=10.0)
    assert stats["samples"] == 800  # the first 2 s (200 samples at 10 ms apart) are warm-up
    assert stats["kept_up"] and 50 <= stats["p50_ms"] <= 56
    growing = [[start + i * 10, 50.0 + i * 5] for i in range(1000)]  # latency rises for the whole run
    assert not latency_stats(growing, start, warmup_s=0.0, duration_s=10.0)["kept_up"]
    assert latency_stats([], start, 0.0, 1.0) == {"samples": 0}


def test_scheduling_latencies_from_task_instances() -> None:
    tasks = [{"task_id": "a", "downstream_task_ids": ["b"]}, {"task_id": "b", "downstream_task_ids": []}]
    instances = [
        {
            "task_id": "a",
            "queued_when": "2026-01-01T00:00:00Z",
            "start_date": "2026-01-01T00:00:01Z",
            "end_date": "2026-01-01T00:00:11Z",
        },
        {
            "task_id": "b",
            "queued_when": "2026-01-01T00:00:12Z",
            "start_date": "2026-01-01T00:00:14Z",
            "end_date": "2026-01-01T00:00:24Z",
        },
    ]
    run = {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-01-01T00:00:25Z"}
    result = scheduling_latencies(instances, tasks, run)
    assert result["queued_to_running_s"]["median"] == pytest.approx(1.5)
    assert result["gap_between_tasks_s"]["values"] == [3.0]
    assert (result["tasks_busy_s"], result["airflow_share"]) == pytest.approx((20.0, 0.2))


def test_etl_query_names_the_tables_and_normalizes_rows() -> None:
    sql = etl_sql.etl_summary_sql("t.x", "t.r")
    assert "FROM t.x" in sql and "JOIN t.r" in sql and "ROW_NUMBER()" in sql
    assert etl_sql.normalize((3, 10, "12.5", 7)) == ["3", "10", "12.50", "7"]


def test_report_renders_every_leg(tmp_path: Path) -> None:
    results = {
        "profile": {"name": "quick", "repeats": 3},
        "machine": {"cores": 2, "cpu_model": "x", "memory_gb": 24, "git_revision": "abc"},
        "legs": {
            "kafka_floor": {
                "rate": 10000,
                "by_linger_ms": {"0": {k: harness.summarize([5, 6]) for k in ("p50_ms", "p99_ms", "p999_ms")}},
            },
            "flink_streaming": {
                "by_rate": {
                    "1000": {
                        "decision": {
                            **{k: harness.summarize([v]) for k, v in (("p50_ms", 6), ("p99_ms", 30), ("p999_ms", 60))},
                            "kept_up": True,
                            "cdf_ms": [3.0, 6.0, 30.0],
                        },
                        "alert_visible": {
                            **{k: harness.summarize([v]) for k, v in (("p50_ms", 600), ("p99_ms", 1100))},
                            "kept_up": True,
                            "cdf_ms": [500.0, 1100.0],
                        },
                        "us_per_event_by_job": {"fraud_scoring": harness.summarize([40])},
                        "cores_by_service": {"kafka": harness.summarize([0.1])},
                    }
                },
                "settings": {"checkpoints/config interval": "1000"},
                "frontier": {"decision (at least once)": {"p99_under_50_ms": {"rate": 1000, "per_core": 500}}},
            },
            "batch": {
                "input_rows": 1000,
                "engines": {"spark": {"rows_per_s_warm": 10, "rows_per_s_cold": 5}},
                "ratios": {"spark_over_flink_warm": 2.0},
                "same_result_everywhere": True,
            },
            "orchestration": {"parse_s": {"lakehouse_daily": harness.summarize([0.1])}},
            "ml": {"error": "RuntimeError: boom"},
        },
    }
    rows = report.headline(results)
    assert any(row[0] == "Flink decision p50 / p99 / p99.9 at 1,000/s (at least once)" for row in rows)
    assert any(row[0] == "Flink alert p50 / p99 at 1,000/s (exactly once)" and "1.10 s" in row[1] for row in rows)
    assert any("p99 < 50 ms: 1,000/s (500/s per core)" in row[1] for row in rows)
    path = report.write_report(results, tmp_path)
    text = path.read_text()
    assert "latency_vs_rate.png" in text and "batch_throughput.png" in text and "`ml`: RuntimeError: boom" in text
    assert "| Kafka floor p99 (ms), linger 0 | 5.5 | 5-6 | 2 |" in text  # the repeatability table
    assert (tmp_path / "latency_cdf.png").stat().st_size > 0
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\nrest\n")
    assert report.update_readme(readme, results)
    assert "\nold\n" not in readme.read_text() and "| measure | result | notes |" in readme.read_text()


def _run(p99s: list[float], warm: list[float]) -> dict[str, object]:
    return {
        "started_at": "t",
        "machine": {"git_revision": "abc"},
        "legs": {
            "flink_streaming": {
                "by_rate": {
                    "1000": {"decision": {"p50_ms": harness.summarize(p99s), "p99_ms": harness.summarize(p99s)}}
                }
            },
            "batch": {"engines": {"spark": {"warm_s": harness.summarize(warm), "cold_s": harness.summarize(warm)}}},
        },
    }


def test_compare_holds_each_median_against_the_other_runs_rerun_interval() -> None:
    first = _run([700, 750, 800], [2.5, 2.55, 2.6])
    second = _run([760, 790, 900], [4.0, 4.1, 4.2])
    rows = {row["metric"]: row for row in report.compare(first, second)}
    flink = rows["Flink decision p99 (ms) at 1000/s"]
    assert flink["second_in_first_interval"] and flink["first_in_second_interval"]
    assert not flink["first_in_second_min_max"]  # 750 below 760: min-max calls a 6% move a miss
    assert not rows["Batch spark warm (s)"]["second_in_first_interval"]  # 60% slower is a real change
    text = report.compare_markdown(first, second)
    assert "2 of 4 of B's medians lie within A's rerun interval" in text
    assert "2 of B's medians in A's, 0 of A's in B's" in text
    assert "Machine speed" not in text  # runs from before the reference loop was kept say nothing about it
    del first["legs"]["batch"]["engines"]["spark"]["warm_s"]["rerun_95"]  # type: ignore[index]
    assert report.compare(first, second) == list(rows.values())  # results from before: rebuilt from values


def test_compare_shows_how_much_slower_the_machine_was() -> None:
    first, second = _run([700], [2.5]), _run([700], [2.7])
    for run, speeds in ((first, (20.0, 22.0)), (second, (22.0, 22.0))):
        for leg, ms in zip(("flink_streaming", "batch"), speeds, strict=True):
            run["legs"][leg]["reference_speed_ms"] = ms  # type: ignore[index]
    assert report.reference_speed(first) == pytest.approx(21.0)
    assert "A 21 ms, B 22 ms (+5%)." in report.compare_markdown(first, second)
    assert "different speeds" not in report.compare_markdown(first, second)
    assert "| n/a | n/a |" in report.compare_markdown(first, second)  # one repeat: no interval, not a miss
    assert "0 of 0 of B's medians" in report.compare_markdown(first, second)
    second["legs"]["batch"]["reference_speed_ms"] = 30.0  # type: ignore[index]
    assert "ran at different speeds" in report.compare_markdown(first, second)


def test_dag_parse_samples_from_different_legs_make_one_spread_per_dag_file() -> None:
    samples = [
        ("orchestration", {"lakehouse_daily": 0.10, "flink_jobs": 0.05}),
        ("kafka_floor", {"lakehouse_daily": 0.12, "flink_jobs": 0.04}),
        ("ml", {"lakehouse_daily": 0.09}),  # a file missing from one sample still counts in the others
    ]
    parse = harness.summarize_dag_parse(samples)
    assert list(parse) == ["flink_jobs", "lakehouse_daily"]
    assert (parse["lakehouse_daily"]["median"], parse["lakehouse_daily"]["n"]) == pytest.approx((0.10, 3))
    assert (parse["flink_jobs"]["min"], parse["flink_jobs"]["max"]) == pytest.approx((0.04, 0.05))


def test_demo_wall_times_read_as_minutes_and_name_a_failure() -> None:
    demo = {"warm_cache": {"wall_s": 596.6, "exit_code": 0}, "empty_cache": {"wall_s": 630.9, "exit_code": 2}}
    assert report.demo_summary(demo) == (
        "9 min 57 s with warm caches, 10 min 31 s with empty jar and uv caches (failed, exit 2)"
    )


def test_reference_speed_is_a_positive_time() -> None:
    assert 0 < harness.reference_speed_ms(rounds=3) < 10_000
    assert 0 <= harness.wait_until_idle(timeout_s=1.0) <= 1  # the busy share of the cores it waited on


def test_targets_report_what_was_not_measured_instead_of_passing_it() -> None:
    results = {
        "legs": {
            "flink_streaming": {"by_rate": {"1000": {"decision": {"p99_ms": harness.summarize([100])}}}},
            "spark_streaming": {
                "by_trigger": {"asap": {"by_rate": {"1000": {"decision": {"p99_ms": harness.summarize([400])}}}}}
            },
            "batch": {"ratios": {"spark_over_flink_warm": 2.5, "duckdb_over_spark_warm": 7.9}},
            "orchestration": {"parse_s": {"a": harness.summarize([0.1, 0.2])}},
        }
    }
    verdicts = {target: (measured, verdict) for target, measured, verdict in report.targets(results)}
    assert verdicts[report.TARGET_TEXT["flink_p99_5000"]] == ("not measured", "—")
    assert verdicts[report.TARGET_TEXT["flink_vs_spark"]] == ("asap at 1,000/s: 4x", "missed")
    assert verdicts[report.TARGET_TEXT["spark_vs_flink_batch"]][1] == "met"
    assert verdicts[report.TARGET_TEXT["spark_vs_duckdb"]][1] == "missed"
    assert verdicts[report.TARGET_TEXT["dag_parse"]] == ("slowest 0.200 s (max over repeats)", "met")


def test_job_settings_are_read_from_the_line_fraud_scoring_prints() -> None:
    from bench import streaming

    from hybrid_platform.config import REPO_ROOT

    settings = (REPO_ROOT / "flink_jobs" / "lib" / "settings.py").read_text()
    assert f'JOB_SETTINGS_PREFIX = "{streaming.JOB_SETTINGS_PREFIX}"' in settings
    output = 'Job has been submitted with JobID abc\njob settings: {"pipeline.object-reuse": "true"}\n'
    assert streaming._printed_settings(output) == {"pipeline.object-reuse": "true"}
    assert streaming._printed_settings("no such line") == {}


def test_cdf_points_keep_the_extremes_and_bound_the_size() -> None:
    from bench.streaming import cdf_points

    values = [float(v) for v in range(10_000)]
    points = cdf_points(values, points=500)
    assert len(points) == 500 and (points[0], points[-1]) == pytest.approx((0, 9_999)) and points == sorted(points)
    assert cdf_points([1.0, 2.0]) == [1.0, 2.0]


def test_latency_summary_drops_the_warm_up_and_sees_a_growing_backlog() -> None:
    start = 1_000_000
    flat = [(start + i * 10, 5.0 + (i % 7)) for i in range(1000)]
    summary = latency_summary(flat, start, warmup_s=2.0)
    assert summary["samples"] == 800 and summary["kept_up"] and summary["p50_ms"] == pytest.approx(8.0)
    assert len(summary["cdf_ms"]) == 500
    growing = [(start + i * 10, 5.0 + i) for i in range(1000)]
    assert not latency_summary(growing, start, warmup_s=0.0)["kept_up"]
    assert latency_summary([], start, 0.0) == {"samples": 0}


def test_frontier_is_the_highest_rate_holding_each_objective() -> None:
    def at(p99: float, kept_up: bool = True) -> dict[str, object]:
        return {"decision": {"p99_ms": harness.summarize([p99]), "kept_up": kept_up}}

    by_rate = {"1000": at(20), "5000": at(45), "7500": at(400), "10000": at(900, kept_up=False)}
    bounds = frontier(by_rate, "decision", cores=2)
    assert bounds["p99_under_50_ms"] == {"rate": 5000, "per_core": 2500}
    assert bounds["p99_under_1000_ms"] == {"rate": 7500, "per_core": 3750}
    assert frontier({}, "decision", cores=2)["p99_under_50_ms"] == {"rate": None, "per_core": None}


def test_taskmanager_threads_are_attributed_to_their_job() -> None:
    vertices = {"fraud_scoring": ["Source: source: transactions", "decide on arrival"], "lake_ingest": ["Source: x"]}
    assert job_of_thread("decide on arrival -> (sink ...) (1/1)#0", vertices, ["fraud_scoring"]) == "fraud_scoring"
    assert job_of_thread("Source Data Fetcher for Source: x -> ...", vertices, ["lake_ingest"]) == "lake_ingest"
    assert job_of_thread("kafka-producer-network-thread | producer-fraud_scoring-alerts-0-1", vertices, []) == (
        "fraud_scoring"
    )
    assert job_of_thread("GC Thread#0", vertices, ["lake_ingest"]) == "lake_ingest"
    assert job_of_thread("GC Thread#0", vertices, ["lake_ingest", "fraud_scoring"]) == "shared"


def test_dag_parse_samples_are_taken_in_the_orchestration_leg_and_the_legs_the_profile_names() -> None:
    quick, full = harness.PROFILES["quick"], harness.PROFILES["full"]
    sampled = [leg for leg in harness.ALL_LEGS[1:] if harness.takes_parse_sample(quick, leg)]
    assert sampled == ["orchestration", "spark_streaming", "ml"]  # early, midway, last: as many as the repeats
    assert len(sampled) == quick.repeats
    assert all(harness.takes_parse_sample(full, leg) for leg in harness.ALL_LEGS[1:])


def test_spark_traffic_waits_for_the_line_the_job_prints_once_its_query_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    from bench import streaming
    from spark_jobs import streaming_scoring

    assert streaming.SPARK_JOB_NAME == streaming_scoring.JOB_NAME
    log = tmp_path / "job.log"
    prefix = f"{streaming.SPARK_JOB_NAME}: running ("
    with log.open("w") as out:
        job = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import time; time.sleep(0.5); print({prefix + 'asap)'!r}, flush=True); time.sleep(5)",
            ],
            stdout=out,
        )
        try:
            streaming._wait_for_line(log, prefix, job, timeout_s=20)
            assert job.poll() is None  # returned on the line, not on the exit
        finally:
            job.kill()
            job.wait()
    with log.open("w") as out:
        failed = subprocess.Popen([sys.executable, "-c", "print('no session'); raise SystemExit(3)"], stdout=out)
        with pytest.raises(RuntimeError, match="exit code 3"):
            streaming._wait_for_line(log, prefix, failed, timeout_s=20)
