from pathlib import Path

import pytest

from hybrid_platform import flink_ops
from hybrid_platform.latency import LatencyReport, Percentiles, percentile


def test_nearest_rank_percentiles_are_real_samples() -> None:
    values = [float(v) for v in range(1, 101)]
    # Identity, not closeness: the percentile is one of the measured samples (the 50th, the 99th, ...).
    assert percentile(values, 0.50) is values[49]
    assert percentile(values, 0.99) is values[98]
    assert percentile(values, 1.0) is values[99]
    single = [7.0]
    assert percentile(single, 0.99) is single[0]


def test_report_summary_without_samples_says_so() -> None:
    report = LatencyReport(10, 100, 0, Percentiles.of([5.0, 9.0]), Percentiles.of([]))
    assert report.summary().startswith("decisions (at least once): p50 5 ms")
    assert "alerts (exactly once, read committed): no samples" in report.summary()
    assert report.throughput_per_s == 10


def test_local_uris_compare_in_flinks_form(tmp_path: Path) -> None:
    savepoint = tmp_path / "savepoint-abc123-1"
    savepoint.mkdir()
    assert flink_ops._flink_uri(savepoint) == f"file:{savepoint}"
    assert flink_ops.local_path(f"file:{savepoint}") == savepoint
    assert flink_ops.local_path(savepoint.as_uri()) == savepoint
    assert not flink_ops._restorable(f"file:{savepoint}"), "no _metadata: not restorable"
    (savepoint / "_metadata").write_bytes(b"x")
    assert flink_ops._restorable(f"file:{savepoint}")
    assert flink_ops._restorable("s3://bucket/savepoints/sp-1")


def test_unknown_job_is_one_clear_line() -> None:
    with pytest.raises(flink_ops.FlinkOpsError, match="unknown job 'nope'; choose one of: fraud_scoring, lake_ingest"):
        flink_ops._check_job("nope")


class _FakeMessage:
    def __init__(self, value: bytes, timestamp_ms: int) -> None:
        self._value, self._timestamp_ms = value, timestamp_ms

    def error(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp_ms)


class _FakeConsumer:
    """Hands out its messages once, then nothing (a topic with no more traffic)."""

    def __init__(self, messages: list[_FakeMessage]) -> None:
        self.messages = messages

    def poll(self, timeout: float) -> _FakeMessage | None:
        return self.messages.pop(0) if self.messages else None

    def consume(self, count: int, timeout: float) -> list[_FakeMessage]:
        handed, self.messages = self.messages[:count], self.messages[count:]
        return handed

    def close(self) -> None:
        pass


@pytest.mark.parametrize("topics", [{}, {"decisions_topic": "d2", "alerts_topic": "a2"}], ids=["defaults", "given"])
def test_measure_times_decisions_by_the_broker_stamp_and_alerts_on_arrival(
    monkeypatch: pytest.MonkeyPatch, topics: dict[str, str]
) -> None:
    import time

    from hybrid_platform import config, latency, names

    sent = int(time.time() * 1000) - 250
    decision = f'{{"txn_id": "t1", "decision": "review", "source_ts": {sent}}}'.encode()
    opened: list[tuple[str, bool]] = []

    def fake_consumer(cfg: object, topic: str, start_ms: int, read_committed: bool, lazy: bool = False) -> object:
        opened.append((topic, read_committed))
        if read_committed:  # the alerts
            return _FakeConsumer([_FakeMessage(b'{"txn_id": "t1"}', 0)])
        # The same decision twice (at least once), appended 7 ms after it was sent.
        return _FakeConsumer([_FakeMessage(decision, sent + 7), _FakeMessage(decision, sent + 9)])

    monkeypatch.setattr(latency, "consumer_from", fake_consumer)
    report = latency.measure(config.load(), duration_s=0.1, grace_s=0.0, **topics)

    assert sorted(opened) == sorted(
        [
            (topics.get("decisions_topic", names.TOPIC_FRAUD_DECISIONS), False),
            (topics.get("alerts_topic", names.TOPIC_FRAUD_ALERTS), True),
        ]
    )
    assert report.decisions_seen == 1 and report.decision.p50_ms == 7
    assert report.alert.samples == 1 and report.alert.p50_ms is not None and report.alert.p50_ms >= 250
    assert "at least once" in report.summary() and "exactly once" in report.summary()


def test_latency_cli_takes_an_alerts_topic() -> None:
    from hybrid_platform import cli

    args = cli.build_parser().parse_args(["latency", "--alerts-topic", "fraud_alerts_spark", "--duration", "5"])
    assert args.alerts_topic == "fraud_alerts_spark"
    import inspect

    from hybrid_platform import latency, names

    # Without the option the CLI passes nothing and measure's own default applies: Flink's alerts.
    assert cli.build_parser().parse_args(["latency"]).alerts_topic is None
    assert inspect.signature(latency.measure).parameters["alerts_topic"].default == names.TOPIC_FRAUD_ALERTS


def test_a_savepoint_is_claimed_through_a_copy_and_a_checkpoint_is_not(tmp_path: Path) -> None:
    from hybrid_platform import config

    cfg = config.load({"HDP_HOME": str(tmp_path)})
    savepoint = tmp_path / "flink" / "savepoints" / "savepoint-abc123-0123456789ab"
    (savepoint / "op").mkdir(parents=True)
    (savepoint / "_metadata").write_bytes(b"meta")
    (savepoint / "op" / "state").write_bytes(b"state")
    uri = flink_ops.flink_uri(savepoint)
    assert flink_ops.is_savepoint(uri) and flink_ops.is_savepoint(uri + "/")
    assert not flink_ops.is_savepoint(f"file:{tmp_path}/flink/checkpoints/0123/chk-42")

    copy = flink_ops.claimable_copy(cfg, uri)

    copied = flink_ops.local_path(copy)
    assert copied.parent == tmp_path / "flink" / "claimed" and copied.name.startswith(savepoint.name)
    assert (copied / "_metadata").read_bytes() == b"meta" and (copied / "op" / "state").read_bytes() == b"state"
    # What the run claims (and Flink deletes) is the copy: the savepoint stays whole.
    import shutil

    shutil.rmtree(copied)
    assert (savepoint / "_metadata").exists() and (savepoint / "op" / "state").exists()


def test_a_latency_report_round_trips_through_its_json() -> None:
    import json

    report = LatencyReport(60.0, 60_000, 900, Percentiles.of([5.0, 9.0, 40.0]), Percentiles.of([500.0, 1000.0]))
    again = LatencyReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report and again.summary() == report.summary()


def test_orphan_cleanup_spares_what_the_oldest_restore_point_would_commit(tmp_path: Path) -> None:
    import json
    import os

    from hybrid_platform import config

    cfg = config.load({"HDP_HOME": str(tmp_path)})
    now_ms = 1_800_000_000_000
    assert flink_ops.orphan_min_age_hours(cfg, "lake_ingest", 24.0, now_ms) == pytest.approx(24.0), "as set"
    deployments = tmp_path / "flink" / "deployments"
    deployments.mkdir(parents=True)
    (deployments / "lake_ingest.json").write_text(json.dumps([{"job_id": "a" * 32, "args": []}]))
    checkpoint = tmp_path / "flink" / "checkpoints" / ("a" * 32) / "chk-7"
    checkpoint.mkdir(parents=True)
    (checkpoint / "_metadata").write_bytes(b"x")
    taken_s = (now_ms - 3 * 86_400_000) / 1000  # the job has been down for three days
    os.utime(checkpoint / "_metadata", (taken_s, taken_s))
    assert flink_ops.oldest_restore_point_ms(cfg, "lake_ingest") == now_ms - 3 * 86_400_000
    assert flink_ops.orphan_min_age_hours(cfg, "lake_ingest", 24.0, now_ms) == pytest.approx(73.0)
    assert flink_ops.orphan_min_age_hours(cfg, "lake_ingest", 100.0, now_ms) == pytest.approx(100.0)


def test_on_a_cluster_the_restore_points_are_found_where_the_jobmanager_keeps_them(tmp_path: Path) -> None:
    """Object storage: the directories come from the JobManager's configuration; unreachable, nothing is deleted."""
    import http.server
    import json
    import os
    import threading

    from hybrid_platform import config

    state = tmp_path / "remote-state"
    savepoint = state / "savepoints" / ("savepoint-" + "b" * 6 + "-1a2b3c")
    savepoint.mkdir(parents=True)
    (savepoint / "_metadata").write_bytes(b"x")
    taken_s = 1_700_000_000
    os.utime(savepoint / "_metadata", (taken_s, taken_s))
    stranger = state / "savepoints" / "savepoint-cccccc-9z"  # another job's: not this job's restore point
    stranger.mkdir()
    (stranger / "_metadata").write_bytes(b"x")
    os.utime(stranger / "_metadata", (1_600_000_000, 1_600_000_000))
    conf = [
        {"key": "execution.checkpointing.dir", "value": (state / "checkpoints").as_uri()},
        {"key": "execution.checkpointing.savepoint-dir", "value": (state / "savepoints").as_uri()},
    ]

    class JobManager(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(conf if self.path == "/jobmanager/config" else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), JobManager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"HDP_HOME": str(tmp_path), "HDP_WAREHOUSE": "s3://warehouse/lake"}
    try:
        cfg = config.load({**env, "HDP_FLINK_REST_URL": f"http://127.0.0.1:{server.server_port}"})
        deployments = tmp_path / "flink" / "deployments"
        deployments.mkdir(parents=True)
        (deployments / "lake_ingest.json").write_text(json.dumps([{"job_id": "b" * 32, "args": []}]))
        assert flink_ops.oldest_restore_point_ms(cfg, "lake_ingest") == taken_s * 1000
    finally:
        server.shutdown()
    unreachable = config.load({**env, "HDP_FLINK_REST_URL": f"http://127.0.0.1:{server.server_port}"})
    assert flink_ops.orphan_min_age_hours(unreachable, "lake_ingest", 24.0, taken_s * 1000) == (
        flink_ops.UNKNOWN_RESTORE_POINTS_HOURS
    ), "restore points that cannot be listed protect every file"
