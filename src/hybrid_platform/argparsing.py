"""The command-line parser every entrypoint uses: a mistake prints one line saying what to do."""

from __future__ import annotations

import argparse
import math
from datetime import date


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line instead of argparse's usage block: what was wrong and where to look.
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def iso_date(text: str) -> date:
    """``type=`` for a calendar date, with an error that shows the expected form."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def positive_number(text: str) -> float:
    """``type=`` for a finite number > 0."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number > 0")
    return value


def non_negative_number(text: str) -> float:
    """``type=`` for a finite number >= 0."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def fraction(text: str) -> float:
    """``type=`` for a share in [0, 1)."""
    value = _number(text)
    if not 0 <= value < 1:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in [0, 1)")
    return value


def share(text: str) -> float:
    """``type=`` for a share in (0, 1): a part that can be neither nothing nor everything."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1 (exclusive)")
    return value


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {minimum}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {minimum}")
    return value


def positive_int(text: str) -> int:
    """``type=`` for a whole number >= 1."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """``type=`` for a whole number >= 0."""
    return _integer(text, 0)
