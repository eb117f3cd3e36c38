"""Look-alikes on a synthetic project where a hidden group depends on two features plus noise.

:data:`N` people are loaded through the real ingest path with profile properties (``spend`` NUMBER, ``tier`` and
``city`` STRING, ``noise`` NUMBER, ``vip`` BOOL, ``joined`` DATE, some missing) and one tag (``visits``, DOUBLE,
written with :func:`userloop.profile.history.apply_snapshot`). The hidden group is everyone whose
``1.5·z(spend) + 2·[tier = a] + noise`` is in the top 15 %; the seed is a random 30 % of it. The look-alikes must
find the rest far above chance, and their scores must equal scikit-learn fitted on a design matrix built here, in
plain numpy, from the values this module generated.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from pydantic import TypeAdapter
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.ingest import load_json_lines
from userloop.profile import history
from userloop.profile.features import Feature, property_features
from userloop.profile.leakage import leaking, rule_reads
from userloop.profile.lookalike import LOGISTIC, PERFECT_AUC, lookalike
from userloop.profile.tagdefs import Source
from userloop.store import ProjectStore, Workspace

N = 1500
AS_OF = date(2026, 3, 1)
CITIES = [f"city{k:02d}" for k in range(14)]  # more than the 10 values that get a column: $other is used
PROPS = ("spend", "tier", "city", "noise", "vip", "joined")


class World:
    """The project, the person ids (in generation order), every value per person, the hidden group, the seed."""

    def __init__(self, project: ProjectStore, ids: np.ndarray, values: dict[str, list[Any]], hidden: np.ndarray,
                 seed: np.ndarray) -> None:  # fmt: skip
        self.project, self.ids, self.values, self.hidden, self.seed = project, ids, values, hidden, seed

    def features(self) -> list[Feature]:
        props = [f for f in property_features(self.project.schema, self.project.properties("users"))
                 if f.label in PROPS]  # fmt: skip
        visits = Feature("tag:visits", "visits", "tag", "number", history.values_on(self.project.schema, "tag_visits"))
        return [*props, visits]

    def group(self, name: str, members: np.ndarray) -> exp.Select:
        table = f"segment_{name}"
        history.reset(self.project, table)
        chosen = self.ids[members]
        snapshot = pa.table({"user_id": pa.array(chosen, pa.int64()), "value": pa.array([True] * len(chosen))})
        history.apply_snapshot(self.project, table, "BOOLEAN", AS_OF, snapshot)
        return history.values_on(self.project.schema, table)


@pytest.fixture(scope="module")
def world(ws: Workspace) -> World:
    rng = np.random.default_rng(20260301)
    spend = rng.gamma(2.0, 50.0, N)
    tier = rng.choice(["a", "b", "c", "d"], N, p=[0.2, 0.3, 0.3, 0.2])
    score = 1.5 * (spend - spend.mean()) / spend.std() + 2.0 * (tier == "a") + rng.normal(0, 0.8, N)
    hidden = score > np.quantile(score, 0.85)
    seed = hidden & (rng.random(N) < 0.3)

    def holes(values: list[Any], share: float) -> list[Any]:
        return [None if rng.random() < share else v for v in values]

    values: dict[str, list[Any]] = {
        "spend": holes([round(float(v), 2) for v in spend], 0.1),
        "tier": holes(list(tier), 0.05),
        "city": [str(v) for v in rng.choice(CITIES, N)],
        "noise": [float(v) for v in rng.normal(size=N)],
        "vip": holes([bool(v) for v in rng.random(N) < 0.4], 0.2),
        "joined": holes([date(2025, 1, 1) + timedelta(int(k)) for k in rng.integers(0, 400, N)], 0.1),
        "visits": holes([float(v) for v in rng.poisson(3, N)], 0.3),
    }
    ws.create_project("la")
    project = ws.project("la")
    records = []
    for k in range(N):
        props = {p: (v.isoformat() if isinstance(v, date) else v) for p in PROPS if (v := values[p][k]) is not None}
        records.append({"type": "profile_set", "distinct_id": f"p{k}", "time": 1_700_000_000_000 + k,
                        "properties": {"$is_login_id": True, **props}})  # fmt: skip
    assert load_json_lines(project, [json.dumps(r) for r in records], source="test").rejected == 0
    with project.store.lock:
        by_first = dict(project.con.execute(f"SELECT first_id, user_id FROM {project.table('users')}").fetchall())
    ids = np.array([by_first[f"p{k}"] for k in range(N)], dtype=np.int64)
    visits = [(int(i), v) for i, v in zip(ids, values["visits"], strict=True) if v is not None]
    snapshot = pa.table({"user_id": pa.array([i for i, _ in visits], pa.int64()),
                         "value": pa.array([v for _, v in visits], pa.float64())})  # fmt: skip
    history.apply_snapshot(project, "tag_visits", "DOUBLE", AS_OF, snapshot)
    return World(project, ids, values, hidden, seed)


# the reference design, in plain numpy from the generated values ---------------------------------------------
def reference_columns(world: World, rows: np.ndarray) -> np.ndarray:
    """The documented encoding over the population ``rows`` (indices into the generated people)."""
    columns: list[np.ndarray] = []
    for name in ("spend", "tier", "city", "noise", "vip", "joined", "visits"):
        raw = [world.values[name][k] for k in rows]
        if name in ("tier", "city"):
            counts: dict[str, int] = {}
            for v in raw:
                if v is not None:
                    counts[v] = counts.get(v, 0) + 1
            top = sorted(counts, key=lambda v: (-counts[v], v))[:10]
            columns.append(np.array([v is None for v in raw], dtype=float))
            columns.append(np.array([v is not None and v not in top for v in raw], dtype=float))
            columns.extend(np.array([v == t for v in raw], dtype=float) for t in top)
            continue
        if name == "joined":
            raw = [None if v is None else float((AS_OF - v).days) for v in raw]
        elif name == "vip":
            raw = [None if v is None else float(v) for v in raw]
        x = np.array([np.nan if v is None else v for v in raw], dtype=float)
        missing = np.isnan(x)
        columns.append(np.where(missing, np.median(x[~missing]), x))
        columns.append(missing.astype(float))
    kept = [c for c in columns if c.std() > 0]
    return np.column_stack([(c - c.mean()) / c.std() for c in kept])


def test_lookalikes_find_the_hidden_group_and_equal_sklearn_on_a_numpy_matrix(world: World) -> None:
    seed = world.group("seed", world.seed)
    result = lookalike(world.project, seed, world.features(), top_n=10 * N, max_train=10 * N, as_of=AS_OF)
    out = result.scores.to_pydict()
    candidates = ~world.seed
    assert result.candidates == int(candidates.sum()) == len(out["user_id"])  # top_n over the universe is fine
    assert not set(out["user_id"]) & set(world.ids[world.seed].tolist())  # the seed is excluded
    assert out["score"] == sorted(out["score"], reverse=True)
    assert all(0.0 <= s <= 1.0 for s in out["score"])

    # scores equal scikit-learn fitted on the reference design with the same hyper-parameters
    x = reference_columns(world, np.arange(N))
    assert x.shape[1] == result.columns
    model = LogisticRegression(**LOGISTIC).fit(x, world.seed.astype(float))
    expected = dict(zip(world.ids[candidates].tolist(), model.predict_proba(x[candidates])[:, 1], strict=True))
    got = dict(zip(out["user_id"], out["score"], strict=True))
    assert got.keys() == expected.keys()
    assert max(abs(got[i] - expected[i]) for i in got) < 1e-6

    # the rest of the hidden group is found far above chance
    position = {int(i): k for k, i in enumerate(world.ids)}
    in_hidden = np.array([world.hidden[position[i]] for i in out["user_id"]])
    top_n = int((world.hidden & ~world.seed).sum())
    base_rate = in_hidden.mean()
    assert in_hidden[:top_n].mean() >= 3 * base_rate
    assert roc_auc_score(in_hidden, out["score"]) >= 0.8
    assert result.quality["cv_auc"] >= 0.8
    assert result.quality["holdout"]["recall"] == 1.0  # top_n holds everyone: the check is trivially passed
    holdout = lookalike(world.project, seed, world.features(), top_n=top_n, as_of=AS_OF).quality["holdout"]
    assert holdout["precision"] >= 3 * holdout["base_rate"] and holdout["recall"] >= 0.5
    assert abs(holdout["hidden"] - result.trained_on["seed"] / 5) <= 1  # the first of 5 folds
    assert {"spend", "tier"} <= {c["feature"] for c in result.influential[:4]}
    tier_a = next(c for c in result.influential if c["column"] == "tier = a")
    assert tier_a["direction"] == "more_like_seed" and "tier 为 a" in tier_a["zh"]
    doc = orjson.loads(orjson.dumps(result.as_dict()))
    assert doc["size"] == result.candidates and doc["note"]["en"] and doc["note"]["zh"]


def test_top_n_a_universe_and_keeping_the_seed(world: World) -> None:
    seed = world.group("seed", world.seed)
    top = lookalike(world.project, seed, world.features(), top_n=50, as_of=AS_OF)
    assert top.scores.num_rows == 50

    outside = np.array([t != "a" for t in world.values["tier"]])  # the universe: people not in tier a
    universe = world.group("universe", outside)
    some = lookalike(world.project, seed, world.features(), top_n=N, universe=universe, as_of=AS_OF)
    ids = set(some.scores.column("user_id").to_pylist())
    assert ids == set(world.ids[outside & ~world.seed].tolist())
    assert some.universe_size == int(outside.sum())

    kept = lookalike(world.project, seed, world.features(), top_n=N, exclude_seed=False, as_of=AS_OF)
    assert set(kept.scores.column("user_id").to_pylist()) == set(world.ids.tolist())
    # the same inputs give the same result
    again = lookalike(world.project, seed, world.features(), top_n=50, as_of=AS_OF)
    assert again.scores.equals(top.scores) and again.quality == top.quality


def test_a_string_with_too_many_values_and_a_feature_without_values_are_skipped(world: World) -> None:
    seed = world.group("seed", world.seed)
    ids_as_text = Feature("tag:ident", "ident", "tag", "string", _text_ids(world))
    empty = Feature("tag:none", "none", "tag", "number", _text_ids(world).where("FALSE"))
    result = lookalike(world.project, seed, [*world.features(), ids_as_text, empty], top_n=10, as_of=AS_OF)
    assert {s["label"] for s in result.skipped} == {"ident", "none"}
    assert "distinct values" in next(s["reason"] for s in result.skipped if s["label"] == "ident")


def _text_ids(world: World) -> exp.Select:
    users = exp.table_("users", db=world.project.schema, quoted=True, alias="u")
    return exp.select("u.user_id", exp.alias_(exp.cast(exp.column("user_id", "u"), "VARCHAR"), "value")).from_(users)


def test_bad_seeds_are_clear_errors(world: World) -> None:
    features = world.features()
    cases = [
        (np.zeros(N, dtype=bool), "seed is empty"),
        (np.ones(N, dtype=bool), "everyone in the universe is in the seed"),
        (np.arange(N) < 3, "at least 10"),
    ]
    for members, message in cases:
        with pytest.raises(ValidationError, match=message):
            lookalike(world.project, world.group("bad", members), features, top_n=10)
    seed = world.group("seed", world.seed)
    with pytest.raises(ValidationError, match="top_n"):
        lookalike(world.project, seed, features, top_n=0)
    with pytest.raises(ValidationError, match="at least one feature"):
        lookalike(world.project, seed, [], top_n=10)


# guards against a look-alike that restates its seed ---------------------------------------------------------
def test_a_suspiciously_perfect_fit_is_warned_about_and_a_real_one_is_not(world: World) -> None:
    real = lookalike(world.project, world.group("seed", world.seed), world.features(), top_n=50, as_of=AS_OF)
    assert real.quality["cv_auc"] < PERFECT_AUC and real.warnings == []
    # a seed that *is* a feature's value (tier a), scored on that feature: the model only finds the rule again
    tier_a = np.array([t == "a" for t in world.values["tier"]])
    leaked = lookalike(world.project, world.group("tier_a", tier_a), world.features(), top_n=50, as_of=AS_OF)
    assert leaked.quality["cv_auc"] >= PERFECT_AUC
    (warning,) = leaked.warnings
    assert warning["code"] == "lookalike_perfect_fit" and "held-out AUC" in warning["en"] and "tier" in warning["en"]
    assert "拟合过于完美" in warning["zh"]
    doc = leaked.as_dict()
    assert doc["warnings"] == leaked.warnings
    assert "Warning: Suspiciously perfect fit" in doc["note"]["en"] and "警告" in doc["note"]["zh"]
    # without the leaking feature the fit is an honest one again
    honest = [f for f in world.features() if f.label != "tier"]
    fixed = lookalike(world.project, world.group("tier_a", tier_a), honest, top_n=50, as_of=AS_OF,
                      excluded=[{"feature": "property:tier", "reason": {"en": "the rule", "zh": "规则"}}])  # fmt: skip
    assert fixed.quality["cv_auc"] < PERFECT_AUC and fixed.warnings == []
    assert fixed.as_dict()["excluded"][0]["feature"] == "property:tier"
    assert "Left out as the seed's own definition: property:tier" in fixed.note_en


def parse_tag_source(source: dict[str, Any]) -> Any:
    return TypeAdapter(Source).validate_python(source)


def _feature(name: str, kind: str) -> Feature:
    return Feature(name, name, kind, "number", exp.select("1"))  # type: ignore[arg-type]


def test_the_features_of_the_seeds_rule_are_found() -> None:
    tag_sources = {
        "orders_30d": parse_tag_source({"from": "events", "event": "order_paid", "agg": "count"}),
        "city_tag": parse_tag_source({"from": "profile", "property": "city"}),
        "rfm_class": parse_tag_source({"from": "model", "model": "rfm", "field": "rfm_class"}),
        "views": parse_tag_source({"from": "events", "event": "view_item", "agg": "count"}),
    }
    features = [_feature(n, k) for n, k in [
        ("tag:orders_30d", "tag"), ("tag:city_tag", "tag"), ("tag:rfm_class", "tag"), ("tag:views", "tag"),
        ("property:city", "property"), ("property:age", "property"), ("model:rfm.rfm_class", "model"),
        ("model:clv.p_alive", "model"), ("model:preference.top_category", "model"),
    ]]  # fmt: skip
    inner = {"type": "property", "property": "city", "op": "eq", "value": "上海"}
    rules = {7: inner, 8: None}  # segment 7 is a rule, 8 a static list

    def reads(rule: dict[str, Any]) -> set[str]:
        return {leak.feature for leak in leaking(features, rule_reads(rule, rules.get), tag_sources)}

    buyers = {"type": "event", "event": "order_paid", "count": {"op": "gte", "value": 2}, "window": {"last": 30}}
    # the purchase event leaks the tags counting it and the models computed from purchases
    assert reads(buyers) == {"tag:orders_30d", "model:rfm.rfm_class", "model:clv.p_alive"}
    # a tag leaks itself and what it is computed from; a property leaks itself and the tags made of it
    assert reads({"type": "tag", "tag": "rfm_class", "op": "eq", "value": "HHH"}) == {
        "tag:rfm_class", "model:rfm.rfm_class"}  # fmt: skip
    assert reads({"type": "segment", "segment": 7}) == {"property:city", "tag:city_tag"}  # through the segment
    assert reads({"type": "segment", "segment": 8}) == set()
    assert reads({"not": {"type": "property", "property": "age", "op": "gt", "value": 30}}) == {"property:age"}
    seq = {"type": "sequence", "steps": [{"event": "view_item"}, {"event": "add_to_cart"}],
           "within": {"value": 1, "unit": "day"}, "window": {"last": 7}}  # fmt: skip
    assert reads(seq) == {"tag:views"}
    leak = leaking(features, rule_reads(buyers, rules.get), tag_sources)[0]
    assert "order_paid" in leak.en and "order_paid" in leak.zh and leak.as_dict()["reason"]["zh"] == leak.zh


def test_model_outputs_leak_through_the_event_the_project_configured() -> None:
    """A project whose purchase models read ``pay_done`` instead of ``order_paid``: a seed rule on ``pay_done``
    leaks their outputs, one on ``order_paid`` does not; activity reads every active event."""
    features = [_feature(n, "model") for n in ("model:rfm.rfm_class", "model:clv.p_alive", "model:activity.level")]
    configured = {"rfm": {"pay_done"}, "clv": {"pay_done"}, "activity": {"$any", "app_start", "pay_done"}}

    def leaks(event: str) -> set[str]:
        rule = {"type": "event", "event": event, "count": {"op": "gte", "value": 1}, "window": {"last": 30}}
        return {leak.feature for leak in leaking(features, rule_reads(rule, {}.get), {}, configured)}

    assert leaks("pay_done") == {"model:rfm.rfm_class", "model:clv.p_alive", "model:activity.level"}
    assert leaks("order_paid") == set()
    assert leaks("app_start") == {"model:activity.level"}
    # without the project's configuration, the defaults: purchases are order_paid
    default = {leak.feature for leak in leaking(features, rule_reads(
        {"type": "event", "event": "order_paid", "count": {"op": "gte", "value": 1}, "window": {"last": 30}},
        {}.get), {})}  # fmt: skip
    assert default == {"model:rfm.rfm_class", "model:clv.p_alive"}
