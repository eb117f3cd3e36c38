"""From a transaction log to the per-customer summary the CLV models take.

Conventions follow the literature (Fader, Hardie & Lee 2005; Fader & Hardie 2013): time is cut into periods
of ``time_unit_days`` days and several purchases by one customer in one period count as one purchase whose
value is their sum; ``frequency`` is the number of periods with a purchase after the first one (repeat
purchases), ``recency`` the time from the first to the last such period, ``T`` the time from the first
period to the period that holds ``observation_end``, all in units of ``time_unit_days``; ``monetary`` is the
mean value of the repeat purchases (0 where there were none). The work is one sort of packed
(customer, period) keys and segment sums over it: no Python loop over customers or transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from userloop.models.clv.base import CLVInputError, FloatArray

__all__ = ["CalibrationHoldout", "TransactionSummary", "calibration_holdout", "summarise_transactions"]

IntArray = npt.NDArray[np.int64]
_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class TransactionSummary:
    """One row per customer, sorted by customer id."""

    customer_id: npt.NDArray[Any]
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary: FloatArray

    @property
    def n_customers(self) -> int:
        return int(self.frequency.shape[0])


@dataclass(frozen=True)
class CalibrationHoldout:
    """A calibration-period summary and what the same customers did in the holdout period after it."""

    calibration: TransactionSummary
    frequency_holdout: FloatArray
    monetary_holdout: FloatArray
    duration_holdout: float


@dataclass(frozen=True)
class _Pairs:
    """Distinct (customer, period) pairs, sorted by customer then period, with the summed value of each.

    ``customer`` indexes ``ids``; every customer index in ``range(len(ids))`` has at least one pair.
    """

    ids: npt.NDArray[Any]
    customer: IntArray
    period: IntArray
    value: FloatArray


def _period_of(name: str, times: npt.ArrayLike, unit_days: float) -> IntArray:
    """Period index of each time: ``floor(days / unit_days)``; datetimes are counted from the Unix epoch."""
    arr = np.asarray(times)
    if np.issubdtype(arr.dtype, np.datetime64):
        if np.isnat(arr).any():
            raise CLVInputError(f"{name}: contains NaT (missing timestamps); drop those transactions first")
        seconds = arr.astype("datetime64[s]").astype(np.int64)
        width = unit_days * _SECONDS_PER_DAY
        if float(width).is_integer():
            return seconds // int(width)
        return np.floor(seconds / width).astype(np.int64)
    try:
        days = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise CLVInputError(f"{name}: expected numpy datetime64 values or numbers of days ({exc})") from exc
    if not np.all(np.isfinite(days)):
        raise CLVInputError(f"{name}: contains NaN or infinite values; drop those transactions first")
    return np.floor(days / unit_days).astype(np.int64)


def _end_period(name: str, end: Any, times: npt.ArrayLike, unit_days: float) -> int:
    arr = np.asarray(times)
    if np.issubdtype(arr.dtype, np.datetime64):
        try:
            end = np.datetime64(end)
        except ValueError as exc:
            raise CLVInputError(f"{name}: {end!r} is not a date or timestamp") from exc
    return int(_period_of(name, np.asarray([end]), unit_days)[0])


def _check_unit(time_unit_days: float) -> float:
    unit = float(time_unit_days)
    if not (np.isfinite(unit) and unit > 0):
        raise CLVInputError(f"time_unit_days must be a positive number of days (1, 7), got {time_unit_days!r}")
    return unit


def _codes(ids: npt.NDArray[Any], span: int) -> tuple[IntArray, Callable[[IntArray], npt.NDArray[Any]]]:
    """Integer codes for customer ids that keep their order, and the way back from code to id.

    Integer ids in a modest range are shifted (no sort); anything else goes through ``np.unique``.
    """
    if ids.dtype.kind in "iu" and ids.shape[0]:
        low, high = int(ids.min()), int(ids.max())
        if (high - low + 1) * span < 2**62:
            offset = ids.dtype.type(low)
            return (ids - offset).astype(np.int64), lambda code: (code + low).astype(ids.dtype)
    uniq, inverse = np.unique(ids, return_inverse=True)
    return inverse.astype(np.int64).reshape(-1), lambda code: uniq[code]


def _read_pairs(
    customer_ids: npt.ArrayLike, times: npt.ArrayLike, values: npt.ArrayLike | None, unit: float, last: int
) -> _Pairs:
    """Validate a transaction log, drop periods after ``last`` and merge purchases within a period."""
    ids = np.asarray(customer_ids)
    if ids.ndim != 1:
        raise CLVInputError(f"customer_ids: expected a one-dimensional array, got shape {ids.shape}")
    periods = _period_of("times", times, unit)
    vals = np.zeros(ids.shape[0]) if values is None else np.asarray(values, dtype=np.float64)
    if periods.shape != ids.shape or vals.shape != ids.shape:
        raise CLVInputError(
            "customer_ids, times and values must have one entry per transaction: got shapes "
            f"{ids.shape}, {periods.shape}, {vals.shape}"
        )
    if not np.all(np.isfinite(vals)):
        raise CLVInputError("values: contains NaN or infinite amounts; drop or fill those transactions first")
    keep = periods <= last
    if not keep.all():
        ids, periods, vals = ids[keep], periods[keep], vals[keep]
    if ids.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Pairs(ids, empty, empty, np.zeros(0))
    low = int(periods.min())
    span = last - low + 1
    codes, id_of = _codes(ids, span)
    key, value = _merge(codes * span + (periods - low), vals)
    code = key // span
    new_customer = np.concatenate([[True], code[1:] != code[:-1]])
    return _Pairs(
        ids=id_of(code[new_customer]),
        customer=np.cumsum(new_customer) - 1,
        period=key % span + low,
        value=value,
    )


def _merge(key: IntArray, values: FloatArray) -> tuple[IntArray, FloatArray]:
    """Sorted distinct keys and the sum of ``values`` per key.

    The sort carries each row's position in the low bits of a packed int64, so a plain (SIMD) sort stands
    in for the slower ``argsort`` when keys and positions fit in 62 bits together.
    """
    n = key.shape[0]
    shift = max(1, (n - 1).bit_length())
    if int(key.max()).bit_length() + shift <= 62:
        packed = np.sort((key << shift) | np.arange(n, dtype=np.int64))
        order = packed & ((1 << shift) - 1)
        key = packed >> shift
    else:
        order = np.argsort(key, kind="stable")
        key = key[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    return key[starts], np.asarray(np.add.reduceat(values[order], starts), dtype=np.float64)


def _bounds(customer: IntArray) -> tuple[IntArray, IntArray]:
    """First and last pair index of each customer (pairs are grouped by customer)."""
    first = np.flatnonzero(np.concatenate([[True], customer[1:] != customer[:-1]]))
    last = np.concatenate([first[1:] - 1, [customer.shape[0] - 1]])
    return first, last


def _summary(pairs: _Pairs, end_period: int) -> TransactionSummary:
    if pairs.customer.shape[0] == 0:
        none = np.zeros(0)
        return TransactionSummary(pairs.ids, none, none, none, none)
    first, last = _bounds(pairs.customer)
    frequency = (last - first).astype(np.float64)
    repeat_value = np.add.reduceat(pairs.value, first) - pairs.value[first]
    return TransactionSummary(
        customer_id=pairs.ids,
        frequency=frequency,
        recency=(pairs.period[last] - pairs.period[first]).astype(np.float64),
        T=(end_period - pairs.period[first]).astype(np.float64),
        monetary=np.divide(repeat_value, frequency, out=np.zeros_like(frequency), where=frequency > 0),
    )


def summarise_transactions(
    customer_ids: npt.ArrayLike,
    times: npt.ArrayLike,
    values: npt.ArrayLike | None,
    observation_end: Any,
    time_unit_days: float = 1,
) -> TransactionSummary:
    """Summarise a transaction log into frequency, recency, T and monetary value per customer.

    The summary of Fader, Hardie & Lee (2005, section 4) and Fader & Hardie (2013): purchases in the same
    period (``time_unit_days`` days, counted from the Unix epoch) merge into one; transactions in periods
    after the one holding ``observation_end`` are ignored, and so are customers whose first purchase comes
    later.

    Parameters
    ----------
    customer_ids : array_like
        Customer of each transaction (any sortable type).
    times : array_like
        When each transaction happened: ``numpy.datetime64`` values, or numbers of days.
    values : array_like or None
        Amount of each transaction; ``None`` gives ``monetary`` of 0.
    observation_end : datetime-like or float
        End of the observation window, in the same kind as ``times``.
    time_unit_days : float
        Period length in days: 1 for daily, 7 for weekly.

    Returns
    -------
    TransactionSummary
        Sorted by customer id; ``recency`` and ``T`` in units of ``time_unit_days``.

    Raises
    ------
    CLVInputError
        Mismatched lengths, missing timestamps or amounts, or a bad ``time_unit_days``.
    """
    unit = _check_unit(time_unit_days)
    end = _end_period("observation_end", observation_end, times, unit)
    return _summary(_read_pairs(customer_ids, times, values, unit, end), end)


def calibration_holdout(
    customer_ids: npt.ArrayLike,
    times: npt.ArrayLike,
    values: npt.ArrayLike | None,
    calibration_end: Any,
    observation_end: Any,
    time_unit_days: float = 1,
) -> CalibrationHoldout:
    """Split a transaction log into a calibration summary and holdout counts (Fader, Hardie & Lee 2005).

    Customers are those with a first purchase up to ``calibration_end``; their calibration summary is
    :func:`summarise_transactions` up to ``calibration_end``, and their holdout ``frequency`` the number of
    periods with a purchase after ``calibration_end`` up to ``observation_end`` (``monetary`` the mean value
    of those periods).

    Returns
    -------
    CalibrationHoldout
        ``duration_holdout`` is the holdout length in units of ``time_unit_days``.

    Raises
    ------
    CLVInputError
        As :func:`summarise_transactions`, or when ``observation_end`` is not after ``calibration_end``.
    """
    unit = _check_unit(time_unit_days)
    cal_end = _end_period("calibration_end", calibration_end, times, unit)
    obs_end = _end_period("observation_end", observation_end, times, unit)
    if obs_end <= cal_end:
        raise CLVInputError(
            f"observation_end must fall in a later period than calibration_end (periods {obs_end} <= {cal_end})"
        )
    pairs = _read_pairs(customer_ids, times, values, unit, obs_end)
    if pairs.customer.shape[0] == 0:
        return CalibrationHoldout(_summary(pairs, cal_end), np.zeros(0), np.zeros(0), float(obs_end - cal_end))
    first, _ = _bounds(pairs.customer)
    known = pairs.period[first] <= cal_end  # customers who had bought by calibration_end
    row = np.cumsum(known) - 1
    in_cal = pairs.period <= cal_end
    calibration = _summary(
        _Pairs(pairs.ids[known], row[pairs.customer[in_cal]], pairs.period[in_cal], pairs.value[in_cal]),
        cal_end,
    )
    later = ~in_cal & known[pairs.customer]
    n = calibration.n_customers
    freq = np.bincount(row[pairs.customer[later]], minlength=n).astype(np.float64)
    total = np.bincount(row[pairs.customer[later]], weights=pairs.value[later], minlength=n)
    monetary = np.divide(total, freq, out=np.zeros(n), where=freq > 0)
    return CalibrationHoldout(calibration, freq, monetary, float(obs_end - cal_end))
