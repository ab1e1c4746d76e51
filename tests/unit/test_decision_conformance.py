"""The Flink job's Java operators decide exactly as the Python definitions do.

The job parses, keeps per-card history, computes features, scores and writes records in Java
(``flink_jobs/jvm``) from the spec Python renders (``decision_spec``). These tests run the job's own Java
classes (through ``dataplatform.flink.Conformance``, no Flink runtime) and the Python functions over the
same records, and require the same verdicts, dead letters, features, scores, reasons and decisions.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hybrid_platform import config, decision_spec, events, features, flink_jar, generator, malformed_corpus, model
from hybrid_platform.decisions import ArrivalDecider, alert_of, decision_record
from hybrid_platform.model import LogisticRegressionParameters, ModelArtifact

NOW_MS = 1_767_225_600_000


def _java(
    lines: list[tuple[int, bytes]], tmp_path: Path, artifact: ModelArtifact | None = None
) -> list[dict[str, Any]]:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(decision_spec.render())
    args = [str(spec_file)]
    if artifact is not None:
        model_file = tmp_path / "model.json"
        model_file.write_text(artifact.to_json())
        args.append(str(model_file))
    command = flink_jar.java_command(config.load(), "dataplatform.flink.Conformance", *args)
    stdin = "".join(f"{now} {base64.b64encode(raw).decode()}\n" for now, raw in lines)
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.split("\n") if line]


def _mutations(rng: random.Random, valid: bytes, count: int) -> list[bytes]:
    """Damaged copies of a valid record: byte flips, cuts, insertions, and JSON edits of one field."""
    record = json.loads(valid)
    out: list[bytes] = []
    literals = ["null", "true", "0", "-1", "1e3", "12.345", "1.5e-2", '"x"', "[]", "{}", '"\\ud800"', '"  "', "1" * 40]
    for _ in range(count):
        choice = rng.randrange(5)
        data = bytearray(valid)
        if choice == 0:
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            out.append(bytes(data))
        elif choice == 1:
            out.append(bytes(data[: rng.randrange(len(data))]))
        elif choice == 2:
            position = rng.randrange(len(data))
            out.append(bytes(data[:position]) + bytes([rng.randrange(256)]) + bytes(data[position:]))
        elif choice == 3:
            field = rng.choice(list(record))
            text = json.dumps({k: v for k, v in record.items() if k != field}, separators=(",", ":"))
            out.append((text[:-1] + f',"{field}":{rng.choice(literals)}}}').encode())
        else:
            field = rng.choice(list(record))
            out.append(valid.replace(f'"{field}"'.encode(), b'"' + field.encode() + b'","' + field.encode() + b'"', 1))
    return out


def test_java_parser_gives_the_python_verdict_on_every_record(tmp_path: Path) -> None:
    records = [case.raw for case in malformed_corpus.cases(now_ms=NOW_MS, seed=3)]
    synthesized = generator.synthesize(7, 3_000, NOW_MS - 60_000, 200.0, late_fraction=0.05, malformed_fraction=0.2)
    records += [r.value for r in synthesized if r.topic == "transactions"]
    records += _mutations(random.Random(5), records[-1], 3_000)
    records += [
        b"  \xc2\xa0\n",
        "\u3000".encode(),
        b"\xe2\x80\xa8{}",
        b'{"a":1,"a":2,"b":tru}',
        b'{"amount":1e99999999999}',
        # Larger unpacked than any DLQ record may be (a compressed batch passes Kafka's limit): kept in part.
        b"\x00" * (3 * 1024 * 1024),
        b'{"note": "' + b"x" * (2 * 1024 * 1024) + b'"}',
    ]
    results = _java([(NOW_MS, raw) for raw in records], tmp_path)
    assert len(results) == len(records)
    mismatches = []
    for raw, java in zip(records, results, strict=True):
        txn, reason = events.parse_transaction(raw, now_ms=NOW_MS)
        if txn is None:
            assert reason is not None
            expected = events.dlq_record(raw, reason, "conformance", 0, 0, 0)
            letter = java.get("dead_letter")
            if (
                letter is None
                or letter["reason"] != expected["reason"]
                or (letter["original"], letter["original_encoding"])
                != (expected["original"], expected["original_encoding"])
            ):
                mismatches.append((raw[:120], reason, java))
        else:
            decision = java.get("decision")
            if decision is None or (decision["txn_id"], decision["card_id"], decision["event_time"]) != (
                txn.txn_id,
                txn.card_id,
                txn.event_time,
            ):
                mismatches.append((raw[:120], "valid", java))
    assert not mismatches, f"{len(mismatches)} of {len(records)} differ, e.g. {mismatches[:3]}"
    verdicts = {events.parse_transaction(raw, now_ms=NOW_MS)[1] for raw in records}
    assert len(verdicts) > 25, "the records cover many reasons, not one"


def _trained_looking_model() -> ModelArtifact:
    names = (*features.FEATURE_NAMES, *model.DERIVED_INPUT_NAMES, "country=DE", "country=US", "country=ZZ")
    rng = random.Random(2)
    return ModelArtifact(
        model_version="lr-conformance",
        kind=model.KIND_LOGISTIC_REGRESSION,
        feature_names=names,
        feature_spec_version=features.FEATURE_SPEC_VERSION,
        parameters=LogisticRegressionParameters(
            means=tuple(rng.uniform(-2, 50) for _ in names),
            stds=tuple(0.0 if i == 3 else rng.uniform(0.1, 40) for i, _ in enumerate(names)),
            coefficients=tuple(0.0 if i == 5 else rng.uniform(-2, 2) for i, _ in enumerate(names)),
            intercept=-3.2,
        ),
        threshold=0.7,
        code_version="test",
        created_at="2026-12-01T00:00:00+00:00",
    )


@pytest.mark.parametrize("with_model", [False, True], ids=["rules only", "with a model"])
def test_java_decides_as_python_in_arrival_order(tmp_path: Path, with_model: bool) -> None:
    """Generated traffic (fraud bursts, 10% out of order, late events) in arrival order: same decisions."""
    artifact = _trained_looking_model() if with_model else None
    compiled = artifact.compiled if artifact else None
    synthesized = list(generator.synthesize(21, 12_000, NOW_MS, 100.0, late_fraction=0.05))
    transactions = [r for r in synthesized if r.topic == "transactions"]
    # A small card population, so histories grow and windows matter.
    cards = [f"card_{i:03d}" for i in range(60)]
    lines: list[tuple[int, bytes]] = []
    for index, record in enumerate(transactions):
        assert record.transaction is not None
        txn = replace(record.transaction, card_id=cards[index % len(cards)])
        lines.append((NOW_MS + int(record.offset_ms), txn.to_json().encode()))
    results = _java(lines, tmp_path, artifact)

    python = ArrivalDecider()
    differences = []
    for offset, ((now, raw), java) in enumerate(zip(lines, results, strict=True)):
        txn, reason = events.parse_transaction(raw, now_ms=now)
        assert txn is not None, reason
        decision = python.decide(txn, now, compiled)
        expected = decision_record(txn, decision, 0, 0, offset, 0)
        got = java["decision"]
        if got["features"] != expected["features"] or got["reasons"] != expected["reasons"]:
            differences.append((offset, expected, got))
            continue
        assert got["score"] == pytest.approx(expected["score"], abs=2e-6)
        assert {k: v for k, v in got.items() if k not in {"score", "source_ts"}} == {
            k: v for k, v in expected.items() if k not in {"score", "source_ts"}
        }
        alert = java["alert"]
        if decision.score >= 0.5:
            assert alert is not None and {k: v for k, v in alert.items() if k != "score"} == {
                k: v for k, v in alert_of(txn, decision, 0).items() if k != "score"
            }
        else:
            assert alert is None
        history = python.histories.get(txn.card_id)
        assert java["history_events"] == (len(history.times) if history else 0)
    assert not differences, f"{len(differences)} decisions differ, e.g. {differences[:2]}"
    decided = {r["decision"]["decision"] for r in results}
    assert decided >= {"approve", "review"}, "the traffic exercises more than one decision"
    assert max(r["history_events"] for r in results) > 20, "cards build up history"


def test_state_per_card_is_bounded_by_the_cap_and_by_time(tmp_path: Path) -> None:
    """A card flooded with events keeps the newest MAX_EVENTS_PER_KEY; a far-future stamp evicts nothing."""
    base = events.Transaction(
        txn_id="00000000-0000-4000-8000-000000000000",
        card_id="card_abuse",
        merchant_id="m1",
        mcc="5411",
        amount=events.Decimal("1.00"),
        currency="EUR",
        country="DE",
        channel="online",
        event_time=NOW_MS,
    )
    flood = features.MAX_EVENTS_PER_KEY + 50
    lines = [
        (
            NOW_MS + i,
            replace(base, txn_id=f"00000000-0000-4000-8000-{i:012d}", event_time=NOW_MS + i).to_json().encode(),
        )
        for i in range(flood)
    ]
    future = NOW_MS + flood + 20 * 3_600_000  # 20 hours ahead: valid (< 1 day of skew), not a clock to trust
    lines.append(
        (
            NOW_MS + flood,
            replace(base, txn_id="00000000-0000-4000-8000-999999999999", event_time=future).to_json().encode(),
        )
    )
    lines.append(
        (
            NOW_MS + flood + 1,
            replace(base, txn_id="00000000-0000-4000-8000-999999999998", event_time=NOW_MS + flood + 1)
            .to_json()
            .encode(),
        )
    )
    results = _java(lines, tmp_path)
    counts = [r["history_events"] for r in results]
    assert max(counts) == features.MAX_EVENTS_PER_KEY
    assert counts[features.MAX_EVENTS_PER_KEY - 2] == features.MAX_EVENTS_PER_KEY - 1
    # The event after the far-future one still sees the card's last minute (the cap's worth of it).
    last = results[-1]["decision"]["features"]
    assert last["txn_count_1m"] == features.MAX_EVENTS_PER_KEY
    assert last["seconds_since_prev_txn"] == pytest.approx(0.002, abs=0)
