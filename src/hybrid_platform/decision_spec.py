"""The decision spec: the Python definitions rendered as data for the Flink job's Java operators.

The Java side (``flink_jobs/jvm``) knows no card, merchant or currency: it parses records, keeps per-key
history, computes window features and scores with rules and a logistic regression, all as this document
says. Python stays the one source (``events`` for the record contract, ``features``, ``rules``,
``model``); conformance tests run the Java classes over the same records as the Python functions and
require the same verdicts, features, scores and decisions.
"""

from __future__ import annotations

import json
from typing import Any

from hybrid_platform import events, features, model, rules

#: The transaction contract as field checks, in the order ``events.parse_transaction`` applies them (the
#: first failing check gives the reason).
TRANSACTION_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "txn_id", "kind": "uuid"},
    {"name": "card_id", "kind": "identifier", "max_length": events.MAX_ID_LENGTH},
    {"name": "merchant_id", "kind": "identifier", "max_length": events.MAX_ID_LENGTH},
    {"name": "mcc", "kind": "digits", "length": 4},
    {"name": "amount", "kind": "decimal", "precision": 12, "scale": 2, "max": str(events.MAX_AMOUNT)},
    {"name": "currency", "kind": "code", "values": sorted(events.CURRENCIES), "unknown": "unknown code"},
    {"name": "country", "kind": "code", "values": sorted(events.COUNTRIES), "unknown": "unknown code"},
    {"name": "channel", "kind": "code", "values": list(events.CHANNELS), "unknown": "unknown channel"},
    {
        "name": "event_time",
        "kind": "epoch_ms",
        "min": events.MIN_EPOCH_MS,
        "min_reason": "before 2000-01-01",
        "max_ahead_ms": events.MAX_CLOCK_SKEW_MS,
    },
)


#: The label contract, in the order ``events.parse_label`` checks it.
LABEL_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "txn_id", "kind": "uuid"},
    {"name": "is_fraud", "kind": "boolean"},
    {
        "name": "labeled_at",
        "kind": "epoch_ms",
        "min": events.MIN_EPOCH_MS,
        "min_reason": "before 2000-01-01",
        "max": events.MAX_EPOCH_MS,
    },
)


def record_spec(name: str) -> dict[str, Any]:
    """The ``transaction`` or ``label`` contract as field checks (what the Java parser reads)."""
    known = sorted({*events.TRANSACTION_FIELDS, *events.LABEL_FIELDS})
    if name == "transaction":
        fields, key, time = TRANSACTION_FIELDS, features.KEY_COLUMN, features.TIME_COLUMN
    elif name == "label":
        fields, key, time = LABEL_FIELDS, None, "labeled_at"
    else:
        raise ValueError(f"unknown record {name!r}; known: transaction, label")
    spec: dict[str, Any] = {
        "name": name,
        "max_bytes": events.MAX_RECORD_BYTES,
        "known_fields": known,
        "id": "txn_id",
        "time": time,
        "fields": list(fields),
    }
    if key:
        spec["key"] = key
    return spec


def record_spec_json(name: str) -> str:
    return json.dumps(record_spec(name), separators=(",", ":"), sort_keys=True)


def _condition(condition: rules.Condition) -> dict[str, Any]:
    if isinstance(condition.value, frozenset):
        return {"input": condition.input, "op": condition.op, "values": sorted(condition.value)}
    return {"input": condition.input, "op": condition.op, "value": float(condition.value)}


def spec(review_threshold: float = rules.DEFAULT_ALERT_THRESHOLD) -> dict[str, Any]:
    """The decision spec as a JSON-ready document."""
    if not 0.0 <= review_threshold <= rules.DECLINE_THRESHOLD:
        raise ValueError(
            f"alert threshold {review_threshold} must be between 0 and the decline threshold {rules.DECLINE_THRESHOLD}"
        )
    return {
        "record": record_spec("transaction"),
        "features": {
            "version": features.FEATURE_SPEC_VERSION,
            "windows": [
                {"name": f.name, "function": f.function, "column": f.column, "seconds": f.window_seconds}
                for f in features.WINDOW_FEATURES
            ],
            "gap": features.PREVIOUS_GAP_FEATURE,
            "horizon_seconds": features.HORIZON_SECONDS,
            "allowed_lateness_seconds": features.ALLOWED_LATENESS_SECONDS,
            "max_ahead_seconds": features.MAX_AHEAD_SECONDS,
            "max_events_per_key": features.MAX_EVENTS_PER_KEY,
        },
        "scoring": {
            "rules": [
                {"name": rule.name, "weight": rule.weight, "conditions": [_condition(c) for c in rule.conditions]}
                for rule in rules.RULES
            ],
            "model_inputs": [
                {"kind": d.kind, "field": d.field, **({"name": d.name} if d.name else {}), "values": list(d.values)}
                for d in model.MODEL_INPUTS
            ],
            "review_threshold": review_threshold,
            "decline_threshold": rules.DECLINE_THRESHOLD,
            "model_reason_prefix": rules.MODEL_REASON_PREFIX,
            "rules_only_version": model.RULES_ONLY_VERSION,
        },
    }


def render(review_threshold: float = rules.DEFAULT_ALERT_THRESHOLD) -> str:
    """The spec as compact JSON text, what the Java operators read."""
    return json.dumps(spec(review_threshold), separators=(",", ":"), sort_keys=True)
