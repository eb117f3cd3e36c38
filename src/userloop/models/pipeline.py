"""Run the user models in dependency order and collect their reports.

Order: RFM, lifecycle, CLV, value, activity, preference, churn. None reads another's table today; the order
puts the descriptive models first so that a failing predictive model (churn needs three horizons of history,
CLV needs repeat buyers) leaves the others written. A model that cannot run on the data is reported with its
error ``code`` and message instead of stopping the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from pydantic import ValidationError as PydanticError

from userloop.core.clock import DEFAULT_TIMEZONE
from userloop.core.errors import UserloopError, ValidationError
from userloop.models.activity import ActivityModel
from userloop.models.base import UserModel
from userloop.models.churn import ChurnModel
from userloop.models.clv_model import CLV_MODELS, CLVConfig, CLVRunModel
from userloop.models.lifecycle import LifecycleModel
from userloop.models.preference import PreferenceModel
from userloop.models.rfm import RFMModel
from userloop.models.value import ValueModel
from userloop.store import ProjectStore

__all__ = ["MODEL_ORDER", "clv_options", "run_models"]

#: Model names in the order they run, and how each is built with its default configuration.
MODEL_ORDER: dict[str, Callable[[], UserModel[Any]]] = {
    "rfm": RFMModel,
    "lifecycle": LifecycleModel,
    "clv": CLVRunModel,
    "value": ValueModel,
    "activity": ActivityModel,
    "preference": PreferenceModel,
    "churn": ChurnModel,
}


def _selected(only: Iterable[str] | None) -> list[str]:
    if only is None:
        return list(MODEL_ORDER)
    wanted = {name.strip() for name in only if name.strip()}
    unknown = sorted(wanted - set(MODEL_ORDER))
    if unknown:
        raise ValidationError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODEL_ORDER)}")
    return [name for name in MODEL_ORDER if name in wanted]


def clv_options(clv_model: str | None, horizon_days: int | None) -> dict[str, UserModel[Any]]:
    """The CLV model configured with the run's options (none when both are None).

    Raises
    ------
    ValidationError
        An unknown ``clv_model`` or a horizon outside 1..3650 days.
    """
    opts: dict[str, Any] = {"clv_model": clv_model, "horizon_days": horizon_days}
    opts = {k: v for k, v in opts.items() if v is not None}
    if not opts:
        return {}
    if "clv_model" in opts and opts["clv_model"] not in CLV_MODELS:
        raise ValidationError(f"unknown clv_model {opts['clv_model']!r}; choose from {', '.join(CLV_MODELS)}")
    try:
        return {"clv": CLVRunModel(CLVConfig(**opts))}
    except PydanticError as exc:
        raise ValidationError(f"invalid CLV options: {exc.errors()[0]['msg']} ({opts})") from exc


def run_models(
    project: ProjectStore,
    as_of: date,
    only: Iterable[str] | None = None,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    models: dict[str, UserModel[Any]] | None = None,
    clv_model: str | None = None,
    horizon_days: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the models (all, or those named in ``only``) as of ``as_of`` and return their reports by name.

    Parameters
    ----------
    project : ProjectStore
    as_of : datetime.date
        Local day the outputs describe.
    only : iterable of str, optional
        Model names to run (see :data:`MODEL_ORDER`); the order stays the dependency order.
    timezone : str
        The project's time zone.
    models : dict, optional
        Configured models to use instead of the defaults, by name.
    clv_model : str, optional
        The CLV purchase model: ``auto`` (chosen by validation), ``bgnbd``, ``paretonbd`` or ``mbgnbd``.
    horizon_days : int, optional
        Days ahead for the CLV model's expected purchases and expected value.

    Returns
    -------
    dict
        ``name → ModelRun.as_dict()``, or ``name → {"error": {"code", "message"}}`` for a model that could
        not run on the data.
    """
    chosen = {**clv_options(clv_model, horizon_days), **(models or {})}
    results: dict[str, dict[str, Any]] = {}
    for name in _selected(only):
        model = chosen.get(name) or MODEL_ORDER[name]()
        try:
            results[name] = model.run(project, as_of, timezone=timezone).as_dict()
        except UserloopError as exc:
            results[name] = {"model": name, "error": {"code": exc.code, "message": exc.message}}
    return results
