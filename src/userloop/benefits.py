"""Benefits (权益) and their grants, shared by the journeys and the member programme.

A benefit is a coupon of ``amount`` off an order of at least ``threshold``, valid ``valid_days`` after it is
granted, from a ``stock`` (None: unlimited). A grant is keyed by its cause (a journey's outbox key, a member's
birthday pack for a year, a level reached), so granting again with the same key returns the first grant and takes
nothing more from the stock: exactly once through retries and crashes. Both the journeys (:mod:`userloop.engage`)
and the member system (:mod:`userloop.membership`) grant through :func:`grant`; neither imports the other for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core.clock import utcnow
from userloop.core.errors import UserloopError
from userloop.store.meta import Base

#: The longest grant key: a journey's outbox key is 32 hex characters; other causes are hashed to fit.
KEY_CHARS = 32


class BenefitRow(Base):
    """A benefit (权益): a coupon of ``amount`` off an order of at least ``threshold``, valid ``valid_days`` after
    it is granted, from a ``stock`` (None: unlimited)."""

    __tablename__ = "benefits"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="coupon")
    amount: Mapped[float] = mapped_column(default=0.0)
    threshold: Mapped[float] = mapped_column(default=0.0)
    valid_days: Mapped[int] = mapped_column(Integer, default=30)
    stock: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    granted: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class GrantRow(Base):
    """One benefit granted to one person, keyed by its cause (see :func:`grant_key`)."""

    __tablename__ = "benefit_grants"
    __table_args__ = (Index("ix_benefit_grants_person", "project_id", "person"),)

    key: Mapped[str] = mapped_column(String(KEY_CHARS), primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer)
    benefit_id: Mapped[int] = mapped_column(ForeignKey("benefits.id"))
    person: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(40))
    granted_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


@dataclass(frozen=True)
class Granted:
    """What a grant gave: the benefit's terms and the person's coupon code (what a message template shows)."""

    name: str
    amount: float
    threshold: float
    code: str
    valid_until: datetime

    def as_template(self) -> dict[str, object]:
        return {"name": self.name, "amount": self.amount, "threshold": self.threshold, "code": self.code,
                "valid_until": self.valid_until}  # fmt: skip


def grant_key(*cause: object) -> str:
    """A grant key for a cause other than a journey's outbox row (those are already 32 hex characters): the
    first 32 hex characters of the SHA-256 of its parts, e.g. ``grant_key("birthday", programme, person, 2027)``."""
    return hashlib.sha256("\x1f".join(str(c) for c in cause).encode()).hexdigest()[:KEY_CHARS]


def coupon_code(secret: bytes, key: str) -> str:
    """A coupon code for the grant keyed ``key``: 12 characters of base32 from an HMAC, so it is the same on
    every attempt and cannot be guessed from the key."""
    digest = hmac.new(secret, f"coupon:{key}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode()[:12]


def grant(
    conn: Connection, *, project_id: int, name: str, key: str, person: int, now: datetime, secret: bytes
) -> Granted:
    """Grant benefit ``name`` to ``person`` once for ``key``, inside the caller's transaction ``conn``.

    The first call takes one unit from the stock and records the grant; a later call with the same key returns
    that grant and takes nothing. The grant row is written before the stock is taken, so two calls racing with
    one key meet on its primary key and only one takes stock. ``unknown_benefit`` when the project has no such
    benefit; ``benefit_exhausted`` when its stock is used up (raised inside the caller's transaction, which must
    roll back: nothing stays recorded, so a retry after a restock succeeds)."""
    benefit = conn.execute(
        select(BenefitRow).where(BenefitRow.project_id == project_id, BenefitRow.name == name)
    ).first()
    if benefit is None:
        raise UserloopError(f"no benefit {name!r} in this project", code="unknown_benefit")
    code = coupon_code(secret, key)
    expires = now + timedelta(days=benefit.valid_days)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(GrantRow.__table__).on_conflict_do_nothing(index_elements=["key"]).returning(GrantRow.key),
        {
            "key": key,
            "project_id": project_id,
            "benefit_id": benefit.id,
            "person": person,
            "code": code,
            "granted_at": now,
            "expires_at": expires,
        },
    ).first()
    if inserted is None:  # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT DO NOTHING
        first = conn.execute(select(GrantRow.code, GrantRow.expires_at).where(GrantRow.key == key)).one()
        return Granted(name, benefit.amount, benefit.threshold, first.code, first.expires_at)
    taken = conn.execute(
        update(BenefitRow)
        .where(BenefitRow.id == benefit.id, or_(BenefitRow.stock.is_(None), BenefitRow.granted < BenefitRow.stock))
        .values(granted=BenefitRow.granted + 1)
    )
    if not taken.rowcount:
        raise UserloopError(f"benefit {name!r} is used up", code="benefit_exhausted")
    return Granted(name, benefit.amount, benefit.threshold, code, expires)
