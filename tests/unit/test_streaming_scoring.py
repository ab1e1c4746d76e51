"""The pure parts of spark_jobs.streaming_scoring: the card's state in Spark, parsing, the records it writes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from spark_jobs import streaming_scoring as job

from hybrid_platform import events, features
from hybrid_platform.decisions import ArrivalDecider, decision_record

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _txn(txn_id: str, t: int, amount: str = "10.00", country: str = "FR") -> events.Transaction:
    return events.Transaction(txn_id, "card-1", "m-1", "5411", Decimal(amount), "EUR", country, "pos", t)


def test_history_round_trips_through_the_value_state_tuple() -> None:
    online = features.OnlineFeatures()
    history = None
    for i, (amount, country) in enumerate([("0.29", "FR"), ("1234.56", "DE"), ("10.00", "FR")]):
        _, history = online.update(history, T0 + i * 1_000, {"amount": Decimal(amount), "country": country}, T0)
    assert history is not None
    restored = job.history_from_tuple(job.history_to_tuple(history))
    assert restored == history
    assert job.history_from_tuple(None) is None


def test_a_decision_written_by_the_spark_job_follows_the_contract() -> None:
    decider = ArrivalDecider()
    txn = _txn("7d1f0c8e-3b7a-4c55-9c39-0f3f2f4b2a10", T0, "2500.00")
    decision = decider.decide(txn, T0, None)
    record = decision_record(txn, decision, T0 + 5, 1, 42, T0 - 3)
    assert record["decision"] == "approve" and record["reasons"] == ["amount_spike"]
    assert set(record) == set(events.load_schema("fraud_decision.v1")["properties"])
    assert json.loads(json.dumps(record)) == record


def test_parse_batch_gives_exact_cents_and_reasons() -> None:
    import pandas as pd

    valid = _txn("7d1f0c8e-3b7a-4c55-9c39-0f3f2f4b2a10", T0, "0.29")
    frame = job.parse_batch(pd.Series([valid.to_json().encode(), b"{not json", b'{"txn_id": 1}', None]))
    assert frame.loc[0, "ok"] and frame.loc[0, "amount_cents"] == 29 and frame.loc[0, "card_id"] == "card-1"
    assert list(frame["reason"][1:]) == ["invalid_json", "invalid_field:txn_id:not a uuid", "empty"]
    assert not frame["ok"][1:].any() and frame["received_at"][1:].notna().all()


def test_realtime_trigger_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        job.main(["--trigger", "realtime"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Real-Time Mode" in error and "stateless" in error


def test_progress_line_sums_the_batches_since_the_last_line() -> None:
    progress = [
        {"batchId": 4, "numInputRows": 300, "durationMs": {"triggerExecution": 200}},
        {"batchId": 5, "numInputRows": 100, "durationMs": {"triggerExecution": 200}},
    ]
    line = job.progress_line(progress)
    assert line == "streaming_scoring: batch 5, 400 rows in 2 batches, 1,000 rows/s while busy, last batch 200 ms"
    assert "no micro-batch" in job.progress_line([])
