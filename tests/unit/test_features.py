"""The one feature definition: names, bounds, and the as-of-arrival algorithm against a brute-force reference."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from hybrid_platform import features

DAY_MS = 86_400_000


def test_feature_names_are_the_model_inputs_contract() -> None:
    assert features.FEATURE_NAMES == (
        "txn_count_1m",
        "amount_sum_1m",
        "distinct_countries_10m",
        "txn_count_1h",
        "amount_sum_1h",
        "seconds_since_prev_txn",
    )
    assert features.FEATURE_SPEC_VERSION == "card_features/v2"
    assert features.HORIZON_SECONDS == 3600
    assert features.history_columns() == ["amount", "country"]


def _brute_force(arrived: list[tuple[int, Decimal, str]], t: int, amount: Decimal, country: str) -> dict[str, float]:
    """Scan every earlier arrival of the card: obviously right, no state, no eviction."""
    result: dict[str, float] = {}
    for feature in features.WINDOW_FEATURES:
        inside = [(ts, a, c) for ts, a, c in arrived if t - feature.window_seconds * 1000 < ts <= t]
        inside.append((t, amount, country))
        if feature.function == "COUNT":
            result[feature.name] = float(len(inside))
        elif feature.function == "SUM":
            result[feature.name] = float(sum((a for _, a, _ in inside), Decimal(0)))
        else:
            result[feature.name] = float(len({c for _, _, c in inside}))
    earlier = [ts for ts, _, _ in arrived if ts <= t]
    gap = t - max(earlier) if earlier else -1
    result[features.PREVIOUS_GAP_FEATURE] = gap / 1000.0 if 0 <= gap < 3_600_000 else -1.0
    return result


def test_online_features_equal_a_brute_force_scan_of_the_arrivals() -> None:
    """Out-of-order and late arrivals included (within the allowed lateness): exact equality."""
    rng = random.Random(4)
    online = features.OnlineFeatures()
    history: features.History | None = None
    arrived: list[tuple[int, Decimal, str]] = []
    clock = 1_767_225_600_000
    for _ in range(3_000):
        clock += rng.choice([5, 200, 1_000, 20_000, 90_000])
        t = clock - rng.choice([0, 0, 0, 150, 4_000, 250_000])  # on time, slightly out of order, late
        amount = Decimal(rng.randint(1, 50_000)) / 100
        country = rng.choice(["DE", "FR", "US"])
        expected = _brute_force(arrived, t, amount, country)
        got, history = online.update(history, t, {"amount": amount, "country": country}, clock)
        assert got == expected
        arrived.append((t, amount, country))


def test_history_keeps_the_horizon_plus_the_allowed_lateness() -> None:
    online = features.OnlineFeatures()
    history: features.History | None = None
    start = 1_767_225_600_000
    keep_ms = (features.HORIZON_SECONDS + features.ALLOWED_LATENESS_SECONDS) * 1000
    for minute in range(200):
        t = start + minute * 60_000
        _, history = online.update(history, t, {"amount": Decimal("1.00"), "country": "DE"}, t)
    assert history is not None
    assert history.times[0] > history.times[-1] - keep_ms
    assert len(history.times) == keep_ms // 60_000


def test_a_far_future_stamp_does_not_evict_the_history() -> None:
    online = features.OnlineFeatures()
    now = 1_767_225_600_000
    history: features.History | None = None
    for i in range(10):
        _, history = online.update(history, now + i, {"amount": Decimal("2.00"), "country": "DE"}, now + i)
    _, history = online.update(history, now + 20 * 3_600_000, {"amount": Decimal("2.00"), "country": "DE"}, now + 10)
    got, history = online.update(history, now + 11, {"amount": Decimal("2.00"), "country": "DE"}, now + 11)
    assert got["txn_count_1m"] == pytest.approx(11.0, abs=0)
    assert history is not None and len(history.times) == 12


def test_a_key_keeps_at_most_the_cap() -> None:
    online = features.OnlineFeatures()
    now = 1_767_225_600_000
    history: features.History | None = None
    for i in range(features.MAX_EVENTS_PER_KEY + 10):
        got, history = online.update(history, now + i, {"amount": Decimal("0.01"), "country": "DE"}, now + i)
    assert history is not None and len(history.times) == features.MAX_EVENTS_PER_KEY
    assert got["txn_count_1m"] == features.MAX_EVENTS_PER_KEY + 1  # the kept history plus the event itself
    # An event older than everything kept is dropped, not the newest ones.
    _, after = online.update(history, now, {"amount": Decimal("0.01"), "country": "DE"}, now + 5_000)
    assert after is not None and after.times == history.times
