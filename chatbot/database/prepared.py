"""The statements every turn runs, compiled once per database and handed to its driver.

SQLAlchemy spends some 13 µs of Python on each execution (execution context, parameter
processing, result set-up) where the driver spends about 5: under a burst of turns, most
of a turn's database CPU. These statements are still written once in SQLAlchemy Core;
each is compiled with the connection's dialect on first use, and then only its parameters
are ordered and converted by the column types' own ``bind_processor``/``result_processor``
(ISO text, Unix seconds on SQLite) around one driver call (``Dialect.driver``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from chatbot.database.dialect import Dialect


class _Compiled:
    """One statement's SQL for one database, its parameters in order and the conversions."""

    __slots__ = ("sql", "params", "converts", "results")

    def __init__(self, statement: Any, conn: Connection, keys: Sequence[str] | None) -> None:
        dialect = conn.dialect
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        self.sql = compiled.string
        # Each parameter's name and its value when the caller gives none (a literal's).
        self.params: list[tuple[str, Any]] = []
        self.converts: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(compiled.positiontup or ()):
            bind = compiled.binds[name]
            self.params.append((name, bind.effective_value))
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                self.converts.append((index, convert))
        columns = getattr(statement, "exported_columns", ())
        processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        self.results = processors if any(processors) else None

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        values = [params[name] if name in params else value for name, value in self.params]
        for index, convert in self.converts:
            values[index] = convert(values[index])
        return values

    def row(self, raw: Sequence[Any]) -> tuple:
        if self.results is None:
            return tuple(raw)
        return tuple([f(v) if f is not None else v for f, v in zip(self.results, raw, strict=True)])


class Prepared:
    """A statement built once (at import, or once per dialect), run on the driver; an
    ``INSERT`` taking its columns from the rows' keys is compiled once per set of keys."""

    __slots__ = ("_statement", "_compiled")

    def __init__(self, statement: sa.Executable) -> None:
        self._statement = statement
        self._compiled: dict[Any, _Compiled] = {}

    def _for(self, conn: Connection, keys: tuple[str, ...] | None) -> _Compiled:
        key = (conn.dialect.name, keys)
        if (found := self._compiled.get(key)) is None:
            found = self._compiled[key] = _Compiled(self._statement, conn, keys)
        return found

    def rows(self, d: Dialect, conn: Connection, params: Mapping[str, Any]) -> list[tuple]:
        compiled = self._for(conn, None)
        return [compiled.row(r) for r in d.driver(conn, compiled.sql, compiled.args(params))]

    def first(self, d: Dialect, conn: Connection, params: Mapping[str, Any]) -> tuple | None:
        rows = self.rows(d, conn, params)
        return rows[0] if rows else None

    def run_many(
        self, d: Dialect, conn: Connection, rows: Sequence[Mapping[str, Any]], by_keys: bool = False
    ) -> None:
        """Once per row, in one driver call; ``by_keys``: the columns are the rows' keys."""
        if rows:
            compiled = self._for(conn, tuple(rows[0]) if by_keys else None)
            d.driver(conn, compiled.sql, [compiled.args(row) for row in rows], many=True)
