"""Exports: CSV and Parquet equal a direct reading of the same people and fields, masked unless allowed."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from tests.conftest import examples
from tests.query.logs import BASE_MS, fresh_project
from userloop.core.errors import ValidationError
from userloop.ingest import load_json_lines
from userloop.models.base import write_rows
from userloop.profile import history
from userloop.profile.export import export_fields, export_segment
from userloop.query.compile import literal, render
from userloop.query.masking import Kind, as_text, is_sensitive, mask, mask_email, mask_phone, mask_sql
from userloop.schema.types import PropertyType
from userloop.store import ProjectStore, Workspace
from userloop.store.sqlbuild import sql

TZ = "Asia/Shanghai"
TAGS = {"level", "spend", "never_run"}
FIELDS = [
    "user_id",
    "property:city",
    "property:phone",
    "property:email",
    "property:contact_email",
    "property:age",
    "property:vip",
    "property:birthday",
    "property:first_seen",
    "tag:level",
    "tag:spend",
    "model:churn.risk_tier",
    "model:churn.churn_probability",
    "identity:$identity_mobile",
    "identity:$identity_anonymous_id",
    "identity:$identity_login_id",
]
SENSITIVE = {"property:phone", "property:email", "property:contact_email", "identity:$identity_mobile"}


@pytest.fixture(scope="module")
def shop(ws: Workspace) -> ProjectStore:
    """Forty people: anonymous events, sign-ups and mobile binds in a first load, profiles and more sign-ups in a
    second."""
    _, project = fresh_project(ws, TZ)
    rnd = random.Random(6)
    first, second = [], []
    for i in range(40):
        login, anon = f"L{i}", f"a{i}"
        for k in range(rnd.randint(0, 3)):
            at = BASE_MS + rnd.randint(0, 20 * 24 * 60) * 60_000
            first.append(
                {
                    "type": "track",
                    "event": "view",
                    "distinct_id": anon,
                    "time": at,
                    "event_id": f"e{i}_{k}",
                    "properties": {},
                }
            )
        if i % 2:
            first.append(
                {
                    "type": "track_signup",
                    "event": "$SignUp",
                    "distinct_id": login,
                    "original_id": anon,
                    "time": BASE_MS + i * 60_000,
                    "event_id": f"s{i}",
                    "properties": {"$is_login_id": True},
                }
            )
        if i % 3 == 0:
            first.append(
                {
                    "type": "track_id_bind",
                    "event": "$BindID",
                    "distinct_id": login,
                    "event_id": f"b{i}",
                    "time": BASE_MS + i * 60_000,
                    "properties": {"$is_login_id": True},
                    "identities": {"$identity_login_id": login, "$identity_mobile": f"1390000{i:04d}"},
                }
            )
        props: dict[str, Any] = {
            "$is_login_id": True,
            "city": rnd.choice(["上海", "北京", "深圳"]),
            "age": float(rnd.randint(18, 60)),
            "vip": rnd.random() < 0.5,
            "birthday": f"19{rnd.randint(60, 99)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}",
        }
        if rnd.random() < 0.7:
            props["phone"] = f"138{rnd.randint(0, 10**8 - 1):08d}"
        if rnd.random() < 0.7:
            props["email"] = f"user{i}@example.com"
        if rnd.random() < 0.3:
            props["contact_email"] = f"c{i}@shop.cn"
        second.append({"type": "profile_set", "distinct_id": login, "time": BASE_MS + i, "properties": props})
        if i % 4 == 1:  # a second device, bound later: the earliest anonymous id is a{i}, though A{i} sorts first
            second.append(
                {
                    "type": "track_signup",
                    "event": "$SignUp",
                    "distinct_id": login,
                    "original_id": f"A{i}",
                    "time": BASE_MS + i * 60_000,
                    "event_id": f"s2_{i}",
                    "properties": {"$is_login_id": True},
                }
            )
    for batch in (first, second):
        assert load_json_lines(project, [json.dumps(r) for r in batch], source="t").rejected == 0
    users = project.table("users")
    levels = (
        (date(2026, 1, 20), "SELECT user_id, 'low' AS value FROM $u"),
        (date(2026, 1, 21), "SELECT user_id, CASE WHEN age > 40 THEN 'high' END AS value FROM $u"),
    )
    for day, level in levels:
        history.apply_snapshot(project, "tag_level", "VARCHAR", day, sql(level, u=project.ref("users")))
    spend = sql("SELECT user_id, age / 4 AS value FROM $u", u=project.ref("users"))
    history.apply_snapshot(project, "tag_spend", "DOUBLE", date(2026, 1, 21), spend)
    ids = [r[0] for r in project.con.execute(f"SELECT user_id FROM {users} ORDER BY user_id").fetchall()]
    for n, day in enumerate((date(2026, 1, 20), date(2026, 1, 21))):
        tiers = [rnd.choice(["low", "medium", "high"]) for _ in ids]
        probs = [round(rnd.random(), 3) for _ in ids]
        keep = ids if n == 0 else ids[::2]  # the latest run scores half of the people
        write_rows(
            project,
            "model_churn",
            day,
            f"v{n}",
            pa.table({"user_id": keep, "risk_tier": tiers[: len(keep)], "churn_probability": probs[: len(keep)]}),
        )
    return project


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exports")


def _members(project: ProjectStore, cities: list[str]) -> exp.Select:
    """People of some cities, each listed twice, plus a key with no person: the export dedupes and keeps it."""
    users = exp.table_("users", db=project.schema, quoted=True)
    city = exp.column("city", quoted=True)
    one = (
        exp.select(exp.column("user_id"))
        .from_(users)
        .where(exp.In(this=city, expressions=[literal(c) for c in cities]))
    )
    both = exp.union(one, one.copy(), distinct=False)
    return exp.select("user_id").from_(
        exp.Subquery(this=exp.union(both, exp.select("999999 AS user_id"), distinct=False), alias="x")
    )


# the reference: plain reads of the tables, joined and masked in Python ---------------------------------------------
def _reference(project: ProjectStore, cities: list[str], fields: list[str], unmask: bool) -> list[dict[str, Any]]:
    con = project.con
    cur = con.execute(f"SELECT * FROM {project.table('users')}")
    cols = [d[0] for d in cur.description or []]
    users = {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}
    people = sorted({u for u, row in users.items() if row["city"] in cities} | {999999})
    tags = {name: _current(project, f"tag_{name}") for name in ("level", "spend")}
    churn = con.execute(
        f"SELECT user_id, run_date, risk_tier, churn_probability FROM {project.table('model_churn')}"
    ).fetchall()
    latest = max(r[1] for r in churn)
    model = {r[0]: {"risk_tier": r[2], "churn_probability": r[3]} for r in churn if r[1] == latest}
    earliest: dict[tuple[int, str], tuple[datetime, str]] = {}
    for user_id, id_type, value, at in con.execute(
        f"SELECT user_id, id_type, id_value, created_at FROM {project.table('identities')}"
    ).fetchall():
        key = (user_id, id_type)
        earliest[key] = min(earliest.get(key, (at, value)), (at, value))

    def value(user_id: int, field: str) -> Any:
        kind, _, name = field.partition(":")
        if kind == "user_id":
            return user_id
        if kind == "property":
            v = users.get(user_id, {}).get(name)
            if name == "first_seen" and v is not None:
                v = v.replace(tzinfo=UTC).astimezone(ZoneInfo(TZ)).replace(tzinfo=None)
            return v
        if kind == "tag":
            return tags[name].get(user_id)
        if kind == "model":
            return model.get(user_id, {}).get(name.split(".")[1])
        found = earliest.get((user_id, name))
        return found[1] if found else None

    def shown(field: str, v: Any) -> Any:
        kind = None if unmask else is_sensitive(field.partition(":")[2])
        return v if kind is None else mask(kind, v)

    return [{f: shown(f, value(u, f)) for f in fields} for u in people]


def _current(project: ProjectStore, table: str) -> dict[int, Any]:
    rows = project.con.execute(f"SELECT user_id, value FROM {project.table(table)} WHERE valid_to IS NULL").fetchall()
    return dict(rows)


def _csv_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    return str(v)


@settings(max_examples=examples(30), deadline=None)
@given(
    fields=st.lists(st.sampled_from(FIELDS), min_size=1, max_size=len(FIELDS), unique=True),
    cities=st.lists(st.sampled_from(["上海", "北京", "深圳"]), min_size=1, unique=True),
    unmask=st.booleans(),
    limit=st.one_of(st.none(), st.integers(1, 30)),
)
def test_csv_and_parquet_equal_the_reference(
    shop: ProjectStore, out_dir: Path, fields: list[str], cities: list[str], unmask: bool, limit: int | None
) -> None:
    want = _reference(shop, cities, fields, unmask)[:limit]
    masked = [] if unmask else [f for f in fields if f in SENSITIVE]
    for fmt in ("csv", "parquet"):
        path = out_dir / f"people.{fmt}"
        result = export_segment(
            shop,
            _members(shop, cities),
            fields,
            path=path,
            format=fmt,
            timezone=TZ,
            unmask=unmask,
            tags=TAGS,
            limit=limit,
        )
        assert (result["rows"], result["fields"], result["masked"]) == (len(want), fields, masked)
        assert result["bytes"] == path.stat().st_size > 0
        if fmt == "parquet":
            assert pq.read_table(path).to_pylist() == want
        else:
            with path.open(newline="", encoding="utf-8") as f:
                header, *lines = csv.reader(f)  # not DictReader: a one-field row holding NULL is a blank line
            assert header == fields
            assert [line or [""] for line in lines] == [[_csv_text(v) for v in row.values()] for row in want]


def test_masked_by_default_and_clear_when_allowed(shop: ProjectStore, out_dir: Path) -> None:
    fields = ["user_id", "property:phone", "property:email", "identity:$identity_mobile", "property:city"]
    members = _members(shop, ["上海", "北京", "深圳"])
    path = out_dir / "masked.parquet"
    masked = export_segment(shop, members, fields, path=path, format="parquet", timezone=TZ, unmask=False, tags=TAGS)
    hidden = pq.read_table(path).to_pylist()
    export_segment(shop, members, fields, path=path, format="parquet", timezone=TZ, unmask=True, tags=TAGS)
    clear = pq.read_table(path).to_pylist()
    assert masked["masked"] == fields[1:4]
    phones = [
        (h["property:phone"], c["property:phone"]) for h, c in zip(hidden, clear, strict=True) if c["property:phone"]
    ]
    assert phones and all(h == mask_phone(c) and h != c and "*" in h for h, c in phones)
    emails = [
        (h["property:email"], c["property:email"]) for h, c in zip(hidden, clear, strict=True) if c["property:email"]
    ]
    assert emails and all(h == mask_email(c) and h.endswith("@example.com") and h != c for h, c in emails)
    mobiles = [
        (h["identity:$identity_mobile"], c["identity:$identity_mobile"])
        for h, c in zip(hidden, clear, strict=True)
        if c["identity:$identity_mobile"]
    ]
    assert mobiles and all(h == mask_phone(c) and h != c for h, c in mobiles)
    text = out_dir / "masked.csv"
    export_segment(shop, members, fields, path=text, format="csv", timezone=TZ, unmask=False, tags=TAGS)
    written = text.read_text(encoding="utf-8")
    assert not any(c in written for _, c in phones + emails + mobiles)
    assert [h["property:city"] for h in hidden] == [c["property:city"] for c in clear]


# hostile input ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field",
    [
        'property:city" FROM users; --',
        "property:city; DROP TABLE users",
        "tag:../../level",
        'model:churn.risk_tier"--',
        "identity:$identity_mobile' OR '1'='1",
        "property:",
        "City",
        "tag:never_run",
        "model:churn.user_id",
    ],
)
def test_bad_fields_are_refused(shop: ProjectStore, out_dir: Path, field: str) -> None:
    count = f"SELECT count(*) FROM {shop.table('users')}"
    before = shop.con.execute(count).fetchall()
    with pytest.raises(ValidationError, match="fields: ") as err:
        export_segment(
            shop,
            _members(shop, ["上海"]),
            ["user_id", field],
            path=out_dir / "bad.csv",
            format="csv",
            timezone=TZ,
            unmask=False,
            tags=TAGS,
        )
    if field == "tag:never_run":
        assert "never been computed" in err.value.message
    else:
        assert "valid fields: user_id, property:age" in err.value.message
    assert shop.con.execute(count).fetchall() == before


def test_other_bad_requests(shop: ProjectStore, out_dir: Path) -> None:
    members = _members(shop, ["上海"])

    def run(**kw: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "path": out_dir / "x.csv",
            "format": "csv",
            "timezone": TZ,
            "unmask": False,
            "tags": TAGS,
            "limit": None,
        } | kw
        fields = args.pop("fields", ["user_id"])
        return export_segment(shop, members, fields, **args)

    for kw, match in [
        ({"fields": []}, "fields"),
        ({"fields": ["user_id", "user_id"]}, "twice"),
        ({"format": "xlsx"}, "format"),
        ({"limit": 0}, "limit"),
        ({"timezone": "Nowhere/City"}, "time zone"),
        ({"path": out_dir}, "folder"),
        ({"path": out_dir / "missing" / "x.csv"}, "does not exist"),
        ({"path": out_dir / "line\nbreak.csv"}, "control"),
    ]:
        with pytest.raises(ValidationError, match=match):
            run(**kw)


def test_path_quotes_stay_in_the_literal(shop: ProjectStore, out_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(out_dir)  # where a relative 'leak.csv' would land if the path broke out of its literal
    leak = out_dir / "leak.csv"
    name = f"x'; COPY (SELECT * FROM {shop.table('users')}) TO 'leak.csv' (FORMAT csv); --.csv"
    path = out_dir / name
    result = export_segment(
        shop,
        _members(shop, ["上海"]),
        ["user_id", "property:phone"],
        path=path,
        format="csv",
        timezone=TZ,
        unmask=False,
        tags=TAGS,
    )
    assert path.exists() and result["path"] == str(path)
    assert not leak.exists()
    assert sorted(p.name for p in out_dir.iterdir() if "COPY" in p.name) == [name]


def test_export_fields_marks_personal_data(shop: ProjectStore) -> None:
    listed = {f["field"]: f for f in export_fields(shop, TAGS)}
    assert set(FIELDS) <= set(listed)
    assert "tag:never_run" not in listed
    assert {name for name, f in listed.items() if f["sensitive"]} >= SENSITIVE
    assert listed["property:email"]["sensitive"] == "email"
    assert listed["identity:$identity_mobile"]["sensitive"] == "phone"
    assert listed["property:city"]["sensitive"] is None
    assert listed["tag:spend"]["type"] == "DOUBLE"


# the masking rule ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("phone", "phone"),
        ("mobile", "phone"),
        ("$phone", "phone"),
        ("tel", "phone"),
        ("$identity_mobile", "phone"),
        ("contactPhone", "phone"),
        ("mobile_phone_no", "phone"),
        ("email", "email"),
        ("$email", "email"),
        ("$identity_email", "email"),
        ("contact_email", "email"),
        ("Email-Address", "email"),
        ("hotel", None),
        ("telegram_id", None),
        ("emailed", None),
        ("mobility", None),
        ("city", None),
        ("$identity_login_id", None),
        ("iphone_model", None),
        ("", None),
    ],
)
def test_sensitive_names(name: str, kind: str | None) -> None:
    assert is_sensitive(name) == kind


def test_masks() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+8613812345678") == "+86*******5678"
    assert mask_phone("5551234") == "*****34"
    assert (mask_phone("12"), mask_phone("")) == ("**", "")
    assert mask_email("zhang@example.com") == "z***@example.com"
    assert mask_email("z@example.com") == "z***@example.com"
    assert mask_email("no-at-sign") == "n***"
    assert mask("phone", 13812345678.0) == "138****5678"
    assert mask("phone", ["13812345678", None]) == ["138****5678", None]
    assert mask("email", None) is None


_con = duckdb.connect()
_con.execute("SET TimeZone = 'UTC'")


def _sql_mask(kind: Kind, value: Any, ptype: PropertyType | None) -> Any:
    node = exp.null() if value is None else literal(value)
    return _con.execute(f"SELECT {render(mask_sql(kind, node, ptype))}").fetchall()[0][0]


@settings(max_examples=examples(300), deadline=None)
@given(
    kind=st.sampled_from(["phone", "email"]),
    value=st.one_of(
        st.none(),
        st.text(max_size=30),
        st.from_regex(r"[a-z0-9.]{0,8}@[a-z0-9.@]{0,10}", fullmatch=True),
        st.integers(0, 10**14).map(float),
        st.booleans(),
        st.dates(),
    ),
)
def test_sql_masks_equal_python_masks(kind: Kind, value: Any) -> None:
    ptype = {float: PropertyType.NUMBER, bool: PropertyType.BOOL, date: PropertyType.DATE}.get(type(value))
    assert _sql_mask(kind, value, ptype) == mask(kind, value)


@settings(max_examples=examples(50), deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=15)), max_size=4))
def test_list_values_are_masked_element_wise(values: list[str | None]) -> None:
    node = exp.cast(literal(values), exp.DataType.build("VARCHAR[]")) if values else sqlglot.parse_one("[]::VARCHAR[]")
    got = _con.execute(f"SELECT {render(mask_sql('phone', node, PropertyType.LIST))}").fetchall()[0][0]
    assert got == mask("phone", values)
    assert as_text(True) == "true"


@pytest.fixture(autouse=True, scope="module")
def _close() -> Iterator[None]:
    yield
    _con.close()
