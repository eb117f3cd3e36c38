"""A member programme's definition (会员体系, DOMAIN §9): wallets, growth value, levels, benefits, check-ins, tasks.

A programme is one typed document, stored as immutable versions. Every part is a pydantic model that refuses
unknown fields; variants are chosen by a ``kind`` discriminator. What a member sees is named in Chinese and
English (:class:`Title`).

- **Growth value (成长值)** comes from events (:class:`GrowthRule`): an event and property filters give a fixed
  amount, or a multiple of a numeric property (``order_amount`` × 1) rounded down to a whole number. Amounts are
  multiplied while a member's VIP is active (爱奇艺 and 腾讯视频 speed up the growth of paying members), then
  capped per rule per local day, per rule in total, and over all rules per local day, in the programme's zone.
- **Levels** (:class:`Level`) have ascending thresholds; level 0 is the base, threshold 0. The growth that
  qualifies is the growth inside the qualification window (:data:`Window`): a member's whole life, the current
  calendar year, or the last N days (Wix's rolling window; research §4.4).
- **Upgrades** happen as soon as the qualifying growth reaches a higher threshold. **Downgrades** follow the
  policy (:data:`Downgrade`, after Open Loyalty's downgrade modes, Talon.One's ``one_down`` and Voucherify's
  grace period): ``never``; ``period_end`` (a level reached holds to the end of its period, then the member
  keeps the highest level the growth of the current window or of the period just ended earns); ``one_step`` (as
  ``period_end``, but one level down at a time); ``grace`` (the growth must stay below the level for N days).
- **Benefits per level** (:data:`Benefit`): coupons naming the journeys' benefits (``benefits`` table: amount,
  threshold, validity, stock), a birthday pack granted on the member's birthday in their zone (29 February is
  kept on 28 February in other years), cosmetic titles, a points multiplier.
- **Check-ins** (:class:`CheckIn`, daily points and streak rewards such as 7 days in a row → a pack, DOMAIN §6)
  and **tasks** (:class:`Task`, do an event N times within a period → a reward, with a limit) are definitions
  here; their rewards name wallets of the programme.

:func:`validate` returns every error with its path (``levels.2.threshold``); :func:`parse` raises them all at
once (``programme_invalid``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from userloop.core.errors import ValidationError
from userloop.membership.policy import MAX_POINTS, WalletPolicy

Slug = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
Amount = Annotated[int, Field(ge=0, le=MAX_POINTS)]
Cap = Annotated[int, Field(ge=1, le=MAX_POINTS)]
EventName = Annotated[str, Field(min_length=1, max_length=100)]
PropertyName = Annotated[str, Field(min_length=1, max_length=100)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Title(_Part):
    """A name as members read it, in Chinese and English."""

    zh: Annotated[str, Field(min_length=1, max_length=60)]
    en: Annotated[str, Field(min_length=1, max_length=60)]


# growth value -----------------------------------------------------------------------------------------------
Scalar = str | float | bool


class Filter(_Part):
    """One condition on an event property: ``eq``/``ne`` compare as text, numbers or booleans by the value's type;
    ``gt``/``gte``/``lt``/``lte`` need a number; ``in`` matches any of a list. A property the event lacks matches
    nothing."""

    property: PropertyName
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"] = "eq"
    value: Scalar | Annotated[list[str | float], Field(min_length=1, max_length=100)]

    @field_validator("value")
    @classmethod
    def _fits_op(cls, value: Any, info: Any) -> Any:
        op = info.data.get("op", "eq")
        if op == "in" and not isinstance(value, list):
            raise ValueError("'in' takes a list of values")
        if op != "in" and isinstance(value, list):
            raise ValueError(f"{op!r} takes one value, not a list")
        if op in ("gt", "gte", "lt", "lte") and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{op!r} compares with a number")
        return value


class Fixed(_Part):
    """A fixed amount of growth per matching event."""

    kind: Literal["fixed"] = "fixed"
    amount: Annotated[int, Field(ge=1, le=MAX_POINTS)]


class PerProperty(_Part):
    """``floor(property × multiplier)`` per matching event (``order_amount`` × 1: one growth per yuan spent); a
    missing, negative or non-numeric value gives nothing."""

    kind: Literal["per_property"] = "per_property"
    property: PropertyName
    multiplier: Annotated[float, Field(gt=0, le=1_000_000)] = 1.0


GrowthAmount = Annotated[Fixed | PerProperty, Field(discriminator="kind")]


class GrowthRule(_Part):
    """Events that earn growth value: ``event`` whose properties pass every filter of ``where``."""

    name: Slug
    title: Title | None = None
    event: EventName
    where: Annotated[list[Filter], Field(max_length=20)] = Field(default_factory=list)
    amount: GrowthAmount
    daily_cap: Cap | None = Field(default=None, description="At most this much from the rule per member per day.")
    total_cap: Cap | None = Field(default=None, description="At most this much from the rule per member, ever.")


class Growth(_Part):
    """The growth-value rules, a cap over all of them per member per local day, and the VIP multiplier (applied
    to each event's amount, rounded down, before the caps)."""

    rules: Annotated[list[GrowthRule], Field(max_length=100)] = Field(default_factory=list)
    daily_cap: Cap | None = None
    vip_multiplier: Annotated[float, Field(ge=1, le=100)] = 1.0


# levels ----------------------------------------------------------------------------------------------------
class Coupon(_Part):
    """``count`` of a journeys' benefit (a coupon: amount, threshold, validity and stock live on the benefit),
    granted on reaching the level and again every ``every`` while the member holds it."""

    kind: Literal["coupon"] = "coupon"
    benefit: Annotated[str, Field(min_length=1, max_length=100)]
    count: Annotated[int, Field(ge=1, le=100)] = 1
    every: Literal["once", "month", "year"] = "once"


class BirthdayPack(_Part):
    """Granted on the member's birthday in their zone (29 February: on 28 February in other years): coupons
    naming the journeys' benefits and points into a wallet."""

    kind: Literal["birthday_pack"] = "birthday_pack"
    benefits: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=10)] = Field(
        default_factory=list
    )
    points: Amount = 0
    wallet: Slug = "points"


class CosmeticTitle(_Part):
    """A title (称号) members of the level show, such as 黄金会员."""

    kind: Literal["title"] = "title"
    title: Title


class PointsMultiplier(_Part):
    """Points earned while at the level are multiplied (rounded down)."""

    kind: Literal["points_multiplier"] = "points_multiplier"
    multiplier: Annotated[float, Field(ge=1, le=10)]


Benefit = Annotated[Coupon | BirthdayPack | CosmeticTitle | PointsMultiplier, Field(discriminator="kind")]


class Level(_Part):
    """A level: its name, title, the qualifying growth it needs, and its benefits."""

    name: Slug
    title: Title
    threshold: Amount
    benefits: Annotated[list[Benefit], Field(max_length=30)] = Field(default_factory=list)


class Lifetime(_Part):
    """All growth ever earned qualifies."""

    kind: Literal["lifetime"] = "lifetime"


class CalendarYear(_Part):
    """Growth earned in the current calendar year (in the programme's zone) qualifies."""

    kind: Literal["calendar_year"] = "calendar_year"


class RollingDays(_Part):
    """Growth earned in the last ``days`` × 24 h qualifies."""

    kind: Literal["rolling_days"] = "rolling_days"
    days: Annotated[int, Field(ge=1, le=3660)]


Window = Annotated[Lifetime | CalendarYear | RollingDays, Field(discriminator="kind")]


class Never(_Part):
    """A level once reached is kept."""

    kind: Literal["never"] = "never"


class PeriodEnd(_Part):
    """A level holds to the end of the period it was reached in (the calendar year for ``calendar_year`` and
    ``lifetime`` windows, ``days`` after reaching it for a rolling window); later the member keeps the highest
    level that the current window's growth, or the growth of the calendar year just ended, earns."""

    kind: Literal["period_end"] = "period_end"


class Grace(_Part):
    """A member whose growth stays below their level for ``days`` × 24 h drops to the level it earns."""

    kind: Literal["grace"] = "grace"
    days: Annotated[int, Field(ge=1, le=3660)]


class OneStep(_Part):
    """As :class:`PeriodEnd`, but down one level per period (Talon.One's ``one_down``)."""

    kind: Literal["one_step"] = "one_step"


Downgrade = Annotated[Never | PeriodEnd | Grace | OneStep, Field(discriminator="kind")]


# check-ins and tasks ---------------------------------------------------------------------------------------
class Reward(_Part):
    """What a check-in streak or a task gives: points into a wallet, growth value, and benefits by name."""

    points: Amount = 0
    wallet: Slug = "points"
    growth: Amount = 0
    benefits: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=10)] = Field(
        default_factory=list
    )


class StreakReward(_Part):
    """A reward on the ``days``-th consecutive daily check-in (7 → a gift pack)."""

    days: Annotated[int, Field(ge=2, le=366)]
    reward: Reward


class CheckIn(_Part):
    """Daily check-in (签到), once per local day in the member's zone: ``points`` and ``growth`` each day, streak
    rewards on consecutive days; ``cycle``: after the longest streak reward the count starts again (``repeat``) or
    keeps growing with no further streak reward (``once``)."""

    points: Amount = 0
    wallet: Slug = "points"
    growth: Amount = 0
    streaks: Annotated[list[StreakReward], Field(max_length=20)] = Field(default_factory=list)
    cycle: Literal["repeat", "once"] = "repeat"


class Task(_Part):
    """Do ``event`` (passing ``where``) ``times`` times within a ``period`` → ``reward``; completed at most once
    per period, and at most ``limit`` times in all (None: no limit)."""

    name: Slug
    title: Title
    event: EventName
    where: Annotated[list[Filter], Field(max_length=20)] = Field(default_factory=list)
    times: Annotated[int, Field(ge=1, le=10_000)] = 1
    period: Literal["day", "week", "month", "ever"] = "day"
    reward: Reward
    limit: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class Exchange(_Part):
    """An item of the points exchange (积分兑换): a member of at least ``min_level`` spends ``points`` of ``wallet``
    for one of the journeys' benefit ``benefit`` (a coupon, from its stock), at most ``limit`` times each."""

    name: Slug
    title: Title
    benefit: Annotated[str, Field(min_length=1, max_length=100)]
    points: Annotated[int, Field(ge=1, le=MAX_POINTS)]
    wallet: Slug = "points"
    min_level: Annotated[int, Field(ge=0, le=49)] = 0
    limit: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


# the programme ---------------------------------------------------------------------------------------------
class Programme(_Part):
    """A member programme's definition (one version of it).

    Example::

        Programme.model_validate({
            "name": "club", "title": {"zh": "会员俱乐部", "en": "Club"},
            "growth": {"rules": [{"name": "spend", "event": "order_paid",
                                  "amount": {"kind": "per_property", "property": "order_amount"}}]},
            "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0},
                       {"name": "gold", "title": {"zh": "黄金", "en": "Gold"}, "threshold": 1000}],
        })
    """

    schema_version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1, max_length=100)]
    title: Title
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "Asia/Shanghai"
    wallets: Annotated[list[WalletPolicy], Field(min_length=1, max_length=10)] = Field(
        default_factory=lambda: [WalletPolicy()]
    )
    growth: Growth = Field(default_factory=Growth)
    levels: Annotated[list[Level], Field(min_length=1, max_length=50)]
    window: Window = Field(default_factory=Lifetime)
    downgrade: Downgrade = Field(default_factory=Never)
    check_in: CheckIn | None = None
    tasks: Annotated[list[Task], Field(max_length=100)] = Field(default_factory=list)
    exchange: Annotated[list[Exchange], Field(max_length=200)] = Field(default_factory=list)

    @property
    def thresholds(self) -> list[int]:
        return [level.threshold for level in self.levels]

    def level_for(self, growth: int) -> int:
        """The highest level whose threshold ``growth`` reaches (0 for the base)."""
        reached = 0
        for i, level in enumerate(self.levels):
            if growth >= level.threshold:
                reached = i
        return reached


def validate(doc: Any) -> list[dict[str, str]]:
    """Every error of a definition as ``{path, message}`` (empty when valid): the shape first, then the rules
    that span parts (ascending levels, names unique, wallets that exist, a known zone)."""
    nul = _null_characters(doc, "")
    if nul:
        return [{"path": path or "programme", "message": "text may not hold a null character"} for path in nul]
    try:
        programme = Programme.model_validate(doc)
    except PydanticValidationError as exc:
        return [
            {"path": _path(e["loc"], doc), "message": str(e["msg"]).removeprefix("Value error, ")}
            for e in exc.errors(include_url=False, include_input=False)
        ]
    return _coherence(programme)


def _null_characters(doc: Any, path: str) -> list[str]:
    """The paths of the texts (keys included) holding a null character: no name needs one, and PostgreSQL's text
    cannot store it."""
    if isinstance(doc, str):
        return [path] if "\x00" in doc else []
    found: list[str] = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for key, value in items:
        where = f"{path}.{key}" if path else str(key)
        found += _null_characters(key, where) + _null_characters(value, where)
    return found


def _path(loc: tuple[int | str, ...], doc: Any) -> str:
    """Pydantic's location as a dotted path into the document, without the discriminator tags it inserts (the
    tag follows the union's position, and equals the ``kind`` of the object there)."""
    parts: list[str] = []
    node = doc
    tag_read = False
    for step in loc:
        if isinstance(node, dict) and node.get("kind") == step and not tag_read:
            tag_read = True
            continue
        parts.append(str(step))
        tag_read = False
        if isinstance(node, dict):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            node = None
    return ".".join(parts) or "programme"


def parse(doc: Any) -> Programme:
    """The programme ``doc`` describes; ``programme_invalid`` listing every error by path otherwise."""
    errors = validate(doc)
    if errors:
        listed = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        raise ValidationError(
            f"the programme has {len(errors)} error(s): {listed}", code="programme_invalid", field=errors[0]["path"]
        )
    return Programme.model_validate(doc)


def _coherence(p: Programme) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []

    def err(path: str, message: str) -> None:
        errors.append({"path": path, "message": message})

    try:
        ZoneInfo(p.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        err("timezone", f"unknown time zone {p.timezone!r}; use an IANA name such as 'Asia/Shanghai'")
    if p.levels[0].threshold != 0:
        err("levels.0.threshold", "the base level (the first) has threshold 0")
    for i in range(1, len(p.levels)):
        if p.levels[i].threshold <= p.levels[i - 1].threshold:
            err(f"levels.{i}.threshold", "thresholds ascend: each level needs more than the one before")
    _unique(err, "levels", [level.name for level in p.levels])
    _unique(err, "wallets", [w.name for w in p.wallets])
    _unique(err, "growth.rules", [r.name for r in p.growth.rules])
    _unique(err, "tasks", [t.name for t in p.tasks])
    _unique(err, "exchange", [x.name for x in p.exchange])
    for i, x in enumerate(p.exchange):
        if x.min_level >= len(p.levels):
            err(f"exchange.{i}.min_level", f"there is no level {x.min_level} (levels 0 to {len(p.levels) - 1})")
    wallets = {w.name for w in p.wallets}
    for path, wallet in _wallet_uses(p):
        if wallet not in wallets:
            err(path, f"no wallet named {wallet!r} in this programme (wallets: {', '.join(sorted(wallets))})")
    for i, level in enumerate(p.levels):
        kinds = [b.kind for b in level.benefits if b.kind in ("title", "points_multiplier", "birthday_pack")]
        for kind in sorted({k for k in kinds if kinds.count(k) > 1}):
            err(f"levels.{i}.benefits", f"a level has at most one {kind}")
    if p.check_in is not None:
        days = [s.days for s in p.check_in.streaks]
        for j, d in enumerate(days):
            if d in days[:j]:
                err(f"check_in.streaks.{j}.days", f"a streak of {d} days is rewarded twice")
    for path, reward in _rewards(p):
        if not (reward.points or reward.growth or reward.benefits):
            err(path, "a reward gives points, growth or benefits")
    return errors


def _unique(err: Any, path: str, names: list[str]) -> None:
    for i, n in enumerate(names):
        if n in names[:i]:
            err(f"{path}.{i}.name", f"the name {n!r} is used twice")


def _rewards(p: Programme) -> list[tuple[str, Reward]]:
    found = [(f"tasks.{i}.reward", t.reward) for i, t in enumerate(p.tasks)]
    if p.check_in is not None:
        found += [(f"check_in.streaks.{j}.reward", s.reward) for j, s in enumerate(p.check_in.streaks)]
    return found


def _wallet_uses(p: Programme) -> list[tuple[str, str]]:
    uses = [(f"{path}.wallet", r.wallet) for path, r in _rewards(p) if r.points]
    if p.check_in is not None and p.check_in.points:
        uses.append(("check_in.wallet", p.check_in.wallet))
    uses += [(f"exchange.{i}.wallet", x.wallet) for i, x in enumerate(p.exchange)]
    for i, level in enumerate(p.levels):
        for j, b in enumerate(level.benefits):
            if isinstance(b, BirthdayPack) and b.points:
                uses.append((f"levels.{i}.benefits.{j}.wallet", b.wallet))
    return uses


def benefit_names(p: Programme) -> list[tuple[str, str]]:
    """Every journeys' benefit the programme names, with its path (checked against the project by the ops)."""
    names: list[tuple[str, str]] = []
    for i, level in enumerate(p.levels):
        for j, b in enumerate(level.benefits):
            if isinstance(b, Coupon):
                names.append((f"levels.{i}.benefits.{j}.benefit", b.benefit))
            elif isinstance(b, BirthdayPack):
                names += [(f"levels.{i}.benefits.{j}.benefits.{k}", n) for k, n in enumerate(b.benefits)]
    for path, reward in _rewards(p):
        names += [(f"{path}.benefits.{k}", n) for k, n in enumerate(reward.benefits)]
    names += [(f"exchange.{i}.benefit", x.benefit) for i, x in enumerate(p.exchange)]
    return names


# birthdays ------------------------------------------------------------------------------------------------
def birthday_in(birthday: date, year: int) -> date:
    """The day a birthday is kept in ``year``: the same month and day, and 28 February for 29 February outside
    leap years (the common practice, and the one the law of many places uses for coming of age)."""
    try:
        return birthday.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def birthday_window(birthday: date, at: datetime, zone: str) -> tuple[datetime, datetime] | None:
    """The birthday's local day in ``zone`` as ``[start, end)`` naive UTC instants, when the naive UTC instant
    ``at`` falls inside it (the moment a birthday pack is due); None on any other day."""
    local = at.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    if birthday_in(birthday, local.year) != local.date():
        return None
    start = datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(zone))
    end = start + timedelta(days=1)
    return (
        start.astimezone(UTC).replace(tzinfo=None),
        datetime(end.year, end.month, end.day, tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None),
    )
