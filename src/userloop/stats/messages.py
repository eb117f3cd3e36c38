"""Stable codes for results that cannot be computed from the data, with their English and Chinese messages.

A test on degenerate data returns a neutral result (statistic 0, p-value 1) with one of these codes, so a report
can say why a number is missing instead of failing deep inside.
"""

from __future__ import annotations

DEGENERATE: dict[str, tuple[str, str]] = {
    "too_few": ("fewer than 2 observations in a group", "某组观测少于 2 个"),
    "zero_variance": ("the values do not vary within either group", "两组组内取值都没有变化"),
    "too_few_expected": (
        "an expected count in the 2 × 2 table is below 5, too few for the normal approximation",
        "2 × 2 表中有期望频数小于 5，样本不足以做正态近似",
    ),
    "empty_table": ("the table has fewer than two non-empty columns", "列联表中有数据的列少于两列"),
    "empty_arm": ("an arm of the experiment has nobody in it", "实验中有一组没有任何人"),
    "zero_baseline": (
        "the control group's mean is 0, so a relative lift has no meaning",
        "对照组均值为 0，相对提升没有意义",
    ),
    "undetectable": (
        "no experiment of practical size (10¹² people) detects this effect",
        "任何实际规模的实验（10¹² 人以内）都检测不到这个效果",
    ),
    "zero_denominator": ("a ratio metric's denominator averages 0 in an arm", "比率指标的分母在某组中均值为 0"),
}
