"""Versioned schema of the metadata database (Alembic), for SQLite and PostgreSQL alike.

:func:`upgrade` brings any metadata database to the newest revision: a new one, one made by a userloop release
before migrations existed (its tables are recognised and stamped, the missing ones created), or one at an older
revision. It runs on every workspace open and costs one query when nothing is to do.

New revision (developers): change the tables in ``store/``, then
``alembic -c src/userloop/store/migrations/alembic.ini revision -m "what changed"`` and write its
``upgrade()`` by hand (autogenerate against a scratch database helps: ``--autogenerate`` with
``USERLOOP_META_URL`` set). Every revision must run on SQLite (batch mode) and PostgreSQL; the tests run both.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["compare_type", "current_revision", "head_revision", "upgrade"]

_HERE = Path(__file__).parent


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _HERE.as_posix())
    config.attributes["connection"] = connection
    return config


def compare_type(_ctx: object, _col: object, _meta_col: object, inspected: object, declared: object) -> bool | None:
    """Alembic's type comparison, except that FLOAT and DOUBLE count as one: they are the same 8-byte type on
    SQLite (REAL) and PostgreSQL (FLOAT is double precision), and SQLAlchemy 2 maps ``Mapped[float]`` to DOUBLE
    where earlier code wrote FLOAT."""
    from sqlalchemy import Float

    if isinstance(inspected, Float) and isinstance(declared, Float):
        return False
    return None


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` (default: the newest)."""
    if revision == "head" and current_revision(engine) == head_revision():
        return
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)
