"""Which events are purchases: the event, its money property and an optional business-line filter.

Several models (RFM, lifecycle, value, CLV, churn) read purchases; they all describe them with
:class:`PurchaseSource`, which validates the names once against the project's registry and builds the
condition as a tree, with quoted identifiers and literal values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self, TypeVar

from pydantic import Field
from sqlglot import exp

from userloop.models.base import NAME_PATTERN, ModelConfig, NoDataError, RunContext
from userloop.schema.types import PropertyType
from userloop.store.settings import DEFAULTS, MONEY_PROPERTY
from userloop.store.sqlbuild import col, sql

__all__ = ["LineFilter", "PurchaseSource", "with_money"]

C = TypeVar("C", bound=ModelConfig)


class LineFilter(ModelConfig):
    """Keep the purchases of one business line: events whose ``property`` equals ``value``.

    ``name`` names the line in output tables (``model_rfm_<name>``), so several lines' models coexist.
    """

    name: str = Field(pattern=NAME_PATTERN)
    property: str = Field(min_length=1)
    value: str | float | bool


class PurchaseSource(ModelConfig):
    """Purchases: ``event`` rows, valued by the NUMBER property ``money``, optionally one business ``line``.

    ``money`` left out means the project's money property (a project setting, :mod:`userloop.store.settings`);
    :meth:`UserModel.run <userloop.models.base.UserModel.run>` puts the project's value in before computing.
    """

    event: str = Field(default="order_paid", min_length=1)
    money: str | None = Field(default=None, min_length=1, description="Default: the project's money property.")
    line: LineFilter | None = None

    def with_money(self, money: str) -> Self:
        """This source valued by ``money`` when it leaves the money property to the project; as it is otherwise."""
        return self if self.money is not None else self.model_copy(update={"money": money})

    @property
    def money_name(self) -> str:
        """The money property read: ``money``, or the default setting when the source was never resolved."""
        return self.money or DEFAULTS[MONEY_PROPERTY]

    def suffix(self) -> str:
        """``""`` or ``"_<line>"``: appended to output names so lines do not overwrite each other."""
        return "" if self.line is None else f"_{self.line.name}"

    def validate_in(self, ctx: RunContext) -> None:
        """Check once that the event and properties exist with usable types."""
        ctx.require_event(self.event)
        ctx.require_property("events", self.money_name, PropertyType.NUMBER)
        if self.line is not None:
            kind = {bool: PropertyType.BOOL, str: PropertyType.STRING}.get(type(self.line.value), PropertyType.NUMBER)
            ctx.require_property("events", self.line.property, kind)

    def where(self, start: datetime | None, end: datetime, alias: str | None = None) -> exp.Expr:
        """The condition for purchases in ``[start, end)`` (columns of row ``alias``)."""
        parts = [sql("$event = $name AND $time < $end", event=col("event", alias), name=self.event,
                     time=col("time", alias), end=end)]  # fmt: skip
        if start is not None:
            parts.append(sql("$time >= $start", time=col("time", alias), start=start))
        if self.line is not None:
            parts.append(sql("$column = $value", column=col(self.line.property, alias), value=self.line.value))
        return exp.and_(*parts)

    def amount(self, alias: str | None = None) -> exp.Expr:
        """The amount of a purchase, with a missing or non-finite amount read as 0."""
        return sql("CASE WHEN isfinite($money) THEN $money ELSE 0 END", money=col(self.money_name, alias))

    def missing_amount(self) -> exp.Expr:
        """How many purchases have no finite amount (an aggregate)."""
        return sql("count(*) FILTER (WHERE $money IS NULL OR NOT isfinite($money))", money=col(self.money_name))


def with_money(config: C, money: str) -> C:
    """``config`` with ``money`` put in every purchase source (nested ones too) that leaves it to the project."""
    return config.with_money(money)


def require_rows(n: int, what: str, ctx: RunContext, code: str = "model_no_purchases") -> None:
    """Raise :class:`NoDataError` when a query that should find purchases found none."""
    if n == 0:
        raise NoDataError(f"no {what} before the end of {ctx.as_of}; nothing to model", code=code)
