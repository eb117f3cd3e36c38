from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from userloop.core import ids
from userloop.core.errors import NotFoundError, ValidationError, WorkspaceError
from userloop.store import Workspace


def test_init_creates_files_and_default_project(tmp_path: Path) -> None:
    ws, secrets = Workspace.init(tmp_path / "w", timezone="Europe/Berlin")
    try:
        assert (ws.path / "userloop.toml").exists()
        assert (ws.path / "events.duckdb").exists()
        assert (ws.path / "meta.sqlite").exists()
        assert stat.S_IMODE(os.stat(ws.path).st_mode) == 0o700
        assert secrets.project == "default"
        assert secrets.write_key.startswith(ids.WRITE_KEY_PREFIX)
        assert secrets.admin_token and secrets.admin_token.startswith(ids.ADMIN_TOKEN_PREFIX)
        assert ws.project_info().timezone == "Europe/Berlin"
    finally:
        ws.close()


def test_secrets_are_stored_hashed_and_authenticate(tmp_path: Path) -> None:
    ws, secrets = Workspace.init(tmp_path / "w")
    try:
        stored = {k.digest for k in ws.meta.keys()}  # noqa: SIM118 - MetaStore.keys() is not a dict
        assert secrets.write_key not in stored and ids.digest(secrets.write_key) in stored
        raw = (ws.path / "meta.sqlite").read_bytes()
        assert secrets.write_key.encode() not in raw
        assert secrets.admin_token is not None
        assert secrets.admin_token.encode() not in raw
        assert ws.meta.authenticate(secrets.write_key, "write") is not None
        assert ws.meta.authenticate(secrets.write_key, "admin") is None
        assert ws.meta.authenticate(secrets.admin_token, "admin") is not None
        assert ws.meta.authenticate("ulw_wrong", "write") is None
        key = ws.meta.authenticate(secrets.write_key, "write")
        assert key is not None
        ws.meta.revoke_key(key.id)
        assert ws.meta.authenticate(secrets.write_key, "write") is None
    finally:
        ws.close()


def test_open_existing_and_refuse_double_init(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "w")
    ws.close()
    with pytest.raises(WorkspaceError, match="already a workspace"):
        Workspace.init(tmp_path / "w")
    again = Workspace.open(tmp_path / "w")
    assert again.project_info().name == "default"
    again.close()
    with pytest.raises(WorkspaceError, match="not a userloop workspace"):
        Workspace.open(tmp_path / "nowhere")


def test_several_projects_are_isolated(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "w")
    try:
        secrets = ws.create_project("shop_two", timezone="UTC")
        assert secrets.write_key.startswith(ids.WRITE_KEY_PREFIX)
        assert [p.name for p in ws.meta.projects()] == ["default", "shop_two"]
        assert ws.project("shop_two").schema != ws.project("default").schema
        with pytest.raises(ValidationError, match="already exists"):
            ws.create_project("shop_two")
        with pytest.raises(ValidationError, match="invalid"):
            ws.create_project('x"; DROP TABLE users; --')
        with pytest.raises(ValidationError, match="time zone"):
            ws.create_project("tz", timezone="Mars/Olympus")
        with pytest.raises(NotFoundError, match="shop_three"):
            ws.project("shop_three")
    finally:
        ws.close()


def test_second_writer_process_gets_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    ws, _ = Workspace.init(tmp_path / "w")
    try:
        ws.project()  # opens the DuckDB file, taking its lock
        code = (
            "from pathlib import Path\nfrom userloop.store import Workspace\n"
            "from userloop.core.errors import WorkspaceError\n"
            f"w = Workspace.open(Path({str(tmp_path / 'w')!r}))\n"
            "try:\n    w.project()\nexcept WorkspaceError as e:\n    print('REFUSED', e)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert "REFUSED" in out and "in use by another process" in out
    finally:
        ws.close()


def test_a_clickhouse_servers_password_is_not_written_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from userloop.store.workspace import CLICKHOUSE_PASSWORD_ENV, events_url_with_password, without_password

    ws, _ = Workspace.init(tmp_path / "ws")
    ws.set_events_url("clickhouse://ops:s3cr%40t@ch.internal:8123/userloop")
    stored = (tmp_path / "ws" / "userloop.toml").read_text()
    assert "s3cr" not in stored and "clickhouse://ops@ch.internal:8123/userloop" in stored
    monkeypatch.setenv(CLICKHOUSE_PASSWORD_ENV, "s3cr@t")
    assert events_url_with_password(ws.config.events_url or "") == "clickhouse://ops:s3cr%40t@ch.internal:8123/userloop"
    monkeypatch.delenv(CLICKHOUSE_PASSWORD_ENV)
    assert events_url_with_password("clickhouse://ops@ch.internal/db") == "clickhouse://ops@ch.internal/db"
    assert without_password("chdb:///srv/ch") == "chdb:///srv/ch"
    assert without_password("clickhouses://a:b@h:8443/d?verify=false") == "clickhouses://a@h:8443/d?verify=false"
    ws.close()
