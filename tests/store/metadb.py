"""Metadata databases for tests: a SQLite file, or a fresh database on the PostgreSQL running on this machine."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The PostgreSQL server the metadata tests use (trust auth on loopback); USERLOOP_TEST_PG overrides it.
PG_ADMIN_URL = os.environ.get("USERLOOP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgresql")


@contextmanager
def meta_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty metadata database of ``backend``, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{(tmp_path / f'meta-{uuid.uuid4().hex[:8]}.sqlite').as_posix()}"
        return
    import psycopg

    name = f"userloop_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # a generated name, never user input
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
