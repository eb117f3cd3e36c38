"""What the customer-lifetime-value models share.

Input is checked once, at the boundary (:func:`validate_customers`, :func:`validate_spend`); everything behind
it may assume clean float64 arrays. Parameters live in frozen dataclasses (:class:`ModelParams`), a fit's
outcome in :class:`FitResult`, and every model maximises its log-likelihood the same way
(:func:`maximise_log_likelihood`): L-BFGS-B over the logarithms of the parameters, which keeps them positive,
with the model's analytic gradient, from one or more starting points.

Data that cannot identify a model (nobody bought twice, every customer alike) raises :class:`CLVFitError`
with a stable ``code`` before the optimiser runs; malformed arrays raise :class:`CLVInputError`, which is
also a ``ValueError``.
"""

from __future__ import annotations

import ctypes
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

import numpy as np
import numpy.typing as npt
import scipy
from scipy.optimize import minimize

from userloop.core.errors import UserloopError

__all__ = [
    "CLVFitError",
    "CLVInputError",
    "CLVModel",
    "CustomerData",
    "FitResult",
    "FloatArray",
    "ModelParams",
    "SpendData",
    "dot",
    "maximise_log_likelihood",
    "require_identifiable",
    "scale_of",
    "validate_customers",
    "validate_horizon",
    "validate_spend",
]

FloatArray = npt.NDArray[np.float64]
LogLikAndGrad = Callable[[FloatArray], tuple[float, FloatArray]]

#: The optimiser searches log-parameters in [-LOG_BOUND, LOG_BOUND]. Models rescale time (or money) so that
#: every parameter is of order one; an estimate beyond [1/PLAUSIBLE, PLAUSIBLE] then means the data push it
#: towards 0 or infinity, i.e. they do not identify the model.
LOG_BOUND = 18.0
PLAUSIBLE = 1e5


class CLVFitError(UserloopError):
    """A customer-lifetime-value model cannot be fitted or used on the data given."""

    code = "clv_fit"


class CLVInputError(CLVFitError, ValueError):
    """An input array is malformed: wrong length, not finite, negative, or inconsistent with another."""

    code = "clv_invalid_input"


@dataclass(frozen=True)
class CustomerData:
    """Validated per-customer summary: repeat purchases ``x``, recency ``t_x`` and age ``T``."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray

    @property
    def n_customers(self) -> int:
        return int(self.frequency.shape[0])


@dataclass(frozen=True)
class SpendData:
    """Validated repeat-purchase count and mean repeat-purchase value per customer."""

    frequency: FloatArray
    monetary: FloatArray

    @property
    def n_customers(self) -> int:
        return int(self.frequency.shape[0])


def _as_float_array(name: str, values: npt.ArrayLike) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CLVInputError(f"{name}: cannot be read as numbers ({exc})") from exc
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise CLVInputError(f"{name}: expected a one-dimensional array, got shape {arr.shape}")
    return arr


def _first_bad(name: str, bad: npt.NDArray[np.bool_], why: str, values: FloatArray) -> None:
    if bad.any():
        idx = int(np.flatnonzero(bad)[0])
        raise CLVInputError(f"{name}: {int(bad.sum())} value(s) {why} (first at index {idx}: {float(values[idx])!r})")


def _check_field(name: str, arr: FloatArray) -> None:
    _first_bad(name, ~np.isfinite(arr), "are NaN or infinite; drop or fill those customers first", arr)
    _first_bad(name, arr < 0, f"are negative; {name} cannot be below 0", arr)


def _check_frequency(freq: FloatArray) -> None:
    _check_field("frequency", freq)
    _first_bad("frequency", freq != np.round(freq), "are not whole numbers; frequency counts repeat purchases", freq)


def _check_lengths(arrays: dict[str, FloatArray], min_customers: int) -> None:
    lengths = {name: arr.shape[0] for name, arr in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise CLVInputError(f"arrays differ in length: {lengths}; pass one value per customer in each")
    n = next(iter(lengths.values()))
    if n < min_customers:
        raise CLVInputError(f"need at least {min_customers} customer(s), got {n}", code="clv_too_few_customers")


def validate_customers(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
    *,
    min_customers: int = 1,
) -> CustomerData:
    """Check and convert repeat purchases ``x``, last-purchase time ``t_x`` and age ``T`` per customer (FHL 2005).

    ``min_customers`` is 2 for fitting, 1 for prediction. Raises :class:`CLVInputError` naming the field, the
    rule broken and the first offending customer.
    """
    arrays = {name: _as_float_array(name, v) for name, v in (("frequency", frequency), ("recency", recency), ("T", T))}
    _check_lengths(arrays, min_customers)
    freq, rec, age = arrays["frequency"], arrays["recency"], arrays["T"]
    _check_frequency(freq)
    _check_field("recency", rec)
    _check_field("T", age)
    why = "exceed T; the last purchase cannot come after the end of observation"
    _first_bad("recency", rec > age * (1.0 + 1e-12), why, rec)
    why = "are non-zero for customers with frequency 0; recency must be 0 when there was no repeat purchase"
    _first_bad("recency", (freq == 0) & (rec != 0), why, rec)
    return CustomerData(frequency=freq, recency=np.minimum(rec, age), T=age)


def validate_spend(frequency: npt.ArrayLike, monetary: npt.ArrayLike, *, min_customers: int = 1) -> SpendData:
    """Check and convert repeat-purchase counts and mean repeat-purchase values (Fader & Hardie 2013).

    ``monetary`` must be finite and non-negative everywhere and strictly positive where ``frequency > 0``;
    :class:`CLVInputError` names the field and the first offending customer.
    """
    freq = _as_float_array("frequency", frequency)
    money = _as_float_array("monetary", monetary)
    _check_lengths({"frequency": freq, "monetary": money}, min_customers)
    _check_frequency(freq)
    _check_field("monetary", money)
    why = "are 0 for customers with repeat purchases; the mean spend per repeat purchase must be positive"
    _first_bad("monetary", (freq > 0) & (money <= 0), why, money)
    return SpendData(frequency=freq, monetary=money)


def dot(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    """``sum(a * b)`` without BLAS: BLAS worker threads stall badly when the cores are shared."""
    return float(np.multiply(a, b).sum())


def validate_horizon(t: npt.ArrayLike, *, name: str = "t") -> FloatArray:
    """Check durations (forecast horizons): finite and ``>= 0``; scalars stay 0-d so they broadcast."""
    try:
        tt = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CLVInputError(f"{name}: cannot be read as numbers ({exc})") from exc
    if not np.all(np.isfinite(tt)) or np.any(tt < 0):
        raise CLVInputError(f"{name}: forecast horizons must be finite and >= 0, got {t!r}")
    return tt


def scale_of(values: FloatArray) -> float:
    """A typical size of ``values`` (mean of the positive ones, else 1), used to make parameters unitless."""
    positive = values[values > 0]
    return float(positive.mean()) if positive.size else 1.0


def require_identifiable(data: CustomerData, model_name: str) -> None:
    """Refuse data from which a buy-till-you-die model cannot be estimated.

    Raises
    ------
    CLVFitError
        ``clv_no_repeat_purchases`` when nobody bought twice, ``clv_no_variation`` when every customer has the
        same (frequency, recency, T).
    """
    if not (data.frequency > 0).any():
        raise CLVFitError(
            f"{model_name}: none of the {data.n_customers} customers made a repeat purchase (frequency is 0 "
            "for all), so the purchase rate and the dropout process cannot be told apart; use a longer "
            "observation window or check that repeat purchases were counted",
            code="clv_no_repeat_purchases",
        )
    rows = (data.frequency, data.recency, data.T)
    if all(np.all(col == col[0]) for col in rows):
        raise CLVFitError(
            f"{model_name}: all {data.n_customers} customers have the same frequency, recency and T, so the "
            "heterogeneity across customers cannot be estimated; fit on a varied set of customers",
            code="clv_no_variation",
        )


@dataclass(frozen=True)
class DistinctCustomers:
    """Distinct ``(x, t_x, T)`` rows with their multiplicities, so a likelihood is evaluated once per distinct row
    (Pareto/NBD, MBG/NBD)."""

    x: FloatArray
    t_x: FloatArray
    t_end: FloatArray
    weight: FloatArray

    @classmethod
    def from_data(cls, data: CustomerData) -> DistinctCustomers:
        rows = np.column_stack([data.frequency, data.recency, data.T])
        uniq, counts = np.unique(rows, axis=0, return_counts=True)
        return cls(uniq[:, 0].copy(), uniq[:, 1].copy(), uniq[:, 2].copy(), counts.astype(np.float64))


@dataclass(frozen=True)
class ModelParams:
    """Base of the frozen parameter records: every field is a finite, positive float."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise CLVInputError(
                    f"{type(self).__name__}.{f.name} must be a finite number > 0, got {value!r}",
                    code="clv_invalid_params",
                )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Parameter names, in the order of :meth:`as_array`."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_array(cls, values: Sequence[float] | FloatArray) -> Self:
        """Build from values in the order of :meth:`names`."""
        return cls(**{name: float(v) for name, v in zip(cls.names(), values, strict=True)})

    def as_array(self) -> FloatArray:
        return np.array([getattr(self, name) for name in self.names()], dtype=np.float64)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


P = TypeVar("P", bound=ModelParams)


@dataclass(frozen=True)
class FitResult(Generic[P]):
    """Outcome of a maximum-likelihood fit: the estimates, the total (not averaged) log-likelihood there, the
    customers it was summed over, the L-BFGS-B iterations of the winning start and the starts tried."""

    params: P
    log_likelihood: float
    n_customers: int
    iterations: int
    starts_tried: int


class CLVModel(Generic[P]):
    """Holds parameters, either given or estimated by ``fit``."""

    model_name = "CLV model"

    def __init__(self, params: P | None = None) -> None:
        self._params: P | None = params
        self._result: FitResult[P] | None = None

    @property
    def params(self) -> P:
        """The parameters in use; raises :class:`CLVFitError` (``clv_not_fitted``) when there are none."""
        if self._params is None:
            raise CLVFitError(
                f"{self.model_name} has no parameters yet: call fit(...) or pass params= to the constructor",
                code="clv_not_fitted",
            )
        return self._params

    @property
    def result(self) -> FitResult[P]:
        """The outcome of the last ``fit``."""
        if self._result is None:
            raise CLVFitError(f"{self.model_name} has not been fitted", code="clv_not_fitted")
        return self._result

    def _store(self, result: FitResult[P]) -> None:
        self._result = result
        self._params = result.params

    def __repr__(self) -> str:
        inner = "unfitted" if self._params is None else repr(self._params)
        return f"{type(self).__name__}({inner})"


class TransactionModel(CLVModel[P], ABC):
    """A purchase-count model (BG/NBD, Pareto/NBD, MBG/NBD): its log-likelihood and analytic gradient at any
    parameters, and the maximum-likelihood fit they share (:meth:`_fit_by_likelihood`)."""

    #: The parameter record of the model.
    params_class: ClassVar[type[ModelParams]]
    #: Positions of the parameters measured in units of time (α; Pareto/NBD's β): they scale with the time unit.
    time_scaled: ClassVar[tuple[int, ...]] = (1,)

    @abstractmethod
    def _likelihood(self, data: CustomerData) -> LogLikAndGrad:
        """``θ → (log-likelihood, gradient)`` on ``data``, with what does not depend on ``θ`` computed once."""

    @abstractmethod
    def _starting_points(self, data: CustomerData) -> list[list[float]]:
        """Starting points of the optimiser, in the order of the parameters, for ``data`` in its fit units."""

    def _objective(self, theta: FloatArray, data: CustomerData) -> tuple[float, FloatArray]:
        """Log-likelihood and its gradient at parameter vector ``theta`` on ``data``."""
        return self._likelihood(data)(theta)

    def _fit_by_likelihood(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> Self:
        """Validate the customers, maximise the log-likelihood and store the fit (see the model's ``fit``)."""
        data = validate_customers(frequency, recency, T, min_customers=2)
        require_identifiable(data, self.model_name)
        # Fit in units of the mean T (the time-scale parameters); the likelihood then changes by a factor scale^-x.
        scale = scale_of(data.T)
        scaled = CustomerData(data.frequency, data.recency / scale, data.T / scale)
        values, ll, iterations, tried = maximise_log_likelihood(
            self._likelihood(scaled),
            self._starting_points(scaled),
            names=self.params_class.names(),
            n_customers=data.n_customers,
            model_name=self.model_name,
        )
        values[list(self.time_scaled)] *= scale
        ll -= float(data.frequency.sum()) * np.log(scale)
        params = cast(P, self.params_class.from_array(values))
        self._store(FitResult(params, ll, data.n_customers, iterations, tried))
        return self

    def log_likelihood(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
        params: P | None = None,
    ) -> float:
        """Total log-likelihood at ``params`` (default: the fitted ones); the model class cites its paper."""
        return self._at(frequency, recency, T, params)[0]

    def log_likelihood_gradient(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
        params: P | None = None,
    ) -> FloatArray:
        """Gradient of :meth:`log_likelihood` with respect to the model's parameters, in their order."""
        return self._at(frequency, recency, T, params)[1]

    def _at(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
        params: P | None,
    ) -> tuple[float, FloatArray]:
        data = validate_customers(frequency, recency, T)
        return self._objective((params or self.params).as_array(), data)


@dataclass(frozen=True)
class _Run:
    log_params: FloatArray
    log_likelihood: float
    iterations: int
    problem: str | None  # why the run is not acceptable, or None


def _run_lbfgsb(fn: LogLikAndGrad, start: FloatArray, n: int) -> _Run:
    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        params = np.exp(theta)
        with np.errstate(all="ignore"):
            ll, grad = fn(params)
        if not (np.isfinite(ll) and np.all(np.isfinite(grad))):
            return 1e100, np.zeros_like(theta)
        return -ll / n, -(grad * params) / n

    bounds = [(-LOG_BOUND, LOG_BOUND)] * start.shape[0]
    options = {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000, "maxcor": 20}
    res = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    theta = np.asarray(res.x, dtype=np.float64)
    edge = [i for i, v in enumerate(theta) if abs(v) > np.log(PLAUSIBLE)]
    problem = None
    if not (np.isfinite(res.fun) and res.fun < 1e99):
        problem = "no finite likelihood was found"
    elif edge:
        problem = f"parameter(s) #{', #'.join(str(i + 1) for i in edge)} ran off to 0 or infinity"
    elif not (res.success or np.max(np.abs(res.jac)) < 1e-5):
        problem = f"the optimiser stopped without converging ({res.message})"
    return _Run(theta, -float(res.fun) * n, int(res.nit), problem)


@functools.cache
def _openblas_thread_setter() -> Callable[[int], int] | None:
    """``openblas_set_num_threads_local`` of the OpenBLAS bundled with scipy wheels, if there is one."""
    for path in sorted((Path(scipy.__file__).resolve().parent.parent / "scipy.libs").glob("libscipy_openblas*")):
        try:
            setter = getattr(ctypes.CDLL(str(path)), "openblas_set_num_threads_local", None)
        except OSError:
            continue
        if setter is not None:
            setter.restype, setter.argtypes = ctypes.c_int, [ctypes.c_int]
            return setter
    return None


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """L-BFGS-B's tiny BLAS calls gain nothing from threads, and idle OpenBLAS workers competing for busy
    cores can stretch a 5 ms fit to hundreds of ms; run them on the calling thread."""
    setter = _openblas_thread_setter()
    previous = setter(1) if setter is not None else 0
    try:
        yield
    finally:
        if setter is not None and previous > 0:
            setter(previous)


def maximise_log_likelihood(
    fn: LogLikAndGrad,
    starts: Sequence[Sequence[float]],
    *,
    names: Sequence[str],
    n_customers: int,
    model_name: str,
) -> tuple[FloatArray, float, int, int]:
    """Maximise a log-likelihood over positive parameters.

    ``fn(params)`` returns the total log-likelihood and its gradient with respect to ``params``; the caller
    has rescaled the data so that the parameters are of order one. Starts are tried in order until one ends
    at plausible values (within ``[1/PLAUSIBLE, PLAUSIBLE]``); the best of those tried wins.

    Returns
    -------
    params, log_likelihood, iterations, starts_tried

    Raises
    ------
    CLVFitError
        ``clv_not_identified`` when every start drives a parameter to 0 or infinity or to a non-finite
        likelihood.
    """
    runs: list[_Run] = []
    with _single_threaded_blas():
        for start in starts:
            runs.append(_run_lbfgsb(fn, np.log(np.asarray(start, dtype=np.float64)), n_customers))
            if runs[-1].problem is None:
                break
    good = [run for run in runs if run.problem is None]
    if not good:
        detail = str(runs[-1].problem)
        for i, name in enumerate(names):
            detail = detail.replace(f"#{i + 1}", name)
        raise CLVFitError(
            f"{model_name}: the data do not identify the model ({detail}); this happens with very few "
            "customers, no variation between customers, or almost no repeat purchases",
            code="clv_not_identified",
        )
    best = max(good, key=lambda run: run.log_likelihood)
    return np.exp(best.log_params), best.log_likelihood, best.iterations, len(runs)
