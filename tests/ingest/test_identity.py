"""Identity: anonymous history counts as the logged-in person, whatever order records arrive in."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import NOW_MS, examples, rows
from tests.ingest.helpers import lines, profile, signup, track
from userloop.ingest import load_json_lines
from userloop.store import ProjectStore, Workspace


def test_signup_moves_earlier_anonymous_events_to_the_person(project: ProjectStore) -> None:
    load_json_lines(project, lines(track("view", "dev1"), track("view", "dev1")), source="a")
    load_json_lines(project, lines(track("buy", "L1", login=True)), source="b")
    persons = rows(project, "SELECT DISTINCT user_id FROM {events}")
    assert len(persons) == 2
    load_json_lines(project, lines(signup("L1", "dev1")), source="c")
    assert len(rows(project, "SELECT DISTINCT user_id FROM {events}")) == 1
    assert rows(project, "SELECT count(*) FROM {users}") == [(1,)]
    load_json_lines(project, lines(track("view", "dev1")), source="d")  # later anonymous events too
    assert len(rows(project, "SELECT DISTINCT user_id FROM {events}")) == 1


def test_several_devices_one_person_and_anonymous_bound_once(project: ProjectStore) -> None:
    r = load_json_lines(
        project, lines(signup("L1", "phone"), signup("L1", "tablet"), signup("L2", "phone")), source="s"
    )
    assert r.rejected == 1
    [(reason,)] = rows(project, "SELECT reason FROM {rejects}")
    assert "already bound to login id 'L1'" in reason
    load_json_lines(project, lines(track("a", "phone"), track("a", "tablet"), track("a", "L1", login=True)), source="e")
    assert len(rows(project, "SELECT DISTINCT user_id FROM {events}")) == 1


def test_unbind_detaches_future_records(project: ProjectStore) -> None:
    load_json_lines(project, lines(signup("L1", "shared_pad"), track("a", "shared_pad")), source="s")
    unbind = {
        "type": "track_id_unbind",
        "distinct_id": "shared_pad",
        "time": NOW_MS,
        "identities": {"$identity_anonymous_id": "shared_pad"},
    }
    r = load_json_lines(project, lines(unbind), source="u")
    assert r.rejected == 0
    load_json_lines(project, lines(track("b", "shared_pad", t=NOW_MS - 1000)), source="later")
    persons = dict(rows(project, "SELECT event, user_id FROM {events} WHERE event IN ('a', 'b')"))
    assert persons["a"] != persons["b"]
    bad = {
        "type": "track_id_unbind",
        "distinct_id": "ghost",
        "time": NOW_MS,
        "identities": {"$identity_anonymous_id": "ghost"},
    }
    assert load_json_lines(project, lines(bad), source="u2").rejected == 1


def test_typed_identities_bind_to_the_person(project: ProjectStore) -> None:
    bind = {
        "type": "track_id_bind",
        "event": "$BindID",
        "distinct_id": "L9",
        "time": NOW_MS - 5000,
        "properties": {"$is_login_id": True},
        "identities": {"$identity_login_id": "L9", "$identity_mobile": "13800000000", "$identity_anonymous_id": "d9"},
    }
    assert load_json_lines(project, lines(track("x", "d9"), bind), source="b").rejected == 0
    ids = rows(project, "SELECT id_type, user_id FROM {identities} ORDER BY id_type")
    assert {t for t, _ in ids} == {"$identity_anonymous_id", "$identity_login_id", "$identity_mobile"}
    assert len({p for _, p in ids}) == 1
    assert len(rows(project, "SELECT DISTINCT user_id FROM {events}")) == 1


def test_merge_keeps_profile_values_of_both(project: ProjectStore) -> None:
    load_json_lines(project, lines(profile("profile_set", "dev1", login=False, city="上海", age=30)), source="p1")
    load_json_lines(project, lines(profile("profile_set", "L1", gender="f", age=31)), source="p2")
    load_json_lines(project, lines(signup("L1", "dev1")), source="s")
    assert rows(project, "SELECT city, gender, age FROM {users}") == [("上海", "f", 31.0)]


def _seen_mismatches(project: ProjectStore) -> list[tuple[object, ...]]:
    """Persons whose first_seen/last_seen disagree with the first and last of their events."""
    return rows(
        project,
        "SELECT u.user_id, u.first_seen, min(e.time), u.last_seen, max(e.time) FROM {users} u "
        "JOIN {events} e USING (user_id) GROUP BY u.user_id, u.first_seen, u.last_seen "
        "HAVING u.first_seen IS DISTINCT FROM min(e.time) OR u.last_seen IS DISTINCT FROM max(e.time)",
    )


def test_several_devices_merging_into_one_login_in_one_batch_keep_first_and_last_seen(project: ProjectStore) -> None:
    """Found by the user-360 reference: three sign-ups of one login at the same instant, loaded after the devices'
    events, merged three persons into one in one UPDATE … FROM, which kept only one merged person's dates."""
    hour = 3_600_000
    t0 = NOW_MS - 300 * hour
    load_json_lines(
        project,
        lines(
            track("view", "a1", t=t0),
            track("view", "a2", t=t0 + 5 * hour),
            track("view", "L1", t=t0 + 100 * hour, login=True),
            track("view", "a3", t=t0 + 200 * hour),
        ),
        source="events",
    )
    load_json_lines(project, lines(*(signup("L1", a, t=t0 + 50 * hour) for a in ("a1", "a2", "a3"))), source="s")
    assert rows(project, "SELECT count(*) FROM {users}") == [(1,)]
    assert _seen_mismatches(project) == []


def test_merging_several_persons_at_once_keeps_a_profile_value_of_each_property(project: ProjectStore) -> None:
    load_json_lines(project, lines(profile("profile_set", "d1", login=False, city="上海")), source="p1")
    load_json_lines(project, lines(profile("profile_set", "d2", login=False, age=30)), source="p2")
    load_json_lines(project, lines(profile("profile_set", "L1", gender="f")), source="p3")
    load_json_lines(project, lines(signup("L1", "d1"), signup("L1", "d2")), source="s")
    assert rows(project, "SELECT city, gender, age FROM {users}") == [("上海", "f", 30.0)]


# --- property test against a plain-Python reference ---------------------------------------------------------


@st.composite
def identity_logs(draw: st.DrawFn) -> tuple[list[dict[str, object]], list[int]]:
    n_logins = draw(st.integers(1, 4))
    n_anons = draw(st.integers(1, 6))
    owner = {f"a{i}": draw(st.one_of(st.none(), st.integers(0, n_logins - 1))) for i in range(n_anons)}
    records: list[dict[str, object]] = []
    for anon, login in owner.items():
        if login is not None:
            records.append(signup(f"L{login}", anon, t=NOW_MS - draw(st.integers(1, 10_000))))
    n_events = draw(st.integers(1, 25))
    for k in range(n_events):
        if draw(st.booleans()):
            records.append({**track("e", f"a{draw(st.integers(0, n_anons - 1))}", t=NOW_MS - k), "event_id": f"ev{k}"})
        else:
            records.append(
                {**track("e", f"L{draw(st.integers(0, n_logins - 1))}", t=NOW_MS - k, login=True), "event_id": f"ev{k}"}
            )
    order = draw(st.permutations(range(len(records))))
    shuffled = [records[i] for i in order]
    cuts = sorted(draw(st.lists(st.integers(1, max(len(shuffled) - 1, 1)), max_size=4)))
    return shuffled, cuts


def reference_partition(records: list[dict[str, object]]) -> set[frozenset[str]]:
    """Union-find over ids: each signup joins a login id and an anonymous id."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for r in records:
        if r["type"] == "track_signup":
            parent[find(str(r["original_id"]))] = find(str(r["distinct_id"]))
    groups: dict[str, set[str]] = {}
    for r in records:
        if r["type"] == "track":
            groups.setdefault(find(str(r["distinct_id"])), set()).add(str(r["event_id"]))
    return {frozenset(g) for g in groups.values()}


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log=identity_logs())
def test_merge_is_order_independent(tmp_path: Path, log: tuple[list[dict[str, object]], list[int]]) -> None:
    records, cuts = log
    ws, _ = Workspace.init(tmp_path / f"w{time.monotonic_ns()}")
    try:
        project = ws.project()
        bounds = [0, *cuts, len(records)]
        for lo, hi in itertools.pairwise(bounds):
            if hi > lo:
                r = load_json_lines(project, [json.dumps(x) for x in records[lo:hi]], source="h")
                assert r.rejected == 0
        got: dict[int, set[str]] = {}
        for event_id, user_id in rows(project, "SELECT event_id, user_id FROM {events} WHERE event = 'e'"):
            got.setdefault(int(user_id), set()).add(str(event_id))  # type: ignore[call-overload]
        assert {frozenset(g) for g in got.values()} == reference_partition(records)
        # every person key that events point at exists in users, and merged persons are gone
        orphans = rows(project, "SELECT count(*) FROM {events} e ANTI JOIN {users} u USING (user_id)")
        assert orphans == [(0,)]
        assert _seen_mismatches(project) == []
    finally:
        ws.close()
