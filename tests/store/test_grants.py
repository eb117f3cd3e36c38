"""Grants: the rights an admin token holds beyond its kind (``pii``: see personal data unmasked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from userloop.core.errors import NotFoundError, ValidationError
from userloop.store.meta import ApiKey, MetaStore, Project


@pytest.fixture
def meta(tmp_path: Path) -> MetaStore:
    store = MetaStore(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    store.create_all()
    return store


def test_grant_revoke_and_list(meta: MetaStore) -> None:
    admin, _ = meta.add_key("admin", "ops", None)
    other, _ = meta.add_key("admin", "analyst", None)
    assert meta.grants(admin.id) == set()
    meta.grant(admin.id, "pii")
    meta.grant(admin.id, "pii")  # granting twice changes nothing
    assert meta.grants(admin.id) == {"pii"}
    assert meta.grants(other.id) == set()
    assert meta.revoke_grant(admin.id, "pii") is True
    assert meta.revoke_grant(admin.id, "pii") is False
    assert meta.grants(admin.id) == set()
    assert meta.grants(99_999) == set()


def test_unknown_grant_is_refused_with_the_known_ones(meta: MetaStore) -> None:
    admin, _ = meta.add_key("admin", "ops", None)
    with pytest.raises(ValidationError, match=r"unknown grant 'root'.*pii"):
        meta.grant(admin.id, "root")
    with pytest.raises(ValidationError, match="known grants"):
        meta.revoke_grant(admin.id, "PII")
    assert meta.grants(admin.id) == set()


def test_only_live_admin_tokens_hold_grants(meta: MetaStore) -> None:
    project = meta.add_project("shop", "Asia/Shanghai")
    write, _ = meta.add_key("write", "collector", project.id)
    with pytest.raises(ValidationError, match="write key"):
        meta.grant(write.id, "pii")
    admin, _ = meta.add_key("admin", "ops", None)
    meta.revoke_key(admin.id)
    with pytest.raises(ValidationError, match="revoked"):
        meta.grant(admin.id, "pii")
    with pytest.raises(NotFoundError, match="no key 12345"):
        meta.grant(12_345, "pii")


def test_old_workspace_gets_the_table_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    old = MetaStore(url)
    # a meta DB made before grants existed: only the tables of that time
    Project.metadata.create_all(old.engine, tables=[Project.__table__, ApiKey.__table__])  # type: ignore[list-item]
    admin, _ = old.add_key("admin", "ops", None)
    old.dispose()
    assert "key_grants" not in inspect(old.engine).get_table_names()

    reopened = MetaStore(url)  # a workspace opened later: create_all is never called on open
    assert reopened.grants(admin.id) == set()
    assert "key_grants" in inspect(reopened.engine).get_table_names()
    reopened.grant(admin.id, "pii")
    reopened.dispose()
    again = MetaStore(url)
    assert again.grants(admin.id) == {"pii"}
    again.dispose()
