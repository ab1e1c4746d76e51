"""SQL text the platform renders (Flink SQL DDL options): values quoted so that no value ends its string."""

from __future__ import annotations


def sql_literal(value: str) -> str:
    """``value`` as a SQL string literal (Flink SQL, Spark SQL): single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"
