"""The report after launch of a journey that really ran (the engage fixture's workspace, SMTP sink, coupons): its
exposures written once from the runs, its per-arm numbers against a brute-force recount of the events table, and
the branches against the split's control branch and the global control group.

The journey: people who sign up are split 50 / 30 / 20 into ``coupon`` (an e-mail with a 10-yuan coupon),
``plain`` (a reminder e-mail) and ``control`` (nothing); 25 % of everyone is in the global control group, whose
e-mails are suppressed. Orders, unsubscribes and page views follow by a fixed rule per person, some inside the
3-day goal window and some after it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from tests.engage.conftest import Env, Person, env
from userloop.engage.settings import load as load_settings
from userloop.experiment.assignment import EXPOSURE_EVENT, in_global_control, journey_experiment, record_exposures
from userloop.experiment.report import journey_report
from userloop.ops import find
from userloop.ops.base import OpContext

T0 = datetime(2026, 3, 2, 2, 0)
WINDOW = timedelta(days=3)
JOURNEY = {
    "name": "signup-coupon",
    "entry": {"kind": "event", "event": "signup"},
    "start": "ab",
    "nodes": [
        {"kind": "split", "id": "ab", "branches": [
            {"name": "coupon", "percent": 50, "next": "c"},
            {"name": "plain", "percent": 30, "next": "r"},
            {"name": "control", "percent": 20, "control": True}]},
        {"kind": "send", "id": "c", "channel": "mail", "material": "welcome", "benefit": "welcome10"},
        {"kind": "send", "id": "r", "channel": "mail", "material": "reminder"},
    ],
    "goal": {"event": "order_paid", "within_seconds": int(WINDOW.total_seconds()), "exit": False},
}  # fmt: skip

__all__ = ["env"]  # the engage fixture, used here


def _run(env: Env) -> tuple[int, Any]:
    people = [Person(f"p{i:03d}") for i in range(90)]
    env.add_people(people)
    env.rules(caps=[], quiet_hours=None, control_share=0.25)
    jid = env.start(JOURNEY, T0 - timedelta(minutes=1))
    engine = env.engine()
    engine.step(T0)
    env.track([(p.did, "signup", T0 + timedelta(minutes=1)) for p in people], loaded_at=T0 + timedelta(minutes=1))
    engine.step(T0 + timedelta(minutes=2))
    engine.step(T0 + timedelta(minutes=3))  # the deliveries' events
    branch = _branches(env, jid)
    orders = [(p.did, "order_paid", T0 + timedelta(hours=20)) for p in people
              if int(p.did[1:]) % 3 == 0 or (branch[p.did] == "coupon" and int(p.did[1:]) % 4 == 1)]  # fmt: skip
    env.track(orders, loaded_at=T0 + timedelta(days=1), order_amount=30.0)
    late = [(p.did, "order_paid", T0 + timedelta(days=4)) for p in people if int(p.did[1:]) % 5 == 0]
    env.track(late, loaded_at=T0 + timedelta(days=4), order_amount=99.0)
    env.track([(p.did, "page_view", T0 + timedelta(days=2)) for p in people if int(p.did[1:]) % 2 == 0],
              loaded_at=T0 + timedelta(days=4))  # fmt: skip
    env.track([(p.did, "$unsubscribed", T0 + timedelta(hours=2)) for p in people if int(p.did[1:]) % 17 == 3],
              loaded_at=T0 + timedelta(days=4))  # fmt: skip
    engine.step(T0 + timedelta(days=5))
    saved = env.journeys().get(jid)
    found = journey_report(env.meta, env.info, env.store, jid, saved.definition, T0 + timedelta(days=6))
    return jid, found


def _branches(env: Env, jid: int) -> dict[str, str]:
    """Each person's branch at the split, from the runs' paths."""
    with env.meta.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT person, path FROM journey_runs WHERE journey_id = ?", (jid,)).all()
    by_key = {v: k for k, v in env.keys.items()}
    return {by_key[int(p)]: dict(s.split(":") for s in path.split("|"))["ab"] for p, path in rows}


def _recount(env: Env, jid: int) -> dict[tuple[str, bool], dict[str, float]]:
    """Per (branch, global control): people, converters, revenue, cost and unsubscribed, by reading the events
    table row by row in Python."""
    settings = load_settings(env.meta, env.info.id)
    entered = dict(env.sql("SELECT distinct_id, min(time) FROM {events} WHERE event = 'signup' GROUP BY 1"))
    rows = env.sql("SELECT distinct_id, event, time, order_amount FROM {events}")
    out: dict[tuple[str, bool], dict[str, float]] = {}
    for did, arm in _branches(env, jid).items():
        t0 = entered[did]
        mine = [r for r in rows if r[0] == did and t0 <= r[2] < t0 + WINDOW]
        key = (arm, in_global_control(settings, env.keys[did]))
        a = out.setdefault(key, dict.fromkeys(("n", "conv", "rev", "cost", "unsub"), 0.0))
        a["n"] += 1
        a["conv"] += any(r[1] == "order_paid" for r in mine)
        a["rev"] += sum(r[3] for r in mine if r[1] == "order_paid")
        a["cost"] += 10.0 * sum(r[1] == "$benefit_granted" for r in mine)
        a["unsub"] += any(r[1] == "$unsubscribed" for r in mine)
    return out


def test_a_journey_report_recounts_compares_with_both_controls_and_exposes_once(env: Env) -> None:
    jid, found = _run(env)
    want = _recount(env, jid)
    split = journey_experiment(jid, "ab")
    got = {(a.variant, a.global_control): a for a in found.arms if a.experiment == split}
    assert set(got) == set(want) and len(want) == 6  # three branches, each with people held out globally
    for key, w in want.items():
        a = got[key]
        assert (a.people, a.conversions, a.unsubscribed) == (w["n"], w["conv"], w["unsub"]), key
        assert (a.revenue, a.cost) == (w["rev"], w["cost"]), key
    # the globally held out were granted nothing; the coupon branch's others were granted one each
    assert got[("coupon", True)].cost == 0 and got[("coupon", False)].cost == 10.0 * got[("coupon", False)].people
    entry = {a.global_control: a.people for a in found.arms if a.experiment == journey_experiment(jid)}
    assert entry == {
        gc: sum(w["n"] for (_, g), w in want.items() if g == gc) for gc in (True, False)
    }  # fmt: skip
    pairs = Counter((c.experiment, c.treatment, c.against) for c in found.comparisons if c.metric == "conversion")
    assert pairs == Counter({
        (split, "coupon", "control_branch"): 2, (split, "plain", "control_branch"): 2,
        (split, "coupon", "global_control"): 2, (split, "plain", "global_control"): 2,
        (journey_experiment(jid), "entered", "global_control"): 2,
    })  # fmt: skip
    (srm_split,) = [s for s in found.srm if s.experiment == split]
    assert srm_split.weights == [50, 30, 20] and sum(srm_split.counts) == 90
    assert any(s.zh.startswith("节点 ab：「coupon」组比对照组转化率") for s in found.sentences)
    assert any(s.en.startswith("Overall: People in the journey convert") for s in found.sentences)

    # the operation answers the same (and writes no exposure twice)
    op = find("experiments.journey_report")
    req = op.request.model_validate({"journey": JOURNEY["name"], "as_of": T0 + timedelta(days=6)})
    assert op.fn(OpContext(env.ws, project=env.info), req) == found
    # the exposures were written once, and writing them again adds nothing
    counted = env.sql("SELECT count(*), count(DISTINCT event_id) FROM {events} WHERE event = ?", [EXPOSURE_EVENT])
    assert counted == [(180, 180)]  # 90 entries and 90 passages of the split
    assert record_exposures(env.meta, env.info, env.store) == 0
    assert env.sql("SELECT count(*) FROM {events} WHERE event = ?", [EXPOSURE_EVENT]) == [(180,)]
    assert env.store.is_passive(EXPOSURE_EVENT)
