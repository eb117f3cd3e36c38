"""A brute-force points ledger in plain Python, the reference the product's ledger is checked against.

Written from the rules of :mod:`userloop.membership.ledger`'s docstring, not from its code: lots in a list, every
question answered by scanning all of them. Lots and entries are named by the request id that made them (the
product's ids are database ids, which a rolled-back transaction may skip on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from userloop.membership.policy import WalletPolicy


@dataclass
class RefLot:
    name: str  # the request id of the entry that made it
    person: int
    wallet: str
    original: int
    remaining: int
    spendable_at: datetime
    expires_at: datetime | None
    expired: bool = False
    lapsed: int = 0  # points the expiry took
    reversed: bool = False


@dataclass
class RefEntry:
    name: str
    kind: str
    person: int
    wallet: str
    amount: int
    taken: list[tuple[str, int]] = field(default_factory=list)  # (lot name, points) a spending took
    reversed: bool = False


class RefusedError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class ReferenceLedger:
    wallets: Callable[[str], WalletPolicy]
    timezone: str
    lots: list[RefLot] = field(default_factory=list)
    entries: dict[str, RefEntry] = field(default_factory=dict)

    # writes -----------------------------------------------------------------------------------------------
    def earn(self, name: str, person: int, wallet: str, amount: int, now: datetime,
             expires_at: datetime | None = None, pending_days: int | None = None) -> None:  # fmt: skip
        self._lapse(now, person, wallet)
        policy = self.wallets(wallet)
        expiry = expires_at if expires_at is not None else policy.expiry.expires_at(now, self.timezone)
        if expiry is not None and expiry <= now:
            raise RefusedError("points_invalid")
        days = pending_days if pending_days is not None else policy.pending.days
        self.lots.append(RefLot(name, person, wallet, amount, amount, now + timedelta(days=days), expiry))
        self.entries[name] = RefEntry(name, "earn", person, wallet, amount)

    def spend(self, name: str, person: int, wallet: str, amount: int, now: datetime) -> None:
        self._lapse(now, person, wallet)
        usable = [lot for lot in self._live(person, wallet, now) if lot.spendable_at <= now and lot.remaining]
        if sum(lot.remaining for lot in usable) < amount:
            raise RefusedError("points_insufficient")
        # FEFO: the earliest expiry first, lots that never expire last, then the oldest
        usable.sort(key=lambda lot: (lot.expires_at is None, lot.expires_at or now, self.lots.index(lot)))
        entry = RefEntry(name, "spend", person, wallet, -amount)
        left = amount
        for lot in usable:
            take = min(left, lot.remaining)
            if take:
                lot.remaining -= take
                entry.taken.append((lot.name, take))
                left -= take
        self.entries[name] = entry

    def reverse(self, name: str, target: str, now: datetime) -> None:
        undone = self.entries[target]
        self._lapse(now, undone.person, undone.wallet)
        if undone.reversed:
            raise RefusedError("points_already_reversed")
        undone.reversed = True
        if undone.kind == "earn":
            lot = next(lot for lot in self.lots if lot.name == target)
            taken = lot.remaining
            lot.remaining, lot.reversed = 0, True
            self.entries[name] = RefEntry(name, "reverse", undone.person, undone.wallet, -taken)
            return
        lots = {lot.name: lot for lot in self.lots}
        given = lapsed = 0
        for lot_name, points in undone.taken:
            lot = lots[lot_name]
            if lot.reversed:
                continue
            given += points
            if lot.expired or (lot.expires_at is not None and lot.expires_at <= now):
                lapsed += points
            else:
                lot.remaining += points
        if lapsed:
            expiry = self.wallets(undone.wallet).expiry.expires_at(now, self.timezone)
            self.lots.append(RefLot(name, undone.person, undone.wallet, lapsed, lapsed, now, expiry))
        self.entries[name] = RefEntry(name, "reverse", undone.person, undone.wallet, given)

    def expire(self, now: datetime) -> None:
        self._lapse(now, None, None)

    # reads ------------------------------------------------------------------------------------------------
    def balance(self, person: int, wallet: str, now: datetime) -> tuple[int, int]:
        live = self._live(person, wallet, now)
        spendable = sum(lot.remaining for lot in live if lot.spendable_at <= now)
        return spendable, sum(lot.remaining for lot in live) - spendable

    # ------------------------------------------------------------------------------------------------------
    def _live(self, person: int, wallet: str, now: datetime) -> list[RefLot]:
        return [
            lot for lot in self.lots
            if lot.person == person and lot.wallet == wallet and not lot.expired and not lot.reversed
            and (lot.expires_at is None or lot.expires_at > now)
        ]  # fmt: skip

    def _lapse(self, now: datetime, person: int | None, wallet: str | None) -> None:
        for lot in self.lots:
            mine = person is None or (lot.person == person and lot.wallet == wallet)
            due = lot.expires_at is not None and lot.expires_at <= now
            if mine and due and not lot.expired and not lot.reversed and lot.remaining:
                lot.lapsed, lot.remaining, lot.expired = lot.remaining, 0, True
