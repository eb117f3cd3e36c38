"""The points ledger's tables in the metadata database (SQLite embedded, PostgreSQL at scale).

Event-sourced as Open Loyalty keeps points (research/act-and-measure.md §4): ``points_entries`` is append-only, one
row per earning, spending, expiry, reversal or adjustment, each named by the caller's request id (unique per
programme: the idempotency key). Earnings become ``points_lots`` (what was earned, what remains, when it may be
spent, when it lapses); a spending records which lots it drew from in ``points_allocations``. ``points_balances``
holds one row per member and wallet: the lock every write of that member takes first, and the spendable and pending
sums as of that write, with ``CHECK spendable >= 0`` as the database's own guard against a negative balance.

Amounts are signed 64-bit integers: an earning is positive, a spending, expiry or claw-back negative.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from userloop.core.clock import utcnow
from userloop.store.meta import Base

#: A 64-bit id that is still SQLite's ROWID alias (an INTEGER PRIMARY KEY), so it autoincrements there too.
_ID = BigInteger().with_variant(Integer, "sqlite")
#: The kinds of ledger entries (Open Loyalty's transfer types, plus an operator's adjustment).
ENTRY_KINDS: tuple[str, ...] = ("earn", "spend", "expire", "reverse", "adjust")


class PointsEntry(Base):
    """One ledger entry; never updated or deleted.

    ``transfer_id`` names the entry a ``reverse`` undoes, or the earning whose lot an ``expire`` lapses.
    ``fingerprint`` is a digest of the request's content, so a replay of a request id with other content is told
    apart from a retry. ``spendable_after``/``pending_after`` are the member's wallet sums right after the entry,
    and ``shortfall`` what a reversal of an earning could not take back (already spent).
    """

    __tablename__ = "points_entries"
    __table_args__ = (
        UniqueConstraint("project_id", "programme_id", "request_id", name="uq_points_entries_request"),
        Index("ix_points_entries_member", "project_id", "programme_id", "person", "wallet", "id"),
        Index("ix_points_entries_transfer", "transfer_id"),
        CheckConstraint("kind IN ('earn', 'spend', 'expire', 'reverse', 'adjust')", name="ck_points_entries_kind"),
        CheckConstraint(
            "(kind = 'earn' AND amount > 0) OR (kind IN ('spend', 'expire') AND amount < 0)"
            " OR kind IN ('reverse', 'adjust')",
            name="ck_points_entries_sign",
        ),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    programme_id: Mapped[int] = mapped_column(BigInteger)
    person: Mapped[int] = mapped_column(BigInteger)
    wallet: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)
    request_id: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    transfer_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True, default=None)
    ref: Mapped[str | None] = mapped_column(String(100), nullable=True, default=None)
    #: ``posted``, or ``pending`` for an earning locked until its lot's ``spendable_at`` (as written; the lot
    #: tells whether it is spendable now)
    status: Mapped[str] = mapped_column(String(12), default="posted")
    occurred_at: Mapped[datetime] = mapped_column()
    spendable_after: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_after: Mapped[int] = mapped_column(BigInteger, default=0)
    shortfall: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PointsLot(Base):
    """The points one earning (or a positive adjustment, or a spending's reversal into a new lot) put in a wallet.

    ``remaining`` falls as spendings draw on it; ``matured`` turns true once ``spendable_at`` has passed and the
    remaining points moved from the pending sum to the spendable one; ``expired`` once the expiry job (or the
    member's next write) lapsed what remained; ``reversed`` once its earning was reversed.
    """

    __tablename__ = "points_lots"
    __table_args__ = (
        Index("ix_points_lots_member", "project_id", "programme_id", "person", "wallet", "remaining"),
        Index("ix_points_lots_due", "expires_at", "expired"),
        CheckConstraint("remaining >= 0 AND remaining <= original", name="ck_points_lots_remaining"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    programme_id: Mapped[int] = mapped_column(BigInteger)
    person: Mapped[int] = mapped_column(BigInteger)
    wallet: Mapped[str] = mapped_column(String(40))
    original: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[datetime] = mapped_column()
    spendable_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    matured: Mapped[bool] = mapped_column(Boolean, default=False)
    expired: Mapped[bool] = mapped_column(Boolean, default=False)
    reversed: Mapped[bool] = mapped_column(Boolean, default=False)
    entry: Mapped[PointsEntry] = relationship(PointsEntry)


class PointsAllocation(Base):
    """How much of one lot an entry moved: a spending (or negative adjustment) takes ``amount`` > 0 from the lot;
    a spending's reversal gives it back (``amount`` < 0)."""

    __tablename__ = "points_allocations"
    __table_args__ = (
        Index("ix_points_allocations_entry", "entry_id"),
        Index("ix_points_allocations_lot", "lot_id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("points_lots.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    entry: Mapped[PointsEntry] = relationship(PointsEntry)
    lot: Mapped[PointsLot] = relationship(PointsLot)


class PointsBalance(Base):
    """One member's wallet: the row each write locks first, and its sums as of the last write."""

    __tablename__ = "points_balances"
    __table_args__ = (
        UniqueConstraint("project_id", "programme_id", "person", "wallet", name="uq_points_balances_member"),
        CheckConstraint("spendable >= 0", name="ck_points_balances_spendable"),
        CheckConstraint("pending >= 0", name="ck_points_balances_pending"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    programme_id: Mapped[int] = mapped_column(BigInteger)
    person: Mapped[int] = mapped_column(BigInteger)
    wallet: Mapped[str] = mapped_column(String(40))
    spendable: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


#: The ledger's tables, for ``create_all(tables=…)``.
TABLES = tuple(
    Base.metadata.tables[name] for name in ("points_entries", "points_lots", "points_allocations", "points_balances")
)
