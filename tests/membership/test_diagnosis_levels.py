"""Level distributions and flows against a brute-force replay, on random members and level changes (ties in time,
changes on the local midnight that starts a month in Asia/Shanghai, members who left), diagnosed at a random
instant.

The reference reads, for each member and each month boundary, every change strictly before the boundary in the
order they were written and keeps the last one; a member counts from the earlier of joining and their first
change; one who left is out of the distribution at ``as_of`` and goes to the "left" column of the last month.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.store.metadb import meta_url
from userloop.membership.diagnosis import flows, months_before, snapshot, tracks
from userloop.membership.members import LevelChange, MemberRow, Programmes, SavedProgramme
from userloop.store.meta import MetaStore

ZONE = "Asia/Shanghai"
LEVELS = 3
#: Month starts in Shanghai are 16:00 UTC the day before: instants on and around them, and some in between.
INSTANTS = [datetime(2026, m, 1) - timedelta(hours=8) + timedelta(minutes=d) for m in (2, 3, 4, 5) for d in (-1, 0, 1)]
INSTANTS += [datetime(2026, 2, 10), datetime(2026, 3, 15, 12), datetime(2026, 4, 20, 23), datetime(2026, 1, 20)]
_NAMES = itertools.count()

member = st.tuples(
    st.sampled_from(INSTANTS),  # joined
    st.booleans(),  # left
    # changes (at, to), from a few instants so that one member's changes often tie
    st.lists(st.tuples(st.sampled_from(INSTANTS[2:8]), st.integers(0, LEVELS + 1)), max_size=4),
)


@pytest.fixture(scope="module")
def meta(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetaStore]:
    with meta_url("sqlite", tmp_path_factory.mktemp("levels")) as url:
        store = MetaStore(url)
        store.create_all()
        yield store
        store.dispose()


def _programme(meta: MetaStore) -> SavedProgramme:
    project = meta.project("p") or meta.add_project("p", ZONE)
    doc = {"name": f"p{next(_NAMES)}", "title": {"zh": "会", "en": "P"}, "timezone": ZONE,
           "levels": [{"name": f"l{i}", "title": {"zh": f"{i}", "en": f"{i}"}, "threshold": i * 10}
                      for i in range(LEVELS)]}  # fmt: skip
    return Programmes(meta, project).create(doc)


def _write(meta: MetaStore, programme: SavedProgramme, members: list[Any]) -> None:
    with meta.session.begin() as s:
        for person, (joined, left, changes) in enumerate(members):
            status = "left" if left else "active"
            row = MemberRow(project_id=programme.project_id, programme_id=programme.id, person=person,
                            status=status, joined_at=joined, level=0, level_since=joined)  # fmt: skip
            s.add(row)
            s.flush()
            for at, to in changes:
                s.add(LevelChange(programme_id=programme.id, member_id=row.id, person=person, from_level=0,
                                  to_level=to, at=at, reason="upgrade"))  # fmt: skip
                s.flush()  # ids in the order written: the tie-break among changes at one instant


def _level(joined: datetime, changes: list[tuple[datetime, int]], at: datetime) -> int | None:
    since = min([joined, *(a for a, _ in changes)])
    if since >= at:
        return None
    level = 0
    for when, to in sorted(changes, key=lambda c: c[0]):  # stable: equal instants keep the written order
        if when < at:
            level = min(to, LEVELS - 1)
    return level


@settings(max_examples=examples(40))
@given(members=st.lists(member, max_size=8), as_of=st.sampled_from(INSTANTS[3:]), months=st.integers(1, 4))
def test_distributions_and_flows_equal_a_brute_force_replay(
    meta: MetaStore, members: list[Any], as_of: datetime, months: int
) -> None:
    programme = _programme(meta)
    _write(meta, programme, members)
    found = list(tracks(meta, programme, LEVELS - 1).values())
    for period in months_before(as_of, months, ZONE):
        final = period.end == as_of
        got = snapshot(found, LEVELS, period.label, period.end, final=final).counts
        want = [0] * LEVELS
        matrix = [[0] * (LEVELS + 1) for _ in range(LEVELS + 1)]
        for joined, left, changes in members:
            after, before = _level(joined, changes, period.end), _level(joined, changes, period.start)
            if after is not None and not (final and left):
                want[after] += 1
            if after is not None:
                matrix[0 if before is None else before + 1][LEVELS if final and left else after] += 1
        assert got == want, period
        assert flows(found, LEVELS, period, final=final).matrix == matrix, period
