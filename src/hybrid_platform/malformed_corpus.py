"""A reusable corpus of bad (and borderline) ``transactions`` records with the verdict the contract gives each.

``cases()`` returns every case as ``(name, raw, expected_reason)``: ``raw`` is the exact bytes to produce
to Kafka, ``expected_reason`` a substring of the reason ``events.parse_transaction`` must give, or
``None`` for the borderline records the contract accepts (extra fields, an upper-case UUID, ...). The unit
tests check each against the parser and the DLQ record; integration tests and the Flink job test produce
the same bytes to the real topic and reconcile: produced = valid + DLQ, each DLQ row with its reason.

Sizes. Kafka's defaults cap one record at about 1 MiB: the broker's ``message.max.bytes`` is 1,048,588
bytes per batch, the Java producer's ``max.request.size`` 1,048,576, and librdkafka (the generator and the
tests produce with it) refuses a message whose value plus key exceeds 999,964 bytes (its own
``message.max.bytes`` of 1,000,000 less 36 bytes of batch overhead, measured with librdkafka 2.16).
``LARGEST_PAYLOAD_BYTES`` (999,900) is therefore the largest record that every default producer sends with
a key of up to 64 bytes (``events.MAX_ID_LENGTH``, the ``card_id`` key): the "1 MB" cases use it. The
parser rejects anything above 64 KiB as ``too_large`` before decoding it; the DLQ record of such a record
keeps it whole and fits ``events.DLQ_MAX_MESSAGE_BYTES``.

Duplicated ``txn_id``s are valid records (a producer retry or a replay): they are a stream-level property,
kept in ``raw.transactions`` as received and deduplicated downstream (``daily_etl``: the first ingested
copy wins). ``duplicate_pair`` builds one.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any, NamedTuple

from hybrid_platform import events

LIBRDKAFKA_MAX_VALUE_AND_KEY_BYTES = 999_964
LARGEST_PAYLOAD_BYTES = LIBRDKAFKA_MAX_VALUE_AND_KEY_BYTES - events.MAX_ID_LENGTH
#: 100 years, in milliseconds: "far" from any clock skew.
_CENTURY_MS = 100 * 365 * 86_400_000


class Case(NamedTuple):
    name: str
    raw: bytes
    expected_reason: str | None  # a substring of the parser's reason; None: the record is valid


def _txn_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def valid_record(txn_id: str, event_time: int, card_id: str = "card_corpus_0001") -> dict[str, Any]:
    """A valid transaction as a JSON-ready dict (``amount`` as text: see ``_encode``)."""
    return {
        "txn_id": txn_id,
        "card_id": card_id,
        "merchant_id": "merchant_corpus_01",
        "mcc": "5411",
        "amount": "12.50",
        "currency": "EUR",
        "country": "DE",
        "channel": "pos",
        "event_time": event_time,
    }


def _encode(record: dict[str, Any], literals: dict[str, str] | None = None) -> bytes:
    """Compact JSON. ``amount`` is written unquoted (a JSON number with its decimals kept as given), and so
    is each key of ``literals``, with its text as is (``NaN``, ``1e400``, ``"12.50"``, ...)."""
    unquoted = {"amount": str(record["amount"])} if "amount" in record else {}
    literals = {**unquoted, **(literals or {})}
    plain = {key: value for key, value in record.items() if key not in literals}
    body = json.dumps(plain, separators=(",", ":"), ensure_ascii=False)[1:-1]
    extra = ",".join(f"{json.dumps(key)}:{literal}" for key, literal in literals.items())
    return ("{" + ",".join(part for part in (body, extra) if part) + "}").encode("utf-8")


def _padded(base: bytes, size: int, filler: bytes = b"x") -> bytes:
    """``base`` (a JSON object) with a ``pad`` string field added so the record is exactly ``size`` bytes."""
    head = base[:-1] + b',"pad":"'
    tail = b'"}'
    return head + filler * (size - len(head) - len(tail)) + tail


def cases(now_ms: int | None = None, seed: int | None = None) -> list[Case]:
    """Every case, relative to ``now_ms`` (default: the wall clock). ``seed`` fixes the txn_ids."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rng = random.Random(seed) if seed is not None else random.Random()
    event_time = now - 1_000

    def record(**changes: Any) -> dict[str, Any]:
        return {**valid_record(_txn_id(rng), event_time), **changes}

    def without(field: str) -> dict[str, Any]:
        base = record()
        del base[field]
        return base

    def with_literal(field: str, literal: str) -> bytes:
        base = record()
        if field != "amount":
            del base[field]
        return _encode(base, {field: literal})

    valid = _encode(record())
    corpus = [
        # -- not a JSON object at all
        Case("empty_record", b"", "empty"),
        Case("whitespace_only", b" \n\t ", "empty"),
        Case("truncated_json_half", valid[: len(valid) // 2], "invalid_json"),
        Case("truncated_json_last_brace", valid[:-1], "invalid_json"),
        Case("single_quoted_keys", valid.replace(b'"', b"'"), "invalid_json"),
        Case("trailing_comma", valid[:-1] + b",}", "invalid_json"),
        Case("two_objects_concatenated", valid + valid, "invalid_json"),
        Case("utf8_byte_order_mark", b"\xef\xbb\xbf" + valid, "invalid_json"),
        Case("nested_arrays_past_recursion_limit", b"[" * 30_000 + b"]" * 30_000, "invalid_json"),
        Case("json_array", b'[{"txn_id":"x"}]', "not_an_object"),
        Case("json_string", b'"a string"', "not_an_object"),
        Case("json_number", b"42", "not_an_object"),
        Case("json_null", b"null", "not_an_object"),
        Case("json_true", b"true", "not_an_object"),
        # -- not UTF-8
        Case("invalid_utf8_leading_bytes", b"\xff\xfe" + valid, "invalid_utf8"),
        Case("invalid_utf8_inside_a_string", valid.replace(b"card_corpus", b"card_\xc3\x28corpus"), "invalid_utf8"),
        Case("utf16_encoded", valid.decode("utf-8").encode("utf-16"), "invalid_utf8"),
        Case("encoded_surrogate", valid.replace(b"card_corpus", b"card_\xed\xa0\x80"), "invalid_utf8"),
        Case("lone_surrogate_escape_in_card_id", valid.replace(b"card_corpus", b"card_\\ud800"), "not valid unicode"),
        # -- NaN, Infinity, huge numbers
        Case("amount_nan", with_literal("amount", "NaN"), "invalid_json"),
        Case("amount_infinity", with_literal("amount", "Infinity"), "invalid_json"),
        Case("event_time_negative_infinity", with_literal("event_time", "-Infinity"), "invalid_json"),
        Case("amount_1e400", with_literal("amount", "1e400"), "invalid_field:amount:too large"),
        Case("amount_minus_1e400", with_literal("amount", "-1e400"), "invalid_field:amount:not positive"),
        Case("amount_5000_digit_integer", with_literal("amount", "9" * 5000), "invalid_field:amount:too large"),
        Case("event_time_5000_digit_integer", with_literal("event_time", "9" * 5000), "event_time:in the future"),
        Case("event_time_beyond_int64", with_literal("event_time", str(2**63)), "event_time:in the future"),
        Case("amount_over_the_maximum", with_literal("amount", "1000000.01"), "invalid_field:amount:too large"),
        # -- sizes
        Case("payload_just_over_64_kib", _padded(valid, events.MAX_RECORD_BYTES + 1), "too_large"),
        Case("payload_largest_kafka_accepts", _padded(valid, LARGEST_PAYLOAD_BYTES), "too_large"),
        Case("payload_largest_kafka_accepts_not_utf8", _padded(b"\xff" + valid, LARGEST_PAYLOAD_BYTES), "too_large"),
        Case(
            "payload_largest_kafka_accepts_control_chars", _padded(valid, LARGEST_PAYLOAD_BYTES, b"\x01"), "too_large"
        ),
        Case("payload_just_under_64_kib_is_fine", _padded(valid, events.MAX_RECORD_BYTES), None),
        # -- missing fields
        *(
            Case(f"missing_{field}", _encode(without(field)), f"missing_field:{field}")
            for field in events.TRANSACTION_FIELDS
        ),
        Case("null_amount", with_literal("amount", "null"), "missing_field:amount"),
        Case("empty_object", b"{}", "missing_field:txn_id"),
        # -- wrong types
        Case("amount_as_string", with_literal("amount", '"12.50"'), "invalid_field:amount:not a number"),
        Case("amount_as_boolean", with_literal("amount", "true"), "invalid_field:amount:not a number"),
        Case("amount_as_object", with_literal("amount", '{"value":12.5}'), "invalid_field:amount:not a number"),
        Case("event_time_as_string", with_literal("event_time", f'"{event_time}"'), "event_time:not an integer"),
        Case("event_time_as_float", with_literal("event_time", f"{event_time}.0"), "event_time:not an integer"),
        Case("event_time_as_boolean", with_literal("event_time", "true"), "event_time:not an integer"),
        Case("txn_id_as_number", with_literal("txn_id", "42"), "invalid_field:txn_id:not a uuid"),
        Case("card_id_as_number", with_literal("card_id", "1234"), "invalid_field:card_id:not a string"),
        Case("card_id_as_array", with_literal("card_id", '["card"]'), "invalid_field:card_id:not a string"),
        Case("mcc_as_number", with_literal("mcc", "5411"), "invalid_field:mcc:not a string"),
        Case("currency_as_number", with_literal("currency", "978"), "invalid_field:currency:not a string"),
        # -- bad values
        Case("txn_id_not_a_uuid", _encode(record(txn_id="txn-000123")), "invalid_field:txn_id:not a uuid"),
        Case("card_id_empty", _encode(record(card_id="")), "invalid_field:card_id:empty"),
        Case("card_id_blank", _encode(record(card_id="   ")), "invalid_field:card_id:empty"),
        Case("card_id_too_long", _encode(record(card_id="c" * 65)), "invalid_field:card_id:too long"),
        Case("amount_zero", with_literal("amount", "0.00"), "invalid_field:amount:not positive"),
        Case("amount_negative", with_literal("amount", "-12.50"), "invalid_field:amount:not positive"),
        Case("amount_three_decimals", with_literal("amount", "12.345"), "invalid_field:amount:more than 2 decimals"),
        Case("amount_tiny", with_literal("amount", "1e-9"), "invalid_field:amount:more than 2 decimals"),
        Case("currency_lower_case", _encode(record(currency="eur")), "invalid_field:currency:unknown code"),
        Case("currency_no_currency_code", _encode(record(currency="XXX")), "invalid_field:currency:unknown code"),
        Case("currency_gold", _encode(record(currency="XAU")), "invalid_field:currency:unknown code"),
        Case("country_uk_is_not_iso", _encode(record(country="UK")), "invalid_field:country:unknown code"),
        Case("country_alpha3", _encode(record(country="DEU")), "invalid_field:country:unknown code"),
        Case("channel_unknown", _encode(record(channel="web")), "invalid_field:channel:unknown channel"),
        Case("channel_upper_case", _encode(record(channel="POS")), "invalid_field:channel:unknown channel"),
        Case("mcc_three_digits", _encode(record(mcc="541")), "invalid_field:mcc:not 4 digits"),
        Case("mcc_letters", _encode(record(mcc="54a1")), "invalid_field:mcc:not 4 digits"),
        Case(
            "mcc_arabic_indic_digits", _encode(record(mcc="\u0665\u0664\u0661\u0661")), "invalid_field:mcc:not 4 digits"
        ),
        # -- timestamps
        Case("event_time_far_future", _encode(record(event_time=now + _CENTURY_MS)), "event_time:in the future"),
        Case(
            "event_time_past_the_skew",
            _encode(record(event_time=now + events.MAX_CLOCK_SKEW_MS + 60_000)),
            "event_time:in the future",
        ),
        Case("event_time_zero", _encode(record(event_time=0)), "event_time:before 2000-01-01"),
        Case("event_time_negative", _encode(record(event_time=-now)), "event_time:before 2000-01-01"),
        Case("event_time_in_seconds", _encode(record(event_time=now // 1000)), "event_time:before 2000-01-01"),
        Case("event_time_1999", _encode(record(event_time=events.MIN_EPOCH_MS - 1)), "event_time:before 2000-01-01"),
        # -- duplicated keys: two JSON parsers could read two different records from the same bytes
        Case("duplicate_key_amount", valid[:-1] + b',"amount":99999.99}', "duplicate_key:amount"),
        Case("duplicate_key_event_time", valid[:-1] + b',"event_time":0}', "duplicate_key:event_time"),
        Case("duplicate_key_same_value", valid[:-1] + b',"currency":"EUR"}', "duplicate_key:currency"),
        Case("duplicate_key_in_an_extra_object", valid[:-1] + b',"extra":{"a":1,"a":2}}', "duplicate_key"),
        # -- borderline records the contract accepts
        Case("extra_fields", _encode(record(extra="x", device={"os": "ios", "ids": [1, 2]}, note=None)), None),
        Case("upper_case_txn_id", _encode(record(txn_id=_txn_id(rng).upper())), None),
        Case("amount_one_decimal", with_literal("amount", "12.5"), None),
        Case("amount_integer", with_literal("amount", "7"), None),
        Case("amount_exponent", with_literal("amount", "1E+2"), None),
        Case("amount_the_maximum", with_literal("amount", "1000000"), None),
        Case("event_time_at_the_skew_limit", _encode(record(event_time=now + events.MAX_CLOCK_SKEW_MS - 60_000)), None),
        Case("keys_in_another_order", _encode(dict(reversed(list(record().items())))), None),
        Case("whitespace_around", b" \n" + _encode(record()) + b"\n ", None),
        Case(
            "non_ascii_ids",
            _encode(record(card_id="carte_\u00e9\u00e8_\U0001f4b3", merchant_id="\u5546\u6237_7")),
            None,
        ),
    ]
    return corpus


def malformed_cases(now_ms: int | None = None, seed: int | None = None) -> list[Case]:
    """The cases the contract rejects: each must land in the DLQ with its reason."""
    return [case for case in cases(now_ms, seed) if case.expected_reason is not None]


def duplicate_pair(
    now_ms: int | None = None, seed: int | None = None, conflicting: bool = False
) -> tuple[bytes, bytes]:
    """Two valid records with one ``txn_id``: an exact replay, or (``conflicting``) a different amount."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rng = random.Random(seed) if seed is not None else random.Random()
    first = valid_record(_txn_id(rng), now - 1_000)
    second = {**first, "amount": "99.99"} if conflicting else first
    return _encode(first), _encode(second)
