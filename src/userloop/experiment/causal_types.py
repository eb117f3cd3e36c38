"""What a causal estimate is asked for (:mod:`userloop.experiment.did`, :mod:`userloop.experiment.uplift`): the
treatment, the outcome and the choices, apart from the modules that compute, so the operations' types load without
the engines."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=100)]
#: How controls who are treated later are handled (:mod:`userloop.experiment.did_estimate`).
Censor = Literal["weighted", "cut", "keep"]
#: The uplift meta-learner (:mod:`userloop.experiment.uplift`).
Learner = Literal["t", "x"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PropertyFilter(Strict):
    """Keep the treatment events whose ``property`` compares to ``value`` by ``op``."""

    property: Name
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte"] = "eq"
    value: str | float | bool


class Treatment(Strict):
    """The treatment: the first ``event`` (passing every filter in ``where``) of each person."""

    event: Name = "member_join"
    where: tuple[PropertyFilter, ...] = ()


class Outcome(Strict):
    """The outcome per person-day: how many ``event`` rows, or the sum of their numeric ``property``."""

    event: Name = "order_paid"
    property: Name | None = None
