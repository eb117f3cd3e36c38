"""The two-proportion z-test against scipy's chi-square of the 2 × 2 table (z² = χ² without continuity correction)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp

from tests.conftest import examples
from userloop.stats.messages import DEGENERATE
from userloop.stats.proportions import MIN_EXPECTED, two_proportion_z


@st.composite
def tables(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n_a, n_b = draw(st.integers(1, 5_000)), draw(st.integers(1, 5_000))
    return draw(st.integers(0, n_a)), n_a, draw(st.integers(0, n_b)), n_b


@settings(max_examples=examples(300))
@given(table=tables())
def test_z_squared_is_pearsons_chi_square_and_p_values_agree(table: tuple[int, int, int, int]) -> None:
    x_a, n_a, x_b, n_b = table
    test = two_proportion_z(x_a, n_a, x_b, n_b)
    assert test.rate_a == x_a / n_a and test.rate_b == x_b / n_b
    observed = np.array([[x_a, n_a - x_a], [x_b, n_b - x_b]])
    pooled = (x_a + x_b) / (n_a + n_b)
    if min(n_a, n_b) * min(pooled, 1 - pooled) < MIN_EXPECTED:
        assert (test.statistic, test.p_value, test.code) == (0.0, 1.0, "too_few_expected")
        return
    chi2, p, _, expected = sp.chi2_contingency(observed, correction=False)
    assert expected.min() >= MIN_EXPECTED - 1e-9
    assert test.code is None
    assert test.statistic**2 == pytest.approx(chi2, rel=1e-9, abs=1e-12)
    assert test.p_value == pytest.approx(p, rel=1e-6, abs=1e-300)
    assert math.copysign(1, test.statistic) == math.copysign(1, x_a / n_a - x_b / n_b) or test.statistic == 0


def test_a_known_case_and_the_direction_of_z() -> None:
    worse = two_proportion_z(45, 100, 90, 100)
    assert worse.statistic < -6 and worse.p_value < 1e-10
    better = two_proportion_z(90, 100, 45, 100)
    assert better.statistic == -worse.statistic and better.p_value == worse.p_value
    same = two_proportion_z(50, 100, 500, 1000)
    assert same.statistic == 0 and same.p_value == 1.0


def test_degenerate_counts_give_a_neutral_result_with_a_registered_code() -> None:
    for args, code in (
        ((0, 0, 5, 10), "too_few"),
        ((3, 4, 2, 5), "too_few_expected"),
        ((0, 50, 0, 50), "too_few_expected"),
    ):
        test = two_proportion_z(*args)
        assert (test.statistic, test.p_value, test.code) == (0.0, 1.0, code)
        assert code in DEGENERATE
    with pytest.raises(ValueError, match="between 0 and the trials"):
        two_proportion_z(5, 4, 1, 2)
