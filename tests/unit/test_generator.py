"""The synthetic generator: deterministic, realistic, with the injected patterns and defects it claims."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hybrid_platform import cli, config, events, generator, names
from hybrid_platform.generator import GeneratedRecord, synthesize

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
COUNT = 20_000
RATE = 50.0  # 400 s of simulated traffic: long enough for minute-scale patterns
FRACTION = 0.05

EXPECTED_REASON = {
    "truncated_json": r"invalid_json",
    "wrong_type": r"invalid_field:(amount:not a number|event_time:not an integer|(mcc|card_id):not a string)",
    "missing_field": r"missing_field:(" + "|".join(events.TRANSACTION_FIELDS) + ")",
    "nan": r"invalid_json",
    "invalid_utf8": r"invalid_utf8",
    "empty": r"empty",
    "json_array": r"not_an_object",
    "negative_amount": r"invalid_field:amount:not positive",
    "bad_currency": r"invalid_field:currency:unknown code",
    "future_timestamp": r"invalid_field:event_time:in the future",
}


def _run(
    seed: int = 7, count: int = COUNT, late: float = FRACTION, malformed: float = FRACTION
) -> list[GeneratedRecord]:
    return list(synthesize(seed, count, START_MS, RATE, late_fraction=late, malformed_fraction=malformed))


@pytest.fixture(scope="module")
def records() -> list[GeneratedRecord]:
    return _run()


@pytest.fixture(scope="module")
def transactions(records: list[GeneratedRecord]) -> list[GeneratedRecord]:
    """Valid and late records (the ones the platform must accept)."""
    return [r for r in records if r.kind in (generator.KIND_VALID, generator.KIND_LATE)]


def _now(record: GeneratedRecord) -> int:
    return START_MS + int(record.offset_ms)


def _digest(records: list[GeneratedRecord]) -> str:
    sha = hashlib.sha256()
    for r in records:
        sha.update(f"{r.topic}|{r.key!r}|{r.kind}|{r.offset_ms!r}|".encode() + r.value + b"\n")
    return sha.hexdigest()


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(records: list[GeneratedRecord]) -> None:
    assert _digest(_run()) == _digest(records)
    other = _run(seed=8)
    assert _digest(other) != _digest(records)
    assert {r.txn_id for r in other}.isdisjoint({r.txn_id for r in records} - {None})


def test_the_global_random_state_is_neither_used_nor_disturbed() -> None:
    import random

    random.seed(1)
    first = _run(count=500)
    expected_next = random.random()
    random.seed(1)
    random.random()  # a different global state must not change the output
    assert _digest(_run(count=500)) == _digest(first)
    random.seed(1)
    _run(count=500)
    assert random.random() == expected_next


def test_schedule_count_and_keys(records: list[GeneratedRecord]) -> None:
    on_topic = [r for r in records if r.topic == names.TOPIC_TRANSACTIONS]
    assert len(on_topic) == COUNT
    assert [r.offset_ms for r in on_topic] == [i * 1000 / RATE for i in range(COUNT)]
    offsets = [r.offset_ms for r in records]
    assert offsets == sorted(offsets), "records must come in send order"
    for r in on_topic:
        if r.transaction is not None:
            assert r.key == r.transaction.card_id.encode()
    for r in records:
        if r.kind == generator.KIND_LABEL:
            assert r.topic == names.TOPIC_FRAUD_LABELS and r.key == (r.txn_id or "").encode()
    ids = [r.txn_id for r in on_topic if r.txn_id is not None]
    assert len(ids) == len(set(ids))


def test_every_valid_record_parses_back_to_its_transaction(transactions: list[GeneratedRecord]) -> None:
    for r in transactions:
        txn, reason = events.parse_transaction(r.value, now_ms=_now(r))
        assert reason is None, (reason, r.value)
        assert txn == r.transaction and txn.txn_id == r.txn_id


def test_every_malformed_record_fails_with_the_reason_of_its_defect(records: list[GeneratedRecord]) -> None:
    malformed = [r for r in records if r.kind == generator.KIND_MALFORMED]
    assert {r.defect for r in malformed} == set(generator.DEFECTS) == set(EXPECTED_REASON)
    for r in malformed:
        txn, reason = events.parse_transaction(r.value, now_ms=_now(r))
        assert txn is None and r.txn_id is None and not r.is_fraud
        assert re.fullmatch(EXPECTED_REASON[str(r.defect)], str(reason)), (r.defect, reason, r.value)
        # also rejected by a consumer whose clock runs a day ahead of the generator's
        assert events.parse_transaction(r.value, now_ms=_now(r) + 86_400_000)[0] is None


def test_late_and_malformed_fractions_are_honored(records: list[GeneratedRecord]) -> None:
    kinds = Counter(r.kind for r in records if r.topic == names.TOPIC_TRANSACTIONS)
    assert abs(kinds[generator.KIND_LATE] / COUNT - FRACTION) < 0.01
    assert abs(kinds[generator.KIND_MALFORMED] / COUNT - FRACTION) < 0.01
    clean = Counter(r.kind for r in _run(count=2000, late=0.0, malformed=0.0))
    assert clean[generator.KIND_LATE] == clean[generator.KIND_MALFORMED] == 0
    heavy = Counter(r.kind for r in _run(count=2000, late=0.3, malformed=0.2) if r.topic == names.TOPIC_TRANSACTIONS)
    assert abs(heavy[generator.KIND_LATE] / 2000 - 0.3) < 0.04
    assert abs(heavy[generator.KIND_MALFORMED] / 2000 - 0.2) < 0.04


def test_event_times_late_out_of_order_and_on_time(transactions: list[GeneratedRecord]) -> None:
    behind = [(r.kind, _now(r) - r.transaction.event_time) for r in transactions if r.transaction]
    late = [gap for kind, gap in behind if kind == generator.KIND_LATE]
    on_time = [gap for kind, gap in behind if kind == generator.KIND_VALID]
    assert late and all(5_000 <= gap <= 120_000 for gap in late)
    assert all(0 <= gap <= 300 for gap in on_time)
    out_of_order = sum(gap > 0 for gap in on_time) / len(on_time)
    assert 0.05 < out_of_order < 0.15


def test_fraud_share_and_every_pattern(transactions: list[GeneratedRecord]) -> None:
    fraud = [r for r in transactions if r.is_fraud]
    assert 0.01 <= len(fraud) / len(transactions) <= 0.02
    patterns = Counter(r.pattern for r in fraud)
    assert set(patterns) == set(generator.FRAUD_PATTERNS)
    assert all(count >= 15 for count in patterns.values()), patterns
    assert all(r.pattern is None for r in transactions if not r.is_fraud)


def test_card_testing_is_small_online_bursts_within_a_minute(transactions: list[GeneratedRecord]) -> None:
    bursts: dict[str, list[events.Transaction]] = defaultdict(list)
    for r in transactions:
        if r.pattern == generator.PATTERN_CARD_TESTING and r.transaction:
            assert r.transaction.amount < Decimal("5.00") and r.transaction.channel == "online"
            bursts[r.transaction.card_id].append(r.transaction)
    assert len(bursts) >= 10
    # A card can be tested twice in a long run: split its payments into episodes at gaps over a minute.
    episodes: list[list[events.Transaction]] = []
    for payments in bursts.values():
        payments.sort(key=lambda t: t.event_time)
        episodes.append([payments[0]])
        for previous, current in itertools.pairwise(payments):
            if current.event_time - previous.event_time > 60_000:
                episodes.append([])
            episodes[-1].append(current)
    complete = [e for e in episodes if len(e) >= 3]
    assert len(complete) >= 0.8 * len(episodes)
    for burst in complete:
        times = [t.event_time for t in burst]
        assert times[-1] - times[0] < 60_000 and len({t.merchant_id for t in burst}) == 1


def test_geo_velocity_is_a_country_jump_minutes_after_a_home_payment(transactions: list[GeneratedRecord]) -> None:
    by_card: dict[str, list[GeneratedRecord]] = defaultdict(list)
    for r in transactions:
        if r.kind == generator.KIND_VALID and r.transaction:
            by_card[r.transaction.card_id].append(r)
    jumps = 0
    for history in by_card.values():
        history.sort(key=lambda r: r.transaction.event_time if r.transaction else 0)
        for previous, current in itertools.pairwise(history):
            if current.pattern != generator.PATTERN_GEO_VELOCITY or previous.is_fraud:
                continue
            assert previous.transaction and current.transaction
            assert current.transaction.channel in ("pos", "atm")
            assert previous.transaction.country != current.transaction.country
            assert 0 < current.transaction.event_time - previous.transaction.event_time <= 600_000
            jumps += 1
    assert jumps >= 10


def test_high_risk_amounts_are_large_at_risky_mccs(transactions: list[GeneratedRecord]) -> None:
    risky = [r.transaction for r in transactions if r.pattern == generator.PATTERN_HIGH_RISK_AMOUNT]
    assert risky
    for txn in risky:
        assert txn and txn.mcc in generator.HIGH_RISK_MCCS and txn.amount >= 1000
    legit_amounts = sorted(r.transaction.amount for r in transactions if not r.is_fraud and r.transaction)
    assert legit_amounts[len(legit_amounts) // 2] < 100, "typical payments are everyday amounts"


def test_legit_card_present_payments_stay_in_the_home_country(transactions: list[GeneratedRecord]) -> None:
    countries: dict[str, set[str]] = defaultdict(set)
    for r in transactions:
        if not r.is_fraud and r.transaction and r.transaction.channel in ("pos", "atm"):
            countries[r.transaction.card_id].add(r.transaction.country)
    assert countries and all(len(homes) == 1 for homes in countries.values())


def test_labels_cover_every_fraud_and_a_sample_of_legit(
    records: list[GeneratedRecord], transactions: list[GeneratedRecord]
) -> None:
    by_id = {r.txn_id: r for r in transactions}
    position = {id(r): i for i, r in enumerate(records)}
    labels = [r for r in records if r.kind == generator.KIND_LABEL]
    labeled = Counter(r.txn_id for r in labels)
    assert max(labeled.values()) == 1
    assert {r.txn_id for r in transactions if r.is_fraud} <= set(labeled)
    legit = [r for r in transactions if not r.is_fraud]
    legit_share = sum(r.txn_id in labeled for r in legit) / len(legit)
    assert 0.04 < legit_share < 0.06
    for r in labels:
        label, reason = events.parse_label(r.value)
        txn_record = by_id[r.txn_id]
        assert reason is None and label and txn_record.transaction
        assert label.is_fraud == txn_record.is_fraud == r.is_fraud and r.pattern == txn_record.pattern
        assert 3_600_000 <= label.labeled_at - txn_record.transaction.event_time <= 30 * 86_400_000
        assert r.offset_ms >= txn_record.offset_ms, "a label is sent after its transaction"
        assert position[id(r)] > position[id(txn_record)], "a label is sent after its transaction"


def test_summarize_counts_by_kind(records: list[GeneratedRecord], transactions: list[GeneratedRecord]) -> None:
    report = generator.summarize(records, RATE)
    kinds = Counter(r.kind for r in records)
    assert report.counts == {
        "valid": kinds["valid"],
        "late": kinds["late"],
        "malformed": kinds["malformed"],
        "labels": kinds["label"],
        "fraud": sum(r.is_fraud for r in transactions),
    }
    assert report.malformed_count == kinds["malformed"]
    assert report.txn_ids_valid == [r.txn_id for r in transactions]
    assert sum(report.by_pattern.values()) == report.counts["fraud"]
    assert sum(report.by_defect.values()) == report.counts["malformed"]
    assert report.achieved_rate == pytest.approx(RATE)
    assert "txn_ids_valid" not in report.to_dict() and "txn_ids_valid" in report.to_dict(include_txn_ids=True)


@pytest.mark.parametrize(
    ("count", "rate", "late", "malformed"), [(-1, 1.0, 0, 0), (1, 0.0, 0, 0), (1, 1.0, 1.0, 0), (1, 1.0, 0.6, 0.5)]
)
def test_synthesize_rejects_impossible_arguments(count: int, rate: float, late: float, malformed: float) -> None:
    with pytest.raises(ValueError):
        synthesize(1, count, START_MS, rate, late, malformed)


# -- produce, against a stand-in for confluent_kafka.Producer ------------------------------------------


class _FakeProducer:
    """Records what would be sent and when; optionally fails every delivery."""

    sent: list[tuple[float, str, bytes | None, bytes]]
    stamped: list[tuple[str, int]]  # (topic, the record's Kafka timestamp)
    config: dict[str, Any]
    fail = False
    stall_at: int | None = None  # the send that takes 200 ms (a GC pause, a slow moment)

    def __init__(self, conf: dict[str, Any]) -> None:
        type(self).config = conf
        type(self).sent = []
        type(self).stamped = []
        self.callbacks: list[Callable[[Any, Any], None]] = []

    def produce(
        self, topic: str, value: bytes, key: bytes | None, on_delivery: Callable[[Any, Any], None], timestamp: int
    ) -> None:
        self.sent.append((time.time() * 1000, topic, key, value))
        self.stamped.append((topic, timestamp))
        self.callbacks.append(on_delivery)
        if len(self.sent) == self.stall_at:
            time.sleep(0.2)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        for callback in self.callbacks:
            message = type("Message", (), {"topic": lambda self: "transactions"})()
            callback("broker down" if self.fail else None, message)
        return 0


@pytest.fixture
def fake_kafka(monkeypatch: pytest.MonkeyPatch) -> type[_FakeProducer]:
    import confluent_kafka

    _FakeProducer.fail = False
    _FakeProducer.stall_at = None
    monkeypatch.setattr(confluent_kafka, "Producer", _FakeProducer)
    monkeypatch.setattr(generator, "ensure_topics", lambda cfg, topics, partitions=2: [])
    return _FakeProducer


def _cfg(tmp_path: Path) -> config.PlatformConfig:
    return config.load({"HDP_HOME": str(tmp_path)})


def test_produce_paces_open_loop_and_stamps_event_time_at_send(
    fake_kafka: type[_FakeProducer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slow topic setup must not shift event times; a stall mid-run must be caught up, not lower the rate.
    monkeypatch.setattr(generator, "ensure_topics", lambda cfg, topics, partitions=2: time.sleep(0.3))
    fake_kafka.stall_at = 50
    report = generator.produce(_cfg(tmp_path), rate=400, duration_s=0.5, seed=3, late_fraction=0.1)
    elapsed = (fake_kafka.sent[-1][0] - fake_kafka.sent[0][0]) / 1000
    assert fake_kafka.config["enable.idempotence"] is True and fake_kafka.config["acks"] == "all"
    assert fake_kafka.config["linger.ms"] == 5
    on_topic = [s for s in fake_kafka.sent if s[1] == names.TOPIC_TRANSACTIONS]
    assert len(on_topic) == 200 == report.counts["valid"] + report.counts["late"] + report.counts["malformed"]
    assert 0.45 < elapsed < 0.6, "paced to the schedule: neither as fast as possible nor slowed by the stall"
    assert report.achieved_rate == pytest.approx(400, rel=0.1)
    assert report.max_behind_schedule_ms >= 150
    late_ids = set(report.txn_ids_valid)
    gaps = []
    for sent_ms, _, key, value in on_topic:
        txn, reason = events.parse_transaction(value)
        assert txn is not None and reason is None and key == txn.card_id.encode() and txn.txn_id in late_ids
        gaps.append(sent_ms - txn.event_time)
    on_time = [gap for gap in gaps if gap < 1_000]
    late = [gap for gap in gaps if gap >= 1_000]
    assert len(late) == report.counts["late"] > 0
    assert all(-5 <= gap <= 300 + 20 for gap in on_time), "event_time is the wall clock at send (minus jitter)"
    assert all(5_000 - 5 <= gap <= 120_000 + 20 for gap in late)
    # The Kafka timestamp is the scheduled send time, so the stall does not shift it (no coordinated omission).
    stamps = [ts for topic, ts in fake_kafka.stamped if topic == names.TOPIC_TRANSACTIONS]
    assert all(abs(ts - stamps[0] - i * 1000 / 400) <= 1 for i, ts in enumerate(stamps)), stamps[:60]


def test_produce_raises_when_records_are_not_acknowledged(fake_kafka: type[_FakeProducer], tmp_path: Path) -> None:
    fake_kafka.fail = True
    with pytest.raises(generator.GeneratorError, match=r"not acknowledged .*broker down"):
        generator.produce(_cfg(tmp_path), rate=200, duration_s=0.05)


# -- CLI -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--rate", "0", "--duration", "1"],
        ["--rate", "10", "--duration", "-1"],
        ["--rate", "ten", "--duration", "1"],
        ["--rate", "10", "--duration", "1", "--late-fraction", "1"],
        ["--rate", "10", "--duration", "1", "--malformed-fraction", "-0.1"],
        ["--duration", "1"],
    ],
)
def test_generate_argument_errors_are_one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "hdp generate:" in err


def test_generate_prints_the_report(
    fake_kafka: type[_FakeProducer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HDP_HOME", str(tmp_path))
    assert cli.main(["generate", "--rate", "200", "--duration", "0.1", "--malformed-fraction", "0.5", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"]["malformed"] > 0 and printed["target_rate"] == 200
    assert (
        cli.main(
            ["generate", "--rate", "10", "--duration", "1", "--late-fraction", "0.6", "--malformed-fraction", "0.5"]
        )
        == 2
    )
    assert "below 1" in capsys.readouterr().err
