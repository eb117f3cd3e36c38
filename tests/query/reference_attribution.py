"""Attribution by brute force: for each conversion, list its touches and hand out the credit.

Written from the rules in the docstring of :mod:`userloop.query.kinds.attribution`, without its SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from tests.query.logs import Ev

Pred = Callable[[Ev], bool]
MODELS = ("first", "last", "linear", "position", "time_decay")


@dataclass
class AttributionOptions:
    first: date
    last: date
    timezone: str
    target: Pred
    touches: list[tuple[str, Pred]]  # (label, matches)
    lookback_ms: int
    model: str
    half_life_ms: int = 7 * 86_400_000
    with_value: bool = False
    keep: Pred = lambda ev: True  # the global filters


def weights(model: str, ages_ms: list[int], half_life_ms: int) -> list[float]:
    """Each touch's share of one conversion; ``ages_ms`` are the touches' ages at the conversion, oldest first."""
    m = len(ages_ms)
    if model == "first":
        return [1.0] + [0.0] * (m - 1)
    if model == "last":
        return [0.0] * (m - 1) + [1.0]
    if model == "linear":
        return [1.0 / m] * m
    if model == "position":
        if m == 1:
            return [1.0]
        if m == 2:
            return [0.5, 0.5]
        return [0.4] + [0.2 / (m - 2)] * (m - 2) + [0.4]
    raw = [2.0 ** (-age / half_life_ms) for age in ages_ms]
    return [w / sum(raw) for w in raw]


def channel_of(ev: Ev, o: AttributionOptions) -> int | None:
    for i, (_, matches) in enumerate(o.touches):
        if matches(ev):
            return i
    return None


def reference_attribution(evs: list[Ev], o: AttributionOptions) -> dict[str, Any]:
    """The same dictionary ``AttributionResult`` dumps to."""
    models = list(MODELS) if o.model == "all" else [o.model]
    usable = [e for e in evs if o.keep(e)]
    touches_of: dict[str, list[Ev]] = defaultdict(list)
    for e in usable:
        if channel_of(e, o) is not None:
            touches_of[e.person].append(e)
    conversions = [e for e in usable if o.target(e) and o.first <= e.local_day(o.timezone) <= o.last]
    n_ch = len(o.touches)
    credit = {m: [0.0] * (n_ch + 1) for m in models}  # the last slot is $none
    value = {m: [0.0] * (n_ch + 1) for m in models}
    touched = [0] * (n_ch + 1)
    for c in conversions:
        before = sorted(
            (
                t
                for t in touches_of[c.person]
                if (t.time_ms, t.event_id) < (c.time_ms, c.event_id) and c.time_ms - t.time_ms <= o.lookback_ms
            ),
            key=lambda t: (t.time_ms, t.event_id),
        )
        amount = c.amount or 0.0
        if not before:
            touched[n_ch] += 1
            for m in models:
                credit[m][n_ch] += 1.0
                value[m][n_ch] += amount
            continue
        for ch in {channel_of(t, o) for t in before}:
            assert ch is not None
            touched[ch] += 1
        for m in models:
            shares = weights(m, [c.time_ms - t.time_ms for t in before], o.half_life_ms)
            for t, w in zip(before, shares, strict=True):
                ch = channel_of(t, o)
                assert ch is not None
                credit[m][ch] += w
                value[m][ch] += w * amount
    n = len(conversions)
    labels = [label for label, _ in o.touches] + ["$none"]
    return {
        "models": models,
        "conversions": n,
        "converters": len({c.person for c in conversions}),
        "attributed": n - touched[n_ch],
        "value": sum(c.amount or 0.0 for c in conversions) if o.with_value else None,
        "channels": [
            {
                "channel": label,
                "touched_conversions": touched[i],
                "credit": {
                    m: {
                        "conversions": credit[m][i],
                        "value": value[m][i] if o.with_value else None,
                        "share": credit[m][i] / n if n else None,
                    }
                    for m in models
                },
            }
            for i, label in enumerate(labels)
        ],
    }
