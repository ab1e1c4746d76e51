"""fraud_scoring: every card transaction decided as it arrives, and every alert audited exactly once.

Long-lived job on the Flink session cluster (``hdp flink deploy fraud_scoring``):

- Kafka ``transactions`` (raw bytes, keyed by card); parsed and validated on arrival: malformed records go
  to ``transactions_dlq`` with the reason (at least once; ``(source_topic, source_partition,
  source_offset)`` identifies each), the job never fails on data;
- one keyed operator per card computes the card's features **as of arrival** (no watermark, no timer:
  ``hybrid_platform.features`` says what they mean) over a compact, bounded history, and scores them with
  the rules and the champion model from the registry;
- ``fraud_decisions``: one record per valid transaction, written the moment it is decided (approve /
  review / decline, score, reasons, model version and the features it was made on): **at least once**,
  ``txn_id`` is the idempotency key readers deduplicate on. This is what a payment authorizer calls;
- ``fraud_alerts``: transactions at or above the alert threshold, through Kafka transactions committed at
  each checkpoint (every ``--checkpoint-interval-ms``): **exactly once** for read-committed readers. The
  audited record.

The operators are Java (``flink_jobs/jvm``, built by ``make setup``) configured from the Python
definitions (``hybrid_platform.decision_spec``): per-key state in Python cost ~20x the CPU per event here,
which 5,000 events/s on two shared cores cannot afford (``docs/decisions/0001-decide-on-arrival.md``).
The champion model changes only at checkpoints and its version is checkpointed, so a restore replays the
same decisions; a newly promoted model takes effect at the next checkpoint, without a restart.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flink_jobs.lib.settings import changelog_settings, print_settings

from hybrid_platform import config, decision_spec, events, flink_jar, kafka_auth, names
from hybrid_platform.model import registry_root
from hybrid_platform.rules import DEFAULT_ALERT_THRESHOLD

#: Exactly-once alerts become visible when a checkpoint completes; 1 s keeps that cheap (one Kafka
#: transaction per second, pooled ids) while decisions, at least once, do not wait for it.
DEFAULT_CHECKPOINT_INTERVAL_MS = 1000


def job_settings(cfg: config.PlatformConfig, job_name: str, checkpoint_interval_ms: int) -> dict[str, str]:
    """Settings that decide latency and guarantees (recorded here, not left to defaults)."""
    return {
        "pipeline.name": job_name,
        "execution.checkpointing.interval": f"{checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.min-pause": "0 ms",
        # A checkpoint that cannot finish in time fails the job and restarts it: this bounds how much the
        # at-least-once outputs may repeat after a failure (what was sent since the last checkpoint).
        "execution.checkpointing.timeout": "60 s",
        # Heap state with the changelog: a checkpoint uploads what changed since the last one, not the whole
        # per-card history (RocksDB: HDP_FLINK_STATE_BACKEND=rocksdb, for state larger than memory).
        "state.backend.type": cfg.flink_state_backend,
        "execution.checkpointing.incremental": "true",
        **changelog_settings(cfg),
        # The one network hop (keyBy card) flushes within a millisecond.
        "execution.buffer-timeout.interval": "1 ms",
        # Chained operators hand over records without copying them (none keeps a reference to its input).
        "pipeline.object-reuse": "true",
        # Room to rescale later: key groups are fixed by the first deployment.
        "pipeline.max-parallelism": "128",
    }


def pipeline_settings(cfg: config.PlatformConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Topics, Kafka, consumer group and registry of this run: what the Java operators are given."""
    job = names.JOB_FRAUD_SCORING
    return {
        "bootstrap": cfg.kafka_bootstrap,
        "kafka_properties": {
            "max.request.size": str(events.DLQ_MAX_MESSAGE_BYTES),
            **cfg.kafka_java("fraud-scoring", shaded=kafka_auth.FLINK_SHADED),
        },
        "group_id": job,
        "start_from": args.start_from,
        "input_topic": names.TOPIC_TRANSACTIONS,
        "decisions_topic": names.TOPIC_FRAUD_DECISIONS,
        "alerts_topic": names.TOPIC_FRAUD_ALERTS,
        "dlq_topic": names.TOPIC_TRANSACTIONS_DLQ,
        "transactional_id_prefix": f"{job}-alerts",
        # Decisions are sent as they are made; a millisecond of batching halves the broker's requests.
        "decisions_linger_ms": "1",
        "registry_root": args.model_registry,
    }


def build_pipeline(env: Any, spec_json: str, settings: dict[str, Any]) -> None:
    """Add the job's operators (``dataplatform.flink.ScoringPipeline``) to the PyFlink environment ``env``."""
    from pyflink.java_gateway import get_gateway

    pipeline = get_gateway().jvm.dataplatform.flink.ScoringPipeline
    pipeline.build(env._j_stream_execution_environment, spec_json, json.dumps(settings))


def main(argv: Sequence[str] | None = None) -> int:
    import pyflink
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    cfg = config.load()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alert-threshold", type=float, default=DEFAULT_ALERT_THRESHOLD)
    parser.add_argument("--checkpoint-interval-ms", type=int, default=DEFAULT_CHECKPOINT_INTERVAL_MS)
    parser.add_argument("--model-registry", default=str(registry_root(cfg)))
    # group-offsets: resume where the job's consumer group left off (a new group starts at the earliest
    # record). latest-offset: only what arrives from now on (the benchmark's fresh deployments).
    parser.add_argument("--start-from", choices=["group-offsets", "latest-offset"], default="group-offsets")
    args = parser.parse_args(argv)
    if args.checkpoint_interval_ms < 100:
        parser.error("--checkpoint-interval-ms must be at least 100")
    try:
        spec_json = decision_spec.render(args.alert_threshold)
    except ValueError as error:
        parser.error(str(error))

    job = names.JOB_FRAUD_SCORING
    settings = job_settings(cfg, job, args.checkpoint_interval_ms)
    conf = Configuration()
    for key, value in settings.items():
        conf.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    jar = flink_jar.ensure_built(cfg, flink_home=Path(pyflink.__file__).parent)
    env.add_jars(jar.as_uri())
    build_pipeline(env, spec_json, pipeline_settings(cfg, args))
    print_settings({**settings, "alert_threshold": str(args.alert_threshold)})
    env.execute_async(job)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
