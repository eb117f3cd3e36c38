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
}
