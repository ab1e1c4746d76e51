"""results.json -> REPORT.md with plots, and the headline table the README shows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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


def _s(stat: Any) -> str:
    if not isinstance(stat, dict) or stat.get("median") is None:
        return "—"
    return f"{stat['median']:.2f} s ({stat['min']:.2f} to {stat['max']:.2f}, n={stat['n']})"


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def headline(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, value, what it means) rows: the table the README shows."""
    legs = results.get("legs", {})
    rows: list[tuple[str, str, str]] = []
    floor = legs.get("kafka_floor", {}).get("by_linger_ms", {})
    floor_p99 = _med(floor.get("0", floor.get("5", {})).get("p99_ms")) if floor else None
    flink = legs.get("flink_streaming", {})
    spark = legs.get("spark_streaming", {})
    variant_rate = str(results.get("profile", {}).get("variant_rate", 1000))
    flink_at = flink.get("by_rate", {}).get(variant_rate, {})
    if floor:
        for linger, data in floor.items():
            rows.append(
                (
                    f"Kafka floor p50 / p99 / p99.9, linger.ms={linger}",
                    f"{_ms(_med(data['p50_ms']))} / {_ms(_med(data['p99_ms']))} / {_ms(_med(data['p999_ms']))}",
                    "plain producer -> consumer at the same rate: no engine can beat it",
                )
            )
    for rate, data in flink.get("by_rate", {}).items():
        p99 = _med(data.get("p99_ms"))
        overhead = f"; engine overhead {_ms(p99 - floor_p99)}" if p99 is not None and floor_p99 is not None else ""
        rows.append(
            (
                f"Flink fraud_scoring p50 / p99 at {int(rate):,}/s",
                f"{_ms(_med(data.get('p50_ms')))} / {_ms(p99)}{overhead}",
                "Kafka -> parse -> keyed event-time features -> score -> Kafka, exactly once"
                + ("" if data.get("kept_up") else " (fell behind)"),
            )
        )
    if flink.get("max_sustained_rate") is not None:
        rows.append(
            (
                "Flink max sustained rate",
                f"{flink['max_sustained_rate']:,}/s (highest tested {flink.get('max_rate_tested', 0):,}/s)",
                "latency flat from start to end of a run",
            )
        )
    for variant, data in flink.get("variants", {}).items():
        if variant == "thread":
            continue
        rows.append(
            (
                f"Flink variant `{variant}` p99 at {int(variant_rate):,}/s",
                _ms(_med(data.get("p99_ms"))),
                f"vs {_ms(_med(flink_at.get('p99_ms')))} for the production job (thread mode); Python mode in use: "
                f"{data.get('python_mode_in_use')}",
            )
        )
    for trigger, trigger_data in spark.get("by_trigger", {}).items():
        for rate, data in trigger_data.get("by_rate", {}).items():
            p99 = _med(data.get("p99_ms"))
            flink_p99 = _med(flink.get("by_rate", {}).get(rate, {}).get("p99_ms"))
            ratio = f"; Spark/Flink p99 = {p99 / flink_p99:.1f}x" if p99 and flink_p99 else ""
            rows.append(
                (
                    f"Spark Structured Streaming `{trigger}` p50 / p99 at {int(rate):,}/s",
                    f"{_ms(_med(data.get('p50_ms')))} / {_ms(p99)}{ratio}",
                    "same stream, features and rules; at-least-once sink"
                    + ("" if data.get("kept_up") else " (fell behind)"),
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
    return rows


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
        for pct in ("p50_ms", "p99_ms"):
            values = [_med(flink["by_rate"][str(r)].get(pct)) for r in rates]
            ax.plot(rates, values, marker="o", label=f"Flink {pct[:-3]}")
        for trigger, data in spark.get("by_trigger", {}).items():
            rate = data.get("rate")
            ax.scatter(
                [rate, rate],
                [_med(data.get("p50_ms")), _med(data.get("p99_ms"))],
                marker="s",
                label=f"Spark {trigger} p50/p99",
            )
        for linger, data in floor.items():
            ax.scatter(
                [legs["kafka_floor"]["rate"]],
                [_med(data.get("p99_ms"))],
                marker="x",
                label=f"Kafka floor p99 (linger {linger})",
            )
        ax.set_xlabel("events/s (open loop)")
        ax.set_ylabel("end-to-end latency (ms)")
        ax.set_yscale("log")
        ax.set_title("Latency percentiles vs rate")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "latency_vs_rate.png", dpi=110)
        plt.close(fig)
        written.append("latency_vs_rate.png")

        fig, ax = plt.subplots(figsize=(7, 4))
        series = {
            f"Flink {k} {results.get('profile', {}).get('variant_rate')}/s": v
            for k, v in flink.get("variants", {}).items()
        }
        for rate, data in flink.get("by_rate", {}).items():
            series.setdefault(f"Flink thread {rate}/s", data)
        for trigger, trigger_data in spark.get("by_trigger", {}).items():
            series.update({f"Spark {trigger} {r}/s": v for r, v in trigger_data.get("by_rate", {}).items()})
        for label, data in series.items():
            values = data.get("latencies_ms") or []
            if values:
                ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=label)
        ax.set_xscale("log")
        ax.set_xlabel("end-to-end latency (ms)")
        ax.set_ylabel("share of alerts")
        ax.set_title("CDF of end-to-end latency")
        ax.legend(fontsize=7)
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
    failed = {leg: data["error"] for leg, data in legs.items() if "error" in data}
    if failed:
        lines += ["", "## Legs that failed", ""] + [f"- `{leg}`: {error}" for leg, error in failed.items()]
    flink = legs.get("flink_streaming", {})
    if flink.get("settings"):
        lines += ["", "## Flink job settings, as the running job reported them", ""]
        lines += [f"- `{k}` = `{v}`" for k, v in sorted(flink["settings"].items())]
        lines.append(f"- Python execution mode actually in use: {flink.get('python_mode_in_use')}")
    orchestration = legs.get("orchestration", {})
    if orchestration.get("parse_s"):
        lines += ["", "## DAG parse times", "", "| DAG file | parse time |", "|---|---|"]
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
        load = flink.get("rss_mb_under_load", {})
        lines += [f"| {name} | {mb:,} | {load.get(name, '—')} |" for name, mb in foot["idle_rss_mb"].items()]
        if foot.get("demo"):
            lines += ["", f"`make demo` wall time: {foot['demo']}"]
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
