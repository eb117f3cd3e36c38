"""Metadata migrations: a new database and one made before migrations existed both reach the newest revision,
whose tables equal the models, on SQLite and on PostgreSQL."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

import userloop.benefits
import userloop.engage.tables
import userloop.membership.engagement_tables
import userloop.membership.ledger_tables
import userloop.membership.members
import userloop.membership.runner_tables
import userloop.profile.segments
import userloop.profile.tags
import userloop.query.insights
import userloop.store.accounts
import userloop.store.audit
import userloop.store.service_tables
from tests.store.metadb import BACKENDS, meta_url
from userloop.store.meta import Base
from userloop.store.migrations import compare_type, current_revision, head_revision, upgrade

FIXTURE = Path(__file__).parent / "fixtures" / "workspace-aa9056c.tar.gz"


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with meta_url(request.param, tmp_path) as url:
        eng = create_engine(url)
        yield eng
        eng.dispose()


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": compare_type})
        return list(compare_metadata(context, Base.metadata))


def test_a_new_database_reaches_head_and_equals_the_models(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _differences(engine) == []
    upgrade(engine)  # at head: nothing to do, nothing changes
    assert current_revision(engine) == head_revision()


def test_the_baseline_adopts_tables_that_already_exist(engine: Engine) -> None:
    """Databases made before migrations hold some of the tables (others were created on first use)."""
    with engine.begin() as connection:
        Base.metadata.tables["projects"].create(connection)
        connection.execute(
            text("INSERT INTO projects (name, timezone, max_future_seconds, max_past_days, created_at) "
                 "VALUES ('p', 'UTC', 3600, 3650, CURRENT_TIMESTAMP)")
        )  # fmt: skip
    upgrade(engine, "0001")
    assert "segments" in inspect(engine).get_table_names()
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM projects")).all() == [("p",)]
    assert _differences(engine) == []


def test_a_workspace_made_before_migrations_upgrades_in_place(tmp_path: Path) -> None:
    """The fixture was made by commit aa9056c (2026-12-06): 30 simulated people, starter tags, a segment, an
    insight, collector settings, a job run, keys and a grant."""
    import json

    from userloop.store import Workspace

    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path / "old", filter="data")
    secrets = json.loads((tmp_path / "old" / "fixture-secrets.json").read_text())
    engine = create_engine(f"sqlite:///{(tmp_path / 'old' / 'meta.sqlite').as_posix()}")
    assert current_revision(engine) is None
    with Workspace.open(tmp_path / "old") as ws:
        assert current_revision(ws.meta.engine) == head_revision()
        assert ws.meta.authenticate(secrets["admin_token"], "admin") is not None
        assert ws.meta.authenticate(secrets["write_key"], "write") is not None
        info = ws.project_info("default")
        assert len(userloop.profile.tags.listing(ws.meta, info.id)) == 36
        assert [s.name for s in userloop.profile.segments.listing(ws.meta, info.id)] == ["成熟期用户 / mature users"]
        assert [i.name for i in userloop.query.insights.listing(ws.meta, info.id)] == ["daily views"]
        settings = userloop.store.service_tables.collector_settings(ws.meta, info.id)
        assert (settings.cors_origins, settings.rate_per_second) == ("https://shop.example.com", 50.0)
        assert ws.project("default").con.execute(
            f"SELECT count(*) FROM {ws.project('default').table('events')}"
        ).fetchone() == (759,)
    assert _differences(engine) == []
    engine.dispose()
