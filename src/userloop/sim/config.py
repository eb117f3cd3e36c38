"""The simulator's configuration: size, window, seed and the business knobs.

Every knob has a default that gives the community O2O business of DOMAIN §13 (stores and ground staff acquire
households in residential communities; fresh food, imported fruit, laundry). The same configuration always
produces the same records.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from userloop.core.clock import check_timezone
from userloop.core.errors import UserloopError

#: Acquisition channels, in a fixed order (their index is stored in the world's arrays).
CHANNELS: tuple[str, ...] = ("ground_staff", "wechat", "douyin", "app_store", "referral", "ad_network_x")
#: The channel that buys many installs of which few are real users (DOMAIN §10: "watch for fake installs").
POOR_CHANNEL = "ad_network_x"


class MembershipConfig(BaseModel):
    """A membership programme in the simulated business, with a known true effect on purchases (DOMAIN §9).

    Everything it draws comes from its own random streams, so turning it on changes nothing that was drawn before
    it; with ``SimConfig.membership`` left ``None`` the records and the truth are those of a business without one.
    Days are offsets from the window's first day (0 is ``start_date``). See :mod:`userloop.sim.membership`.

    Parameters
    ----------
    programme
        The programme's name (the ``programme`` property of its events).
    launch_day
        First day on which people can join.
    join_rate
        Daily chance that a registered, installed non-member with no recent orders joins.
    join_per_order
        How much each paid order of the last 28 days raises the chance: ``join_rate × (1 + join_per_order ×
        recent_orders)``, capped at 0.5. The chance depends on what the records show only, so joiners are better
        customers already (selection on observables).
    effect_mean, effect_spread
        The true effect: from the local day after joining, the member's purchase rate λ is multiplied by
        ``effect_mean × exp(effect_spread·z − effect_spread²/2)``, z standard normal per person (mean
        ``effect_mean``, heterogeneous).
    campaign_day, campaign_days, campaign_lift
        The big concurrent sales campaign (a double-11 style week): on ``campaign_days`` days from
        ``campaign_day`` everyone's purchase rate, member or not, is multiplied by ``campaign_lift``.
    check_in_chance
        Daily chance that a member without the check-in habit checks in (habitual check-ins go on as before).
    points_per_order, redeem_points, redeem_chance
        Points earned per paid order (times the level's multiplier); a member holding at least ``redeem_points``
        redeems that many with daily chance ``redeem_chance``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    programme: str = Field(default="fresh_club", min_length=1, max_length=64)
    launch_day: int = Field(default=30, ge=0)
    join_rate: float = Field(default=0.0005, ge=0.0, le=0.5)
    join_per_order: float = Field(default=4.0, ge=0.0, le=100.0)
    effect_mean: float = Field(default=1.3, gt=0.0, le=10.0)
    effect_spread: float = Field(default=0.3, ge=0.0, le=2.0)
    campaign_day: int = Field(default=120, ge=0)
    campaign_days: int = Field(default=7, ge=0)
    campaign_lift: float = Field(default=2.0, gt=0.0, le=20.0)
    check_in_chance: float = Field(default=0.35, ge=0.0, le=1.0)
    points_per_order: int = Field(default=20, ge=0, le=100_000)
    redeem_points: int = Field(default=200, ge=1, le=1_000_000)
    redeem_chance: float = Field(default=0.15, ge=0.0, le=1.0)


class SimConfig(BaseModel):
    """What to simulate.

    Parameters
    ----------
    users
        Number of people who install the app inside the window (fake installs included).
    days
        Length of the window in local days; the last day is ``end_date``.
    seed
        Seed of every random draw; the same configuration gives byte-identical output.
    end_date
        Last local day of the window. ``None`` lets the caller decide (e.g. yesterday); the generator needs a
        concrete date and raises a ValueError without one.
    timezone
        IANA zone of the business: day boundaries, hours of day and holidays are local.
    chunk_days
        Days per emitted chunk of records.
    membership
        The membership programme (:class:`MembershipConfig`), or ``None`` (the default) for a business without one.

    Examples
    --------
    >>> from datetime import date
    >>> SimConfig(users=2_000, days=60, end_date=date(2024, 6, 30)).start_date
    datetime.date(2024, 5, 2)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: int = Field(default=100_000, ge=1, le=50_000_000)
    days: int = Field(default=180, ge=1, le=3_650)
    seed: int = Field(default=42, ge=0, lt=2**63)
    end_date: date | None = None
    timezone: str = "Asia/Shanghai"
    chunk_days: int = Field(default=7, ge=1, le=366)

    # Geography (DOMAIN §11.1: city → store → community).
    cities: int = Field(default=6, ge=1, le=6)
    stores_per_city: int = Field(default=10, ge=1, le=100)
    communities_per_store: int = Field(default=10, ge=1, le=100)
    products_per_category: int = Field(default=50, ge=2, le=1_000)

    # Acquisition: channel mix and the poor channel's share of fake installs.
    channel_shares: tuple[float, ...] = (0.30, 0.20, 0.15, 0.12, 0.08, 0.15)
    poor_channel_fake_share: float = Field(default=0.80, ge=0.0, le=1.0)
    acquisition_growth: float = Field(default=0.6, ge=0.0, le=10.0)

    # Purchase process (BG/NBD, Fader, Hardie & Lee 2005): λ ~ Gamma(r, α) per day, p ~ Beta(a, b).
    purchase_r: float = Field(default=0.9, gt=0.0)
    purchase_alpha: float = Field(default=15.0, gt=0.0)
    dropout_a: float = Field(default=1.2, gt=0.0)
    dropout_b: float = Field(default=5.0, gt=0.0)
    # Spend per order: per-person basket size ~ Gamma(spend_q, spend_gamma) (Gamma-Gamma style), scaling lines.
    spend_q: float = Field(default=4.0, gt=0.0)
    spend_gamma: float = Field(default=4.0, gt=0.0)

    # Identity.
    register_on_install: float = Field(default=0.35, ge=0.0, le=1.0)
    register_daily: float = Field(default=0.02, ge=0.0, le=1.0)
    second_device_share: float = Field(default=0.05, ge=0.0, le=1.0)

    # Habits and reachability.
    check_in_share: float = Field(default=0.15, ge=0.0, le=1.0)
    push_enabled_share: float = Field(default=0.65, ge=0.0, le=1.0)
    uninstall_after_dropout: float = Field(default=0.35, ge=0.0, le=1.0)

    # Operations: pushes, coupons and the natural control group that is never treated.
    control_share: float = Field(default=0.10, ge=0.0, le=1.0)
    push_share: float = Field(default=0.5, ge=0.0, le=1.0)
    coupon_share: float = Field(default=0.3, ge=0.0, le=1.0)
    coupon_uplift_mean: float = Field(default=0.02, ge=0.0, le=0.5)
    push_uplift_mean: float = Field(default=0.015, ge=0.0, le=0.5)

    # The planted breakpoint: share of confirm_payment that goes on to enter_password, per $os.
    password_conversion_ios: float = Field(default=0.90, gt=0.0, le=1.0)
    password_conversion_android: float = Field(default=0.45, gt=0.0, le=1.0)
    password_conversion_harmony: float = Field(default=0.88, gt=0.0, le=1.0)

    membership: MembershipConfig | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            return check_timezone(value)
        except UserloopError as exc:
            raise ValueError(exc.message) from exc

    @model_validator(mode="after")
    def _channel_shares_fit(self) -> SimConfig:
        if len(self.channel_shares) != len(CHANNELS):
            raise ValueError(f"channel_shares needs {len(CHANNELS)} values, one per channel {CHANNELS}")
        if any(s < 0 for s in self.channel_shares) or sum(self.channel_shares) <= 0:
            raise ValueError("channel_shares must be non-negative with a positive sum")
        return self

    @model_validator(mode="after")
    def _membership_fits(self) -> SimConfig:
        m = self.membership
        if m is not None and m.launch_day >= self.days:
            raise ValueError(f"membership.launch_day {m.launch_day} must fall inside the window of {self.days} days")
        if m is not None and m.campaign_day + m.campaign_days > self.days:
            raise ValueError(
                f"membership campaign (days {m.campaign_day} to {m.campaign_day + m.campaign_days - 1}) must end "
                f"inside the window of {self.days} days"
            )
        return self

    @property
    def concrete_end_date(self) -> date:
        """``end_date``, or a ValueError that says the generator needs one."""
        if self.end_date is None:
            raise ValueError("SimConfig.end_date is None; pass a concrete date (e.g. yesterday) to simulate")
        return self.end_date

    @property
    def start_date(self) -> date:
        """First local day of the window."""
        return self.concrete_end_date - timedelta(days=self.days - 1)
