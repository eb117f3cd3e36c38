"""The pieces of a retention definition: value retention and the people request (their meaning is defined in
:mod:`userloop.query.kinds.retention`)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from userloop.query.kinds.retention.people import MAX_PEOPLE
from userloop.query.spec import Name, Spec


class RetentionValue(Spec):
    """Value retention: the sum of a numeric event property of the return events, per cohort member."""

    property: Name
    math: Literal["sum"] = "sum"


class RetentionPeople(Spec):
    """Ask for the people behind one cell: a cohort (its period's first day), a period k (``None``: the whole
    cohort) and, with a breakdown, one of its values (``$other`` and ``$none`` included; ``None``: all values)."""

    cohort: date
    period: int | None = Field(None, ge=0, le=60)
    breakdown: str | None = None
    limit: int = Field(100, ge=1, le=MAX_PEOPLE)
