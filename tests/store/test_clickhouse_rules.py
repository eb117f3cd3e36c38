"""Segment rules give the same people on DuckDB and on ClickHouse: the random worlds and rules of
tests/profile/test_rules.py (profiles, identity merges, tag and segment histories, model runs) loaded into DuckDB,
mirrored into ClickHouse's engine in process (chdb), and each rule compiled once and run on both backends; the
person keys and the rule's count must be equal. Also the named examples of test_rules.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.conftest import examples
from tests.profile.profile_logs import ProfileLog, load_profile_log
from tests.profile.reference_rules import World, install
from tests.profile.test_rules import NAMED, named_world, scenarios
from tests.profile.test_rules import context as rule_context
from tests.query.logs import fresh_project
from userloop.profile.rulesql import RuleContext, compile_rule, count_rule
from userloop.store import ProjectStore, Workspace
from userloop.store.clickhouse import ClickHouseProject, ClickHouseStore
from userloop.store.mirror import copy_project

SETTINGS = settings(
    max_examples=examples(5),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    workspace, _ = Workspace.init(tmp_path_factory.mktemp("rules") / "ws")
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def ch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(f"chdb://{tmp_path_factory.mktemp('rules') / 'ch'}")
    yield store
    store.close()


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


@pytest.fixture(scope="module")
def named(ws: Workspace, ch: ClickHouseStore) -> tuple[ProjectStore, ClickHouseProject, RuleContext]:
    duck, rctx, _ = named_world(ws)
    copy_project(duck, ch)
    return duck, ch.project(duck.schema), rctx


def test_named_examples(named: tuple[ProjectStore, ClickHouseProject, RuleContext]) -> None:
    duck, copy, rctx = named
    for rule, _ in NAMED.values():
        both(duck, copy, rctx, rule)
