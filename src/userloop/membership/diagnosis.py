"""Member diagnosis (会员诊断, DOMAIN §9 and the fresh-food case of §13): how a member programme is doing.

One typed report (:class:`Diagnosis`) of a programme at an instant ``as_of``, over the last ``months`` calendar
months of the programme's zone:

- **levels**: the distribution now and at the end of each month, replayed from ``level_history``; and per month a
  transition matrix (the level at the month's start → at its end, per member, as a Markov chain's counts), whose
  cells sum to joins, upgrades, downgrades, stays and leaves;
- **growth sources**: growth value earned in the window by source (the growth rule), with its share;
- **points liability**: per wallet the outstanding (spendable + pending) points × the wallet's ``unit_value`` in
  yuan, what lapses in the next 30 and 90 days, and **breakage** — points expired ÷ points credited, over the lots
  whose fate is settled (nothing left, lapsed or swept), the loyalty-accounting measure of unredeemed points
  (IFRS 15 B46 calls it the customer's unexercised rights);
- **benefit use by level**: benefits granted to members in the window, by the level held at the grant, and when the
  orders carry the grant's coupon code, the share redeemed;
- **members vs non-members** on the profile platform (:mod:`userloop.membership.diagnosis_events`): per-person
  spend, orders and active days in the last 30 and 90 days.

A member who left (``members.left_at``) is a member until that instant: counted at the month ends before it, and
in the "left" column of the month it falls in. Only the last leave is known: a member who left and rejoined is
counted as a member throughout. A row that left before ``left_at`` was recorded counts as a member at every earlier
month end and leaves in the month of ``as_of``. Sentences in Chinese and English and the HTML page are
:mod:`userloop.membership.diagnosis_report`'s.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select

from userloop.benefits import BenefitRow, GrantRow
from userloop.membership import diagnosis_events
from userloop.membership.diagnosis_types import (
    BenefitUse,
    Diagnosis,
    Flows,
    GroupActivity,
    GrowthSource,
    LevelInfo,
    Snapshot,
    WalletLiability,
)
from userloop.membership.ledger_tables import PointsEntry, PointsLot
from userloop.membership.members import GrowthEntry, LevelChange, MemberRow, SavedProgramme
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore

#: The horizons of "points expiring soon", in days.
EXPIRY_HORIZONS = (30, 90)
#: The trailing windows of the members vs non-members comparison, in days.
ACTIVITY_WINDOWS = (30, 90)


# periods ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """A calendar month of the programme's zone as naive UTC ``[start, end)``; the last one ends at ``as_of``."""

    label: str
    start: datetime
    end: datetime


def months_before(as_of: datetime, months: int, timezone: str) -> list[Period]:
    """The ``months`` local calendar months up to the one holding ``as_of`` (naive UTC), oldest first."""
    local = as_of.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone))
    index = local.year * 12 + local.month - 1
    periods = []
    for k in range(index - months + 1, index + 1):
        start, end = _month_start(k, timezone), _month_start(k + 1, timezone)
        periods.append(Period(f"{k // 12:04d}-{k % 12 + 1:02d}", start, min(end, as_of)))
    return periods


def _month_start(index: int, timezone: str) -> datetime:
    local = datetime(index // 12, index % 12 + 1, 1, tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)


# level replay -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Track:
    """One member's path: member from ``since`` (the earlier of joining and the first level change: a member who
    rejoined keeps the history of before), ``left`` now and since ``left_at`` (None: not recorded), the level
    changes ``(at, to_level)`` in order."""

    person: int
    since: datetime
    left: bool
    times: tuple[datetime, ...]
    levels: tuple[int, ...]
    left_at: datetime | None = None

    def member_at(self, at: datetime, *, final: bool) -> bool:
        """Not yet gone just before ``at``: never left, or left at ``at`` or later; a leave with no time recorded
        counts at ``as_of`` only (``final``)."""
        if not self.left:
            return True
        if self.left_at is None:
            return not final
        return self.left_at >= at

    def level_at(self, at: datetime, *, inclusive: bool = False) -> int | None:
        """The level just before ``at`` (or at ``at`` with ``inclusive``); None when not yet a member."""
        if self.since > at or (self.since == at and not inclusive):
            return None
        cut = bisect.bisect_right(self.times, at) if inclusive else bisect.bisect_left(self.times, at)
        return self.levels[cut - 1] if cut else 0


def tracks(meta: MetaStore, programme: SavedProgramme, top: int) -> dict[int, Track]:
    """Every member of the programme by member id, levels capped at ``top`` (a later version with fewer levels
    caps members at its top, as :meth:`Programmes.update` does)."""
    changes: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    with meta.session() as s:
        rows = s.execute(
            select(LevelChange.member_id, LevelChange.at, LevelChange.to_level)
            .where(LevelChange.programme_id == programme.id)
            .order_by(LevelChange.member_id, LevelChange.at, LevelChange.id)
        )
        for member_id, at, to_level in rows:
            changes[member_id].append((at, min(to_level, top)))
        members = s.execute(
            select(MemberRow.id, MemberRow.person, MemberRow.joined_at, MemberRow.status, MemberRow.left_at).where(
                MemberRow.programme_id == programme.id
            )
        )
        out = {}
        for member_id, person, joined_at, status, left_at in members:
            path = changes.get(member_id, [])
            since = min([joined_at, *(at for at, _ in path[:1])])
            out[member_id] = Track(
                person, since, status == "left", tuple(a for a, _ in path), tuple(v for _, v in path), left_at
            )
    return out


def snapshot(all_tracks: Sequence[Track], n_levels: int, period: str, at: datetime, *, final: bool) -> Snapshot:
    """Members per level just before ``at``, without those gone by then (``final``: ``at`` is ``as_of``)."""
    counts = [0] * n_levels
    for t in all_tracks:
        level = t.level_at(at)
        if level is not None and t.member_at(at, final=final):
            counts[level] += 1
    return Snapshot(period=period, at=at, counts=counts, total=sum(counts))


def flows(all_tracks: Sequence[Track], n_levels: int, period: Period, *, final: bool) -> Flows:
    """The month's transition matrix (see :class:`Flows`)."""
    matrix = [[0] * (n_levels + 1) for _ in range(n_levels + 1)]
    for t in all_tracks:
        before, after = t.level_at(period.start), t.level_at(period.end)
        if after is None or not t.member_at(period.start, final=False):  # not yet a member, or gone before
            continue
        column = after if t.member_at(period.end, final=final) else n_levels
        matrix[0 if before is None else before + 1][column] += 1
    moves = [(i - 1, j, n) for i, row in enumerate(matrix) for j, n in enumerate(row) if i > 0 and j < n_levels]
    return Flows(
        period=period.label, start=period.start, end=period.end, matrix=matrix,
        joins=sum(matrix[0]), leaves=sum(row[n_levels] for row in matrix),
        upgrades=sum(n for i, j, n in moves if j > i), downgrades=sum(n for i, j, n in moves if j < i),
        stayed=sum(n for i, j, n in moves if j == i),
    )  # fmt: skip


# growth sources ---------------------------------------------------------------------------------------------
def growth_sources(meta: MetaStore, programme: SavedProgramme, start: datetime, end: datetime) -> list[GrowthSource]:
    """Growth value earned in ``[start, end)`` by source, largest first, with the rule's title where one names it."""
    stmt = (
        select(
            GrowthEntry.source, func.sum(GrowthEntry.amount), func.count(), func.count(GrowthEntry.member_id.distinct())
        )
        .where(GrowthEntry.programme_id == programme.id, GrowthEntry.at >= start, GrowthEntry.at < end)
        .group_by(GrowthEntry.source)
    )
    with meta.session() as s:
        rows = [(str(src), int(amount or 0), int(n), int(people)) for src, amount, n, people in s.execute(stmt)]
    total = sum(amount for _, amount, _, _ in rows)
    titles = {r.name: r.title for r in programme.definition.growth.rules}
    out = []
    for src, amount, n, people in sorted(rows, key=lambda r: (-r[1], r[0])):
        title = titles.get(src)
        out.append(GrowthSource(source=src, title_zh=title.zh if title else src, title_en=title.en if title else src,
                                amount=amount, entries=n, members=people,
                                share=amount / total if total else 0.0))  # fmt: skip
    return out


# points liability -------------------------------------------------------------------------------------------
def liability(meta: MetaStore, programme: SavedProgramme, as_of: datetime) -> list[WalletLiability]:
    """Per wallet: outstanding points at ``as_of`` and the breakage of settled lots (see the module).

    A lot is live while it has points left, is neither swept nor reversed, and has not reached ``expires_at``;
    it is pending until ``spendable_at``. A settled lot (not reversed) has nothing left or has lapsed; its expired
    points are its ``expire`` entry's (swept) or what remains (lapsed, not yet swept). Reversed lots count in
    neither sum: their earning was undone."""
    lot = PointsLot
    mine = (lot.project_id == programme.project_id, lot.programme_id == programme.id)
    lapsed = and_(lot.expires_at.is_not(None), lot.expires_at <= as_of)
    live = and_(lot.remaining > 0, lot.expired.is_(False), lot.reversed.is_(False), ~lapsed)

    def within(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, lot.remaining), else_=0)), 0)

    live_stmt = select(
        lot.wallet,
        within(and_(live, lot.spendable_at <= as_of)),
        within(and_(live, lot.spendable_at > as_of)),
        *(within(and_(live, lot.expires_at <= as_of + timedelta(days=d))) for d in EXPIRY_HORIZONS),
    ).where(*mine).group_by(lot.wallet)  # fmt: skip
    swept = (
        select(func.coalesce(func.sum(-PointsEntry.amount), 0))
        .where(PointsEntry.kind == "expire", PointsEntry.transfer_id == lot.entry_id,
               PointsEntry.programme_id == programme.id, PointsEntry.project_id == programme.project_id)
        .scalar_subquery()
    )  # fmt: skip
    settled = and_(lot.reversed.is_(False), or_(lot.remaining == 0, lot.expired.is_(True), lapsed))
    expired_points = case((lot.expired.is_(True), swept), (lapsed, lot.remaining), else_=0)
    settled_stmt = (
        select(lot.wallet, func.coalesce(func.sum(lot.original), 0), func.coalesce(func.sum(expired_points), 0))
        .where(*mine, settled)
        .group_by(lot.wallet)
    )
    with meta.session() as s:
        open_rows = {str(w): [int(v) for v in rest] for w, *rest in s.execute(live_stmt)}
        settled_rows = {str(w): (int(c), int(e)) for w, c, e in s.execute(settled_stmt)}
    return [_wallet(programme, name, open_rows.get(name), settled_rows.get(name))
            for name in _wallet_names(programme, [*open_rows, *settled_rows])]  # fmt: skip


def _wallet_names(programme: SavedProgramme, seen: list[str]) -> list[str]:
    defined = [w.name for w in programme.definition.wallets]
    return defined + sorted(set(seen) - set(defined))


def _wallet(programme: SavedProgramme, name: str, open_row: list[int] | None,
            settled_row: tuple[int, int] | None) -> WalletLiability:  # fmt: skip
    policy = next((w for w in programme.definition.wallets if w.name == name), None)
    spendable, pending, soon, later = open_row or [0, 0, 0, 0]
    credited, expired = settled_row or (0, 0)
    value = policy.unit_value if policy is not None else None

    def yuan(points: int) -> float | None:
        return None if value is None else round(points * value, 2)

    return WalletLiability(
        wallet=name, title_zh=policy.title_zh if policy else name, title_en=policy.title_en if policy else name,
        unit_value=value, spendable=spendable, pending=pending, outstanding=spendable + pending,
        liability_yuan=yuan(spendable + pending), expiring_30=soon, expiring_90=later, expiring_30_yuan=yuan(soon),
        expiring_90_yuan=yuan(later), settled_credited=credited, settled_expired=expired,
        breakage=expired / credited if credited else None,
    )  # fmt: skip


# benefits ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """A benefit granted to a member while a member, with the level held at that moment."""

    person: int
    benefit: str
    code: str
    granted_at: datetime
    level: int


def member_grants(
    meta: MetaStore, programme: SavedProgramme, by_person: dict[int, Track], start: datetime, end: datetime
) -> list[Grant]:
    """Benefits granted in ``[start, end)`` to the programme's members while members (any cause: the grants
    table does not say which programme or journey granted), each with the level held at the grant."""
    stmt = (
        select(GrantRow.person, BenefitRow.name, GrantRow.code, GrantRow.granted_at)
        .join(BenefitRow, BenefitRow.id == GrantRow.benefit_id)
        .join(MemberRow, and_(MemberRow.person == GrantRow.person, MemberRow.programme_id == programme.id))
        .where(GrantRow.project_id == programme.project_id, GrantRow.granted_at >= start, GrantRow.granted_at < end)
        .order_by(GrantRow.granted_at, GrantRow.key)
    )
    out = []
    with meta.session() as s:
        for person, benefit, code, granted_at in s.execute(stmt):
            level = by_person[person].level_at(granted_at, inclusive=True)
            if level is not None:
                out.append(Grant(person, benefit, code, granted_at, level))
    return out


def benefit_use(grants: Sequence[Grant], redeemed: set[int] | None) -> list[BenefitUse]:
    """Grants by (level, benefit); ``redeemed`` holds the indexes in ``grants`` whose code was used (None: not
    measured)."""
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, g in enumerate(grants):
        groups[(g.level, g.benefit)].append(i)
    out = []
    for (level, benefit), idx in sorted(groups.items()):
        used = None if redeemed is None else sum(1 for i in idx if i in redeemed)
        out.append(BenefitUse(level=level, benefit=benefit, grants=len(idx),
                              people=len({grants[i].person for i in idx}), redeemed=used,
                              redemption_rate=None if used is None else used / len(idx)))  # fmt: skip
    return out


# the report -------------------------------------------------------------------------------------------------
def diagnose(
    meta: MetaStore,
    store: ProjectStore,
    programme: SavedProgramme,
    as_of: datetime,
    *,
    project_timezone: str,
    months: int = 12,
    purchase_event: str = "order_paid",
    coupon_property: str = "coupon_code",
) -> Diagnosis:
    """The diagnosis of ``programme`` at ``as_of`` (naive UTC) over the last ``months`` local months; orders are
    ``purchase_event`` events, a grant counts as redeemed when an order of its person carries its code in
    ``coupon_property`` (measured only when events have such a text property). The comparison's active days
    are local days of the project's zone. Sentences come from :func:`userloop.membership.diagnosis_report.explain`."""
    definition = programme.definition
    periods = months_before(as_of, months, definition.timezone)
    n_levels = len(definition.levels)
    by_member = tracks(meta, programme, n_levels - 1)
    all_tracks = list(by_member.values())
    history = [snapshot(all_tracks, n_levels, p.label, p.end, final=p.end == as_of) for p in periods]
    grants = member_grants(meta, programme, {t.person: t for t in all_tracks}, periods[0].start, as_of)
    measured = diagnosis_events.coupon_property_usable(store, coupon_property)
    used = (
        diagnosis_events.redeemed(store, [(g.person, g.code, g.granted_at) for g in grants], purchase_event,
                                  coupon_property)
        if measured else None
    )  # fmt: skip
    current = [t.person for t in all_tracks if not t.left and t.since < as_of]
    windows = diagnosis_events.activity(store, project_timezone, current, as_of, ACTIVITY_WINDOWS, purchase_event)
    return Diagnosis(
        programme=programme.name, title_zh=definition.title.zh, title_en=definition.title.en,
        timezone=definition.timezone, as_of=as_of, window_start=periods[0].start,
        levels=[LevelInfo(index=i, name=lv.name, title_zh=lv.title.zh, title_en=lv.title.en)
                for i, lv in enumerate(definition.levels)],
        now=snapshot(all_tracks, n_levels, "now", as_of, final=True), history=history,
        flows=[flows(all_tracks, n_levels, p, final=p.end == as_of) for p in periods],
        growth=growth_sources(meta, programme, periods[0].start, as_of), liability=liability(meta, programme, as_of),
        benefits=benefit_use(grants, used), redemption_measured=measured,
        comparison=[g for w in windows for g in _activity_rows(w)],
    )  # fmt: skip


def _activity_rows(window: diagnosis_events.Activity) -> list[GroupActivity]:
    groups: tuple[tuple[Literal["members", "non_members"], diagnosis_events.GroupTotals], ...] = (
        ("members", window.members), ("non_members", window.non_members))  # fmt: skip
    return [
        GroupActivity(
            group=group,
            days=window.days,
            people=t.people,
            spend_per_person=None if t.spend is None else _per(t.spend, t.people),
            orders_per_person=_per(t.orders, t.people),
            active_days_per_person=_per(t.active_days, t.people),
            buyers_share=_per(t.buyers, t.people),
        )
        for group, t in groups
    ]


def _per(total: float, people: int) -> float:
    return total / people if people else 0.0
