"""Statistics of experiments on sufficient statistics (issue 15 item 1).

SQL returns, per arm and metric, ``n`` and sums, sums of squares and cross products (:mod:`.arms`); everything
else is pure Python on those small frozen objects: the effect and its standard error (:mod:`.lift` chooses the
formula: :mod:`.effect` for absolute and relative lifts and ratio metrics by the delta method, :mod:`.cuped` for
CUPED on means and on ratios), the fixed-horizon Welch test (:mod:`.frequentist`),
always-valid confidence sequences for daily reads (:mod:`.sequential`), the Bayesian chance to win and expected
loss (:mod:`.bayesian`), the sample ratio mismatch check (:mod:`.srm`), Holm and Benjamini–Hochberg over metrics
and arms (:mod:`.multiple`), and power, minimum detectable effect and duration before launch (:mod:`.power`).
Degenerate data gives neutral results with a code of :data:`userloop.stats.messages.DEGENERATE`.

>>> from userloop.experiment.stats import Proportion, lift, t_test
>>> r = t_test(lift(Proportion(1000, 100), Proportion(1000, 120)))
>>> (round(r.estimate, 6), round(r.low, 6), round(r.high, 6), round(r.p_value, 5))
(0.2, -0.100768, 0.500768, 0.19235)
"""

from userloop.experiment.stats.arms import Arm, Cuped, CupedRatio, Proportion, Ratio
from userloop.experiment.stats.bayesian import FLAT, GaussianPrior, Posterior, expected_losses, posterior
from userloop.experiment.stats.cuped import pooled_theta, ratio_theta
from userloop.experiment.stats.effect import Effect, Scale
from userloop.experiment.stats.frequentist import Interval, t_test
from userloop.experiment.stats.lift import lift
from userloop.experiment.stats.multiple import adjust
from userloop.experiment.stats.power import (
    Baseline,
    Design,
    Plan,
    minimum_detectable_effect,
    plan,
    power,
    sample_size,
)
from userloop.experiment.stats.sequential import DEFAULT_TUNING, confidence_sequence
from userloop.experiment.stats.srm import SRM_ALERT, SampleRatio, sample_ratio

__all__ = [
    "DEFAULT_TUNING",
    "FLAT",
    "SRM_ALERT",
    "Arm",
    "Baseline",
    "Cuped",
    "CupedRatio",
    "Design",
    "Effect",
    "GaussianPrior",
    "Interval",
    "Plan",
    "Posterior",
    "Proportion",
    "Ratio",
    "SampleRatio",
    "Scale",
    "adjust",
    "confidence_sequence",
    "expected_losses",
    "lift",
    "minimum_detectable_effect",
    "plan",
    "pooled_theta",
    "posterior",
    "power",
    "ratio_theta",
    "sample_ratio",
    "sample_size",
    "t_test",
]
