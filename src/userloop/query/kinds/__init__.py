"""The analysis kinds, one module each, and the discriminated union that parses any definition by ``kind``."""

from __future__ import annotations

from typing import Annotated, Any, Union

import pydantic
from pydantic import Field, TypeAdapter

from userloop.core.errors import ValidationError
from userloop.query.kinds.attribution import AttributionQuery
from userloop.query.kinds.base import Analysis, Frame, Result
from userloop.query.kinds.distribution import DistributionQuery, IntervalQuery
from userloop.query.kinds.drilldown import DrilldownQuery
from userloop.query.kinds.funnel import FunnelQuery
from userloop.query.kinds.lifecycle import LifecycleQuery
from userloop.query.kinds.ltv import LtvQuery
from userloop.query.kinds.paths import PathsQuery
from userloop.query.kinds.retention import RetentionQuery
from userloop.query.kinds.stickiness import StickinessQuery
from userloop.query.kinds.trends import TrendsQuery

#: Every kind's definition class. A new kind adds its class here.
KINDS: tuple[type[Analysis], ...] = (
    TrendsQuery,
    FunnelQuery,
    RetentionQuery,
    PathsQuery,
    LifecycleQuery,
    StickinessQuery,
    DistributionQuery,
    IntervalQuery,
    AttributionQuery,
    LtvQuery,
    DrilldownQuery,
)


def _adapter_for(kinds: tuple[type[Analysis], ...]) -> TypeAdapter[Any]:
    if len(kinds) == 1:
        return TypeAdapter(kinds[0])
    return TypeAdapter(Annotated[Union[kinds], Field(discriminator="kind")])  # type: ignore[arg-type]  # noqa: UP007


_adapter = _adapter_for(KINDS)


def kind_names() -> list[str]:
    return [k.model_fields["kind"].default for k in KINDS]


def parse_definition(doc: dict[str, Any] | Analysis) -> Analysis:
    """A definition from its JSON form; a ValidationError names every field that is wrong and why."""
    if isinstance(doc, Analysis):
        return doc
    if not isinstance(doc, dict):
        raise ValidationError("a definition is a JSON object with a 'kind'")
    kind = doc.get("kind")
    if kind not in kind_names():
        raise ValidationError(f"unknown analysis kind {kind!r}; the kinds are {', '.join(kind_names())}")
    try:
        return _adapter.validate_python(doc)
    except pydantic.ValidationError as exc:
        raise ValidationError(describe(exc)) from exc


def describe(exc: pydantic.ValidationError) -> str:
    """pydantic's errors as one line per field: ``steps.1.event: Field required``."""
    parts = []
    for err in exc.errors(include_url=False)[:20]:
        loc = err["loc"][1:] if err["loc"] and err["loc"][0] in kind_names() else err["loc"]  # the union's tag
        where = ".".join(str(p) for p in loc) or "definition"
        parts.append(f"{where}: {err['msg']}")
    return "invalid definition — " + "; ".join(parts)


__all__ = ["KINDS", "Analysis", "Frame", "Result", "kind_names", "parse_definition"]
