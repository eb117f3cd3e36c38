"""What every analysis kind provides: its statements (sqlglot trees) and the shaping of their rows into a result.

A kind is a pydantic definition that subclasses :class:`Analysis`. The engine asks it for named statements,
runs each, and hands the rows back to :meth:`Analysis.shape`, which returns the kind's typed result. Kinds never
touch a connection, so the same kind runs on any backend that can execute the trees.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from userloop.query.compile import Context
from userloop.query.spec import QueryBase

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class Frame:
    """Rows one statement returned, with its column names."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            yield dict(zip(self.columns, row, strict=True))

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]


#: The relation a :class:`Staged` statement's ``lookup`` reads the keys asked for from (one column, ``key``).
LOOKUP_KEYS = "_ul_stage_keys"


@dataclass(frozen=True)
class Staged:
    """A statement with one stage computed outside SQL, for a backend with
    :attr:`~userloop.store.backend.Capability.ARROW_STAGE`: the engine reads ``source`` as Arrow (one table, or
    with ``streamed`` a reader of batches) and hands it to ``fold`` with a lookup (keys → values by ``lookup``, a
    statement over :data:`LOOKUP_KEYS` returning ``key`` and ``value``, run on the same snapshot as ``source``:
    for the few values the fold needs of some rows only), registers the table ``fold`` returns as ``relation`` on
    the same session, runs ``then`` (which reads it) and drops it. ``plain`` is the same statement in SQL alone:
    what ``compile`` and ``explain`` show, what a backend without the capability runs, and what runs when the fold
    declines (:class:`FoldDeclined`). Used where a per-person fold in one linear pass beats the SQL engine's
    window passes or hash tables (:mod:`userloop.query.kinds.funnel.fold`,
    :mod:`userloop.query.kinds.retention.fold`)."""

    plain: exp.Expr
    source: exp.Expr
    fold: Callable[[Any, Lookup], pa.Table]
    relation: str
    then: exp.Expr
    lookup: exp.Expr | None = None
    streamed: bool = False


class FoldDeclined(Exception):  # noqa: N818 (a signal to run the plain statement, not an error anyone sees)
    """Raised by a :class:`Staged` fold that cannot take these rows (person keys too sparse for its arrays):
    the engine runs the statement in SQL alone."""


#: The values of some keys, in the order asked (a key found nowhere gives a null).
Lookup = Callable[["pa.Array | pa.ChunkedArray"], "pa.Array"]

#: Rows below which a fold stays on one thread (starting threads costs more than it saves).
FOLD_PARALLEL_ROWS = 1 << 17


def fold_threads(rows: int) -> int:
    """Threads a :class:`Staged` fold of ``rows`` rows runs its compiled loops on (they release the GIL): the
    machine's cores, at most 8, as DuckDB uses them; one for fewer than :data:`FOLD_PARALLEL_ROWS` rows."""
    return 1 if rows < FOLD_PARALLEL_ROWS else max(1, min(os.cpu_count() or 1, 8))


class Result(BaseModel):
    """Base of every kind's result."""

    model_config = ConfigDict(extra="forbid")


class Analysis(QueryBase):
    """A definition that can compile itself. Subclasses set ``kind: Literal[...]``."""

    @abstractmethod
    def statements(self, ctx: Context) -> Mapping[str, exp.Expr | Staged]:
        """The named statements to run, in order."""

    @abstractmethod
    def shape(self, ctx: Context, data: dict[str, Frame]) -> Result:
        """The typed result, from the rows of each statement."""
