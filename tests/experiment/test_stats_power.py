"""Power, minimum detectable effect and sample size against GrowthBook's power calculator and statsmodels.

References:

- GB-POWER: GrowthBook's ``packages/shared/test/power.test.ts`` (growthbook/growthbook at commit
  8f1db4456915a8e7b7faf23d5632ca7219d2f469): a mean metric (mean 10, variance 3909.9997749994377), a relative
  lift of 5%, 400,000 people over 3 variations, α 0.05: power 0.52144, MDE 0.07027 at power 0.8; with
  sequential testing (N* 5000) power 0.20596, MDE 0.12821.
- GB-WEEKS: the same file's "checks power" and "checks sequential power": 4,500 people a week over 3 variations,
  a conversion rate of 0.1 (lift 5%) and a revenue metric of mean 0.1, variance 0.5 (lift 30%), weeks 1–9;
  the revenue metric reaches power 0.8 in week 8. GrowthBook's MDE there is a closed form that counts only the
  upper tail, so it is at most 3e-5 above the exact root that counts both (as :func:`minimum_detectable_effect`).
- STATSMODELS: statsmodels 0.15.0 ``NormalIndPower`` run side by side (not a dependency of the project): absolute
  effect 0.1 on sd 2 (Cohen's d 0.05), 5,000 people split 40/60 treatment/control, α 0.05: power
  0.4099681115375941, people for power 0.9 17512.365682818152 (nobs1 / 0.4), MDE 0.18714797430763042 (its
  solver's tolerance: the power there is 0.9 to 1e-5); one-sided ("larger"), 50/50: power 0.5489121334941254,
  people for power 0.8 9892.091571257293.
"""

from __future__ import annotations

import math

import pytest

from userloop.core.errors import ValidationError
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


GB_WEEKS_POWER = {
    None: [0.073, 0.17053, 0.0965, 0.29389, 0.1204, 0.41122, 0.14458, 0.51749, 0.16895, 0.61037, 0.19342, 0.68938,
           0.21791, 0.75513, 0.24235, 0.80886, 0.26666, 0.85213],
    5000: [0.05936, 0.09832, 0.06912, 0.14992, 0.07849, 0.19972, 0.08761, 0.24784, 0.09657, 0.29426, 0.10541,
           0.33888, 0.11415, 0.38165, 0.12282, 0.42249, 0.13142, 0.46136],
}  # fmt: skip
GB_WEEKS_MDE = {
    None: [0.36767, 1.26769, 0.24505, 0.71941, 0.19525, 0.54299, 0.16673, 0.4506, 0.14774, 0.39208, 0.13394,
           0.35099, 0.12336, 0.32018, 0.11491, 0.29603, 0.10796, 0.27647],
    5000: [0.65545, 4.33868, 0.4112, 1.51846, 0.32394, 1.04943, 0.27607, 0.84084, 0.24484, 0.71862, 0.22241,
           0.63663, 0.20532, 0.577, 0.19172, 0.53123, 0.18058, 0.49473],
}  # fmt: skip


@pytest.mark.parametrize("tuning", [None, 5000])
def test_growthbook_weekly_power_and_mde(tuning: int | None) -> None:
    design = Design(control_share=1 / 3, treatment_share=1 / 3, sequential_tuning=tuning)
    metrics = ((Baseline(0.1, 0.09), 0.05), (Baseline(0.1, 0.5), 0.3))  # conversion rate, revenue
    weeks = [(week, base, lift) for week in range(1, 10) for base, lift in metrics]
    got_power = [round(power(base, lift, 4500 * week, design), 5) for week, base, lift in weeks]
    assert got_power == GB_WEEKS_POWER[tuning]
    for (week, base, _), theirs in zip(weeks, GB_WEEKS_MDE[tuning], strict=True):
        ours = minimum_detectable_effect(base, 4500 * week, design)
        assert theirs - 3e-5 <= ours <= theirs + 5e-6
    thirds = Design(control_share=1 / 3, treatment_share=1 / 3)
    revenue = plan(Baseline(0.1, 0.5), daily_people=4500 / 7, design=thirds, effect=0.3)
    assert math.ceil(revenue.days / 7) == 8


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
    assert minimum_detectable_effect(Baseline(1.0, 1.0), 3) == math.inf  # fewer than two people an arm
    assert plan(Baseline(1.0, 1.0), daily_people=0.1, days=14).code == "too_few"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 0.9, "power": 0.8}, "alpha"),
        ({"control_share": 0.7, "treatment_share": 0.5}, "control_share"),
        ({"treatment_share": 0.0}, "control_share"),
        ({"sequential_tuning": 0.0}, "sequential_tuning"),
    ],
)
def test_a_design_that_cannot_be_read_is_a_clear_error(fields: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Design(**fields)
    assert caught.value.field == field
