"""Which events are purchases: the event, its money property and an optional business-line filter.

Several models (RFM, lifecycle, value, CLV, churn) read purchases; they all describe them with
:class:`PurchaseSource`, which validates the names once against the project's registry and renders the SQL
condition with quoted identifiers and bound values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from userloop.models.base import NAME_PATTERN, ModelConfig, NoDataError, RunContext
from userloop.schema.types import PropertyType
from userloop.store.sqltext import ident

__all__ = ["LineFilter", "PurchaseSource"]


class LineFilter(ModelConfig):
    """Keep the purchases of one business line: events whose ``property`` equals ``value``.

    ``name`` names the line in output tables (``model_rfm_<name>``), so several lines' models coexist.
    """

    name: str = Field(pattern=NAME_PATTERN)
    property: str = Field(min_length=1)
    value: str | float | bool


class PurchaseSource(ModelConfig):
    """Purchases: ``event`` rows, valued by the NUMBER property ``money``, optionally one business ``line``."""

    event: str = Field(default="order_paid", min_length=1)
    money: str = Field(default="order_amount", min_length=1)
    line: LineFilter | None = None

    def suffix(self) -> str:
        """``""`` or ``"_<line>"``: appended to output names so lines do not overwrite each other."""
        return "" if self.line is None else f"_{self.line.name}"

    def validate_in(self, ctx: RunContext) -> None:
        """Check once that the event and properties exist with usable types."""
        ctx.require_event(self.event)
        ctx.require_property("events", self.money, PropertyType.NUMBER)
        if self.line is not None:
            kind = {bool: PropertyType.BOOL, str: PropertyType.STRING}.get(type(self.line.value), PropertyType.NUMBER)
            ctx.require_property("events", self.line.property, kind)

    def where(self, start: datetime | None, end: datetime) -> tuple[str, list[Any]]:
        """SQL condition (with ``?`` parameters) for purchases in ``[start, end)``."""
        sql = "event = ? AND time < ?"
        params: list[Any] = [self.event, end]
        if start is not None:
            sql += " AND time >= ?"
            params.append(start)
        if self.line is not None:
            sql += f" AND {ident(self.line.property)} = ?"
            params.append(self.line.value)
        return sql, params

    def money_sql(self) -> str:
        """The amount of a purchase, with a missing or non-finite amount read as 0."""
        col = ident(self.money)
        return f"CASE WHEN isfinite({col}) THEN {col} ELSE 0 END"

    def missing_money_sql(self) -> str:
        col = ident(self.money)
        return f"count(*) FILTER (WHERE {col} IS NULL OR NOT isfinite({col}))"


def require_rows(n: int, what: str, ctx: RunContext, code: str = "model_no_purchases") -> None:
    """Raise :class:`NoDataError` when a query that should find purchases found none."""
    if n == 0:
        raise NoDataError(f"no {what} before the end of {ctx.as_of}; nothing to model", code=code)
