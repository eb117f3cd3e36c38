"""When earned points lapse and when they may be spent: a wallet's expiry and pending policies.

The shapes follow what loyalty engines offer (Open Loyalty's per-wallet "unit expiration method": none, after X
days, end of month, end of the X-th year, and its "pending (locking) method"; Talon.One's ``defaultValidity``
such as ``30D`` and ``defaultPending``; Square's "valid through the last day of the month"). Calendar boundaries
are in the programme's time zone: "end of month" is the instant the next month begins there, stored as naive UTC
like every instant in the metadata database.

Pure: no clock, no database. The ledger asks ``expires_at(earned)`` and ``spendable_at(earned)``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

#: Points are whole units, up to this many in one entry (a typo of a few extra digits is refused, not booked).
MAX_POINTS = 10**12


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NeverExpires(_Policy):
    """Earned points stay until spent."""

    kind: Literal["never"] = "never"

    def expires_at(self, earned: datetime, timezone: str) -> datetime | None:
        return None


class AfterDays(_Policy):
    """Each lot lapses ``days`` × 24 h after it was earned (Open Loyalty "after X days")."""

    kind: Literal["after_days"] = "after_days"
    days: Annotated[int, Field(ge=1, le=36_500)]

    def expires_at(self, earned: datetime, timezone: str) -> datetime | None:
        return earned + timedelta(days=self.days)


class EndOfMonth(_Policy):
    """A lot lapses when the month ``months`` after the one it was earned in ends, in the programme's zone
    (``months=0``: at the end of the month it was earned in; Square's 12 months "valid through the last day of
    the month" is ``months=12``: earned on 15 January, lapses when the next January ends)."""

    kind: Literal["end_of_month"] = "end_of_month"
    months: Annotated[int, Field(ge=0, le=1200)] = 0

    def expires_at(self, earned: datetime, timezone: str) -> datetime | None:
        local = _local(earned, timezone)
        index = local.year * 12 + (local.month - 1) + self.months + 1
        return _utc_midnight(index // 12, index % 12 + 1, 1, timezone)


class EndOfYear(_Policy):
    """A lot lapses when the ``years``-th calendar year counted from the one it was earned in ends (``years=1``:
    on 1 January after earning; ``years=2``: a year later), in the programme's zone (Open Loyalty "end of the
    x-th year"; common for 积分 in China: points of year N lapse at the end of year N+1)."""

    kind: Literal["end_of_year"] = "end_of_year"
    years: Annotated[int, Field(ge=1, le=100)] = 1

    def expires_at(self, earned: datetime, timezone: str) -> datetime | None:
        local = _local(earned, timezone)
        return _utc_midnight(local.year + self.years, 1, 1, timezone)


Expiry = Annotated[NeverExpires | AfterDays | EndOfMonth | EndOfYear, Field(discriminator="kind")]


class Pending(_Policy):
    """Earned points are locked for ``days`` × 24 h before they can be spent (e.g. until a return window closes);
    ``days=0`` makes them spendable at once. Locked points count in the pending balance, not the spendable one."""

    days: Annotated[int, Field(ge=0, le=3650)] = 0

    def spendable_at(self, earned: datetime) -> datetime:
        return earned + timedelta(days=self.days)


class WalletPolicy(_Policy):
    """One wallet of a programme (several per programme: e.g. ``points`` and a partner's ``coins``)."""

    name: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")] = "points"
    title_zh: Annotated[str, Field(max_length=60)] = "积分"
    title_en: Annotated[str, Field(max_length=60)] = "Points"
    expiry: Expiry = Field(default_factory=NeverExpires)
    pending: Pending = Field(default_factory=Pending)
    #: What one point is worth to the business, in yuan, for the points liability of the diagnosis report.
    unit_value: Annotated[float, Field(ge=0, le=10_000)] = 0.01


def _local(at: datetime, timezone: str) -> datetime:
    """A naive UTC instant as wall time in ``timezone``."""
    return at.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone))


def _utc_midnight(year: int, month: int, day: int, timezone: str) -> datetime:
    """00:00 of a local date in ``timezone`` as a naive UTC instant."""
    local = datetime(year, month, day, tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)
