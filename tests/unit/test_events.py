"""The event contract: what parse_transaction accepts, what it rejects and with which reason; the schemas."""

from __future__ import annotations

import base64
import json
import random
from decimal import Decimal
from typing import Any

import pytest

from hybrid_platform import events
from hybrid_platform.events import Transaction, parse_label, parse_transaction

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000
VALID: dict[str, Any] = {
    "txn_id": "3f2b8c1e-9a4d-4e7f-8b6a-2c1d0e9f8a7b",
    "card_id": "card_0001",
    "merchant_id": "merch_42",
    "mcc": "5411",
    "amount": Decimal("12.50"),
    "currency": "EUR",
    "country": "DE",
    "channel": "pos",
    "event_time": NOW_MS - 1_000,
}


def _raw(amount: str = "12.50", **changes: Any) -> str:
    """VALID as JSON text with ``changes``; ``amount`` is the literal JSON number (or anything) to write."""
    record = {key: value for key, value in {**VALID, **changes}.items() if key != "amount"}
    return json.dumps(record)[:-1] + f', "amount": {amount}}}'


def _parse(amount: str = "12.50", **changes: Any) -> tuple[Transaction | None, str | None]:
    return parse_transaction(_raw(amount, **changes), now_ms=NOW_MS)


def test_valid_record_parses_to_the_exact_transaction() -> None:
    txn, reason = _parse()
    assert reason is None
    assert txn == Transaction(**VALID)


def test_bytes_and_str_parse_alike_and_round_trip_through_to_json() -> None:
    txn, _ = parse_transaction(_raw().encode(), now_ms=NOW_MS)
    assert txn is not None
    text = txn.to_json()
    assert '"amount":12.50' in text and " " not in text  # compact, two decimals, a number
    assert parse_transaction(text, now_ms=NOW_MS) == (txn, None)


def test_extra_fields_are_ignored() -> None:
    txn, reason = _parse(extra="x", nested={"a": [1, 2]}, amount_currency_hint=None)
    assert reason is None and txn == Transaction(**VALID)


def test_uuid_is_normalized_to_lower_case() -> None:
    txn, _ = _parse(txn_id=VALID["txn_id"].upper())
    assert txn is not None and txn.txn_id == VALID["txn_id"]


@pytest.mark.parametrize("field", events.TRANSACTION_FIELDS)
def test_missing_or_null_field_is_named(field: str) -> None:
    text = json.dumps({k: v for k, v in VALID.items() if k not in (field, "amount")})
    if field != "amount":
        text = text[:-1] + ', "amount": 12.50}'
    assert parse_transaction(text, now_ms=NOW_MS) == (None, f"missing_field:{field}")
    nulled = json.loads(text)
    nulled[field] = None
    assert parse_transaction(json.dumps(nulled), now_ms=NOW_MS) == (None, f"missing_field:{field}")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("txn_id", "not-a-uuid", "invalid_field:txn_id:not a uuid"),
        ("txn_id", "{3f2b8c1e-9a4d-4e7f-8b6a-2c1d0e9f8a7b}", "invalid_field:txn_id:not a uuid"),
        ("txn_id", 42, "invalid_field:txn_id:not a uuid"),
        ("card_id", "", "invalid_field:card_id:empty"),
        ("card_id", "   ", "invalid_field:card_id:empty"),
        ("card_id", "c" * 65, "invalid_field:card_id:too long"),
        ("card_id", 123, "invalid_field:card_id:not a string"),
        ("merchant_id", "m" * 65, "invalid_field:merchant_id:too long"),
        ("mcc", "541", "invalid_field:mcc:not 4 digits"),
        ("mcc", "54a1", "invalid_field:mcc:not 4 digits"),
        ("mcc", "\u0665\u0664\u0661\u0661", "invalid_field:mcc:not 4 digits"),  # Arabic-Indic digits
        ("mcc", 5411, "invalid_field:mcc:not a string"),
        ("currency", "usd", "invalid_field:currency:unknown code"),
        ("currency", "XXX", "invalid_field:currency:unknown code"),
        ("currency", 978, "invalid_field:currency:not a string"),
        ("country", "UK", "invalid_field:country:unknown code"),  # the ISO code is GB
        ("channel", "web", "invalid_field:channel:unknown channel"),
        ("event_time", True, "invalid_field:event_time:not an integer"),
        ("event_time", "1767225599000", "invalid_field:event_time:not an integer"),
        ("event_time", 1_767_225_599, "invalid_field:event_time:before 2000-01-01"),  # seconds, not ms
        ("event_time", NOW_MS + DAY_MS + 1, "invalid_field:event_time:in the future"),
    ],
)
def test_invalid_field_reason(field: str, value: Any, reason: str) -> None:
    assert _parse(**{field: value}) == (None, reason)


def test_event_time_float_is_not_an_integer() -> None:
    text = _raw().replace(f'"event_time": {VALID["event_time"]}', f'"event_time": {VALID["event_time"]}.0')
    assert parse_transaction(text, now_ms=NOW_MS) == (None, "invalid_field:event_time:not an integer")


def test_event_time_up_to_one_day_ahead_is_accepted() -> None:
    txn, reason = _parse(event_time=NOW_MS + DAY_MS)
    assert reason is None and txn is not None


def test_event_time_bound_uses_the_wall_clock_by_default() -> None:
    assert parse_transaction(_raw(event_time=NOW_MS + 1000 * 365 * DAY_MS))[1] == (
        "invalid_field:event_time:in the future"
    )


@pytest.mark.parametrize(
    ("literal", "reason"),
    [
        ('"12.50"', "invalid_field:amount:not a number"),
        ("true", "invalid_field:amount:not a number"),
        ("[12.5]", "invalid_field:amount:not a number"),
        ("0", "invalid_field:amount:not positive"),
        ("0.00", "invalid_field:amount:not positive"),
        ("-1.00", "invalid_field:amount:not positive"),
        ("12.345", "invalid_field:amount:more than 2 decimals"),
        ("0.001", "invalid_field:amount:more than 2 decimals"),
        ("1e-9", "invalid_field:amount:more than 2 decimals"),
        ("1000000.01", "invalid_field:amount:too large"),
        ("1e400", "invalid_field:amount:too large"),
    ],
)
def test_invalid_amount(literal: str, reason: str) -> None:
    assert _parse(literal) == (None, reason)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("12.5", "12.50"), ("12.500", "12.50"), ("7", "7.00"), ("1E+2", "100.00"), ("1000000", "1000000.00")],
)
def test_amount_with_at_most_two_decimals_is_accepted(literal: str, expected: str) -> None:
    txn, reason = _parse(literal)
    assert reason is None and txn is not None
    assert str(txn.amount) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        ("", "empty"),
        (b"  \n", "empty"),
        (b"\xff\xfe{}", "invalid_utf8"),
        ('{"txn_id": ', "invalid_json"),
        ("{'txn_id': 1}", "invalid_json"),
        ("[1, 2]", "not_an_object"),
        ("null", "not_an_object"),
        ('"a string"', "not_an_object"),
        ("[" * 30_000 + "]" * 30_000, "invalid_json"),  # well-formed, but nested past the recursion limit
        ("{" + '"pad": "' + "x" * (64 * 1024) + '"}', "too_large"),
        ('{"amount": NaN}', "invalid_json"),
        ('{"amount": Infinity}', "invalid_json"),
        ('{"amount": -Infinity}', "invalid_json"),
    ],
)
def test_undecodable_records(raw: bytes | str | None, reason: str) -> None:
    assert parse_transaction(raw, now_ms=NOW_MS) == (None, reason)


def test_nan_amount_in_an_otherwise_valid_record_is_invalid_json() -> None:
    assert _parse("NaN") == (None, "invalid_json")


def test_never_raises_and_returns_exactly_one_of_the_pair() -> None:
    rng = random.Random(3)
    valid = _raw().encode()
    for _ in range(3000):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 6)):
            position = rng.randrange(len(data))
            data[position] = rng.randrange(256)
        cut = bytes(data[: rng.randint(0, len(data))])
        for raw in (bytes(data), cut):
            txn, reason = parse_transaction(raw, now_ms=NOW_MS)
            assert (txn is None) != (reason is None)


def test_label_parses_and_rejects_with_reasons() -> None:
    label = {"txn_id": VALID["txn_id"], "is_fraud": True, "labeled_at": NOW_MS + 30 * DAY_MS}
    parsed, reason = parse_label(json.dumps(label).encode())
    assert reason is None and parsed == events.FraudLabel(VALID["txn_id"], True, NOW_MS + 30 * DAY_MS)
    assert parse_label(parsed.to_json()) == (parsed, None)
    assert parse_label(json.dumps({**label, "is_fraud": 1})) == (None, "invalid_field:is_fraud:not a boolean")
    assert parse_label(json.dumps({**label, "labeled_at": 1.5})) == (None, "invalid_field:labeled_at:not an integer")
    assert parse_label(json.dumps({**label, "labeled_at": 5_000_000_000_000})) == (
        None,
        "invalid_field:labeled_at:in the future",
    )
    assert parse_label(json.dumps({"txn_id": VALID["txn_id"]})) == (None, "missing_field:is_fraud")
    assert parse_label(b"\x80") == (None, "invalid_utf8")


def test_dlq_record_keeps_the_original_as_text_or_base64() -> None:
    text = events.dlq_record(b'{"a": "\xc3\xa9"}', "invalid_json", "transactions", 1, 42, NOW_MS)
    assert text == {
        "original": '{"a": "\u00e9"}',
        "original_encoding": "utf-8",
        "reason": "invalid_json",
        "source_topic": "transactions",
        "source_partition": 1,
        "source_offset": 42,
        "received_at": NOW_MS,
    }
    binary = events.dlq_record(b"\xff\x00", "invalid_utf8", "transactions", 0, 7, NOW_MS)
    assert binary["original_encoding"] == "base64"
    assert base64.b64decode(str(binary["original"])) == b"\xff\x00"
    assert events.dlq_record(None, "empty", "transactions", 0, 8, NOW_MS)["original"] == ""


def test_a_record_huge_once_unpacked_is_dead_lettered_in_part_and_fits_the_dlq_topic() -> None:
    import hashlib
    import json

    raw = b"\x00" * (5 * events.DLQ_MAX_ORIGINAL_BYTES)  # a few KB once compressed: Kafka takes it
    record = events.dlq_record(raw, "too_large", "transactions", 0, 9, NOW_MS)
    kept = events.original_bytes(str(record["original"]), str(record["original_encoding"]))
    assert kept == raw[: events.DLQ_MAX_ORIGINAL_BYTES]
    assert record["reason"] == (
        f"too_large; original truncated to its first {events.DLQ_MAX_ORIGINAL_BYTES} of {len(raw)} bytes, "
        f"sha256 {hashlib.sha256(raw).hexdigest()}"
    )
    assert len(json.dumps(record).encode()) < events.DLQ_MAX_MESSAGE_BYTES


def test_alert_record_rounds_the_score_and_rejects_impossible_ones() -> None:
    alert = events.alert_record(VALID["txn_id"], "card_0001", 0.123456789, ("amount_spike",), "m1", NOW_MS, NOW_MS + 5)
    assert repr(alert["score"]) == "0.123457" and alert["reasons"] == ["amount_spike"]
    for score in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="outside"):
            events.alert_record(VALID["txn_id"], "c", score, [], "m1", NOW_MS, NOW_MS)


# -- schemas -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", events.SCHEMA_NAMES)
def test_schemas_load_with_a_versioned_id(name: str) -> None:
    schema = events.load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert name in schema["$id"] and ".v1" in schema["$id"]
    assert set(schema["required"]) <= set(schema["properties"])
    assert events.load_schema(f"{name}.json") == schema


def test_unknown_schema_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"transaction\.v1"):
        events.load_schema("transaction.v9")


def test_transaction_schema_agrees_with_the_parser() -> None:
    schema = events.load_schema("transaction.v1")
    properties = schema["properties"]
    assert tuple(schema["required"]) == events.TRANSACTION_FIELDS
    assert set(properties["currency"]["enum"]) == events.CURRENCIES
    assert set(properties["country"]["enum"]) == events.COUNTRIES
    assert tuple(properties["channel"]["enum"]) == events.CHANNELS
    assert properties["event_time"]["minimum"] == events.MIN_EPOCH_MS
    assert properties["card_id"]["maxLength"] == events.MAX_ID_LENGTH
    assert Decimal(str(properties["amount"]["maximum"])) == events.MAX_AMOUNT
    assert tuple(events.load_schema("fraud_label.v1")["required"]) == events.LABEL_FIELDS


def test_code_lists_have_the_expected_size() -> None:
    assert len(events.COUNTRIES) == 249  # ISO 3166-1 officially assigned alpha-2 codes
    assert all(len(code) == 3 and code.isupper() for code in events.CURRENCIES)
    assert {"USD", "EUR", "GBP", "JPY", "CHF"} <= events.CURRENCIES
    assert {"XAU", "XXX", "XTS"}.isdisjoint(events.CURRENCIES)  # metals, no currency, testing


def test_example_records_validate_against_their_schemas() -> None:
    import jsonschema  # a declared test dependency: the parser itself never uses it

    txn, _ = _parse()
    assert txn is not None
    label = events.FraudLabel(VALID["txn_id"], False, NOW_MS)
    examples = {
        "transaction.v1": txn.to_json(),
        "fraud_label.v1": label.to_json(),
        "fraud_alert.v1": json.dumps(events.alert_record(txn.txn_id, txn.card_id, 0.9, ["r"], "m1", NOW_MS, NOW_MS)),
        "transaction_dlq.v1": json.dumps(events.dlq_record(b"\xff", "invalid_utf8", "transactions", 0, 1, NOW_MS)),
    }
    for name, text in examples.items():
        # Decimals on both sides: multipleOf 0.01 is then checked exactly, not in binary floating point.
        schema = json.loads(json.dumps(events.load_schema(name)), parse_float=Decimal)
        jsonschema.Draft202012Validator.check_schema(schema)
        instance = json.loads(text, parse_float=Decimal)
        assert set(schema["required"]) <= set(instance), name
        jsonschema.Draft202012Validator(schema).validate(instance)
    bad = json.loads(_raw("12.345", currency="usd"), parse_float=Decimal)
    schema = json.loads(json.dumps(events.load_schema("transaction.v1")), parse_float=Decimal)
    errors = {error.path[0] for error in jsonschema.Draft202012Validator(schema).iter_errors(bad)}
    assert errors == {"currency", "amount"}
