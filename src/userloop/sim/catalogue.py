"""The product catalogue and the coupons, both emitted as ``item_set`` records.

Prices are held in integer cents so that order amounts are exact sums on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from userloop.sim.config import SimConfig
from userloop.sim.geography import CATEGORIES

#: Median shelf price per category, in cents.
MEDIAN_PRICE_CENTS = (1500, 4500, 600, 3500, 6000, 1800, 1200, 4000, 2500, 1500)
#: Share of imported products per category (imported fruit is imported by definition).
IMPORTED_SHARE = (0.0, 1.0, 0.0, 0.1, 0.3, 0.25, 0.1, 0.2, 0.05, 0.25)

KEYWORDS: tuple[tuple[str, ...], ...] = (
    ("苹果", "香蕉", "葡萄", "西瓜", "草莓", "橙子"),
    ("车厘子", "榴莲", "牛油果", "奇异果", "山竹", "蓝莓"),
    ("西兰花", "番茄", "黄瓜", "菠菜", "土豆", "青菜"),
    ("猪肉", "牛排", "鸡胸肉", "排骨", "羊肉"),
    ("虾", "三文鱼", "大闸蟹", "带鱼", "生蚝"),
    ("牛奶", "酸奶", "奶酪", "黄油"),
    ("面包", "吐司", "蛋糕", "牛角包"),
    ("洗衣液", "洗衣凝珠", "柔顺剂", "除菌液", "衣物香氛"),
    ("纸巾", "垃圾袋", "洗洁精", "保鲜膜"),
    ("坚果", "薯片", "巧克力", "饼干"),
)
BRANDS: tuple[tuple[str, ...], ...] = (
    ("鲜丰", "果多美", "自营"),
    ("佳沛", "Driscoll's", "都乐", "自营"),
    ("绿源", "自营", "本地农场"),
    ("双汇", "恒都", "自营"),
    ("獐子岛", "自营", "海鲜码头"),
    ("光明", "蒙牛", "安佳", "认养一头牛"),
    ("桃李", "自营", "巴黎贝甜"),
    ("蓝月亮", "奥妙", "碧浪", "Laundress"),
    ("维达", "清风", "立白"),
    ("三只松鼠", "良品铺子", "乐事"),
)
SPECS = ("500g", "1kg", "2斤装", "家庭装", "精选", "礼盒")

#: (amount, threshold) in yuan: "满39减5" style coupons.
COUPON_TERMS = ((5, 39), (10, 69), (15, 99), (20, 129), (30, 199), (50, 299))


@dataclass(frozen=True)
class Catalogue:
    """Products and coupons.

    Attributes
    ----------
    product_ids, names, brands
        Display values per product.
    category
        Category index (into :data:`~userloop.sim.geography.CATEGORIES`) per product; products are grouped by
        category, ``per_category`` each, so product ``category * per_category + rank``.
    price_cents, is_imported
        Shelf price and origin per product.
    rank_cum
        Cumulative popularity of the ranks inside a category (Zipf-like, shared by every category).
    coupon_ids, coupon_names, coupon_amount_cents, coupon_threshold_cents
        The coupons operators hand out.
    """

    per_category: int
    product_ids: tuple[str, ...]
    names: tuple[str, ...]
    brands: tuple[str, ...]
    category: np.ndarray
    price_cents: np.ndarray
    is_imported: np.ndarray
    rank_cum: np.ndarray
    coupon_ids: tuple[str, ...]
    coupon_names: tuple[str, ...]
    coupon_amount_cents: np.ndarray
    coupon_threshold_cents: np.ndarray

    @property
    def size(self) -> int:
        return len(self.product_ids)

    @property
    def price_yuan(self) -> np.ndarray:
        return self.price_cents / 100.0

    @classmethod
    def build(cls, config: SimConfig, rng: np.random.Generator) -> Catalogue:
        per = config.products_per_category
        n = per * len(CATEGORIES)
        category = np.repeat(np.arange(len(CATEGORIES), dtype=np.int8), per)
        median = np.asarray(MEDIAN_PRICE_CENTS, dtype=np.float64)[category]
        raw = median * rng.lognormal(0.0, 0.45, size=n)
        # Shelf prices end in .90: whole yuan minus ten cents, at least 1.90.
        price = np.maximum(np.rint(raw / 100.0).astype(np.int64), 2) * 100 - 10
        imported = rng.random(n) < np.asarray(IMPORTED_SHARE)[category]
        brand_pick = rng.integers(0, 1 << 30, size=n)
        names: list[str] = []
        brands: list[str] = []
        seen: set[str] = set()
        for i in range(n):
            cat, rank = int(category[i]), i % per
            brand = BRANDS[cat][int(brand_pick[i]) % len(BRANDS[cat])]
            keyword = KEYWORDS[cat][rank % len(KEYWORDS[cat])]
            name = f"{brand}{keyword} {SPECS[(rank // len(KEYWORDS[cat])) % len(SPECS)]}"
            # Two products never share a name (a shop lists them as variants: "… #2").
            variant = 2
            while name in seen:
                name, variant = f"{name.split(' #', maxsplit=1)[0]} #{variant}", variant + 1
            seen.add(name)
            brands.append(brand)
            names.append(name)
        weights = 1.0 / np.arange(1, per + 1, dtype=np.float64) ** 0.9
        return cls(
            per_category=per,
            product_ids=tuple(f"P{i + 1:05d}" for i in range(n)),
            names=tuple(names),
            brands=tuple(brands),
            category=category,
            price_cents=price,
            is_imported=imported,
            rank_cum=np.cumsum(weights / weights.sum()),
            coupon_ids=tuple(f"CP{a:02d}{t:03d}" for a, t in COUPON_TERMS),
            coupon_names=tuple(f"满{t}减{a}" for a, t in COUPON_TERMS),
            coupon_amount_cents=np.array([a * 100 for a, _ in COUPON_TERMS], dtype=np.int64),
            coupon_threshold_cents=np.array([t * 100 for _, t in COUPON_TERMS], dtype=np.int64),
        )

    def draw_products(self, rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
        """A product of each given category, popular ranks more often (a 4096-bucket quantile lookup)."""
        mid = (np.arange(4096) + 0.5) / 4096
        ranks = np.minimum(np.searchsorted(self.rank_cum, mid, side="right"), self.per_category - 1)
        u = rng.integers(0, 1 << 16, size=len(category), dtype=np.uint16) >> 4
        return category.astype(np.int32) * self.per_category + ranks.astype(np.int32)[u]

    def mean_price_cents(self) -> np.ndarray:
        """Popularity-weighted mean price per category (for the expected order value in the ground truth)."""
        per = self.per_category
        rank_p = np.diff(self.rank_cum, prepend=0.0)
        prices = self.price_cents.reshape(len(CATEGORIES), per).astype(np.float64)
        return prices @ rank_p
