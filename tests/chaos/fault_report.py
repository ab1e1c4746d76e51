"""The numbers each fault test measured, collected for the end-of-run summary (conftest) and the JSON report."""

from __future__ import annotations

from typing import Any

#: One entry per fault test: what was produced, landed, lost, duplicated, and how long recovery took.
FAULT_RESULTS: list[dict[str, Any]] = []
