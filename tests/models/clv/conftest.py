"""CDNOW data and the `lifetimes` reference for the CLV tests.

The CDNOW files (a 1/10th sample of CDNOW customers, as used by Fader, Hardie & Lee 2005) ship inside the
`lifetimes` package (MIT). They are read straight from its installed directory, located through package
metadata, so loading data never imports `lifetimes`; only the side-by-side comparisons import it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from userloop.models.clv import TransactionSummary, summarise_transactions

CDNOW_CALIBRATION_END = "1997-09-30"  # end of week 39 after 1997-01-01


@dataclass(frozen=True)
class Summary:
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary: np.ndarray


def _dataset(name: str) -> Path:
    try:
        dist = distribution("lifetimes")
    except PackageNotFoundError:
        pytest.fail("the CDNOW data ship with the `lifetimes` package (a dev dependency): install it with make test")
    path = Path(str(dist.locate_file(f"lifetimes/datasets/{name}")))
    if not path.is_file():
        pytest.fail(f"lifetimes is installed but has no datasets/{name}")
    return path


@pytest.fixture(scope="session")
def cdnow_csv() -> Summary:
    """`cdnow_customers_summary.csv`: frequency, recency, T in weeks, rounded to 2 decimals."""
    arr = np.loadtxt(_dataset("cdnow_customers_summary.csv"), delimiter=",", skiprows=1)
    return Summary(arr[:, 1], arr[:, 2], arr[:, 3], np.zeros(arr.shape[0]))


@pytest.fixture(scope="session")
def cdnow_spend_csv() -> Summary:
    """`cdnow_customers_summary_with_transactions.csv`: x, t_x, T and mean repeat spend (rounded to cents)."""
    arr = np.loadtxt(_dataset("cdnow_customers_summary_with_transactions.csv"), delimiter=",", skiprows=1)
    return Summary(arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4])


@pytest.fixture(scope="session")
def cdnow_transactions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`CDNOW_sample.txt`: (customer id, purchase date, dollar value) per transaction."""
    raw = np.loadtxt(_dataset("CDNOW_sample.txt"), dtype=str)
    ids = raw[:, 1].astype(np.int64)
    ymd = raw[:, 2]
    dates = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in ymd], dtype="datetime64[D]")
    return ids, dates, raw[:, 4].astype(np.float64)


@pytest.fixture(scope="session")
def cdnow_daily(cdnow_transactions: tuple[np.ndarray, np.ndarray, np.ndarray]) -> TransactionSummary:
    ids, dates, values = cdnow_transactions
    return summarise_transactions(ids, dates, values, CDNOW_CALIBRATION_END, time_unit_days=1)


@pytest.fixture(scope="session")
def cdnow_exact(cdnow_daily: TransactionSummary) -> Summary:
    """The calibration summary at day precision, in weeks: what the published fits were run on.

    The shipped CSV rounds recency and T to 2 decimals of a week; that moves the Pareto/NBD estimate of β in
    its third decimal (11.6679 instead of 11.6687), and the cent-rounded mean spend moves γ of the
    Gamma-Gamma model in its second (15.4477 instead of 15.4435).
    """
    s = cdnow_daily
    return Summary(s.frequency, s.recency / 7.0, s.T / 7.0, s.monetary)


@pytest.fixture(scope="session")
def lifetimes() -> ModuleType:
    """The `lifetimes` package, used only as a reference to compare against."""
    _dataset("cdnow_customers_summary.csv")
    with warnings.catch_warnings():
        # lifetimes 0.11.3 sets pandas' removed `mode.chained_assignment` option at import, which pandas 3
        # reports as deprecated; that is the reference's own business, not ours.
        warnings.filterwarnings("ignore", message=r"The 'mode\.chained_assignment' option is deprecated")
        import lifetimes as module
    return module


def _central_differences(fn: Callable[[np.ndarray], float], theta: np.ndarray, rel_step: float) -> np.ndarray:
    grad = np.empty_like(theta)
    for i in range(theta.shape[0]):
        h = rel_step * theta[i]
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (fn(up) - fn(down)) / (2 * h)
    return grad


@pytest.fixture
def fd_gradient() -> Callable[..., np.ndarray]:
    """Central differences of a scalar function at ``theta``, one coordinate at a time."""
    return lambda fn, theta, rel_step=1e-6: _central_differences(fn, np.asarray(theta, float), rel_step)
