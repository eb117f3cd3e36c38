"""The stats package against scipy and numpy run side by side, and against brute-force references."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp

from tests.conftest import examples
from userloop.stats import CrossMoments, Moments, adjust_p, chi_square_homogeneity, cohens_d, r_from_d, welch_t

SAMPLE = st.lists(st.integers(-50, 50), min_size=2, max_size=40)
VALUES = st.lists(st.floats(-1e4, 1e4, allow_nan=False).map(lambda x: round(x, 3)), min_size=0, max_size=60)


@settings(max_examples=examples(200))
@given(a=VALUES, b=VALUES)
def test_moments_add_up_to_the_union_and_match_numpy(a: list[float], b: list[float]) -> None:
    union = Moments.of(a) + Moments.of(b)
    assert union == pytest.approx(Moments.of(a + b)) or union.n == len(a + b)
    assert union.n == len(a) + len(b)
    if union.n:
        assert union.mean == pytest.approx(float(np.mean(a + b)), abs=1e-9)
    if union.n >= 2:
        assert union.variance == pytest.approx(float(np.var(a + b, ddof=1)), rel=1e-6, abs=1e-6)
    else:
        assert math.isnan(union.variance)


def test_moments_from_a_database_s_mean_and_variance_round_trip() -> None:
    values = [3.0, 4.5, 9.25, -2.0, 7.0]
    m = Moments.from_mean_var(len(values), float(np.mean(values)), float(np.var(values, ddof=1)))
    assert m == pytest.approx(Moments.of(values))
    assert Moments.from_mean_var(1, 5.0, 0.0) == Moments.of([5.0])


@settings(max_examples=examples(200))
@given(
    a=st.lists(st.integers(-50, 50), min_size=2, max_size=40), b=st.lists(st.integers(-50, 50), min_size=2, max_size=40)
)
def test_welch_equals_scipy(a: list[int], b: list[int]) -> None:
    ma, mb = Moments.of(map(float, a)), Moments.of(map(float, b))
    got = welch_t(ma, mb)
    if ma.variance == 0 and mb.variance == 0:
        assert (got.code, got.statistic, got.p_value) == ("zero_variance", 0.0, 1.0)
        return
    with warnings.catch_warnings():  # scipy warns of cancellation on nearly constant samples; the numbers stand
        warnings.simplefilter("ignore", RuntimeWarning)
        want = sp.ttest_ind(a, b, equal_var=False)
    assert got.code is None
    assert got.statistic == pytest.approx(float(want.statistic), rel=1e-9, abs=1e-12)
    assert got.p_value == pytest.approx(float(want.pvalue), rel=1e-9, abs=1e-15)
    assert got.dof == pytest.approx(float(want.df), rel=1e-9)


def test_welch_on_a_published_summary() -> None:
    """Means 10.5 vs 10, sd 5, n 1000 each: t = 0.5 / sqrt(2·25/1000) = √5, two-sided p from t(1998)."""
    got = welch_t(Moments.from_mean_var(1000, 10.5, 25.0), Moments.from_mean_var(1000, 10.0, 25.0))
    assert got.statistic == pytest.approx(math.sqrt(5), rel=1e-12)
    assert got.dof == pytest.approx(1998, rel=1e-12)
    assert got.p_value == pytest.approx(2 * float(sp.t.sf(math.sqrt(5), 1998)), rel=1e-12)
    assert got.p_value == pytest.approx(0.025457, abs=1e-6)


def test_degenerate_data_gives_a_neutral_result_with_a_code() -> None:
    assert welch_t(Moments.of([1.0]), Moments.of([1.0, 2.0])).code == "too_few"
    assert welch_t(Moments(), Moments()).p_value == 1.0
    assert chi_square_homogeneity(np.array([[3, 0], [5, 0]])).code == "empty_table"
    assert chi_square_homogeneity(np.array([[0, 0], [5, 2]])).code == "empty_table"


@settings(max_examples=examples(200))
@given(table=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=2, max_size=8))
def test_chi_square_equals_scipy(table: list[tuple[int, int]]) -> None:
    counts = np.array(table, dtype=float).T  # 2 groups × k categories
    got = chi_square_homogeneity(counts)
    kept = counts[:, counts.sum(axis=0) > 0]
    if kept.shape[1] < 2 or (kept.sum(axis=1) == 0).any():
        assert got.code == "empty_table"
        return
    want = sp.chi2_contingency(kept, correction=False)
    assert got.statistic == pytest.approx(float(want.statistic), rel=1e-9, abs=1e-12)
    assert got.p_value == pytest.approx(float(want.pvalue), rel=1e-9, abs=1e-15)
    assert got.dof == want.dof
    assert got.cramers_v == pytest.approx(
        float(sp.contingency.association(kept.astype(int), method="cramer")), rel=1e-9
    )


def test_cohens_d_and_r_against_their_definitions() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    pooled = ((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) / (len(a) + len(b) - 2)
    d = cohens_d(Moments.of(a), Moments.of(b))
    assert d == pytest.approx((np.mean(a) - np.mean(b)) / math.sqrt(pooled))
    # r from d equals the point-biserial correlation of the group indicator with the values
    r = float(np.corrcoef([1] * len(a) + [0] * len(b), a + b)[0, 1])
    assert r_from_d(d, len(a), len(b)) == pytest.approx(r, rel=1e-12)


def test_adjusted_p_values_equal_scipy_and_brute_force() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 0.2, size=25)
    assert adjust_p(p, "bh").tolist() == pytest.approx(list(sp.false_discovery_control(p, method="bh")))
    order = np.argsort(p)
    holm = np.empty_like(p)
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (len(p) - i) * p[k]))
        holm[k] = running
    assert adjust_p(p, "holm").tolist() == pytest.approx(holm.tolist())
    assert adjust_p(p, "bonferroni").tolist() == pytest.approx(np.minimum(1, p * len(p)).tolist())


PAIRS = st.lists(st.tuples(st.integers(-50, 50), st.integers(-50, 50)), min_size=0, max_size=40)


@settings(max_examples=examples(200))
@given(a=PAIRS, b=PAIRS)
def test_cross_moments_add_up_to_the_union_and_match_numpy(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    union = CrossMoments.of((float(x), float(y)) for x, y in a) + CrossMoments.of((float(x), float(y)) for x, y in b)
    pairs = np.array(a + b, dtype=np.float64).reshape(-1, 2)
    assert (union.n, union.x, union.y) == (len(pairs), Moments.of(pairs[:, 0]), Moments.of(pairs[:, 1]))
    assert union.total_xy == float((pairs[:, 0] * pairs[:, 1]).sum())
    if union.n >= 2:
        assert union.covariance == pytest.approx(float(np.cov(pairs[:, 0], pairs[:, 1], ddof=1)[0, 1]), abs=1e-9)
    else:
        assert math.isnan(union.covariance)


def test_cross_moments_need_paired_counts() -> None:
    with pytest.raises(ValueError, match="as many x as y"):
        CrossMoments(Moments.of([1.0]), Moments.of([1.0, 2.0]))
