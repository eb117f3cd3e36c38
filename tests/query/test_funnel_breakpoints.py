"""Funnel breakpoints: a planted drop in one breakdown value at one step is flagged exactly there, and nothing is
flagged when the values convert alike (or differ by less than the effect floor); the rule is restated
independently (scipy's chi-square and Benjamini–Hochberg) on random counts."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp

from tests.conftest import examples
from tests.query.logs import BASE_MS, fresh_project, load
from userloop.query.engine import Engine
from userloop.query.kinds.funnel import FunnelQuery
from userloop.query.kinds.funnel.breakpoints import FDR, MIN_GAP, MIN_RATIO, mark_behind_others
from userloop.query.kinds.funnel.results import FunnelSeries, FunnelStepResult
from userloop.store import Workspace

TODAY = date(2026, 2, 28)
VCP = [{"event": "view"}, {"event": "cart"}, {"event": "pay"}]
MINUTE_MS = 60_000


def people(channel: str, reached: list[int], *, on_step: int = 1) -> list[dict[str, Any]]:
    """``reached[0]`` people of ``channel`` view, the first ``reached[1]`` of them add to cart, the first
    ``reached[2]`` pay (one minute apart, spread over 2026-01-05..07 UTC); the channel is on step ``on_step``."""
    records = []
    for i in range(reached[0]):
        start = BASE_MS + (i * 7_919 % 4_000) * MINUTE_MS
        for k, event in enumerate(("view", "cart", "pay")):
            if i >= reached[k]:
                break
            props: dict[str, Any] = {"channel": channel} if k + 1 == on_step else {}
            records.append(
                {
                    "type": "track",
                    "event": event,
                    "distinct_id": f"{channel}{i}",
                    "time": start + k * MINUTE_MS,
                    "event_id": f"{channel}{i}-{k}",
                    "properties": props,
                }
            )
    return records


def run(ws: Workspace, records: list[dict[str, Any]], **defn: Any) -> dict[str, Any]:
    _, project = fresh_project(ws, "UTC")
    load(project, records)
    doc = {"kind": "funnel", "date_range": {"from": "2026-01-05", "to": "2026-01-11"}, "steps": VCP, **defn}
    return Engine(project, "UTC").run(doc, today=TODAY, use_cache=False).result


def flagged(result: dict[str, Any]) -> dict[str | None, list[str]]:
    """Breakdown value → labels of its breakpoint steps (values without any left out)."""
    out = {}
    for series in result["breakdowns"]:
        steps = [s["label"] for s in series["steps"] if s["is_breakpoint"]]
        assert all(s["breakpoint"]["rule"] == "behind_other_values" for s in series["steps"] if s["is_breakpoint"])
        if steps:
            out[series["breakdown"]] = steps
    return out


def overall_breakpoint(result: dict[str, Any]) -> list[str]:
    return [s["label"] for s in result["steps"] if s["is_breakpoint"]]


def test_a_drop_planted_in_one_value_at_one_step_is_flagged_exactly_there(ws: Workspace) -> None:
    # Every channel loses 40% at cart; channel a pays 40% of its carts, b and c 90%.
    records = people("a", [200, 120, 48]) + people("b", [200, 120, 108]) + people("c", [150, 90, 81])
    result = run(ws, records, breakdown={"property": "channel"})
    assert flagged(result) == {"a": ["pay"]}
    pay = next(s for s in result["breakdowns"] if s["breakdown"] == "a")["steps"][2]
    why = pay["breakpoint"]
    assert why["conversion"] == pytest.approx(0.4) and why["others_conversion"] == pytest.approx(189 / 210)
    assert why["drop_off_rate"] == pytest.approx(0.6)
    assert why["q_value"] <= FDR and why["p_value"] <= why["q_value"]
    # Overall, the breakpoint is still where the most people are lost: the cart step (40% against 28%).
    assert overall_breakpoint(result) == ["cart"]
    assert result["steps"][1]["breakpoint"] == {
        "rule": "largest_drop_off", "drop_off_rate": pytest.approx(0.4), "conversion": None,
        "others_conversion": None, "p_value": None, "q_value": None,
    }  # fmt: skip


def test_without_a_planted_drop_no_value_is_flagged(ws: Workspace) -> None:
    alike = people("a", [200, 120, 108]) + people("b", [200, 120, 108]) + people("c", [150, 90, 81])
    result = run(ws, alike, breakdown={"property": "channel"})
    assert flagged(result) == {}
    assert overall_breakpoint(result) == ["cart"]  # the funnel still says where the most people are lost


@pytest.mark.parametrize("seed", range(4))
def test_values_drawn_from_the_same_rates_are_not_flagged(ws: Workspace, seed: int) -> None:
    rng = random.Random(seed)
    records = []
    for channel in "abcd":
        n = rng.randint(80, 300)
        cart = sum(rng.random() < 0.6 for _ in range(n))
        pay = sum(rng.random() < 0.85 for _ in range(cart))
        records += people(channel, [n, cart, pay])
    assert flagged(run(ws, records, breakdown={"property": "channel"})) == {}


def test_a_significant_but_small_gap_is_not_a_breakpoint(ws: Workspace) -> None:
    # Channel a loses 13% at pay against 8% for b: significant on these counts (p < 1e-4) but not 2× the others.
    records = people("a", [1200, 1200, 1044]) + people("b", [2400, 2400, 2208])
    result = run(ws, records, breakdown={"property": "channel"})
    test = sp.chi2_contingency(np.array([[1044, 156], [2208, 192]]), correction=False)
    assert test.pvalue < 1e-4
    assert flagged(result) == {}


def test_with_the_value_taken_at_a_later_step_none_is_not_judged(ws: Workspace) -> None:
    # The channel is on the cart event: everyone with a value reached cart; $none are the people who did not.
    records = people("a", [100, 60, 54], on_step=2) + people("b", [100, 60, 54], on_step=2)
    result = run(ws, records, breakdown={"property": "channel"}, breakdown_attribution={"step": 2})
    none = next(s for s in result["breakdowns"] if s["breakdown"] == "$none")
    assert none["entered"] == 80 and none["steps"][1]["count"] == 0
    assert flagged(result) == {}


# the rule restated on random counts ---------------------------------------------------------------------------------
RATES = (0.2, 0.45, 0.6, 0.85, 0.9, 0.97, 1.0)


@st.composite
def funnels(draw: st.DrawFn) -> dict[str, list[int]]:
    """Breakdown value → people at each step, for 2–5 values over 3–5 steps."""
    n_steps, n_values = draw(st.integers(3, 5)), draw(st.integers(2, 5))
    out = {}
    for v in range(n_values):
        counts = [draw(st.integers(0, 3_000))]
        for _ in range(n_steps - 1):
            rate = draw(st.sampled_from(RATES))
            counts.append(min(counts[-1], round(counts[-1] * rate) + draw(st.integers(-3, 3)) if counts[-1] else 0))
            counts[-1] = max(counts[-1], 0)
        out[f"v{v}"] = counts
    return out


def series_of(counts: dict[str, list[int]]) -> list[FunnelSeries]:
    out = []
    for value, c in counts.items():
        steps = [
            FunnelStepResult(
                step=k + 1, label=f"s{k + 1}", event=f"s{k + 1}", count=n, conversion_from_first=None,
                conversion_from_previous=None, dropped=0, drop_off_rate=None,
            )
            for k, n in enumerate(c)
        ]  # fmt: skip
        out.append(FunnelSeries(breakdown=value, steps=steps, entered=c[0], converted=c[-1], conversion_rate=None))
    return out


def reference(counts: dict[str, list[int]]) -> set[tuple[str, int]]:
    """The breakpoint rule in plain words: Pearson's chi-square of each (value vs the rest) 2 × 2 table with all
    expected counts ≥ 5, Benjamini–Hochberg over those tests, then q ≤ 1%, worse, ≥ 2× and ≥ 5 points."""
    tests = []
    n_steps = len(next(iter(counts.values())))
    for k in range(1, n_steps):
        for value, c in counts.items():
            x, n = c[k], c[k - 1]
            x_o = sum(o[k] for v, o in counts.items() if v != value)
            n_o = sum(o[k - 1] for v, o in counts.items() if v != value)
            table = np.array([[x, n - x], [x_o, n_o - x_o]], dtype=float)
            if n == 0 or n_o == 0:
                continue
            expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
            if expected.min() < 5:
                continue
            tests.append((value, k + 1, x / n, x_o / n_o, sp.chi2_contingency(table, correction=False).pvalue))
    if not tests:
        return set()
    q = sp.false_discovery_control([t[4] for t in tests], method="bh")
    out = set()
    for (value, step, rate, others, _), q_value in zip(tests, q, strict=True):
        drop, others_drop = 1 - rate, 1 - others
        if q_value <= FDR and drop >= MIN_RATIO * others_drop and drop - others_drop >= MIN_GAP:
            out.add((value, step))
    return out


@settings(max_examples=examples(300), deadline=None)
@given(counts=funnels())
def test_the_rule_matches_an_independent_restatement(counts: dict[str, list[int]]) -> None:
    n_steps = len(next(iter(counts.values())))
    q = FunnelQuery.model_validate(
        {"kind": "funnel", "date_range": {"last": 7}, "steps": [{"event": f"s{k}"} for k in range(1, n_steps + 1)],
         "breakdown": {"property": "p"}}
    )  # fmt: skip
    series = series_of(counts)
    mark_behind_others(q, series)
    got = {(s.breakdown, step.step) for s in series for step in s.steps if step.is_breakpoint}
    assert got == reference(counts)
