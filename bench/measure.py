"""What a leg measures with: profiles, the leg's context, and the statistics of repeated measurements.

Legs import this module, never ``bench.harness`` (which runs the legs): no import cycle.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid_platform import config, runtime


@dataclass(frozen=True)
class Profile:
    """What a run measures and how often. Every field lands in results.json."""

    name: str
    legs: tuple[str, ...]
    repeats: int  # independent repetitions of each measurement; medians, min-max and rerun interval over them
    seed: int = 7
    # Kafka floor: plain producer -> consumer, fixed rate, ~500-byte records.
    floor_rate: int = 10_000
    floor_duration_s: float = 8.0
    floor_record_bytes: int = 500
    floor_linger_ms: tuple[int, ...] = (0, 5)
    # The floor's p99 at linger.ms=0 swings 5-100 ms between runs seconds apart (10k single-record requests/s
    # on 2 cores): more, shorter runs than `repeats` so its spread shows that. None: `repeats`.
    floor_repeats: int | None = None
    # Streaming: open-loop rates from a fixed card population (a pool of pool_seconds of traffic at the top
    # rate, sent again with fresh ids and times), seconds per run, seconds of each run excluded as warm-up.
    stream_rates: tuple[int, ...] = (1000, 5000)
    stream_duration_s: float = 300.0
    stream_warmup_s: float = 10.0
    pool_seconds: float = 60.0
    # Unmeasured traffic at each rate before the measured runs (JIT, caches, the TaskManagers' heaps).
    stream_warm_up_s: float = 30.0
    # The scorer's state before any run: prefill_minutes of event time at the top rate, decided as fast as it
    # goes (per-card history as an hour of traffic leaves it, when 60).
    prefill_minutes: float = 60.0
    spark_triggers: tuple[str, ...] = ("asap", "1s")
    # Spark's Python state handles about a thousand events/s here: compared with Flink at a rate both sustain.
    spark_rates: tuple[int, ...] = (1000,)
    spark_duration_s: float = 60.0
    # Batch and ML. Each engine runs `repeats` fresh processes (cold: start-up included), each followed by
    # `batch_warm_runs` runs of the same query in that process (warm).
    batch_rows: int = 1_000_000
    batch_warm_runs: int = 3
    # DuckDB's warm query takes a third of a second: more runs per process cost nothing and steady the median
    # that stands for the process (one repeat).
    duckdb_warm_runs: int = 5
    ml_rows: int = 200_000
    # MLlib fits before the measured ones, in the same session: with one, the second fit was still the
    # slowest of the rest in each of the ten published quick runs (by 10-24%).
    mllib_warm_up_fits: int = 2
    # Unmeasured processes before the repeats, by engine: the session cluster's first batch job loads Iceberg's
    # and Parquet's classes into the TaskManager (its cold run took 22-28 s in every published quick run, later
    # ones 14-22 s), and DuckDB's first process reads its library from disk.
    batch_warm_up: tuple[str, ...] = ("flink_batch", "duckdb")
    # Legs after the orchestration leg that also take a DAG parse sample (None: every one). A sample is one
    # `airflow dags report`, 7 s of CLI start for a 0.1 s parse: a few legs spread over the run show the drift.
    dag_parse_legs: tuple[str, ...] | None = None
    # Orchestration: run lakehouse_daily end to end (minutes), or only a light DAG for scheduler latencies.
    orchestration_full_dag: bool = False
    orchestration_day_transactions: int = 5_000
    measure_demo: bool = False


# The Flink leg right after the orchestration leg: it keeps the Flink cluster those two started (one start less).
ALL_LEGS = ("footprint", "orchestration", "flink_streaming", "kafka_floor", "spark_streaming", "batch", "ml")

PROFILES: dict[str, Profile] = {
    # Every leg, fewer rates, no variants and shorter runs, in under 15 minutes on 2 cores: JVM starts, warm-ups
    # and one process per batch repeat are most of it (README, Benchmarks).
    "quick": Profile(
        name="quick",
        legs=ALL_LEGS,
        repeats=3,
        floor_duration_s=2.5,
        floor_repeats=3,
        # 1,000 and 5,000/s for a minute each after five minutes of prefilled state: the full profile holds
        # each rate for five minutes after an hour's worth.
        stream_rates=(1000, 5000),
        stream_duration_s=60.0,
        stream_warmup_s=5.0,
        stream_warm_up_s=20.0,
        prefill_minutes=5.0,
        spark_duration_s=45.0,
        # The 1 s trigger is the full profile's (its p99 sat within 15% of asap's in earlier quick runs).
        spark_triggers=("asap",),
        # DuckDB's only: Flink's first measured process was still the slowest of the three after its warm-up
        # job (30 s cold against 24 s on the slower host), and the median of three does not need it.
        batch_warm_up=("duckdb",),
        batch_warm_runs=1,
        duckdb_warm_runs=3,
        ml_rows=100_000,
        # Three parse samples, as many as the other repeats: early, midway and last.
        dag_parse_legs=("spark_streaming", "ml"),
    ),
    # The published numbers: longer runs, more rates, 10M batch rows, lakehouse_daily end to end, demo time.
    "full": Profile(
        name="full",
        legs=ALL_LEGS,
        repeats=3,
        floor_duration_s=20.0,
        stream_rates=(1000, 2000, 5000, 7500, 10000),
        stream_duration_s=300.0,
        stream_warmup_s=15.0,
        stream_warm_up_s=60.0,
        prefill_minutes=60.0,
        spark_rates=(1000, 2000),
        batch_rows=10_000_000,
        ml_rows=1_000_000,
        orchestration_full_dag=True,
        orchestration_day_transactions=20_000,
        measure_demo=True,
    ),
    # For the harness's own test: every code path that does not need minutes.
    "smoke": Profile(
        name="smoke",
        legs=("kafka_floor", "batch"),
        repeats=1,
        batch_warm_runs=1,
        floor_rate=500,
        floor_duration_s=2.0,
        floor_linger_ms=(5,),
        batch_rows=20_000,
        batch_warm_up=(),  # make test's time: the warm-up code is the measured runs' own
    ),
}


#: Student's t, two-sided 95% (0.975 quantile), by degrees of freedom; a df between entries takes the
#: smaller df's value, which is the wider interval.
_T_975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    30: 2.042,
    60: 2.000,
}


def _t_975(df: int) -> float:
    return _T_975[max(k for k in _T_975 if k <= df)]


def rerun_interval(
    values: Sequence[float], centre: float | None = None, drift: dict[str, Any] | None = None
) -> tuple[float, float] | None:
    """95% prediction interval for the median another run of the same n repeats would report.

    The min-max of three repeats holds the median of three more only ~60% of the time even on a steady
    machine (the bench's unit test shows it), so it is no yardstick for a rerun. This one is: on log values
    (timings are positive and vary by a factor, not a fixed amount), median +- t * sqrt(pi * s^2 / n + 2 * d^2).
    s is the standard deviation of the repeats' logs: for normal logs a median of n varies by at most pi/2
    times a mean's s^2/n (its large-n value; n = 3-6 is 1.19-1.43), and the difference of two independent
    medians by twice that, pi * s^2 / n. d (``drift``, see ``machine_drift``) is how much the machine's own
    speed moves between legs: a leg's repeats all share the minutes it ran in, so their spread cannot show
    that a rerun of the leg, at another hour, meets the machine at another speed; two runs' medians differ
    by that too (2 d^2). t is Student's at the Welch-Satterthwaite degrees of freedom of the two parts. Being
    95%, about one median in twenty lands outside even when the model holds. ``centre`` (default: the
    values' median) is for values stored rounded. None below two repeats or for a value <= 0.
    """
    clean = [float(v) for v in values if v is not None]
    if len(clean) < 2 or min(clean) <= 0:
        return None
    logs = [math.log(v) for v in clean]
    repeats_part = math.pi * statistics.variance(logs) / len(clean)
    drift_part = 2 * drift["log_sd"] ** 2 if drift else 0.0
    total = repeats_part + drift_part
    if total == 0:
        df = len(clean) - 1
    else:
        df_drift = drift["df"] if drift else 1
        df = int(total**2 / (repeats_part**2 / (len(clean) - 1) + drift_part**2 / df_drift))
    half = _t_975(max(1, df)) * math.sqrt(total)
    middle = math.log(centre if centre is not None else statistics.median(clean))
    return math.exp(middle - half), math.exp(middle + half)


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median, min-max and the rerun interval of repeated measurements; the raw values are kept too.

    The interval here is from the repeats alone; ``add_machine_drift`` widens it once the run knows how
    much the machine's speed moved between its legs.
    """
    clean = [float(v) for v in values if v is not None]
    if not clean:
        return {"median": None, "min": None, "max": None, "rerun_95": None, "n": 0, "values": []}
    interval = rerun_interval(clean)
    return {
        "median": statistics.median(clean),
        "min": min(clean),
        "max": max(clean),
        "rerun_95": _rounded(interval),
        "n": len(clean),
        # Four significant digits: a parse of 0.0023 s keeps its digits, a p99 of 812.4 ms loses nothing real.
        "values": [float(f"{v:.4g}") for v in clean],
    }


def _rounded(interval: tuple[float, float] | None) -> list[float] | None:
    return [float(f"{bound:.4g}") for bound in interval] if interval else None


def machine_drift(results: dict[str, Any]) -> dict[str, Any] | None:
    """How much the machine's speed moved between the run's legs: the standard deviation of the logs of the
    reference loop's time across legs (``reference_speed_ms``, one reading per leg), with its degrees of
    freedom. None below three legs with a reading.

    An upper bound of the drift a rerun meets: the legs run beside different services (Airflow's scheduler
    in two of them), which also moves the loop's time, by the same amount in every run.
    """
    speeds = [leg["reference_speed_ms"] for leg in results.get("legs", {}).values() if leg.get("reference_speed_ms")]
    if len(speeds) < 3:
        return None
    logs = [math.log(ms) for ms in speeds]
    return {"log_sd": round(statistics.stdev(logs), 4), "df": len(speeds) - 1, "legs": len(speeds)}


def _stats(node: Any) -> Generator[dict[str, Any]]:
    """Every summarized measurement in a results document."""
    if isinstance(node, dict):
        if "values" in node and "rerun_95" in node:
            yield node
            return
        for value in node.values():
            yield from _stats(value)
    elif isinstance(node, list):
        for value in node:
            yield from _stats(value)


def add_machine_drift(results: dict[str, Any]) -> dict[str, Any]:
    """Widen every measurement's rerun interval by the run's machine drift (``rerun_interval``), in place.

    Measurements sampled across the legs (``spans_legs``: DAG parse times) already hold the drift in their
    spread and keep the interval of their repeats. Idempotent: each interval is rebuilt from its values.
    """
    drift = machine_drift(results)
    results["machine_drift"] = drift
    orchestration = results.get("legs", {}).get("orchestration", {})
    if len(orchestration.get("parse_sampled_in_legs", [])) > 1:  # results written before spans_legs was kept
        for stat in orchestration.get("parse_s", {}).values():
            stat["spans_legs"] = True
    for stat in _stats(results.get("legs", {})):
        if stat.get("median") is None:
            continue
        own = rerun_interval(stat["values"], centre=stat["median"])
        stat["rerun_95_repeats_only"] = _rounded(own)
        spans_legs = stat.get("spans_legs", False)
        stat["rerun_95"] = _rounded(own if spans_legs else rerun_interval(stat["values"], stat["median"], drift))
    return results


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat; (0, 0) where there is none."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_until_idle(busy_below: float = 0.2, window_s: float = 0.5, timeout_s: float = 30.0) -> float:
    """Wait until the machine's cores are busy less than ``busy_below`` of the time over one ``window_s``, at
    most ``timeout_s``; returns the busy share of the last window (a JVM that has just started keeps both
    cores busy for seconds after its health check answers)."""
    deadline = time.monotonic() + timeout_s
    busy_share = 1.0
    while True:
        busy_before, total_before = _cpu_jiffies()
        time.sleep(window_s)
        busy_after, total_after = _cpu_jiffies()
        if total_after == total_before:
            return 0.0  # no /proc/stat: nothing to wait for
        busy_share = (busy_after - busy_before) / (total_after - total_before)
        if busy_share < busy_below or time.monotonic() > deadline:
            return round(busy_share, 3)


def reference_speed_ms(rounds: int = 15) -> float:
    """Median time of a fixed single-threaded CPU workload (~0.3 s), taken once a leg's services are set and
    the machine is idle (``wait_until_idle``).

    This machine is a VM whose speed drifts by 5-20% over minutes. A rough gauge only: one core's speed
    at a few moments, while a leg's figures depend on both cores over minutes. Taken on a busy machine it
    measured the services starting instead: a leg right after the Flink cluster started read 49.6 ms
    against 15.7-26.1 ms in the other legs of the run.
    """
    wait_until_idle()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for i in range(200_000):
            total += i * i
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


@dataclass
class Context:
    """What a leg gets: the profile, the private runtime's config, a log, and where to leave artefacts."""

    profile: Profile
    out_dir: Path
    echo: Callable[[str], None]
    cfg: config.PlatformConfig = field(init=False)
    #: The reference loop's time once the leg's services were set (see ``reference_speed_ms``).
    reference_speed_ms: float | None = field(init=False, default=None)
    #: The leg running now (set by ``run``).
    leg: str = field(init=False, default="")
    #: DAG parse times, one sample per leg from the orchestration leg on: [(leg, {dag file: seconds})].
    #: None until the orchestration leg starts sampling (Airflow's database exists from then on).
    dag_parse_samples: list[tuple[str, dict[str, float]]] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.cfg = config.load()

    def services(self, *names: str) -> None:
        """Exactly these services up (others stopped), so an idle neighbour is not part of a result."""
        wanted = set(names)
        running = {s.name.split("-")[0] for s in runtime.services() if runtime.running(self.cfg, s.name)}
        if running - wanted:
            runtime.down(self.cfg, echo=lambda _line: None, only=sorted(running - wanted))
        if wanted:
            runtime.up(self.cfg, only=sorted(wanted), echo=lambda _line: None)
        # Taken here, with exactly the leg's services up and idle, so two runs compare like with like
        # (taken before, it also timed the previous leg's services starting or stopping).
        self.reference_speed_ms = reference_speed_ms()
        if self.dag_parse_samples is not None and takes_parse_sample(self.profile, self.leg):
            # A parse takes a fraction of a second, so its repeats cost nothing but the CLI's start: one per leg
            # spreads them over the whole run, and their spread includes the machine's drift over minutes
            # (three parses back to back vary by 3% while the VM's speed moves by 10-20% between legs).
            self.dag_parse_samples.append((self.leg, dag_parse_times(self.cfg)))


def takes_parse_sample(profile: Profile, leg: str) -> bool:
    """Whether ``leg`` takes a DAG parse sample (the orchestration leg always; later legs by the profile)."""
    return leg == "orchestration" or profile.dag_parse_legs is None or leg in profile.dag_parse_legs


def dag_parse_times(cfg: config.PlatformConfig) -> dict[str, float]:
    """Seconds Airflow's own `airflow dags report` took to parse each DAG file (one parse each)."""
    env = {**os.environ, **runtime.airflow_env(cfg)}
    airflow = str(config.REPO_ROOT / ".venv" / "bin" / "airflow")
    done = subprocess.run(
        [airflow, "dags", "report", "--output", "json"], env=env, capture_output=True, text=True, check=True
    )
    report_line = next(line for line in done.stdout.splitlines() if line.startswith("[{"))  # after log lines
    times = {}
    for row in json.loads(report_line):
        # "duration" is the file's parse time, e.g. "0:00:00.116234"
        hours, minutes, seconds = str(row["duration"]).split(":")
        name = os.path.basename(str(row["file"])).removesuffix(".py")
        times[name] = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return times


def summarize_dag_parse(samples: Sequence[tuple[str, dict[str, float]]]) -> dict[str, Any]:
    """Per DAG file: median and spread over the samples, each taken in a different leg."""
    by_dag: dict[str, list[float]] = {}
    for _leg, times in samples:
        for name, seconds in times.items():
            by_dag.setdefault(name, []).append(seconds)
    # spans_legs: the samples' spread already includes the machine's drift between legs (add_machine_drift).
    return {name: {**summarize(values), "spans_legs": True} for name, values in sorted(by_dag.items())}
