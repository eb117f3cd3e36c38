"""The world drawn once from a configuration: calendar, stores, catalogue and the population's latent traits.

Everything a later stage needs about a person is drawn here, in one place, so that the records
(:func:`~userloop.sim.generator.simulate`) and the ground truth (:func:`~userloop.sim.truth.ground_truth`)
share the same draws. People are numbered by install time.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from userloop.sim.calendar import DAY_MS, HOUR_MS, Calendar
from userloop.sim.campaigns import Campaigns
from userloop.sim.catalogue import Catalogue
from userloop.sim.config import CHANNELS, POOR_CHANNEL, SimConfig
from userloop.sim.geography import CATEGORIES, Geography
from userloop.sim.identity import Ids

OS_NAMES = ("iOS", "Android", "HarmonyOS")
OS_SHARES = (0.35, 0.50, 0.15)
#: (os index, $model, $screen_width)
MODELS: tuple[tuple[int, str, int], ...] = (
    (0, "iPhone12,1", 828), (0, "iPhone13,2", 1170), (0, "iPhone14,5", 1170), (0, "iPhone15,2", 1179),
    (0, "iPhone16,2", 1290), (0, "iPhone14,6", 750),
    (1, "Xiaomi 14", 1200), (1, "Redmi K70", 1440), (1, "OPPO Reno11", 1080), (1, "vivo X100", 1260),
    (1, "OnePlus 12", 1440), (1, "Redmi Note 13", 1080),
    (2, "HUAWEI Mate 60", 1260), (2, "HUAWEI P60", 1220), (2, "HUAWEI nova 12", 1084),
)  # fmt: skip
AGE_BANDS = ("18-25", "26-35", "36-45", "46-55", "56+")
AGE_SHARES = (0.12, 0.33, 0.28, 0.17, 0.10)
AGE_YEARS = ((18, 26), (26, 36), (36, 46), (46, 56), (56, 76))
GENDERS = ("female", "male")
PAYMENT_METHODS = ("wechat_pay", "alipay", "bank_card", "balance")
PAYMENT_SHARES = (0.55, 0.30, 0.10, 0.05)

#: Per channel: multiplier of the purchase rate λ, of Beta's b (higher b → lower dropout p), and of the
#: coupon uplift (households met by ground staff at the community gate respond best to vouchers).
LAMBDA_BY_CHANNEL = (1.25, 1.0, 0.8, 0.9, 1.3, 0.5)
LOYALTY_BY_CHANNEL = (1.2, 1.0, 0.7, 0.9, 1.3, 0.5)
COUPON_BY_CHANNEL = (1.3, 1.0, 0.9, 0.9, 1.0, 0.8)
#: Older households react more to coupons, younger ones to pushes.
COUPON_BY_AGE = (0.7, 0.8, 1.0, 1.6, 1.9)
PUSH_BY_AGE = (1.6, 1.4, 1.0, 0.7, 0.5)


#: A person's taste is drawn from 2**TASTE_BITS equally likely buckets.
TASTE_BITS = 6


def stream(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent random stream named by ``keys`` (e.g. ``"timeline", day``), stable across runs."""
    words = [seed & 0xFFFFFFFF, seed >> 32]
    words += [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


@dataclass(frozen=True)
class People:
    """Per-person attributes and latent traits, one array element per person (sorted by install time)."""

    install_ms: np.ndarray
    install_day: np.ndarray
    channel: np.ndarray
    is_fake: np.ndarray
    community: np.ndarray
    store: np.ndarray
    city: np.ndarray
    gender: np.ndarray
    age_band: np.ndarray
    birthday: np.ndarray  # days since 1970-01-01
    os: np.ndarray
    model: np.ndarray
    second_model: np.ndarray
    update_lag_days: np.ndarray
    push_enabled: np.ndarray
    purchase_rate: np.ndarray  # λ, purchases per day while alive
    dropout_prob: np.ndarray  # p, chance of dropping out right after each purchase
    basket: np.ndarray  # per-person mean basket size (Gamma-Gamma style spend heterogeneity)
    engagement: np.ndarray  # browse sessions per day while alive
    check_in_habit: np.ndarray
    click_propensity: np.ndarray
    coupon_uplift: np.ndarray
    push_uplift: np.ndarray
    never_treated: np.ndarray
    has_second_device: np.ndarray
    second_delay_ms: np.ndarray
    uninstall_if_dropped: np.ndarray
    uninstall_delay_ms: np.ndarray
    payment_pref: np.ndarray
    taste: np.ndarray  # (people, categories) category preference, rows sum to 1
    taste_lut: np.ndarray  # (people, TASTE_BUCKETS) category of each equally likely bucket

    @property
    def size(self) -> int:
        return len(self.install_ms)

    def draw_categories(self, person: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A category per given person, following their taste (one byte gathered per draw)."""
        bucket = rng.integers(0, 1 << 16, size=len(person), dtype=np.uint16) >> (16 - TASTE_BITS)
        return self.taste_lut[person, bucket]


@dataclass(frozen=True)
class World:
    """Everything drawn once from a :class:`SimConfig`."""

    config: SimConfig
    calendar: Calendar
    geography: Geography
    catalogue: Catalogue
    people: People
    ids: Ids
    campaigns: Campaigns

    @classmethod
    def build(cls, config: SimConfig) -> World:
        calendar = Calendar.build(config.start_date, config.days, config.timezone)
        geography = Geography.build(config, stream(config.seed, "geography"))
        catalogue = Catalogue.build(config, stream(config.seed, "catalogue"))
        people = _draw_people(config, calendar, geography, stream(config.seed, "people"))
        model_os = np.array([m[0] for m in MODELS])
        first_ios, second_ios = people.os == 0, model_os[people.second_model] == 0
        ids = Ids.build(people.size, first_ios, second_ios, stream(config.seed, "ids"))
        return cls(config, calendar, geography, catalogue, people, ids, Campaigns.build(calendar, catalogue))


def _install_days(config: SimConfig, calendar: Calendar, channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    days = calendar.days
    ramp = 1.0 + config.acquisition_growth * np.arange(days) / max(days - 1, 1)
    organic = ramp * calendar.activity
    # The poor channel arrives in a few week-long paid bursts.
    bursts = np.zeros(days)
    for start in rng.integers(0, max(days - 7, 1), size=3):
        bursts[start : start + 7] += 1.0
    poor = channel == CHANNELS.index(POOR_CHANNEL)
    day = rng.choice(days, size=len(channel), p=organic / organic.sum()).astype(np.int32)
    day[poor] = rng.choice(days, size=int(poor.sum()), p=bursts / bursts.sum())
    return day


def _draw_people(config: SimConfig, calendar: Calendar, geo: Geography, rng: np.random.Generator) -> People:
    n = config.users
    shares = np.asarray(config.channel_shares, dtype=np.float64)
    channel = rng.choice(len(CHANNELS), size=n, p=shares / shares.sum()).astype(np.int8)
    day = _install_days(config, calendar, channel, rng)
    install_ms = calendar.draw_times(rng, day, n)
    fake = (channel == CHANNELS.index(POOR_CHANNEL)) & (rng.random(n) < config.poor_channel_fake_share)
    real = ~fake

    community = rng.choice(len(geo.community_names), size=n, p=geo.community_weight).astype(np.int32)
    store = geo.community_store[community]
    age_band = rng.choice(len(AGE_BANDS), size=n, p=AGE_SHARES).astype(np.int8)
    years = np.array(AGE_YEARS)[age_band]
    age_days = (rng.uniform(years[:, 0], years[:, 1]) * 365.25).astype(np.int32)
    os_ = rng.choice(len(OS_NAMES), size=n, p=OS_SHARES).astype(np.int8)

    lam = rng.gamma(config.purchase_r, 1.0 / config.purchase_alpha, size=n) * np.asarray(LAMBDA_BY_CHANNEL)[channel]
    lam[fake] = 0.0
    b = config.dropout_b * np.asarray(LOYALTY_BY_CHANNEL)[channel]
    p = rng.beta(config.dropout_a, b)
    coupon_seg = np.asarray(COUPON_BY_AGE)[age_band] * np.asarray(COUPON_BY_CHANNEL)[channel]
    coupon_uplift = rng.gamma(2.0, config.coupon_uplift_mean / 2.0, size=n) * coupon_seg * real
    push_uplift = rng.gamma(2.0, config.push_uplift_mean / 2.0, size=n) * np.asarray(PUSH_BY_AGE)[age_band] * real

    taste = geo.community_pref[community] * rng.gamma(4.0, 0.25, size=(n, len(CATEGORIES)))
    taste /= taste.sum(axis=1, keepdims=True)

    uninstall_if = np.where(fake, rng.random(n) < 0.6, rng.random(n) < config.uninstall_after_dropout)
    uninstall_mean_days = np.where(fake, 3.0, 20.0)
    columns = {
        "install_ms": install_ms,
        "install_day": day,
        "channel": channel,
        "is_fake": fake,
        "community": community,
        "store": store,
        "city": geo.store_city[store].astype(np.int8),
        "gender": (rng.random(n) < 0.42).astype(np.int8),
        "age_band": age_band,
        "birthday": (calendar.day_start_ms[0] // DAY_MS - age_days).astype(np.int32),
        "os": os_,
        "model": _draw_models(os_, rng),
        "second_model": _draw_models(rng.choice(len(OS_NAMES), size=n, p=OS_SHARES).astype(np.int8), rng),
        "update_lag_days": (rng.geometric(0.08, size=n) - 1).astype(np.int32),
        "push_enabled": rng.random(n) < config.push_enabled_share,
        "purchase_rate": lam,
        "dropout_prob": p,
        "basket": rng.gamma(config.spend_q, 1.0 / config.spend_gamma, size=n),
        "engagement": (rng.gamma(2.0, 0.12, size=n) + 2.5 * lam) * real,
        "check_in_habit": real & (rng.random(n) < config.check_in_share),
        "click_propensity": rng.beta(2.0, 18.0, size=n),
        "coupon_uplift": coupon_uplift,
        "push_uplift": push_uplift,
        "never_treated": rng.random(n) < config.control_share,
        "has_second_device": real & (rng.random(n) < config.second_device_share),
        "second_delay_ms": (DAY_MS + rng.exponential(30.0 * DAY_MS, size=n)).astype(np.int64),
        "uninstall_if_dropped": uninstall_if,
        "uninstall_delay_ms": HOUR_MS + (rng.exponential(1.0, size=n) * uninstall_mean_days * DAY_MS).astype(np.int64),
        "payment_pref": rng.choice(len(PAYMENT_METHODS), size=n, p=PAYMENT_SHARES).astype(np.int8),
        "taste": taste.astype(np.float32),
        "taste_lut": _taste_lut(taste),
    }
    order = np.argsort(install_ms, kind="stable")
    return People(**{name: values[order] for name, values in columns.items()})


def _taste_lut(taste: np.ndarray) -> np.ndarray:
    """Per person, the category at the midpoint of each of ``2**TASTE_BITS`` equally likely buckets.

    Quantising a taste to 1/64 keeps every category above 1.5% and makes drawing a category one gather.
    """
    mid = (np.arange(1 << TASTE_BITS) + 0.5) / (1 << TASTE_BITS)
    lut = np.empty((len(taste), 1 << TASTE_BITS), dtype=np.int8)
    for start in range(0, len(taste), 8192):
        cum = np.cumsum(taste[start : start + 8192], axis=1)
        lut[start : start + 8192] = (cum[:, None, :-1] <= mid[None, :, None]).sum(axis=2)
    return lut


def _draw_models(os_: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    model_os = np.array([m[0] for m in MODELS])
    model = np.empty(len(os_), dtype=np.int16)
    u = rng.random(len(os_))
    for k in range(len(OS_NAMES)):
        mine = np.flatnonzero(model_os == k)
        rows = os_ == k
        model[rows] = mine[(u[rows] * len(mine)).astype(np.int64)]
    return model
