"""Sample ratio mismatch against GrowthBook's ``check_srm`` and scipy's chi-square; corrections across metrics and
arms against :func:`userloop.stats.adjust_p` on the tested family.

References: ISSUE is the SRM value quoted in issue 15 (GrowthBook's engine); GB-RUN is gbstats 0.8.0
(growthbook/growthbook at commit 8f1db4456915a8e7b7faf23d5632ca7219d2f469, ``gbstats.utils.check_srm``) run side
by side.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sp

from userloop.core.errors import ValidationError
from userloop.experiment.stats import SRM_ALERT, adjust, sample_ratio
from userloop.stats import Correction, adjust_p

REFERENCES = {
    "issue, 50/50": ([5000, 5200], [0.5, 0.5], 0.04767),  # ISSUE
    "issue, full precision": ([5000, 5200], [0.5, 0.5], 0.0476703806561615),  # GB-RUN
    "three arms": ([3300, 3350, 3180], [1.0, 1.0, 1.0], 0.09733435631604981),  # GB-RUN
    "one to two": ([1000, 2150], [1.0, 2.0], 0.058781721355358516),  # GB-RUN
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_srm_equals_the_reference(name: str) -> None:
    counts, weights, p = REFERENCES[name]
    got = sample_ratio(counts, weights)
    assert got.p_value == pytest.approx(p, abs=1e-6)
    assert not got.alert


def test_srm_equals_scipy_and_alerts_below_the_threshold() -> None:
    counts, weights = [4800, 5200, 10150], [1.0, 1.0, 2.0]
    want = sp.chisquare(counts, np.array(weights) / 4 * sum(counts))
    got = sample_ratio(counts, weights)
    assert (got.statistic, got.p_value, got.dof) == (pytest.approx(want.statistic), pytest.approx(want.pvalue), 2)
    assert got.alert == (want.pvalue < SRM_ALERT) and got.alert


def test_srm_alerts_rarely_on_a_fair_split() -> None:
    """2,000 fair 50/50 splits of 10,000 people: the alert fires in about 0.1% of them."""
    rng = np.random.default_rng(3)
    treated = rng.binomial(10_000, 0.5, 2_000)
    alerts = sum(sample_ratio([10_000 - int(t), int(t)], [1, 1]).alert for t in treated)
    assert alerts / 2_000 <= 0.005


def test_srm_of_nobody_is_neutral_and_bad_weights_are_an_error() -> None:
    empty = sample_ratio([0, 0], [1, 1])
    assert (empty.p_value, empty.alert, empty.code) == (1.0, False, "empty_arm")
    with pytest.raises(ValidationError, match="positive"):
        sample_ratio([10, 10], [1, 0])
    with pytest.raises(ValidationError, match="one weight per arm"):
        sample_ratio([10, 10, 3], [1, 1])


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_corrections_adjust_the_tested_comparisons_only(method: Correction) -> None:
    p = {("orders", "sms"): 0.004, ("orders", "push"): 0.03, ("gmv", "sms"): 0.02, ("gmv", "push"): None}
    got = adjust(p, method)
    want = adjust_p([0.004, 0.03, 0.02], method)
    assert [got[k] for k in list(p)[:3]] == pytest.approx(want.tolist())
    assert got[("gmv", "push")] == 1.0
    assert adjust({}, method) == {}
