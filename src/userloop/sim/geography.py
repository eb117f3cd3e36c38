"""Cities → stores → communities, and each community's taste in categories (DOMAIN §11.1, §13 Community O2O).

Communities come in a few kinds, each boosting some categories: households in one compound buy imported fruit,
in another premium laundry care, in a third fresh produce. The kinds are what an operator should rediscover
from purchases with a "category × location" preference analysis (DOMAIN §11.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from userloop.sim.config import SimConfig

CITY_NAMES = ("上海", "杭州", "苏州", "南京", "武汉", "成都")

CATEGORIES = (
    "fruit",
    "imported_fruit",
    "vegetables",
    "meat",
    "seafood",
    "dairy",
    "bakery",
    "laundry",
    "household",
    "snacks",
)
CATEGORY_INDEX = {name: k for k, name in enumerate(CATEGORIES)}

#: How often each category lands in a basket in an average community.
BASE_CATEGORY_WEIGHTS = (0.16, 0.06, 0.16, 0.12, 0.07, 0.10, 0.08, 0.06, 0.07, 0.12)

#: Community kinds: name, share of communities, multiplier per category (in CATEGORIES order).
COMMUNITY_KINDS: tuple[tuple[str, float, tuple[float, ...]], ...] = (
    ("fresh_food", 0.35, (1.4, 0.6, 1.8, 1.6, 1.3, 1.0, 0.8, 0.5, 0.8, 0.8)),
    ("imported_fruit", 0.20, (1.0, 4.5, 0.8, 0.9, 1.2, 1.6, 1.3, 1.0, 0.8, 1.0)),
    ("premium_laundry", 0.15, (0.9, 1.1, 0.8, 0.8, 0.8, 1.0, 1.0, 5.0, 2.0, 1.0)),
    ("balanced", 0.30, (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)),
)

_NAME_HEADS = (
    "翠湖", "金桥", "绿洲", "阳光", "碧水", "锦绣", "华府", "东方", "明珠", "春江",
    "紫荆", "银杏", "枫林", "海棠", "樱花", "丽都", "天悦", "滨江", "御景", "嘉园",
    "星河", "云锦", "铂悦", "臻园", "和平", "幸福", "凤凰", "龙湖", "万科", "世纪",
)  # fmt: skip
_NAME_TAILS = (
    "苑", "小区", "花园", "新村", "公寓", "家园", "城", "里", "府", "湾",
    "庭", "名邸", "雅居", "华庭", "山庄", "广场", "一期", "二期", "北区", "南区",
)  # fmt: skip


@dataclass(frozen=True)
class Geography:
    """The store network.

    Attributes
    ----------
    city_names, store_ids, community_names
        Display values, indexed by the integer codes below.
    store_city
        City of each store.
    community_store
        Store that serves each community.
    community_kind
        Index into :data:`COMMUNITY_KINDS`.
    community_pref
        Category preference of each community (rows sum to 1).
    community_weight
        Relative number of households each community contributes.
    """

    city_names: tuple[str, ...]
    store_ids: tuple[str, ...]
    store_city: np.ndarray
    community_names: tuple[str, ...]
    community_store: np.ndarray
    community_kind: np.ndarray
    community_pref: np.ndarray
    community_weight: np.ndarray

    @property
    def community_city(self) -> np.ndarray:
        return self.store_city[self.community_store]

    @classmethod
    def build(cls, config: SimConfig, rng: np.random.Generator) -> Geography:
        n_stores = config.cities * config.stores_per_city
        n_comm = n_stores * config.communities_per_store
        store_city = np.repeat(np.arange(config.cities, dtype=np.int32), config.stores_per_city)
        community_store = np.repeat(np.arange(n_stores, dtype=np.int32), config.communities_per_store)
        kind_p = np.array([share for _, share, _ in COMMUNITY_KINDS])
        kind = rng.choice(len(COMMUNITY_KINDS), size=n_comm, p=kind_p / kind_p.sum()).astype(np.int8)
        boost = np.array([mult for _, _, mult in COMMUNITY_KINDS])[kind]
        noise = rng.lognormal(0.0, 0.25, size=(n_comm, len(CATEGORIES)))
        pref = np.asarray(BASE_CATEGORY_WEIGHTS) * boost * noise
        pref /= pref.sum(axis=1, keepdims=True)
        # Big cities have more households per community; within a city sizes vary a lot.
        city_size = np.array([1.6, 1.3, 1.0, 1.0, 0.9, 1.2])[: config.cities]
        weight = rng.gamma(2.0, 1.0, size=n_comm) * city_size[store_city[community_store]]
        return cls(
            city_names=CITY_NAMES[: config.cities],
            store_ids=tuple(
                f"S{c + 1:02d}{s + 1:03d}" for c in range(config.cities) for s in range(config.stores_per_city)
            ),
            store_city=store_city,
            community_names=tuple(_community_name(k) for k in range(n_comm)),
            community_store=community_store,
            community_kind=kind,
            community_pref=pref,
            community_weight=weight / weight.sum(),
        )


def _community_name(k: int) -> str:
    heads, tails = len(_NAME_HEADS), len(_NAME_TAILS)
    name = _NAME_HEADS[k % heads] + _NAME_TAILS[(k // heads) % tails]
    return name if k < heads * tails else f"{name}{k // (heads * tails) + 1}"
