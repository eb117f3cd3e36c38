"""The ``cells`` (and ``people``) rows shaped into a :class:`RetentionResult`: a row per cohort and breakdown
value, ``None`` for periods not started by today, ``complete`` per cell, and the average row over complete cells
weighted by cohort size (see **Incomplete cells** in :mod:`userloop.query.kinds.retention`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.query.compile import Context
from userloop.query.kinds.base import Frame
from userloop.query.kinds.retention.people import people_from
from userloop.query.kinds.retention.periods import PeriodGrid
from userloop.query.kinds.retention.results import RetentionAverage, RetentionCohort, RetentionResult
from userloop.query.spec import NONE, OTHER

if TYPE_CHECKING:
    from userloop.query.kinds.retention.query import RetentionQuery


def shape(q: RetentionQuery, ctx: Context, data: dict[str, Frame]) -> RetentionResult:
    """The result, from the rows of the ``cells`` statement and of ``people`` when asked for."""
    grid = q.cohort_grid(ctx)
    n = q.periods
    sizes: dict[tuple[int, str | None], int] = {}
    raw: dict[tuple[int, str | None], list[int]] = {}
    sums: dict[tuple[int, str | None], list[float]] = {}
    value0_apart = q.value0_apart()
    for part, ci, bd, k, count, v in data["cells"].rows:
        key = (int(ci), _label(q, bd))
        if part == "size":
            sizes[key] = int(count)
            continue
        cell_sums = sums.setdefault(key, [0.0] * (n + 1))
        if part == "cell":
            raw.setdefault(key, [0] * (n + 1))[int(k)] = int(count)
        if part == "value0" or not (k == 0 and value0_apart):
            cell_sums[int(k)] = float(v or 0.0)
    labels = _order_labels(sizes) if q.breakdown is not None else [None]
    cohorts = [_row(q, ctx, grid, j, bd, sizes, raw, sums) for bd in labels for j in range(grid.count)]
    result = RetentionResult(
        interval=q.interval,
        periods=n,
        mode=q.mode,
        start_type=q.start_type,
        cohorts=cohorts,
        average=[_average([c for c in cohorts if c.breakdown == bd], n, q.value is not None) for bd in labels],
    )
    if "people" in data:
        result.people = people_from(data["people"])
    return result


def _label(q: RetentionQuery, bd: Any) -> str | None:
    if q.breakdown is None:
        return None
    return NONE if bd is None else str(bd)


def _row(
    q: RetentionQuery,
    ctx: Context,
    grid: PeriodGrid,
    j: int,
    bd: str | None,
    sizes: dict[tuple[int, str | None], int],
    raw: dict[tuple[int, str | None], list[int]],
    sums: dict[tuple[int, str | None], list[float]],
) -> RetentionCohort:
    n = q.periods
    size = sizes.get((j, bd), 0)
    exact = raw.get((j, bd), [0] * (n + 1))
    counts = exact if q.mode == "on" else [sum(exact[k:]) for k in range(n + 1)]
    started = [grid.start(j + k) <= ctx.today for k in range(n + 1)]
    last_needed = [k if q.mode == "on" else n for k in range(n + 1)]
    complete = [grid.end(j + last_needed[k]) < ctx.today for k in range(n + 1)]
    cells: list[int | None] = [c if ok else None for c, ok in zip(counts, started, strict=True)]
    row = RetentionCohort(
        cohort=grid.start(j).isoformat(),
        breakdown=bd,
        size=size,
        counts=cells,
        rates=[None if c is None or size == 0 else c / size for c in cells],
        complete=complete,
    )
    if q.value is not None:
        total = sums.get((j, bd), [0.0] * (n + 1))
        row.value_totals = [t if ok else None for t, ok in zip(total, started, strict=True)]
        row.values = [None if t is None or size == 0 else t / size for t in row.value_totals]
    return row


def _average(rows: list[RetentionCohort], n: int, with_value: bool) -> RetentionAverage:
    sizes, counts, totals = [0] * (n + 1), [0] * (n + 1), [0.0] * (n + 1)
    for row in rows:
        for k in range(n + 1):
            count = row.counts[k]
            if row.complete[k] and count is not None:
                sizes[k] += row.size
                counts[k] += count
                totals[k] += (row.value_totals or [0.0] * (n + 1))[k] or 0.0
    avg = RetentionAverage(
        breakdown=rows[0].breakdown if rows else None,
        sizes=sizes,
        counts=counts,
        rates=[c / s if s else None for c, s in zip(counts, sizes, strict=True)],
    )
    if with_value:
        avg.values = [t / s if s else None for t, s in zip(totals, sizes, strict=True)]
    return avg


def _order_labels(sizes: dict[tuple[int, str | None], int]) -> list[str | None]:
    """Breakdown values by their total cohort size, largest first; ``$other`` and ``$none`` last."""
    totals: dict[str | None, int] = {}
    for (_, bd), size in sizes.items():
        totals[bd] = totals.get(bd, 0) + size
    return sorted(totals, key=lambda bd: (bd in (OTHER, NONE), -totals[bd], bd or ""))
