"""The facts a journey reads, loaded for a batch: on a simulated business (400 people, 90 days) with the user
models run, profile updates that give some people a time zone (valid and not), a profile tag computed on two
days, and segments refreshed or not. Every value is checked against a plain query of the table it comes from,
or against the records the test loaded; the batch of 100,000 keys is timed."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

import pyarrow as pa
import pytest

from userloop.engage import facts as facts_mod
from userloop.engage.facts import MODEL_OUTPUTS, Loaded, Needs, load_facts, needs_of
from userloop.engage.interpreter import Facts, Person, holds
from userloop.engage.journey import AllOf, InSegment, ModelIs, PropertyIs, TagIs, parse
from userloop.ingest import load_json_lines
from userloop.models.base import write_rows
from userloop.models.churn import ChurnConfig, ChurnModel
from userloop.models.clv_model import CLVConfig, CLVRunModel
from userloop.models.lifecycle import STAGES
from userloop.models.pipeline import run_models
from userloop.models.rfm import RFM_CLASSES
from userloop.profile import materialise as mat
from userloop.profile import segments, tags
from userloop.store import ProjectStore, Workspace
from userloop.store.duck import DuckSession
from userloop.store.meta import Project

SIM_END = date(2026, 6, 30)
TAG_DAY_1 = date(2026, 6, 30)
TAG_DAY_2 = date(2026, 7, 1)
#: The loader's "now" for the test's own profile records (the sim's data ends 2026-06-30).
NOW_MS = int(datetime(2026, 7, 2, tzinfo=UTC).timestamp() * 1000)
#: Login id → the ``$timezone`` it is given, and the zone a journey should see (None: the project's).
ZONES = {
    "u10000001": ("America/New_York", "America/New_York"),
    "u10000002": ("Europe/London", "Europe/London"),
    "u10000003": ("Mars/Olympus", None),  # no such zone
    "u10000005": ("America", None),  # a directory of the zone database, not a zone
    "u10000006": ("../../etc/passwd", None),  # a path
    "u10000008": ("", None),
}
LOGIN_TYPE = "$identity_login_id"
MOVER = "u10000007"  # moves to 拉萨 between the tag's two runs
NEW_CITY = "拉萨"
TARGET_CITY = "上海"


@dataclass
class World:
    ws: Workspace
    project: ProjectStore
    info: Project
    people: list[int]  # every person key in users
    login: dict[str, int]  # login id → person key
    home_city: int  # tag row id (unused but proves save)
    refreshed: int  # segment refreshed on TAG_DAY_2
    never: int  # segment saved, never refreshed
    model_runs: dict[str, Any]


def _profile(who: str, at_ms: int, props: dict[str, Any]) -> str:
    return json.dumps(
        {"type": "profile_set", "distinct_id": who, "time": at_ms, "properties": {"$is_login_id": True, **props}},
        ensure_ascii=False,
    )


def _raw(project: ProjectStore, text: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """An independent read: plain SQL on the project's tables (``{users}``, ``{model_rfm}`` …)."""
    names = {t: project.table(t) for t in ("users", "identities", "model_rfm", "model_lifecycle", "model_churn",
                                            "model_clv")}  # fmt: skip
    with project.store.lock:
        return project.con.execute(text.format(**names), params or []).fetchall()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from userloop.sim.run import run_simulation

    ws, _ = Workspace.init(tmp_path_factory.mktemp("facts") / "ws")
    run_simulation(ws, "default", users=400, days=90, seed=7, end_date=SIM_END)
    project = ws.project("default")
    info = ws.project_info("default")
    runs = run_models(
        project,
        SIM_END,
        only=["rfm", "lifecycle", "clv", "churn"],
        timezone=info.timezone,
        # small settings that keep the run to a few seconds: a named CLV model (no validation of candidates) and a
        # churn model trained on two snapshots
        models={
            "churn": ChurnModel(ChurnConfig(horizon_days=14, training_snapshots=2)),
            "clv": CLVRunModel(CLVConfig(clv_model="bgnbd", validate_models=False)),
        },
    )
    # an older run with values no model gives: the facts must come from the latest run only
    old_people = [int(r[0]) for r in _raw(project, "SELECT user_id FROM {model_rfm}")]
    old = pa.table({"user_id": pa.array(old_people, pa.int64()), "rfm_class": ["OLD"] * len(old_people)})
    write_rows(project, "model_rfm", date(2026, 6, 1), "old", old)
    logins = {str(v) for (v,) in _raw(project, "SELECT id_value FROM {identities} WHERE id_type = ?", [LOGIN_TYPE])}
    assert {*ZONES, MOVER} <= logins  # the records below update people the simulation made
    at = int(datetime(2026, 6, 30, 20, tzinfo=UTC).timestamp() * 1000)
    records = [_profile(who, at + k, {"$timezone": zone}) for k, (who, (zone, _)) in enumerate(ZONES.items())]
    result = load_json_lines(project, records, source="facts-test", now_ms=NOW_MS)
    assert result.rejected == 0
    row = tags.save(ws.meta, project, info.id, {"name": "home_city", "kind": "basic", "type": "string",
                                                "source": {"from": "profile", "property": "city"}})  # fmt: skip
    mat.materialise(project, ws.meta, info.id, info.timezone, TAG_DAY_1, names=["home_city"])
    moved = load_json_lines(project, [_profile(MOVER, NOW_MS - 3_600_000, {"city": NEW_CITY})], source="facts-test",
                            now_ms=NOW_MS)  # fmt: skip
    assert moved.rejected == 0
    mat.materialise(project, ws.meta, info.id, info.timezone, TAG_DAY_2, names=["home_city"])
    rule = {"type": "property", "property": "city", "op": "eq", "value": TARGET_CITY}
    refreshed = segments.save(ws.meta, project, info, name="shanghai", rule=rule)
    segments.refresh(ws.meta, project, info, refreshed.id, run_date=TAG_DAY_2)
    never = segments.save(ws.meta, project, info, name="never refreshed", rule=rule, refresh="manual")
    people = sorted(int(r[0]) for r in _raw(project, "SELECT user_id FROM {users}"))
    login = {
        str(v): int(u)
        for v, u in _raw(project, "SELECT id_value, user_id FROM {identities} WHERE id_type = ?", [LOGIN_TYPE])
    }
    yield World(ws, project, info, people, login, row.id, refreshed.id, never.id, runs)
    ws.close()


ALL = Needs(
    props=frozenset({"city", "birthday", "registered_at", "push_enabled", "total_spend", "first_seen", "$timezone"}),
    tags=frozenset({"home_city"}),
    models=frozenset(MODEL_OUTPUTS),
)


def _holds(when: AllOf, person: Person) -> bool:
    """``holds`` on a loaded person (a frozen :class:`Person` has read-only fields, which mypy does not match with
    the protocol's plain attributes; see the report)."""
    return holds(when, cast(Facts, person))


def _load(w: World, persons: list[int], needs: Needs) -> Loaded:
    return load_facts(w.project, w.ws.meta, w.info, persons, needs)


# needs ----------------------------------------------------------------------------------------------------------
def _journey(**extra: Any) -> dict[str, Any]:
    return {
        "name": "facts",
        "entry": {"kind": "event", "event": "order_paid"},
        "start": "strat",
        "who": {"all": [{"kind": "property", "property": "city", "value": "上海"}]},
        "nodes": [
            {"id": "strat", "kind": "strategy", "otherwise": "split", "strategies": [
                {"name": "vip", "when": {"all": [{"kind": "tag", "tag": "vip_level", "op": "gte", "value": 3},
                                                 {"kind": "model", "model": "churn_tier", "value": "high"}]},
                 "next": "bday"}]},
            {"id": "split", "kind": "condition", "otherwise": "done", "branches": [
                {"name": "seg", "when": {"all": [{"kind": "segment", "segment": 7, "member": False}]}, "next": "done"},
                {"name": "clv", "when": {"all": [{"kind": "model", "model": "clv", "op": "gt", "value": 100},
                                                 {"kind": "property", "property": "gender", "value": "f"}]},
                 "next": "done"}]},
            {"id": "bday", "kind": "wait", "until_property": "birthday", "next": "done"},
            {"id": "done", "kind": "exit"},
        ],
        **extra,
    }  # fmt: skip


def test_needs_of_walks_every_condition_and_wait() -> None:
    needs = needs_of(parse(_journey()))
    assert needs == Needs(
        props=frozenset({"city", "gender", "birthday"}),
        tags=frozenset({"vip_level"}),
        segments=frozenset({7}),
        models=frozenset({"churn_tier", "clv"}),
    )
    dated = needs_of(parse(_journey(entry={"kind": "date", "property": "anniversary"}, who={"all": []})))
    assert dated.props == {"anniversary", "gender", "birthday"}
    assert needs | dated == Needs(needs.props | {"anniversary"}, needs.tags, needs.segments, needs.models)
    assert not Needs() and bool(Needs(segments=frozenset({1})))


# properties and zones -------------------------------------------------------------------------------------------
def test_properties_match_the_users_table_and_unknown_people_get_an_empty_profile(world: World) -> None:
    unknown = [10**9, 10**9 + 1]
    loaded = _load(world, [*world.people, *unknown, world.people[0]], ALL)
    assert set(loaded) == {*world.people, *unknown}
    want = {
        int(r[0]): dict(zip(("city", "birthday", "registered_at", "push_enabled", "total_spend", "first_seen",
                             "$timezone"), r[1:], strict=True))
        for r in _raw(world.project, 'SELECT user_id, city, birthday, registered_at, push_enabled, total_spend, '
                                     'first_seen, "$timezone" FROM {users}')
    }  # fmt: skip
    assert len(want) == len(world.people) == 400
    for p in world.people:
        assert dict(loaded[p].props) == want[p], p
    typed = [loaded[p].prop("birthday") for p in world.people if loaded[p].prop("birthday") is not None]
    assert typed and all(type(d) is date for d in typed)  # a DATE property stays a date, for Wait.until_property
    assert all(isinstance(loaded[p].prop("registered_at"), datetime | None) for p in world.people)
    for p in unknown:
        assert loaded[p] == Person(p, zone="Asia/Shanghai", project_zone="Asia/Shanghai")
        assert loaded[p].prop("city") is None and not loaded[p].segments


def test_the_zone_is_a_valid_timezone_property_else_the_projects(world: World) -> None:
    loaded = _load(world, world.people, Needs())
    assert world.info.timezone == "Asia/Shanghai"
    for who, (given, zone) in ZONES.items():
        person = loaded[world.login[who]]
        stored = _raw(world.project, 'SELECT "$timezone" FROM {users} WHERE user_id = ?', [world.login[who]])
        assert stored == [(given,)]  # what the test loaded is what the table holds
        assert person.zone == (zone or "Asia/Shanghai"), who
        assert person.project_zone == "Asia/Shanghai"
    others = set(world.people) - {world.login[w] for w in ZONES}
    assert {loaded[p].zone for p in others} == {"Asia/Shanghai"}
    # another zone property, one the project does not have: the project's zone for everyone
    plain = load_facts(world.project, world.ws.meta, world.info, world.people, Needs(), zone_property="$tz")
    assert {p.zone for p in plain.values()} == {"Asia/Shanghai"}


def test_an_unknown_or_hostile_property_name_is_empty_with_a_warning(world: World) -> None:
    hostile = 'x"; DROP TABLE users; --'
    loaded = _load(world, world.people[:5], Needs(props=frozenset({hostile, "no_such", "city"})))
    for person in loaded.values():
        assert person.prop(hostile) is None and person.prop("no_such") is None
    assert any("'no_such'" in w for w in loaded.warnings) and any("DROP TABLE" in w for w in loaded.warnings)
    assert _raw(world.project, "SELECT count(*) FROM {users}") == [(400,)]


# tags -----------------------------------------------------------------------------------------------------------
def test_tag_values_are_the_current_ones(world: World) -> None:
    loaded = _load(world, world.people, Needs(tags=frozenset({"home_city", "never_defined"})))
    cities = {int(u): c for u, c in _raw(world.project, "SELECT user_id, city FROM {users}")}
    mover = world.login[MOVER]
    assert cities[mover] == NEW_CITY  # the profile update reached the table
    for p in world.people:
        assert loaded[p].tag("home_city") == cities[p], p  # NULL city → no tag value → None
    assert loaded[mover].tag("home_city") == NEW_CITY  # the second run's value, not the first's
    assert loaded[mover].tag("never_defined") is None
    assert any("'never_defined'" in w and "not defined" in w for w in loaded.warnings)
    # a condition on the tag behaves as the interpreter sees it
    when = AllOf(all=[TagIs(tag="home_city", value=NEW_CITY)])
    assert [p for p in world.people if _holds(when, loaded[p])] == [mover]


def test_a_disabled_tag_keeps_its_last_values_with_a_warning(world: World) -> None:
    tags.update(world.ws.meta, world.project, world.info.id, "home_city", enabled=False)
    try:
        loaded = _load(world, world.people, Needs(tags=frozenset({"home_city"})))
    finally:
        tags.update(world.ws.meta, world.project, world.info.id, "home_city", enabled=True)
    assert loaded[world.login[MOVER]].tag("home_city") == NEW_CITY
    assert any("'home_city' is disabled" in w for w in loaded.warnings)


# segments -------------------------------------------------------------------------------------------------------
def test_segment_membership_is_the_last_refresh_and_a_never_refreshed_one_is_empty(world: World) -> None:
    missing = 999_999
    needs = Needs(segments=frozenset({world.refreshed, world.never, missing}))
    loaded = _load(world, world.people, needs)
    shanghai = {int(u) for (u,) in _raw(world.project, "SELECT user_id FROM {users} WHERE city = ?", [TARGET_CITY])}
    assert shanghai and len(shanghai) < len(world.people)
    assert {p for p in world.people if loaded[p].in_segment(world.refreshed)} == shanghai
    assert not any(loaded[p].in_segment(world.never) or loaded[p].in_segment(missing) for p in world.people)
    assert any(f"segment {world.never} has never been refreshed" in w for w in loaded.warnings)
    assert any(f"segment {missing} does not exist" in w for w in loaded.warnings)
    out = AllOf(all=[InSegment(segment=world.refreshed, member=False)])
    assert {p for p in world.people if _holds(out, loaded[p])} == set(world.people) - shanghai


# models ---------------------------------------------------------------------------------------------------------
def test_model_outputs_come_from_the_latest_run(world: World) -> None:
    for name in ("rfm", "lifecycle", "clv", "churn"):
        assert "error" not in world.model_runs[name], world.model_runs[name]
    loaded = _load(world, world.people, Needs(models=frozenset(MODEL_OUTPUTS)))
    assert not loaded.warnings
    for name, (model, column) in MODEL_OUTPUTS.items():
        rows = _raw(
            world.project,
            f'SELECT user_id, "{column}" FROM {{model_{model}}} '
            f"WHERE run_date = (SELECT max(run_date) FROM {{model_{model}}})",
        )
        want = {int(u): (None if isinstance(v, float) and math.isnan(v) else v) for u, v in rows}
        assert want, name
        for p in world.people:
            assert loaded[p].model(name) == want.get(p), (name, p)
    rfm = {loaded[p].model("rfm_class") for p in world.people} - {None}
    assert rfm and rfm <= set(RFM_CLASSES)  # the class code, and never the older run's "OLD"
    assert {loaded[p].model("lifecycle") for p in world.people} - {None} <= set(STAGES)
    assert {loaded[p].model("churn_tier") for p in world.people} - {None} <= {"low", "medium", "high"}
    probs = [loaded[p].model("churn_probability") for p in world.people if loaded[p].model("churn_probability")]
    assert probs and all(0.0 <= x <= 1.0 for x in probs)
    high = AllOf(all=[ModelIs(model="churn_tier", value="high")])
    assert {p for p in world.people if _holds(high, loaded[p])} == {
        int(u) for (u,) in _raw(world.project, "SELECT user_id FROM {model_churn} WHERE risk_tier = 'high'")
    }


def test_models_not_run_are_empty_with_a_warning(world: World) -> None:
    world.ws.create_project("blank", timezone="Europe/Berlin")
    project, info = world.ws.project("blank"), world.ws.project_info("blank")
    loaded = load_facts(project, world.ws.meta, info, [1, 2], Needs(props=frozenset({"city"}), models=frozenset(
        MODEL_OUTPUTS)))  # fmt: skip
    assert loaded == {p: Person(p, zone="Europe/Berlin", project_zone="Europe/Berlin") for p in (1, 2)}
    assert sum("has not run" in w for w in loaded.warnings) == len(MODEL_OUTPUTS)
    assert any("'city'" in w for w in loaded.warnings)
    odd = load_facts(project, world.ws.meta, info, [1], Needs(models=frozenset({"rfm"})))
    assert odd[1].model("rfm") is None and any("'rfm' is not a model output" in w for w in odd.warnings)


# the batch ------------------------------------------------------------------------------------------------------
def test_one_statement_per_kind_with_the_ids_as_a_table(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    texts: list[str] = []
    real = DuckSession.arrow

    def spy(self: DuckSession, stmt: Any, params: Any = None) -> pa.Table:
        texts.append(self.render(stmt))
        return real(self, stmt, params)

    monkeypatch.setattr(DuckSession, "arrow", spy)
    persons = [*world.people, 987_654_321]
    needs = ALL | Needs(segments=frozenset({world.refreshed}))
    _load(world, persons, needs)
    assert len(texts) == 4  # properties with the zone, tags, segments, models
    assert all(facts_mod.IDS_VIEW in t for t in texts)
    assert not any("987654321" in t for t in texts)  # the keys travel as data, never as SQL text
    texts.clear()
    _load(world, persons, Needs())  # only the zone is read
    assert len(texts) == 1


def test_a_batch_of_100k_keys_mostly_unknown_loads_in_seconds(world: World) -> None:
    persons = list(range(1, 100_001))  # the 400 real keys are among them
    assert set(world.people) <= set(persons)
    needs = ALL | Needs(segments=frozenset({world.refreshed}))
    started = time.perf_counter()
    loaded = _load(world, persons, needs)
    seconds = time.perf_counter() - started
    print(f"\n100,000 keys ({len(world.people)} known): {seconds:.2f} s")
    assert len(loaded) == 100_000
    assert seconds < 10.0, seconds
    small = _load(world, world.people, needs)
    assert all(loaded[p] == small[p] for p in world.people)
    unknown = loaded[100_000]
    assert unknown == Person(100_000, zone="Asia/Shanghai", project_zone="Asia/Shanghai")
    # a condition on a missing value is false, and "not a member" is true, for someone the project has not seen
    assert not _holds(AllOf(all=[PropertyIs(property="city", op="is_set")]), unknown)
    assert _holds(AllOf(all=[InSegment(segment=world.refreshed, member=False)]), unknown)


def test_an_empty_batch_is_empty(world: World) -> None:
    assert _load(world, [], ALL) == {}
