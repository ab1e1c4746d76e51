"""Synthetic card payments: realistic traffic with injected fraud, late and malformed records, and labels.

``synthesize`` is the pure core: a deterministic stream of records for a seed (same arguments, same
bytes), each carrying its ground truth (fraud or not, which pattern, which defect). ``produce`` paces
that stream onto Kafka in real time. Event time is tied to the send schedule, so a burst "within a
minute" or a jump "minutes apart" really is that far apart when the pipeline sees it.

Fraud patterns:

* ``card_testing``: 3-7 online payments under 5.00 on one card at one merchant within a minute;
* ``geo_velocity``: a card-present payment in a far-away country minutes after one at home;
* ``high_risk_amount``: an unusually large online payment at a high-risk MCC (gambling, quasi-cash,
  money transfer, direct marketing).

Legitimate card-present payments stay in the card's home country, so a country jump at a terminal is a
real signal; online payments abroad are common and legitimate.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import itertools
import json
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from hybrid_platform import names
from hybrid_platform.config import PlatformConfig
from hybrid_platform.events import CENT, DLQ_MAX_MESSAGE_BYTES, TRANSACTION_FIELDS, FraudLabel, Transaction

KIND_VALID = "valid"
KIND_LATE = "late"
KIND_MALFORMED = "malformed"
KIND_LABEL = "label"

PATTERN_CARD_TESTING = "card_testing"
PATTERN_GEO_VELOCITY = "geo_velocity"
PATTERN_HIGH_RISK_AMOUNT = "high_risk_amount"
FRAUD_PATTERNS = (PATTERN_CARD_TESTING, PATTERN_GEO_VELOCITY, PATTERN_HIGH_RISK_AMOUNT)

#: Kinds of malformed records, each of which ``events.parse_transaction`` must reject.
DEFECTS = (
    "truncated_json",
    "wrong_type",
    "missing_field",
    "nan",
    "invalid_utf8",
    "empty",
    "json_array",
    "negative_amount",
    "bad_currency",
    "future_timestamp",
)

HIGH_RISK_MCCS = ("7995", "6051", "4829", "5967")  # gambling, quasi-cash/crypto, money transfer, direct marketing
ATM_MCC = "6011"

#: Probability that an on-time slot starts a fraud episode; tuned so ~1.5% of transactions are fraud.
EPISODE_START_PROBABILITY = 0.0075
EPISODE_PATTERN_WEIGHTS = (0.25, 0.40, 0.35)  # in FRAUD_PATTERNS order
#: Legitimate transactions that also get a label (confirmed genuine), next to every fraud.
LEGIT_LABEL_SHARE = 0.05
#: Share of on-time records whose event time is slightly behind (out of order), and by how much at most.
OUT_OF_ORDER_SHARE = 0.1
OUT_OF_ORDER_MAX_MS = 300
LATE_MIN_MS, LATE_MAX_MS = 5_000, 120_000
#: Run time between a transaction and its label (the simulated labeled_at is hours to days later).
LABEL_EMIT_DELAY_MS = (5_000, 60_000)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class _Category:
    mcc: str
    merchant_weight: float  # share of merchants in this category
    amount_factor: float  # times the card's typical spend
    online_share: float  # share of this category's merchants that sell online


_CATEGORIES = (
    _Category("5411", 18, 1.0, 0.1),  # grocery stores
    _Category("5812", 10, 1.1, 0.0),  # restaurants
    _Category("5814", 10, 0.3, 0.05),  # fast food
    _Category("5541", 7, 1.0, 0.0),  # service stations
    _Category("5912", 5, 0.6, 0.1),  # drug stores
    _Category("5311", 4, 1.8, 0.3),  # department stores
    _Category("5999", 6, 0.8, 0.6),  # miscellaneous retail
    _Category("4111", 4, 0.15, 0.3),  # commuter transport
    _Category("4121", 4, 0.6, 0.7),  # taxis and ride sharing
    _Category("5732", 3, 4.0, 0.6),  # electronics
    _Category("5651", 4, 1.5, 0.5),  # clothing
    _Category("4814", 2, 1.2, 0.8),  # telecom
    _Category("4899", 3, 0.4, 1.0),  # streaming and cable
    _Category("5942", 1.5, 0.6, 0.7),  # books
    _Category("7011", 2, 5.0, 0.6),  # hotels
    _Category("4511", 1.5, 8.0, 0.9),  # airlines
    _Category("7832", 1.5, 0.5, 0.3),  # cinemas
    _Category("5200", 2, 2.5, 0.3),  # home supply
    _Category(ATM_MCC, 6, 1.0, 0.0),  # cash withdrawal (ATM)
    _Category("7995", 0.6, 1.5, 0.9),  # gambling
    _Category("6051", 0.4, 3.0, 1.0),  # quasi-cash, crypto
    _Category("4829", 0.5, 3.0, 0.8),  # money transfer
    _Category("5967", 0.5, 0.8, 1.0),  # direct marketing, inbound
)
_CATEGORY_BY_MCC = {category.mcc: category for category in _CATEGORIES}
_ATM_AMOUNTS = tuple(Decimal(value) for value in (20, 40, 50, 60, 80, 100, 100, 150, 200, 200, 300, 400))

#: Where cards are issued (weight, currency). Currencies of similar magnitude, so amounts compare.
_HOME_COUNTRIES = {
    "US": (30, "USD"),
    "GB": (12, "GBP"),
    "DE": (10, "EUR"),
    "FR": (8, "EUR"),
    "CA": (7, "CAD"),
    "ES": (5, "EUR"),
    "IT": (5, "EUR"),
    "AU": (5, "AUD"),
    "NL": (4, "EUR"),
    "IE": (2, "EUR"),
    "BE": (2, "EUR"),
    "CH": (2, "CHF"),
    "SG": (2, "SGD"),
    "NZ": (1.5, "NZD"),
}
#: Far-away countries where stolen card data is used at terminals; cross-border acquiring settles in USD.
_FRAUD_DESTINATIONS = ("BR", "NG", "RU", "ID", "VN", "PH", "RO", "UA", "MX", "TH", "TR", "CN")
_GEO_MIN_GAP_MS, _GEO_MAX_GAP_MS = 60_000, 600_000


@dataclass(frozen=True, slots=True)
class GeneratedRecord:
    """One record to send, with the ground truth the tests and benchmarks check against."""

    topic: str
    key: bytes | None
    value: bytes
    kind: str  # valid | late | malformed | label
    offset_ms: float  # when to send, relative to the start of the run
    txn_id: str | None = None
    is_fraud: bool = False
    pattern: str | None = None  # fraud pattern of a fraudulent transaction (and of its label)
    defect: str | None = None  # what is wrong with a malformed record
    transaction: Transaction | None = None  # valid and late records, so produce() can re-stamp event_time


@dataclass(frozen=True, slots=True)
class _Card:
    card_id: str
    home: str
    typical_amount: float
    channel_weights: tuple[float, float, float]  # pos, online, atm


@dataclass(frozen=True, slots=True)
class _Merchant:
    merchant_id: str
    category: _Category
    country: str
    channel: str


def _currency(country: str) -> str:
    return _HOME_COUNTRIES[country][1] if country in _HOME_COUNTRIES else "USD"


def _cents(value: float) -> Decimal:
    return Decimal(f"{min(max(value, 0.5), 25_000.0):.2f}")


class _Population:
    """Cards and merchants, sized to the rate so that a card pays every few minutes, not every second.

    Real cards pay a few times a day; a demo running at 1,000/s for a minute would need millions of cards
    for that. Every ``SECONDS_BETWEEN_PAYMENTS`` on average is a compression that keeps the per-card
    velocity features (1 minute, 10 minutes, 1 hour) meaningful: a legitimate card rarely looks like a
    burst, so the injected fraud patterns stand out as they would in production.
    """

    SECONDS_BETWEEN_PAYMENTS = 300
    MAX_CARDS = 500_000
    #: The busiest card pays at most this many times as often as the average one.
    MAX_ACTIVITY_RATIO = 4.0

    def __init__(self, rng: random.Random, count: int, rate: float) -> None:
        homes = list(_HOME_COUNTRIES)
        home_weights = [weight for weight, _ in _HOME_COUNTRIES.values()]
        self.cards: list[_Card] = []
        card_ids: set[str] = set()
        card_count = min(max(int(rate * self.SECONDS_BETWEEN_PAYMENTS), count // 4, 200), self.MAX_CARDS)
        while len(self.cards) < card_count:
            card_id = f"card_{rng.getrandbits(48):012x}"
            if card_id in card_ids:
                continue
            card_ids.add(card_id)
            online_heavy = rng.random() < 0.35
            self.cards.append(
                _Card(
                    card_id=card_id,
                    home=rng.choices(homes, home_weights)[0],
                    typical_amount=math.exp(rng.gauss(math.log(35.0), 0.6)),
                    channel_weights=(0.35, 0.6, 0.05) if online_heavy else (0.7, 0.25, 0.05),
                )
            )
        # A few very active cards, many occasional ones.
        self.card_cum_weights = list(
            itertools.accumulate(min(rng.lognormvariate(0.0, 1.0), self.MAX_ACTIVITY_RATIO) for _ in self.cards)
        )

        self.merchants: list[_Merchant] = []
        self.by_place: dict[tuple[str, str], list[_Merchant]] = {}  # (channel, country) -> merchants
        self.online: list[_Merchant] = []
        self.high_risk_online: list[_Merchant] = []
        # Every home and destination country has terminals and ATMs; every high-risk MCC sells online.
        for country in (*homes, *_FRAUD_DESTINATIONS):
            self._add(rng, _CATEGORY_BY_MCC["5411"], country, "pos")
            self._add(rng, _CATEGORY_BY_MCC[ATM_MCC], country, "atm")
        for mcc in HIGH_RISK_MCCS:
            self._add(rng, _CATEGORY_BY_MCC[mcc], rng.choices(homes, home_weights)[0], "online")
        category_weights = [category.merchant_weight for category in _CATEGORIES]
        for _ in range(min(max(count // 40, 100), 20_000)):
            category = rng.choices(_CATEGORIES, category_weights)[0]
            online = rng.random() < category.online_share
            channel = "atm" if category.mcc == ATM_MCC else ("online" if online else "pos")
            self._add(rng, category, rng.choices(homes, home_weights)[0], channel)

    def _add(self, rng: random.Random, category: _Category, country: str, channel: str) -> None:
        merchant = _Merchant(f"merch_{rng.getrandbits(40):010x}", category, country, channel)
        self.merchants.append(merchant)
        self.by_place.setdefault((channel, country), []).append(merchant)
        if channel == "online":
            self.online.append(merchant)
            if category.mcc in HIGH_RISK_MCCS:
                self.high_risk_online.append(merchant)

    def card_index(self, rng: random.Random) -> int:
        point = rng.random() * self.card_cum_weights[-1]
        return min(bisect.bisect_right(self.card_cum_weights, point), len(self.cards) - 1)


@dataclass(order=True)
class _Pending:
    """A scheduled follow-up transaction of a fraud episode."""

    due_ms: int
    sequence: int
    card_index: int = field(compare=False)
    merchant: _Merchant = field(compare=False)
    amount: Decimal = field(compare=False)
    pattern: str = field(compare=False)


class _Synthesizer:
    def __init__(self, seed: int, count: int, start_ms: int, rate: float) -> None:
        self.rng = random.Random(seed)
        self.population = _Population(self.rng, count, rate)
        self.start_ms = start_ms
        self.rate = rate
        self.sequence = itertools.count()
        self.pending: list[_Pending] = []
        self.busy_cards: Counter[int] = Counter()  # cards with follow-ups pending: no legit traffic meanwhile
        self.last_txn_ms: dict[int, int] = {}
        # Card-present payments at home, in time order: candidates for a geo-velocity jump.
        self.home_present: list[tuple[int, int]] = []  # (event_time, card_index)
        self.home_present_start = 0

    # -- building blocks -------------------------------------------------------------------------------

    def txn_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def transaction(self, card_index: int, merchant: _Merchant, amount: Decimal, event_time: int) -> Transaction:
        return Transaction(
            txn_id=self.txn_id(),
            card_id=self.population.cards[card_index].card_id,
            merchant_id=merchant.merchant_id,
            mcc=merchant.category.mcc,
            amount=amount.quantize(CENT),
            currency=_currency(merchant.country),
            country=merchant.country,
            channel=merchant.channel,
            event_time=event_time,
        )

    def free_card(self) -> int:
        card_index = self.population.card_index(self.rng)
        for _ in range(10):  # a card in a fraud episode keeps its pattern clean; rare, so few retries
            if card_index not in self.busy_cards:
                break
            card_index = self.population.card_index(self.rng)
        return card_index

    def legit(self, event_time: int) -> tuple[Transaction, int, bool]:
        """A legitimate payment: ``(transaction, card_index, card_present_at_home)``."""
        rng = self.rng
        card_index = self.free_card()
        card = self.population.cards[card_index]
        channel = rng.choices(("pos", "online", "atm"), card.channel_weights)[0]
        if channel == "online":
            local = self.population.by_place.get(("online", card.home))
            merchants = local if local and rng.random() < 0.9 else self.population.online
        else:
            merchants = self.population.by_place[channel, card.home]
        merchant = rng.choice(merchants)
        if channel == "atm":
            amount = rng.choice(_ATM_AMOUNTS)
        else:
            amount = _cents(card.typical_amount * merchant.category.amount_factor * rng.lognormvariate(0.0, 0.7))
        return self.transaction(card_index, merchant, amount, event_time), card_index, channel != "online"

    def schedule(self, due_ms: int, card_index: int, merchant: _Merchant, amount: Decimal, pattern: str) -> None:
        heapq.heappush(self.pending, _Pending(due_ms, next(self.sequence), card_index, merchant, amount, pattern))
        self.busy_cards[card_index] += 1

    def start_episode(self, now_ms: int) -> tuple[Transaction, int, str]:
        """The first fraudulent transaction of a new episode ``(transaction, card_index, pattern)``.

        Follow-ups are scheduled.
        """
        rng = self.rng
        pattern = rng.choices(FRAUD_PATTERNS, EPISODE_PATTERN_WEIGHTS)[0]
        if pattern == PATTERN_GEO_VELOCITY:
            card_index = self.geo_candidate(now_ms)
            if card_index is None:  # nobody paid at home recently (start of the run)
                pattern = PATTERN_HIGH_RISK_AMOUNT
            else:
                destination = rng.choice(_FRAUD_DESTINATIONS)
                channel = rng.choice(("pos", "atm"))
                merchant = rng.choice(self.population.by_place[channel, destination])
                if rng.random() < 0.3:  # a second use in the same place a few minutes later
                    follow = rng.choice(self.population.by_place[rng.choice(("pos", "atm")), destination])
                    due = now_ms + rng.randint(60_000, 300_000)
                    self.schedule(due, card_index, follow, self.fraud_present_amount(card_index, follow), pattern)
                amount = self.fraud_present_amount(card_index, merchant)
                return self.transaction(card_index, merchant, amount, now_ms), card_index, pattern
        card_index = self.free_card()
        if pattern == PATTERN_CARD_TESTING:
            merchant = rng.choice(self.population.online)
            due = now_ms
            for _ in range(rng.randint(2, 6)):  # 3-7 attempts in all, 1-9 s apart: within a minute
                due += rng.randint(1_000, 9_000)
                self.schedule(due, card_index, merchant, Decimal(rng.randint(50, 499)) / 100, pattern)
            amount = Decimal(rng.randint(50, 499)) / 100
            return self.transaction(card_index, merchant, amount, now_ms), card_index, pattern
        merchant = rng.choice(self.population.high_risk_online)
        amount = _cents(rng.uniform(1_500.0, 9_500.0))
        return self.transaction(card_index, merchant, amount, now_ms), card_index, pattern

    def fraud_present_amount(self, card_index: int, merchant: _Merchant) -> Decimal:
        if merchant.channel == "atm":
            return Decimal(self.rng.choice((200, 300, 400, 500)))
        return _cents(self.population.cards[card_index].typical_amount * self.rng.uniform(3.0, 12.0))

    def geo_candidate(self, now_ms: int) -> int | None:
        """A card whose latest payment was at a terminal at home, ideally 1-10 minutes ago."""
        entries = self.home_present
        while self.home_present_start < len(entries) and entries[self.home_present_start][0] < now_ms - _GEO_MAX_GAP_MS:
            self.home_present_start += 1
        if self.home_present_start > 100_000:  # keep memory flat in long runs
            del entries[: self.home_present_start]
            self.home_present_start = 0
        target = now_ms - self.rng.randint(_GEO_MIN_GAP_MS, _GEO_MAX_GAP_MS)
        first = max(bisect.bisect_left(entries, (target, -1), lo=self.home_present_start), self.home_present_start)
        for position in range(first, min(first + 200, len(entries))):
            event_time, card_index = entries[position]
            if self.last_txn_ms.get(card_index) == event_time and card_index not in self.busy_cards:
                return card_index
        return None

    def malformed(self, event_time: int) -> tuple[bytes, str, str]:
        """``(value, defect, card_id)``: a plausible transaction broken in one of the DEFECTS ways."""
        rng = self.rng
        txn, _, _ = self.legit(event_time)
        defect = rng.choice(DEFECTS)
        record: dict[str, Any] = {name: getattr(txn, name) for name in TRANSACTION_FIELDS}
        record["amount"] = float(txn.amount)
        if defect == "truncated_json":
            text = txn.to_json()
            return text[: rng.randint(1, len(text) - 2)].encode(), defect, txn.card_id
        if defect == "wrong_type":
            name, wrong = rng.choice(
                (("amount", str(txn.amount)), ("event_time", event_time / 1000), ("mcc", int(txn.mcc)), ("card_id", 7))
            )
            record[name] = wrong
        elif defect == "missing_field":
            del record[rng.choice(TRANSACTION_FIELDS)]
        elif defect == "nan":
            record["amount"] = math.nan  # json.dumps writes NaN, which is not JSON
        elif defect == "invalid_utf8":
            merchant = txn.merchant_id.encode()
            return txn.to_json().encode().replace(merchant, merchant + b"\xff\xfe", 1), defect, txn.card_id
        elif defect == "empty":
            return b"", defect, txn.card_id
        elif defect == "json_array":
            return f"[{txn.to_json()}]".encode(), defect, txn.card_id
        elif defect == "negative_amount":
            record["amount"] = -record["amount"]
        elif defect == "bad_currency":
            record["currency"] = rng.choice(("ABC", "usd", "EURO", "US$"))
        else:  # future_timestamp
            record["event_time"] = event_time + rng.randint(2, 3650) * DAY_MS
        return json.dumps(record, separators=(",", ":")).encode(), defect, txn.card_id

    def label_for(self, txn: Transaction, is_fraud: bool) -> FraudLabel | None:
        """Every fraud gets a label (chargeback, days later); a sample of legit ones too (confirmed)."""
        if is_fraud:
            delay = self.rng.randint(2 * HOUR_MS, 30 * DAY_MS)
        elif self.rng.random() < LEGIT_LABEL_SHARE:
            delay = self.rng.randint(HOUR_MS, 7 * DAY_MS)
        else:
            return None
        return FraudLabel(txn.txn_id, is_fraud, txn.event_time + delay)

    # -- the stream ------------------------------------------------------------------------------------

    def records(self, count: int, late_fraction: float, malformed_fraction: float) -> Iterator[GeneratedRecord]:
        rng = self.rng
        labels: list[tuple[float, int, GeneratedRecord]] = []
        offset_ms = 0.0
        for slot in range(count):
            offset_ms = slot * 1000.0 / self.rate
            while labels and labels[0][0] <= offset_ms:
                yield heapq.heappop(labels)[2]
            now_ms = self.start_ms + int(offset_ms)
            draw = rng.random()
            if draw < malformed_fraction:
                value, defect, card_id = self.malformed(now_ms)
                yield GeneratedRecord(
                    names.TOPIC_TRANSACTIONS, card_id.encode(), value, KIND_MALFORMED, offset_ms, defect=defect
                )
                continue
            pattern: str | None = None
            card_present_home = False
            if draw < malformed_fraction + late_fraction:
                kind = KIND_LATE
                txn, _, _ = self.legit(now_ms - rng.randint(LATE_MIN_MS, LATE_MAX_MS))
            else:
                kind = KIND_VALID
                if self.pending and self.pending[0].due_ms <= now_ms:
                    follow_up = heapq.heappop(self.pending)
                    card_index, pattern = follow_up.card_index, follow_up.pattern
                    self.busy_cards[card_index] -= 1
                    if not self.busy_cards[card_index]:
                        del self.busy_cards[card_index]
                    txn = self.transaction(card_index, follow_up.merchant, follow_up.amount, now_ms)
                elif rng.random() < EPISODE_START_PROBABILITY:
                    txn, card_index, pattern = self.start_episode(now_ms)
                else:
                    txn, card_index, card_present_home = self.legit(now_ms)
                if rng.random() < OUT_OF_ORDER_SHARE:
                    txn = replace(txn, event_time=txn.event_time - rng.randint(1, OUT_OF_ORDER_MAX_MS))
                self.last_txn_ms[card_index] = txn.event_time
                if card_present_home:
                    self.home_present.append((txn.event_time, card_index))
            is_fraud = pattern is not None
            yield GeneratedRecord(
                names.TOPIC_TRANSACTIONS,
                txn.card_id.encode(),
                txn.to_json().encode(),
                kind,
                offset_ms,
                txn_id=txn.txn_id,
                is_fraud=is_fraud,
                pattern=pattern,
                transaction=txn,
            )
            label = self.label_for(txn, is_fraud)
            if label is not None:
                emit_at = offset_ms + rng.randint(*LABEL_EMIT_DELAY_MS)
                record = GeneratedRecord(
                    names.TOPIC_FRAUD_LABELS,
                    label.txn_id.encode(),
                    label.to_json().encode(),
                    KIND_LABEL,
                    emit_at,
                    txn_id=label.txn_id,
                    is_fraud=is_fraud,
                    pattern=pattern,
                )
                heapq.heappush(labels, (emit_at, next(self.sequence), record))
        while labels:  # labels not yet due go out at the end of the run, after every transaction
            yield replace(heapq.heappop(labels)[2], offset_ms=offset_ms)


def synthesize(
    seed: int,
    count: int,
    start_ms: int,
    rate: float,
    late_fraction: float = 0.0,
    malformed_fraction: float = 0.0,
) -> Iterator[GeneratedRecord]:
    """``count`` records for the ``transactions`` topic, ``rate`` per second from ``start_ms``, plus labels.

    Deterministic: the same arguments give byte-identical records. ``offset_ms`` never decreases; labels
    follow their transaction by 5-60 s of run time, or come at the end of the run.
    """
    if count < 0 or rate <= 0:
        raise ValueError("count must be >= 0 and rate > 0")
    if not (0 <= late_fraction < 1 and 0 <= malformed_fraction < 1 and late_fraction + malformed_fraction < 1):
        raise ValueError("late_fraction and malformed_fraction must be in [0, 1) and sum to less than 1")
    return _Synthesizer(seed, count, start_ms, rate).records(count, late_fraction, malformed_fraction)


class GeneratorError(RuntimeError):
    """Producing failed: Kafka unreachable, or records not acknowledged."""


@dataclass(frozen=True)
class GeneratorReport:
    """What a run sent, by kind, with the ground truth needed to check the platform's results."""

    #: valid (on time), late (valid, event time 5-120 s behind), malformed, labels, fraud (valid or late)
    counts: dict[str, int]
    by_pattern: dict[str, int]  # fraudulent transactions per fraud pattern
    by_defect: dict[str, int]  # malformed records per defect
    txn_ids_valid: list[str]  # every valid transaction, late ones included
    target_rate: float  # transactions-topic records per second
    elapsed_s: float  # from the first send to the last acknowledgement (perfect pacing in summarize)
    achieved_rate: float  # transactions-topic records per second of sending
    max_behind_schedule_ms: float  # how far sending fell behind the schedule at worst

    @property
    def malformed_count(self) -> int:
        return self.counts["malformed"]

    def to_dict(self, include_txn_ids: bool = False) -> dict[str, Any]:
        """Every field; the id list (one per transaction) only on request."""
        return {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name != "txn_ids_valid" or include_txn_ids
        }

    def summary(self) -> str:
        counts = self.counts
        patterns = ", ".join(f"{name} {count}" for name, count in self.by_pattern.items())
        return (
            f"transactions: {counts['valid']} valid on time, {counts['late']} late, {counts['malformed']} malformed; "
            f"{counts['fraud']} fraud ({patterns}); {counts['labels']} labels. "
            f"{self.achieved_rate:,.0f}/s of {self.target_rate:,.0f}/s target over {self.elapsed_s:.1f}s, "
            f"at most {self.max_behind_schedule_ms:.0f} ms behind schedule"
        )


class _Tally:
    """Counts records as they are sent, so a long run does not keep them in memory."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.patterns: Counter[str] = Counter()
        self.defects: Counter[str] = Counter()
        self.fraud = 0
        self.txn_ids_valid: list[str] = []

    def add(self, record: GeneratedRecord) -> None:
        self.kinds[record.kind] += 1
        if record.kind == KIND_MALFORMED and record.defect is not None:
            self.defects[record.defect] += 1
        elif record.kind in (KIND_VALID, KIND_LATE) and record.txn_id is not None:
            self.txn_ids_valid.append(record.txn_id)
            if record.is_fraud and record.pattern is not None:
                self.fraud += 1
                self.patterns[record.pattern] += 1

    def report(self, target_rate: float, elapsed_s: float, last_send_s: float, max_behind_ms: float) -> GeneratorReport:
        transactions = self.kinds[KIND_VALID] + self.kinds[KIND_LATE] + self.kinds[KIND_MALFORMED]
        # n records at the target rate span (n - 1) intervals; adding the last one makes perfect pacing exact.
        sending_s = last_send_s + 1 / target_rate
        return GeneratorReport(
            counts={
                "valid": self.kinds[KIND_VALID],
                "late": self.kinds[KIND_LATE],
                "malformed": self.kinds[KIND_MALFORMED],
                "labels": self.kinds[KIND_LABEL],
                "fraud": self.fraud,
            },
            by_pattern={pattern: self.patterns[pattern] for pattern in FRAUD_PATTERNS},
            by_defect=dict(sorted(self.defects.items())),
            txn_ids_valid=self.txn_ids_valid,
            target_rate=target_rate,
            elapsed_s=round(elapsed_s, 3),
            achieved_rate=round(transactions / sending_s, 1),
            max_behind_schedule_ms=round(max_behind_ms, 1),
        )


def summarize(records: Iterable[GeneratedRecord], rate: float) -> GeneratorReport:
    """The report a perfectly paced run of ``records`` would give (no Kafka involved)."""
    tally = _Tally()
    last_offset_ms = 0.0
    for record in records:
        tally.add(record)
        last_offset_ms = record.offset_ms
    return tally.report(rate, last_offset_ms / 1000 + 1 / rate, last_offset_ms / 1000, 0.0)


def topic_config(topic: str) -> dict[str, str]:
    """Per-topic settings: the DLQ takes records larger than Kafka's 1 MiB default (events.DLQ_MAX_MESSAGE_BYTES);
    the scoring job's outputs are stamped by the broker when appended (the end point of latency measurements)."""
    if topic == names.TOPIC_TRANSACTIONS_DLQ:
        return {"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)}
    if topic in names.OUTPUT_TOPICS:
        return {"message.timestamp.type": "LogAppendTime"}
    return {}


def ensure_topics(cfg: PlatformConfig, topics: Sequence[str], partitions: int = 2, replication: int = 1) -> list[str]:
    """Create the missing ``topics`` (as the admin principal); returns the ones created. Idempotent.

    Replicated topics (``replication`` > 1, a cluster) get ``min.insync.replicas`` = replication - 1: an
    acknowledged write survives the loss of one broker, and one broker down blocks no writer."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic  # where the type stubs declare it

    # log_level 0: connection errors reach the caller as one GeneratorError, not as a stream of log lines.
    admin = AdminClient(cfg.kafka_client("admin", log_level=0))
    try:
        existing = set(admin.list_topics(timeout=10).topics)
    except KafkaException as exc:
        raise GeneratorError(
            f"Kafka at {cfg.kafka_bootstrap} is not reachable ({exc}); start it with `hdp up --only kafka`"
        ) from None
    missing = [topic for topic in topics if topic not in existing]
    for topic in topics:
        if topic in existing and topic in names.OUTPUT_TOPICS:
            # Topics created before their settings existed (an earlier version of the platform) get them now.
            set_topic_config(cfg, topic, topic_config(topic), admin)
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                topic,
                partitions,
                replication,
                config={
                    **topic_config(topic),
                    **({"min.insync.replicas": str(replication - 1)} if replication > 1 else {}),
                },
            )
            for topic in missing
        ],
        operation_timeout=30,
    )
    created = []
    for topic, future in futures.items():
        try:
            future.result(timeout=30)
            created.append(topic)
        except KafkaException as exc:
            error = exc.args[0]
            if not (isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise GeneratorError(f"could not create topic {topic}: {exc}") from None
    return created


def set_topic_config(cfg: PlatformConfig, topic: str, settings: dict[str, str], admin: Any = None) -> None:
    """Set ``settings`` on an existing topic (incrementally: other settings stay as they are)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.admin._config import (  # where the stubs declare them
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    if not settings:
        return
    admin = admin or AdminClient(cfg.kafka_client("admin", log_level=0))
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in settings.items()]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    try:
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(timeout=30)
    except KafkaException as exc:
        raise GeneratorError(f"could not configure topic {topic}: {exc}") from None


def produce(
    cfg: PlatformConfig,
    rate: float,
    duration_s: float,
    seed: int = 42,
    late_fraction: float = 0.0,
    malformed_fraction: float = 0.0,
    start_ms: int | None = None,
) -> GeneratorReport:
    """Send ``rate`` transactions per second for ``duration_s`` seconds (plus labels) to Kafka.

    Open loop: each record goes out at its scheduled time, however long earlier sends took, so a slow
    moment is caught up instead of lowering the rate. Event times are re-based on the actual send time:
    an on-time record's event_time is the wall clock when it was sent (``start_ms`` moves the origin),
    late and out-of-order ones keep their distance behind it. Raises GeneratorError unless every record
    is acknowledged (acks=all, idempotent producer).
    """
    from confluent_kafka import Producer

    synthesized_start_ms = _now_ms() if start_ms is None else start_ms
    count = max(1, round(rate * duration_s))
    synthesized = synthesize(seed, count, synthesized_start_ms, rate, late_fraction, malformed_fraction)
    # The population is built with the first record: before the schedule starts (it takes seconds at high
    # rates, and every record behind it would count them as latency), then frozen, so Python's collector never
    # walks it during the run (its pauses would too).
    first = next(synthesized, None)
    gc.freeze()
    records = itertools.chain([first] if first else [], synthesized)
    from hybrid_platform import kafka_admin

    if kafka_admin.admin_available(cfg):  # where this process may (a cluster's setup Job made them there)
        ensure_topics(cfg, names.ALL_TOPICS)  # the Flink jobs' output topics too, with the same partitioning
    producer = Producer(
        {
            **cfg.kafka_client("producer"),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,  # explicit: batching for throughput costs at most 5 ms of latency
            "client.id": "hdp-generator",
            "log_level": 0,  # failures surface as GeneratorError from delivery reports
        }
    )
    failures: list[str] = []

    def on_delivery(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(f"{message.topic()}: {error}")

    tally = _Tally()
    max_behind_ms = last_send_s = 0.0
    started = time.monotonic()
    origin_ms = _now_ms() if start_ms is None else start_ms  # event time at `started`
    wall_started_ms = _now_ms()
    for record in records:
        behind_s = time.monotonic() - (started + record.offset_ms / 1000)
        if behind_s < -0.001:  # sleeping for less than a millisecond costs more than it paces
            time.sleep(-behind_s)
        max_behind_ms = max(max_behind_ms, behind_s * 1000)
        value = record.value
        last_send_s = time.monotonic() - started
        if record.transaction is not None:
            # Synthesized event times assume a perfect schedule from synthesized_start_ms; re-base them on
            # the actual send time, keeping late and out-of-order records just as far behind it.
            scheduled_ms = synthesized_start_ms + int(record.offset_ms)
            shift_ms = origin_ms + round(last_send_s * 1000) - scheduled_ms
            if shift_ms:
                transaction = record.transaction
                value = replace(transaction, event_time=transaction.event_time + shift_ms).to_json().encode()
        # The record's Kafka timestamp is its *scheduled* send time, not the moment it left: a latency
        # measured from it includes any time the producer fell behind (no coordinated omission).
        _send(producer, record.topic, record.key, value, on_delivery, wall_started_ms + round(record.offset_ms))
        tally.add(record)
    unacknowledged = producer.flush(60)
    elapsed_s = time.monotonic() - started
    gc.unfreeze()
    if unacknowledged or failures:
        detail = f"; first error: {failures[0]}" if failures else ""
        raise GeneratorError(
            f"{unacknowledged + len(failures)} record(s) not acknowledged by Kafka at {cfg.kafka_bootstrap}{detail}"
        )
    return tally.report(rate, elapsed_s, last_send_s, max_behind_ms)


def _send(producer: Any, topic: str, key: bytes | None, value: bytes, on_delivery: Any, timestamp_ms: int) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery, timestamp=timestamp_ms)
            break
        except BufferError:  # the local queue is full: let librdkafka deliver, then retry
            producer.poll(0.05)
    producer.poll(0)  # serve delivery callbacks as we go


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class TrafficPool:
    """Valid transactions synthesized once and sent many times, cheaply: for sustained load at a fixed rate.

    ``produce`` re-synthesizes its card population and every record for each run (tens of microseconds of
    Python per record): fine for the demo's minute at 1,000/s, but at 5,000/s the generator alone would take
    a third of a core and its pauses would count as pipeline latency. A pool keeps one population (fixed
    across runs, so per-card state built by one run is the history of the next) and the records as bytes
    with two slots: each send gets a fresh ``txn_id`` and an event time at its scheduled send time (out-of-
    order records keep their distance behind it), a few microseconds per record.
    """

    def __init__(self, seed: int, rate: float, seconds: float) -> None:
        origin_ms = 1_767_225_600_000
        self.records: list[tuple[bytes, bytes, int]] = []  # (key, bytes between txn_id and event_time, behind)
        self.fraud = 0
        for record in synthesize(seed, max(1, round(rate * seconds)), origin_ms, rate):
            txn = record.transaction
            if record.kind != KIND_VALID or txn is None:
                continue
            text = txn.to_json().encode()
            after_id = text.index(b'","card_id"')
            before_time = text.rindex(b'"event_time":') + len(b'"event_time":')
            behind_ms = origin_ms + int(record.offset_ms) - txn.event_time
            self.records.append((record.key or b"", text[after_id:before_time], max(0, behind_ms)))
            self.fraud += record.is_fraud
        self.run = random.Random(seed).getrandbits(32)
        self.sent = 0
        gc.freeze()  # the pool is permanent: Python's collector never scans it during a run

    def _value(self, event_time: int) -> tuple[bytes, bytes, str]:
        key, middle, behind = self.records[self.sent % len(self.records)]
        txn_id = "%08x-0000-4000-8000-%012x" % (self.run, self.sent)  # ruff: ignore[printf-string-formatting] (the fast path)
        self.sent += 1
        return key, b'{"txn_id":"%s%s%d}' % (txn_id.encode(), middle, event_time - behind), txn_id

    def produce(
        self, cfg: PlatformConfig, rate: float, duration_s: float, topic: str = names.TOPIC_TRANSACTIONS
    ) -> dict[str, float]:
        """Send ``rate`` records per second for ``duration_s``, open loop: each at its scheduled time, stamped
        with it (Kafka timestamp and event time), however long earlier sends took. Raises GeneratorError unless
        every record is acknowledged."""
        producer, failures, on_delivery = self._producer(cfg)
        count = max(1, round(rate * duration_s))
        started = time.monotonic()
        wall_ms = _now_ms()
        max_behind_s = 0.0
        for i in range(count):
            due = i / rate
            behind = time.monotonic() - started - due
            if behind < -0.001:
                time.sleep(-behind)
            elif behind > max_behind_s:
                max_behind_s = behind
            scheduled_ms = wall_ms + int(due * 1000)
            key, value, _ = self._value(scheduled_ms)
            _send(producer, topic, key, value, on_delivery, scheduled_ms)
        unacknowledged = producer.flush(60)
        elapsed = time.monotonic() - started
        if unacknowledged or failures:
            raise GeneratorError(f"{unacknowledged + len(failures)} record(s) not acknowledged by Kafka")
        return {"sent": count, "elapsed_s": round(elapsed, 3), "max_behind_schedule_ms": round(max_behind_s * 1000, 1)}

    def prefill(self, cfg: PlatformConfig, count: int, span_ms: int, topic: str = names.TOPIC_TRANSACTIONS) -> float:
        """Send ``count`` records as fast as Kafka takes them, event times spread over the last ``span_ms``:
        per-card history as that much traffic would have left it. Returns the seconds it took."""
        producer, failures, on_delivery = self._producer(cfg)
        started = time.monotonic()
        end_ms = _now_ms()
        for i in range(count):
            event_ms = end_ms - span_ms + (span_ms * i) // max(count, 1)
            key, value, _ = self._value(event_ms)
            _send(producer, topic, key, value, on_delivery, end_ms)
        if producer.flush(120) or failures:
            raise GeneratorError(f"prefill: {len(failures)} record(s) not acknowledged by Kafka")
        return time.monotonic() - started

    def burst(self, cfg: PlatformConfig, count: int, topic: str = names.TOPIC_TRANSACTIONS) -> list[str]:
        """Send ``count`` records as fast as Kafka takes them, stamped now; returns their txn_ids."""
        producer, failures, on_delivery = self._producer(cfg)
        sent = []
        for _ in range(count):
            now = _now_ms()
            key, value, txn_id = self._value(now)
            _send(producer, topic, key, value, on_delivery, now)
            sent.append(txn_id)
        if producer.flush(120) or failures:
            raise GeneratorError(f"burst: {len(failures)} record(s) not acknowledged by Kafka")
        return sent

    @staticmethod
    def _producer(cfg: PlatformConfig) -> tuple[Any, list[str], Any]:
        from confluent_kafka import Producer

        failures: list[str] = []

        def on_delivery(error: Any, message: Any) -> None:
            if error is not None:
                failures.append(f"{message.topic()}: {error}")

        producer = Producer(
            {
                **cfg.kafka_client("producer"),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "queue.buffering.max.messages": 1_000_000,
                "client.id": "hdp-traffic-pool",
                "log_level": 0,
            }
        )
        return producer, failures, on_delivery
