"""Which features a group's own rule is made of: learning or comparing on them only finds the rule again.

A look-alike of a segment defined by "paid at least twice in 30 days" that may read the tag ``orders_30d`` (a
count of the same event) separates the seed from everyone else perfectly — AUC 1.00 — and ranks the rest by how
close they come to the rule's threshold, not by what else the seed has in common. This is *target leakage*
(Kaufman, Rosset, Perlich & Stitelman 2012, "Leakage in data mining: formulation, detection, and avoidance",
ACM TKDD 6(4)): a feature that encodes the label itself. The remedy there, and here, is to leave out every
feature computed from what defines the label.

What a rule reads (:func:`rule_reads`) is a set of *sources*: profile properties, tags, model output fields and
events (the rule's event, first-time, sequence, regular, stopped and restarted conditions), following the
segments it refers to (cycles are refused when segments are saved; here they are simply not followed twice). A
feature leaks (:func:`leaking`) when it is one of those sources, or is computed from one: a tag whose definition
reads a profile property, an event or a model field the rule reads; a model output of a model that reads an event
the rule reads (the purchase models read the purchase event; activity reads every active event). A tag the rule
reads also makes its own source leak (a rule on ``rfm_class`` leaks ``model:rfm.rfm_class``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from userloop.profile.features import Feature
from userloop.profile.rules import (
    ModelCondition,
    PropertyCondition,
    SegmentCondition,
    SequenceCondition,
    TagCondition,
    conditions,
    parse_rule,
)
from userloop.profile.tagdefs import EventSource, ModelSource, ProfileSource

__all__ = ["Leak", "leaking", "rule_reads"]

#: A source a rule or a tag reads: ("property", p), ("tag", t), ("model", m, field), ("event", e).
Source = tuple[str, ...]
#: The event each model's outputs are computed from in its default configuration (``$any``: every active event).
#: :func:`leaking` takes the events of the project's own configuration when it is given them.
MODEL_EVENTS: dict[str, str] = {
    "rfm": "order_paid", "lifecycle": "order_paid", "clv": "order_paid", "value": "order_paid",
    "churn": "order_paid", "activity": "$any",
}  # fmt: skip


@dataclass(frozen=True)
class Leak:
    """A feature left out, and why (English and Chinese)."""

    feature: str
    en: str
    zh: str

    def as_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "reason": {"en": self.en, "zh": self.zh}}


def rule_reads(
    rule: Any, segment_rule: Callable[[int], Any | None], _seen: frozenset[int] = frozenset()
) -> set[Source]:
    """Every source ``rule`` reads, through the segments it refers to (``segment_rule(id)`` gives a segment's
    rule, or None for a static or look-alike segment, whose members come from no rule)."""
    reads: set[Source] = set()
    for _path, c in conditions(parse_rule(rule)):
        if isinstance(c, PropertyCondition):
            reads.add(("property", c.property))
        elif isinstance(c, TagCondition):
            reads.add(("tag", c.tag))
        elif isinstance(c, ModelCondition):
            reads.add(("model", c.model, c.field))
        elif isinstance(c, SegmentCondition):
            if c.segment not in _seen:
                inner = segment_rule(c.segment)
                if inner is not None:
                    reads |= rule_reads(inner, segment_rule, _seen | {c.segment})
        elif isinstance(c, SequenceCondition):
            reads |= {("event", step.event) for step in c.steps}
        elif getattr(c, "event", None):
            reads.add(("event", c.event))
    return reads


def _tag_source(source: Any) -> Source | None:
    if isinstance(source, ProfileSource):
        return ("property", source.property)
    if isinstance(source, EventSource):
        return ("event", source.event)
    if isinstance(source, ModelSource):
        return ("model", source.model, source.field)
    return None


def _describe(source: Source) -> tuple[str, str]:
    kind, *rest = source
    name = ".".join(rest)
    en = {"property": "profile property", "tag": "tag", "model": "model output", "event": "event"}[kind]
    zh = {"property": "用户属性", "tag": "标签", "model": "模型输出", "event": "事件"}[kind]
    return f"{en} {name!r}", f"{zh} {name}"


def leaking(
    features: Iterable[Feature],
    reads: set[Source],
    tag_sources: dict[str, Any],
    model_events: Mapping[str, Iterable[str]] | None = None,
) -> list[Leak]:
    """The features among ``features`` that the rule's ``reads`` leak into (``tag_sources``: each tag's parsed
    definition source; ``model_events``: the events each model's outputs are computed from, by default
    :data:`MODEL_EVENTS`), each with the reason."""
    by_model = {m: set(e) for m, e in (model_events or {m: {e} for m, e in MODEL_EVENTS.items()}).items()}
    # a tag the rule reads brings in what the tag is computed from
    expanded = set(reads)
    for source in reads:
        if source[0] == "tag" and (inner := _tag_source(tag_sources.get(source[1]))) is not None:
            expanded.add(inner)
    events = {s[1] for s in expanded if s[0] == "event"}
    out: list[Leak] = []
    for f in features:
        name = f.name.split(":", 1)[1]
        own: Source | None = None
        via: Source | None = None
        if f.kind == "property":
            own = ("property", name)
        elif f.kind == "tag":
            own = ("tag", name)
            via = _tag_source(tag_sources.get(name))
        elif f.kind == "model":
            model, _, field = name.partition(".")
            own = ("model", model, field)
            if shared := sorted(by_model.get(model, set()) & events):
                via = ("event", shared[0])
        if own in expanded:
            en, zh = _describe(own)
            out.append(Leak(f.name, f"the seed's rule reads {en}", f"种子人群的规则使用了{zh}"))
        elif via is not None and via in expanded:
            en, zh = _describe(via)
            out.append(Leak(f.name, f"computed from {en}, which the seed's rule reads",
                            f"由种子人群规则所用的{zh} 计算而来"))  # fmt: skip
    return out
