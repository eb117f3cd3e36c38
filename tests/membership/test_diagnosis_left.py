"""The diagnosis counts a member who left by ``members.left_at``: a member until then (at the month ends before
it), in the "left" column of the month it falls in, and nowhere in the months after; a rejoin clears it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.store.metadb import meta_url
from userloop.membership.diagnosis import Period, flows, snapshot, tracks
from userloop.membership.members import Programmes, SavedProgramme, get_member, join, leave
from userloop.store.meta import MetaStore

#: Month starts in Asia/Shanghai as naive UTC (16:00 the day before).
SEP, OCT, NOV = (datetime(2026, m - 1, 30 if m == 10 else 31, 16) for m in (9, 10, 11))


@pytest.fixture
def club(tmp_path: Path) -> Iterator[tuple[MetaStore, SavedProgramme]]:
    with meta_url("sqlite", tmp_path) as url:
        meta = MetaStore(url)
        meta.create_all()
        project = meta.add_project("shop", "Asia/Shanghai")
        saved = Programmes(meta, project).create({
            "name": "club", "title": {"zh": "俱乐部", "en": "Club"}, "timezone": "Asia/Shanghai",
            "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0}],
        })  # fmt: skip
        yield meta, saved
        meta.dispose()


def test_a_member_who_left_in_october_is_gone_from_october_on(club: tuple[MetaStore, SavedProgramme]) -> None:
    meta, saved = club
    join(meta, saved, 1, datetime(2026, 9, 5))
    join(meta, saved, 2, datetime(2026, 9, 5))
    left = leave(meta, saved, 1, datetime(2026, 10, 10))
    assert left.left_at == datetime(2026, 10, 10)
    leave(meta, saved, 2, datetime(2026, 9, 20))
    assert join(meta, saved, 2, datetime(2026, 9, 25)).left_at is None  # rejoined: a member throughout
    assert get_member(meta, saved, 2).status == "active"
    found = list(tracks(meta, saved, 0).values())
    as_of = datetime(2026, 11, 20)
    ends = {label: snapshot(found, 1, label, at, final=False).total for label, at in
            (("sep", OCT), ("oct", NOV))}  # fmt: skip
    assert ends == {"sep": 2, "oct": 1}
    assert snapshot(found, 1, "now", as_of, final=True).total == 1
    months = [Period("2026-09", SEP, OCT), Period("2026-10", OCT, NOV), Period("2026-11", NOV, as_of)]
    got = [(f.joins, f.stayed, f.leaves) for f in (flows(found, 1, p, final=p.end == as_of) for p in months)]
    assert got == [(2, 0, 0), (0, 1, 1), (0, 1, 0)]
