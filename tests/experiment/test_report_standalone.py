"""The report after launch of a standalone experiment (exposures recorded by an app): per-arm numbers against a
recount of the events in Python, the statistics against :mod:`userloop.experiment.stats` called by hand, the
sample ratio alert on a skewed split, the sentences in both languages, the HTML page's escaping, and the
operations through a real server and the CLI.

The scenario is fixed (no randomness): 400 people exposed to ``checkout`` (``control`` / ``coupon``) and 300 to
``banner`` split 240 / 60 although planned 50 / 50; orders, coupons granted and unsubscribes at fixed times, some
inside the 7-day window after exposure and some outside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tests.collect.serving import Server
from userloop.benefits import BenefitRow
from userloop.cli.main import app
from userloop.core.errors import NotFoundError
from userloop.experiment.assignment import Standalone
from userloop.experiment.report import Report, standalone_report
from userloop.experiment.report_page import page
from userloop.experiment.stats import Proportion, adjust, lift, t_test
from userloop.ingest.api import load_table
from userloop.ops import find
from userloop.ops.base import OpContext
from userloop.query.spec import Filter
from userloop.stats import Moments
from userloop.store import Workspace

T0 = datetime(2026, 5, 4, 2, 0)
AS_OF = datetime(2026, 6, 1)
WINDOW = 7 * 86_400
HOSTILE = '<script>alert("x")</script>'
PASSIVE = ("$experiment_exposure", "$benefit_granted")


def _ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)


@dataclass
class Built:
    path: Path
    admin: str
    records: list[dict[str, Any]]
    checkout: Report
    banner: Report
    big_orders: Report


def _scenario() -> list[dict[str, Any]]:
    """Exposures, orders, grants, unsubscribes and page views, by a fixed rule per person."""
    out: list[dict[str, Any]] = []

    def add(did: str, event: str, at: datetime, **props: Any) -> None:
        out.append({"type": "track", "event": event, "distinct_id": did, "time": _ms(at),
                    "event_id": f"t{len(out)}", **props})  # fmt: skip

    for i in range(400):
        did, variant = f"c{i:03d}", "coupon" if i % 2 else "control"
        seen = T0 + timedelta(hours=i % 48)
        add(did, "$experiment_exposure", seen, experiment="checkout", variant=variant)
        if i % 5 == 0:  # exposed again later: the first exposure counts
            add(did, "$experiment_exposure", seen + timedelta(days=2), experiment="checkout", variant="control")
        if variant == "coupon":
            add(did, "$benefit_granted", seen + timedelta(minutes=1), benefit="cart10")
        if i % 4 == 1 or i % 10 == 0:  # coupon arm converts more
            add(did, "order_paid", seen + timedelta(days=1), order_amount=float(20 + i % 37))
        if i % 9 == 0:  # outside the window: not counted
            add(did, "order_paid", seen + timedelta(days=8), order_amount=99.0)
        if i % 3 == 0:
            add(did, "page_view", seen + timedelta(days=2))
        if i % 50 == 7:
            add(did, "$unsubscribed", seen + timedelta(hours=3))
    for i in range(300):
        did = f"b{i:03d}"
        variant = "big" if i % 5 == 0 else HOSTILE if i == 1 else "small"
        add(did, "$experiment_exposure", T0, experiment="banner", variant=variant)
        if i % 6 == 0:
            add(did, "order_paid", T0 + timedelta(hours=5), order_amount=10.0)
    return out


def _table(records: list[dict[str, Any]]) -> pa.Table:
    names = sorted({k for r in records for k in r})
    return pa.Table.from_pylist([{k: r.get(k) for k in names} for r in records])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    path = tmp_path_factory.mktemp("standalone") / "ws"
    ws, secrets = Workspace.init(path)
    assert secrets.admin_token
    try:
        store, info = ws.project(), ws.project_info()
        records = _scenario()
        assert load_table(store, _table(records), source="test", now_ms=_ms(AS_OF)).rejected == 0
        with ws.meta.session.begin() as s:
            s.add(BenefitRow(project_id=info.id, name="cart10", amount=10.0, threshold=50.0))
        checkout = standalone_report(ws.meta, info, store, Standalone(name="checkout"), "order_paid", WINDOW, AS_OF)
        banner = standalone_report(ws.meta, info, store, Standalone(name="banner", control="small",
                                   weights={"small": 50, "big": 50}), "order_paid", WINDOW, AS_OF)  # fmt: skip
        big = [Filter(property="order_amount", op="gte", value=40)]
        big_orders = standalone_report(ws.meta, info, store, Standalone(name="checkout"), "order_paid", WINDOW, AS_OF,
                                       goal_filters=big)  # fmt: skip
    finally:
        ws.close()
    return Built(path, secrets.admin_token, records, checkout, banner, big_orders)


def _recount(records: list[dict[str, Any]], experiment: str, least: float = 0.0) -> dict[str, dict[str, float]]:
    """Per variant, from the records themselves: people, converters, revenue, Σ revenue², cost, unsubscribed."""
    first: dict[str, tuple[int, str]] = {}
    for r in records:
        exposed = r["event"] == "$experiment_exposure" and r["experiment"] == experiment
        if exposed and (r["distinct_id"] not in first or r["time"] < first[r["distinct_id"]][0]):
            first[r["distinct_id"]] = (r["time"], r["variant"])
    out: dict[str, dict[str, float]] = {}
    for did, (t0, variant) in first.items():
        mine = [r for r in records if r["distinct_id"] == did and t0 <= r["time"] < t0 + WINDOW * 1000
                and (r["event"] != "order_paid" or r["order_amount"] >= least)]  # fmt: skip
        revenue = sum(r["order_amount"] for r in mine if r["event"] == "order_paid")
        arm = out.setdefault(variant, dict.fromkeys(("n", "conv", "rev", "rev2", "cost", "unsub", "churn"), 0.0))
        active = [r["time"] for r in records if r["distinct_id"] == did and r["event"] not in PASSIVE]
        arm["churn"] += not active or max(active) < t0 + 86_400_000
        arm["n"] += 1
        arm["conv"] += any(r["event"] == "order_paid" for r in mine)
        arm["rev"] += revenue
        arm["rev2"] += revenue * revenue
        arm["cost"] += 10.0 * sum(r["event"] == "$benefit_granted" for r in mine)
        arm["unsub"] += any(r["event"] == "$unsubscribed" for r in mine)
    return out


def test_per_arm_numbers_equal_a_recount_of_the_events(built: Built) -> None:
    want = _recount(built.records, "checkout")
    got = {a.variant: a for a in built.checkout.arms}
    assert set(got) == set(want) == {"control", "coupon"}
    for variant, w in want.items():
        a = got[variant]
        assert (a.people, a.conversions, a.unsubscribed, a.churned) == (w["n"], w["conv"], w["unsub"], w["churn"])
        assert a.revenue == pytest.approx(w["rev"]) and a.cost == pytest.approx(w["cost"])


def test_a_goal_filter_counts_only_the_goal_events_it_keeps(built: Built) -> None:
    want = _recount(built.records, "checkout", least=40.0)
    got = {a.variant: (a.conversions, a.revenue) for a in built.big_orders.arms}
    assert got == {v: (w["conv"], pytest.approx(w["rev"])) for v, w in want.items()}
    assert got != {a.variant: (a.conversions, a.revenue) for a in built.checkout.arms}


def test_the_statistics_are_those_of_the_stats_package(built: Built) -> None:
    w = _recount(built.records, "checkout")
    c, t = w["control"], w["coupon"]
    conv = t_test(lift(Proportion(int(c["n"]), c["conv"]), Proportion(int(t["n"]), t["conv"]), "absolute"))
    revenue = t_test(lift(Moments(int(c["n"]), c["rev"], c["rev2"]), Moments(int(t["n"]), t["rev"], t["rev2"])))
    rows = {(x.metric, x.scale): x for x in built.checkout.comparisons}
    got = rows[("conversion", "absolute")]
    assert (got.treatment, got.control, got.against) == ("coupon", "control", "control_variant")
    assert (got.estimate, got.low, got.high, got.p_value) == pytest.approx((conv.estimate, conv.low, conv.high,
                                                                            conv.p_value), abs=1e-12)  # fmt: skip
    got = rows[("revenue_per_person", "relative")]
    assert (got.estimate, got.low, got.high) == pytest.approx((revenue.estimate, revenue.low, revenue.high), abs=1e-12)
    absolute = {i: None if x.code else x.p_value for i, x in enumerate(built.checkout.comparisons)
                if x.scale == "absolute"}  # fmt: skip
    holm = adjust(absolute, "holm")
    assert {i: built.checkout.comparisons[i].p_adjusted for i in absolute} == holm
    assert all(x.p_adjusted is None for x in built.checkout.comparisons if x.scale == "relative")
    (back,) = built.checkout.returns
    added = t["rev"] / t["n"] - c["rev"] / c["n"]
    assert back.return_per_cost == pytest.approx(added / (t["cost"] / t["n"]))


def test_a_balanced_split_raises_no_alarm_and_a_skewed_one_does(built: Built) -> None:
    (balanced,) = built.checkout.srm
    assert balanced.counts == [200, 200] and not balanced.alert
    (skewed,) = built.banner.srm
    assert (skewed.arms, skewed.counts, skewed.alert) == (["small", "big"], [239, 60], True)
    assert skewed.p_value < 1e-10
    alarm = built.banner.sentences[0]
    assert alarm.zh.startswith("样本比例失衡（SRM）") and alarm.en.startswith("Sample ratio mismatch")


def test_the_sentences_in_both_languages(built: Built) -> None:
    c = next(x for x in built.checkout.comparisons if x.metric == "conversion" and x.scale == "absolute")
    back = built.checkout.returns[0]
    assert back.return_per_cost is not None
    zh = (f"整体：「coupon」组比对照组转化率高 {c.estimate * 100:.1f} 个百分点（95% 置信区间 {c.low * 100:.1f}–"
          f"{c.high * 100:.1f}），每花 1 元券带来 {back.return_per_cost:.1f} 元 GMV")  # fmt: skip
    en = (f"Overall: 'coupon' converts {c.estimate * 100:.1f} percentage points more than the control group (95% CI "
          f"{c.low * 100:.1f} to {c.high * 100:.1f}); each 1 yuan of benefits brings {back.return_per_cost:.1f} "
          "yuan of GMV")  # fmt: skip
    first = built.checkout.sentences[0]
    assert first.zh.startswith(zh) and first.en.startswith(en), (first, zh, en)
    assert c.estimate > 0 and c.significant


def test_the_page_escapes_every_name_and_stands_alone(built: Built) -> None:
    html = page(built.banner)
    assert HOSTILE not in html and "&lt;script&gt;" in html
    assert "<script" not in html and "http" not in html and " src=" not in html
    assert html.startswith("<!doctype html>") and "样本比例失衡" in html


def test_the_routes_and_the_command_answer_the_same(built: Built, tmp_path: Path) -> None:
    op = find("experiments.report")
    assert (op.method, op.path, op.right) == ("POST", "/api/v1/experiments/report", "read")
    server = Server(built.path, "", built.admin).start()
    try:
        body = {"name": "checkout", "goal": "order_paid", "window_days": 7, "as_of": AS_OF.isoformat()}
        ok = httpx.post(f"{server.url}/api/v1/experiments/report", headers=server.admin, json=body, timeout=30)
        assert ok.status_code == 200, ok.text
        assert ok.json() == op.dump(built.checkout)
        listed = httpx.get(f"{server.url}/api/v1/experiments", headers=server.admin, timeout=30)
        assert listed.status_code == 200, listed.text
        assert {(e["name"], v["variant"], v["people"]) for e in listed.json() for v in e["variants"]} == {
            ("checkout", "control", 200), ("checkout", "coupon", 200), ("banner", "big", 60),
            ("banner", "small", 239), ("banner", HOSTILE, 1)}  # fmt: skip
        missing = httpx.post(f"{server.url}/api/v1/experiments/report", headers=server.admin,
                             json={**body, "name": "nope"}, timeout=30)  # fmt: skip
        assert (missing.status_code, missing.json()["error"]["field"]) == (404, "name")
        bad = httpx.post(f"{server.url}/api/v1/experiments/report", headers=server.admin,
                         json={**body, "window_days": 0}, timeout=30)  # fmt: skip
        assert bad.status_code == 422
        assert httpx.post(f"{server.url}/api/v1/experiments/report", json=body, timeout=30).status_code == 401
        planned = httpx.post(f"{server.url}/api/v1/experiments/plan", headers=server.admin, timeout=30,
                             json={"goal": "order_paid", "as_of": (T0 + timedelta(days=3)).isoformat()})  # fmt: skip
        assert planned.status_code == 200, planned.text
        assert planned.json()["audience"] == 700 and planned.json()["baseline"]["people"] == 700
    finally:
        server.stop()
    runner = CliRunner()
    args = ["experiments", "report", "--experiment", "checkout", "--goal", "order_paid", "-w", str(built.path),
            "--as-of", AS_OF.isoformat()]  # fmt: skip
    shown = runner.invoke(app, args, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "Arms / 各组" in shown.output and "• 整体：「coupon」组比对照组转化率高" in shown.output
    out = tmp_path / "report.html"
    as_json = runner.invoke(app, [*args, "--json", "--html", str(out)], catch_exceptions=False)
    assert json.loads(as_json.output) == op.dump(built.checkout)
    assert out.read_text(encoding="utf-8") == page(built.checkout)


def test_the_operation_in_process_matches(built: Built) -> None:
    ws = Workspace.open(built.path)
    try:
        op = find("experiments.report")
        info = ws.project_info()
        req = op.request.model_validate({"name": "checkout", "goal": "order_paid", "as_of": AS_OF})
        assert op.fn(OpContext(ws, project=info), req) == built.checkout
        unknown = op.request.model_validate({"name": "checkout", "goal": "order_paid", "variant_property": "arm"})
        with pytest.raises(NotFoundError, match="exposes anyone to 'checkout'"):
            op.fn(OpContext(ws, project=info), unknown)
    finally:
        ws.close()
