"""Power, minimum detectable effect and sample size against GrowthBook's power calculator and statsmodels.

References:

- GB-POWER: GrowthBook's ``packages/shared/test/power.test.ts`` (growthbook/growthbook at commit
  8f1db4456915a8e7b7faf23d5632ca7219d2f469): a mean metric (mean 10, variance 3909.9997749994377), a relative
  lift of 5%, 400,000 people over 3 variations, α 0.05: power 0.52144, MDE 0.07027 at power 0.8; with
  sequential testing (N* 5000) power 0.20596, MDE 0.12821.
- STATSMODELS: statsmodels 0.15.0 ``NormalIndPower`` run side by side (not a dependency of the project): absolute
  effect 0.1 on sd 2 (Cohen's d 0.05), 5,000 people split 40/60 treatment/control, α 0.05: power
  0.4099681115375941, people for power 0.9 17512.365682818152 (nobs1 / 0.4), MDE 0.18714797430763042 (its
  solver's tolerance: the power there is 0.9 to 1e-5); one-sided ("larger"), 50/50: power 0.5489121334941254,
  people for power 0.8 9892.091571257293.
"""

from __future__ import annotations

import math

import pytest

from userloop.experiment.stats import (
    Baseline,
    Design,
    Proportion,
    minimum_detectable_effect,
    plan,
    power,
    sample_size,
)
from userloop.stats.messages import DEGENERATE

GB = Baseline(10.0, 3909.9997749994377)
THIRDS = Design(control_share=1 / 3, treatment_share=1 / 3)
THIRDS_SEQ = Design(control_share=1 / 3, treatment_share=1 / 3, sequential_tuning=5000)
SM = Baseline(3.0, 4.0)
SM_TWO = Design(scale="absolute", control_share=0.6, treatment_share=0.4, power=0.9)
SM_ONE = Design(scale="absolute", two_sided=False)


def test_growthbook_power_calculator() -> None:
    assert round(power(GB, 0.05, 400_000, THIRDS), 5) == 0.52144
    assert round(minimum_detectable_effect(GB, 400_000, THIRDS), 5) == 0.07027
    assert round(power(GB, 0.05, 400_000, THIRDS_SEQ), 5) == 0.20596
    assert round(minimum_detectable_effect(GB, 400_000, THIRDS_SEQ), 5) == 0.12821


def test_statsmodels_normal_power() -> None:
    assert power(SM, 0.1, 5000, SM_TWO) == pytest.approx(0.4099681115375941, abs=1e-12)
    assert sample_size(SM, 0.1, SM_TWO) == math.ceil(17512.365682818152)
    assert minimum_detectable_effect(SM, 5000, SM_TWO) == pytest.approx(0.18714797430763042, abs=5e-6)
    assert power(SM, minimum_detectable_effect(SM, 5000, SM_TWO), 5000, SM_TWO) == pytest.approx(0.9, abs=1e-9)
    assert power(SM, 0.1, 5000, SM_ONE) == pytest.approx(0.5489121334941254, abs=1e-12)
    assert sample_size(SM, 0.1, SM_ONE) == math.ceil(9892.091571257293)


def test_sample_size_is_the_first_that_reaches_the_power() -> None:
    base = Baseline.of(Proportion(10_000, 1_000))
    needed = sample_size(base, 0.1)
    assert needed is not None
    assert power(base, 0.1, needed) >= 0.8 > power(base, 0.1, needed - 1)


def test_plan_gives_people_and_days_or_the_detectable_effect() -> None:
    base = Baseline.of(Proportion(10_000, 1_000))
    by_effect = plan(base, daily_people=2_000, effect=0.1)
    assert (by_effect.n, by_effect.days, by_effect.code) == (
        sample_size(base, 0.1),
        math.ceil(by_effect.n / 2_000),
        None,
    )
    by_days = plan(base, daily_people=2_000, days=21)
    assert by_days.n == 42_000
    assert power(base, by_days.effect, 42_000) == pytest.approx(0.8, abs=1e-9)


def test_plans_on_degenerate_baselines_are_neutral() -> None:
    assert plan(Baseline(0.0, 0.0), 1000, effect=0.1).code == "zero_variance"
    assert plan(Baseline(0.0, 2.0), 1000, effect=0.1).code == "zero_baseline"
    assert plan(Baseline(1.0, 2.0), 0, effect=0.1).code == "empty_arm"
    undetectable = plan(Baseline(1.0, 1.0), 1000, effect=1e-9)
    assert (undetectable.n, undetectable.code) == (0, "undetectable")
    assert {"zero_variance", "zero_baseline", "empty_arm", "undetectable"} <= DEGENERATE.keys()
    assert minimum_detectable_effect(Baseline(1.0, 1.0), 4) == math.inf  # a relative lift too noisy at 4 people
