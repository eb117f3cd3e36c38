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

from userloop.core.clock import DEFAULT_TIMEZONE
from userloop.core.errors import UserloopError, ValidationError
from userloop.models.activity import ActivityModel
from userloop.models.base import UserModel
from userloop.models.churn import ChurnModel
from userloop.models.clv_model import CLVRunModel
from userloop.models.lifecycle import LifecycleModel
from userloop.models.preference import PreferenceModel
from userloop.models.rfm import RFMModel
from userloop.models.value import ValueModel
from userloop.store import ProjectStore

__all__ = ["MODEL_ORDER", "run_models"]

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


def run_models(
    project: ProjectStore,
    as_of: date,
    only: Iterable[str] | None = None,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    models: dict[str, UserModel[Any]] | None = None,
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

    Returns
    -------
    dict
        ``name → ModelRun.as_dict()``, or ``name → {"error": {"code", "message"}}`` for a model that could
        not run on the data.
    """
    results: dict[str, dict[str, Any]] = {}
    for name in _selected(only):
        model = (models or {}).get(name) or MODEL_ORDER[name]()
        try:
            results[name] = model.run(project, as_of, timezone=timezone).as_dict()
        except UserloopError as exc:
            results[name] = {"model": name, "error": {"code": exc.code, "message": exc.message}}
    return results
