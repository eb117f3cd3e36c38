"""Segments: saved rules refreshed on two dates keep a membership history that equals the plain-Python reference
on each date (identity merges between the runs included); static, analysis and nested segments; the guards."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.profile.profile_logs import ProfileLog, load_profile_log, profile_logs, reference_people
from tests.profile.reference_rules import World, evaluate
from tests.query.logs import EVENTS, fresh_project, load, person_names, reference_events
from userloop.core.clock import today_in
from userloop.core.errors import ValidationError
from userloop.profile import history, segments
from userloop.query.engine import Engine
from userloop.store import ProjectStore, Workspace

TZS = ("Asia/Shanghai", "America/New_York")


@st.composite
def simple_rules(draw: st.DrawFn) -> dict[str, Any]:
    """Behaviour and profile conditions (tags, models and segments are covered by tests/profile/test_rules.py)."""
    event = draw(st.sampled_from(EVENTS))
    leaf = draw(
        st.sampled_from(
            [
                {"type": "event", "event": event, "count": {"op": "gte", "value": draw(st.integers(1, 3))},
                 "window": {"last": draw(st.integers(1, 20))}},
                {"type": "event", "event": event, "did": False, "window": {"last": draw(st.integers(1, 20))}},
                {"type": "stopped", "event": event, "days": draw(st.integers(1, 10))},
                {"type": "first_time", "event": event, "window": {"last": draw(st.integers(1, 10))}},
                {"type": "property", "property": "city", "op": "in", "value": ["上海", "O'Brien"]},
                {"type": "property", "property": "vip", "op": "eq", "value": True},
            ]
        )
    )  # fmt: skip
    if draw(st.booleans()):
        other = {"type": "event", "event": draw(st.sampled_from(EVENTS)), "window": {"last": 30}}
        return {draw(st.sampled_from(["all", "any"])): [leaf, other]}
    return leaf


def _members(project: ProjectStore, segment: segments.Segment, on: date, names: dict[int, str]) -> set[str]:
    from userloop.query.compile import render

    with project.store.lock:
        rows = project.con.execute(render(segments.members(project.schema, segment, on))).fetchall()
    return {names[r[0]] for r in rows}


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log=profile_logs(), rule=simple_rules(), tz=st.sampled_from(TZS), split=st.floats(0.2, 0.8))
def test_membership_history_equals_the_reference_on_each_date(
    ws: Workspace, log: ProfileLog, rule: dict[str, Any], tz: str, split: float
) -> None:
    name, project = fresh_project(ws, tz)
    info = ws.project_info(name)
    cut = int(len(log.events) * split)
    first = ProfileLog(log.profiles, log.events[:cut], log.start)
    load_profile_log(project, first)
    d1 = log.start + timedelta(days=3)
    d2 = log.start + timedelta(days=12)
    seg = segments.save(ws.meta, project, info, name="s", rule=rule)
    segments.refresh(ws.meta, project, info, seg.id, run_date=d1)
    names1 = person_names(project)
    ids1 = {u for u in names1 if u in _ids(project, seg, d1)}
    load(project, log.events[cut:])  # later events merge some persons into others
    segments.refresh(ws.meta, project, info, seg.id, run_date=d2)
    names2 = person_names(project)

    want1 = evaluate(rule, World(tz, d1, reference_events(first.events), reference_people(first)))
    want2 = evaluate(rule, World(tz, d2, reference_events(log.events), reference_people(log)))
    assert {names1[u] for u in ids1} == want1
    assert _members(project, seg, d2, names2) == want2
    ids2 = _ids(project, seg, d2)
    changes = segments.changes(project, segments.get(ws.meta, info.id, seg.id), d2)
    assert set(changes["entered"]) == ids2 - ids1 and set(changes["left"]) == ids1 - ids2
    assert segments.get(ws.meta, info.id, seg.id).size == len(want2)
    est = segments.estimate(project, ws.meta, info, rule, today=d2)
    assert est["size"] == len(want2)


def _ids(project: ProjectStore, segment: segments.Segment, on: date) -> set[int]:
    from userloop.query.compile import render

    with project.store.lock:
        return {r[0] for r in project.con.execute(render(segments.members(project.schema, segment, on))).fetchall()}


@pytest.fixture(scope="module")
def shop(ws: Workspace) -> tuple[str, ProjectStore]:
    from tests.profile.test_rules import NAMED_LOG

    name, project = fresh_project(ws, "Asia/Shanghai")
    load_profile_log(project, NAMED_LOG)
    return name, project


def test_static_segments_keep_valid_ids_and_list_the_rest(ws: Workspace, shop: tuple[str, ProjectStore]) -> None:
    name, project = shop
    info = ws.project_info(name)
    row, rejects = segments.create_static(ws.meta, project, info, name="list", ids=["L1", "a3", "nobody", "L1"])
    assert row.size == 2 and row.kind == "static"
    assert rejects == [{"row": 3, "id": "nobody", "reason": "no person has this id"}]
    with pytest.raises(ValidationError, match="none of the ids"):
        segments.create_static(ws.meta, project, info, name="empty", ids=["ghost"])
    with pytest.raises(ValidationError, match="fixed"):
        segments.refresh(ws.meta, project, info, row.id)


def test_a_funnel_s_dropped_people_become_a_segment(ws: Workspace, shop: tuple[str, ProjectStore]) -> None:
    name, project = shop
    info = ws.project_info(name)
    funnel = {"kind": "funnel", "date_range": {"from": "2026-03-01", "to": "2026-03-10"},
              "steps": [{"event": "view"}, {"event": "pay"}], "people": {"step": 2, "status": "dropped"}}  # fmt: skip
    expected = Engine(project, info.timezone).run(funnel, use_cache=False).result["people"]["user_ids"]
    if not expected:
        with pytest.raises(ValidationError, match="no people"):
            segments.create_from_analysis(ws.meta, project, info, name="dropped", definition=funnel)
        return
    row = segments.create_from_analysis(ws.meta, project, info, name="dropped", definition=funnel)
    assert _ids(project, row, today_in(info.timezone)) == set(expected)
    with pytest.raises(ValidationError, match="people"):
        segments.create_from_analysis(ws.meta, project, info, name="x", definition={**funnel, "people": None})


def test_nested_segments_refresh_in_order_and_refuse_cycles_and_deletes(
    ws: Workspace, shop: tuple[str, ProjectStore]
) -> None:
    name, project = shop
    info = ws.project_info(name)
    day = date(2026, 3, 10)
    base = segments.save(ws.meta, project, info, name="payers", rule={"type": "event", "event": "pay",
                         "window": {"last": 30}})  # fmt: skip
    with pytest.raises(ValidationError, match="no members yet"):
        segments.save(ws.meta, project, info, name="x", rule={"type": "segment", "segment": base.id})
    segments.refresh(ws.meta, project, info, base.id, run_date=day)
    outer = segments.save(ws.meta, project, info, name="not payers",
                          rule={"type": "segment", "segment": base.id, "member": False})  # fmt: skip
    done = segments.refresh_all(ws.meta, project, info, day)
    assert list(done)[:2] == [str(base.id), str(outer.id)]  # the referenced segment first
    everyone = project.con.execute(f"SELECT count(*) FROM {project.table('users')}").fetchall()[0][0]
    assert done[str(base.id)] + done[str(outer.id)] == everyone
    with pytest.raises(ValidationError, match="itself"):
        segments.update(ws.meta, project, info, base.id, rule={"type": "segment", "segment": outer.id})
    with pytest.raises(ValidationError, match="used by"):
        segments.delete(ws.meta, project, info, base.id)
    segments.delete(ws.meta, project, info, outer.id)
    segments.delete(ws.meta, project, info, base.id)
    assert not history.exists(project, base.table)
    again = segments.save(ws.meta, project, info, name="again", rule={"type": "stopped", "event": "pay", "days": 3})
    segments.refresh(ws.meta, project, info, again.id, run_date=day)
    with pytest.raises(ValidationError, match="forward"):
        segments.refresh(ws.meta, project, info, again.id, run_date=day - timedelta(days=1))
