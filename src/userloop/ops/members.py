"""Members of a programme as operations: join, leave, a VIP period, one member's level and progress to the next,
the list by level, the level changes (for ``$member_level_up``/``$member_level_down``), and re-evaluation.

A member is a person (the person key the journeys use) in one programme. ``members.evaluate`` credits the growth
of the events loaded since the last run and evaluates every member's level (or only the persons named): what the
scheduler runs, and what an operator runs after changing a programme. Changes need ``write`` (joining, leaving,
VIP) or ``admin`` (evaluation); reading needs ``read``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import Field

from userloop.core.clock import utcnow
from userloop.core.errors import ValidationError
from userloop.membership.exchange_types import ExchangeRequestId, Redeemed
from userloop.ops.base import MAX_ROW_ID, OpContext, ProjectScoped, Strict, operation
from userloop.ops.programmes import ProgrammeName, catalog

Person = Annotated[int, Field(ge=0, le=MAX_ROW_ID, description="The person key (users.user_id).")]


class MemberShown(Strict):
    """A member: their level (index, name, titles), since when, and their progress to the next level."""

    person: int
    programme: str
    status: str
    joined_at: datetime
    level: int
    level_name: str
    level_zh: str
    level_en: str
    level_since: datetime
    below_since: datetime | None
    vip_since: datetime | None
    vip_until: datetime | None
    birthday: date | None
    zone: str | None
    growth: int = Field(description="Qualifying growth value now (inside the programme's window).")
    next_level: str | None = Field(description="The next level's name (None at the top).")
    next_threshold: int | None
    to_next: int | None = Field(description="Growth still needed for the next level.")


class MemberRow(Strict):
    person: int
    level: int
    level_name: str
    level_since: datetime
    joined_at: datetime


class MemberRef(ProjectScoped):
    programme: ProgrammeName
    person: Person


class Join(MemberRef):
    at: datetime | None = Field(default=None, description="When they joined (UTC; default now).")
    birthday: date | None = Field(default=None, description="For the birthday pack (YYYY-MM-DD).")
    zone: str | None = Field(default=None, max_length=64, description="Their IANA time zone (birthdays).")


class Vip(MemberRef):
    since: datetime
    until: datetime


class ListMembers(ProjectScoped):
    programme: ProgrammeName
    level: int | None = Field(default=None, ge=0, le=49, description="Only this level.")
    after: int = Field(default=-1, ge=-1, le=MAX_ROW_ID, description="Person keys after this one (paging).")
    limit: int = Field(default=100, ge=1, le=10_000)


class Evaluate(ProjectScoped):
    programme: ProgrammeName
    persons: list[Person] | None = Field(default=None, max_length=10_000, description="Only these (default all).")
    at: datetime | None = Field(default=None, description="Evaluate as of this instant (UTC; default now).")


class Evaluation(Strict):
    """What a re-evaluation did: events read and growth credited, members evaluated, levels changed."""

    events: int
    entries: int
    growth: int
    members: int
    up: int
    down: int
    noted: int = Field(description="Grace periods started or ended.")


class Changes(ProjectScoped):
    programme: ProgrammeName
    after: int = Field(default=0, ge=0, le=MAX_ROW_ID, description="Changes with an id above this (the mark).")
    limit: int = Field(default=1000, ge=1, le=10_000)


class ChangeShown(Strict):
    id: int
    person: int
    event: str = Field(description="$member_level_up or $member_level_down.")
    from_level: int
    to_level: int
    at: datetime
    reason: str


def _utc(at: datetime | None) -> datetime:
    """An instant as naive UTC (an aware one converted; none: now)."""
    if at is None:
        return utcnow()
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def shown(ctx: OpContext, saved: Any, member: Any) -> MemberShown:
    """A member as the faces show them: level names, the qualifying growth now and what the next level needs."""
    from userloop.membership import levels

    d = saved.definition
    top = len(d.levels) - 1
    level = d.levels[min(member.level, top)]
    growth = levels.standing(ctx.ws.meta, saved, member.id, utcnow())
    nxt = d.levels[member.level + 1] if member.level < top else None
    return MemberShown(
        person=member.person, programme=saved.name, status=member.status, joined_at=member.joined_at,
        level=member.level, level_name=level.name, level_zh=level.title.zh, level_en=level.title.en,
        level_since=member.level_since, below_since=member.below_since, vip_since=member.vip_since,
        vip_until=member.vip_until, birthday=member.birthday, zone=member.zone, growth=growth,
        next_level=nxt.name if nxt else None, next_threshold=nxt.threshold if nxt else None,
        to_next=max(nxt.threshold - growth, 0) if nxt else None,
    )  # fmt: skip


@operation("members.join", "POST", "/api/v1/members", right="write", status=201,
           summary="Make a person a member of a programme")  # fmt: skip
def join_member(ctx: OpContext, req: Join) -> MemberShown:
    """Join at the base level (again after leaving: from the base level); joining twice changes only the
    birthday and zone given."""
    from userloop.core.clock import check_timezone
    from userloop.membership import members

    if req.zone is not None:
        check_timezone(req.zone)
    saved = catalog(ctx).get(req.programme)
    member = members.join(ctx.ws.meta, saved, req.person, _utc(req.at), birthday=req.birthday, zone=req.zone)
    return shown(ctx, saved, member)


@operation("members.show", "GET", "/api/v1/members/{person}", right="read",
           summary="A member's level and progress to the next")  # fmt: skip
def show_member(ctx: OpContext, req: MemberRef) -> MemberShown:
    """A member (``unknown_member`` when the person is not one)."""
    from userloop.membership import members

    saved = catalog(ctx).get(req.programme)
    return shown(ctx, saved, members.get_member(ctx.ws.meta, saved, req.person))


@operation("members.list", "GET", "/api/v1/members", right="read",
           summary="A programme's active members, by person key, of one level if given")  # fmt: skip
def list_members(ctx: OpContext, req: ListMembers) -> list[MemberRow]:
    from userloop.membership import members

    saved = catalog(ctx).get(req.programme)
    names = saved.definition.levels
    found = members.list_members(ctx.ws.meta, saved, level=req.level, after=req.after, limit=req.limit)
    return [MemberRow(person=m.person, level=m.level, level_name=names[min(m.level, len(names) - 1)].name,
                      level_since=m.level_since, joined_at=m.joined_at) for m in found]  # fmt: skip


@operation("members.leave", "DELETE", "/api/v1/members/{person}", right="write",
           summary="A member leaves the programme")  # fmt: skip
def leave_member(ctx: OpContext, req: MemberRef) -> MemberShown:
    """The member leaves: nothing more is earned or evaluated; their history stays."""
    from userloop.membership import members

    saved = catalog(ctx).get(req.programme)
    return shown(ctx, saved, members.leave(ctx.ws.meta, saved, req.person))


@operation("members.vip", "POST", "/api/v1/members/{person}/vip", right="write",
           summary="Set a member's VIP (paid membership) period")  # fmt: skip
def set_vip(ctx: OpContext, req: Vip) -> MemberShown:
    """Growth earned inside ``[since, until)`` is multiplied by the programme's VIP multiplier."""
    from userloop.membership import members

    saved = catalog(ctx).get(req.programme)
    return shown(ctx, saved, members.set_vip(ctx.ws.meta, saved, req.person, _utc(req.since), _utc(req.until)))


@operation("members.evaluate", "POST", "/api/v1/members/evaluate", right="operate",
           summary="Credit new events' growth and re-evaluate levels")  # fmt: skip
def evaluate_members(ctx: OpContext, req: Evaluate) -> Evaluation:
    """Credit the growth of the events loaded since the last run, then evaluate levels: every active member, or
    the persons named (who must be members)."""
    from userloop.membership import growth, levels, members

    saved = catalog(ctx).get(req.programme)
    if saved.status != "active":
        raise ValidationError(f"programme {saved.name!r} is {saved.status}", code="programme_state")
    now = _utc(req.at)
    applied = growth.apply(ctx.ws.meta, ctx.store, saved, now)
    ids = None
    if req.persons is not None:
        ids = [members.get_member(ctx.ws.meta, saved, p).id for p in req.persons]
    done = levels.evaluate(ctx.ws.meta, saved, now, members=ids)
    return Evaluation(events=applied.events, entries=applied.entries, growth=applied.growth, members=done.members,
                      up=done.up, down=done.down, noted=done.noted)  # fmt: skip


@operation("members.changes", "GET", "/api/v1/programmes/{programme}/level-changes", right="read",
           summary="Level changes after a mark (the $member_level_up / $member_level_down events to emit)")  # fmt: skip
def level_changes(ctx: OpContext, req: Changes) -> list[ChangeShown]:
    """Level changes with an id above ``after``, oldest first: an emitter reads them, loads them as passive
    events, and keeps the last id as its mark."""
    from userloop.membership import members

    saved = catalog(ctx).get(req.programme)
    return [ChangeShown(id=c.id, person=c.person, event=c.event, from_level=c.from_level, to_level=c.to_level,
                        at=c.at, reason=c.reason)
            for c in members.changes_since(ctx.ws.meta, saved.id, req.after, req.limit)]  # fmt: skip


class RedeemRequest(MemberRef):
    item: Annotated[str, Field(min_length=1, max_length=40, description="The exchange item's name.")]
    request_id: ExchangeRequestId


@operation("members.redeem", "POST", "/api/v1/members/{person}/exchange", right="write",
           summary="Redeem points for an item of the points exchange (积分兑换), once per request id")  # fmt: skip
def redeem(ctx: OpContext, req: RedeemRequest) -> Redeemed:
    """The member spends the item's price and gets its coupon; a retry with the request id returns the first."""
    from userloop.engage.secrets import SecretBox
    from userloop.membership import exchange

    saved = catalog(ctx).get(req.programme)
    secret = SecretBox.for_workspace(ctx.ws.path).derive("links")
    return exchange.redeem(ctx.ws.meta, saved, req.person, req.item, req.request_id, utcnow(), secret=secret)
