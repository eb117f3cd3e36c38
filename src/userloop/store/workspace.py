"""A workspace: a folder holding the config, the DuckDB event store and the metadata database.

Layout::

    PATH/userloop.toml     config (format version, data file, metadata URL, events URL, server address)
    PATH/events.duckdb     events, users, identities, items, registry, rejects (one schema per project)
    PATH/meta.sqlite       projects, keys, and later definitions, runs and audit
    PATH/rejects/          rejects files written by imports
    PATH/server.json       present while `userloop serve` owns the workspace

Everything in a workspace is private to its owner (personal data, key digests, the server's session token):
the folder is 0700 and its files 0600. A process that opens or creates a workspace sets its umask to 077 (see
:func:`restrict_permissions`), so what DuckDB, SQLite, the spool, imports and exports create later is private too.

DuckDB allows one writer process per file. While a server runs it owns the workspace and every CLI command
talks to it; otherwise the CLI opens the files itself (see :mod:`userloop.store.owner`).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import tomli_w

from userloop.core.clock import DEFAULT_TIMEZONE, check_timezone
from userloop.core.errors import NotFoundError, ValidationError, WorkspaceError
from userloop.core.permissions import PRIVATE_UMASK, restrict_permissions
from userloop.store.duck import EventStore, ProjectStore
from userloop.store.meta import MetaStore, Project

CONFIG_FILE = "userloop.toml"
FORMAT_VERSION = 1
PROJECT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFAULT_PROJECT = "default"


def secure_tree(path: Path) -> None:
    """Take group and other permissions off ``path`` and everything under it (a workspace made by an older
    version, or copied with a loose umask). Symbolic links are left alone."""
    for folder, dirs, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, d) for d in dirs), *(os.path.join(folder, f) for f in files)]:
            _make_private(name)


def _make_private(name: str) -> None:
    try:
        mode = os.lstat(name).st_mode
    except FileNotFoundError:  # a spool segment or a temporary file went away meanwhile
        return
    if stat.S_ISLNK(mode) or not mode & PRIVATE_UMASK:
        return
    with contextlib.suppress(FileNotFoundError):
        os.chmod(name, stat.S_IMODE(mode) & ~PRIVATE_UMASK)


@dataclass
class Secrets:
    """Secrets created with a project; shown once, stored only as digests."""

    project: str
    write_key: str
    admin_token: str | None = None


@dataclass
class WorkspaceConfig:
    """``userloop.toml``. ``events_url`` says where events also live: None (the default) keeps them in the DuckDB
    file alone; ``chdb:///abs/folder`` (or a ClickHouse server's URL) makes the loader write every batch there too,
    as a part (:mod:`userloop.store.clickhouse_writes`), set after a verified ``userloop migrate --to clickhouse``.
    """

    data_file: str = "events.duckdb"
    meta_url: str = "sqlite:///{path}/meta.sqlite"
    host: str = "127.0.0.1"
    port: int = 8000
    events_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_toml(self) -> dict[str, Any]:
        storage = {"data_file": self.data_file, "meta_url": self.meta_url}
        if self.events_url is not None:
            storage["events_url"] = self.events_url
        return {
            "format_version": FORMAT_VERSION,
            "storage": storage,
            "server": {"host": self.host, "port": self.port},
        }

    @classmethod
    def from_toml(cls, doc: dict[str, Any]) -> WorkspaceConfig:
        version = doc.get("format_version")
        if version != FORMAT_VERSION:
            raise WorkspaceError(f"{CONFIG_FILE} has format_version {version!r}; this userloop reads {FORMAT_VERSION}")
        storage, server = doc.get("storage", {}), doc.get("server", {})
        return cls(
            data_file=storage.get("data_file", cls.data_file),
            meta_url=storage.get("meta_url", cls.meta_url),
            events_url=_events_url(storage.get("events_url")),
            host=server.get("host", cls.host),
            port=int(server.get("port", cls.port)),
        )


def _events_url(value: object) -> str | None:
    """The ``[storage] events_url`` setting: absent, or a ClickHouse URL (``chdb://``, ``clickhouse://``,
    ``clickhouses://``)."""
    if value is None:
        return None
    if not isinstance(value, str) or value.split("://", 1)[0] not in ("chdb", "clickhouse", "clickhouses"):
        raise WorkspaceError(
            f"{CONFIG_FILE}: [storage] events_url must be a ClickHouse URL (chdb:///folder or clickhouse://host), "
            f"not {value!r} / events_url 应为 ClickHouse 地址"
        )
    return value


#: Where the ClickHouse server's password comes from when ``[storage] events_url`` names a server: secrets are not
#: kept in ``userloop.toml``.
CLICKHOUSE_PASSWORD_ENV = "USERLOOP_CLICKHOUSE_PASSWORD"  # noqa: S105 (the variable's name, not a secret)


def without_password(url: str) -> str:
    """``url`` with its password (if any) removed, the user kept: what ``userloop.toml`` stores."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = quote(parts.username or "", safe="")
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def events_url_with_password(url: str) -> str:
    """The stored ``events_url`` with the password from :data:`CLICKHOUSE_PASSWORD_ENV` put back (a server URL
    whose user has no password in the file); unchanged when the variable is unset or the URL is ``chdb://``."""
    secret = os.environ.get(CLICKHOUSE_PASSWORD_ENV)
    parts = urlsplit(url)
    if not secret or parts.scheme == "chdb" or parts.password is not None or "@" not in parts.netloc:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(secret, safe='')}@{host}"))


class Workspace:
    """An open workspace. Use :meth:`init` to create one and :meth:`open` to open an existing one."""

    def __init__(self, path: Path, config: WorkspaceConfig, *, read_only: bool = False) -> None:
        self.path = path
        self.config = config
        self.meta = MetaStore(config.meta_url.format(path=path.as_posix()))
        self._events: EventStore | None = None
        self.read_only = read_only

    # lifecycle ------------------------------------------------------------------------------------------
    @classmethod
    def init(cls, path: Path, *, timezone: str = DEFAULT_TIMEZONE, force: bool = False) -> tuple[Workspace, Secrets]:
        """Create a workspace with the project ``default``; returns it and the secrets to show once."""
        check_timezone(timezone)
        path = path.expanduser().resolve()
        restrict_permissions()
        if (path / CONFIG_FILE).exists():
            if not force:
                raise WorkspaceError(f"{path} is already a workspace; pass --force to replace it")
            _remove_workspace_files(path)
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        config = WorkspaceConfig()
        (path / CONFIG_FILE).write_text(tomli_w.dumps(config.to_toml()))
        ws = cls(path, config)
        ws.meta.create_all()
        secrets = ws.create_project(DEFAULT_PROJECT, timezone=timezone)
        _key, secrets.admin_token = ws.meta.add_key("admin", "initial admin token", None)
        secure_tree(path)
        return ws, secrets

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False) -> Workspace:
        path = path.expanduser().resolve()
        config_path = path / CONFIG_FILE
        if not config_path.exists():
            raise WorkspaceError(
                f"{path} is not a userloop workspace (no {CONFIG_FILE}); create one with `userloop init {path}`"
            )
        try:
            doc = tomllib.loads(config_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise WorkspaceError(f"{config_path} is not valid TOML: {exc}") from exc
        restrict_permissions()
        return cls(path, WorkspaceConfig.from_toml(doc), read_only=read_only)

    def close(self) -> None:
        if self._events is not None:
            if self.config.events_url is not None:
                from userloop.store.clickhouse_writes import detach

                detach(self._events)
            self._events.close()
            self._events = None
        self.meta.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # stores ---------------------------------------------------------------------------------------------
    @property
    def events(self) -> EventStore:
        if self._events is None:
            try:
                self._events = EventStore(self.path / self.config.data_file, read_only=self.read_only)
                if self.config.events_url is not None and not self.read_only:
                    from userloop.store.clickhouse_writes import attach

                    attach(self._events, events_url_with_password(self.config.events_url))
            except Exception as exc:  # duckdb raises IOException when another process holds the lock
                if "lock" in str(exc).lower():
                    raise WorkspaceError(
                        f"the workspace {self.path} is in use by another process; stop it or run the command "
                        "through the server that owns it"
                    ) from exc
                raise
        return self._events

    def set_events_url(self, url: str | None) -> None:
        """Write ``[storage] events_url`` (None: events in the DuckDB file alone); takes effect at the next open.
        A server's password is not written to the file: it is read from ``USERLOOP_CLICKHOUSE_PASSWORD`` when the
        workspace opens (:func:`events_url_with_password`)."""
        self.config.events_url = _events_url(url and without_password(url))
        (self.path / CONFIG_FILE).write_text(tomli_w.dumps(self.config.to_toml()))

    def project_info(self, name: str = DEFAULT_PROJECT) -> Project:
        project = self.meta.project(name)
        if project is None:
            known = ", ".join(p.name for p in self.meta.projects()) or "none"
            raise NotFoundError(f"no project named {name!r} in this workspace (projects: {known})")
        return project

    def project(self, name: str = DEFAULT_PROJECT) -> ProjectStore:
        self.project_info(name)
        return self.events.project(name)

    def create_project(self, name: str, *, timezone: str = DEFAULT_TIMEZONE) -> Secrets:
        if not PROJECT_NAME.match(name):
            raise ValidationError(
                f"project name {name!r} is invalid: use lower-case letters, digits and '_', starting with a letter "
                "(at most 40 characters)"
            )
        check_timezone(timezone)
        if self.meta.project(name) is not None:
            raise ValidationError(f"a project named {name!r} already exists")
        self.events.create_project(name)
        project = self.meta.add_project(name, timezone)
        _key, write_key = self.meta.add_key("write", f"{name} write key", project.id)
        return Secrets(project=name, write_key=write_key)


def _remove_workspace_files(path: Path) -> None:
    for name in (
        CONFIG_FILE,
        "events.duckdb",
        "events.duckdb.wal",
        "meta.sqlite",
        "meta.sqlite-wal",
        "meta.sqlite-shm",
        "server.json",
    ):
        (path / name).unlink(missing_ok=True)
