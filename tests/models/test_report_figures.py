"""The figures the console draws from the model reports, against plain-Python references on small projects:
the RFM cube, lifecycle transitions, the CLV histogram and the churn calibration bins."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from tests.models.conftest import Row, memory_project
from tests.models.test_rfm_lifecycle import AS_OF, ref_rfm, ref_stage
from userloop.models.base import read_outputs
from userloop.models.churn import ChurnConfig, ChurnModel
from userloop.models.churn_features import ChurnFeatures
from userloop.models.clv_model import CLVConfig, CLVRunModel, value_histogram
from userloop.models.evaluation import calibration_bins
from userloop.models.lifecycle import LifecycleConfig, LifecycleModel
from userloop.models.rfm import RFMConfig, RFMModel

TZ = "Asia/Shanghai"
LIFECYCLE = LifecycleConfig(dormant_days=10, churn_days=30, mature_orders=3, maturity_window_days=20)


def random_rows(seed: int, users: int = 40, days: int = 70, end: datetime = datetime(2026, 3, 16, 12)) -> list[Row]:
    """A few events per user over the ``days`` before ``end``, 15 minutes apart at most, amounts with ties."""
    rng = np.random.default_rng(seed)
    events = ["order_paid", "order_paid", "page_view", "push_received"]
    rows: list[Row] = []
    for uid in range(1, users + 1):
        for _ in range(int(rng.integers(1, 8))):
            when = end - timedelta(minutes=15 * int(rng.integers(0, days * 96)))
            amount = [None, 10.0, 10.0, 25.5, 40.0][int(rng.integers(0, 5))]
            rows.append((uid, events[int(rng.integers(0, 4))], when, amount))
    return rows


def flows(report: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter({(f["from"], f["to"]): f["users"] for f in report["transitions"]})


def ref_flows(rows: list[Row], before: date, now: date) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for uid in {r[0] for r in rows}:
        to = ref_stage(rows, uid, TZ, LIFECYCLE, now)
        if to is not None:
            out[(ref_stage(rows, uid, TZ, LIFECYCLE, before) or "new", to)] += 1
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rfm_cube_counts_the_reference_scores(seed: int) -> None:
    rows = random_rows(seed)
    project = memory_project(rows)
    try:
        run = RFMModel(RFMConfig(window_days=30)).run(project, AS_OF, timezone=TZ)
        want = Counter((r, f, m) for *_, r, f, m in ref_rfm(rows, TZ, 30).values())
        got = {(c["r"], c["f"], c["m"]): c["users"] for c in run.report["cube"]}
        assert got == dict(want)
        assert all(n > 0 for n in got.values()) and sum(got.values()) == run.users == run.report["customers"]
    finally:
        project.store.close()


def test_lifecycle_transitions_since_the_period_start_without_a_previous_run() -> None:
    rows = random_rows(4)
    project = memory_project(rows)
    try:
        report = LifecycleModel(LIFECYCLE).run(project, AS_OF, timezone=TZ).report
        start = AS_OF - timedelta(days=LIFECYCLE.dormant_days)
        period = {"from_date": str(start), "to_date": str(AS_OF), "source": "period_start"}
        assert report["transitions_period"] == period
        assert "transitions_note" not in report
        assert flows(report) == ref_flows(rows, start, AS_OF)
        assert sum(flows(report).values()) == report["users"]
        assert any(a == b for a, b in flows(report))  # people who stay in a stage are listed too
    finally:
        project.store.close()


def test_lifecycle_transitions_since_the_latest_earlier_run() -> None:
    rows = random_rows(5)
    project = memory_project(rows)
    try:
        model = LifecycleModel(LIFECYCLE)
        for day in (AS_OF - timedelta(days=25), AS_OF - timedelta(days=7), AS_OF + timedelta(days=3)):
            model.run(project, day, timezone=TZ)  # a later run is not "previous"
        report = model.run(project, AS_OF, timezone=TZ).report
        before = AS_OF - timedelta(days=7)
        assert report["transitions_period"]["source"] == "previous_run"
        assert report["transitions_period"]["from_date"] == str(before)
        assert flows(report) == ref_flows(rows, before, AS_OF)
        stored = read_outputs(project, "lifecycle", before)
        assert sum(n for (a, _), n in flows(report).items() if a != "new") == len(stored["user_id"])
    finally:
        project.store.close()


def test_lifecycle_without_earlier_stages_says_so_and_lists_nothing() -> None:
    rows: list[Row] = [(1, "order_paid", datetime(2026, 3, 12), 5.0), (2, "page_view", datetime(2026, 3, 13), None)]
    project = memory_project(rows)
    try:
        report = LifecycleModel(LIFECYCLE).run(project, AS_OF, timezone=TZ).report
        assert report["transitions"] == []
        assert report["transitions_note"]["en"] and report["transitions_note"]["zh"]
        assert report["transitions_period"]["source"] == "period_start"
    finally:
        project.store.close()


def ref_histogram(values: list[float]) -> list[tuple[float, float | None, int]]:
    finite = [v for v in values if math.isfinite(v)]
    top = statistics.quantiles(finite, n=100, method="inclusive")[98]
    edges = [top * i / 20 for i in range(21)]
    out = [(edges[i], edges[i + 1], sum(edges[i] <= v < edges[i + 1] or (i == 0 and v < 0) for v in finite))
           for i in range(20)]  # fmt: skip
    return [*out, (top, None, sum(v >= top for v in finite))]


def test_clv_distribution_bins_the_predicted_values() -> None:
    rng = np.random.default_rng(8)
    rows: list[Row] = []
    for uid in range(1, 201):  # a BG/NBD-like process: Poisson purchases, a drop-out chance after each one
        rate, quit, day = rng.gamma(1.0, 0.05), rng.beta(1, 3), int(rng.integers(0, 150))
        while day < 180:
            rows.append((uid, "order_paid", datetime(2025, 9, 18, 10) + timedelta(days=day), float(rng.gamma(2, 20))))
            if rng.random() < quit:
                break
            day += 1 + int(rng.exponential(1 / rate))
    project = memory_project(rows)
    try:
        run = CLVRunModel(CLVConfig(clv_model="bgnbd", validate_models=False)).run(project, AS_OF, timezone=TZ)
        clv = read_outputs(project, "clv", AS_OF)["clv"].tolist()
        got = run.report["distribution"]
        want = ref_histogram(clv)
        assert [b["count"] for b in got] == [n for *_, n in want]
        assert [b["from"] for b in got] == pytest.approx([lo for lo, _, _ in want])
        assert got[-1]["to"] is None and [b["to"] for b in got[:-1]] == pytest.approx([hi for _, hi, _ in want[:-1]])
        assert sum(b["count"] for b in got) == run.users == len(clv)
    finally:
        project.store.close()


def test_value_histogram_degenerate_inputs() -> None:
    assert value_histogram(np.array([])) == []
    assert value_histogram(np.array([0.0, 0.0, np.nan])) == [{"from": 0.0, "to": None, "count": 2}]
    bins = value_histogram(np.array([-1.0, np.nan, *range(100)]))
    assert len(bins) == 21 and sum(b["count"] for b in bins) == 101 and bins[0]["count"] >= 2


def ref_calibration(y: list[int], p: list[float], bins: int = 10) -> list[tuple[float, float, int]]:
    order = sorted(range(len(p)), key=lambda i: p[i])  # stable: ties keep their input order
    groups: dict[int, list[int]] = {}
    for rank, i in enumerate(order):
        groups.setdefault(rank * bins // len(p), []).append(i)
    return [(sum(p[i] for i in g) / len(g), sum(y[i] for i in g) / len(g), len(g)) for _, g in sorted(groups.items())]


@pytest.mark.parametrize("n", [0, 3, 10, 57, 400])
def test_calibration_bins_are_deciles_of_people_by_prediction(n: int) -> None:
    rng = np.random.default_rng(n)
    p = np.round(rng.random(n), 1)  # many ties, as an isotonic map gives
    y = (rng.random(n) < p).astype(np.int8)
    got = calibration_bins(y, p)
    want = ref_calibration(y.tolist(), p.tolist()) if n else []
    assert [b["users"] for b in got] == [n for *_, n in want]
    assert [b["predicted"] for b in got] == pytest.approx([m for m, _, _ in want])
    assert [b["observed"] for b in got] == pytest.approx([o for _, o, _ in want])
    assert sum(b["users"] for b in got) == n and len(got) == min(n, 10)


def test_churn_report_holds_the_validation_calibration() -> None:
    rng = np.random.default_rng(9)
    rows: list[Row] = []
    for uid in range(1, 301):
        rate, first, last = rng.gamma(1.2, 0.05), int(rng.integers(0, 120)), int(rng.integers(20, 200))
        days = [first, *(d for d in range(first + 1, max(first + 1, last)) if rng.random() < rate)]
        rows += [(uid, "order_paid", datetime(2025, 8, 27, 3) + timedelta(days=d), 20.0) for d in days]
    project = memory_project(rows)
    cfg = ChurnConfig(features=ChurnFeatures(profile_flags=()), horizon_days=14, training_snapshots=3,
                      max_iter=10, min_samples_leaf=10)  # fmt: skip
    try:
        validation = ChurnModel(cfg).run(project, AS_OF, timezone=TZ).report["validation"]
        cal = validation["calibration"]
        assert len(cal) == 10 and sum(b["users"] for b in cal) == validation["users"]
        observed = sum(b["observed"] * b["users"] for b in cal) / validation["users"]
        assert observed == pytest.approx(validation["positive_rate"])
        assert [b["predicted"] for b in cal] == sorted(b["predicted"] for b in cal)
    finally:
        project.store.close()
