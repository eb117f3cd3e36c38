"""The points exchange (积分兑换): a member spends points for a coupon, exactly once per request id.

An item of the programme's ``exchange`` (:class:`~userloop.membership.programme.Exchange`) names a benefit, its
price in points of a wallet, the lowest level that may take it, and how often one member may. Redeeming is two
idempotent steps keyed by the member's request id:

1. the ledger spends the price (request id ``exchange:<id>``, reference ``exchange:<item>``), earliest-expiring
   points first; a replay returns the first spending;
2. the benefit is granted (:func:`userloop.benefits.grant`, key ``grant_key("exchange", programme, person, id)``);
   a replay returns the first coupon.

A retry after a crash between them finishes the second step with nothing spent twice. When the benefit cannot
be granted (its stock is used up, it was deleted), the spending is reversed (request id ``exchange-undo:<id>``)
and the member keeps their points; the error says why. The limit per member counts redemptions not reversed; two
redemptions of one member racing at the limit can both pass (they are serialised only inside the ledger).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import aliased

from userloop import benefits
from userloop.core.errors import NotFoundError, UserloopError
from userloop.membership.accounts import ledger_of
from userloop.membership.exchange_types import Redeemed
from userloop.membership.ledger_tables import PointsEntry
from userloop.membership.ledger_types import Reverse, Spend
from userloop.membership.members import SavedProgramme, get_member
from userloop.membership.programme import Exchange
from userloop.store.meta import MetaStore


def item_of(saved: SavedProgramme, name: str) -> Exchange:
    for item in saved.definition.exchange:
        if item.name == name:
            return item
    raise NotFoundError(f"programme {saved.name!r} has no exchange item {name!r}", code="unknown_exchange_item")


def redeem(
    meta: MetaStore, saved: SavedProgramme, person: int, name: str, request_id: str, now: datetime, *, secret: bytes
) -> Redeemed:
    """Spend the item's price for one of its coupons (see the module's steps); ``exchange_refused`` when the member
    is below the item's level or at its limit, ``points_insufficient`` when short of points, the benefit's code
    (``benefit_exhausted``, ``unknown_benefit``) when it cannot be granted, with the points given back."""
    item = item_of(saved, name)
    member = get_member(meta, saved, person)
    if member.status != "active":
        raise UserloopError(f"person {person} has left programme {saved.name!r}", code="exchange_refused")
    if member.level < item.min_level:
        raise UserloopError(f"{item.name!r} needs level {item.min_level} or above; the member is at {member.level}",
                            code="exchange_refused")  # fmt: skip
    ledger = ledger_of(meta, saved)
    spend_id = f"exchange:{request_id}"
    if item.limit is not None and _taken(meta, saved, person, item, spend_id) >= item.limit:
        raise UserloopError(f"{item.name!r} may be redeemed {item.limit} times per member", code="exchange_refused")
    spent = ledger.post(Spend(person=person, wallet=item.wallet, amount=item.points, request_id=spend_id,
                              ref=f"exchange:{item.name}", reason=f"exchange {item.name}"), now)  # fmt: skip
    key = benefits.grant_key("exchange", saved.id, person, request_id)
    try:
        with meta.engine.begin() as conn:
            given = benefits.grant(conn, project_id=saved.project_id, name=item.benefit, key=key, person=person,
                                   now=now, secret=secret)  # fmt: skip
    except UserloopError:
        ledger.post(Reverse(person=person, transfer_id=spent.entry_id, request_id=f"exchange-undo:{request_id}",
                            reason=f"exchange {item.name}: the benefit could not be granted"), now)  # fmt: skip
        raise
    return Redeemed(item=item.name, benefit=item.benefit, points=item.points, wallet=item.wallet,
                    entry_id=spent.entry_id, code=given.code, amount=given.amount, threshold=given.threshold,
                    valid_until=given.valid_until, spendable_after=spent.spendable_after,
                    replayed=spent.replayed)  # fmt: skip


def _taken(meta: MetaStore, saved: SavedProgramme, person: int, item: Exchange, request_id: str) -> int:
    """Redemptions of ``item`` by ``person`` that stand (not reversed), other than ``request_id`` itself (a
    replay of a redemption that counted is not refused by the limit)."""
    undo = aliased(PointsEntry)
    e = PointsEntry
    reversed_ = exists().where(and_(undo.transfer_id == e.id, undo.kind == "reverse"))
    stmt = select(func.count()).where(
        e.project_id == saved.project_id, e.programme_id == saved.id, e.person == person, e.kind == "spend",
        e.ref == f"exchange:{item.name}", e.request_id != request_id, ~reversed_,
    )  # fmt: skip
    with meta.session() as s:
        return int(s.scalar(stmt) or 0)
