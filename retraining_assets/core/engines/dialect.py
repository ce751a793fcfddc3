"""What differs between the SQL engines the statistics are pushed down to: the double type,
how NaN is recognised, literals, identifier quoting and CTE materialisation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str
    double: str  # the 64-bit float type
    nan_test: str  # "{}" is the expression; empty when the engine stores no NaN
    quote_char: str = '"'
    materialized: str = "MATERIALIZED "  # a CTE read twice is computed once
    inf_literal: str | None = None  # engines that cannot cast the text 'Infinity'
    stddev_pop: bool = True  # SQLite has none: a second pass computes it from the mean

    def quote(self, identifier: str) -> str:
        q = self.quote_char
        return q + str(identifier).replace(q, q + q) + q

    def as_double(self, expression: str) -> str:
        return f"CAST({expression} AS {self.double})"

    def number(self, value: float) -> str:
        """A float literal that parses back to the same double (repr round-trips; a bare
        decimal literal would be a DECIMAL in DuckDB)."""
        infinite = value in (float("inf"), float("-inf"))
        if self.inf_literal is not None:  # SQLite parses a float literal exactly
            text = self.inf_literal if infinite else repr(float(value))
            return f"({'-' if value < 0 and infinite else ''}{text})"
        if value != value:
            text = "NaN"
        elif infinite:
            text = "Infinity" if value > 0 else "-Infinity"
        else:
            text = repr(float(value))
        return f"CAST('{text}' AS {self.double})"

    def not_null(self, v: str) -> str:
        """Not a null in the drift engine's sense: neither NULL nor NaN."""
        if not self.nan_test:
            return f"{v} IS NOT NULL"
        return f"({v} IS NOT NULL AND NOT {self.nan_test.format(v)})"

    def finite(self, v: str) -> str:
        inf = self.number(float("inf"))
        return f"({self.not_null(v)} AND {v} < {inf} AND {v} > -{inf})"


DUCKDB = Dialect("duckdb", "DOUBLE", "isnan({})")
POSTGRESQL = Dialect("postgresql", "DOUBLE PRECISION", "({} = CAST('NaN' AS DOUBLE PRECISION))")
SQLITE = Dialect("sqlite", "REAL", "", inf_literal="9e999", stddev_pop=False)
SPARK = Dialect("spark", "DOUBLE", "isnan({})", quote_char="`", materialized="")


def dialect_for(name: str) -> Dialect:
    """The dialect of an SQLAlchemy dialect name or an engine name."""
    known = {"duckdb": DUCKDB, "postgresql": POSTGRESQL, "sqlite": SQLITE, "spark": SPARK}
    if name not in known:
        raise ValueError(
            f"statistics cannot be pushed down to a {name!r} database (supported: "
            f"{', '.join(known)}); set RETRAIN_ENGINE=memory"
        )
    return known[name]
