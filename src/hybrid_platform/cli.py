"""``hdp``: the platform's command line (local runtime, jars, demo).

Every failure a user can cause or fix prints one line saying what to do and exits non-zero.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Sequence

from hybrid_platform import (
    airflow_client,
    config,
    demo,
    flink_jar,  # [template:streaming]
    flink_ops,  # [template:streaming]
    generator,
    jars,
    kafka_admin,
    kafka_auth,
    latency,  # [template:streaming]
    names,
    runtime,
)
from hybrid_platform.argparsing import OneLineParser, fraction, positive_int, positive_number
from hybrid_platform.java import JavaError

PORT_VARIABLES = (
    "ports: HDP_KAFKA_PORT (9092), HDP_KAFKA_CONTROLLER_PORT (9093), HDP_FLINK_PORT (8081), "
    "HDP_AIRFLOW_PORT (8080), HDP_SPARK_CONNECT_PORT (15002); state folder: HDP_HOME (.platform)"
)


def _mb(value: int) -> str:
    return f"{value / 2**20:,.0f} MB" if value else "-"


def cmd_up(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    jars.ensure_all(cfg.jar_cache, jars.sets_for(cfg.catalog), cfg.maven_repository)
    runtime.up(cfg, only=args.only or None)
    return cmd_status(argparse.Namespace(json=False), cfg)


def cmd_down(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    runtime.down(cfg)
    return 0


def cmd_status(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    report = runtime.status(cfg)
    total = sum(item.rss_bytes for item in report)
    if args.json:
        print(json.dumps({"services": [vars(item) for item in report], "total_rss_bytes": total}, indent=2))
    else:
        print(f"{'SERVICE':22} {'STATE':9} {'PID':>7} {'RSS':>9}  {'URL':40} DETAIL")
        for item in report:
            state = "healthy" if item.healthy else ("running" if item.pid else "down")
            if item.pid and not item.healthy:
                state = "unhealthy"
            pid = str(item.pid) if item.pid else "-"
            print(f"{item.name:22} {state:9} {pid:>7} {_mb(item.rss_bytes):>9}  {item.url:40} {item.detail}")
        print(f"{'total resident memory':41} {_mb(total):>9}")
        print(f"Airflow login: {cfg.airflow_user} / {cfg.airflow_password}   state: {cfg.home}")
    return 0


def cmd_jars(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    # Default: what this configuration needs; images name their sets (`--set spark --set cluster`).
    classpaths = jars.ensure_all(cfg.jar_cache, args.sets or jars.sets_for(cfg.catalog), cfg.maven_repository)
    for name, paths in sorted(classpaths.items()):
        print(f"{name}: {len(paths)} jar(s) verified in {cfg.jar_cache}")
    # [template:streaming]
    if "flink" in classpaths and cfg.flink_python.exists():
        print(f"flink operators: {flink_jar.ensure_built(cfg)}")
    # [/template:streaming]
    return 0


def cmd_demo(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    started = time.monotonic()
    config.demo_settings()  # a bad HDP_DEMO_* value stops here, before anything starts
    jars.ensure_all(cfg.jar_cache, jars.sets_for(cfg.catalog), cfg.maven_repository)
    runtime.up(cfg)
    summary = demo.run(cfg)  # [template:streaming]
    # [template:!streaming] demo.run(cfg)
    # [template:streaming]
    streamed = summary["stream + measure latency"]
    print(f"\nStreaming: {streamed['generated']}")
    print(f"Decision latency (at least once), transaction sent -> decision on fraud_decisions: {streamed['decision']}")
    print(f"Alert latency (exactly once), transaction sent -> alert read committed: {streamed['alert']}")
    print(f"Lake: {summary['lake reconciled']}\n")
    # [/template:streaming]
    cmd_status(argparse.Namespace(json=False), cfg)
    print(
        f"\nThe platform is up ({time.monotonic() - started:.0f}s). "
        f"Airflow UI {cfg.airflow_url} (login {cfg.airflow_user} / {cfg.airflow_password}), "
        f"Flink Web UI {cfg.flink_rest_url}, "  # [template:streaming]
        f"Kafka {cfg.kafka_bootstrap}. Stop it with `make down`."
    )
    return 0


def _service_prefix(text: str) -> str:
    known = [service.name for service in runtime.services()]
    if not any(name.startswith(text) for name in known):
        raise argparse.ArgumentTypeError(
            f"no service {text!r}; choose from kafka, flink, airflow (or {', '.join(known)})"
        )
    return text


def cmd_generate(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    if args.late_fraction + args.malformed_fraction >= 1:
        print("hdp generate: --late-fraction plus --malformed-fraction must be below 1", file=sys.stderr)
        return 2
    report = generator.produce(
        cfg,
        rate=args.rate,
        duration_s=args.duration,
        seed=args.seed,
        late_fraction=args.late_fraction,
        malformed_fraction=args.malformed_fraction,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


def cmd_kafka(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    created = generator.ensure_topics(cfg, names.ALL_TOPICS, args.partitions, args.replication_factor)
    print(f"topics: {', '.join(created) or 'all present'}")
    if not cfg.kafka_security.enabled:
        print("users and ACLs: none (HDP_KAFKA_SECURITY_PROTOCOL=plaintext)")
        return 0
    users = kafka_admin.ensure_principals(cfg)
    print(f"SCRAM users: {', '.join(users) or 'none (no principal password in this environment)'}")
    grants = sum(len(p.grants) for p in kafka_auth.PRINCIPALS)
    print(f"ACLs: {grants} granted to {len(kafka_auth.PRINCIPALS)} principals")
    return 0


# [template:streaming]
def check_flink_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options that argparse accepts but that would be silently ignored or applied to the wrong job."""
    if args.from_path is not None and args.action != "restore":
        parser.error("--from only applies to `hdp flink restore JOB --from URI`")
    if args.from_path is not None and args.job in (None, "all"):
        parser.error("a savepoint belongs to one job: name it, e.g. `hdp flink restore fraud_scoring --from URI`")
    if args.job_args and args.action not in ("deploy", "restore"):
        parser.error(f"--job-arg only applies to deploy and restore, not {args.action}")
    if args.action == "status" and args.job not in (None, "all"):
        parser.error("`hdp flink status` reports every job; give no job name")


def cmd_flink(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    jobs = list(flink_ops.JOBS) if args.job in (None, "all") else [args.job]
    if args.action == "status":
        for entry in flink_ops.status(cfg):
            print(json.dumps(entry))
        return 0
    for job in jobs:
        if args.action == "deploy":
            info, submitted = flink_ops.deploy(cfg, job, args=args.job_args)
            print(f"{job}: {'deployed' if submitted else 'already running'} ({info.job_id}, {info.state})")
        elif args.action == "savepoint":
            print(f"{job}: savepoint {flink_ops.savepoint(cfg, job)}")
        elif args.action == "stop":
            print(f"{job}: stopped with savepoint {flink_ops.stop(cfg, job)}")
        elif args.action == "restore":
            info, source = flink_ops.restore(cfg, job, from_path=args.from_path, args=args.job_args)
            print(f"{job}: restored from {source} ({info.job_id}, {info.state})")
    return 0


def cmd_latency(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    # Only what was given: else measure's defaults (Flink's topics).
    chosen = {k: v for k, v in (("alerts_topic", args.alerts_topic), ("decisions_topic", args.decisions_topic)) if v}
    report = latency.measure(cfg, args.duration, **chosen)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


# [/template:streaming]
#: ``hdp batch <job>`` -> the Spark job module whose ``main(argv, prog)`` runs it.
BATCH_JOBS = {
    "seed": "spark_jobs.seed_day",
    "etl": "spark_jobs.daily_etl",
    "train": "spark_jobs.train_fraud_model",  # [template:ml]
    "maintenance": "spark_jobs.maintenance",
}


def cmd_batch(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    import importlib

    # Imported here: pyspark (seconds to load) is needed by these commands only.
    job = importlib.import_module(BATCH_JOBS[args.job])
    result: int = job.main(args.job_args, prog=f"hdp batch {args.job}")
    return result


# [template:dbt]
def cmd_dbt(args: argparse.Namespace, cfg: config.PlatformConfig) -> int:
    from hybrid_platform import dbt_runner

    if not args.dbt_args:
        print("hdp dbt: give a dbt command, e.g. `hdp dbt build` or `hdp dbt docs generate`", file=sys.stderr)
        return 2
    if cfg.spark_remote and args.dbt_args[0] not in {"parse", "deps", "clean", "init"}:
        host, _, port = cfg.spark_remote.removeprefix("sc://").partition("/")[0].rpartition(":")
        if not runtime.port_open(host, int(port or 15002)):  # "localhost" for the runtime's own
            print(
                f"hdp dbt: no Spark Connect server at {cfg.spark_remote}; start one, e.g. `hdp up`, or set "
                "HDP_SPARK_REMOTE=none to run Spark in this process",
                file=sys.stderr,
            )
            return 2
    try:
        return 0 if dbt_runner.run(cfg, args.dbt_args) else 1
    except RuntimeError as error:
        print(f"hdp dbt: {error}", file=sys.stderr)
        return 1


# [/template:dbt]
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="hdp", description=__doc__, epilog=PORT_VARIABLES)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    up = sub.add_parser("up", help="start Kafka, Flink, the Iceberg catalog and Airflow (idempotent)")
    up.add_argument(
        "--only",
        nargs="+",
        type=_service_prefix,
        metavar="SERVICE",
        help="start only these (prefixes: kafka flink airflow)",
    )
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop everything `up` started, and nothing else").set_defaults(func=cmd_down)
    status = sub.add_parser(
        "status", help="what runs where: URLs, PIDs, health, resident memory", epilog=PORT_VARIABLES
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)
    sub.add_parser("demo", help="start the runtime and run the end-to-end scenario; leaves it up").set_defaults(
        func=cmd_demo
    )
    jar_sets = sub.add_parser("jars", help="fetch and verify the pinned JVM jars (jars.toml)")
    jar_sets.add_argument(
        "--set",
        dest="sets",
        action="append",
        choices=[*jars.LOCAL_SETS, jars.CLUSTER_SET],
        help="only this set (repeatable; default: the sets this configuration needs)",
    )
    jar_sets.set_defaults(func=cmd_jars)
    generate = sub.add_parser(
        "generate", help="send synthetic card payments (with fraud, late and malformed records) to Kafka"
    )
    generate.add_argument("--rate", type=positive_number, required=True, metavar="EV_PER_S", help="transactions/s")
    generate.add_argument("--duration", type=positive_number, required=True, metavar="S", help="seconds to run")
    generate.add_argument("--seed", type=int, default=42, help="same seed, same records (default 42)")
    generate.add_argument("--late-fraction", type=fraction, default=0.0, metavar="F", help="events 5-120 s late")
    generate.add_argument("--malformed-fraction", type=fraction, default=0.0, metavar="F", help="records to reject")
    generate.add_argument("--json", action="store_true", help="machine-readable report")
    generate.set_defaults(func=cmd_generate)
    kafka = sub.add_parser(
        "kafka",
        help="create the platform's topics, SCRAM users and ACLs as the admin principal (a cluster's setup Job)",
    )
    kafka.add_argument("action", choices=["setup"])
    kafka.add_argument("--partitions", type=positive_int, default=2, help="partitions of new topics (default 2)")
    kafka.add_argument("--replication-factor", type=positive_int, default=1, help="replicas of new topics (default 1)")
    kafka.set_defaults(func=cmd_kafka)
    # [template:streaming]
    flink = sub.add_parser("flink", help="lifecycle of the long-lived Flink jobs (through the REST API)")
    flink.add_argument("action", choices=["deploy", "status", "savepoint", "stop", "restore"])
    flink.add_argument("job", nargs="?", choices=[*flink_ops.JOBS, "all"], help="default: all jobs")
    flink.add_argument("--from", dest="from_path", help="restore: savepoint/checkpoint URI (default: the newest)")
    flink.add_argument("--job-arg", dest="job_args", action="append", default=[], help="passed to the job (repeatable)")
    flink.set_defaults(func=cmd_flink, check=lambda args: check_flink_args(flink, args))
    # [/template:streaming]
    batch = sub.add_parser(
        "batch",
        help="Spark batch jobs on the lakehouse: seed a day, daily ETL, model training, table maintenance",
        description="Run a Spark batch job in this process; `hdp batch <job> --help` lists its options.",
    )
    batch.add_argument("job", choices=list(BATCH_JOBS))
    batch.add_argument("job_args", nargs=argparse.REMAINDER, help="the job's options, e.g. --date 2026-11-23")
    batch.set_defaults(func=cmd_batch)
    # [template:dbt]
    dbt = sub.add_parser(
        "dbt",
        help="dbt on the lakehouse with the platform's profile, e.g. `hdp dbt build`, `hdp dbt docs generate`",
    )
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, help="dbt's own command and options")
    dbt.set_defaults(func=cmd_dbt)
    # [/template:dbt]
    # [template:streaming]
    measure = sub.add_parser(
        "latency", help="end-to-end latency: decisions (at least once) and alerts (exactly once, read committed)"
    )
    measure.add_argument("--duration", type=positive_number, default=30.0, metavar="S", help="seconds to measure")
    measure.add_argument("--json", action="store_true", help="machine-readable report")
    measure.add_argument(
        "--alerts-topic",
        metavar="TOPIC",
        help="alerts of which job (default fraud_alerts, Flink; fraud_alerts_spark for the Spark streaming job)",
    )
    measure.add_argument(
        "--decisions-topic",
        metavar="TOPIC",
        help="decisions of which job (default fraud_decisions, Flink; fraud_decisions_spark for Spark's)",
    )
    measure.set_defaults(func=cmd_latency)
    # [/template:streaming]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Progress shows line by line when the output is a file or a pipe too (CI, `make demo | tee`, a log
    # collector): Python block-buffers those, and a 10-minute demo would print nothing until its end.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    args = build_parser().parse_args(argv)
    if hasattr(args, "check"):
        args.check(args)  # exits with one line, like any other argument error
    try:
        cfg = config.load()
        result: int = args.func(args, cfg)
        return result
    except (
        config.ConfigError,
        jars.JarError,
        JavaError,
        runtime.RuntimeFailure,
        demo.DemoFailure,
        generator.GeneratorError,
        kafka_admin.KafkaAdminError,
        flink_ops.FlinkOpsError,  # [template:streaming]
        flink_jar.BuildError,  # [template:streaming]
        airflow_client.AirflowError,
    ) as exc:
        print(f"hdp {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
