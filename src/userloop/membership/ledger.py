"""The points ledger: earn, spend, reverse, adjust, expire; balances and history; exact under concurrency.

The design is Open Loyalty's event-sourced account (research/act-and-measure.md §4.1: an earning is a transfer
with an available amount, spending draws on transfers, transfers are cancelled or expired by id), with what the
commercial engines add (§4.1–4.3): several wallets, a pending period before points can be spent, expiry per
wallet (:mod:`userloop.membership.policy`), and spending **FEFO** — earliest expiry first, never-expiring lots
last, ties by the oldest lot (§4.3: Open Loyalty's creation-order FIFO equals FEFO only when every lot shares one
validity rule, which explicit expiries break).

Every write names a **request id**, unique per programme (Open Loyalty's ``externalTransferId``): a retry of it
returns the first result, the same entry ids, and writes nothing; the same id with other content is refused
(``points_request_conflict``). Every write takes the member's wallet row first (``SELECT … FOR UPDATE`` on
PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite, which serialises writers in the WAL database), so two requests of one
member never interleave, and the row's ``CHECK spendable >= 0`` backs the rule that a balance is never negative.

Rules this module decides (documented for the operator API):

- **Reversing an earning** takes back what remains of its lot, from the pending or the spendable sum; points already
  spent from it stay spent — the entry's ``shortfall`` says how many — so the balance never goes negative (Open
  Loyalty's newer engine allows negative balances instead; §4.3 names both). Points of the lot that have lapsed
  are gone already and are not counted as a shortfall.
- **Reversing a spending** gives each lot back what the spending took, if the lot is still live; what came from a
  lot that has lapsed since is credited as one new lot that lapses by the wallet's policy from now (§4.3: "else a
  new lot"); what came from a lot whose earning was reversed since is not given back (it settles that
  reversal's shortfall).
- An **adjustment** credits a new lot (spendable at once, lapsing by the wallet's policy) or debits like a
  spending; a **reversal** or an **expiry** cannot itself be reversed.
- **Expiry** writes one ``expire`` entry per lapsed lot, at the lot's ``expires_at``, named ``$expire:<lot id>``;
  the job (:meth:`Ledger.expire`) writes them, and so does any later write of the member before it acts, so a
  spending never draws on a lot that has lapsed but not yet been swept. Each member is swept in one transaction,
  so a crash loses nothing and a re-run doubles nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from weakref import WeakSet
from zoneinfo import ZoneInfo

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func, inspect, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstanceState, Session, sessionmaker

from userloop.core.errors import NotFoundError, UserloopError, ValidationError
from userloop.membership.ledger_tables import TABLES, PointsAllocation, PointsBalance, PointsEntry, PointsLot
from userloop.membership.ledger_types import (
    _EPOCH,
    _EPOCH_ID,
    _KINDS,
    _OPERATION,
    _SYSTEM,
    MAX_BATCH,
    Adjust,
    Allocation,
    Balance,
    BatchItem,
    BatchResult,
    Earn,
    Expiring,
    ExpiryRun,
    HistoryPage,
    Posted,
    Rejected,
    Reverse,
    Spend,
    _Op,
)
from userloop.membership.policy import WalletPolicy
from userloop.store.meta import Base


@dataclass(frozen=True)
class Programme:
    """What the ledger needs to know of a programme: whose it is, its zone, and each wallet's policy."""

    project_id: int
    programme_id: int
    timezone: str = "Asia/Shanghai"
    wallets: Callable[[str], WalletPolicy] = field(default=lambda name: WalletPolicy(name=name))


class InsufficientPointsError(UserloopError):
    """A spending (or debit) larger than the spendable balance."""

    code = "points_insufficient"


def operation_of(data: Mapping[str, Any] | Earn | Spend | Reverse | Adjust) -> Earn | Spend | Reverse | Adjust:
    """A ledger operation from untyped data (a batch item, a test), or a ValidationError naming the field."""
    if isinstance(data, Earn | Spend | Reverse | Adjust):
        return data
    try:
        return _OPERATION.validate_python(data)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][1:] if first["loc"] and first["loc"][0] in _KINDS else first["loc"]  # the union's tag
        where = "op" if first["type"].startswith("union_tag") else ".".join(str(p) for p in loc) or "operation"
        raise ValidationError(f"{where}: {first['msg']}", code="points_invalid", field=where) from None


_READY: WeakSet[Engine] = WeakSet()


def ensure_tables(engine: Engine) -> None:
    """Create the ledger's tables where missing (once per engine; a workspace from before them lacks them)."""
    if engine not in _READY:
        Base.metadata.create_all(engine, tables=list(TABLES))
        _READY.add(engine)


Key = tuple[int, str]  # (person, wallet)


@dataclass
class _Outcome:
    """What one operation booked in the current transaction (ids are known once it is flushed)."""

    entry: PointsEntry
    lot: PointsLot | None = None
    allocations: list[PointsAllocation] = field(default_factory=list)


@dataclass
class _Member:
    """A member's locked wallet row and live lots, in memory for one transaction."""

    row: PointsBalance
    lots: list[PointsLot]


class Ledger:
    """The points ledger of one programme over the metadata database's ``engine``.

    A transaction locks the members it touches (one upsert of their wallet rows, ``RETURNING`` them), reads their
    live lots once, books its operations in memory and writes everything in one flush; so a batch of a thousand
    operations costs a handful of statements, not a thousand round trips.

    Example::

        ledger = Ledger(meta.engine, Programme(project_id=1, programme_id=1, timezone="Asia/Shanghai"))
        ledger.post(Earn(person=7, amount=100, request_id="order-1"), now)
        ledger.balance(7, "points", now).spendable  # 100
    """

    def __init__(self, engine: Engine, programme: Programme) -> None:
        ensure_tables(engine)
        self.engine = engine
        self.programme = programme
        self.session = sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"

    # writes ---------------------------------------------------------------------------------------------
    def post(self, operation: Mapping[str, Any] | Earn | Spend | Reverse | Adjust, now: datetime) -> Posted:
        """Book one operation at ``now`` (naive UTC) in its own transaction; a retry returns the first result.
        A refused operation writes nothing."""
        item = self.batch([operation_of(operation)], now, _single=True).items[0]
        assert item.posted is not None  # a single operation's refusal is raised, not reported
        return item.posted

    def batch(
        self,
        operations: Sequence[Mapping[str, Any] | Earn | Spend | Reverse | Adjust],
        now: datetime,
        *,
        _single: bool = False,
    ) -> BatchResult:
        """Book many operations in one transaction, in order, each on its own: a refused one is reported with
        its index, field and reason and its neighbours are kept; each is idempotent by its request id.

        A refused operation books nothing of its own; lapses due by ``now`` of the members it named are booked
        all the same (they are the expiry job's entries, the same whoever writes them first)."""
        if len(operations) > MAX_BATCH:
            raise ValidationError(f"a batch holds at most {MAX_BATCH} operations, not {len(operations)}",
                                  code="points_invalid", field="operations")  # fmt: skip
        items: dict[int, BatchItem] = {}
        valid: list[tuple[int, Earn | Spend | Reverse | Adjust]] = []
        for index, data in enumerate(operations):
            try:
                valid.append((index, operation_of(data)))
            except UserloopError as exc:
                items[index] = _rejected(index, exc)
        for attempt in range(3):
            try:
                items.update(self._book(valid, now, raise_refusals=_single))
                break
            except IntegrityError:
                # another member's transaction took one of these request ids first (ids are unique per programme,
                # locks per member): the next attempt finds it committed and answers it as a replay or a conflict
                if attempt == 2:
                    raise
        ordered = [items[i] for i in range(len(operations))]
        done = sum(1 for item in ordered if item.posted is not None)
        return BatchResult(items=ordered, posted=done, rejected=len(ordered) - done)

    def expire(self, now: datetime, *, limit: int | None = None) -> ExpiryRun:
        """The expiry job: lapse every lot whose ``expires_at`` is at or before ``now``, one transaction per
        member (so a crash keeps what was committed and a re-run finishes the rest, never twice: each lot's entry
        is named ``$expire:<lot id>``). ``limit`` caps the members swept in this run."""
        with self.session() as s:
            query = (
                select(PointsLot.person, PointsLot.wallet)
                .where(*self._programme(PointsLot), *_lapsed(now))
                .group_by(PointsLot.person, PointsLot.wallet)
                .order_by(PointsLot.person, PointsLot.wallet)
            )
            due = [(int(p), str(w)) for p, w in s.execute(query.limit(limit) if limit is not None else query)]
        lots = points = 0
        for key in due:
            with self._write() as s:
                member = self._lock(s, [key])[key]
                swept = self._sweep(s, member, now)
            lots, points = lots + len(swept), points + sum(swept)
        return ExpiryRun(members=len(due), lots=lots, points=points)

    # reads ----------------------------------------------------------------------------------------------
    def balance(self, person: int, wallet: str, now: datetime, *, soon_days: int = 30) -> Balance:
        """Spendable and pending points at ``now``, and what lapses within ``soon_days`` by local day (lots
        lapsed but not yet swept by the job already count as gone)."""
        with self.session() as s:
            lots = s.scalars(
                select(PointsLot).where(*self._member(PointsLot, person, wallet), PointsLot.remaining > 0,
                                        PointsLot.expired.is_(False), PointsLot.reversed.is_(False))
            ).all()  # fmt: skip
        live = [lot for lot in lots if lot.expires_at is None or lot.expires_at > now]
        spendable = sum(lot.remaining for lot in live if lot.spendable_at <= now)
        horizon = now + timedelta(days=soon_days)
        by_day: dict[date, int] = {}
        for lot in live:
            if lot.expires_at is not None and lot.expires_at <= horizon:
                day = _last_day(lot.expires_at, self.programme.timezone)
                by_day[day] = by_day.get(day, 0) + lot.remaining
        return Balance(
            person=person,
            wallet=wallet,
            spendable=spendable,
            pending=sum(lot.remaining for lot in live) - spendable,
            expiring=[Expiring(date=d, points=p) for d, p in sorted(by_day.items())],
        )

    def history(
        self, person: int, wallet: str | None = None, *, before: int | None = None, limit: int = 50
    ) -> HistoryPage:
        """A member's entries, newest first, ``limit`` a page; ``before`` is the previous page's ``next_before``."""
        with self.session() as s:
            query = select(PointsEntry).where(*self._programme(PointsEntry), PointsEntry.person == person)
            if wallet is not None:
                query = query.where(PointsEntry.wallet == wallet)
            if before is not None:
                query = query.where(PointsEntry.id < before)
            rows = s.scalars(query.order_by(PointsEntry.id.desc()).limit(limit + 1)).all()
            entries = [self._posted(s, row) for row in rows[:limit]]
        more = len(rows) > limit
        return HistoryPage(entries=entries, next_before=entries[-1].entry_id if more else None)

    # the transaction and the lock -----------------------------------------------------------------------

    # the transaction and the lock -----------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A write transaction; on SQLite it starts with ``BEGIN IMMEDIATE``, taking the database's write lock
        before the first read, so a read-then-write never meets another writer's commit in between (a deferred
        transaction would fail with SQLITE_BUSY instead of waiting)."""
        with self.session() as s, s.begin():
            if self._sqlite:
                s.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield s

    def _lock(self, s: Session, keys: Sequence[Key]) -> dict[Key, _Member]:
        """Lock the wallet rows of ``keys``: make the missing ones (one statement for many rows), then lock them
        all in (person, wallet) order (``FOR UPDATE``), so two transactions never wait on each other in a circle;
        and read their live lots."""
        if not keys:
            return {}
        p = self.programme
        wanted = sorted(set(keys))
        rows = [
            {"project_id": p.project_id, "programme_id": p.programme_id, "person": person, "wallet": wallet,
             "spendable": 0, "pending": 0, "updated_at": _EPOCH}
            for person, wallet in wanted
        ]  # fmt: skip
        dialect: Any = sqlite if self._sqlite else postgresql
        # Core, not the ORM's bulk insert: the same statement without the ORM's per-call bookkeeping (a profile of
        # single requests put that at a tenth of the ledger's CPU)
        s.connection().execute(dialect.insert(PointsBalance.__table__).on_conflict_do_nothing(), rows)
        people = sorted({person for person, _wallet in wanted})
        query = (
            select(PointsBalance)
            .where(*self._programme(PointsBalance), PointsBalance.person.in_(people))
            .order_by(PointsBalance.person, PointsBalance.wallet)
            .execution_options(populate_existing=True)
        )
        chosen = set(wanted)
        members = {
            (row.person, row.wallet): _Member(row, [])
            for row in s.scalars(query if self._sqlite else query.with_for_update())
            if (row.person, row.wallet) in chosen
        }
        lots = s.scalars(
            select(PointsLot)
            .where(*self._programme(PointsLot), PointsLot.person.in_(people), PointsLot.remaining > 0,
                   PointsLot.expired.is_(False), PointsLot.reversed.is_(False))
            .order_by(PointsLot.id)
        )  # fmt: skip
        for lot in lots:
            member = members.get((lot.person, lot.wallet))
            if member is not None:
                member.lots.append(lot)
        return members

    def _book(self, ops: Sequence[tuple[int, Earn | Spend | Reverse | Adjust]], now: datetime, *,
              raise_refusals: bool) -> dict[int, BatchItem]:  # fmt: skip
        """One transaction: lock, answer replays, book each operation in memory, flush once."""
        items: dict[int, BatchItem] = {}
        with self._write() as s:
            targets = self._targets(s, [op.transfer_id for _i, op in ops if isinstance(op, Reverse)])
            keys = [_key_of(op, targets) for _i, op in ops]
            members = self._lock(s, [k for k in keys if k is not None])
            first = self._committed(s, [op.request_id for _i, op in ops])
            fresh: dict[str, _Outcome] = {}
            booked: list[tuple[int, _Outcome, bool]] = []
            swept: set[Key] = set()
            for (index, op), key in zip(ops, keys, strict=True):
                try:
                    earlier = fresh.get(op.request_id)
                    entry = first.get(op.request_id) or (earlier.entry if earlier else None)
                    if entry is not None:
                        _same_request(op, entry)
                        if earlier is not None:
                            booked.append((index, earlier, True))
                        else:
                            items[index] = BatchItem(index=index, posted=self._posted(s, entry, replayed=True))
                        continue
                    if key is None:
                        raise _unknown_transfer(op)
                    member = members[key]
                    if key not in swept:
                        self._sweep(s, member, now)
                        self._mature(member, now)
                        swept.add(key)
                    outcome = self._apply(s, member, op, targets, now)
                except UserloopError as exc:
                    if raise_refusals:
                        raise
                    items[index] = _rejected(index, exc)
                    continue
                member.row.updated_at = now
                outcome.entry.spendable_after, outcome.entry.pending_after = member.row.spendable, member.row.pending
                fresh[op.request_id] = outcome
                booked.append((index, outcome, False))
            if not self._sqlite:
                _number(s)
            s.flush()
            for index, outcome, replayed in booked:
                items[index] = BatchItem(index=index, posted=_posted_of(outcome, replayed=replayed))
        return items

    def _committed(self, s: Session, request_ids: Sequence[str]) -> dict[str, PointsEntry]:
        """The entries already booked under any of ``request_ids``."""
        if not request_ids:
            return {}
        query = select(PointsEntry).where(*self._programme(PointsEntry), PointsEntry.request_id.in_(set(request_ids)))
        return {entry.request_id: entry for entry in s.scalars(query)}

    def _targets(self, s: Session, ids: Sequence[int]) -> dict[int, PointsEntry]:
        if not ids:
            return {}
        query = select(PointsEntry).where(*self._programme(PointsEntry), PointsEntry.id.in_(set(ids)))
        return {entry.id: entry for entry in s.scalars(query)}

    # one operation --------------------------------------------------------------------------------------
    def _apply(self, s: Session, member: _Member, op: Earn | Spend | Reverse | Adjust,
               targets: Mapping[int, PointsEntry], now: datetime) -> _Outcome:  # fmt: skip
        if isinstance(op, Earn):
            return self._earn(s, member, op, now)
        if isinstance(op, Spend) or (isinstance(op, Adjust) and op.amount < 0):
            return self._debit(s, member, op, now)
        if isinstance(op, Adjust):
            return self._credit(s, member, op, now)
        return self._reverse(s, member, op, targets[op.transfer_id], now)

    def _entry(
        self, s: Session, member: _Member, op: _Op, kind: str, amount: int, now: datetime, **extra: Any
    ) -> PointsEntry:
        p = self.programme
        entry = PointsEntry(
            project_id=p.project_id, programme_id=p.programme_id, person=member.row.person, wallet=member.row.wallet,
            kind=kind, amount=amount, request_id=op.request_id, fingerprint=_fingerprint(op), reason=op.reason,
            ref=op.ref, occurred_at=now, status="posted", shortfall=0, **extra,
        )  # fmt: skip
        s.add(entry)
        return entry

    def _lot(self, s: Session, member: _Member, entry: PointsEntry, amount: int, spendable_at: datetime,
             expires_at: datetime | None, now: datetime) -> PointsLot:  # fmt: skip
        p = self.programme
        matured = spendable_at <= now
        lot = PointsLot(
            entry=entry, project_id=p.project_id, programme_id=p.programme_id, person=member.row.person,
            wallet=member.row.wallet, original=amount, remaining=amount, earned_at=now, spendable_at=spendable_at,
            expires_at=expires_at, matured=matured, expired=False, reversed=False,
        )  # fmt: skip
        s.add(lot)
        member.lots.append(lot)
        if matured:
            member.row.spendable += amount
        else:
            member.row.pending += amount
        return lot

    def _earn(self, s: Session, member: _Member, op: Earn, now: datetime) -> _Outcome:
        policy = self.programme.wallets(op.wallet)
        if op.expires_at is not None:
            expires_at: datetime | None = _naive_utc(op.expires_at)
        else:
            expires_at = policy.expiry.expires_at(now, self.programme.timezone)
        if expires_at is not None and expires_at <= now:
            raise ValidationError(f"expires_at {expires_at.isoformat()} is not after the earning ({now.isoformat()})",
                                  code="points_invalid", field="expires_at")  # fmt: skip
        days = op.pending_days if op.pending_days is not None else policy.pending.days
        spendable_at = now + timedelta(days=days)
        entry = self._entry(s, member, op, "earn", op.amount, now)
        entry.status = "pending" if spendable_at > now else "posted"
        return _Outcome(entry, self._lot(s, member, entry, op.amount, spendable_at, expires_at, now))

    def _credit(self, s: Session, member: _Member, op: Adjust, now: datetime) -> _Outcome:
        expires_at = self.programme.wallets(op.wallet).expiry.expires_at(now, self.programme.timezone)
        entry = self._entry(s, member, op, "adjust", op.amount, now)
        return _Outcome(entry, self._lot(s, member, entry, op.amount, now, expires_at, now))

    def _debit(self, s: Session, member: _Member, op: Spend | Adjust, now: datetime) -> _Outcome:
        amount = abs(op.amount)
        if amount > member.row.spendable:
            pending = f" ({member.row.pending} more are pending)" if member.row.pending else ""
            raise InsufficientPointsError(
                f"person {op.person} has {member.row.spendable} spendable points in wallet {op.wallet!r}{pending}; "
                f"cannot take {amount}", field="amount",
            )  # fmt: skip
        usable = [
            lot for lot in member.lots if lot.remaining > 0 and lot.matured and not lot.expired and not lot.reversed
        ]
        # FEFO: the earliest expiry first, lots that never lapse last, then the oldest (a lot made in this
        # transaction may have no id yet: it is the newest)
        fresh = {id(lot): i for i, lot in enumerate(member.lots) if lot.id is None}
        usable.sort(
            key=lambda lot: (lot.expires_at is None, lot.expires_at or now, lot.id or _EPOCH_ID + fresh[id(lot)])
        )
        outcome = _Outcome(self._entry(s, member, op, op.op, -amount, now))
        left = amount
        for lot in usable:
            take = min(left, lot.remaining)
            lot.remaining -= take
            allocation = PointsAllocation(entry=outcome.entry, lot=lot, amount=take)
            s.add(allocation)
            outcome.allocations.append(allocation)
            left -= take
            if left == 0:
                break
        if left:  # the wallet row and the lots disagree: never book half a spending
            raise RuntimeError(f"points_balances of person {op.person} is ahead of its lots by {left}")
        member.row.spendable -= amount
        return outcome

    def _reverse(self, s: Session, member: _Member, op: Reverse, target: PointsEntry, now: datetime) -> _Outcome:
        if target.kind in ("reverse", "expire"):
            raise ValidationError(f"entry {target.id} is a {target.kind}; only earnings, spendings and adjustments "
                                  "can be reversed", code="points_not_reversible", field="transfer_id")  # fmt: skip
        done = s.scalar(select(PointsEntry.id).where(*self._programme(PointsEntry), PointsEntry.kind == "reverse",
                                                     PointsEntry.transfer_id == target.id))  # fmt: skip
        if done is not None:
            raise UserloopError(f"entry {target.id} was reversed already (by entry {done})",
                                code="points_already_reversed", field="transfer_id")  # fmt: skip
        if target.amount > 0:
            return self._claw_back(s, member, op, target, now)
        return self._give_back(s, member, op, target, now)

    def _claw_back(self, s: Session, member: _Member, op: Reverse, target: PointsEntry, now: datetime) -> _Outcome:
        lot = s.scalars(select(PointsLot).where(PointsLot.entry_id == target.id)).one()
        taken = lot.remaining
        spent = s.scalar(
            select(func.coalesce(func.sum(PointsAllocation.amount), 0)).where(PointsAllocation.lot_id == lot.id)
        )
        entry = self._entry(s, member, op, "reverse", -taken, now, transfer_id=target.id)
        entry.shortfall = int(spent or 0)
        if lot.matured:
            member.row.spendable -= taken
        else:
            member.row.pending -= taken
        lot.remaining, lot.reversed = 0, True
        return _Outcome(entry)

    def _give_back(self, s: Session, member: _Member, op: Reverse, target: PointsEntry, now: datetime) -> _Outcome:
        rows = s.execute(
            select(PointsAllocation.amount, PointsLot)
            .join(PointsLot, PointsLot.id == PointsAllocation.lot_id)
            .where(PointsAllocation.entry_id == target.id, PointsAllocation.amount > 0)
            .order_by(PointsAllocation.id)
        ).all()
        back = [(int(amount), lot) for amount, lot in rows if not lot.reversed]
        live = [(a, lot) for a, lot in back if not lot.expired and (lot.expires_at is None or lot.expires_at > now)]
        lapsed = sum(a for a, _lot in back) - sum(a for a, _lot in live)
        outcome = _Outcome(
            self._entry(s, member, op, "reverse", sum(a for a, _lot in back), now, transfer_id=target.id)
        )
        for amount, lot in live:
            lot.remaining += amount
            if lot not in member.lots:
                member.lots.append(lot)
            allocation = PointsAllocation(entry=outcome.entry, lot=lot, amount=-amount)
            s.add(allocation)
            outcome.allocations.append(allocation)
            member.row.spendable += amount
        if lapsed:
            expires_at = self.programme.wallets(member.row.wallet).expiry.expires_at(now, self.programme.timezone)
            outcome.lot = self._lot(s, member, outcome.entry, lapsed, now, expires_at, now)
        return outcome

    # sweeping and unlocking -----------------------------------------------------------------------------
    def _sweep(self, s: Session, member: _Member, now: datetime) -> list[int]:
        """Lapse the member's lots due at ``now``: one ``expire`` entry each, at the lot's ``expires_at``, in
        the order they lapsed; returns the points each lapsed."""
        due = [lot for lot in member.lots if lot.remaining > 0 and not lot.expired and not lot.reversed
               and lot.expires_at is not None and lot.expires_at <= now]  # fmt: skip
        due.sort(key=lambda lot: (lot.expires_at, lot.id))
        swept = []
        p = self.programme
        for lot in due:
            assert lot.expires_at is not None and lot.id is not None  # due lots were read from the database
            if lot.matured:
                member.row.spendable -= lot.remaining
            else:
                member.row.pending -= lot.remaining
            s.add(PointsEntry(
                project_id=p.project_id, programme_id=p.programme_id, person=lot.person, wallet=lot.wallet,
                kind="expire", amount=-lot.remaining, request_id=f"{_SYSTEM}expire:{lot.id}", fingerprint="",
                transfer_id=lot.entry_id, occurred_at=lot.expires_at, status="posted", shortfall=0,
                spendable_after=member.row.spendable, pending_after=member.row.pending,
            ))  # fmt: skip
            swept.append(lot.remaining)
            lot.remaining, lot.expired = 0, True
        return swept

    @staticmethod
    def _mature(member: _Member, now: datetime) -> None:
        """Move the lots whose pending period ended by ``now`` from the pending sum to the spendable one."""
        for lot in member.lots:
            if not lot.matured and lot.spendable_at <= now and not lot.expired and not lot.reversed:
                lot.matured = True
                member.row.pending -= lot.remaining
                member.row.spendable += lot.remaining

    # lookups --------------------------------------------------------------------------------------------
    def _programme(self, table: type[PointsEntry] | type[PointsLot] | type[PointsBalance]) -> tuple[Any, ...]:
        p = self.programme
        return table.project_id == p.project_id, table.programme_id == p.programme_id

    def _member(self, table: type[PointsLot] | type[PointsBalance], person: int, wallet: str) -> tuple[Any, ...]:
        return *self._programme(table), table.person == person, table.wallet == wallet

    def _posted(self, s: Session, entry: PointsEntry, *, replayed: bool = False) -> Posted:
        """The result of a booked entry, read back (a replay's answer, a history line)."""
        lot = s.scalar(select(PointsLot).where(PointsLot.entry_id == entry.id))
        allocations = s.execute(
            select(PointsAllocation.lot_id, PointsAllocation.amount)
            .where(PointsAllocation.entry_id == entry.id)
            .order_by(PointsAllocation.id)
        )
        return Posted(
            entry_id=entry.id, request_id=entry.request_id, kind=entry.kind, person=entry.person, wallet=entry.wallet,
            amount=entry.amount, occurred_at=entry.occurred_at, transfer_id=entry.transfer_id,
            lot_id=lot.id if lot else None, spendable_at=lot.spendable_at if lot else None,
            expires_at=lot.expires_at if lot else None,
            allocations=[Allocation(lot_id=lot_id, amount=amount) for lot_id, amount in allocations],
            shortfall=entry.shortfall, spendable_after=entry.spendable_after, pending_after=entry.pending_after,
            replayed=replayed,
        )  # fmt: skip


#: The tables whose new rows a large flush numbers up front (:func:`_number`).
_NUMBERED = (PointsEntry, PointsLot, PointsAllocation)
#: New rows from which numbering them up front is worth its round trip.
_NUMBER_FROM = 16


def _number(s: Session) -> None:
    """Give the transaction's new entries, lots and allocations their ids from the tables' sequences, in one
    round trip and in the order they were made (so ids keep that order, which FEFO's ties and the history read).

    Why (PostgreSQL, a profile of the batch endpoint): without ids the flush writes each table as one multi-row
    ``INSERT … RETURNING id``, whose statement text differs with the row count, so psycopg parses it afresh each
    time (a quarter of a batch's CPU); with the ids known the flush is a plain ``executemany`` of one short
    statement, parsed once and sent in psycopg's pipeline. A handful of rows (one request) is not worth the round
    trip and keeps ``RETURNING``."""
    made = {cls: sorted((o for o in s.new if type(o) is cls), key=_made_order) for cls in _NUMBERED}
    if sum(len(rows) for rows in made.values()) < _NUMBER_FROM:
        return
    series = [
        select(literal(i), func.nextval(func.pg_get_serial_sequence(cls.__tablename__, "id"))).select_from(
            func.generate_series(1, len(rows))
        )
        for i, (cls, rows) in enumerate(made.items())
        if rows
    ]
    ids: dict[int, list[int]] = {}
    with s.no_autoflush:  # the rows are written by the flush that follows, with these ids
        numbered = s.execute(union_all(*series)).all()
    for table, new_id in numbered:
        ids.setdefault(int(table), []).append(int(new_id))
    for i, rows in enumerate(made.values()):
        for row, new_id in zip(rows, sorted(ids.get(i, [])), strict=True):
            row.id = new_id


def _made_order(row: Any) -> int:
    """The order in which the session was given ``row`` (the flush's own order of inserts)."""
    state: InstanceState[Any] = inspect(row)
    return state.insert_order or 0


def _lapsed(now: datetime) -> tuple[Any, ...]:
    return (PointsLot.expired.is_(False), PointsLot.reversed.is_(False), PointsLot.remaining > 0,
            PointsLot.expires_at.is_not(None), PointsLot.expires_at <= now)  # fmt: skip


def _fingerprint(op: _Op) -> str:
    """A digest of what ``op`` asks, request id aside: a retry has the same one."""
    return hashlib.sha256(op.model_dump_json(exclude={"request_id"}).encode()).hexdigest()


def _naive_utc(at: datetime) -> datetime:
    """``at`` as naive UTC (an instant with an offset near year 1 or 9999 may not be one: refused)."""
    try:
        return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValidationError(f"expires_at {at.isoformat()} is out of range", code="points_invalid",
                              field="expires_at") from None  # fmt: skip


def _last_day(expires_at: datetime, timezone: str) -> date:
    """The last local day on which a lot lapsing at ``expires_at`` can be spent."""
    local = expires_at.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone))
    return (local - timedelta(microseconds=1)).date()


def _rejected(index: int, exc: UserloopError) -> BatchItem:
    where = f"operations.{index}" + (f".{exc.field}" if exc.field else "")
    return BatchItem(index=index, rejected=Rejected(code=exc.code, field=where, message=exc.message))


def _posted_of(outcome: _Outcome, *, replayed: bool) -> Posted:
    """The result of an entry booked in this transaction, from memory (after the flush gave it its ids)."""
    entry, lot = outcome.entry, outcome.lot
    return Posted(
        entry_id=entry.id, request_id=entry.request_id, kind=entry.kind, person=entry.person, wallet=entry.wallet,
        amount=entry.amount, occurred_at=entry.occurred_at, transfer_id=entry.transfer_id,
        lot_id=lot.id if lot else None, spendable_at=lot.spendable_at if lot else None,
        expires_at=lot.expires_at if lot else None,
        allocations=[Allocation(lot_id=a.lot_id, amount=a.amount) for a in outcome.allocations],
        shortfall=entry.shortfall, spendable_after=entry.spendable_after, pending_after=entry.pending_after,
        replayed=replayed,
    )  # fmt: skip


def _same_request(op: _Op, entry: PointsEntry) -> None:
    """Refuse (``points_request_conflict``) a request id booked before for other content."""
    if entry.fingerprint != _fingerprint(op):
        raise UserloopError(
            f"request id {op.request_id!r} was used for another operation ({entry.kind} {entry.amount} for "
            f"person {entry.person}); a retry must send the same content",
            code="points_request_conflict", field="request_id",
        )  # fmt: skip


def _key_of(op: Earn | Spend | Reverse | Adjust, targets: Mapping[int, PointsEntry]) -> Key | None:
    """The member and wallet ``op`` writes to; None for a reversal of an entry that is not this person's."""
    if not isinstance(op, Reverse):
        return op.person, op.wallet
    target = targets.get(op.transfer_id)
    return (target.person, target.wallet) if target is not None and target.person == op.person else None


def _unknown_transfer(op: Earn | Spend | Reverse | Adjust) -> NotFoundError:
    transfer = op.transfer_id if isinstance(op, Reverse) else None
    return NotFoundError(f"person {op.person} has no ledger entry {transfer} in this programme",
                         code="points_unknown_transfer", field="transfer_id")  # fmt: skip
