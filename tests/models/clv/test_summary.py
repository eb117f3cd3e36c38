"""Transaction log → (frequency, recency, T, monetary), and the calibration/holdout split."""

from __future__ import annotations

import time

import numpy as np
import pytest

from userloop.models.clv import CLVInputError, calibration_holdout, summarise_transactions

CDNOW_CALIBRATION_END = "1997-09-30"  # end of week 39 after 1997-01-01, as in the conftest
CDNOW_HOLDOUT_END = "1998-06-30"  # end of week 78


def test_reproduces_the_published_cdnow_summary(cdnow_daily, cdnow_spend_csv, cdnow_csv) -> None:
    """Day-level periods, shown in weeks, give the shipped summaries up to their 2-decimal rounding."""
    s = cdnow_daily
    assert s.n_customers == 2357
    np.testing.assert_array_equal(s.customer_id, np.arange(1, 2358))
    for reference in (cdnow_csv, cdnow_spend_csv):
        np.testing.assert_array_equal(s.frequency, reference.frequency)
        np.testing.assert_allclose(s.recency / 7, reference.recency, atol=0.005 + 1e-9)
        np.testing.assert_allclose(s.T / 7, reference.T, atol=0.005 + 1e-9)
    np.testing.assert_allclose(s.monetary, cdnow_spend_csv.monetary, atol=0.005 + 1e-9)


def test_small_log_by_hand() -> None:
    ids = np.array(["b", "a", "a", "a", "a", "c", "d"])
    days = np.array([5.0, 0.2, 0.7, 3.5, 10.0, 12.0, 9.9])
    values = np.array([7.0, 10.0, 5.0, 20.0, 30.0, 1.0, 4.0])
    s = summarise_transactions(ids, days, values, observation_end=10.0)
    # "c" first buys after the end and is left out; a's two purchases on day 0 are one.
    assert s.customer_id.tolist() == ["a", "b", "d"]
    assert s.frequency.tolist() == [2.0, 0.0, 0.0]
    assert s.recency.tolist() == [10.0, 0.0, 0.0]
    assert s.T.tolist() == [10.0, 5.0, 1.0]
    assert s.monetary.tolist() == [25.0, 0.0, 0.0]


def test_weekly_periods_with_datetimes() -> None:
    ids = np.array([1, 1, 1, 1, 2])
    # 1970-01-01 (the epoch) is a Thursday, so weekly periods run Thursday to Wednesday.
    times = np.array(
        ["2024-01-04T09:00", "2024-01-10T23:59", "2024-01-11T00:00", "2024-02-01T12:00", "2024-01-20T08:00"],
        dtype="datetime64[m]",
    )
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    s = summarise_transactions(ids, times, values, np.datetime64("2024-02-07"), time_unit_days=7)
    assert s.customer_id.tolist() == [1, 2]
    assert s.frequency.tolist() == [2.0, 0.0]
    assert s.recency.tolist() == [4.0, 0.0]
    assert s.T.tolist() == [4.0, 2.0]
    assert s.monetary.tolist() == [3.5, 0.0]


def test_values_may_be_omitted() -> None:
    s = summarise_transactions([3, 3, 4], [0.0, 2.0, 1.0], None, observation_end=5.0)
    assert s.frequency.tolist() == [1.0, 0.0]
    assert s.monetary.tolist() == [0.0, 0.0]


def test_calibration_and_holdout_by_hand() -> None:
    ids = np.array([1, 1, 1, 1, 1, 2, 3])
    days = np.array([0.0, 3.0, 12.0, 12.5, 15.0, 11.0, 2.0])
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    split = calibration_holdout(ids, days, values, calibration_end=10.0, observation_end=20.0)
    cal = split.calibration
    assert cal.customer_id.tolist() == [1, 3]  # customer 2 first bought in the holdout period
    assert cal.frequency.tolist() == [1.0, 0.0]
    assert cal.recency.tolist() == [3.0, 0.0]
    assert cal.T.tolist() == [10.0, 8.0]
    assert cal.monetary.tolist() == [2.0, 0.0]
    assert split.frequency_holdout.tolist() == [2.0, 0.0]
    assert split.monetary_holdout.tolist() == [6.0, 0.0]
    assert split.duration_holdout == 10.0


def test_cdnow_calibration_matches_the_summary(cdnow_transactions, cdnow_daily) -> None:
    ids, dates, values = cdnow_transactions
    split = calibration_holdout(ids, dates, values, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
    for field in ("customer_id", "frequency", "recency", "T", "monetary"):
        np.testing.assert_array_equal(getattr(split.calibration, field), getattr(cdnow_daily, field))
    assert split.duration_holdout == 273.0  # 39 weeks
    assert 0 < split.frequency_holdout.sum() < len(ids)
    assert np.all(split.monetary_holdout[split.frequency_holdout == 0] == 0)


def test_a_large_log_is_quick() -> None:
    """No per-customer Python loop: 2M transactions by 200k customers take well under a few seconds."""
    rng = np.random.default_rng(0)
    n = 2_000_000
    ids = rng.integers(0, 200_000, n)
    times = np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 365 * 86_400, n).astype("timedelta64[s]")
    values = rng.gamma(2.0, 10.0, n)
    start = time.perf_counter()
    s = summarise_transactions(ids, times, values, "2024-12-31", time_unit_days=7)
    elapsed = time.perf_counter() - start
    assert s.n_customers == np.unique(ids).size
    assert s.frequency.sum() + s.n_customers == np.unique(ids * 100_000 + (times.astype(np.int64) // (7 * 86_400))).size
    assert elapsed < 10.0


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"customer_ids": [1, 2], "times": [0.0], "values": [1.0, 2.0]}, "one entry per transaction"),
        ({"customer_ids": [1, 2], "times": [0.0, 1.0], "values": [1.0, np.nan]}, "values: .* NaN"),
        ({"customer_ids": [1, 2], "times": [0.0, np.nan], "values": None}, "times: .* NaN"),
        ({"customer_ids": [[1, 2]], "times": [0.0, 1.0], "values": None}, "one-dimensional"),
        (
            {
                "customer_ids": [1],
                "times": np.array(["NaT"], dtype="datetime64[D]"),
                "values": None,
                "observation_end": "2024-01-01",
            },
            "NaT",
        ),
        ({"customer_ids": [1], "times": ["x"], "values": None}, "times: expected numpy datetime64"),
    ],
)
def test_malformed_logs(kwargs, pattern) -> None:
    with pytest.raises(CLVInputError, match=pattern):
        summarise_transactions(**{"observation_end": 10.0, **kwargs})


def test_bad_time_unit_and_windows() -> None:
    with pytest.raises(CLVInputError, match="time_unit_days"):
        summarise_transactions([1], [0.0], None, 10.0, time_unit_days=0)
    with pytest.raises(CLVInputError, match="later period than calibration_end"):
        calibration_holdout([1], [0.0], None, calibration_end=10.0, observation_end=10.0)
    with pytest.raises(CLVInputError, match="not a date"):
        summarise_transactions([1], np.array(["2024-01-01"], dtype="datetime64[D]"), None, "soon")
