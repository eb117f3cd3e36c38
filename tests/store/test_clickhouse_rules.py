"""Segment rules give the same people on DuckDB and on ClickHouse: the random worlds and rules of
tests/profile/test_rules.py (profiles, identity merges, tag and segment histories, model runs) loaded into DuckDB,
mirrored into ClickHouse's engine in process (chdb), and each rule compiled once and run on both backends; the
person keys and the rule's count must be equal. Also the named examples of test_rules.py, and tag values: random
event tags of tests/profile/test_tags_reference.py, profile tags of every derivation and model tags on the rule
worlds' model runs, one compiled snapshot
statement (:mod:`userloop.profile.tagsql`) run on both, every cell equal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.profile.profile_logs import ProfileLog, load_profile_log, profile_logs
from tests.profile.reference_rules import World, install
from tests.profile.test_rules import NAMED, TZS, named_world, scenarios
from tests.profile.test_rules import context as rule_context
from tests.profile.test_tags_reference import SEEDS, SHIFTS, event_tags
from tests.query.logs import BASE_MS, event_logs, fresh_project, load, shift
from tests.store.test_clickhouse_parity import same
from userloop.profile import tagsql
from userloop.profile.rulesql import RuleContext, compile_rule, count_rule
from userloop.profile.tagdefs import parse_tag
from userloop.store import ProjectStore, Workspace
from userloop.store.clickhouse import ClickHouseProject, ClickHouseStore
from userloop.store.mirror import copy_project

SETTINGS = settings(
    max_examples=examples(5),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def both(duck: ProjectStore, copy: ClickHouseProject, rctx: RuleContext, rule: Any) -> None:
    """The same compiled tree on both backends: the same person keys and the same count."""
    people, count = compile_rule(rule, rctx), count_rule(rule, rctx)
    want = sorted(r[0] for r in duck.fetchall(people))
    got = sorted(r[0] for r in copy.fetchall(people))
    assert got == want, (rule, f"ClickHouse only: {sorted(set(got) - set(want))}",
                         f"DuckDB only: {sorted(set(want) - set(got))}", copy.store.render(people))  # fmt: skip
    assert copy.scalar(count) == duck.scalar(count) == len(want), rule


@SETTINGS
@given(scenario=scenarios())
def test_rules_give_the_same_people(
    ws: Workspace, ch: ClickHouseStore, scenario: tuple[ProfileLog, World, list[dict[str, Any]], int]
) -> None:
    log, w, drawn, chunks = scenario
    _, duck = fresh_project(ws, w.timezone)
    load_profile_log(duck, log, chunks=chunks)
    install(duck, w)
    rctx = rule_context(duck, w)
    copy_project(duck, ch)
    copy = ch.project(duck.schema)
    for rule in drawn:
        both(duck, copy, rctx, rule)
    # model tags read the same runs of the mirrored model table
    ctx = tagsql.context(duck, w.timezone, w.today)
    for name, kind in (("prob", "number"), ("tier", "string"), ("flag", "bool")):
        tag = parse_tag({"name": name, "kind": "predictive", "type": kind,
                         "source": {"from": "model", "model": "test", "field": name}})  # fmt: skip
        same_rows(duck, copy, tagsql.model_select(ctx, tag, tagsql.check(tag, duck, ctx), w.today), tag)


@pytest.fixture(scope="module")
def named(ws: Workspace, ch: ClickHouseStore) -> tuple[ProjectStore, ClickHouseProject, RuleContext]:
    duck, rctx, _ = named_world(ws)
    copy_project(duck, ch)
    return duck, ch.project(duck.schema), rctx


def test_named_examples(named: tuple[ProjectStore, ClickHouseProject, RuleContext]) -> None:
    duck, copy, rctx = named
    for rule, _ in NAMED.values():
        both(duck, copy, rctx, rule)


# tag values -------------------------------------------------------------------------------------------------------
def same_rows(duck: ProjectStore, copy: ClickHouseProject, query: Any, what: Any) -> None:
    """The same rows (ordered by person) on both backends, cell by cell (:func:`same`)."""
    want = sorted(duck.fetchall(query), key=lambda r: r[0])
    got = sorted(copy.fetchall(query), key=lambda r: r[0])
    assert same(got, want), (what, got, want, copy.store.render(query))


@SETTINGS
@given(data=st.data())
def test_event_tags_give_the_same_values(ws: Workspace, ch: ClickHouseStore, data: st.DataObject) -> None:
    tz = data.draw(st.sampled_from(list(SHIFTS)), label="timezone")
    days = data.draw(st.sampled_from(SHIFTS[tz]), label="shift")
    records = [*SEEDS, *shift(data.draw(event_logs(max_events=30)), days)]
    log_start = datetime.fromtimestamp(BASE_MS / 1000, UTC).date() + timedelta(days=days)
    defs = [data.draw(event_tags(f"t{i}", log_start), label=f"t{i}") for i in range(data.draw(st.integers(1, 4)))]
    run_date = log_start + timedelta(days=data.draw(st.integers(-1, 23), label="run date"))
    _, duck = fresh_project(ws, tz)
    load(duck, records, chunks=data.draw(st.integers(1, 3), label="chunks"))
    copy_project(duck, ch)
    ctx = tagsql.context(duck, tz, run_date)
    planned = [(tag, tagsql.check(tag, duck, ctx)) for tag in map(parse_tag, defs)]
    # a local day on or before the earliest event (the seeds lie a year before the log)
    first_day = log_start - timedelta(days=400)
    same_rows(duck, ch.project(duck.schema), tagsql.event_batch(ctx, planned, run_date, first_day), defs)


PROFILE_TAGS: list[dict[str, Any]] = [
    {"name": "city", "type": "string", "source": {"property": "city"}},
    {"name": "city_enum", "type": "enum", "values": ["上海", "北京"], "source": {"property": "city"}},
    {"name": "age", "type": "number", "source": {"property": "age"}},
    {"name": "age_band", "type": "enum", "bins": {"edges": [20, 40], "labels": ["young", "mid", "old"]},
     "source": {"property": "age"}},
    {"name": "vip", "type": "bool", "source": {"property": "vip"}},
    {"name": "birthday", "type": "date", "source": {"property": "birthday"}},
    {"name": "years", "type": "number", "source": {"property": "birthday", "derive": "years_since"}},
    {"name": "bday", "type": "string", "source": {"property": "birthday", "derive": "month_day"}},
    {"name": "born_days", "type": "number", "source": {"property": "birthday", "derive": "days_since"}},
    {"name": "seen_day", "type": "date", "source": {"property": "last_seen"}},
    {"name": "tenure", "type": "number", "source": {"property": "first_seen", "derive": "days_since"}},
    {"name": "seen_md", "type": "string", "source": {"property": "last_seen", "derive": "month_day"}},
]  # fmt: skip


@SETTINGS
@given(log=profile_logs(max_events=20, days=8), tz=st.sampled_from(TZS), offset=st.integers(-3, 12))
def test_profile_tags_give_the_same_values(
    ws: Workspace, ch: ClickHouseStore, log: ProfileLog, tz: str, offset: int
) -> None:
    _, duck = fresh_project(ws, tz)
    load_profile_log(duck, log)
    copy_project(duck, ch)
    run_date: date = log.start + timedelta(days=offset)
    ctx = tagsql.context(duck, tz, run_date)
    defs = [{**d, "kind": "basic", "source": {"from": "profile", **d["source"]}} for d in PROFILE_TAGS]
    planned = [(tag, tagsql.check(tag, duck, ctx)) for tag in map(parse_tag, defs)]
    same_rows(duck, ch.project(duck.schema), tagsql.profile_batch(ctx, planned, run_date), run_date)
