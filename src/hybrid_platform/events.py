"""The event contract on Kafka (JSON, UTF-8): parsing, validation and the records the platform writes.

``parse_transaction`` is the contract's reference parser (the Spark streaming job runs it per record; the
Flink jobs run its Java twin, held to the same verdicts by conformance tests), so validation is hand-written
on the stdlib ``json`` module (no jsonschema). The JSON Schemas in ``schemas/`` document the same contract
for other consumers; a unit test keeps both in agreement. Parsers never raise: a bad record yields a short,
stable reason (``missing_field:amount``, ``invalid_field:amount:not a number``, ...) for the DLQ.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

#: Records above this size are rejected before parsing: nothing legitimate comes close.
MAX_RECORD_BYTES = 64 * 1024
#: Integer literals longer than this are out of range for every field; they are never handed to int(),
#: whose cost grows quadratically with the digits (and which refuses more than 4,300 by default).
MAX_INTEGER_DIGITS = 32
#: Objects and arrays nested deeper than this are not a record (``invalid_json``). A fixed bound, so every
#: parser of the contract (this one, and the Flink job's Java one) gives the same verdict; Python's own
#: limit depends on the stack the parser runs on.
MAX_NESTING = 64
#: Largest ``transactions_dlq`` record the DLQ topic and its producer must accept. A DLQ record carries the
#: rejected record whole; ``original_text`` keeps that at most 4/3 of its size (base64 when JSON escaping
#: would grow it more), so any record Kafka accepted with its default limit (message.max.bytes = 1 MiB + 12
#: bytes) fits, with room for the envelope. Kafka's own 1 MiB default would refuse a 1 MiB record's DLQ
#: record, fail the exactly-once sink and restart the job on the same record forever.
DLQ_MAX_MESSAGE_BYTES = 2 * 1024 * 1024
#: A DLQ record keeps at most this much of the rejected record: whole, any record up to Kafka's default
#: limit (message.max.bytes, 1 MiB + 12 bytes). That limit applies to the compressed batch, so a compressed
#: record can be far larger unpacked; its DLQ copy must still fit the DLQ topic (or the DLQ writer fails, and
#: the job restarts on the same record forever). Beyond it the reason says so and carries the whole record's
#: length and SHA-256.
DLQ_MAX_ORIGINAL_BYTES = 1_048_588
MAX_ID_LENGTH = 64
MAX_AMOUNT = Decimal("1000000")
CENT = Decimal("0.01")
#: 2000-01-01T00:00:00Z: older timestamps are unit mistakes (seconds instead of milliseconds), not data.
MIN_EPOCH_MS = 946_684_800_000
#: 2100-01-01T00:00:00Z: upper bound for simulated label times, which may lie beyond the wall clock.
MAX_EPOCH_MS = 4_102_444_800_000
#: Event times may run ahead of our clock by this much (producer clock skew), not more.
MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000
CHANNELS = ("pos", "online", "atm")


def _codes(text: str) -> frozenset[str]:
    """Whitespace-separated codes: a long list stays a readable block instead of one line per code."""
    return frozenset(text.split())


#: ISO 4217 codes of circulating currencies (funds, precious metals and test codes excluded).
CURRENCIES = _codes(
    """AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
    CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ
    GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
    LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SYP SZL THB TJS
    TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG"""
)

#: ISO 3166-1 alpha-2 officially assigned codes (the 249 countries and territories).
COUNTRIES = _codes(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
    BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET
    FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM
    IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD
    ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST
    SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS
    YE YT ZA ZM ZW"""
)

TRANSACTION_FIELDS = (
    "txn_id",
    "card_id",
    "merchant_id",
    "mcc",
    "amount",
    "currency",
    "country",
    "channel",
    "event_time",
)
LABEL_FIELDS = ("txn_id", "is_fraud", "labeled_at")
SCHEMA_NAMES = ("transaction.v1", "fraud_label.v1", "fraud_alert.v1", "fraud_decision.v1", "transaction_dlq.v1")

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class Transaction:
    txn_id: str  # lower-case UUID; the idempotency key
    card_id: str
    merchant_id: str
    mcc: str
    amount: Decimal  # > 0, two decimal places
    currency: str
    country: str
    channel: str
    event_time: int  # epoch milliseconds, UTC

    def to_json(self) -> str:
        """Compact JSON with ``amount`` as a number with exactly two decimals (json.dumps cannot)."""
        text = json.dumps
        return (
            f'{{"txn_id":{text(self.txn_id)},"card_id":{text(self.card_id)},'
            f'"merchant_id":{text(self.merchant_id)},"mcc":{text(self.mcc)},"amount":{self.amount:.2f},'
            f'"currency":{text(self.currency)},"country":{text(self.country)},"channel":{text(self.channel)},'
            f'"event_time":{self.event_time}}}'
        )


@dataclass(frozen=True, slots=True)
class FraudLabel:
    txn_id: str
    is_fraud: bool
    labeled_at: int  # epoch milliseconds, UTC; simulated, so it may lie in the future

    def to_json(self) -> str:
        return json.dumps(
            {"txn_id": self.txn_id, "is_fraud": self.is_fraud, "labeled_at": self.labeled_at}, separators=(",", ":")
        )


class _FieldError(Exception):
    """Internal: carries the reason out of the field checks; never escapes this module."""


class _DuplicateKeyError(Exception):
    """Internal: an object names the same key twice."""


class _HugeInteger(Decimal):
    """An integer literal too long for any field (see ``MAX_INTEGER_DIGITS``); range checks reject it."""


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and would poison every aggregate downstream.
    raise ValueError(f"non-finite number {name}")


def _parse_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= MAX_INTEGER_DIGITS else _HugeInteger(text)


#: Field names a duplicate-key reason may quote; any other key is not echoed (the reason stays short).
_KNOWN_FIELDS = frozenset(TRANSACTION_FIELDS) | frozenset(LABEL_FIELDS)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last of duplicated keys, other JSON parsers the first or fail: a record that two
    # consumers (Flink SQL's JSON_VALUE reads event_time from the same bytes) would read differently.
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise _DuplicateKeyError(key if key in _KNOWN_FIELDS else "")
        record[key] = value
    return record


def too_deep(text: str, limit: int = MAX_NESTING) -> bool:
    """True when objects and arrays nest deeper than ``limit`` (brackets inside strings do not count)."""
    if text.count("{") + text.count("[") <= limit:  # the common case, in C
        return False
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
            if depth > limit:
                return True
        elif char in "}]" and depth > 0:
            depth -= 1
    return False


def _decode_object(raw: bytes | str | None) -> tuple[dict[str, Any] | None, str | None]:
    if raw is None or len(raw) == 0:
        return None, "empty"
    if len(raw) > MAX_RECORD_BYTES:  # characters for str: a str that long is at least that many bytes
        return None, "too_large"
    if isinstance(raw, bytes | bytearray):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, "invalid_utf8"
    else:
        text = raw
    if not text.strip():
        return None, "empty"
    if too_deep(text):
        return None, "invalid_json"
    try:
        # parse_float=Decimal keeps "12.30" exact for the two-decimals rule.
        value = json.loads(
            text,
            parse_float=Decimal,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except _DuplicateKeyError as exc:
        return None, f"duplicate_key:{exc}" if str(exc) else "duplicate_key"
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays
        return None, "invalid_json"
    if not isinstance(value, dict):
        return None, "not_an_object"
    return value, None


def _required(record: dict[str, Any], name: str) -> Any:
    value = record.get(name)
    if value is None:  # JSON null counts as missing
        raise _FieldError(f"missing_field:{name}")
    return value


def _invalid(name: str, detail: str) -> _FieldError:
    return _FieldError(f"invalid_field:{name}:{detail}")


def _uuid(record: dict[str, Any], name: str) -> str:
    value = _required(record, name)
    if not isinstance(value, str) or _UUID.fullmatch(value) is None:
        raise _invalid(name, "not a uuid")
    return value.lower()  # one spelling per id, so deduplication on it is exact


def _identifier(record: dict[str, Any], name: str) -> str:
    value = _required(record, name)
    if not isinstance(value, str):
        raise _invalid(name, "not a string")
    if not value.strip():
        raise _invalid(name, "empty")
    if len(value) > MAX_ID_LENGTH:
        raise _invalid(name, "too long")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape: no UTF-8 spelling exists,
            raise _invalid(name, "not valid unicode") from None  # so Flink's Python-to-Java hand-off fails
    return value


def _code(record: dict[str, Any], name: str, allowed: frozenset[str] | tuple[str, ...], unknown: str) -> str:
    value = _required(record, name)
    if not isinstance(value, str):
        raise _invalid(name, "not a string")
    if value not in allowed:
        raise _invalid(name, unknown)
    return value


def _mcc(record: dict[str, Any]) -> str:
    value = _required(record, "mcc")
    if not isinstance(value, str):
        raise _invalid("mcc", "not a string")
    if len(value) != 4 or not (value.isascii() and value.isdigit()):
        raise _invalid("mcc", "not 4 digits")
    return value


def _amount(record: dict[str, Any]) -> Decimal:
    value = _required(record, "amount")
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _invalid("amount", "not a number")
    amount = Decimal(value)
    if amount <= 0:
        raise _invalid("amount", "not positive")
    if amount > MAX_AMOUNT:
        raise _invalid("amount", "too large")
    cents = amount.quantize(CENT)  # safe: the range check above bounds the digits
    if cents != amount:
        raise _invalid("amount", "more than 2 decimals")
    return cents


def _epoch_ms(record: dict[str, Any], name: str, latest: int) -> int:
    value = _required(record, name)
    if isinstance(value, _HugeInteger):
        raise _invalid(name, "in the future" if value > 0 else "before 2000-01-01")
    # type() rather than isinstance(): bool is an int subclass. Floats arrive as Decimal and are rejected.
    if type(value) is not int:
        raise _invalid(name, "not an integer")
    if value < MIN_EPOCH_MS:
        raise _invalid(name, "before 2000-01-01")
    if value > latest:
        raise _invalid(name, "in the future")
    return value


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_transaction(raw: bytes | str | None, now_ms: int | None = None) -> tuple[Transaction | None, str | None]:
    """``(transaction, None)`` for a valid record, ``(None, reason)`` otherwise. Never raises.

    ``now_ms`` (default: the wall clock) bounds ``event_time`` to at most one day ahead.
    """
    try:
        record, reason = _decode_object(raw)
        if record is None:
            return None, reason
        latest = (_now_ms() if now_ms is None else now_ms) + MAX_CLOCK_SKEW_MS
        return (
            Transaction(
                txn_id=_uuid(record, "txn_id"),
                card_id=_identifier(record, "card_id"),
                merchant_id=_identifier(record, "merchant_id"),
                mcc=_mcc(record),
                amount=_amount(record),
                currency=_code(record, "currency", CURRENCIES, "unknown code"),
                country=_code(record, "country", COUNTRIES, "unknown code"),
                channel=_code(record, "channel", CHANNELS, "unknown channel"),
                event_time=_epoch_ms(record, "event_time", latest),
            ),
            None,
        )
    except _FieldError as exc:
        return None, str(exc)
    except Exception as exc:  # a parser bug must reach the DLQ, not kill the Flink job
        return None, f"parse_error:{type(exc).__name__}"


def parse_label(raw: bytes | str | None) -> tuple[FraudLabel | None, str | None]:
    """``(label, None)`` or ``(None, reason)``, like ``parse_transaction``. Never raises."""
    try:
        record, reason = _decode_object(raw)
        if record is None:
            return None, reason
        is_fraud = _required(record, "is_fraud")
        if not isinstance(is_fraud, bool):
            raise _invalid("is_fraud", "not a boolean")
        return (
            FraudLabel(
                txn_id=_uuid(record, "txn_id"),
                is_fraud=is_fraud,
                labeled_at=_epoch_ms(record, "labeled_at", MAX_EPOCH_MS),
            ),
            None,
        )
    except _FieldError as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"parse_error:{type(exc).__name__}"


def original_text(raw: bytes | None) -> tuple[str, str]:
    """``(original, encoding)``: the record as text, or base64 when it is not valid UTF-8.

    Also base64 when the text would grow more than base64 does once JSON-escaped in the DLQ record
    (control characters take 6 bytes each): the DLQ record then stays within ``DLQ_MAX_MESSAGE_BYTES``.
    """
    if raw is None:
        return "", "utf-8"
    encoded = base64.b64encode(raw).decode("ascii")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return encoded, "base64"
    escaped_bytes = len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2
    return (text, "utf-8") if escaped_bytes <= len(encoded) else (encoded, "base64")


def original_bytes(original: str, encoding: str) -> bytes:
    """The rejected record exactly as received, from a DLQ record's ``original`` and ``original_encoding``."""
    if encoding == "base64":
        return base64.b64decode(original, validate=True)
    if encoding == "utf-8":
        return original.encode("utf-8")
    raise ValueError(f"unknown original_encoding {encoding!r}; expected 'utf-8' or 'base64'")


def truncated_reason(reason: str, raw: bytes) -> str:
    """The reason of a DLQ record that keeps only the first ``DLQ_MAX_ORIGINAL_BYTES`` of ``raw``."""
    digest = hashlib.sha256(raw).hexdigest()
    return f"{reason}; original truncated to its first {DLQ_MAX_ORIGINAL_BYTES} of {len(raw)} bytes, sha256 {digest}"


def dlq_record(
    raw: bytes | None,
    reason: str,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    received_at: int,
) -> dict[str, object]:
    """A ``transactions_dlq`` record: the rejected record as received, why, and where it came from."""
    if raw is not None and len(raw) > DLQ_MAX_ORIGINAL_BYTES:
        reason = truncated_reason(reason, raw)
        raw = raw[:DLQ_MAX_ORIGINAL_BYTES]
    original, encoding = original_text(raw)
    return {
        "original": original,
        "original_encoding": encoding,
        "reason": reason,
        "source_topic": source_topic,
        "source_partition": source_partition,
        "source_offset": source_offset,
        "received_at": received_at,
    }


def alert_record(
    txn_id: str,
    card_id: str,
    score: float,
    reasons: list[str] | tuple[str, ...],
    model_version: str,
    event_time: int,
    scored_at: int,
) -> dict[str, object]:
    """A ``fraud_alerts`` record; ``score`` is rounded to 6 decimals. A score outside [0, 1] is a bug."""
    if not 0.0 <= score <= 1.0:  # also rejects NaN
        raise ValueError(f"score {score!r} is outside [0, 1]")
    return {
        "txn_id": txn_id,
        "card_id": card_id,
        "score": round(float(score), 6),
        "reasons": [str(reason) for reason in reasons],
        "model_version": model_version,
        "event_time": event_time,
        "scored_at": scored_at,
    }


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``name`` (``"transaction.v1"``, or with ``.json``) shipped in this package."""
    stem = name.removesuffix(".json")
    if stem not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r}; available: {', '.join(SCHEMA_NAMES)}")
    text = resources.files("hybrid_platform").joinpath("schemas", f"{stem}.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
