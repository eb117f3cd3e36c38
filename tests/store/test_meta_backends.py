"""The metadata operations on SQLite and on the PostgreSQL running on this machine: the same answers on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from tests.store.metadb import BACKENDS, meta_url
from userloop.core.errors import NotFoundError, ValidationError
from userloop.query import insights
from userloop.store.meta import MetaStore
from userloop.store.migrations import current_revision, head_revision
from userloop.store.service_tables import JobRun, collector_settings, save_collector_settings


@pytest.fixture(params=BACKENDS)
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetaStore]:
    with meta_url(request.param, tmp_path) as url:
        store = MetaStore(url)
        yield store
        store.dispose()


def test_opening_migrates_to_head(meta: MetaStore) -> None:
    assert current_revision(meta.engine) == head_revision()


def test_projects_keys_rights_and_grants(meta: MetaStore) -> None:
    shop = meta.add_project("shop", "Asia/Shanghai")
    other = meta.add_project("other", "UTC")
    assert [p.name for p in meta.projects()] == ["shop", "other"]
    with pytest.raises(IntegrityError):
        meta.add_project("shop", "UTC")
    write, write_secret = meta.add_key("write", "sdk", shop.id)
    admin, admin_secret = meta.add_key("admin", "ops", None)
    reader, reader_secret = meta.add_key("admin", "analyst", other.id, roles=["read"])
    assert meta.authenticate(write_secret, "write").id == write.id  # type: ignore[union-attr]
    assert meta.authenticate(write_secret, "admin") is None
    assert meta.authenticate(admin_secret + "x", "admin") is None
    assert meta.rights(meta.authenticate(reader_secret, "admin")) == {"read"}  # type: ignore[arg-type]
    meta.grant(admin.id, "pii")
    meta.grant(admin.id, "pii")  # granting twice changes nothing
    assert meta.grants(admin.id) == {"pii"}
    assert "pii" in meta.rights(meta.key(admin.id))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="only live admin tokens"):
        meta.grant(write.id, "pii")
    with pytest.raises(NotFoundError):
        meta.grant(10_000, "pii")
    assert [k.id for k in meta.workspace_admins()] == [admin.id]
    meta.revoke_key(reader.id)
    assert meta.authenticate(reader_secret, "admin") is None
    assert meta.revoke_grant(admin.id, "pii") and not meta.revoke_grant(admin.id, "pii")
    assert [k.name for k in meta.keys(shop.id)] == ["sdk"]


def test_settings_insights_and_job_runs(meta: MetaStore) -> None:
    shop = meta.add_project("shop", "Asia/Shanghai")
    assert collector_settings(meta, shop.id).rate_per_second is None
    save_collector_settings(meta, shop.id, cors_origins=["https://shop.example.com"], rate_per_second=25.5)
    stored = collector_settings(meta, shop.id)
    assert (stored.cors_origins, stored.rate_per_second) == ("https://shop.example.com", 25.5)
    trend = {"kind": "trends", "date_range": {"last": 7}, "series": [{"event": "view_item"}]}
    saved = insights.save(meta, shop.id, "浏览趋势 / views", trend, dashboard="main")
    assert [i.name for i in insights.listing(meta, shop.id, dashboard="main")] == ["浏览趋势 / views"]
    assert insights.get(meta, shop.id, saved.id).kind == "trends"
    with meta.session.begin() as s:
        s.add(JobRun(job="models", project="shop", slot="2026-12-06T04:00", status="running", attempts=1))
    with pytest.raises(IntegrityError), meta.session.begin() as s:  # one run per job, project and slot
        s.add(JobRun(job="models", project="shop", slot="2026-12-06T04:00", status="running", attempts=1))
