"""Compare two groups of people on every feature: "what do mature users share?" (DOMAIN §4, §13).

:func:`compare` puts group A (a segment, a rule) beside group B (another group, or everyone not in A) and tests
every :class:`~userloop.profile.features.Feature` — tags, profile properties, model outputs — for a difference:

- categorical features (enum, string, bool): counts and shares per value (the ``top_values`` most common values,
  the rest folded into ``$other``, people without a value as ``$none``), Pearson's chi-square test of homogeneity
  on that 2 × k table, Cramér's V as the effect size, and the values that tell the groups apart most;
- numeric features (number; date as days since 1970-01-01): n, missing, mean, sd, quartiles, a histogram on bins
  shared by both groups, Welch's t-test and Cohen's d.

p-values are corrected across all tested features (Benjamini–Hochberg by default, Holm or Bonferroni) and the
features ranked, significant first, by an effect on one [0, 1] scale: Cramér's V for categorical features and
the point-biserial correlation ``|r|`` (converted from d) for numeric ones. Both are correlations between the
group indicator and the feature (for two groups Cramér's V is the correlation between the indicator and the best
scoring of the categories), so they rank together.

The counting happens in DuckDB: each group's ids are materialised once as a temp table, then as bitmaps per
block of ids (:class:`MembershipBitmap`, so a feature row learns its groups from two bit reads instead of a
hash join with a million-row group), and each kind of feature takes one aggregate query (a UNION ALL over the
features), returning sufficient statistics only; the tests run on those with scipy. A feature that cannot be
tested (no values, one value, too many distinct values) is listed under ``skipped`` with a stable code and a
reason, never an exception.

References: Pearson (1900) and Agresti, *Categorical Data Analysis* (3rd ed., 2013) §3.2 for the chi-square test
of homogeneity; Cramér, *Mathematical Methods of Statistics* (1946) §21.9 for V; Welch (1947), Biometrika 34,
for the unequal-variance t-test; Cohen, *Statistical Power Analysis for the Behavioral Sciences* (2nd ed., 1988)
§2.2 for d and its relation to r; Benjamini & Hochberg (1995), JRSS B 57; Holm (1979), Scand. J. Statist. 6.

Example
-------
>>> result = compare(project, mature_users, None, features)          # doctest: +SKIP
>>> [row.summary_en for row in result.features[:3]]                 # doctest: +SKIP
['62% of A vs 18% of B have rfm_class = 重要价值 (lift 3.4×)', ...]
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import numpy as np
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.profile.features import Feature
from userloop.profile.groups import (
    DEFAULT_TIMEOUT_S,
    EPOCH,
    HISTOGRAM_BINS,
    TEMP,
    GroupReader,
    MembershipBitmap,
    PerFeatureJoin,
    group_ids,
)
from userloop.query.compile import sql
from userloop.stats import (
    CORRECTIONS,
    Correction,
    Moments,
    adjust_p,
    chi_square_homogeneity,
    cohens_d,
    r_from_d,
    welch_t,
)
from userloop.store.duck import ProjectStore

__all__ = ["Comparison", "FeatureComparison", "GroupReader", "Skipped", "adjust_p", "compare"]

#: A categorical feature with more distinct values than this is an identifier or free text: not tested.
MAX_CATEGORIES = 1000
NONE, OTHER = "$none", "$other"

#: Why a feature was not tested: a stable code → (English, Chinese) message templates.
SKIP_REASONS: dict[str, tuple[str, str]] = {
    "empty_group": ("group {group} has no one in it", "{group} 组没有任何人"),
    "no_values": ("no one in either group has a value", "两组中都没有人有此值"),
    "constant": ("everyone in both groups has the same value", "两组所有人的取值相同"),
    "too_few_values": ("fewer than 2 people in {group} have a value", "{group} 中有值的人少于 2 个"),
    "no_variance": (
        "the values do not vary within either group, so a t-test is undefined",
        "两组组内取值都没有变化，无法做 t 检验",
    ),
    "too_many_categories": (
        "{n} distinct values, more than the {cap} a comparison tests (an identifier or free text?); "
        "group it into a tag with fewer values",
        "有 {n} 个不同取值，超过对比可检验的上限 {cap}（可能是标识或自由文本），请先归并为取值更少的标签",
    ),
}


# results ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Skipped:
    """A feature that was not tested, with a stable ``code`` (see :data:`SKIP_REASONS`)."""

    name: str
    label: str
    code: str
    reason_en: str
    reason_zh: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "code": self.code,
                "reason": {"en": self.reason_en, "zh": self.reason_zh}}  # fmt: skip


@dataclass
class FeatureComparison:
    """One tested feature: the test, its corrected p-value, the effect and the distributions in ``detail``."""

    name: str
    label: str
    kind: str
    type: str
    test: Literal["chi2", "welch"]
    statistic: float
    df: float
    p_value: float
    effect_measure: Literal["cramers_v", "cohens_d"]
    effect_size: float
    #: The effect on the common [0, 1] scale used for ranking (Cramér's V, or |point-biserial r|).
    effect: float
    summary_en: str
    summary_zh: str
    detail: dict[str, Any]
    p_adjusted: float = math.nan
    significant: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "type": self.type,
            "test": self.test,
            "statistic": _clean(self.statistic),
            "df": _clean(self.df),
            "p_value": _clean(self.p_value),
            "p_adjusted": _clean(self.p_adjusted),
            "significant": self.significant,
            "effect": _clean(self.effect),
            "effect_size": {"measure": self.effect_measure, "value": _clean(self.effect_size)},
            "summary": {"en": self.summary_en, "zh": self.summary_zh},
            **self.detail,
        }


@dataclass
class Comparison:
    """What :func:`compare` found: group sizes, notes, tested features (ranked) and skipped ones."""

    names: tuple[str, str]
    a_size: int
    b_size: int
    overlap: int
    b_is_rest: bool
    alpha: float
    correction: Correction
    features: list[FeatureComparison] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "groups": {
                "a": {"name": self.names[0], "size": self.a_size},
                "b": {"name": self.names[1], "size": self.b_size, "everyone_else": self.b_is_rest},
                "overlap": self.overlap,
            },
            "alpha": self.alpha,
            "correction": self.correction,
            "tested": len(self.features),
            "significant": sum(f.significant for f in self.features),
            "features": [f.as_dict() for f in self.features],
            "skipped": [s.as_dict() for s in self.skipped],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


# the comparison -----------------------------------------------------------------------------------------------
def compare(
    project: ProjectStore,
    a: exp.Select,
    b: exp.Select | None,
    features: list[Feature],
    *,
    alpha: float = 0.05,
    correction: Correction = "bh",
    top_values: int = 20,
    max_categories: int = MAX_CATEGORIES,
    names: tuple[str, str] = ("A", "B"),
    timeout_s: float = DEFAULT_TIMEOUT_S,
    _plain: bool = False,
) -> Comparison:
    """Compare group ``a`` with group ``b`` (None: everyone not in ``a``) on every feature.

    Parameters
    ----------
    a, b : sqlglot SELECT
        The groups, as selects with a ``user_id`` column (other columns are ignored). People in both groups
        are counted in both (the overlap is reported); with ``b=None`` group B is every person not in A, so
        the groups never overlap.
    features : list of Feature
        What to compare on; each gives at most one value per person.
    alpha, correction
        Significance level and the multiple-comparison correction across all tested features: ``"bh"``
        (Benjamini–Hochberg false discovery rate), ``"holm"`` or ``"bonferroni"`` (family-wise error rate).
    top_values : int
        Categorical values shown and tested one by one; the rest are folded into ``$other``.
    max_categories : int
        A categorical feature with more distinct values is skipped (``too_many_categories``).
    names : (str, str)
        How the groups are called in the one-line summaries.
    _plain : bool
        Private: read the groups with one join per feature (:class:`PerFeatureJoin`) instead of membership
        bitmaps, the reference the faster path is tested against.

    Returns
    -------
    Comparison
        Tested features ranked significant first, then by effect on the common [0, 1] scale.

    Raises
    ------
    ValidationError
        A bad option or two features with one name.
    QueryError
        A group or feature select failed in the engine, or the whole ran longer than ``timeout_s``.
    """
    _check_options(features, alpha, correction, top_values, max_categories)
    started = time.perf_counter()
    with GroupReader(project, timeout_s) as reader:
        for statement in group_ids(project, a, b):
            reader.execute(statement)
        [(a_size, b_size, overlap)] = reader.rows(
            sql("SELECT (SELECT count(*) FROM $a_ids), (SELECT count(*) FROM $b_ids), "
                "(SELECT count(*) FROM $a_ids AS a JOIN $b_ids AS b ON a.user_id = b.user_id)", **TEMP)
        )  # fmt: skip
        out = Comparison(names, int(a_size), int(b_size), int(overlap), b is None, alpha, correction)
        out.notes = _notes(out)
        empty = [g for g, n in zip(names, (a_size, b_size), strict=True) if n == 0]
        if empty:
            out.skipped = [_skip(f, "empty_group", group=empty[0]) for f in features]
        else:
            groups = None if _plain else MembershipBitmap.make(reader)
            _test_all(groups or PerFeatureJoin(reader), out, features, top_values, max_categories)
    _adjust_and_rank(out)
    out.seconds = time.perf_counter() - started
    return out


def _check_options(
    features: list[Feature], alpha: float, correction: str, top_values: int, max_categories: int
) -> None:
    if not 0 < alpha < 1:
        raise ValidationError(f"alpha must be between 0 and 1 (exclusive), not {alpha!r}")
    if correction not in CORRECTIONS:
        raise ValidationError(f"correction must be one of {', '.join(CORRECTIONS)}, not {correction!r}")
    if not 1 <= top_values <= MAX_CATEGORIES:
        raise ValidationError(f"top_values must be between 1 and {MAX_CATEGORIES}, not {top_values!r}")
    if max_categories < 2:
        raise ValidationError(f"max_categories must be at least 2, not {max_categories!r}")
    seen: set[str] = set()
    for f in features:
        if f.name in seen:
            raise ValidationError(f"feature {f.name!r} is given twice; feature names must be unique")
        seen.add(f.name)


def _notes(out: Comparison) -> list[dict[str, str]]:
    a, b = out.names
    notes = []
    if out.b_is_rest:
        notes.append({"code": "everyone_else",
                      "en": f"{b} is everyone not in {a} ({out.b_size} people), so the groups do not overlap",
                      "zh": f"{b} 为 {a} 以外的所有人（{out.b_size} 人），两组不重叠"})  # fmt: skip
    elif out.overlap:
        notes.append({"code": "overlap",
                      "en": f"{out.overlap} people are in both {a} and {b} and are counted in both; the tests "
                            "assume separate groups, so their p-values are approximate",
                      "zh": f"{out.overlap} 人同时属于 {a} 和 {b}，在两组中都计入；检验假设两组互不重叠，"
                            "因此 p 值为近似值"})  # fmt: skip
    methods = {
        "bh": ("Benjamini–Hochberg (false discovery rate)", "Benjamini–Hochberg（控制错误发现率）"),
        "holm": ("Holm (family-wise error rate)", "Holm（控制族错误率）"),
        "bonferroni": ("Bonferroni (family-wise error rate)", "Bonferroni（控制族错误率）"),
    }[out.correction]
    notes.append({"code": "correction",
                  "en": f"p-values are corrected across all tested features with {methods[0]}; significant "
                        f"means corrected p < {out.alpha:g}",
                  "zh": f"p 值已在所有检验的特征间用 {methods[1]} 校正；显著指校正后 p < {out.alpha:g}"})  # fmt: skip
    return notes


def _test_all(
    groups: PerFeatureJoin | MembershipBitmap,
    out: Comparison,
    features: list[Feature],
    top_values: int,
    max_categories: int,
) -> None:
    categorical = [(i, f) for i, f in enumerate(features) if f.type in ("enum", "string", "bool")]
    numeric = [(i, f) for i, f in enumerate(features) if f.type in ("number", "date")]
    results: dict[int, FeatureComparison | Skipped] = {}
    if categorical:
        by_feature: dict[int, list[tuple[Any, ...]]] = {i: [] for i, _ in categorical}
        for row in groups.categorical(categorical, top_values, (out.a_size, out.b_size)):
            by_feature[row[0]].append(row[1:])
        for i, f in categorical:
            results[i] = _categorical(f, by_feature[i], out, max_categories)
    if numeric:
        stats = groups.numeric(numeric)
        for i, f in numeric:
            a, b = _GroupStats.of(stats.get((i, 0)), out.a_size), _GroupStats.of(stats.get((i, 1)), out.b_size)
            results[i] = _numeric(f, a, b, out)
    for i in sorted(results):
        item = results[i]
        if isinstance(item, FeatureComparison):
            out.features.append(item)
        else:
            out.skipped.append(item)


def _skip(f: Feature, code: str, **fmt: Any) -> Skipped:
    en, zh = SKIP_REASONS[code]
    return Skipped(f.name, f.label, code, en.format(**fmt), zh.format(**fmt))


# categorical features -----------------------------------------------------------------------------------------
def _categorical(
    f: Feature, rows: list[tuple[Any, ...]], out: Comparison, max_categories: int
) -> FeatureComparison | Skipped:
    """rows: (kind 0 value / 1 other / 2 none, value, count in A, count in B, distinct values in the row)."""
    distinct = sum(r[4] for r in rows if r[0] != 2)
    if distinct == 0:
        return _skip(f, "no_values")
    if distinct > max_categories:
        return _skip(f, "too_many_categories", n=distinct, cap=max_categories)
    rows = sorted(rows, key=lambda r: (r[0], -(r[2] + r[3]), r[1] or ""))  # values by total, $other, $none
    cells = [(NONE if k == 2 else OTHER if k == 1 else v, int(na), int(nb)) for k, v, na, nb, _ in rows]
    cells = _in_order(f, cells)
    table = np.array([[c[1] for c in cells], [c[2] for c in cells]], dtype=np.float64)
    test = chi_square_homogeneity(table)
    if test.code is not None:
        return _skip(f, "constant")
    chi2, dof, p, v = test.statistic, test.dof, test.p_value, test.cramers_v
    values = [_share_row(name, na, nb, out.a_size, out.b_size) for name, na, nb in cells]
    # the largest differences first; on a tie (two values: +d and -d) the value A has more of
    ranked = sorted((r for r in values if r["value"] != OTHER),
                    key=lambda r: (-round(abs(r["diff_pts"]), 9), -r["diff_pts"], r["value"]))  # fmt: skip
    en, zh = _categorical_summary(f.label, ranked[0], out.names)
    folded = next((r[4] for r in rows if r[0] == 1), 0)
    detail = {"values": values, "distinguishing": ranked[:5], "folded_values": int(folded), "distinct_values": distinct}
    return FeatureComparison(f.name, f.label, f.kind, f.type, "chi2", chi2, dof, p, "cramers_v", v, v, en, zh, detail)


def _in_order(f: Feature, cells: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Declared order for ordered enums (absent values shown with zero counts), else most common first."""
    if not f.order:
        return cells
    seen = {c[0] for c in cells}
    if OTHER not in seen:
        cells = cells + [(v, 0, 0) for v in f.order if v not in seen]
    rank = {v: i for i, v in enumerate(f.order)}
    tail = {OTHER: len(rank) + 1, NONE: len(rank) + 2}
    return sorted(cells, key=lambda c: (rank.get(c[0], tail.get(c[0], len(rank))), -(c[1] + c[2]), c[0]))


def _share_row(value: str, na: int, nb: int, a_size: int, b_size: int) -> dict[str, Any]:
    share_a, share_b = na / a_size, nb / b_size
    return {
        "value": value,
        "a": na,
        "b": nb,
        "share_a": share_a,
        "share_b": share_b,
        "lift": share_a / share_b if share_b > 0 else None,
        "diff_pts": 100 * (share_a - share_b),
    }


def _categorical_summary(label: str, row: dict[str, Any], names: tuple[str, str]) -> tuple[str, str]:
    a, b = names
    pa_, pb_ = _pct(row["share_a"]), _pct(row["share_b"])
    lift = row["lift"]
    lift_en = f"lift {lift:.1f}×" if lift is not None else f"only in {a}"
    lift_zh = f"{lift:.1f} 倍" if lift is not None else f"仅见于 {a}"
    if row["value"] == NONE:
        return (f"{pa_} of {a} vs {pb_} of {b} have no {label} ({lift_en})",
                f"{a} 中 {pa_} 没有 {label}，{b} 中为 {pb_}（{lift_zh}）")  # fmt: skip
    value = row["value"] if row["value"] != "" else '""'  # an empty string stays visible
    return (f"{pa_} of {a} vs {pb_} of {b} have {label} = {value} ({lift_en})",
            f"{a} 中 {pa_} 的 {label} 为 {value}，{b} 中为 {pb_}（{lift_zh}）")  # fmt: skip


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%" if share == 0 or share >= 0.01 else f"{100 * share:.1g}%"


# numeric features ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _GroupStats:
    n: int  # people with a value
    size: int  # people in the group
    mean: float | None
    var: float | None
    quartiles: tuple[float, float, float] | None
    lo: float | None
    hi: float | None
    histogram: dict[int, int]

    @classmethod
    def of(cls, row: tuple[Any, ...] | None, size: int) -> _GroupStats:
        """From a row ``(n, mean, var, quartiles, min, max, histogram)``; None: no one in the group has a value."""
        if row is None:
            return cls(0, size, None, None, None, None, None, {})
        n, mean, var, q, lo, hi, histogram = row
        bins = {int(k): int(v) for k, v in (histogram or {}).items() if k is not None}
        return cls(int(n), size, mean, var, tuple(q) if q else None, lo, hi, bins)

    def as_dict(self, is_date: bool) -> dict[str, Any]:
        q = self.quartiles or (None, None, None)
        out: dict[str, Any] = {"n": self.n, "missing": self.size - self.n, "mean": self.mean,
                               "sd": math.sqrt(self.var) if self.var is not None else None,
                               "p25": q[0], "p50": q[1], "p75": q[2], "min": self.lo, "max": self.hi}  # fmt: skip
        if is_date:
            out["dates"] = {k: _as_date(out[k]) for k in ("mean", "p25", "p50", "p75", "min", "max")}
        return out


def _numeric(f: Feature, a: _GroupStats, b: _GroupStats, out: Comparison) -> FeatureComparison | Skipped:
    if a.n == 0 and b.n == 0:
        return _skip(f, "no_values")
    for stats, name in ((a, out.names[0]), (b, out.names[1])):
        if stats.n < 2:
            return _skip(f, "too_few_values", group=name)
    assert a.mean is not None and b.mean is not None and a.var is not None and b.var is not None
    if a.var == 0 and b.var == 0:
        return _skip(f, "constant" if a.mean == b.mean else "no_variance")
    ma, mb = Moments.from_mean_var(a.n, a.mean, a.var), Moments.from_mean_var(b.n, b.mean, b.var)
    test = welch_t(ma, mb)
    d = cohens_d(ma, mb)
    r = abs(r_from_d(d, a.n, b.n))
    is_date = f.type == "date"
    en, zh = _numeric_summary(f.label, a, b, d, is_date, out.names)
    detail = {"a": a.as_dict(is_date), "b": b.as_dict(is_date), "histogram": _histogram(a, b, is_date)}
    return FeatureComparison(f.name, f.label, f.kind, f.type, "welch", test.statistic, test.dof,
                             test.p_value, "cohens_d", d, r, en, zh, detail)  # fmt: skip


def _numeric_summary(
    label: str, a: _GroupStats, b: _GroupStats, d: float, is_date: bool, names: tuple[str, str]
) -> tuple[str, str]:
    ga, gb = names
    if is_date:
        assert a.quartiles is not None and b.quartiles is not None
        ma, mb = a.quartiles[1], b.quartiles[1]
        days = ma - mb
        return (f"median {label} is {_as_date(ma)} in {ga} vs {_as_date(mb)} in {gb} ({days:+.0f} days)",
                f"{ga} 的 {label} 中位数为 {_as_date(ma)}，{gb} 为 {_as_date(mb)}（相差 {days:+.0f} 天）")  # fmt: skip
    assert a.mean is not None and b.mean is not None
    return (f"mean {label} is {_num(a.mean)} in {ga} vs {_num(b.mean)} in {gb} (d = {d:+.2f})",
            f"{ga} 的 {label} 均值为 {_num(a.mean)}，{gb} 为 {_num(b.mean)}（d = {d:+.2f}）")  # fmt: skip


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _as_date(days: float | None) -> str | None:
    return None if days is None else (EPOCH + timedelta(days=round(days))).isoformat()


def _histogram(a: _GroupStats, b: _GroupStats, is_date: bool) -> dict[str, Any]:
    """Counts per bin of both groups over the shared range (bin k holds ``lo + k w <= x < lo + (k + 1) w``, the
    last bin also ``x = hi``)."""
    assert a.lo is not None and b.lo is not None and a.hi is not None and b.hi is not None
    lo, hi = min(a.lo, b.lo), max(a.hi, b.hi)
    edges = [lo + (hi - lo) * k / HISTOGRAM_BINS for k in range(HISTOGRAM_BINS + 1)]
    return {
        "edges": [_as_date(e) for e in edges] if is_date else edges,
        "a": [a.histogram.get(k, 0) for k in range(HISTOGRAM_BINS)],
        "b": [b.histogram.get(k, 0) for k in range(HISTOGRAM_BINS)],
    }


# correction and ranking ---------------------------------------------------------------------------------------
def _adjust_and_rank(out: Comparison) -> None:
    adjusted = adjust_p([f.p_value for f in out.features], out.correction)
    for f, p in zip(out.features, adjusted, strict=True):
        f.p_adjusted = float(p)
        f.significant = bool(p < out.alpha)
    out.features.sort(key=_rank_key)


def _rank_key(f: FeatureComparison) -> tuple[Any, ...]:
    return (not f.significant, -f.effect, f.p_value, f.name)


def _clean(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)
