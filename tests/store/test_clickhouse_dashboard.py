"""The whole core-metrics dashboard and every starter tag give the same cells on DuckDB and on ClickHouse, on the
simulated workspace (the session's ``simulated`` fixture) mirrored into chdb: every panel's result and warnings,
and every person's value of every starter tag (event, profile and model tags), equal as :func:`same` allows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.store.conftest import SIM_END
from tests.store.test_clickhouse_parity import same
from userloop.profile import tags, tagsql
from userloop.profile.tagdefs import EventSource, ModelSource, ProfileSource, TagDef
from userloop.query.dashboards import core_metrics
from userloop.query.engine import Engine
from userloop.store import Workspace
from userloop.store.clickhouse import ClickHouseProject, ClickHouseStore
from userloop.store.mirror import copy_project


@pytest.fixture(scope="module")
def mirrored(simulated: Workspace, ch: ClickHouseStore) -> ClickHouseProject:
    project = simulated.project("default")
    counts = copy_project(project, ch)
    assert all(c.equal for c in counts), [c for c in counts if not c.equal]
    return ch.project(project.schema)


@pytest.fixture(scope="module")
def dashboards(simulated: Workspace, mirrored: ClickHouseProject) -> dict[str, tuple[Any, Any]]:
    """Each panel's result on ClickHouse and on DuckDB, by key."""
    tz = simulated.project_info("default").timezone
    want = core_metrics.run(Engine(simulated.project("default"), tz), today=SIM_END)
    got = core_metrics.run(Engine(mirrored, tz), today=SIM_END)
    assert [p["key"] for p in got["panels"]] == [p["key"] for p in want["panels"]]
    return {g["key"]: (g, w) for g, w in zip(got["panels"], want["panels"], strict=True)}


#: Every panel of the dashboard. A weekly GMV cell is a sum of amounts with one decimal: DuckDB adds them in its
#: scan order and gets 1469.0, ClickHouse in its own (the MergeTree's, in several lanes) and gets
#: 1469.0000000000002 — the last bits of a float sum, which ``same`` allows (neither engine fixes the order).
PANELS = [p["key"] for p in core_metrics.definitions()]


@pytest.mark.parametrize("key", PANELS)
def test_every_core_metrics_panel_is_the_same_cell_by_cell(dashboards: dict[str, tuple[Any, Any]], key: str) -> None:
    mine, theirs = dashboards[key]
    assert "error" not in theirs and "error" not in mine, (mine.get("error"), theirs.get("error"))
    assert same(mine["result"], theirs["result"]), (key, mine["result"], theirs["result"])
    assert mine["warnings"] == theirs["warnings"], key


def _starter(simulated: Workspace) -> list[TagDef]:
    info = simulated.project_info("default")
    return [tags.tag_of(r) for r in tags.listing(simulated.meta, info.id) if r.enabled]


def _rows(reader: Any, query: Any) -> list[tuple[Any, ...]]:
    return sorted(reader.fetchall(query), key=lambda r: r[0])


def test_every_starter_tag_has_the_same_values(simulated: Workspace, mirrored: ClickHouseProject) -> None:
    duck = simulated.project("default")
    tz = simulated.project_info("default").timezone
    ctx = tagsql.context(duck, tz, SIM_END)
    defined = _starter(simulated)
    planned = [(tag, tagsql.check(tag, duck, ctx)) for tag in defined]
    kinds = {type(t.source) for t in defined}
    assert {EventSource, ProfileSource, ModelSource} <= kinds, kinds
    # a local day before the earliest event, as a run computes it
    first_day = SIM_END.replace(year=SIM_END.year - 1)
    events = [(t, k) for t, k in planned if isinstance(t.source, EventSource)]
    profiles = [(t, k) for t, k in planned if isinstance(t.source, ProfileSource)]
    statements = {
        "event tags": tagsql.event_batch(ctx, events, SIM_END, first_day),
        "profile tags": tagsql.profile_batch(ctx, profiles, SIM_END),
    }
    for tag, kind in planned:
        # a model that has not run (churn and CLV need more history) gives nobody a value, on either backend
        if isinstance(tag.source, ModelSource) and tagsql.model_columns(duck, tag.source.model) is not None:
            statements[tag.name] = tagsql.model_select(ctx, tag, kind, SIM_END)
    assert set(statements) - {"event tags", "profile tags"}, "no model tag has values"
    for what, query in statements.items():
        want, got = _rows(duck, query), _rows(mirrored, query)
        assert len(want) > 0, what
        assert same(got, want), (what, [(g, w) for g, w in zip(got, want, strict=False) if not same(g, w)][:5])
