"""Statistics on sufficient statistics: small frozen value objects that add up, and tests that read only them.

SQL returns counts, sums and sums of squares per group; everything here is pure Python on those, so the same
numbers serve profile comparisons today and experiment arms later. Degenerate data (an empty group, zero
variance) gives a neutral result carrying a stable code from :mod:`userloop.stats.messages`, never an exception.
"""

from userloop.stats.change import ChangeTest, change_test, dispersion, rate_ratio_z
from userloop.stats.correction import CORRECTIONS, Correction, adjust_p
from userloop.stats.frequentist import ChiSquare, TTest, chi_square_homogeneity, cohens_d, r_from_d, welch_t
from userloop.stats.messages import DEGENERATE
from userloop.stats.moments import CrossMoments, Moments

__all__ = [
    "CORRECTIONS",
    "DEGENERATE",
    "ChangeTest",
    "ChiSquare",
    "Correction",
    "CrossMoments",
    "Moments",
    "TTest",
    "adjust_p",
    "change_test",
    "chi_square_homogeneity",
    "cohens_d",
    "dispersion",
    "r_from_d",
    "rate_ratio_z",
    "welch_t",
]
