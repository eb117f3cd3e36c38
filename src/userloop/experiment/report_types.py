"""A report's reply (:func:`userloop.experiment.report.journey_report` and
:func:`~userloop.experiment.report.standalone_report` fill a :class:`Report`): arms, comparisons, returns on
benefits, sample ratio checks and findings in Chinese and English. Pydantic only, so the operations
``experiments.report`` and ``experiments.journey_report``, their client and the HTML page
(:mod:`userloop.experiment.report_page`) load without the engines (DuckDB, SQLAlchemy, sqlglot)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sentence(_Part):
    """One finding, in Chinese and English."""

    zh: str
    en: str


class ArmRow(_Part):
    """An arm's totals: people, conversions, revenue, benefits' cost and the guardrails."""

    experiment: str
    node: str | None
    variant: str
    global_control: bool
    people: int
    conversions: int
    conversion_rate: float | None
    revenue: float
    revenue_per_person: float | None
    cost: float
    cost_per_person: float | None
    unsubscribed: int
    complained: int
    churned: int


Metric = Literal["conversion", "revenue_per_person", "unsubscribed", "complained", "churned"]
#: What a comparison is against: a split's control branch, the global control group, a standalone control variant.
Against = Literal["control_branch", "global_control", "control_variant"]


class Comparison(_Part):
    """One arm against its control on one metric: the difference (``absolute``: proportions as fractions, money
    per person) or the relative lift, with its 95% interval and p-value (Welch; ``code`` when neutral)."""

    experiment: str
    node: str | None
    treatment: str
    control: str
    against: Against
    metric: Metric
    scale: Literal["absolute", "relative"]
    treatment_mean: float | None
    control_mean: float | None
    estimate: float
    low: float
    high: float
    p_value: float
    significant: bool
    code: str | None = None
    #: Holm's adjustment over the absolute comparisons of the same experiment and control (every arm and metric);
    #: None on the relative rows, which repeat their absolute row's test
    p_adjusted: float | None = None


class Return(_Part):
    """What a branch's benefits returned: revenue and cost per person added over the control, and their ratio
    (元 of GMV per 元 of benefits), None when the branch spends nothing more than its control."""

    experiment: str
    node: str | None
    treatment: str
    control: str
    against: Against
    revenue_per_person_added: float
    cost_per_person_added: float
    return_per_cost: float | None


class SrmCheck(_Part):
    """The sample ratio check of one experiment: people per arm against the planned shares."""

    experiment: str
    node: str | None
    arms: list[str]
    counts: list[int]
    weights: list[float]
    p_value: float
    alert: bool


class Report(_Part):
    """A report after launch (数据分析): arms, comparisons, returns on benefits, sample ratio checks, and the
    findings in Chinese and English."""

    subject: str
    kind: Literal["journey", "standalone"]
    goal: str
    window_seconds: int
    money_property: str | None
    as_of: datetime
    arms: list[ArmRow]
    comparisons: list[Comparison]
    returns: list[Return]
    srm: list[SrmCheck]
    sentences: list[Sentence] = []
    notes: list[Sentence] = []


__all__ = ["Against", "ArmRow", "Comparison", "Metric", "Report", "Return", "Sentence", "SrmCheck"]
