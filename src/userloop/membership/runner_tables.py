"""What the membership pass (:mod:`userloop.membership.runner`) remembers between runs, in the metadata database.

- ``member_pass_state``: per programme, the local day (in the programme's zone) of the last full level
  evaluation, so it runs once per local day, and ``levels_low``: every upgrade in ``level_history`` up to this id
  has had its coupons granted (the pass reads above it only);
- ``member_level_grants``: the upgrades above ``levels_low`` whose coupons were granted (dropped as the cursor
  passes them);
- ``member_pass_done``: the other causes the pass has finished, by ``kind`` and ``ref`` (``birthday``: a member's
  birthday pack of a year; ``multiplier``: a reward whose level multiplier was booked).

Each row is written in the transaction of the work it records, or after idempotent writes, so a crash at any point
neither loses nor doubles anything; the pass reads what is not done yet.

The Alembic revision for these tables is the lead's (0004); instants are naive UTC.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core.clock import utcnow
from userloop.store.meta import Base


class PassStateRow(Base):
    """A programme's last full level evaluation, as a local day of its zone."""

    __tablename__ = "member_pass_state"

    programme_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    evaluated_day: Mapped[date | None] = mapped_column(Date, nullable=True, default=None)
    levels_low: Mapped[int] = mapped_column(BigInteger, default=0)


class LevelGrantRow(Base):
    """An upgrade (a ``level_history`` row) whose level's coupons were granted."""

    __tablename__ = "member_level_grants"

    programme_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    change_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    done_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PassDoneRow(Base):
    """A cause the pass has finished: ``kind`` (``birthday``, ``multiplier``) and its ``ref``."""

    __tablename__ = "member_pass_done"

    programme_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    ref: Mapped[str] = mapped_column(String(120), primary_key=True)
    done_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


TABLES = (PassStateRow, LevelGrantRow, PassDoneRow)
