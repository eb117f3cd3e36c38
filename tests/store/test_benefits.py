"""Granting a benefit: once per key, one unit of stock per grant, nothing left behind when the stock is used up;
on SQLite and on PostgreSQL (whose driver reports no row count for INSERT … ON CONFLICT DO NOTHING)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.store.metadb import BACKENDS, meta_url
from userloop.benefits import BenefitRow, GrantRow, grant, grant_key
from userloop.core.errors import UserloopError
from userloop.store.meta import MetaStore

NOW = datetime(2026, 3, 1, 4, 0)


@pytest.fixture(params=BACKENDS)
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetaStore]:
    with meta_url(request.param, tmp_path) as url:
        store = MetaStore(url)
        store.create_all()
        project = store.add_project("shop", "Asia/Shanghai")
        with store.session.begin() as s:
            s.add(BenefitRow(project_id=project.id, name="ten_off", amount=10, threshold=99, valid_days=7, stock=2))
        yield store
        store.dispose()


def _stock(meta: MetaStore) -> tuple[int, int]:
    with meta.session() as s:
        granted = s.scalar(select(BenefitRow.granted))
        rows = s.scalar(select(func.count()).select_from(GrantRow))
    return int(granted or 0), int(rows or 0)


def _grant(meta: MetaStore, key: str, person: int) -> str:
    with meta.engine.begin() as conn:
        return grant(conn, project_id=1, name="ten_off", key=key, person=person, now=NOW, secret=b"s" * 32).code


def test_a_key_grants_once_and_takes_one_unit(meta: MetaStore) -> None:
    key = grant_key("birthday", "club", 7, 2026)
    first = _grant(meta, key, 7)
    assert [_grant(meta, key, 7) for _ in range(3)] == [first] * 3
    assert _stock(meta) == (1, 1)


def test_a_used_up_stock_refuses_and_records_nothing(meta: MetaStore) -> None:
    _grant(meta, "a" * 32, 1)
    _grant(meta, "b" * 32, 2)
    with pytest.raises(UserloopError) as caught:
        _grant(meta, "c" * 32, 3)
    assert caught.value.code == "benefit_exhausted"
    assert _stock(meta) == (2, 2)
    with pytest.raises(UserloopError) as unknown, meta.engine.begin() as conn:
        grant(conn, project_id=1, name="nope", key="d" * 32, person=4, now=NOW, secret=b"s" * 32)
    assert unknown.value.code == "unknown_benefit"
