"""Faults with real processes while events flow, each reconciled by txn_id: nothing lost, nothing doubled.

`make chaos` (``.ci/run`` runs it after `make test`). Each streaming test sends generator traffic (with
late and malformed records) in the background, injects its fault mid-stream, lets the platform recover
the way it is documented to, and then reconciles:

- ``raw.transactions`` holds every valid produced txn_id exactly once, and ``raw.transactions_dlq`` every
  malformed record (lake_ingest, exactly once through Iceberg commits at checkpoints, of what the topics hold);
- the ``transactions_dlq`` topic holds every malformed record (at least once: repeats after a fault are
  counted, and dedupe on the source partition and offset);
- ``fraud_decisions`` holds a decision for every valid transaction (at least once: repeats after a fault are
  counted; deduplicated by txn_id none is missing), and so does ``raw.fraud_decisions``;
- ``fraud_alerts``, read committed, holds no txn_id twice, and every transaction whose transaction-only
  rules reach the alert threshold (a high-risk merchant category and a large amount: it alerts whatever the
  history or the model say) is there: alerts are neither duplicated nor lost.

Recovery is ``flink_lifecycle.ensure_running``, the code the ``flink_jobs`` DAG runs; the time reported
is from the fault to a completed checkpoint of every job after it. Each test's numbers are collected in
``conftest.FAULT_RESULTS``, printed at the end of the run and written to ``<HDP_HOME>/chaos-report.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from confluent_kafka import Producer
from fault_report import FAULT_RESULTS
from stream_checks import read_committed

from hybrid_platform import (  # one name per line: a generated project's longer package name still fits
    events,
    flink_lifecycle,
    flink_ops,
    generator,
    malformed_corpus,
    names,
    reconcile,
    runtime,
)
from hybrid_platform.config import PlatformConfig
from hybrid_platform.rules import DEFAULT_ALERT_THRESHOLD, RULES, rules_score

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

CHECKPOINT_MS = "1000"  # lake_ingest: a restart replays little and a run lands fast (fraud_scoring: 1 s)
RATE = 300  # events/s: steady traffic both jobs keep up with, so the faults are what is tested
STREAM_S = 45


@pytest.fixture(scope="module")
def jobs(streaming_runtime: PlatformConfig) -> Iterator[PlatformConfig]:
    cfg = streaming_runtime
    generator.ensure_topics(cfg, names.ALL_TOPICS)
    flink_ops.deploy(cfg, names.JOB_FRAUD_SCORING)
    flink_ops.deploy(cfg, names.JOB_LAKE_INGEST, ["--checkpoint-interval-ms", CHECKPOINT_MS])
    yield cfg
    for job in flink_ops.JOBS:
        flink_ops.cancel(cfg, job)


class Stream(threading.Thread):
    """The generator in the background, with the offsets it starts from (so only this run is reconciled)."""

    TOPICS = (
        names.TOPIC_TRANSACTIONS,
        names.TOPIC_FRAUD_ALERTS,
        names.TOPIC_FRAUD_DECISIONS,
        names.TOPIC_TRANSACTIONS_DLQ,
    )
    #: Valid txn_ids of every earlier run in this session: their last alerts may commit during a later run.
    earlier_txn_ids: ClassVar[set[str]] = set()

    def __init__(self, cfg: PlatformConfig, seed: int, rate: float = RATE, duration_s: float = STREAM_S) -> None:
        super().__init__(daemon=True)
        self.cfg, self.seed, self.rate, self.duration_s = cfg, seed, rate, duration_s
        self.since = {topic: reconcile.end_offsets(cfg, topic) for topic in self.TOPICS}
        self.report: generator.GeneratorReport | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.report = generator.produce(
                self.cfg,
                rate=self.rate,
                duration_s=self.duration_s,
                seed=self.seed,
                late_fraction=0.01,
                malformed_fraction=0.01,
            )
        except BaseException as error:
            self.error = error

    def finished(self) -> generator.GeneratorReport:
        self.join(timeout=self.duration_s + 300)
        assert self.error is None and self.report is not None, f"the generator failed: {self.error}"
        return self.report


#: Rules that read only the transaction (no per-card feature): their score is a floor for any decision.
TRANSACTION_ONLY_RULES = tuple(r for r in RULES if all(c.input in {"amount", "mcc"} for c in r.conditions))


def _must_alert(transactions: list[events.Transaction]) -> set[str]:
    """Transactions the transaction-only rules alone push over the threshold: no history and no model can
    score them lower (more rules only add evidence, a model only raises the score)."""
    return {
        t.txn_id
        for t in transactions
        if rules_score({}, float(t.amount), t.mcc, TRANSACTION_ONLY_RULES)[0] >= DEFAULT_ALERT_THRESHOLD
    }


def reconcile_stream(cfg: PlatformConfig, stream: Stream, fault: str, **measured: Any) -> dict[str, Any]:
    """Every check of the module docstring for one generator run; records and returns the numbers."""
    report = stream.finished()
    valid = set(report.txn_ids_valid)
    since = stream.since[names.TOPIC_TRANSACTIONS]
    lake = reconcile.wait_until_landed(cfg, valid, report.malformed_count, since, timeout_s=300)

    sent = [events.parse_transaction(m.value())[0] for m in read_committed(cfg, names.TOPIC_TRANSACTIONS, since)]
    must_alert = _must_alert([t for t in sent if t is not None and t.txn_id in valid])
    deadline = time.monotonic() + 180
    while True:  # alerts of the last events wait for fraud_scoring's next checkpoint to commit
        alerts = Counter(
            json.loads(m.value())["txn_id"]
            for m in read_committed(cfg, names.TOPIC_FRAUD_ALERTS, stream.since[names.TOPIC_FRAUD_ALERTS])
        )
        if must_alert <= set(alerts) or time.monotonic() > deadline:
            break
        time.sleep(3)
    decisions = Counter(
        json.loads(m.value())["txn_id"]
        for m in read_committed(cfg, names.TOPIC_FRAUD_DECISIONS, stream.since[names.TOPIC_FRAUD_DECISIONS])
    )
    dlq_topic = Counter(
        (record["source_partition"], record["source_offset"])
        for record in (
            json.loads(m.value())
            for m in read_committed(cfg, names.TOPIC_TRANSACTIONS_DLQ, stream.since[names.TOPIC_TRANSACTIONS_DLQ])
        )
        if record["source_topic"] == names.TOPIC_TRANSACTIONS
    )
    result = {
        "fault": fault,
        "produced_valid": len(valid),
        "produced_malformed": report.malformed_count,
        "landed": lake.valid_landed,
        "lost": len(valid) - lake.valid_landed,
        "duplicated": lake.duplicates,
        "dead_lettered_lake": lake.dead_lettered,
        "dead_lettered_topic": len(dlq_topic),
        "dead_letter_repeats": sum(dlq_topic.values()) - len(dlq_topic),
        "decided": len(set(decisions) & valid),
        "decisions_missing": len(valid - set(decisions)),
        "decision_repeats": sum(decisions.values()) - len(decisions),
        "decided_in_lake": lake.valid_decided,
        "alerts": sum(alerts.values()),
        "alert_duplicates": sum(alerts.values()) - len(alerts),
        "must_alert": len(must_alert),
        "must_alert_missing": len(must_alert - set(alerts)),
        "alerts_for_unknown_txns": len(set(alerts) - valid - Stream.earlier_txn_ids),
        "landed_after_s": lake.waited_s,
        **measured,
    }
    Stream.earlier_txn_ids |= valid
    FAULT_RESULTS.append(result)
    print(json.dumps(result))
    assert (result["lost"], result["duplicated"]) == (0, 0), result
    assert result["dead_lettered_lake"] == result["produced_malformed"] == result["dead_lettered_topic"], result
    assert result["decisions_missing"] == 0 and result["decided_in_lake"] == len(valid), result
    assert result["must_alert"] > 0 and result["must_alert_missing"] == 0, result
    assert result["alert_duplicates"] == 0 and result["alerts_for_unknown_txns"] == 0, result
    return result


def _kill(cfg: PlatformConfig, service: str) -> int:
    """``kill -9`` of a service's whole process session (a lost machine); returns the kill time (epoch ms)."""
    state = runtime.running(cfg, service)
    assert state is not None, f"{service} is not running"
    os.killpg(state.pid, signal.SIGKILL)
    killed_ms = int(time.time() * 1000)
    with contextlib.suppress(ChildProcessError):  # this process started it: reap it, as init would
        os.waitpid(state.pid, 0)
    return killed_ms


def _recover(cfg: PlatformConfig, fault_ms: int, fault_over_ms: int | None = None) -> dict[str, Any]:
    """``ensure_running`` for each job, then a checkpoint of each completed after the fault was over
    (``fault_over_ms``, default: at once); the recovery time is counted from the fault."""
    recovered: dict[str, Any] = {}
    for job in flink_ops.JOBS:
        result = flink_lifecycle.ensure_running(cfg, job)
        checkpoint = flink_lifecycle.await_checkpoint(cfg, result.job_id, fault_over_ms or fault_ms, timeout_s=240)
        recovered[job] = {
            "actions": list(result.actions),
            "checkpointing_again_s": round((int(checkpoint["latest_ack_timestamp"]) - fault_ms) / 1000, 1),
        }
    return recovered


def _exceptions(cfg: PlatformConfig, job_id: str) -> int:
    """How many failures (restarts) the job has had: entries of its exception history."""
    history = flink_ops.request(cfg, "GET", f"/jobs/{job_id}/exceptions?maxExceptions=1000")
    return len((history.get("exceptionHistory") or {}).get("entries") or [])


def test_taskmanager_killed_mid_stream(jobs: PlatformConfig) -> None:
    cfg = jobs
    stream = Stream(cfg, seed=701)
    time.sleep(12)
    killed_ms = _kill(cfg, "flink-taskmanager")
    recovered = _recover(cfg, killed_ms)
    assert runtime.running(cfg, "flink-taskmanager") is not None
    recovery_s = max(r["checkpointing_again_s"] for r in recovered.values())
    reconcile_stream(cfg, stream, "kill -9 TaskManager", recovery_s=recovery_s, recovery=recovered)


def test_jobmanager_killed_mid_stream(jobs: PlatformConfig) -> None:
    """Local mode has no JobManager HA: the lifecycle starts it again and restores each job from its newest
    retained checkpoint (clusters: Kubernetes HA in infra/k8s/flink, where the new leader recovers them)."""
    cfg = jobs
    before = {job: flink_ops.active_job(cfg, job) for job in flink_ops.JOBS}
    stream = Stream(cfg, seed=702)
    time.sleep(12)
    killed_ms = _kill(cfg, "flink-jobmanager")
    recovered = _recover(cfg, killed_ms)
    for job, old in before.items():
        now = flink_ops.active_job(cfg, job)
        assert old is not None and now is not None and now.job_id != old.job_id, "restored as a new run"
        assert recovered[job]["actions"][-1] == "restore", recovered
        restored = (flink_ops.checkpoints(cfg, now.job_id).get("latest") or {}).get("restored") or {}
        assert f"/flink/checkpoints/{old.job_id}/chk-" in restored.get("external_path", ""), restored
    recovery_s = max(r["checkpointing_again_s"] for r in recovered.values())
    reconcile_stream(cfg, stream, "kill -9 JobManager", recovery_s=recovery_s, recovery=recovered)


def test_kafka_broker_restarted_mid_stream(jobs: PlatformConfig) -> None:
    """The broker crashes (``kill -9``) and is back 10 s later: the generator's idempotent producer retries,
    the Flink jobs fail over by their restart strategy to the last checkpoint and abort their open Kafka
    transactions; nothing produced is lost, nothing is written twice."""
    cfg = jobs
    stream = Stream(cfg, seed=703)
    time.sleep(12)
    killed_ms = _kill(cfg, "kafka")
    time.sleep(10)
    runtime.up(cfg, only=["kafka"])
    back_ms = int(time.time() * 1000)
    recovered = _recover(cfg, killed_ms, back_ms)
    recovery_s = max(r["checkpointing_again_s"] for r in recovered.values())
    reconcile_stream(
        cfg,
        stream,
        "kill -9 Kafka broker, restarted",
        recovery_s=recovery_s,
        broker_back_s=round((back_ms - killed_ms) / 1000, 1),
        recovery=recovered,
    )


class Burst(Stream):
    """``count`` records from a traffic pool as fast as Kafka takes them: far above what the job sustains."""

    def __init__(self, cfg: PlatformConfig, count: int) -> None:
        self.count = count
        super().__init__(cfg, seed=704, rate=float(count), duration_s=1.0)

    def run(self) -> None:
        try:
            pool = generator.TrafficPool(704, rate=5_000, seconds=60)
            started = time.monotonic()
            ids = pool.burst(self.cfg, self.count)
            elapsed = time.monotonic() - started
            self.report = generator.GeneratorReport(
                counts={"valid": len(ids), "late": 0, "malformed": 0, "labels": 0, "fraud": pool.fraud},
                by_pattern={},
                by_defect={},
                txn_ids_valid=ids,
                target_rate=0.0,
                elapsed_s=round(elapsed, 1),
                achieved_rate=round(len(ids) / elapsed),
                max_behind_schedule_ms=0.0,
            )
        except BaseException as error:
            self.error = error


def test_overload_is_absorbed_by_backpressure_and_the_lag_drains(jobs: PlatformConfig) -> None:
    """A burst far above what fraud_scoring sustains on 2 cores: Kafka buffers it, backpressure slows the
    sources instead of dropping or failing, and the consumer lag drains once the burst ends."""
    cfg = jobs
    job_ids = {job: info.job_id for job in flink_ops.JOBS if (info := flink_ops.active_job(cfg, job))}
    failures_before = {job: _exceptions(cfg, job_id) for job, job_id in job_ids.items()}
    lag_samples: list[tuple[float, int]] = []
    stream = Burst(cfg, count=400_000)
    started = time.monotonic()
    backpressure: set[str] = set()
    while stream.is_alive():
        lag_samples.append((time.monotonic() - started, _lag(cfg)))
        backpressure.add(_source_backpressure(cfg, job_ids[names.JOB_FRAUD_SCORING]))
        time.sleep(1)
    burst_s = time.monotonic() - started
    report = stream.finished()
    drain_deadline = time.monotonic() + 600
    while (lag := _lag(cfg)) > 0:
        lag_samples.append((time.monotonic() - started, lag))
        assert time.monotonic() < drain_deadline, f"lag still {lag} records 10 min after the burst"
        time.sleep(1)
    drained_s = round(time.monotonic() - started - burst_s, 1)
    peak = max(lag for _, lag in lag_samples)
    for job, job_id in job_ids.items():
        info = flink_ops.active_job(cfg, job)
        assert info is not None and info.job_id == job_id, f"{job} was replaced"
        assert _exceptions(cfg, job_id) == failures_before[job], f"{job} failed and restarted under load"
    # The burst outran the job (else this tested nothing): at its peak the lag held seconds of input.
    assert peak > 20_000, f"peak lag {peak} records: the burst did not overload the job"
    reconcile_stream(
        cfg,
        stream,
        "overload burst",
        burst_records=report.counts["valid"],
        burst_rate_per_s=round(report.achieved_rate),
        burst_s=round(burst_s, 1),
        peak_lag_records=peak,
        source_backpressure_seen=sorted(backpressure),
        lag_drained_after_burst_s=drained_s,
        drain_rate_per_s=round(peak / drained_s) if drained_s else None,
    )


def _source_backpressure(cfg: PlatformConfig, job_id: str) -> str:
    """Flink's back-pressure level (ok / low / high) of the job's source: high while downstream is the limit."""
    source = flink_ops.request(cfg, "GET", f"/jobs/{job_id}")["vertices"][0]["id"]
    level: str = flink_ops.request(cfg, "GET", f"/jobs/{job_id}/vertices/{source}/backpressure").get(
        "backpressureLevel", "unknown"
    )
    return level


def _lag(cfg: PlatformConfig) -> int:
    """fraud_scoring's records behind on ``transactions`` (committed at its checkpoints)."""
    found = flink_lifecycle.consumer_lag(cfg, names.JOB_FRAUD_SCORING) or {}
    return found.get(names.TOPIC_TRANSACTIONS, 0)


def test_malformed_corpus_is_dead_lettered_and_the_job_keeps_running(jobs: PlatformConfig) -> None:
    """Every case of ``hybrid_platform.malformed_corpus`` through the real job: each malformed one reaches the
    DLQ topic and ``raw.transactions_dlq`` with its reason (records up to ~1 MB kept whole), each valid
    one lands, produced = valid + dead-lettered, and the same job runs on without a single restart."""
    cfg = jobs
    job_ids = {job: info.job_id for job in flink_ops.JOBS if (info := flink_ops.active_job(cfg, job))}
    failures_before = {job: _exceptions(cfg, job_id) for job, job_id in job_ids.items()}
    dlq_since = reconcile.end_offsets(cfg, names.TOPIC_TRANSACTIONS_DLQ)
    transactions_since = reconcile.end_offsets(cfg, names.TOPIC_TRANSACTIONS)
    cases = malformed_corpus.cases()
    first, second = malformed_corpus.duplicate_pair()
    cases += [malformed_corpus.Case("duplicate_a", first, None), malformed_corpus.Case("duplicate_b", second, None)]

    where: dict[str, tuple[int, int]] = {}
    producer = Producer({**cfg.kafka_client("producer"), "enable.idempotence": True})

    def delivered(name: str) -> Any:
        def callback(error: Any, message: Any) -> None:
            assert error is None, f"{name}: {error}"
            where[name] = (message.partition(), message.offset())

        return callback

    for case in cases:
        producer.produce(names.TOPIC_TRANSACTIONS, key=b"corpus", value=case.raw, on_delivery=delivered(case.name))
        producer.poll(0)
    assert producer.flush(60) == 0
    assert len(where) == len(cases)
    # A little traffic after the corpus: the job runs on (and a checkpoint commits the corpus's outputs).
    Stream(cfg, seed=705, rate=100, duration_s=8).finished()

    malformed = {where[c.name]: c for c in cases if c.expected_reason is not None}
    valid_ids = Counter(
        txn.txn_id for c in cases if c.expected_reason is None for txn in [events.parse_transaction(c.raw)[0]] if txn
    )
    assert len(malformed) + sum(valid_ids.values()) == len(cases), "every valid case parses"

    def dead_letters() -> dict[tuple[int, int], dict[str, Any]]:
        found = {}
        for message in read_committed(cfg, names.TOPIC_TRANSACTIONS_DLQ, dlq_since):
            record = json.loads(message.value())
            key = (record["source_partition"], record["source_offset"])
            if record["source_topic"] == names.TOPIC_TRANSACTIONS and key in malformed:
                assert key not in found, f"dead-lettered twice without a failure: {malformed[key].name}"
                found[key] = record
        return found

    deadline = time.monotonic() + 180
    while len(topic_dlq := dead_letters()) < len(malformed) and time.monotonic() < deadline:
        time.sleep(3)
    wrong = {
        malformed[key].name: record["reason"]
        for key, record in topic_dlq.items()
        if str(malformed[key].expected_reason) not in record["reason"]
    }
    assert not wrong, f"DLQ reasons that do not match the contract: {wrong}"
    missing = sorted(c.name for key, c in malformed.items() if key not in topic_dlq)
    assert not missing, f"malformed records never dead-lettered: {missing}"
    assert all(topic_dlq[where[c.name]]["original"] or c.raw == b"" for c in malformed.values())

    lake = reconcile.wait_until_landed(cfg, set(valid_ids), len(malformed), transactions_since, timeout_s=180)
    landed = Counter(
        r["txn_id"] for r in reconcile._scan(cfg, names.RAW_TRANSACTIONS, ("txn_id",)) if r["txn_id"] in valid_ids
    )
    assert landed == valid_ids, "each valid record lands as received (a duplicated txn_id twice)"
    lake_dlq = {
        (r["source_partition"], r["source_offset"]): r["reason"]
        for r in reconcile._scan(
            cfg, names.RAW_TRANSACTIONS_DLQ, ("source_topic", "source_partition", "source_offset", "reason")
        )
        if r["source_topic"] == names.TOPIC_TRANSACTIONS and (r["source_partition"], r["source_offset"]) in malformed
    }
    assert lake_dlq == {key: record["reason"] for key, record in topic_dlq.items()}

    restarts = {job: _exceptions(cfg, job_id) - failures_before[job] for job, job_id in job_ids.items()}
    for job, job_id in job_ids.items():
        info = flink_ops.active_job(cfg, job)
        assert info is not None and info.job_id == job_id and info.state == "RUNNING", f"{job} did not run on"
    assert not any(restarts.values()), f"a job failed on a record: {restarts}"
    largest = max(len(c.raw) for c in malformed.values())
    result = {
        "fault": "malformed corpus",
        "produced": len(cases),
        "valid_landed": sum(landed.values()),
        "dead_lettered": len(topic_dlq),
        "lost": len(cases) - sum(landed.values()) - len(topic_dlq),
        "largest_record_bytes": largest,
        "job_restarts": sum(restarts.values()),
        "landed_after_s": lake.waited_s,
    }
    FAULT_RESULTS.append(result)
    print(json.dumps(result))


def test_poison_pills_are_dead_lettered_and_no_job_stops(jobs: PlatformConfig) -> None:
    """What used to stop a job for good: a record that Kafka takes compressed but that is far larger than a DLQ
    record may be once unpacked, and records that are not JSON on the topics lake_ingest reads as JSON. Each
    reaches raw.transactions_dlq with its reason; neither job restarts."""
    cfg = jobs
    job_ids = {job: info.job_id for job in flink_ops.JOBS if (info := flink_ops.active_job(cfg, job))}
    failures_before = {job: _exceptions(cfg, job_id) for job, job_id in job_ids.items()}
    huge = b"\x00" * (5 * events.DLQ_MAX_ORIGINAL_BYTES)
    where: dict[str, tuple[str, int, int]] = {}
    dlq_since = reconcile.end_offsets(cfg, names.TOPIC_TRANSACTIONS_DLQ)
    # Compressed, the 5 MiB record is a few KB: within the broker's 1 MiB limit (the client checks the
    # record's unpacked size against its own message.max.bytes, raised here).
    # As the admin (a super user): the scoring job's own outputs are forged here, which no principal of the
    # platform but the job itself may write.
    producer = Producer({**cfg.kafka_client("admin"), "compression.type": "gzip", "message.max.bytes": 10_000_000})
    pills = [
        ("huge_unpacked", names.TOPIC_TRANSACTIONS, huge),
        ("not_json_alert", names.TOPIC_FRAUD_ALERTS, b"\x01 not json"),
        ("not_json_decision", names.TOPIC_FRAUD_DECISIONS, b"[1, 2"),
        ("not_json_dead_letter", names.TOPIC_TRANSACTIONS_DLQ, b"plain text"),
    ]
    for name, topic, value in pills:

        def delivered(error: Any, message: Any, name: str = name, topic: str = topic) -> None:
            assert error is None, f"{name}: {error}"
            where[name] = (topic, message.partition(), message.offset())

        producer.produce(topic, value=value, on_delivery=delivered)
    assert producer.flush(60) == 0 and len(where) == len(pills)
    Stream(cfg, seed=706, rate=100, duration_s=8).finished()  # the jobs run on; checkpoints commit

    def landed() -> dict[tuple[str, int, int], str]:
        rows = reconcile._scan(
            cfg, names.RAW_TRANSACTIONS_DLQ, ("source_topic", "source_partition", "source_offset", "reason")
        )
        wanted = set(where.values())
        return {
            key: r["reason"]
            for r in rows
            if (key := (r["source_topic"], r["source_partition"], r["source_offset"])) in wanted
        }

    deadline = time.monotonic() + 180
    while len(found := landed()) < len(pills) and time.monotonic() < deadline:
        time.sleep(3)
    missing = [name for name, _, _ in pills if where[name] not in found]
    assert not missing, f"poison pills never dead-lettered: {missing}"
    assert found[where["huge_unpacked"]].startswith(
        f"too_large; original truncated to its first {events.DLQ_MAX_ORIGINAL_BYTES} of {len(huge)} bytes"
    )
    for name in ("not_json_alert", "not_json_decision", "not_json_dead_letter"):
        assert found[where[name]] == "not a JSON object", (name, found[where[name]])
    letters = [m.value() for m in read_committed(cfg, names.TOPIC_TRANSACTIONS_DLQ, dlq_since)]
    huge_letter = [v for v in letters if v.startswith(b"{") and b'"too_large; original truncated' in v]
    assert huge_letter and len(huge_letter[0]) < events.DLQ_MAX_MESSAGE_BYTES

    restarts = {job: _exceptions(cfg, job_id) - failures_before[job] for job, job_id in job_ids.items()}
    for job, job_id in job_ids.items():
        info = flink_ops.active_job(cfg, job)
        assert info is not None and info.job_id == job_id and info.state == "RUNNING", f"{job} did not run on"
    assert not any(restarts.values()), f"a job failed on a poison pill: {restarts}"
    FAULT_RESULTS.append(
        {"fault": "poison pills", "records": len(pills), "dead_lettered": len(found), "job_restarts": 0}
    )
