"""The retention definition (:class:`RetentionQuery`): its options, the rules that tie them together, the cohort
grid and the facts that pick the statements' shape. The statements come from :mod:`.one_pass` or from
:mod:`.cohorts` with :mod:`.cells` and :mod:`.people`; shaping is :mod:`.shaping`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, sql
from userloop.query.kinds.base import Analysis, Frame, Staged
from userloop.query.kinds.retention.cells import cells
from userloop.query.kinds.retention.cohorts import cohort_ctes
from userloop.query.kinds.retention.fold import RELATION, fold_people
from userloop.query.kinds.retention.native import native_statements
from userloop.query.kinds.retention.one_pass import one_pass_cells, one_pass_rows
from userloop.query.kinds.retention.parts import Parts
from userloop.query.kinds.retention.people import retention_people
from userloop.query.kinds.retention.periods import PeriodGrid, PeriodInterval
from userloop.query.kinds.retention.results import RetentionResult
from userloop.query.kinds.retention.shaping import shape
from userloop.query.kinds.retention.spec import RetentionPeople, RetentionValue
from userloop.query.spec import Breakdown, EventRef
from userloop.store.backend import Capability

#: At most this many cohorts (a year of days); more would be a result nobody can read.
MAX_COHORTS = 400


class RetentionQuery(Analysis):
    kind: Literal["retention"] = "retention"
    start: EventRef
    return_event: EventRef | None = Field(None, description="The event that counts as coming back; the start event.")
    start_type: Literal["first_time", "recurring"] = "first_time"
    interval: PeriodInterval = "week"
    periods: int = Field(8, ge=1, le=60, description="How many periods after the cohort period to follow.")
    mode: Literal["on", "on_or_after"] = "on"
    breakdown: Breakdown | None = None
    value: RetentionValue | None = None
    people: RetentionPeople | None = None

    @model_validator(mode="after")
    def _options_agree(self) -> RetentionQuery:
        if self.value is not None and self.mode == "on_or_after":
            raise ValueError("value retention sums each period's return events; use mode 'on' with 'value'")
        if self.people is not None:
            if self.people.period is not None and self.people.period > self.periods:
                raise ValueError(f"people.period is {self.people.period}; periods run from 0 to {self.periods}")
            if self.people.breakdown is not None and self.breakdown is None:
                raise ValueError("people.breakdown names a breakdown value, but the query has no breakdown")
        if self.breakdown is not None and self.breakdown.bins is not None:
            raise ValueError("retention breaks down by property values; numeric 'bins' are not supported")
        return self

    @property
    def returning(self) -> EventRef:
        return self.return_event or self.start

    def cohort_grid(self, ctx: Context) -> PeriodGrid:
        first, last = ctx.days(self.date_range)
        grid = PeriodGrid.covering(self.interval, first, last)
        if grid.count > MAX_COHORTS:
            raise ValidationError(
                f"the date range holds {grid.count} {self.interval} cohorts; at most {MAX_COHORTS} — narrow the "
                "range or use a longer interval"
            )
        return grid

    # statements ----------------------------------------------------------------------------------------------
    def statements(self, ctx: Context) -> dict[str, exp.Expr | Staged]:
        grid = self.cohort_grid(ctx)
        native = native_statements(self, ctx, grid, self._one_pass(grid))  # same numbers, faster (:mod:`.native`)
        if native is not None:
            return dict(native)
        if self._one_pass(grid):
            parts = Parts.of(self, ctx, grid)
            plain = one_pass_cells(self, parts)
            if Capability.ARROW_STAGE not in ctx.capabilities:
                return {"cells": plain}
            # grouped by person outside SQL (:mod:`.fold`), the same rows
            then = one_pass_cells(self, parts, u=sql("SELECT * FROM $f", f=exp.to_identifier(RELATION)))
            staged = Staged(
                plain=plain, source=one_pass_rows(parts), fold=fold_people, relation=RELATION, then=then, streamed=True
            )
            return {"cells": staged}
        ctes = cohort_ctes(self, ctx, grid)
        out: dict[str, exp.Expr | Staged] = {"cells": cells(self, ctes)}
        if self.people is not None:
            out["people"] = retention_people(self, ctes, grid)
        return out

    def _one_pass(self, grid: PeriodGrid) -> bool:
        """First-time cohorts whose start and return are the same event, counted "on" period k, with no breakdown,
        values or people, over at most 63 periods: one grouping of the events by person gives both the first
        event (the cohort) and a bit per period with an event — ClickHouse's retention() shape."""
        return (
            self.masked()
            and self.start == self.returning
            and self.breakdown is None
            and self.people is None
            and grid.extended(self.periods).count <= 63
        )

    def masked(self) -> bool:
        """First-time cohorts counted "on" period k without values: one row per person with a bit per period
        (a grouping by person only) replaces the rows per person and period."""
        return self.start_type == "first_time" and self.mode == "on" and self.value is None and self.periods <= 62

    def value0_apart(self) -> bool:
        """Whether period 0's value comes from its own part: recurring entries whose return event differs from
        the start event."""
        differs = self.return_event is not None and self.return_event != self.start
        return self.value is not None and self.start_type == "recurring" and differs

    # shaping -------------------------------------------------------------------------------------------------
    def shape(self, ctx: Context, data: dict[str, Frame]) -> RetentionResult:
        return shape(self, ctx, data)
