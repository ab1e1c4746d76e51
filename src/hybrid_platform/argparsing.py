"""The command-line parser every entrypoint uses: a mistake prints one line saying what to do."""

from __future__ import annotations

import argparse
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
