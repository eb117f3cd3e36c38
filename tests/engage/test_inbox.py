"""The in-app inbox channel and its reading API, on SQLite and on the PostgreSQL running on this machine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.store.metadb import BACKENDS, meta_url
from userloop.core.errors import ValidationError
from userloop.engage.channels.base import Message
from userloop.engage.channels.inbox import MAX_BODY, InboxChannel, inbox_key, inbox_page, mark_read, unread_count
from userloop.engage.tables import InboxRow
from userloop.store.meta import MetaStore

T0 = datetime(2026, 1, 1, 8, 0, 0)  # naive UTC, fixed


@pytest.fixture(params=BACKENDS)
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetaStore]:
    with meta_url(request.param, tmp_path) as url:
        store = MetaStore(url)
        yield store
        store.dispose()


class StepClock:
    """A clock the test moves: each call answers the current time."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def note(key: str, person: int = 7, subject: str | None = "周末特惠", body: str = "全场五折") -> Message:
    return Message(key=key, channel="inbox", person=person, to=str(person), body=body, subject=subject)


def rows(meta: MetaStore) -> list[InboxRow]:
    with meta.session() as s:
        return list(s.scalars(select(InboxRow).order_by(InboxRow.key)))


def test_a_message_becomes_a_row_and_a_resend_is_a_no_op(meta: MetaStore) -> None:
    project = meta.add_project("shop", "Asia/Shanghai")
    clock = StepClock(T0)
    inbox = InboxChannel(meta, project.id, clock=clock)
    first = inbox.send([note("1.1.send.7.1"), note("1.1.send.8.1", person=8, subject=None)])
    assert [(d.key, d.status, d.provider_id) for d in first] == [
        ("1.1.send.7.1", "sent", "1.1.send.7.1"),
        ("1.1.send.8.1", "sent", "1.1.send.8.1"),
    ]
    stored = rows(meta)
    assert [(r.key, r.project_id, r.person, r.title, r.body, r.created_at, r.read_at) for r in stored] == [
        ("1.1.send.7.1", project.id, 7, "周末特惠", "全场五折", T0, None),
        ("1.1.send.8.1", project.id, 8, "", "全场五折", T0, None),
    ]
    # after a crash the runtime sends the same key again, later and even with another text: nothing changes
    clock.now = T0 + timedelta(minutes=5)
    again = inbox.send([note("1.1.send.7.1", body="changed"), note("1.1.send.7.1", body="twice in one batch")])
    assert [(d.status, d.provider_id) for d in again] == [("sent", "1.1.send.7.1"), ("sent", "1.1.send.7.1")]
    assert [(r.key, r.body, r.created_at) for r in rows(meta)] == [
        ("1.1.send.7.1", "全场五折", T0),
        ("1.1.send.8.1", "全场五折", T0),
    ]
    assert unread_count(meta, project.id, 7) == 1
    inbox.close()


def test_a_key_longer_than_the_column_is_stored_hashed_and_stays_idempotent(meta: MetaStore) -> None:
    project = meta.add_project("shop", "UTC")
    inbox = InboxChannel(meta, project.id, clock=lambda: T0)
    long_key = "123456.12.a-rather-long-node-name-for-a-send.9007199254740993.4"
    assert len(long_key) > 32
    stored = inbox_key(long_key)
    assert len(stored) == 32 and stored.startswith("~")
    assert inbox_key(long_key + "x") != stored
    first = inbox.send([note(long_key)])
    second = inbox.send([note(long_key)])
    assert first == second
    assert first[0].key == long_key and first[0].provider_id == stored
    assert [r.key for r in rows(meta)] == [stored]


def test_a_body_over_the_limit_fails_alone(meta: MetaStore) -> None:
    project = meta.add_project("shop", "UTC")
    inbox = InboxChannel(meta, project.id, clock=lambda: T0)
    out = inbox.send([note("big", body="x" * (MAX_BODY + 1)), note("fine")])
    assert [(d.key, d.status, d.error, d.retryable) for d in out] == [
        ("big", "failed", "too_large", False),
        ("fine", "sent", None, False),
    ]
    assert [r.key for r in rows(meta)] == ["fine"]


def test_pages_newest_first_with_a_stable_cursor(meta: MetaStore) -> None:
    project = meta.add_project("shop", "UTC")
    other = meta.add_project("other", "UTC")
    clock = StepClock(T0)
    inbox = InboxChannel(meta, project.id, clock=clock)
    for i in range(5):
        clock.now = T0 + timedelta(minutes=i)
        inbox.send([note(f"k{i}", body=f"m{i}")])
    clock.now = T0 + timedelta(minutes=4)  # same time as k4: the key breaks the tie
    inbox.send([note("k5", body="m5")])
    inbox.send([note("someone-else", person=8)])
    InboxChannel(meta, other.id, clock=clock).send([note("other-project")])

    page = inbox_page(meta, project.id, 7, limit=2)
    assert [i.key for i in page.items] == ["k5", "k4"]
    assert page.next == "k4" and page.unread == 6
    # a message arriving between two page reads does not shift the next page
    clock.now = T0 + timedelta(hours=1)
    inbox.send([note("k-new")])
    page = inbox_page(meta, project.id, 7, after=page.next, limit=2)
    assert [i.key for i in page.items] == ["k3", "k2"]
    page = inbox_page(meta, project.id, 7, after=page.next, limit=2)
    assert [(i.key, i.body, i.created_at) for i in page.items] == [("k1", "m1", T0 + timedelta(minutes=1)),
                                                                   ("k0", "m0", T0)]  # fmt: skip
    assert page.next is None
    assert [i.key for i in inbox_page(meta, project.id, 7).items] == ["k-new", "k5", "k4", "k3", "k2", "k1", "k0"]
    assert [i.key for i in inbox_page(meta, project.id, 8).items] == ["someone-else"]
    assert [i.key for i in inbox_page(meta, other.id, 7).items] == ["other-project"]
    assert inbox_page(meta, project.id, 9).items == []

    with pytest.raises(ValidationError) as err:
        inbox_page(meta, project.id, 7, after="someone-else")  # another person's key is no cursor here
    assert err.value.field == "after"
    for bad in (0, 201):
        with pytest.raises(ValidationError):
            inbox_page(meta, project.id, 7, limit=bad)


def test_mark_read_and_unread_count(meta: MetaStore) -> None:
    project = meta.add_project("shop", "UTC")
    inbox = InboxChannel(meta, project.id, clock=lambda: T0)
    inbox.send([note("a"), note("b"), note("c"), note("theirs", person=8)])
    assert unread_count(meta, project.id, 7) == 3
    at = T0 + timedelta(hours=2)
    # someone else's key and an unknown key are ignored
    assert mark_read(meta, project.id, 7, ["a", "b", "theirs", "nope"], at) == 2
    assert mark_read(meta, project.id, 7, ["a"], at + timedelta(hours=1)) == 0  # already read: read_at stays
    assert mark_read(meta, project.id, 7, [], at) == 0
    assert unread_count(meta, project.id, 7) == 1
    assert unread_count(meta, project.id, 8) == 1
    page = inbox_page(meta, project.id, 7)
    assert {i.key: (i.read, i.read_at) for i in page.items} == {"a": (True, at), "b": (True, at), "c": (False, None)}
    assert page.unread == 1
    with meta.session() as s:
        assert s.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.read_at.is_not(None))) == 2
    with pytest.raises(ValidationError):
        mark_read(meta, project.id, 7, [f"k{i}" for i in range(501)], at)


@given(st.lists(st.text(min_size=1, max_size=80), min_size=2, max_size=2, unique=True))
def test_stored_keys_fit_the_column_and_never_collide(keys: list[str]) -> None:
    a, b = (inbox_key(k) for k in keys)
    assert len(a) <= 32 and len(b) <= 32
    assert a != b
    assert inbox_key(keys[0]) == a
