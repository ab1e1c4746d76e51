"""The malformed-record corpus: each case gets the contract's verdict, and its DLQ record keeps it exactly."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from hybrid_platform import events, malformed_corpus
from hybrid_platform.malformed_corpus import Case

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CASES = malformed_corpus.cases(NOW_MS, seed=7)


def test_case_names_are_unique_and_cover_what_the_issue_lists() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    for kind in (
        "truncated_json",
        "amount_as_string",  # wrong types
        "amount_nan",
        "amount_infinity",
        "amount_1e400",  # huge numbers
        "payload_largest_kafka_accepts",
        "invalid_utf8",
        "missing_",
        "event_time_far_future",
        "event_time_zero",
        "empty_record",
        "json_array",
        "json_string",
        "json_number",
        "json_null",
        "duplicate_key",
        "extra_fields",
        "amount_three_decimals",
        "currency_",
        "country_",
        "channel_",
        "mcc_",
    ):
        assert any(name.startswith(kind) for name in names), kind


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_parser_gives_the_contract_verdict(case: Case) -> None:
    txn, reason = events.parse_transaction(case.raw, now_ms=NOW_MS)
    if case.expected_reason is None:
        assert reason is None and txn is not None
    else:
        assert txn is None
        assert reason is not None and case.expected_reason in reason
        assert not reason.startswith("parse_error"), "a parser bug, not a verdict"


@pytest.mark.parametrize(
    "case", malformed_corpus.malformed_cases(NOW_MS, seed=7), ids=lambda case: getattr(case, "name", "")
)
def test_dlq_record_keeps_the_original_bytes_exactly(case: Case) -> None:
    _, reason = events.parse_transaction(case.raw, now_ms=NOW_MS)
    assert reason is not None
    record = events.dlq_record(case.raw, reason, "transactions", 1, 12345, NOW_MS)
    # What the Flink job's JSON sink writes (non-ASCII as UTF-8, like Jackson), read back by a consumer.
    written = json.dumps(record, ensure_ascii=False).encode("utf-8")
    assert len(written) <= events.DLQ_MAX_MESSAGE_BYTES
    read = json.loads(written)
    assert events.original_bytes(read["original"], read["original_encoding"]) == case.raw
    assert (read["reason"], read["source_topic"], read["source_partition"], read["source_offset"]) == (
        reason,
        "transactions",
        1,
        12345,
    )
    try:
        case.raw.decode("utf-8")
    except UnicodeDecodeError:
        assert read["original_encoding"] == "base64"


def test_dlq_records_validate_against_their_schema() -> None:
    import jsonschema  # a declared test dependency: the parser itself never uses it

    validator = jsonschema.Draft202012Validator(events.load_schema("transaction_dlq.v1"))
    for case in malformed_corpus.malformed_cases(NOW_MS, seed=7):
        reason = events.parse_transaction(case.raw, now_ms=NOW_MS)[1] or ""
        validator.validate(events.dlq_record(case.raw, reason, "transactions", 0, 1, NOW_MS))


def test_dlq_record_of_the_largest_kafka_record_fits_the_dlq_limit() -> None:
    # The worst cases for the DLQ envelope: a record at the broker's default limit made of bytes that are
    # not UTF-8 (base64: 4/3), or of control characters (JSON escapes each as 6 bytes, so base64 is used).
    broker_default_max = 1_048_588
    for raw in (b"\xff" * broker_default_max, b"\x01" * broker_default_max, b'"' * broker_default_max):
        record = events.dlq_record(raw, "too_large", "transactions", 0, 0, NOW_MS)
        written = json.dumps(record, ensure_ascii=False).encode("utf-8")
        assert record["original_encoding"] == "base64"
        assert len(written) <= events.DLQ_MAX_MESSAGE_BYTES
        assert events.original_bytes(str(record["original"]), "base64") == raw


def test_ordinary_malformed_records_stay_readable_text_in_the_dlq() -> None:
    original, encoding = events.original_text(b'{"amount": 12.345, "note": "caf\xc3\xa9\\n"}')
    assert (original, encoding) == ('{"amount": 12.345, "note": "caf\u00e9\\n"}', "utf-8")


def test_original_bytes_refuses_an_unknown_encoding() -> None:
    with pytest.raises(ValueError, match="original_encoding"):
        events.original_bytes("abc", "latin-1")


def test_largest_payload_is_exactly_what_librdkafka_accepts_with_a_64_byte_key() -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    largest = next(case for case in CASES if case.name == "payload_largest_kafka_accepts")
    assert len(largest.raw) == malformed_corpus.LARGEST_PAYLOAD_BYTES
    # produce() checks the size locally, before any broker is contacted (none listens on port 1).
    producer = confluent_kafka.Producer({"bootstrap.servers": "127.0.0.1:1", "log_level": 0})
    key = b"k" * events.MAX_ID_LENGTH
    try:
        producer.produce("transactions", value=largest.raw, key=key)
        with pytest.raises(confluent_kafka.KafkaException, match="MSG_SIZE_TOO_LARGE"):
            producer.produce("transactions", value=largest.raw + b" ", key=key)
    finally:
        producer.purge()
        producer.flush(0)


def test_corpus_is_deterministic_per_seed_and_fresh_without_one() -> None:
    assert malformed_corpus.cases(NOW_MS, seed=3) == malformed_corpus.cases(NOW_MS, seed=3)
    first, second = (malformed_corpus.cases(NOW_MS) for _ in range(2))
    assert [case.raw for case in first] != [case.raw for case in second]  # new txn_ids each time


@pytest.mark.parametrize("conflicting", [False, True])
def test_duplicate_pair_is_two_valid_records_with_one_txn_id(conflicting: bool) -> None:
    first, second = malformed_corpus.duplicate_pair(NOW_MS, seed=1, conflicting=conflicting)
    one, two = (events.parse_transaction(raw, now_ms=NOW_MS)[0] for raw in (first, second))
    assert one is not None and two is not None
    assert one.txn_id == two.txn_id
    assert (first == second) is not conflicting
    assert (one.amount, two.amount) == ((Decimal("12.50"), Decimal("99.99")) if conflicting else (one.amount,) * 2)
