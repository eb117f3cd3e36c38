"""The in-app inbox (站内信) as a channel: a message is a row of ``inbox_messages`` that the app reads through the
API (:func:`inbox_page`, :func:`mark_read`, :func:`unread_count`).

The row's primary key is the outbox's idempotency key, so a resend after a crash is a no-op: the insert ignores a
conflict on the key (``INSERT … ON CONFLICT (key) DO NOTHING`` on PostgreSQL and on SQLite ≥ 3.24, the same
statement in both dialects; https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT,
https://www.sqlite.org/lang_upsert.html). The column holds 32 characters; a longer key is stored as ``~`` and the
first 31 hex digits of its SHA-256 (the same key always gives the same row), and that stored key is what the
delivery's ``provider_id`` and the reading API carry.

Pages are newest first, ``(created_at, key)`` descending, on the index ``(project_id, person, created_at)``; the
cursor ``after`` is the last key of the previous page (keyset paging: a message arriving meanwhile does not shift
the next page).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql.dml import Insert

from userloop.core.clock import utcnow
from userloop.core.errors import ValidationError
from userloop.engage.channels.base import ChannelError, ChannelKind, Delivery, Message
from userloop.engage.tables import InboxRow
from userloop.store.meta import MetaStore

KEY_LENGTH = 32
TITLE_LENGTH = 300
#: The largest body an inbox message may have (characters); longer is ``failed`` ``too_large``.
MAX_BODY = 64 * 1024
MAX_PAGE = 200
MAX_MARK = 500


def inbox_key(key: str) -> str:
    """The stored key of a message key: itself when it fits the column, else ``~`` + 31 hex digits of SHA-256."""
    if len(key) <= KEY_LENGTH:
        return key
    return "~" + hashlib.sha256(key.encode("utf-8")).hexdigest()[: KEY_LENGTH - 1]


def _insert(meta: MetaStore) -> Insert | None:
    name = meta.engine.dialect.name
    if name == "postgresql":
        return postgresql.insert(InboxRow).on_conflict_do_nothing(index_elements=["key"])
    if name == "sqlite":
        return sqlite.insert(InboxRow).on_conflict_do_nothing(index_elements=["key"])
    return None


class InboxChannel:
    """The in-app inbox as a :class:`~userloop.engage.channels.base.Channel` (kind ``inbox``): each message becomes
    one inbox row of ``message.person`` (title = subject, body = body), created at ``clock()`` (naive UTC)."""

    kind: ChannelKind = "inbox"

    def __init__(
        self, meta: MetaStore, project_id: int, name: str = "inbox", *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.meta = meta
        self.project_id = project_id
        self.name = name
        self.clock = clock

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        now = self.clock()
        out: list[Delivery] = []
        rows: dict[str, dict[str, Any]] = {}
        for m in messages:
            key = inbox_key(m.key)
            if len(m.body) > MAX_BODY:
                out.append(Delivery(m.key, "failed", error="too_large"))
                continue
            rows.setdefault(
                key,
                {
                    "key": key,
                    "project_id": self.project_id,
                    "person": m.person,
                    "title": (m.subject or "")[:TITLE_LENGTH],
                    "body": m.body,
                    "created_at": now,
                    "read_at": None,
                },
            )
            out.append(Delivery(m.key, "sent", provider_id=key))
        if rows:
            self._write(list(rows.values()))
        return out

    def _write(self, rows: list[dict[str, Any]]) -> None:
        statement = _insert(self.meta)
        try:
            if statement is not None:
                with self.meta.session.begin() as s:
                    s.execute(statement, rows)
                return
            for row in rows:  # another dialect: one insert each, a duplicate key skipped
                try:
                    with self.meta.session.begin() as s:
                        s.add(InboxRow(**row))
                except IntegrityError:
                    continue
        except OperationalError as exc:
            raise ChannelError(f"inbox: the metadata database is unavailable ({type(exc.orig).__name__})") from exc

    def close(self) -> None:
        return None


class InboxItem(BaseModel):
    """One inbox message as the app reads it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None

    @property
    def read(self) -> bool:
        return self.read_at is not None


class InboxPage(BaseModel):
    """A page of a person's inbox, newest first; ``next`` is the ``after`` of the following page (None: the end)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[InboxItem]
    next: str | None
    unread: int


def inbox_page(meta: MetaStore, project_id: int, person: int, after: str | None = None, limit: int = 50) -> InboxPage:
    """Up to ``limit`` (1–200) messages of ``person``, newest first, after the message keyed ``after``."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit is 1 to {MAX_PAGE}", field="limit")
    mine = and_(InboxRow.project_id == project_id, InboxRow.person == person)
    query = select(InboxRow).where(mine)
    with meta.session() as s:
        if after is not None:
            cursor = s.scalar(select(InboxRow).where(mine, InboxRow.key == after))
            if cursor is None:
                raise ValidationError("after is not a message of this inbox", field="after")
            query = query.where(
                or_(
                    InboxRow.created_at < cursor.created_at,
                    and_(InboxRow.created_at == cursor.created_at, InboxRow.key < cursor.key),
                )
            )
        rows = list(s.scalars(query.order_by(InboxRow.created_at.desc(), InboxRow.key.desc()).limit(limit + 1)))
        unread = _unread(s, project_id, person)
    items = [
        InboxItem(key=r.key, title=r.title, body=r.body, created_at=r.created_at, read_at=r.read_at)
        for r in rows[:limit]
    ]
    return InboxPage(items=items, next=items[-1].key if len(rows) > limit else None, unread=unread)


def mark_read(meta: MetaStore, project_id: int, person: int, keys: Sequence[str], at: datetime) -> int:
    """Mark ``person``'s messages ``keys`` read at ``at`` (naive UTC); returns how many were unread until now.
    Keys of other people or already read are left as they are."""
    if len(keys) > MAX_MARK:
        raise ValidationError(f"at most {MAX_MARK} keys at once", field="keys")
    if not keys:
        return 0
    with meta.session.begin() as s:
        result = s.execute(
            update(InboxRow)
            .where(
                InboxRow.project_id == project_id,
                InboxRow.person == person,
                InboxRow.key.in_(list(keys)),
                InboxRow.read_at.is_(None),
            )
            .values(read_at=at)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def _unread(s: Any, project_id: int, person: int) -> int:
    return int(
        s.scalar(
            select(func.count())
            .select_from(InboxRow)
            .where(InboxRow.project_id == project_id, InboxRow.person == person, InboxRow.read_at.is_(None))
        )
        or 0
    )


def unread_count(meta: MetaStore, project_id: int, person: int) -> int:
    """How many of ``person``'s messages are unread."""
    with meta.session() as s:
        return _unread(s, project_id, person)
