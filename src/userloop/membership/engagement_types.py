"""What the check-in and task operations answer (:mod:`userloop.membership.engagement`), apart from the module that
books them, so the API client loads them without the database engines."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from userloop.membership.programme import Reward, Title


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RewardView(_Reply):
    """A reward a check-in or a task earned, and whether it is booked yet."""

    key: str
    source: str = Field(description="check_in or task")
    reason: str
    wallet: str
    points: int
    growth: int
    benefits: list[str]
    earned_at: datetime
    settled: bool
    error: str | None = None


class CheckedIn(_Reply):
    """One check-in: its local day, when, the streak it reached, whether this call made it, and its rewards."""

    day: date
    at: datetime
    streak: int
    new: bool
    rewards: list[RewardView]


class CheckInDay(_Reply):
    day: date
    at: datetime
    streak: int


class CheckIns(_Reply):
    """A member's check-ins, newest first, with the streak that still counts (0 once a day was missed)."""

    person: int
    today: date
    checked_in_today: bool
    streak: int
    days: list[CheckInDay]


class TaskProgress(_Reply):
    """A member's progress on one task in the current period."""

    task: str
    title: Title
    event: str
    times: int
    period: str
    period_start: date | None
    count: int
    completed: bool
    completions: int
    limit: int | None
    reward: Reward
