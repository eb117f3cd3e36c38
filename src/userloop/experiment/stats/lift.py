"""Which effect formula reads which kind of arm: the one entry from two arms' sufficient statistics to an
:class:`~userloop.experiment.stats.effect.Effect` (absolute or relative).

Proportions, means and ratio metrics are compared as independent arms (:func:`~.effect.compare`, the delta
method for relative lifts and for ratios); CUPED arms are adjusted first (:mod:`~.cuped`). Degenerate data gives
a neutral effect with a code: ``empty_arm`` (nobody in an arm), ``too_few`` (one person), ``zero_denominator`` (a
ratio's denominator sums to 0), ``zero_variance``, ``zero_baseline`` (a relative lift from a control mean of 0).
"""

from __future__ import annotations

from userloop.core.errors import ValidationError
from userloop.experiment.stats.arms import Arm, Cuped, CupedRatio, Proportion, Ratio
from userloop.experiment.stats.cuped import cuped_lift, cuped_ratio_lift
from userloop.experiment.stats.effect import Effect, Scale, Side, compare
from userloop.stats import Moments


def lift(control: Arm, treatment: Arm, scale: Scale = "relative") -> Effect:
    """The effect of ``treatment`` against ``control`` (both of one kind of :data:`~.arms.Arm`).

    >>> e = lift(Proportion(1000, 100), Proportion(1000, 120))
    >>> (round(e.estimate, 6), round(e.se, 6))
    (0.2, 0.153362)
    >>> lift(Proportion(0, 0), Proportion(10, 2)).code
    'empty_arm'
    """
    if type(control) is not type(treatment):
        raise ValidationError(
            f"both arms of a comparison must be of one kind, not {type(control).__name__} and "
            f"{type(treatment).__name__}",
            field="treatment",
        )
    n = control.n + treatment.n
    if min(control.n, treatment.n) == 0:
        return Effect.neutral("empty_arm", scale, n)
    if min(control.n, treatment.n) < 2:
        return Effect.neutral("too_few", scale, n)
    if isinstance(control, Cuped) and isinstance(treatment, Cuped):
        return cuped_lift(control, treatment, scale)
    if isinstance(control, CupedRatio) and isinstance(treatment, CupedRatio):
        return cuped_ratio_lift(control, treatment, scale)
    assert not isinstance(control, Cuped | CupedRatio) and not isinstance(treatment, Cuped | CupedRatio)  # same kind
    if isinstance(control, Ratio) and isinstance(treatment, Ratio) and 0 in (control.y.total, treatment.y.total):
        return Effect.neutral("zero_denominator", scale, n)
    return compare(_side(control), _side(treatment), scale)


def _side(arm: Proportion | Moments | Ratio) -> Side:
    return Side(arm.mean, arm.variance, arm.n)
