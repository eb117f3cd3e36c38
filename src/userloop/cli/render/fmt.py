"""How numbers, rates, money, durations and labels read in the CLI's text output.

One place for the rules so every analysis rounds the same way: counts with thousands separators, rates as
percentages with one decimal, money and other fractional amounts with two decimals, durations in human units
("3 h 12 min", "2.5 d"), labels in Chinese and English. Missing values (cells not yet observable, rates over
nobody) print as an empty string, never as ``None`` or ``nan``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def count(value: Any) -> str:
    """A count: ``1,234``; a fractional count (credited conversions) keeps one decimal."""
    if _missing(value):
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def pct(value: Any, *, signed: bool = False) -> str:
    """A ratio (0.456) as a percentage with one decimal: ``45.6%``; ``signed`` adds ``+`` to gains."""
    if _missing(value):
        return ""
    text = f"{value * 100:+,.1f}%" if signed else f"{value * 100:,.1f}%"
    return text.replace("-0.0%", "0.0%").replace("+0.0%", "0.0%")


def p_value(value: Any) -> str:
    """A p- or q-value: three decimals, a power of ten below 0.001 (``3e-20``), and ``<1e-15`` below what a
    double's normal approximation can still tell apart from zero."""
    if _missing(value):
        return ""
    if value < 1e-15:
        return "<1e-15"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.0e}"


def p_is(value: Any) -> str:
    """``= 0.012``, ``= 3e-20`` or ``< 1e-15``: a p-value after its symbol in a sentence."""
    text = p_value(value)
    if not text:
        return ""
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"


def money(value: Any) -> str:
    """An amount of money: two decimals with thousands separators, ``12,345.60``."""
    if _missing(value):
        return ""
    return f"{value:,.2f}"


def number(value: Any, *, signed: bool = False) -> str:
    """Any other number: whole values as counts, fractions with two decimals, tiny ones with three digits."""
    if _missing(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    sign = "+" if signed else ""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):{sign},}"
    if abs(value) >= 1 or value == 0:
        return f"{value:{sign},.2f}"
    return f"{value:{sign}.3g}"


def column(values: list[Any]) -> Callable[[Any], str]:
    """One format for a whole column, so its numbers line up: two decimals for every cell when any value has a
    fraction (sums of money, averages), else whole numbers with thousands separators."""
    fractional = any(isinstance(v, float) and math.isfinite(v) and not v.is_integer() for v in values)
    return money if fractional else number


def duration(seconds: Any) -> str:
    """Seconds in human units: ``45 s``, ``2 min 15 s``, ``3 h 12 min``, ``2.5 d``."""
    if _missing(seconds):
        return ""
    s = float(seconds)
    if s == 0:
        return "0 s"
    if s < 10:
        return f"{s:.1f} s"
    if s < MINUTE:
        return f"{s:.0f} s"
    if s < HOUR:
        m, rest = divmod(round(s), 60)
        return f"{m} min" if rest == 0 else f"{m} min {rest} s"
    if s < DAY:
        h, rest = divmod(round(s / MINUTE), 60)
        if h == 24:
            return "1 d"
        return f"{h} h" if rest == 0 else f"{h} h {rest} min"
    days = s / DAY
    text = f"{days:,.1f}" if days < 100 else f"{days:,.0f}"
    return f"{text.removesuffix('.0')} d"


def label(zh: str, en: str) -> str:
    """A label on one line: ``转化率 / conversion``."""
    return f"{zh} / {en}"


def head(zh: str, en: str) -> str:
    """A column header on two lines (Chinese over English), so narrow numeric columns stay narrow."""
    return f"{zh}\n{en}"


def text(value: Any) -> str:
    """A value that names something (a breakdown value, an event): ``$none`` for no value."""
    return "$none" if value is None else str(value)


#: Column and field labels shared by the renderers: key → (Chinese, English).
LABELS: dict[str, tuple[str, str]] = {
    "step": ("步骤", "step"),
    "users": ("人数", "users"),
    "people": ("人数", "people"),
    "count": ("数量", "count"),
    "share": ("占比", "share"),
    "conversion": ("转化率", "conversion"),
    "from_previous": ("较上一步", "from previous"),
    "from_first": ("较首步", "from first"),
    "dropped": ("流失", "dropped"),
    "median_time": ("中位耗时", "median time"),
    "avg_time": ("平均耗时", "average time"),
    "entered": ("进入", "entered"),
    "converted": ("转化", "converted"),
    "cohort": ("同期群", "cohort"),
    "size": ("人数", "size"),
    "bucket": ("时间", "period"),
    "total": ("合计", "total"),
    "average": ("平均", "average"),
    "value": ("价值", "value"),
    "breakdown": ("分组", "breakdown"),
    "window": ("窗口", "window"),
    "time_to_convert": ("转化耗时", "time to convert"),
    "trend": ("转化趋势", "conversion trend"),
    "previous": ("上期", "previous"),
}


def lab(key: str) -> str:
    """The one-line bilingual label of ``key`` (the key itself when it has none)."""
    zh, en = LABELS.get(key, (key, key))
    return label(zh, en) if zh != en else en


def hd(key: str) -> str:
    """The two-line bilingual header of ``key``."""
    zh, en = LABELS.get(key, (key, key))
    return head(zh, en) if zh != en else en
