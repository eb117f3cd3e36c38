"""The member diagnosis' typed result (:func:`userloop.membership.diagnosis.diagnose` fills it): tables and
sentences in Chinese and English. Pydantic only, so the operation's reply type loads without the engines (the
CLI through a server imports it, not SQLAlchemy or DuckDB)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sentence(_Part):
    """One finding, in Chinese and English."""

    zh: str
    en: str


class LevelInfo(_Part):
    index: int
    name: str
    title_zh: str
    title_en: str


class Snapshot(_Part):
    """Members per level (by index) just before ``at``: the end of month ``period`` (``as_of`` for the last)."""

    period: str
    at: datetime
    counts: list[int]
    total: int


class Flows(_Part):
    """One month's transitions, member by member: ``matrix[i][j]`` counts members at level ``i - 1`` at the
    month's start (row 0: not yet a member) and at level ``j`` at its end (the last column: left)."""

    period: str
    start: datetime
    end: datetime
    matrix: list[list[int]]
    joins: int
    upgrades: int
    downgrades: int
    stayed: int
    leaves: int


class GrowthSource(_Part):
    source: str
    title_zh: str
    title_en: str
    amount: int
    entries: int
    members: int
    share: float


class WalletLiability(_Part):
    """One wallet's outstanding points at ``as_of`` and its breakage; yuan figures are points × ``unit_value``
    (None for a wallet the definition no longer has)."""

    wallet: str
    title_zh: str
    title_en: str
    unit_value: float | None
    spendable: int
    pending: int
    outstanding: int
    liability_yuan: float | None
    expiring_30: int
    expiring_90: int
    expiring_30_yuan: float | None
    expiring_90_yuan: float | None
    settled_credited: int
    settled_expired: int
    breakage: float | None = Field(description="settled_expired / settled_credited; None without settled lots")


class BenefitUse(_Part):
    """Grants of one benefit to members holding one level at the grant; ``redeemed`` when measured."""

    level: int
    benefit: str
    grants: int
    people: int
    redeemed: int | None = None
    redemption_rate: float | None = None


class GroupActivity(_Part):
    """Per-person activity of members or non-members over the last ``days`` days (``spend_per_person`` is None
    when the project has no numeric money property)."""

    group: Literal["members", "non_members"]
    days: int
    people: int
    spend_per_person: float | None
    orders_per_person: float
    active_days_per_person: float
    buyers_share: float


class Diagnosis(_Part):
    """The member diagnosis of one programme (see the module)."""

    programme: str
    title_zh: str
    title_en: str
    timezone: str
    as_of: datetime
    window_start: datetime
    levels: list[LevelInfo]
    now: Snapshot
    history: list[Snapshot]
    flows: list[Flows]
    growth: list[GrowthSource]
    liability: list[WalletLiability]
    benefits: list[BenefitUse]
    redemption_measured: bool
    comparison: list[GroupActivity]
    sentences: list[Sentence] = Field(default_factory=list)
    notes: list[Sentence] = Field(default_factory=list)


Months = Annotated[int, Field(ge=1, le=60)]
