"""Segment comparison against references computed on the raw per-person values in plain Python and scipy.

One project per module holds :data:`N` people loaded through the real ingest path (``city`` STRING, ``age``
NUMBER, ``vip`` BOOL, ``birthday`` DATE). Each example writes random tag values and random groups as history
tables (:func:`userloop.profile.history.apply_snapshot`), runs :func:`compare` and checks every count, share,
quartile, histogram bin and test statistic against the same numbers computed from the values it wrote.
:func:`compare` reads the groups through membership bitmaps; it is also checked against the plain per-feature
join (``_plain=True``) on ids spread over many bitmap blocks, ids of no person, large groups and everyone else.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from datetime import date, timedelta
from typing import Any
from unittest.mock import patch

import numpy as np
import orjson
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from sqlglot import exp

from tests.conftest import examples
from userloop.core.errors import QueryError, ValidationError
from userloop.ingest import load_json_lines
from userloop.profile import groups as groups_module
from userloop.profile import history
from userloop.profile.compare import CORRECTIONS, HISTOGRAM_BINS, NONE, OTHER, Comparison, adjust_p, compare
from userloop.profile.features import Feature, property_features
from userloop.store import ProjectStore, Workspace

N = 60
RUN = date(2026, 3, 1)
EPOCH = date(1970, 1, 1)
SETTINGS = settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAG_TYPES = {"cat": "VARCHAR", "num": "DOUBLE", "day": "DATE", "flag": "BOOLEAN"}
FEATURE_TYPES = {"cat": "string", "num": "number", "day": "date", "flag": "bool"}


# the people ----------------------------------------------------------------------------------------------------
class People:
    """The module's project: person ids (in load order) and their profile values."""

    def __init__(self, project: ProjectStore, ids: list[int], props: dict[str, list[Any]]) -> None:
        self.project, self.ids, self.props = project, ids, props


@pytest.fixture(scope="module")
def people(ws: Workspace) -> People:
    ws.create_project("cmp")
    project = ws.project("cmp")
    rng = np.random.default_rng(7)
    cities = ["上海", "北京", "O'Brien", None]
    props: dict[str, list[Any]] = {"city": [], "age": [], "vip": [], "birthday": []}
    records = []
    for k in range(N):
        city = cities[rng.integers(len(cities))]
        age = None if rng.random() < 0.2 else float(rng.integers(18, 70))
        vip = None if rng.random() < 0.1 else bool(rng.random() < 0.3)
        birthday = date(1980, 1, 1) + timedelta(days=int(rng.integers(0, 9000)))
        values = {"city": city, "age": age, "vip": vip, "birthday": birthday.isoformat()}
        for name, value in values.items():
            props[name].append(date.fromisoformat(value) if name == "birthday" else value)
        present = {name: value for name, value in values.items() if value is not None}
        records.append({"type": "profile_set", "distinct_id": f"p{k}", "time": 1_700_000_000_000 + k,
                        "properties": {"$is_login_id": True, **present}})  # fmt: skip
    result = load_json_lines(project, [json.dumps(r, ensure_ascii=False) for r in records], source="test")
    assert result.rejected == 0
    with project.store.lock:
        by_first = dict(project.con.execute(f"SELECT first_id, user_id FROM {project.table('users')}").fetchall())
    return People(project, [by_first[f"p{k}"] for k in range(N)], props)


def put(project: ProjectStore, table: str, value_type: str, ids: list[int], values: list[Any]) -> None:
    """Replace ``table``'s history with one run holding these values (None: no value)."""
    history.reset(project, table)
    kept = [(i, v) for i, v in zip(ids, values, strict=True) if v is not None]
    arrow_type = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "DATE": pa.date32(), "BOOLEAN": pa.bool_()}
    snapshot = pa.table(
        {"user_id": pa.array([i for i, _ in kept], pa.int64()),
         "value": pa.array([v for _, v in kept], arrow_type[value_type])}
    )  # fmt: skip
    history.apply_snapshot(project, table, value_type, RUN, snapshot)


def group(project: ProjectStore, name: str, ids: list[int], members: list[bool]) -> exp.Select:
    put(project, f"segment_{name}", "BOOLEAN", ids, [True if m else None for m in members])
    return history.values_on(project.schema, f"segment_{name}")


def tag(project: ProjectStore, name: str, ftype: str, order: tuple[str, ...] | None = None) -> Feature:
    return Feature(f"tag:{name}", name, "tag", ftype, history.values_on(project.schema, f"tag_{name}"), order)  # type: ignore[arg-type]


def features(people: People) -> list[Feature]:
    props = property_features(people.project.schema, people.project.properties("users"))
    return [f for f in props if f.label in people.props] + [tag(people.project, n, t) for n, t in FEATURE_TYPES.items()]


# the references ------------------------------------------------------------------------------------------------
def categorical_cells(a: list[Any], b: list[Any], top: int) -> dict[str, tuple[int, int]]:
    """Counts per shown value: the ``top`` values most common over both groups (ties by value), then the rest
    as $other, people without a value as $none."""
    ca, cb = Counter(a), Counter(b)
    values = sorted({v for v in a + b if v is not None}, key=lambda v: (-(ca[v] + cb[v]), v))
    cells = {v: (ca[v], cb[v]) for v in values[:top]}
    if values[top:]:
        cells[OTHER] = (sum(ca[v] for v in values[top:]), sum(cb[v] for v in values[top:]))
    if ca[None] or cb[None]:
        cells[NONE] = (ca[None], cb[None])
    return cells


def as_text(value: Any) -> Any:
    if value is None:
        return None
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def check_categorical(row: dict[str, Any] | None, skip: str | None, a: list[Any], b: list[Any], top: int) -> None:
    a, b = [as_text(v) for v in a], [as_text(v) for v in b]
    cells = categorical_cells(a, b, top)
    if not [v for v in cells if v != NONE]:
        assert skip == "no_values"
        return
    if len(cells) < 2:
        assert skip == "constant"
        return
    assert row is not None, skip
    assert {v["value"]: (v["a"], v["b"]) for v in row["values"]} == cells
    for v in row["values"]:
        assert v["share_a"] == v["a"] / len(a) and v["share_b"] == v["b"] / len(b)
    table = np.array([[c[0] for c in cells.values()], [c[1] for c in cells.values()]])
    ref = stats.chi2_contingency(table, correction=False)
    assert row["statistic"] == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert row["df"] == ref.dof
    assert row["effect"] == pytest.approx(math.sqrt(ref.statistic / table.sum()), rel=1e-9, abs=1e-12)


def check_numeric(
    row: dict[str, Any] | None, skip: str | None, a: list[Any], b: list[Any], disjoint: bool, is_date: bool
) -> None:
    xa = np.array([(v - EPOCH).days if is_date else v for v in a if v is not None], dtype=np.float64)
    xb = np.array([(v - EPOCH).days if is_date else v for v in b if v is not None], dtype=np.float64)
    if xa.size == 0 and xb.size == 0:
        assert skip == "no_values"
        return
    if xa.size < 2 or xb.size < 2:
        assert skip == "too_few_values"
        return
    if xa.var() == 0 and xb.var() == 0:
        assert skip == ("constant" if xa[0] == xb[0] else "no_variance")
        return
    assert row is not None, skip
    for stats_, x, values in ((row["a"], xa, a), (row["b"], xb, b)):
        assert (stats_["n"], stats_["missing"]) == (x.size, len(values) - x.size)
        assert stats_["mean"] == pytest.approx(x.mean(), rel=1e-12, abs=1e-12)
        assert stats_["sd"] == pytest.approx(x.std(ddof=1), rel=1e-9, abs=1e-12)
        assert [stats_["p25"], stats_["p50"], stats_["p75"]] == pytest.approx(np.percentile(x, [25, 50, 75]))
        assert (stats_["min"], stats_["max"]) == (x.min(), x.max())
    with warnings.catch_warnings():  # scipy warns about precision when a group's values are all equal
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = stats.ttest_ind(xa, xb, equal_var=False)
    assert row["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-300)
    pooled = ((xa.size - 1) * xa.var(ddof=1) + (xb.size - 1) * xb.var(ddof=1)) / (xa.size + xb.size - 2)
    d = (xa.mean() - xb.mean()) / math.sqrt(pooled)
    assert row["effect_size"]["value"] == pytest.approx(d, rel=1e-9)
    if disjoint:  # the common-scale effect is the point-biserial correlation of group and value
        r = np.corrcoef(np.r_[np.ones(xa.size), np.zeros(xb.size)], np.r_[xa, xb])[0, 1]
        assert row["effect"] == pytest.approx(abs(r), rel=1e-9)
    lo, hi = min(xa.min(), xb.min()), max(xa.max(), xb.max())
    for x, counts in ((xa, row["histogram"]["a"]), (xb, row["histogram"]["b"])):
        bins = [min(math.floor((v - lo) / (hi - lo) * HISTOGRAM_BINS), HISTOGRAM_BINS - 1) for v in x]
        assert counts == [bins.count(k) for k in range(HISTOGRAM_BINS)]


def brute_holm(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    for rank, i in enumerate(order):
        out[i] = min(1.0, max((m - r) * p[order[r]] for r in range(rank + 1)))
    return out


def brute_bonferroni(p: list[float]) -> list[float]:
    return [min(1.0, len(p) * x) for x in p]


def check_correction(result: dict[str, Any], correction: str, alpha: float) -> None:
    rows = result["features"]
    p = [r["p_value"] for r in rows]
    if not p:
        return
    expected = {
        "bh": lambda: list(stats.false_discovery_control(p, method="bh")),
        "holm": lambda: brute_holm(p),
        "bonferroni": lambda: brute_bonferroni(p),
    }[correction]()
    assert [r["p_adjusted"] for r in rows] == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert [r["significant"] for r in rows] == [x < alpha for x in expected]
    keys = [(not r["significant"], -r["effect"]) for r in rows]
    assert keys == sorted(keys)


# the random comparison -----------------------------------------------------------------------------------------
def optional(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


scenarios = st.fixed_dictionaries(
    {
        "in_a": st.lists(st.booleans(), min_size=N, max_size=N),
        "in_b": st.none() | st.lists(st.booleans(), min_size=N, max_size=N),
        "cat": st.lists(optional(st.sampled_from("pqrstu")), min_size=N, max_size=N),
        "num": st.lists(optional(st.integers(-400, 400).map(lambda k: k / 4)), min_size=N, max_size=N),
        "day": st.lists(optional(st.integers(0, 40).map(lambda k: date(2025, 1, 1) + timedelta(k))), min_size=N,
                        max_size=N),
        "flag": st.lists(optional(st.booleans()), min_size=N, max_size=N),
        "top": st.integers(1, 5),
        "correction": st.sampled_from(CORRECTIONS),
    }
)  # fmt: skip


@SETTINGS
@given(s=scenarios)
def test_statistics_equal_scipy_on_the_raw_values(people: People, s: dict[str, Any]) -> None:
    project, ids = people.project, people.ids
    a = group(project, "a", ids, s["in_a"])
    b = None if s["in_b"] is None else group(project, "b", ids, s["in_b"])
    for name, value_type in TAG_TYPES.items():
        put(project, f"tag_{name}", value_type, ids, s[name])
    result = compare(project, a, b, features(people), top_values=s["top"], correction=s["correction"]).as_dict()
    orjson.dumps(result)  # the result is plain JSON

    in_b = [not x for x in s["in_a"]] if s["in_b"] is None else s["in_b"]
    members_a = [k for k in range(N) if s["in_a"][k]]
    members_b = [k for k in range(N) if in_b[k]]
    assert result["groups"]["a"]["size"] == len(members_a)
    assert result["groups"]["b"]["size"] == len(members_b)
    assert result["groups"]["overlap"] == len(set(members_a) & set(members_b))
    assert result["groups"]["b"]["everyone_else"] == (s["in_b"] is None)
    rows = {r["label"]: r for r in result["features"]}
    skips = {r["label"]: r["code"] for r in result["skipped"]}
    assert len(rows) + len(skips) == 8
    if not members_a or not members_b:
        assert set(skips.values()) == {"empty_group"}
        return
    values = {**people.props, **{name: s[name] for name in TAG_TYPES}}
    disjoint = not set(members_a) & set(members_b)
    for label, column in values.items():
        va, vb = [column[k] for k in members_a], [column[k] for k in members_b]
        row, skip = rows.get(label), skips.get(label)
        if label in ("city", "vip", "cat", "flag"):
            check_categorical(row, skip, va, vb, s["top"])
        else:
            check_numeric(row, skip, va, vb, disjoint, label in ("birthday", "day"))
    check_correction(result, s["correction"], 0.05)


# corrections on their own --------------------------------------------------------------------------------------
@given(p=st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_adjusted_p_values_equal_scipy_and_brute_force(p: list[float]) -> None:
    assert adjust_p(p, "bh").tolist() == pytest.approx(list(stats.false_discovery_control(p, method="bh")))
    assert adjust_p(p, "holm").tolist() == pytest.approx(brute_holm(p))
    assert adjust_p(p, "bonferroni").tolist() == pytest.approx(brute_bonferroni(p))


# planted differences and degenerate cases ----------------------------------------------------------------------
def test_a_planted_difference_is_found_and_ranked_first(people: People) -> None:
    project, ids = people.project, people.ids
    rng = np.random.default_rng(11)
    in_a = [k < N // 2 for k in range(N)]
    planted = [("x" if rng.random() < 0.85 else "y") if m else ("x" if rng.random() < 0.15 else "y") for m in in_a]
    put(project, "tag_cat", "VARCHAR", ids, planted)
    put(project, "tag_num", "DOUBLE", ids, [float(v) for v in rng.normal(size=N)])
    put(project, "tag_day", "DATE", ids, [date(2025, 1, 1) + timedelta(int(k)) for k in rng.integers(0, 30, N)])
    put(project, "tag_flag", "BOOLEAN", ids, [bool(v) for v in rng.random(N) < 0.5])
    result = compare(project, group(project, "a", ids, in_a), None, features(people))
    top = result.features[0]
    assert (top.label, top.significant) == ("cat", True)
    assert top.summary_en.startswith(f"{_pct(planted, in_a, True)} of A vs {_pct(planted, in_a, False)} of B have ")
    assert "cat = x" in top.summary_en and "的 cat 为 x" in top.summary_zh
    assert top.effect > 2 * result.features[1].effect


def _pct(values: list[str], in_a: list[bool], side: bool) -> str:
    chosen = [v for v, m in zip(values, in_a, strict=True) if m == side]
    return f"{100 * chosen.count('x') / len(chosen):.0f}%"


def test_empty_groups_give_a_result_not_an_exception(people: People) -> None:
    project, ids = people.project, people.ids
    nobody = group(project, "empty", ids, [False] * N)
    everyone = group(project, "all", ids, [True] * N)
    for a, b, missing in ((nobody, None, "A"), (everyone, None, "B"), (everyone, nobody, "B")):
        result = compare(project, a, b, features(people))
        assert result.features == []
        assert {s.code for s in result.skipped} == {"empty_group"}
        assert all(missing in s.reason_en for s in result.skipped)
        orjson.dumps(result.as_dict())


def test_untestable_features_are_listed_with_a_reason(people: People) -> None:
    project, ids = people.project, people.ids
    put(project, "tag_cat", "VARCHAR", ids, ["same"] * N)  # one category
    put(project, "tag_num", "DOUBLE", ids, [None] * N)  # no values
    put(project, "tag_day", "DATE", ids, [date(2025, 1, 1)] * N)  # one value
    put(project, "tag_flag", "BOOLEAN", ids, [None] * N)
    put(project, "tag_many", "VARCHAR", ids, [f"id{k}" for k in range(N)])
    put(project, "tag_lone", "DOUBLE", ids, [1.0] + [None] * (N - 2) + [2.0])
    feats = [tag(project, n, t) for n, t in FEATURE_TYPES.items()] + [tag(project, "many", "string"),
                                                                       tag(project, "lone", "number")]  # fmt: skip
    a = group(project, "a", ids, [k % 2 == 0 for k in range(N)])
    result = compare(project, a, None, feats, max_categories=10)
    assert {s.label: s.code for s in result.skipped} == {
        "cat": "constant", "num": "no_values", "day": "constant", "flag": "no_values",
        "many": "too_many_categories", "lone": "too_few_values",
    }  # fmt: skip
    assert result.features == []
    many = next(s for s in result.skipped if s.label == "many")
    assert f"{N} distinct values" in many.reason_en and "10" in many.reason_en and many.reason_zh


def test_a_value_only_in_one_group_and_no_variance_within_groups(people: People) -> None:
    project, ids = people.project, people.ids
    in_a = [k < 20 for k in range(N)]
    put(project, "tag_num", "DOUBLE", ids, [5.0 if m else 1.0 for m in in_a])
    put(project, "tag_cat", "VARCHAR", ids, ["gold" if m else None for m in in_a])
    result = compare(project, group(project, "a", ids, in_a), None, [tag(project, "num", "number"),
                                                                    tag(project, "cat", "string")])  # fmt: skip
    assert [(s.label, s.code) for s in result.skipped] == [("num", "no_variance")]
    [cat] = result.features
    assert cat.effect == pytest.approx(1.0) and cat.significant
    gold = next(v for v in cat.detail["values"] if v["value"] == "gold")
    assert (gold["share_a"], gold["share_b"], gold["lift"]) == (1.0, 0.0, None)
    assert "only in A" in cat.summary_en and "仅见于 A" in cat.summary_zh


def test_ordered_enums_keep_their_order_and_overlap_is_reported(people: People) -> None:
    project, ids = people.project, people.ids
    levels = ("low", "mid", "high", "top")
    put(project, "tag_level", "VARCHAR", ids, [levels[k % 3] if k % 5 else None for k in range(N)])
    level = tag(project, "level", "enum", order=levels)
    a = group(project, "a", ids, [k < 40 for k in range(N)])
    b = group(project, "b", ids, [k >= 30 for k in range(N)])
    result = compare(project, a, b, [level], names=("老客", "新客"))
    assert (result.a_size, result.b_size, result.overlap) == (40, 30, 10)
    assert [n["code"] for n in result.notes] == ["overlap", "correction"]
    [row] = result.features
    assert [v["value"] for v in row.detail["values"]] == [*levels, NONE]
    assert row.detail["values"][3]["a"] == row.detail["values"][3]["b"] == 0  # declared, never seen
    assert "老客" in row.summary_en and "新客" in row.summary_zh


def test_bad_options_are_clear_errors(people: People) -> None:
    project, ids = people.project, people.ids
    a = group(project, "a", ids, [True] * 3 + [False] * (N - 3))
    num = tag(project, "num", "number")
    for kwargs, word in (({"alpha": 1.5}, "alpha"), ({"correction": "sidak"}, "correction"),
                         ({"top_values": 0}, "top_values")):  # fmt: skip
        with pytest.raises(ValidationError, match=word):
            compare(project, a, None, [num], **kwargs)
    with pytest.raises(ValidationError, match="twice"):
        compare(project, a, None, [num, num])


def test_comparison_as_dict_round_trips_to_json(people: People) -> None:
    project, ids = people.project, people.ids
    rng = np.random.default_rng(5)  # the tags' own values: the test holds whatever runs before it, or nothing
    put(project, "tag_cat", "VARCHAR", ids, [str(v) for v in rng.integers(0, 3, N)])
    put(project, "tag_num", "DOUBLE", ids, [float(v) for v in rng.normal(size=N)])
    put(project, "tag_day", "DATE", ids, [date(2025, 1, 1) + timedelta(int(k)) for k in rng.integers(0, 30, N)])
    put(project, "tag_flag", "BOOLEAN", ids, [bool(v) for v in rng.random(N) < 0.5])
    result: Comparison = compare(project, group(project, "a", ids, [k % 3 == 0 for k in range(N)]), None,
                                 features(people))  # fmt: skip
    doc = orjson.loads(orjson.dumps(result.as_dict()))
    assert doc["tested"] + len(doc["skipped"]) == 8
    birthday = next(f for f in doc["features"] if f["label"] == "birthday")
    assert len(birthday["histogram"]["edges"]) == HISTOGRAM_BINS + 1
    assert date.fromisoformat(birthday["a"]["dates"]["p50"])


def test_a_comparison_past_its_deadline_is_stopped(people: People) -> None:
    slow = sqlglot.parse_one("SELECT count(*) AS user_id FROM range(100000000000) AS r", read="duckdb")
    assert isinstance(slow, exp.Select)
    with pytest.raises(QueryError, match="longer than 0.3 s") as caught:
        compare(people.project, slow, None, [], timeout_s=0.3)
    assert caught.value.code == "query_timeout"


# membership bitmaps against the per-feature join ----------------------------------------------------------------
#: Ids of no person (merged away, never a person) in far apart bitmap blocks, negative and near the BIGINT limit.
GHOSTS = (4095, 4096, 5000, 9000, 123_456_789, 2**40 + 3, 2**62 + 5, -1, -4097, -(2**40))


def same(plain: Any, fast: Any, where: str = "") -> None:
    """Equal results: counts and words exactly, floats to 1e-7 relative. The two read the same values but sum
    them in different orders (DuckDB's parallel aggregates, and the history tables' row order, which earlier
    writes change); the scenarios' amounts sit near 10⁶ with a spread of ~100, so a variance-based statistic loses
    ~8 of its 16 digits to cancellation and differs by a few 1e-9 between orders (seen: 0.37490969013 against
    0.37490968771 for ``tag:num.statistic``)."""
    if isinstance(plain, dict):
        assert plain.keys() == fast.keys(), where
        for key in plain:
            if key != "seconds":
                same(plain[key], fast[key], f"{where}.{key}")
    elif isinstance(plain, list):
        assert len(plain) == len(fast), where
        for k, (x, y) in enumerate(zip(plain, fast, strict=True)):
            same(x, y, f"{where}[{k}]")
    elif isinstance(plain, float) and isinstance(fast, float):
        assert math.isclose(plain, fast, rel_tol=1e-7, abs_tol=1e-12), (where, plain, fast)
    else:
        assert plain == fast, (where, plain, fast)


def by_name(result: Comparison) -> dict[str, Any]:
    """The result as JSON with the features keyed by name (the ranking may swap two exactly tied features)."""
    doc = orjson.loads(orjson.dumps(result.as_dict()))
    doc["features"] = {f["name"]: f for f in doc["features"]}
    return doc


def bitmap_only() -> Any:
    """Inside this, reading the groups by the per-feature join fails: the bitmaps must have been used."""
    return patch.object(groups_module.PerFeatureJoin, "__init__", side_effect=AssertionError("joined per feature"))


@st.composite
def pooled_scenarios(draw: st.DrawFn, persons: int) -> dict[str, Any]:
    """Groups and tag values over the persons and some ghost ids; B is everyone else, most of the pool or random."""
    ghosts = draw(st.lists(st.sampled_from(GHOSTS), unique=True, max_size=len(GHOSTS)))
    size = persons + len(ghosts)

    def column(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(optional(values), min_size=size, max_size=size))

    b_kind = draw(st.sampled_from(["everyone_else", "most", "random"]))
    in_b: list[bool] | None = None
    if b_kind == "most":  # larger than half: all but a few
        left_out = set(draw(st.lists(st.integers(0, size - 1), max_size=size // 4)))
        in_b = [k not in left_out for k in range(size)]
    elif b_kind == "random":
        in_b = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    return {
        "ghosts": ghosts,
        "in_a": draw(st.lists(st.booleans(), min_size=size, max_size=size)),
        "in_b": in_b,
        "cat": column(st.sampled_from("pqrstu")),
        # large offsets: amounts near a million, dates near day 20,000 since 1970
        "num": column(st.integers(-400, 400).map(lambda k: 1e6 + k / 4)),
        "day": column(st.integers(0, 40).map(lambda k: date(2025, 1, 1) + timedelta(k))),
        "flag": column(st.booleans()),
        "top": draw(st.integers(1, 5)),
    }


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bitmaps_give_the_per_feature_join_results(people: People, data: st.DataObject) -> None:
    s = data.draw(pooled_scenarios(N))
    project, pool = people.project, people.ids + s["ghosts"]
    a = group(project, "a", pool, s["in_a"])
    b = None if s["in_b"] is None else group(project, "b", pool, s["in_b"])
    for name, value_type in TAG_TYPES.items():
        put(project, f"tag_{name}", value_type, pool, s[name])
    feats = features(people)
    plain = compare(project, a, b, feats, top_values=s["top"], _plain=True)
    with bitmap_only():
        fast = compare(project, a, b, feats, top_values=s["top"])
    same(by_name(plain), by_name(fast))

    members_a = {pool[k] for k in range(len(pool)) if s["in_a"][k]}
    members_b = (set(people.ids) - members_a if s["in_b"] is None
                 else {pool[k] for k in range(len(pool)) if s["in_b"][k]})  # fmt: skip
    assert (fast.a_size, fast.b_size, fast.overlap) == (len(members_a), len(members_b), len(members_a & members_b))


def test_ids_too_sparse_for_bitmaps_are_joined_per_feature(people: People) -> None:
    project, pool = people.project, people.ids + list(GHOSTS)
    rng = np.random.default_rng(5)
    put(project, "tag_num", "DOUBLE", pool, [float(v) for v in rng.normal(size=len(pool))])
    put(project, "tag_cat", "VARCHAR", pool, [str(v) for v in rng.integers(0, 4, len(pool))])
    feats = [tag(project, "num", "number"), tag(project, "cat", "string")]
    a = group(project, "a", pool, [k % 3 == 0 for k in range(len(pool))])
    plain = compare(project, a, None, feats, _plain=True)
    never = patch.object(groups_module.MembershipBitmap, "__init__", side_effect=AssertionError("bitmaps"))
    with patch.object(groups_module, "MAX_BITMAP_BYTES", 0), never:
        sparse = compare(project, a, None, feats)
    same(by_name(plain), by_name(sparse))
    assert len(sparse.features) == 2


def test_values_of_people_in_neither_group_are_not_counted(people: People) -> None:
    project, pool = people.project, people.ids + list(GHOSTS)
    outside = [k >= 40 for k in range(len(pool))]  # the last persons and every ghost are in neither group
    put(project, "tag_cat", "VARCHAR", pool, ["zzz" if o else "xy"[k % 2] for k, o in enumerate(outside)])
    put(project, "tag_num", "DOUBLE", pool, [1e9 if o else float(k) for k, o in enumerate(outside)])
    feats = [tag(project, "cat", "string"), tag(project, "num", "number")]
    a = group(project, "a", pool, [k < 20 for k in range(len(pool))])
    b = group(project, "b", pool, [20 <= k < 40 for k in range(len(pool))])
    plain = compare(project, a, b, feats, _plain=True)
    with bitmap_only():
        fast = compare(project, a, b, feats)
    same(by_name(plain), by_name(fast))
    cat, num = (next(f for f in fast.features if f.label == label) for label in ("cat", "num"))
    assert [v["value"] for v in cat.detail["values"]] == ["x", "y"] and cat.detail["distinct_values"] == 2
    assert num.detail["b"]["max"] == 39.0 and num.detail["histogram"]["edges"][-1] == 39.0
