"""The member diagnosis' reads of the event store (DuckDB): members vs non-members on the profile platform, and
which granted coupons came back on an order.

Members enter DuckDB as an Arrow view registered on a private session; every statement is a
:mod:`userloop.store.sqlbuild` tree (names quoted, values literal), never text with a user's value in it.

**The comparison is not the effect of membership.** People choose to join, and those who join were better
customers before (selection): a gap between members and the others mixes who joins with what joining does. The
effect is measured by the experiments' difference-in-differences with matched controls (DOMAIN §9, issue 15).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlglot import exp

from userloop.query.compile import Context
from userloop.schema.types import PropertyType
from userloop.store.activity import active_cond
from userloop.store.duck import ProjectStore
from userloop.store.settings import money_property
from userloop.store.sqlbuild import col, sql

_MEMBERS = "_ul_diag_members"
_GRANTS = "_ul_diag_grants"


@dataclass(frozen=True)
class GroupTotals:
    """Sums over one group of people for one window: ``spend`` None when the project has no money property."""

    people: int
    spend: float | None
    orders: int
    active_days: int
    buyers: int


@dataclass(frozen=True)
class Activity:
    """Members' and non-members' totals over the last ``days`` days before ``as_of``."""

    days: int
    members: GroupTotals
    non_members: GroupTotals


def activity(
    project: ProjectStore, timezone: str, persons: list[int], as_of: datetime, windows: tuple[int, ...],
    purchase_event: str,
) -> list[Activity]:  # fmt: skip
    """Per window: the members' (``persons``) and everyone else's (the project's other people) spend (the money
    property summed over ``purchase_event``), orders, active days (distinct local days in ``timezone`` with an
    active event) and buyers."""
    money = money_property(project)
    has_money = project.properties("events").get(money) is PropertyType.NUMBER
    passive = project.passive_events()
    with project.session() as s:
        s.register(_MEMBERS, pa.table({"person": pa.array(sorted(set(persons)), pa.int64())}))
        try:
            everyone = int(s.scalar(sql("SELECT count(*) FROM $users", users=project.ref("users"))))
            known = int(s.scalar(sql("SELECT count(*) FROM $users AS u JOIN $m AS m ON m.person = u.user_id",
                                     users=project.ref("users"), m=exp.to_table(_MEMBERS))))  # fmt: skip
            out = []
            for days in windows:
                start = as_of - timedelta(days=days)
                stmt = _totals(project, timezone, start, as_of, purchase_event, money if has_money else None, passive)
                sums = {bool(r[0]): r[1:] for r in s.fetchall(stmt)}
                out.append(Activity(days, _group(len(set(persons)), sums.get(True), has_money),
                                    _group(everyone - known, sums.get(False), has_money)))  # fmt: skip
        finally:
            s.unregister(_MEMBERS)
    return out


def _totals(project: ProjectStore, timezone: str, start: datetime, end: datetime, purchase: str,
            money: str | None, passive: frozenset[str]) -> exp.Expr:  # fmt: skip
    """Per group (member or not): spend, orders, active days and buyers, summed over people with events in
    ``[start, end)``."""
    ctx = Context(schema=project.schema, timezone=timezone, today=end.date(), event_props={}, user_props={},
                  event_names=set())  # fmt: skip
    day = ctx.local_day(col("time", "e"), _day(start) - timedelta(days=1), _day(end) + timedelta(days=1))
    amount = (
        sql("CASE WHEN $e = $p AND isfinite($m) THEN $m ELSE 0 END", e=col("event", "e"), p=purchase,
            m=col(money, "e"))
        if money is not None else exp.Literal.number(0)
    )  # fmt: skip
    per_person = sql(
        """SELECT e.user_id AS user_id, sum($amount) AS spend, count(*) FILTER (WHERE $is_purchase) AS orders,
                  count(DISTINCT $day) FILTER (WHERE $active) AS active_days
           FROM $events AS e WHERE e.time >= $start AND e.time < $end GROUP BY e.user_id""",
        amount=amount, is_purchase=sql("$e = $p", e=col("event", "e"), p=purchase), day=day,
        active=active_cond(passive, "e"), events=project.ref("events"), start=start, end=end,
    )  # fmt: skip
    return sql(
        """SELECT m.person IS NOT NULL AS member, sum(p.spend), sum(p.orders), sum(p.active_days),
                  count(*) FILTER (WHERE p.orders > 0)
           FROM ($per_person) AS p LEFT JOIN $m AS m ON m.person = p.user_id GROUP BY 1""",
        per_person=per_person,
        m=exp.to_table(_MEMBERS),
    )


def _day(at: datetime) -> date:
    return at.date()


def _group(people: int, sums: Sequence[Any] | None, has_money: bool) -> GroupTotals:
    spend, orders, days, buyers = sums if sums is not None else (0, 0, 0, 0)
    return GroupTotals(people=people, spend=float(spend or 0) if has_money else None, orders=int(orders or 0),
                       active_days=int(days or 0), buyers=int(buyers or 0))  # fmt: skip


def coupon_property_usable(project: ProjectStore, name: str) -> bool:
    """Whether events carry ``name`` as a text property (a coupon's code on orders)."""
    return project.properties("events").get(name) is PropertyType.STRING


def redeemed(
    project: ProjectStore, grants: list[tuple[int, str, datetime]], purchase_event: str, coupon_property: str
) -> set[int]:
    """The indexes of ``grants`` (person, code, granted at) whose code appears on a ``purchase_event`` of the same
    person at or after the grant, in the event property ``coupon_property`` (a text property: check with
    :func:`coupon_property_usable`)."""
    if not grants:
        return set()
    table = pa.table({
        "idx": pa.array(range(len(grants)), pa.int64()),
        "person": pa.array([g[0] for g in grants], pa.int64()),
        "code": pa.array([g[1] for g in grants], pa.string()),
        "granted_at": pa.array([g[2] for g in grants], pa.timestamp("us")),
    })  # fmt: skip
    stmt = sql(
        """SELECT g.idx FROM $g AS g WHERE EXISTS (
               SELECT 1 FROM $events AS e WHERE e.user_id = g.person AND e.event = $p AND $code = g.code
               AND e.time >= g.granted_at)""",
        g=exp.to_table(_GRANTS), events=project.ref("events"), p=purchase_event, code=col(coupon_property, "e"),
    )  # fmt: skip
    with project.session() as s:
        s.register(_GRANTS, table)
        try:
            return {int(r[0]) for r in s.fetchall(stmt)}
        finally:
            s.unregister(_GRANTS)
