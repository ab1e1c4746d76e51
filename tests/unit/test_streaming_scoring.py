"""The pure parts of spark_jobs.streaming_scoring: per-card feature state, late events, alert records."""

from __future__ import annotations

import json
import random
from dataclasses import asdict

import pytest
from streaming_reference import LATE_FEATURES as REFERENCE_LATE_FEATURES
from streaming_reference import RefEvent, reference_features

from spark_jobs import streaming_scoring as job
from spark_jobs.streaming_scoring import CardEvent, CardState, release_due

from hybrid_platform import events, features
from hybrid_platform.rules import LATE_EVENT_REASON

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _event(txn: str, ts: int, cents: int = 1_000, country: str = "FR", card: str = "c1", offset: int = 0) -> CardEvent:
    return CardEvent(f"{txn}", card, "5411", "pos", country, cents, ts, ts, 0, offset)


def _ref(event: CardEvent) -> RefEvent:
    return RefEvent(**asdict(event))


def _stream(state: CardState, arrivals: list[CardEvent], delay_ms: int) -> dict[str, dict[str, float]]:
    """Feed events in arrival order under a bounded-out-of-orderness watermark, as the job sees them."""
    results: dict[str, dict[str, float]] = {}
    watermark = -1
    for event in arrivals:
        if event.ts <= watermark:  # late: scored without the windows
            results[event.txn_id] = dict(job.LATE_FEATURES)
        else:
            state.pending.append(event)
        watermark = max(watermark, event.ts - delay_ms)
        results.update({e.txn_id: f for e, f in release_due(state, watermark)})
    results.update({e.txn_id: f for e, f in release_due(state, 2**62)})  # the end of the stream
    return results


def _pick(results: dict[str, dict[str, float]], name: str, *txns: str) -> dict[str, float]:
    return {txn: results[txn][name] for txn in txns}


def test_features_match_the_brute_force_reference_with_out_of_order_ties_and_a_late_event() -> None:
    on_time = [
        _event("a", T0, 300, "FR"),
        _event("c", T0 + 30_000, 250, "DE", offset=2),  # arrives before b: out of order within the watermark
        _event("b", T0 + 20_000, 100, "FR", offset=1),
        _event("d", T0 + 30_000, 400, "US", offset=3),  # same event time as c: peers in the RANGE windows
        _event("e", T0 + 61_000, 5_000, "FR", offset=4),  # 1-minute window no longer reaches a
        _event("f", T0 + 630_000, 199, "FR", offset=6),  # its 10-minute window starts exactly at c and d
        _event("g", T0 + 3_661_000, 123, "FR", offset=7),  # its 1-hour window starts exactly at e
    ]
    late = _event("late", T0 + 10_000, 999_99, "BR", offset=5)  # arrives after the watermark passed it
    arrivals = [*on_time[:5], late, *on_time[5:]]
    got = _stream(CardState(), arrivals, delay_ms=15_000)

    expected = reference_features(_ref(e) for e in on_time)
    assert {txn: got[txn] for txn in expected} == expected
    assert got["late"] == job.LATE_FEATURES == REFERENCE_LATE_FEATURES
    gap = features.PREVIOUS_GAP_FEATURE
    # first event -1; c before b in arrival but after it in event time; d is c's peer (same time): gap 0
    assert _pick(got, gap, "a", "b", "c", "d") == {"a": -1.0, "b": 20.0, "c": 10.0, "d": 0.0}
    assert _pick(got, "txn_count_1m", "c", "d", "e") == {"c": 4.0, "d": 4.0, "e": 4.0}  # peers see each other
    assert _pick(got, "amount_sum_1m", "e") == {"e": 57.5}  # b, c, d, e (a is 61 s before e)
    assert _pick(got, "distinct_countries_10m", "d", "f") == {"d": 3.0, "f": 3.0}  # inclusive lower bound
    assert _pick(got, "txn_count_1h", "g") == {"g": 3.0}  # e is exactly 3600 s before g: inclusive


def test_random_streams_match_the_reference() -> None:
    rng = random.Random(7)
    for _ in range(30):
        cards = ["c1", "c2", "c3"]
        on_time = []
        ts = T0
        for offset in range(rng.randint(1, 60)):
            ts += rng.choice([0, 1, 500, 20_000, 90_000, 400_000, 1_500_000])
            on_time.append(
                _event(
                    f"t{offset}", ts, rng.randint(1, 90_000), rng.choice(["FR", "DE", "US"]), rng.choice(cards), offset
                )
            )
        # Arrival order: shuffled within a bounded distance, so nothing is late under a larger watermark delay.
        arrivals = sorted(on_time, key=lambda e: e.ts + rng.randint(0, 1_000))
        got: dict[str, dict[str, float]] = {}
        for card in cards:
            got.update(_stream(CardState(), [e for e in arrivals if e.card_id == card], delay_ms=1_001))
        assert got == reference_features(_ref(e) for e in on_time)


def test_history_is_pruned_to_the_longest_window_and_the_gap_survives_it() -> None:
    state = CardState()
    state.pending = [_event("a", T0), _event("b", T0 + 1_000, offset=1)]
    release_due(state, T0 + 1_000)
    assert job.next_timer(state) is None and state.history_ts == [T0, T0 + 1_000]
    state.pending = [_event("c", T0 + 10 * 3_600_000, offset=2)]
    ((_, later),) = release_due(state, T0 + 10 * 3_600_000)
    assert (later[features.PREVIOUS_GAP_FEATURE], later["txn_count_1h"]) == ((10 * 3_600_000 - 1_000) / 1000, 1.0)
    assert state.history_ts == [T0 + 10 * 3_600_000]  # the older hour was pruned when c was released


def test_pending_events_wait_for_the_watermark_and_set_the_next_timer() -> None:
    state = CardState(pending=[_event("b", T0 + 5_000, offset=1), _event("a", T0, offset=0)])
    assert job.next_timer(state) == T0
    assert [e.txn_id for e, _ in release_due(state, T0 + 4_999)] == ["a"]
    assert job.next_timer(state) == T0 + 5_000
    assert release_due(state, T0 + 4_999) == []


def test_state_round_trips_through_the_value_state_tuple() -> None:
    state = CardState([T0], [500], ["FR"], T0, [_event("p", T0 + 1, offset=9)])
    restored, timer = job.state_from_tuple("c1", job.state_to_tuple(state, T0 + 1))
    assert restored == state and timer == T0 + 1
    assert job.state_from_tuple("c1", None) == (CardState(), None)


def test_alert_message_follows_the_fraud_alerts_contract() -> None:
    event = _event("7d1f0c8e-3b7a-4c55-9c39-0f3f2f4b2a10", T0, 99_99, card="card-1")
    feature_map = {**job.LATE_FEATURES}
    score, reasons, version = job.score_event(
        replace_amount(event, 250_000), feature_map, is_late=True, model=None
    )  # 2,500.00: amount spike alone
    assert reasons == ["amount_spike", LATE_EVENT_REASON]
    key, value = job.alert_message(replace_amount(event, 250_000), score, reasons, version, T0 + 5)
    record = json.loads(value)
    assert key == "card-1"
    assert record == events.alert_record(event.txn_id, "card-1", score, reasons, version, T0, T0 + 5)
    assert set(record) == set(events.load_schema("fraud_alert.v1")["properties"])


def replace_amount(event: CardEvent, cents: int) -> CardEvent:
    from dataclasses import replace

    return replace(event, amount_cents=cents)


def test_parse_batch_gives_exact_cents_and_reasons() -> None:
    import pandas as pd

    valid = events.Transaction(
        "7d1f0c8e-3b7a-4c55-9c39-0f3f2f4b2a10",
        "card-1",
        "m-1",
        "7995",
        __import__("decimal").Decimal("0.29"),
        "EUR",
        "FR",
        "online",
        T0,
    )
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
        {"batchId": 5, "numInputRows": 100, "durationMs": {"triggerExecution": 200}, "eventTime": {"watermark": "W"}},
    ]
    line = job.progress_line(progress)
    assert line == (
        "streaming_scoring: batch 5, 400 rows in 2 batches, 1,000 rows/s while busy, last batch 200 ms, watermark W"
    )
    assert "no micro-batch" in job.progress_line([])
