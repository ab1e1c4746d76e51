"""results.json -> REPORT.md with plots, and the headline table the README shows."""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

from bench import harness

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def _med(stat: Any) -> float | None:
    return stat.get("median") if isinstance(stat, dict) else None


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _spread_ms(stat: Any) -> str:
    if not isinstance(stat, dict) or stat.get("median") is None:
        return "—"
    return f"{_ms(stat['median'])} ({_ms(stat['min'])} to {_ms(stat['max'])}, n={stat['n']})"


def _range_ms(stat: Any) -> str:
    """The min-max over the repeats (the rerun interval is in REPORT.md's Repeatability table)."""
    if not isinstance(stat, dict) or stat.get("min") is None or stat.get("n", 0) < 2:
        return ""
    return f" ({_ms(stat['min'])}-{_ms(stat['max'])})"


def _s(stat: Any) -> str:
    if not isinstance(stat, dict) or stat.get("median") is None:
        return "—"
    return f"{stat['median']:.2f} s ({stat['min']:.2f} to {stat['max']:.2f}, n={stat['n']})"


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _slo(key: str) -> str:
    """'p99_under_50_ms' -> 'p99 < 50 ms'."""
    bound = int(key.removeprefix("p99_under_").removesuffix("_ms"))
    return f"p99 < {_ms(float(bound))}"


def _cpu_note(data: dict[str, Any]) -> str:
    """CPU per event of each Flink job, and the cores each service used, in one run at this rate."""
    per_event = data.get("us_per_event_by_job", {})
    cores = data.get("cores_by_service", {})
    if not per_event and not cores:
        return ""
    jobs = ", ".join(f"{job} {_med(stat):.0f} us" for job, stat in per_event.items() if _med(stat) is not None)
    services = ", ".join(f"{name} {_med(stat):.2f}" for name, stat in cores.items() if _med(stat))
    return f"; CPU per event: {jobs}; cores: {services}"


def headline(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, value, what it means) rows: the table the README shows."""
    legs = results.get("legs", {})
    rows: list[tuple[str, str, str]] = []
    floor = legs.get("kafka_floor", {}).get("by_linger_ms", {})
    flink = legs.get("flink_streaming", {})
    spark = legs.get("spark_streaming", {})
    if floor:
        for linger, data in floor.items():
            rows.append(
                (
                    f"Kafka floor p50 / p99 / p99.9, linger.ms={linger}",
                    f"{_ms(_med(data['p50_ms']))} / {_ms(_med(data['p99_ms']))}{_range_ms(data['p99_ms'])} / "
                    f"{_ms(_med(data['p999_ms']))}",
                    "plain producer -> consumer at the same rate: no engine can beat it",
                )
            )
    for rate, data in flink.get("by_rate", {}).items():
        decision = data.get("decision", {})
        if decision:
            rows.append(
                (
                    f"Flink decision p50 / p99 / p99.9 at {int(rate):,}/s (at least once)",
                    f"{_ms(_med(decision.get('p50_ms')))} / {_ms(_med(decision.get('p99_ms')))}"
                    f"{_range_ms(decision.get('p99_ms'))} / {_ms(_med(decision.get('p999_ms')))}",
                    "transaction sent -> decision appended to `fraud_decisions`; features as of arrival, rules, model"
                    + _cpu_note(data)
                    + ("" if decision.get("kept_up") else " (fell behind)"),
                )
            )
        visible = data.get("alert_visible", {})
        if visible:
            rows.append(
                (
                    f"Flink alert p50 / p99 at {int(rate):,}/s (exactly once)",
                    f"{_ms(_med(visible.get('p50_ms')))} / {_ms(_med(visible.get('p99_ms')))}"
                    f"{_range_ms(visible.get('p99_ms'))}",
                    "transaction sent -> alert visible to a read-committed reader of `fraud_alerts` "
                    f"(checkpoint {flink.get('settings', {}).get('checkpoints/config interval', '?')} ms)",
                )
            )
    prefill = flink.get("prefill", {})
    if prefill.get("heap_after_gc"):
        rows.append(
            (
                "Flink scorer state after the prefill",
                f"{prefill['heap_after_gc'].get('heap_used_mb')} MB heap in use after a full GC "
                f"({prefill.get('checkpoint', {}).get('full_state_mb')} MB checkpointed state)",
                f"{prefill['events']:,} events over {prefill['event_time_span_minutes']:g} min of event time, "
                f"decided at {prefill.get('events_per_s', 0):,}/s",
            )
        )
    for mode, bounds in flink.get("frontier", {}).items():
        rows.append(
            (
                f"Flink highest rate held, {mode}",
                ", ".join(
                    f"{_slo(key)}: " + (f"{b['rate']:,}/s ({b['per_core']:,}/s per core)" if b["rate"] else "none")
                    for key, b in bounds.items()
                ),
                "of the rates measured, p99 under the objective and latency flat",
            )
        )
    for trigger, trigger_data in spark.get("by_trigger", {}).items():
        for rate, data in trigger_data.get("by_rate", {}).items():
            decision = data.get("decision", {})
            p99 = _med(decision.get("p99_ms"))
            flink_p99 = _med(flink.get("by_rate", {}).get(rate, {}).get("decision", {}).get("p99_ms"))
            ratio = f"; Spark/Flink p99 = {p99 / flink_p99:.0f}x" if p99 and flink_p99 else ""
            rows.append(
                (
                    f"Spark Structured Streaming `{trigger}` decision p50 / p99 at {int(rate):,}/s (at least once)",
                    f"{_ms(_med(decision.get('p50_ms')))} / {_ms(p99)}{_range_ms(decision.get('p99_ms'))}{ratio}",
                    "same stream, features as of arrival and rules"
                    + ("" if decision.get("kept_up") else " (fell behind)"),
                )
            )
    if spark.get("realtime_mode"):
        rows.append(("Spark Real-Time Mode", str(spark["realtime_mode"]), ""))
    batch = legs.get("batch", {})
    for engine, data in batch.get("engines", {}).items():
        rows.append(
            (
                f"Batch ETL {engine} ({_num(batch.get('input_rows'))} rows), warm / cold",
                f"{_num(data.get('rows_per_s_warm'))} / {_num(data.get('rows_per_s_cold'))} rows/s",
                f"{_num(data.get('rows_per_s_per_core_warm'))} rows/s per core warm; {data.get('setting', '')}",
            )
        )
    if batch.get("ratios"):
        r = batch["ratios"]
        rows.append(
            (
                "Batch ratios (warm)",
                f"Spark/Flink {_num(r.get('spark_over_flink_warm'), 2)}x; "
                f"DuckDB/Spark {_num(r.get('duckdb_over_spark_warm'), 2)}x",
                "same result from every engine: " + ("yes" if batch.get("same_result_everywhere") else "NO"),
            )
        )
    ml = legs.get("ml", {})
    if ml.get("mllib"):
        rows.append(
            (
                "ML fit: MLlib vs scikit-learn",
                f"{_num(_med(ml['mllib']['fit_s_summary']), 1)} s vs {_num(_med(ml['sklearn']['fit_s_summary']), 1)} s",
                f"AUC-PR {ml['mllib']['auc_pr']:.3f} vs {ml['sklearn']['auc_pr']:.3f} "
                f"on {_num(ml['mllib']['train_rows'])} training rows",
            )
        )
    orchestration = legs.get("orchestration", {})
    if orchestration.get("parse_s"):
        slowest = max(orchestration["parse_s"].items(), key=lambda item: item[1]["median"] or 0)
        rows.append(("Slowest DAG file parse", f"{slowest[1]['median']:.3f} s ({slowest[0]})", "target <= 0.3 s"))
    run = orchestration.get("dag_run", {})
    if run:
        rows.append(
            (
                f"Airflow overhead in `{run.get('dag_id')}`",
                f"queued->running {_num(_med(run.get('queued_to_running_s')), 2)} s; "
                f"gap {_num(_med(run.get('gap_between_tasks_s')), 2)} s; "
                f"share {_num((run.get('airflow_share') or 0) * 100, 0)}%",
                f"run {run.get('run_wall_s')} s, tasks busy {run.get('tasks_busy_s')} s",
            )
        )
    foot = legs.get("footprint", {})
    if foot.get("idle_total_mb"):
        rows.append(("Resident memory, idle", f"{foot['idle_total_mb']:,} MB", "Kafka, Flink JM+TM, Airflow"))
    if foot.get("demo"):
        rows.append(("`make demo` wall time", demo_summary(foot["demo"]), "fresh clone, own state and ports"))
    return rows


def demo_summary(demo: dict[str, Any]) -> str:
    """'9 min 57 s with warm caches, 10 min 31 s with empty jar and uv caches', naming any that failed."""
    labels = {"warm_cache": "with warm caches", "empty_cache": "with empty jar and uv caches"}
    parts = []
    for key, timing in demo.items():
        minutes, seconds = divmod(round(timing["wall_s"]), 60)
        failed = f" (failed, exit {timing['exit_code']})" if timing.get("exit_code") else ""
        parts.append(f"{minutes} min {seconds} s {labels.get(key, key)}{failed}")
    return ", ".join(parts)


def headline_markdown(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    profile = results.get("profile", {})
    lines = [
        f"Measured {results.get('started_at', '')} by `make bench` (profile `{profile.get('name')}`, "
        f"{profile.get('repeats')} repeats, medians) on {machine.get('cores')} cores "
        f"({machine.get('cpu_model')}), {machine.get('memory_gb')} GB, git {machine.get('git_revision')}.",
        "",
        "| measure | result | notes |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in headline(results)]
    return "\n".join(lines)


def plots(results: dict[str, Any], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []
    legs = results.get("legs", {})
    flink = legs.get("flink_streaming", {})
    spark = legs.get("spark_streaming", {})
    floor = legs.get("kafka_floor", {}).get("by_linger_ms", {})

    if flink.get("by_rate") or spark.get("by_trigger"):
        fig, ax = plt.subplots(figsize=(7, 4))
        rates = sorted(int(r) for r in flink.get("by_rate", {}))
        for kind, label in (
            ("decision", "Flink decision (at least once)"),
            ("alert_visible", "Flink alert (exactly once)"),
        ):
            for pct, style in (("p50_ms", "-"), ("p99_ms", "--")):
                values = [_med(flink["by_rate"][str(r)].get(kind, {}).get(pct)) for r in rates]
                ax.plot(rates, values, marker="o", linestyle=style, label=f"{label} {pct[:-3]}")
        for trigger, trigger_data in spark.get("by_trigger", {}).items():
            spark_rates = sorted(int(r) for r in trigger_data.get("by_rate", {}))
            for pct, marker in (("p50_ms", "s"), ("p99_ms", "D")):
                ax.plot(
                    spark_rates,
                    [_med(trigger_data["by_rate"][str(r)].get("decision", {}).get(pct)) for r in spark_rates],
                    marker=marker,
                    linestyle=":",
                    label=f"Spark {trigger} decision {pct[:-3]}",
                )
        for linger, data in floor.items():
            floor_p99 = _med(data.get("p99_ms"))
            if floor_p99:
                ax.axhline(floor_p99, linestyle=":", color="grey", label=f"Kafka floor p99 (linger {linger})")
        ax.axhline(50, linestyle="-", color="red", linewidth=0.6, label="50 ms")
        ax.set_xlabel("events/s (open loop)")
        ax.set_ylabel("end-to-end latency (ms)")
        ax.set_yscale("log")
        ax.set_title("Latency percentiles vs rate, by guarantee")
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out_dir / "latency_vs_rate.png", dpi=110)
        plt.close(fig)
        written.append("latency_vs_rate.png")

        fig, ax = plt.subplots(figsize=(7, 4))
        series: dict[str, list[float]] = {}
        for rate, data in flink.get("by_rate", {}).items():
            series[f"Flink decision {rate}/s"] = data.get("decision", {}).get("cdf_ms", [])
            series[f"Flink exactly-once alert {rate}/s"] = data.get("alert_visible", {}).get("cdf_ms", [])
        for trigger, trigger_data in spark.get("by_trigger", {}).items():
            for rate, data in trigger_data.get("by_rate", {}).items():
                series[f"Spark {trigger} decision {rate}/s"] = data.get("decision", {}).get("cdf_ms", [])
        for label, values in series.items():
            if values:
                ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=label)
        ax.set_xscale("log")
        ax.set_xlabel("end-to-end latency (ms)")
        ax.set_ylabel("share of results")
        ax.set_title("CDF of end-to-end latency")
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out_dir / "latency_cdf.png", dpi=110)
        plt.close(fig)
        written.append("latency_cdf.png")

    batch = legs.get("batch", {}).get("engines", {})
    if batch:
        fig, ax = plt.subplots(figsize=(7, 4))
        names = list(batch)
        warm = [batch[n].get("rows_per_s_warm") or 0 for n in names]
        cold = [batch[n].get("rows_per_s_cold") or 0 for n in names]
        positions = range(len(names))
        ax.bar([p - 0.2 for p in positions], warm, width=0.4, label="warm")
        ax.bar([p + 0.2 for p in positions], cold, width=0.4, label="cold (incl. start)")
        ax.set_xticks(list(positions), names)
        ax.set_ylabel("input rows/s")
        ax.set_title(f"Daily ETL throughput, {legs['batch'].get('input_rows', 0):,} rows")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "batch_throughput.png", dpi=110)
        plt.close(fig)
        written.append("batch_throughput.png")
    return written


def write_report(results: dict[str, Any], out_dir: Path) -> Path:
    images = plots(results, out_dir)
    legs = results.get("legs", {})
    lines = [
        f"# Benchmark report ({results.get('profile', {}).get('name')} profile)",
        "",
        headline_markdown(results),
        "",
    ]
    lines += [f"![{name}]({name})" for name in images]
    lines += ["", "## Against the targets", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {target} | {measured} | {verdict} |" for target, measured, verdict in targets(results)]
    if legs.get("flink_streaming", {}).get("by_rate"):
        lines += [
            "",
            "Two latencies, each with its guarantee. **Decision** (at least once): the transaction's scheduled "
            "send time to the broker's append time of its decision on `fraud_decisions` (LogAppendTime): every "
            "transaction is a sample, and no reader's timing is in it. **Alert** (exactly once): the same send "
            "time to the moment a read-committed reader received the alert from `fraud_alerts`, i.e. after the "
            "checkpoint that commits it. Spark's Kafka sink is at least once: it compares with the decision "
            "latency. Production settings throughout (alert threshold 0.5); Kafka, both Flink jobs and Airflow "
            "run on the same cores as the traffic.",
        ]
    failed = {leg: data["error"] for leg, data in legs.items() if "error" in data}
    if failed:
        lines += ["", "## Legs that failed", ""] + [f"- `{leg}`: {error}" for leg, error in failed.items()]
    flink = legs.get("flink_streaming", {})
    if flink.get("settings"):
        lines += ["", "## Flink job settings, as the running job reported them", ""]
        lines += [f"- `{k}` = `{v}`" for k, v in sorted(flink["settings"].items())]
    if flink.get("by_rate"):
        lines += ["", "## CPU by service and by job (cores; us per event)", ""]
        lines += ["| rate | " + " | ".join(["services (cores)", "Flink jobs (us per event)", "harness (cores)"]) + " |"]
        lines += ["|---|---|---|---|"]
        for rate, data in flink["by_rate"].items():
            services = ", ".join(f"{k} {_med(v):.2f}" for k, v in data.get("cores_by_service", {}).items() if _med(v))
            jobs = ", ".join(
                f"{k} {_med(v):.0f}" for k, v in data.get("us_per_event_by_job", {}).items() if _med(v) is not None
            )
            harness_cores = ", ".join(f"{k} {_med(v):.2f}" for k, v in data.get("harness_cores", {}).items())
            lines.append(f"| {int(rate):,}/s | {services} | {jobs} | {harness_cores} |")
        if flink.get("prefill"):
            lines += ["", f"Prefill: `{flink['prefill']}`", "", f"Placement: `{flink.get('placement')}`"]
    orchestration = legs.get("orchestration", {})
    if orchestration.get("parse_s"):
        sampled_in = orchestration.get("parse_sampled_in_legs")
        where = f" One parse per leg, in: {', '.join(sampled_in)}." if sampled_in else ""
        lines += ["", "## DAG parse times", "", f"Airflow's `airflow dags report`.{where}", ""]
        lines += ["| DAG file | parse time |", "|---|---|"]
        lines += [f"| {name} | {_s(stat)} |" for name, stat in orchestration["parse_s"].items()]
    foot = legs.get("footprint", {})
    if foot.get("idle_rss_mb"):
        lines += [
            "",
            "## Resident memory (MB)",
            "",
            "| service | idle | under load (Flink at top rate) |",
            "|---|---|---|",
        ]
        load = flink.get("rss_mb", {})
        lines += [f"| {name} | {mb:,} | {load.get(name, '—')} |" for name, mb in foot["idle_rss_mb"].items()]
        if foot.get("demo"):
            lines += ["", f"`make demo` wall time from a fresh clone: {demo_summary(foot['demo'])}."]
    metrics = key_metrics(results)
    if metrics:
        lines += [
            "",
            "## Repeatability: what a rerun should report",
            "",
            "Each repeated measurement: its median, the min-max of its repeats, and the **rerun interval**, a 95% "
            "prediction interval for the median a second run would report (`harness.rerun_interval` gives the "
            "formula and why). It has two parts. The repeats' own spread (Student's t on their logs): the "
            "min-max of three repeats is no yardstick, since it holds a rerun's median of three only ~60% of "
            "the time even on a steady machine. And the machine's drift: a leg's repeats share the minutes it "
            "ran in, while a rerun meets this VM at another speed. "
            + drift_sentence(results.get("machine_drift"))
            + " DAG parse times are sampled once in every leg, so their spread already holds the drift. "
            "`--compare` holds a second run against this interval.",
            "",
            "| metric | median | min-max | n | rerun interval (95%) | from the repeats alone |",
            "|---|---|---|---|---|---|",
        ]
        for name, stat in metrics.items():
            lines.append(
                f"| {name} | {_g(stat['median'])} | {_g(stat['min'])}-{_g(stat['max'])} | {stat['n']} | "
                f"{_bounds_text(rerun_bounds(stat))} | {_bounds_text(_pair(stat.get('rerun_95_repeats_only')))} |"
            )
    speeds = {leg: data["reference_speed_ms"] for leg, data in legs.items() if data.get("reference_speed_ms")}
    if speeds:
        lines += [
            "",
            "## Machine speed in each leg",
            "",
            "A fixed single-threaded CPU loop timed in each leg, median of its rounds (ms; lower is faster): "
            + ", ".join(f"{leg} {ms:g}" for leg, ms in speeds.items())
            + ". A rough gauge of a VM whose speed drifts: one core at one moment per leg.",
        ]
    lines += [
        "",
        "## Configuration",
        "",
        "Everything else (every setting, seed, the raw values of every repeat) is in `results.json` beside this file.",
        "",
        "```",
        f"profile: {results.get('profile')}",
        f"machine: {results.get('machine')}",
        f"versions: {results.get('versions')}",
        "```",
    ]
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def update_readme(readme: Path, results: dict[str, Any]) -> bool:
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    block = f"{README_START}\n{headline_markdown(results)}\n{README_END}"
    readme.write_text(
        re.sub(re.escape(README_START) + r".*?" + re.escape(README_END), lambda _m: block, text, flags=re.S)
    )
    return True


# --------------------------------------------------------------------------------------------------
# The targets, and two runs held against each other

#: (target, how it is read from the results). Reported as measured, never asserted.
TARGET_TEXT = {
    "flink_p99_5000": "Flink decision p99 <= 50 ms at 5,000 events/s (at least once)",
    "flink_exactly_once": "Flink exactly-once alert p99 <= checkpoint interval + 150 ms at 5,000 events/s",
    "flink_cpu": "fraud_scoring CPU <= 0.1 ms per event at 5,000 events/s",
    "flink_vs_spark": "Spark Structured Streaming decision p99 >= 20x Flink's on the same stream and logic",
    "spark_vs_flink_batch": "Spark batch ETL at least 2x Flink batch throughput",
    "spark_vs_duckdb": "Spark batch ETL within 3x of DuckDB",
    "dag_parse": "each DAG file parses in <= 0.3 s",
}


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, met?) for the benchmark issue's targets; "not measured" when the profile has no such run."""
    legs = results.get("legs", {})
    flink = legs.get("flink_streaming", {}).get("by_rate", {})
    rows: list[tuple[str, str, str]] = []

    at_5000 = flink.get("5000", {})
    decision = at_5000.get("decision", {})
    p99 = _med(decision.get("p99_ms"))
    rows.append(
        (
            TARGET_TEXT["flink_p99_5000"],
            f"p99 {_ms(p99)}, p99.9 {_ms(_med(decision.get('p999_ms')))}"
            + ("" if decision.get("kept_up", True) else ", fell behind")
            if p99 is not None
            else "not measured",
            _verdict(p99 is not None and p99 <= 50 and decision.get("kept_up", False), p99 is not None),
        )
    )
    visible = at_5000.get("alert_visible", {})
    visible_p99 = _med(visible.get("p99_ms"))
    interval = legs.get("flink_streaming", {}).get("settings", {}).get("checkpoints/config interval")
    limit = float(interval) + 150 if interval else None
    rows.append(
        (
            TARGET_TEXT["flink_exactly_once"],
            f"p99 {_ms(visible_p99)} (limit {_ms(limit)})" if visible_p99 is not None else "not measured",
            _verdict(visible_p99 is not None and limit is not None and visible_p99 <= limit, visible_p99 is not None),
        )
    )
    cpu = _med(at_5000.get("us_per_event_by_job", {}).get("fraud_scoring"))
    rows.append(
        (
            TARGET_TEXT["flink_cpu"],
            f"{cpu:.0f} us per event" if cpu is not None else "not measured",
            _verdict(cpu is not None and cpu <= 100, cpu is not None),
        )
    )
    ratios = []
    for trigger, trigger_data in legs.get("spark_streaming", {}).get("by_trigger", {}).items():
        for rate, data in trigger_data.get("by_rate", {}).items():
            spark_p99 = _med(data.get("decision", {}).get("p99_ms"))
            flink_p99 = _med(flink.get(rate, {}).get("decision", {}).get("p99_ms"))
            if spark_p99 and flink_p99:
                ratios.append((trigger, int(rate), spark_p99 / flink_p99))
    worst = min(ratios, key=lambda r: r[2]) if ratios else None
    rows.append(
        (
            TARGET_TEXT["flink_vs_spark"],
            ", ".join(f"{t} at {r:,}/s: {x:.0f}x" for t, r, x in ratios) or "not measured",
            _verdict(worst is not None and worst[2] >= 20, worst is not None),
        )
    )
    batch_ratios = legs.get("batch", {}).get("ratios", {})
    spark_flink = batch_ratios.get("spark_over_flink_warm")
    rows.append(
        (
            TARGET_TEXT["spark_vs_flink_batch"],
            f"{spark_flink:.2f}x (warm)" if spark_flink else "not measured",
            _verdict(bool(spark_flink and spark_flink >= 2), spark_flink is not None),
        )
    )
    duck_spark = batch_ratios.get("duckdb_over_spark_warm")
    rows.append(
        (
            TARGET_TEXT["spark_vs_duckdb"],
            f"DuckDB {duck_spark:.2f}x faster (warm)" if duck_spark else "not measured",
            _verdict(bool(duck_spark and duck_spark <= 3), duck_spark is not None),
        )
    )
    parse = legs.get("orchestration", {}).get("parse_s", {})
    slowest = max((stat.get("max") or 0 for stat in parse.values()), default=None)
    rows.append(
        (
            TARGET_TEXT["dag_parse"],
            f"slowest {slowest:.3f} s (max over repeats)" if parse else "not measured",
            _verdict(bool(parse) and (slowest or 0) <= 0.3, bool(parse)),
        )
    )
    return rows


def _verdict(met: bool, measured: bool) -> str:
    return "—" if not measured else ("met" if met else "missed")


def key_metrics(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The repeated measurements (each a median, min-max and rerun interval), by a name stable across runs."""
    legs = results.get("legs", {})
    metrics: dict[str, dict[str, Any]] = {}
    for linger, data in legs.get("kafka_floor", {}).get("by_linger_ms", {}).items():
        metrics[f"Kafka floor p99 (ms), linger {linger}"] = data.get("p99_ms", {})
    flink = legs.get("flink_streaming", {})
    for rate, data in flink.get("by_rate", {}).items():
        metrics[f"Flink decision p50 (ms) at {rate}/s"] = data.get("decision", {}).get("p50_ms", {})
        metrics[f"Flink decision p99 (ms) at {rate}/s"] = data.get("decision", {}).get("p99_ms", {})
        metrics[f"Flink exactly-once p99 (ms) at {rate}/s"] = data.get("alert_visible", {}).get("p99_ms", {})
    for trigger, trigger_data in legs.get("spark_streaming", {}).get("by_trigger", {}).items():
        for rate, data in trigger_data.get("by_rate", {}).items():
            metrics[f"Spark {trigger} decision p99 (ms) at {rate}/s"] = data.get("decision", {}).get("p99_ms", {})
    for engine, data in legs.get("batch", {}).get("engines", {}).items():
        metrics[f"Batch {engine} warm (s)"] = data.get("warm_s", {})
        metrics[f"Batch {engine} cold (s)"] = data.get("cold_s", {})
    ml = legs.get("ml", {})
    for engine in ("mllib", "sklearn"):
        if isinstance(ml.get(engine), dict):
            metrics[f"ML {engine} fit (s)"] = ml[engine].get("fit_s_summary", {})
    for dag, stat in legs.get("orchestration", {}).get("parse_s", {}).items():
        metrics[f"Parse {dag} (s)"] = stat
    return {name: stat for name, stat in metrics.items() if isinstance(stat, dict) and stat.get("median") is not None}


def drift_sentence(drift: dict[str, Any] | None) -> str:
    """What the machine drift of a run was, in words."""
    if not drift:
        return "This run has no machine-drift reading (fewer than three legs), so its intervals hold the repeats only."
    alone = math.exp(harness._t_975(drift["df"]) * math.sqrt(2) * drift["log_sd"]) - 1
    return (
        f"This run's drift: the reference loop's time varied across its {drift['legs']} legs by a log standard "
        f"deviation of {drift['log_sd']:.3f}; on its own that widens a median's interval to about +-{alone:.0%}."
    )


def _pair(kept: Any) -> tuple[float, float] | None:
    return (kept[0], kept[1]) if kept else None


def _bounds_text(bounds: tuple[float, float] | None) -> str:
    return f"{_g(bounds[0])}-{_g(bounds[1])}" if bounds else "—"


def rerun_bounds(stat: dict[str, Any]) -> tuple[float, float] | None:
    """The stat's rerun interval; for results written before it was kept, rebuilt from the raw values around
    the stored median (those values were rounded to three decimals: no interval below 0.1)."""
    if "rerun_95" in stat:
        kept = stat["rerun_95"]
        return (kept[0], kept[1]) if kept else None
    values = stat.get("values", [])
    if not values or min(values) < 0.1:
        return None
    return harness.rerun_interval(values, centre=stat["median"])


def _within(stat: dict[str, Any], value: float, repeats_only: bool = False) -> bool | None:
    """Is value within the stat's rerun interval (or the part of it from the repeats alone)? None when the
    stat has none (one repeat, or a zero)."""
    bounds = _pair(stat.get("rerun_95_repeats_only")) if repeats_only else rerun_bounds(stat)
    return None if bounds is None else bounds[0] <= value <= bounds[1]


def _g(value: float) -> str:
    """Three significant digits, without exponents: 5,651 and 0.00206."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def compare(first: dict[str, Any], second: dict[str, Any]) -> list[dict[str, Any]]:
    """Each metric of two runs: is the second run's median within the first run's rerun interval (and back)?

    The min-max answer is kept beside it, for runs held against each other before the interval existed.
    """
    a, b = key_metrics(first), key_metrics(second)
    rows = []
    for name in [n for n in a if n in b]:
        sa, sb = a[name], b[name]
        rows.append(
            {
                "metric": name,
                "first": sa,
                "second": sb,
                "second_in_first_interval": _within(sa, sb["median"]),
                "first_in_second_interval": _within(sb, sa["median"]),
                "second_in_first_repeats_only": _within(sa, sb["median"], repeats_only=True),
                "first_in_second_repeats_only": _within(sb, sa["median"], repeats_only=True),
                "second_in_first_min_max": sa["min"] <= sb["median"] <= sa["max"],
                "first_in_second_min_max": sb["min"] <= sa["median"] <= sb["max"],
            }
        )
    return rows


#: Two runs whose reference loops differ by more than this ran on a machine of a different speed.
SAME_SPEED = 0.10


def reference_speed(results: dict[str, Any]) -> float | None:
    """The run's machine speed: median over its legs of the reference loop's time (ms), None before it was kept."""
    speeds = [data["reference_speed_ms"] for data in results.get("legs", {}).values() if data.get("reference_speed_ms")]
    return statistics.median(speeds) if speeds else None


def compare_markdown(first: dict[str, Any], second: dict[str, Any]) -> str:
    rows = compare(first, second)

    def count(*keys: str) -> int:
        return sum(1 for r in rows if all(r[k] for k in keys))

    def held(key: str) -> int:
        return sum(1 for r in rows if r[key] is not None)

    a_in_b, b_in_a = "first_in_second_interval", "second_in_first_interval"
    lines = [
        f"Run A {first.get('started_at')} (git {first.get('machine', {}).get('git_revision')}) vs "
        f"run B {second.get('started_at')} (git {second.get('machine', {}).get('git_revision')}): "
        f"{count(b_in_a)} of {held(b_in_a)} of B's medians lie within A's rerun interval, "
        f"{count(a_in_b)} of {held(a_in_b)} of A's within B's, {count(b_in_a, a_in_b)} both ways.",
        "",
        "The rerun interval is each run's 95% prediction interval for another run's median, from its repeats' "
        "spread and the machine's drift between its legs (REPORT.md, Repeatability): where the model holds, "
        "about one median in twenty lands outside it. Against the part from the repeats alone: "
        f"{count('second_in_first_repeats_only')} of B's medians in A's, {count('first_in_second_repeats_only')} "
        f"of A's in B's, {count('second_in_first_repeats_only', 'first_in_second_repeats_only')} both ways. "
        f"Against the min-max of the repeats: {count('second_in_first_min_max')} of B's medians in A's, "
        f"{count('first_in_second_min_max')} of A's in B's, "
        f"{count('second_in_first_min_max', 'first_in_second_min_max')} both ways; three repeats' min-max "
        "holds a rerun's median only ~60% of the time on a steady machine.",
        "",
    ]
    speed_a, speed_b = reference_speed(first), reference_speed(second)
    if speed_a and speed_b:
        lines += [
            f"Machine speed (a fixed CPU loop in each leg, median over legs; a rough gauge): A {speed_a:g} ms, "
            f"B {speed_b:g} ms ({(speed_b - speed_a) / speed_a * 100:+.0f}%)."
            + (
                " The machine ran at different speeds: CPU-bound medians move by about as much, beyond what "
                "either run's repeats could show. Hold runs taken at the same speed against each other."
                if abs(speed_b - speed_a) / speed_a > SAME_SPEED
                else ""
            ),
            "",
        ]
    drift_a, drift_b = first.get("machine_drift"), second.get("machine_drift")
    if drift_a and drift_b:
        lines += [
            f"Machine drift between legs (log standard deviation of the loop's time across legs): A "
            f"{drift_a['log_sd']:.3f}, B {drift_b['log_sd']:.3f}.",
            "",
        ]
    lines += [
        "| metric | A median (rerun interval) | B median (rerun interval) | B - A | B in A's | A in B's | repeats "
        "alone (B in A's, A in B's) | min-max (B in A's, A in B's) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def fmt(stat: dict[str, Any]) -> str:
        bounds = rerun_bounds(stat)
        return f"{_g(stat['median'])} ({_g(bounds[0])}-{_g(bounds[1])})" if bounds else _g(stat["median"])

    def yes(flag: bool | None) -> str:
        return "n/a" if flag is None else "yes" if flag else "**no**"

    for r in rows:
        lines.append(
            f"| {r['metric']} | {fmt(r['first'])} | {fmt(r['second'])} | "
            f"{(r['second']['median'] - r['first']['median']) / r['first']['median'] * 100:+.0f}% | "
            f"{yes(r['second_in_first_interval'])} | {yes(r['first_in_second_interval'])} | "
            f"{yes(r['second_in_first_repeats_only'])}, {yes(r['first_in_second_repeats_only'])} | "
            f"{yes(r['second_in_first_min_max'])}, {yes(r['first_in_second_min_max'])} |"
        )
    return "\n".join(lines)
