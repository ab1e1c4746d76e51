"""Property-based tests of the event parser (the Flink UDF's logic): whatever arrives, it gives a verdict.

For arbitrary bytes, arbitrary JSON values and mutations of valid events, ``parse_transaction`` never
raises and returns exactly one of a valid transaction or a reason; a parser bug would show up as a
``parse_error:`` reason, which is refused too. Valid events round-trip, the DLQ keeps any record exactly,
and the generator's valid events always parse.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybrid_platform import events, generator
from hybrid_platform.events import Transaction, parse_transaction

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
# No deadline: the suite shares 2 cores with Spark and Flink tests, and timing is not what is tested.
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# Any code point, with lone surrogates drawn often enough to matter (they are 0.2% of the code space).
any_code_point = st.integers(0, 0x10FFFF) | st.integers(0xD800, 0xDFFF)


def any_text(max_size: int) -> st.SearchStrategy[str]:
    """Text over every code point (hypothesis' text() never yields lone surrogates; Kafka records can)."""
    return st.lists(any_code_point, max_size=max_size).map(lambda points: "".join(map(chr, points)))


def _json(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    # Surrogates included: json.dumps escapes a lone one as "\ud800", which Python's json decodes again.
    scalars = st.none() | st.booleans() | st.integers() | floats | any_text(40)
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
        max_leaves=25,
    )


json_values = _json(st.floats())  # NaN and +-Infinity included: json.dumps writes them, the parser must refuse
finite_json_values = _json(st.floats(allow_nan=False, allow_infinity=False))

valid_transactions = st.builds(
    Transaction,
    txn_id=st.uuids().map(str),
    card_id=st.text(min_size=1, max_size=events.MAX_ID_LENGTH).filter(str.strip),
    merchant_id=st.text(min_size=1, max_size=events.MAX_ID_LENGTH).filter(str.strip),
    mcc=st.from_regex(r"[0-9]{4}", fullmatch=True),
    amount=st.integers(min_value=1, max_value=int(events.MAX_AMOUNT * 100)).map(lambda cents: Decimal(cents) / 100),
    currency=st.sampled_from(sorted(events.CURRENCIES)),
    country=st.sampled_from(sorted(events.COUNTRIES)),
    channel=st.sampled_from(events.CHANNELS),
    event_time=st.integers(min_value=events.MIN_EPOCH_MS, max_value=NOW_MS + events.MAX_CLOCK_SKEW_MS),
)


def _assert_verdict(raw: bytes | str | None) -> tuple[Transaction | None, str | None]:
    txn, reason = parse_transaction(raw, now_ms=NOW_MS)
    assert (txn is None) != (reason is None)
    if reason is not None:
        assert reason and not reason.startswith("parse_error"), reason
    else:
        _assert_valid(txn)
    return txn, reason


def _assert_valid(txn: Transaction | None) -> None:
    """What the contract promises about any transaction the parser lets through."""
    assert txn is not None
    assert events._UUID.fullmatch(txn.txn_id) and txn.txn_id == txn.txn_id.lower()
    for identifier in (txn.card_id, txn.merchant_id):
        assert identifier.strip() and len(identifier) <= events.MAX_ID_LENGTH
        identifier.encode("utf-8")  # no lone surrogates: Flink must be able to hand it to Java
    assert len(txn.mcc) == 4 and txn.mcc.isascii() and txn.mcc.isdigit()
    assert 0 < txn.amount <= events.MAX_AMOUNT and txn.amount == txn.amount.quantize(events.CENT)
    assert txn.currency in events.CURRENCIES and txn.country in events.COUNTRIES and txn.channel in events.CHANNELS
    assert type(txn.event_time) is int
    assert events.MIN_EPOCH_MS <= txn.event_time <= NOW_MS + events.MAX_CLOCK_SKEW_MS


@PROPERTY
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_get_a_verdict(raw: bytes) -> None:
    _assert_verdict(raw)


@PROPERTY
@given(st.text(max_size=512))
def test_arbitrary_text_gets_a_verdict(raw: str) -> None:
    _assert_verdict(raw)


@PROPERTY
@given(json_values)
def test_arbitrary_json_values_get_a_verdict(value: Any) -> None:
    _, reason = _assert_verdict(json.dumps(value).encode())
    if _has_non_finite(value):  # json.dumps writes them as NaN/Infinity, which are not JSON
        assert reason == "invalid_json"
    elif not isinstance(value, dict):
        assert reason == "not_an_object"


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_has_non_finite(item) for item in value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    return False


@PROPERTY
@given(valid_transactions)
def test_valid_events_round_trip(txn: Transaction) -> None:
    text = txn.to_json()
    assert parse_transaction(text.encode(), now_ms=NOW_MS) == (txn, None)
    assert parse_transaction(text, now_ms=NOW_MS) == (txn, None)


def _as_record(txn: Transaction) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(txn.to_json(), parse_float=Decimal)
    return record


def _dumps(record: dict[str, Any]) -> str:
    """JSON with top-level Decimals written as exact numbers (json.dumps cannot)."""
    plain = json.dumps({key: value for key, value in record.items() if not isinstance(value, Decimal)})
    numbers = [f"{json.dumps(key)}: {value}" for key, value in record.items() if isinstance(value, Decimal)]
    return "{" + ", ".join(part for part in (plain[1:-1], *numbers) if part) + "}"


@PROPERTY
@given(
    valid_transactions,
    st.sampled_from(events.TRANSACTION_FIELDS),
    json_values,
    st.dictionaries(st.text(max_size=12).filter(lambda key: key not in events.TRANSACTION_FIELDS), finite_json_values),
)
def test_mutated_fields_get_a_verdict(txn: Transaction, field: str, value: Any, extra: dict[str, Any]) -> None:
    record = _as_record(txn)
    replaced = {**record, field: value}
    _assert_verdict(_dumps(replaced))
    dropped = {key: item for key, item in record.items() if key != field}
    assert parse_transaction(_dumps(dropped), now_ms=NOW_MS) == (None, f"missing_field:{field}")
    # Extra fields are tolerated: the same transaction comes out.
    assert parse_transaction(_dumps({**record, **extra}), now_ms=NOW_MS) == (txn, None)


@PROPERTY
@given(valid_transactions, st.sampled_from(["card_id", "merchant_id"]), any_text(70))
def test_arbitrary_identifiers_get_a_verdict(txn: Transaction, field: str, value: str) -> None:
    # Any code point, lone surrogates included (they arrive as "\udXXX" escapes): the UDF hands ids to Java.
    parsed, _ = _assert_verdict(_dumps({**_as_record(txn), field: value}))
    if parsed is not None:  # a surrogate pair written as two escapes is one character once decoded
        assert getattr(parsed, field) == json.loads(json.dumps(value))


integer_literals = st.builds(
    lambda sign, head, length, filler: sign + head + filler * length,
    st.sampled_from(["", "-"]),
    st.sampled_from("123456789"),
    st.integers(min_value=0, max_value=6000),  # past Python's 4,300-digit int() limit
    st.sampled_from("0123456789"),
)


@PROPERTY
@given(valid_transactions, st.sampled_from(["amount", "event_time"]), integer_literals)
def test_integer_literals_of_any_length_get_a_range_verdict(txn: Transaction, field: str, literal: str) -> None:
    # Written as text: Python itself refuses int() of more than 4,300 digits, and the parser must cope.
    record = {key: item for key, item in _as_record(txn).items() if key != field}
    _, reason = _assert_verdict(_dumps(record)[:-1] + f', "{field}": {literal}}}')
    assert reason != "invalid_json"  # a number is valid JSON, however long: the verdict is about its range


@PROPERTY
@given(valid_transactions, st.data())
def test_byte_mutations_of_valid_events_get_a_verdict(txn: Transaction, data: st.DataObject) -> None:
    raw = bytearray(txn.to_json().encode())
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        operation = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        position = data.draw(st.integers(min_value=0, max_value=max(0, len(raw) - 1)))
        if operation == "flip" and raw:
            raw[position] = data.draw(st.integers(min_value=0, max_value=255))
        elif operation == "insert":
            raw[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete" and raw:
            del raw[position : position + data.draw(st.integers(min_value=1, max_value=8))]
        elif operation == "truncate":
            del raw[position:]
        elif operation == "duplicate" and raw:
            raw[position:position] = raw[position : position + 16]
    _assert_verdict(bytes(raw))


@PROPERTY
@given(st.binary(max_size=4096))
def test_the_dlq_keeps_any_record_exactly(raw: bytes) -> None:
    reason = parse_transaction(raw, now_ms=NOW_MS)[1] or "ok"
    written = json.dumps(events.dlq_record(raw, reason, "transactions", 0, 1, NOW_MS), ensure_ascii=False)
    read = json.loads(written)
    assert events.original_bytes(read["original"], read["original_encoding"]) == raw
    # The envelope stays within 4/3 of the record plus a constant: what DLQ_MAX_MESSAGE_BYTES relies on.
    assert len(written.encode()) <= len(raw) * 4 // 3 + 4 + 200


# Fewer examples: each builds a synthetic population. Rates stay modest, as the population grows with the rate.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    count=st.integers(min_value=1, max_value=300),
    rate=st.floats(min_value=1, max_value=200),
    late=st.floats(min_value=0, max_value=0.45),
    malformed=st.floats(min_value=0, max_value=0.45),
)
def test_generator_valid_events_always_parse_valid(
    seed: int, count: int, rate: float, late: float, malformed: float
) -> None:
    for record in generator.synthesize(seed, count, NOW_MS, rate, late_fraction=late, malformed_fraction=malformed):
        if record.topic != "transactions":
            continue
        now = NOW_MS + int(record.offset_ms)
        txn, reason = parse_transaction(record.value, now_ms=now)
        if record.kind == generator.KIND_MALFORMED:
            assert txn is None and reason, record.defect
        else:
            assert reason is None, (reason, record.value)
            assert txn == record.transaction
