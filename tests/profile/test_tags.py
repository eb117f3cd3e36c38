"""Tags by example: profile and model tags, SQL and upload tags, incremental runs around identity merges, the
starter set on a simulated business, coverage, and the errors a bad definition gets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from tests.query.logs import fresh_project, person_names
from userloop.core.errors import NotFoundError, QueryError, ReadOnlyViolation, UserloopError, ValidationError
from userloop.ingest import load_json_lines
from userloop.profile import history, tags
from userloop.profile import materialise as mat
from userloop.profile.materialise import upload
from userloop.query.compile import render
from userloop.store import ProjectStore, Workspace

TZ = "Asia/Shanghai"


def ms(text: str) -> int:
    """Epoch ms of a UTC time written ``YYYY-MM-DD HH:MM``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


_ids = iter(range(10**6))


def track(event: str, who: str, at: str, **props: Any) -> dict[str, Any]:
    if who.startswith("L"):
        props["$is_login_id"] = True
    return {"type": "track", "event": event, "distinct_id": who, "time": ms(at), "event_id": f"x{next(_ids)}",
            "properties": props}  # fmt: skip


def signup(login: str, anon: str, at: str) -> dict[str, Any]:
    return {"type": "track_signup", "event": "$SignUp", "distinct_id": login, "original_id": anon, "time": ms(at),
            "event_id": f"s{next(_ids)}", "properties": {"$is_login_id": True}}  # fmt: skip


def profile_set(who: str, at: str, **props: Any) -> dict[str, Any]:
    return {"type": "profile_set", "distinct_id": who, "time": ms(at), "properties": {"$is_login_id": True, **props}}


def load(project: ProjectStore, *records: dict[str, Any]) -> None:
    result = load_json_lines(project, [json.dumps(r) for r in records], source="test")
    assert result.rejected == 0


@pytest.fixture
def fresh(ws: Workspace) -> tuple[ProjectStore, int]:
    name, project = fresh_project(ws, TZ)
    return project, ws.project_info(name).id


def values(project: ProjectStore, tag: str, on: date | None = None) -> dict[str, Any]:
    rows = project.con.execute(render(history.values_on(project.schema, f"tag_{tag}", on))).fetchall()
    names = person_names(project)
    return {names.get(int(u), str(u)): v for u, v in rows}


def run(ws: Workspace, project: ProjectStore, project_id: int, day: date, **kw: Any) -> dict[str, history.RunStats]:
    return {r.target: r for r in mat.materialise(project, ws.meta, project_id, TZ, day, **kw)}


def define(ws: Workspace, project: ProjectStore, project_id: int, **doc: Any) -> tags.TagRow:
    return tags.save(ws.meta, project, project_id, doc)


# profile and model tags -----------------------------------------------------------------------------------------
def test_profile_tags_derive_age_tenure_and_birthday(ws: Workspace, fresh: tuple[ProjectStore, int]) -> None:
    project, pid = fresh
    load(
        project,
        profile_set("L1", "2026-01-01 00:00", birthday="2000-02-29", registered_at="2026-03-01 15:59:00", gender="f"),
        profile_set("L2", "2026-01-01 00:00", birthday="1990-03-02", registered_at="2026-03-01 16:00:00"),
        profile_set("L3", "2026-01-01 00:00", birthday="2026-05-01", gender=""),
    )
    define(ws, project, pid, name="age", kind="basic", type="number",
           source={"from": "profile", "property": "birthday", "derive": "years_since"})  # fmt: skip
    define(ws, project, pid, name="tenure", kind="basic", type="number",
           source={"from": "profile", "property": "registered_at", "derive": "days_since"})  # fmt: skip
    define(ws, project, pid, name="bday", kind="basic", type="string",
           source={"from": "profile", "property": "birthday", "derive": "month_day"})  # fmt: skip
    define(ws, project, pid, name="gender", kind="basic", type="enum", values=["f", "m"],
           source={"from": "profile", "property": "gender"})  # fmt: skip
    run(ws, project, pid, date(2026, 3, 1))
    # 29 February 2000 turns 26 on 1 March 2026; 2 March 1990 is still 35 on 1 March
    assert values(project, "age") == {"L1": 26.0, "L2": 35.0}  # a birthday after the run date has no age yet
    # registered_at is UTC: 15:59 is 23:59 in Shanghai (day 0), 16:00 is already 2 March (not yet registered)
    assert values(project, "tenure") == {"L1": 0.0}
    assert values(project, "bday") == {"L1": "02-29", "L2": "03-02", "L3": "05-01"}
    assert values(project, "gender") == {"L1": "f"}  # an empty text is no value
    run(ws, project, pid, date(2026, 3, 2))
    assert values(project, "age") == {"L1": 26.0, "L2": 36.0}
    assert values(project, "tenure") == {"L1": 1.0, "L2": 0.0}
    assert values(project, "age", date(2026, 3, 1)) == {"L1": 26.0, "L2": 35.0}  # history keeps the first day


def _model_table(project: ProjectStore, rows: list[tuple[int, str, float, str]]) -> None:
    project.con.execute(
        f"CREATE TABLE IF NOT EXISTS {project.table('model_churn')} (user_id BIGINT, run_date DATE, "
        "model_version VARCHAR, churn_probability DOUBLE, risk_tier VARCHAR)"
    )
    project.con.executemany(f"INSERT INTO {project.table('model_churn')} VALUES (?, ?, 'v1', ?, ?)",
                            [[u, date.fromisoformat(d), p, t] for u, d, p, t in rows])  # fmt: skip


def test_model_tags_read_the_latest_run_on_or_before_the_date(ws: Workspace, fresh: tuple[ProjectStore, int]) -> None:
    project, pid = fresh
    load(project, track("view", "L1", "2026-02-01 00:00"), track("view", "L2", "2026-02-01 00:00"))
    ids = {v: k for k, v in person_names(project).items()}
    define(ws, project, pid, name="risk", kind="predictive", type="enum", values=["low", "medium", "high"],
           source={"from": "model", "model": "churn", "field": "risk_tier"})  # fmt: skip
    assert run(ws, project, pid, date(2026, 2, 28))["tag_risk"].stats["note"].startswith("model 'churn' has not run")
    first, second = "2026-03-01", "2026-03-08"
    _model_table(project, [(ids["L1"], first, 0.2, "low"), (ids["L2"], first, 0.9, "unknown"),
                           (ids["L1"], second, 0.7, "high"), (ids["L2"], second, 0.5, "medium")])  # fmt: skip
    define(ws, project, pid, name="risk_band", kind="predictive", type="enum",
           bins={"edges": [0.3, 0.6], "labels": ["lo", "mid", "hi"]},
           source={"from": "model", "model": "churn", "field": "churn_probability"})  # fmt: skip
    run(ws, project, pid, date(2026, 2, 28))
    assert values(project, "risk") == {} and values(project, "risk_band") == {}
    run(ws, project, pid, date(2026, 3, 5))
    assert values(project, "risk") == {"L1": "low"}  # "unknown" is not one of the enumeration's values
    assert values(project, "risk_band") == {"L1": "lo", "L2": "hi"}
    run(ws, project, pid, date(2026, 3, 8))
    assert values(project, "risk") == {"L1": "high", "L2": "medium"}
    assert values(project, "risk_band", date(2026, 3, 6)) == {"L1": "lo", "L2": "hi"}
    with pytest.raises(ValidationError, match="has no output 'risk'; its outputs include risk_tier"):
        define(ws, project, pid, name="r2", kind="predictive", type="string",
               source={"from": "model", "model": "churn", "field": "risk"})  # fmt: skip
    with pytest.raises(ValidationError, match="unknown model 'nope'; the models are rfm"):
        define(ws, project, pid, name="r3", kind="predictive", type="string",
               source={"from": "model", "model": "nope", "field": "x"})  # fmt: skip
    with pytest.raises(ValidationError, match="enum tag needs text values.*add bins"):
        define(ws, project, pid, name="r4", kind="predictive", type="enum", values=["a"],
               source={"from": "model", "model": "churn", "field": "churn_probability"})  # fmt: skip


# SQL and upload tags ----------------------------------------------------------------------------------------------
def _sql_tag(name: str, query: str, type_: str = "number") -> dict[str, Any]:
    return {"name": name, "kind": "sql", "type": type_, "source": {"from": "sql", "query": query}}


def test_sql_tags_run_sandboxed_and_time_limited(ws: Workspace, fresh: tuple[ProjectStore, int]) -> None:
    project, pid = fresh
    load(project, *[track("view", f"a{i % 7}", f"2026-02-0{1 + i % 5} 10:00") for i in range(60)])
    define(ws, project, pid, **_sql_tag("views", "SELECT user_id, count(*) AS value FROM events GROUP BY user_id"))
    run(ws, project, pid, date(2026, 2, 10))
    assert values(project, "views") == {f"a{i}": float(len(range(i, 60, 7))) for i in range(7)}
    refused = ("DELETE FROM events", "SELECT user_id, 1 AS value FROM main.events", "SELECT * FROM registry",
               "SELECT 1 AS user_id, 2 AS value FROM read_csv('/etc/passwd')")  # fmt: skip
    for query in refused:
        with pytest.raises(ReadOnlyViolation):
            define(ws, project, pid, **_sql_tag("bad", query))
    with pytest.raises(ValidationError, match="must return the columns user_id and value"):
        define(ws, project, pid, **_sql_tag("bad", "SELECT user_id AS uid FROM users"))
    define(ws, project, pid, **_sql_tag("twice", "SELECT user_id, 1 AS value FROM events"))
    with pytest.raises(ValidationError, match="each person may have one"):
        run(ws, project, pid, date(2026, 2, 10), names=["twice"])
    slow = "SELECT a.user_id, count(*) AS value FROM events a, events b, events c, events d, events f GROUP BY 1"
    define(ws, project, pid, **_sql_tag("slow", slow))
    with pytest.raises(QueryError, match="ran longer than 0.3 s") as caught:
        run(ws, project, pid, date(2026, 2, 10), names=["slow"], sql_timeout_s=0.3)
    assert caught.value.code == "query_timeout"


def test_sql_tags_see_personal_data_masked(ws: Workspace, fresh: tuple[ProjectStore, int]) -> None:
    """A SQL tag's values are readable by anyone who reads tags, so its query sees phones and e-mails masked,
    as an analyst without the pii right does (it runs in the analyst-SQL sandbox)."""
    project, pid = fresh
    load(project, profile_set("L1", "2026-02-01 10:00", phone="13812345678", email="li.lei@example.com"))
    define(
        ws, project, pid, **_sql_tag("contact", "SELECT user_id, phone || ' ' || email AS value FROM users", "string")
    )
    run(ws, project, pid, date(2026, 2, 10))
    [value] = values(project, "contact").values()
    assert "12345678" not in value and "li.lei" not in value and "example.com" in value


def test_upload_keeps_valid_rows_and_reports_rejects(ws: Workspace, fresh: tuple[ProjectStore, int]) -> None:
    project, pid = fresh
    load(project, track("view", "a1", "2026-02-01 00:00"), track("view", "L0", "2026-02-01 00:00"),
         track("view", "a2", "2026-02-01 00:00"))  # fmt: skip
    define(ws, project, pid, name="vip", kind="upload", type="enum", values=["silver", "gold"],
           source={"from": "upload"})  # fmt: skip
    text = "id,level\nL0,gold\nnobody,gold\na1,platinum\n,gold\nL0,silver\na2,silver\n"
    out = upload(ws.meta, project, pid, "vip", text, id_column="id", id_kind="distinct_id",
                      value_column="level", run_date=date(2026, 2, 2))  # fmt: skip
    assert (out["rows"], out["accepted"], out["rejected"]) == (6, 2, 4)
    assert [(r["row"], r["field"]) for r in out["rejects"]] == [(2, "id"), (3, "level"), (4, "id"), (5, "id")]
    reasons = [r["reason"] for r in out["rejects"]]
    assert reasons[0] == "unknown distinct_id 'nobody'" and "'platinum' is not one of" in reasons[1]
    assert reasons[2] == "no id" and reasons[3] == "this person is already given on row 1"
    stored = [r for r in project.recent_rejects(20) if r["source"] == "tag_upload:vip"]
    assert sorted(r["row"] for r in stored) == [2, 3, 4, 5]
    assert values(project, "vip") == {"L0": "gold", "a2": "silver"}
    assert out["run"]["stats"]["distribution"]["values"] == [{"value": "silver", "count": 1},
                                                             {"value": "gold", "count": 1}]  # fmt: skip
    # materialising leaves uploaded values alone, and refuses to compute an upload tag
    run(ws, project, pid, date(2026, 2, 3))
    assert values(project, "vip") == {"L0": "gold", "a2": "silver"}
    with pytest.raises(ValidationError, match="takes its values from uploads"):
        run(ws, project, pid, date(2026, 2, 3), names=["vip"])
    with pytest.raises(ValidationError, match="name the CSV column"):
        upload(ws.meta, project, pid, "vip", text, id_column="id", id_kind="distinct_id", value_column=None,
                    run_date=date(2026, 2, 3))  # fmt: skip
    with pytest.raises(ValidationError, match="no column 'who'; its columns are id, level"):
        upload(ws.meta, project, pid, "vip", text, id_column="who", id_kind="distinct_id",
                    value_column="level", run_date=date(2026, 2, 3))  # fmt: skip
    # a yes/no list needs no value column; ids may be person keys
    define(ws, project, pid, name="invited", kind="upload", type="bool", source={"from": "upload"})
    key = {v: k for k, v in person_names(project).items()}["a1"]
    out = upload(ws.meta, project, pid, "invited", f"user_id\n{key}\nx1\n999999\n{2**64}\n", id_column="user_id",
                      id_kind="user_id", value_column=None, run_date=date(2026, 2, 3))  # fmt: skip
    assert values(project, "invited") == {"a1": True}
    assert [r["reason"] for r in out["rejects"]] == [
        "user_id 'x1' is not a person key (a 64-bit whole number)",
        "unknown user_id '999999'",
        f"user_id '{2**64}' is not a person key (a 64-bit whole number)",
    ]


# incremental runs -------------------------------------------------------------------------------------------------
@pytest.fixture
def exact_increments() -> Iterator[None]:
    """Loads in a test are milliseconds apart: look back no further than the watermark, never fall back to full."""
    with patch.object(mat, "WATERMARK_MARGIN", timedelta(0)), patch.object(mat, "INCREMENTAL_MAX_SHARE", 1e9):
        yield


@pytest.mark.usefixtures("exact_increments")
def test_incremental_run_follows_merges_new_days_and_new_people(ws: Workspace, fresh: tuple[ProjectStore, int]) -> None:
    project, pid = fresh
    load(project, track("view", "a0", "2026-02-01 01:00"), track("view", "a0", "2026-02-01 02:00"),
         track("view", "L0", "2026-02-01 03:00"), track("view", "b0", "2026-02-01 04:00"),
         track("view", "b0", "2026-02-05 04:00"), track("view", "c0", "2026-02-01 05:00"))  # fmt: skip
    # b0's second view is already loaded but dated after the first run; c0 does nothing more
    define(ws, project, pid, name="views", kind="behaviour", type="number",
           source={"from": "events", "event": "view", "agg": "count"})  # fmt: skip
    define(ws, project, pid, name="views_7d", kind="behaviour", type="number",
           source={"from": "events", "event": "view", "agg": "count", "window": {"last": 7}})  # fmt: skip
    run(ws, project, pid, date(2026, 2, 2))
    before = values(project, "views")
    assert before == {"a0": 2.0, "L0": 1.0, "b0": 1.0, "c0": 1.0}
    old_a0 = {v: k for k, v in person_names(project).items()}["a0"]
    load(project, signup("L0", "a0", "2026-02-03 00:00"), profile_set("p9", "2026-02-03 00:00", city="x"))
    runs = run(ws, project, pid, date(2026, 2, 6))
    assert runs["tag_views"].stats["mode"] == "incremental" and runs["tag_views_7d"].stats["mode"] == "full"
    # L0 now holds a0's views; a0's person is gone; b0's later view counts; p9 (no events) has none
    assert values(project, "views") == {"L0": 3.0, "b0": 2.0, "p9": 0.0, "c0": 1.0}
    assert old_a0 not in {int(u) for u, _ in project.con.execute(
        render(history.values_on(project.schema, "tag_views", None))).fetchall()}  # fmt: skip
    assert runs["tag_views"].stats["touched"] == 4  # L0, b0, p9 and the merged a0; not c0
    before[str(old_a0)] = before.pop("a0")  # a0's old person key has no name any more
    assert values(project, "views", date(2026, 2, 2)) == before
    run(ws, project, pid, date(2026, 2, 6), full=True)
    assert values(project, "views") == {"L0": 3.0, "b0": 2.0, "p9": 0.0, "c0": 1.0}


def test_event_tag_with_a_profile_filter_reads_the_current_profile(
    ws: Workspace, fresh: tuple[ProjectStore, int]
) -> None:
    project, pid = fresh
    load(project, profile_set("L1", "2026-02-01 00:00", city="sh"), profile_set("L2", "2026-02-01 00:00", city="bj"),
         track("pay", "L1", "2026-02-01 01:00", amount=5.0), track("pay", "L1", "2026-02-01 02:00", amount=7.5),
         track("pay", "L2", "2026-02-01 03:00", amount=1.0))  # fmt: skip
    row = define(ws, project, pid, name="sh_spend", kind="behaviour", type="number",
                 source={"from": "events", "event": "pay", "agg": "sum", "property": "amount",
                         "filters": [{"property": "city", "source": "user", "op": "eq", "value": "sh"}]})  # fmt: skip
    assert tags.as_dict(row)["incremental"] is False  # a profile change alone can change it
    run(ws, project, pid, date(2026, 2, 1))
    assert values(project, "sh_spend") == {"L1": 12.5, "L2": 0.0}
    load(project, profile_set("L2", "2026-02-02 00:00", city="sh"))
    assert run(ws, project, pid, date(2026, 2, 2))["tag_sh_spend"].stats["mode"] == "full"
    assert values(project, "sh_spend") == {"L1": 12.5, "L2": 1.0}


# the starter set ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, int]]:
    from userloop.models.pipeline import run_models
    from userloop.sim.run import run_simulation

    ws, _ = Workspace.init(Path(tmp_path_factory.mktemp("starter")) / "ws")
    run_simulation(ws, "default", users=500, days=150, seed=11, end_date=date(2026, 6, 30))
    info = ws.project_info("default")
    run_models(ws.project("default"), date(2026, 6, 30), timezone=info.timezone)
    yield ws, info.id
    ws.close()


def test_starter_set_installs_once_and_materialises_sanely(simulated: tuple[Workspace, int]) -> None:
    ws, pid = simulated
    project = ws.project("default")
    rows = tags.install_starter(ws.meta, project, pid)
    assert len(rows) >= 30 and {r.kind for r in rows} == {"basic", "behaviour", "result", "predictive"}
    assert all(tags.tag_of(r).title_zh and tags.tag_of(r).title_en for r in rows)
    assert [r.id for r in tags.install_starter(ws.meta, project, pid)] == [r.id for r in rows]
    runs = {r.target.removeprefix("tag_"): r for r in mat.materialise(project, ws.meta, pid, TZ, date(2026, 6, 30))}
    assert set(runs) == {r.name for r in rows}
    persons = runs["city"].stats["persons"]
    assert persons == project.con.execute(f"SELECT count(*) FROM {project.table('users')}").fetchall()[0][0]
    for name, r in runs.items():
        assert r.users > 0, f"{name} has no values"
        assert 0 < r.stats["coverage"] <= 1 and r.stats["users"] == r.users
    for name in ("city", "channel", "orders_30d", "repurchase_state", "lifecycle_stage"):
        assert runs[name].stats["coverage"] == 1.0, name
    # repurchase state agrees with the lifecycle model's own order counts
    stage = dict(project.con.execute(
        f"SELECT user_id, CASE WHEN orders = 0 THEN 'never' WHEN orders = 1 THEN 'once' ELSE 'repeat' END "
        f"FROM {project.table('model_lifecycle')}").fetchall())  # fmt: skip
    mine = dict(project.con.execute(render(history.values_on(project.schema, "tag_repurchase_state"))).fetchall())
    assert mine == stage
    dist = runs["lifecycle_stage"].stats["distribution"]
    assert [v["value"] for v in dist["values"]] == ["introduction", "growth", "maturity", "dormancy", "churn"]
    assert sum(v["count"] for v in dist["values"]) == runs["lifecycle_stage"].users
    orders = runs["orders_30d"].stats["distribution"]
    assert orders["min"] == 0 and orders["max"] >= orders["quantiles"]["p90"] >= orders["quantiles"]["p10"] >= 0
    assert sum(b["count"] for b in orders["histogram"]) == persons
    dates = runs["last_order_date"].stats["distribution"]
    assert dates["max"] <= "2026-06-30" and sum(c["count"] for c in dates["counts"]) == runs["last_order_date"].users


# definitions, storage, coverage -------------------------------------------------------------------------------------
def _events(**source: Any) -> dict[str, Any]:
    return {"from": "events", "event": "pay", **source}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"name": "Bad-Name", "kind": "basic", "type": "string", "source": {"from": "profile", "property": "city"}},
         "name: String should match pattern"),
        ({"name": "s", "kind": "behaviour", "type": "number", "source": _events(agg="sum", property="channel")},
         "aggregate 'sum' works on numbers; event property 'channel' is STRING"),
        ({"name": "s", "kind": "behaviour", "type": "number", "source": _events(agg="sum")},
         "aggregate 'sum' needs a 'property'"),
        ({"name": "s", "kind": "behaviour", "type": "number", "source": _events(agg="count", property="amount")},
         "aggregate 'count' takes no 'property'"),
        ({"name": "s", "kind": "behaviour", "type": "number", "source": _events(agg="max", property="amont")},
         "unknown event property 'amont'; similar: amount"),
        ({"name": "s", "kind": "behaviour", "type": "number", "source": {"from": "events", "event": "pai",
                                                                          "agg": "count"}},
         "the project has no event 'pai'; similar: pay"),
        ({"name": "s", "kind": "behaviour", "type": "enum", "source": _events(agg="count")},
         "an enum tag needs 'values'"),
        ({"name": "s", "kind": "behaviour", "type": "number", "bins": {"edges": [1], "labels": ["a", "b"]},
          "source": _events(agg="count")}, "the type must be 'enum'"),
        ({"name": "s", "kind": "behaviour", "type": "enum", "bins": {"edges": [3, 1], "labels": ["a", "b", "c"]},
          "source": _events(agg="count")}, "bin edges must increase strictly"),
        ({"name": "s", "kind": "behaviour", "type": "string", "source": _events(agg="count")},
         "declared string but its source gives number values"),
        ({"name": "s", "kind": "basic", "type": "number", "source": _events(agg="count")},
         "a basic tag takes its values from profile, not from events"),
        ({"name": "s", "kind": "behaviour", "type": "number", "source": _events(agg="count", filters=[
            {"property": "amount", "op": "gt", "value": "lots"}])}, "cannot use the value 'lots'"),
        ({"name": "s", "kind": "basic", "type": "number", "source": {"from": "profile", "property": "city",
                                                                      "derive": "years_since"}},
         "derive 'years_since' works on a date"),
        ({"name": "s", "kind": "behaviour", "type": "number", "source": {"from": "somewhere"}},
         "does not match any of the expected tags"),
    ],
)  # fmt: skip
def test_bad_definitions_are_refused_with_the_reason(ws: Workspace, doc: dict[str, Any], message: str) -> None:
    name, project = fresh_project(ws, TZ)
    load(project, track("pay", "a1", "2026-02-01 00:00", amount=3.0, channel="x"), profile_set("L1", "2026-02-01 00:00",
                                                                                                 city="c"))  # fmt: skip
    with pytest.raises(ValidationError, match=re.escape(message)):
        tags.save(ws.meta, project, ws.project_info(name).id, doc)


def test_update_delete_enable_coverage_and_features(ws: Workspace, fresh: tuple[ProjectStore, int]) -> None:
    project, pid = fresh
    load(project, track("pay", "a1", "2026-02-01 00:00", amount=3.0), track("pay", "a2", "2026-02-02 00:00"))
    doc = {"name": "pays", "title_en": "Payments", "kind": "behaviour", "type": "enum",
           "bins": {"edges": [1, 2], "labels": ["none", "one", "many"]},
           "source": {"from": "events", "event": "pay", "agg": "count"}}  # fmt: skip
    define(ws, project, pid, **doc)
    with pytest.raises(ValidationError, match="already exists"):
        define(ws, project, pid, **doc)
    run(ws, project, pid, date(2026, 2, 1))
    run(ws, project, pid, date(2026, 2, 2))
    cov = mat.coverage(project, ws.meta, pid, "pays")
    assert [(s["run_date"], s["users"], s["coverage"]) for s in cov["series"]] == [("2026-02-01", 1, 1.0),
                                                                                   ("2026-02-02", 2, 1.0)]  # fmt: skip
    assert cov["latest"]["distribution"]["values"] == [{"value": "none", "count": 0}, {"value": "one", "count": 2},
                                                       {"value": "many", "count": 0}]  # fmt: skip
    [feature] = tags.tag_features(ws.meta, pid, project.schema, project=project)
    assert (feature.name, feature.label, feature.type, feature.order) == ("tag:pays", "Payments", "enum",
                                                                          ("none", "one", "many"))  # fmt: skip
    assert sorted(project.con.execute(render(feature.source)).fetchall())[0][1] == "one"
    assert tags.tag_infos(ws.meta, pid) == {"pays": ("enum", ("none", "one", "many"))}
    # the same definition keeps the history; a new meaning starts it again; the name cannot change
    tags.update(ws.meta, project, pid, "pays", {k: v for k, v in doc.items() if k != "name"})
    assert len(history.runs(project, "tag_pays")) == 2
    tags.update(ws.meta, project, pid, "pays", {**doc, "bins": {"edges": [2], "labels": ["few", "many"]}})
    assert history.runs(project, "tag_pays") == [] and tags.tag_infos(ws.meta, pid)["pays"][1] == ("few", "many")
    with pytest.raises(ValidationError, match="cannot be renamed"):
        tags.update(ws.meta, project, pid, "pays", {**doc, "name": "paid"})
    tags.update(ws.meta, project, pid, "pays", enabled=False)
    assert run(ws, project, pid, date(2026, 2, 3)) == {}
    assert "tag:pays" not in {f.name for f in tags.tag_features(ws.meta, pid, project.schema)}
    tags.delete(ws.meta, project, pid, "pays")
    assert not history.exists(project, "tag_pays")
    with pytest.raises(NotFoundError, match="no tag named 'pays'"):
        tags.get(ws.meta, pid, "pays")
    with pytest.raises(UserloopError):
        mat.coverage(project, ws.meta, pid, "pays")
