"""Key rights: roles (write, read, admin) and scope on the key, grants (``pii``: see personal data unmasked)
beyond them; and the in-place upgrade of a metadata DB made by an earlier version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect

from userloop.core import ids
from userloop.core.errors import NotFoundError, ValidationError
from userloop.store.meta import MetaStore, upgrade_meta_schema
from userloop.store.service_tables import collector_settings


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


#: The metadata schema as the first release created it: no key_grants, no roles, no service flag, no burst.
LEGACY_SCHEMA = (
    "CREATE TABLE projects (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL UNIQUE, "
    "timezone VARCHAR(64) NOT NULL, max_future_seconds INTEGER NOT NULL, max_past_days INTEGER NOT NULL, "
    "created_at DATETIME NOT NULL)",
    "CREATE TABLE api_keys (id INTEGER NOT NULL PRIMARY KEY, project_id INTEGER REFERENCES projects (id), "
    "kind VARCHAR(16) NOT NULL, name VARCHAR(100) NOT NULL, prefix VARCHAR(16) NOT NULL, "
    "digest VARCHAR(64) NOT NULL UNIQUE, created_at DATETIME NOT NULL, revoked_at DATETIME)",
    "CREATE TABLE collector_settings (project_id INTEGER NOT NULL PRIMARY KEY REFERENCES projects (id), "
    "cors_origins TEXT NOT NULL, rate_per_second FLOAT)",
)


def _legacy_workspace(path: Path) -> tuple[str, str, str]:
    """A metadata DB as the first release left it, with a project, its write key and an admin token."""
    con = sqlite3.connect(path)
    for ddl in LEGACY_SCHEMA:
        con.execute(ddl)
    con.execute("INSERT INTO projects VALUES (1, 'default', 'Asia/Shanghai', 3600, 3650, '2026-01-01 00:00:00')")
    con.execute("INSERT INTO collector_settings VALUES (1, 'https://shop.example.com', 10.0)")
    admin, write = ids.new_secret(ids.ADMIN_TOKEN_PREFIX), ids.new_secret(ids.WRITE_KEY_PREFIX)
    for key_id, kind, project, secret in ((1, "write", 1, write), (2, "admin", None, admin)):
        con.execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, 'old', ?, ?, '2026-01-01 00:00:00', NULL)",
            (key_id, project, kind, ids.display_prefix(secret), ids.digest(secret)),
        )
    con.commit()
    con.close()
    return f"sqlite:///{path}", admin, write


def test_old_workspace_is_upgraded_in_place_on_first_use(tmp_path: Path) -> None:
    url, admin_secret, write_secret = _legacy_workspace(tmp_path / "old.sqlite")
    reopened = MetaStore(url)  # a workspace opened later: create_all is never called on open
    admin = reopened.authenticate(admin_secret, "admin")
    assert admin is not None
    assert reopened.grants(admin.id) == set()
    assert "key_grants" in inspect(reopened.engine).get_table_names()
    # the token keeps what it could do before roles existed: every project, read, write and admin (which implies
    # analyse and operate), no pii
    assert admin.workspace_level
    assert reopened.rights(admin) == {"read", "analyse", "operate", "write", "admin"}
    write = reopened.authenticate(write_secret, "write")
    assert write is not None
    assert reopened.rights(write) == {"write"}
    assert [k.id for k in reopened.workspace_admins()] == [admin.id]
    reopened.grant(admin.id, "pii")
    settings = collector_settings(reopened, 1)  # the new burst column is there, the old values are kept
    assert (settings.rate_per_second, settings.burst, settings.origins) == (10.0, None, {"https://shop.example.com"})
    reopened.dispose()

    again = MetaStore(url)
    upgrade_meta_schema(again.engine)  # running the step twice changes nothing
    key = again.authenticate(admin_secret, "admin")
    assert key is not None
    assert again.grants(key.id) == {"pii"}
    assert again.rights(key) == {"read", "analyse", "operate", "write", "admin", "pii"}
    again.dispose()


def test_keys_hold_roles_and_a_scope(meta: MetaStore) -> None:
    shop = meta.add_project("shop", "Asia/Shanghai")
    reader, _ = meta.add_key("admin", "analyst", shop.id, roles=("read",))
    assert meta.rights(reader) == {"read"}
    assert not reader.workspace_level
    full, _ = meta.add_key("admin", "ops", None)
    assert meta.rights(full) == {"read", "analyse", "operate", "write", "admin"}
    operator, _ = meta.add_key("admin", "operator", shop.id, roles=("read", "operate"))
    assert meta.rights(operator) == {"read", "analyse", "operate"}  # operate implies analyse
    writer, _ = meta.add_key("admin", "writer", shop.id, roles=("read", "write"))
    assert meta.rights(writer) == {"read", "write"}  # no analyse: it cannot create tags
    with pytest.raises(ValidationError, match="roles"):
        meta.add_key("admin", "nothing", None, roles=())
    with pytest.raises(ValidationError, match="roles"):
        meta.add_key("admin", "root", None, roles=("root",))
    with pytest.raises(ValidationError, match="belongs to a project"):
        meta.add_key("write", "collector", None)
    service, _ = meta.add_key("admin", "serve session", None, service=True)
    assert [k.id for k in meta.workspace_admins()] == [full.id]  # neither the scoped nor the service token
    meta.revoke_key(full.id)
    assert meta.workspace_admins() == []
    assert service.service
