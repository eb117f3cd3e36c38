"""A look-alike of a rule segment, through the command line on a small simulated business: the features the
seed's rule is made of are left out of the model and listed, none of them drives the scores, and the text output
says so in English and Chinese."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from userloop.cli.main import app
from userloop.core.clock import today_in
from userloop.sim.run import run_simulation
from userloop.store import Workspace

BUYERS = {"type": "event", "event": "order_paid", "count": {"op": "gte", "value": 2}, "window": {"last": 60}}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    ws, _ = Workspace.init(tmp_path_factory.mktemp("like") / "ws")
    try:
        yesterday = today_in(ws.project_info("default").timezone) - timedelta(days=1)
        run_simulation(ws, "default", users=500, days=90, seed=7, end_date=yesterday)
    finally:
        ws.close()
    runner, w = CliRunner(), str(ws.path)
    assert runner.invoke(app, ["tags", "starter", "-w", w]).exit_code == 0
    assert runner.invoke(app, ["tags", "materialise", "-w", w]).exit_code == 0
    rule = ws.path.parent / "buyers.json"
    rule.write_text(json.dumps(BUYERS))
    made = runner.invoke(app, ["segments", "create", "repeat buyers", str(rule), "-w", w, "--json"])
    assert made.exit_code == 0, made.output
    return ws.path, json.loads(made.output)["id"]


def test_the_seeds_own_features_are_left_out_and_listed(seeded: tuple[Path, int]) -> None:
    path, seed = seeded
    args = ["segments", "lookalike", "like buyers", "--seed", str(seed), "--top", "50", "--dry-run", "-w", str(path)]
    reply = CliRunner().invoke(app, [*args, "--json"])
    assert reply.exit_code == 0, reply.output
    doc = json.loads(reply.output)
    excluded = {e["feature"]: e["reason"] for e in doc["excluded"]}
    # starter tags counting or summing order_paid restate "paid at least twice"
    assert {"tag:orders_30d", "tag:spend_30d_band", "tag:first_order_date"} <= excluded.keys()
    assert "order_paid" in excluded["tag:orders_30d"]["en"] and "order_paid" in excluded["tag:orders_30d"]["zh"]
    # the tags that do not read purchases stay in, and nothing left out drives the scores
    assert not any(i["feature"] in {"orders_30d", "spend_30d_band"} for i in doc["influential"])
    assert doc["size"] == 50 and "Left out as the seed's own definition" in doc["note"]["en"]

    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0, text.output
    assert "已排除" in text.output and "tag:orders_30d" in text.output and "held-out AUC" in text.output


def test_with_the_leaking_tags_the_fit_would_be_perfect_and_is_warned(seeded: tuple[Path, int]) -> None:
    path, _ = seeded
    runner = CliRunner()
    rule = path.parent / "buyers_tag.json"  # the same people, but chosen through a tag: a rule on the tag itself
    rule.write_text(json.dumps({"type": "tag", "tag": "orders_30d", "op": "gte", "value": 1}))
    made = runner.invoke(app, ["segments", "create", "tagged buyers", str(rule), "-w", str(path), "--json"])
    assert made.exit_code == 0, made.output
    static = path.parent / "ids.txt"  # a static copy of it: no rule to exclude anything by
    members = runner.invoke(app, ["segments", "members", str(json.loads(made.output)["id"]), "-w", str(path),
                                  "--json"])  # fmt: skip
    static.write_text("\n".join(str(u) for u in json.loads(members.output)["user_ids"]))
    copied = runner.invoke(app, ["segments", "static", "copy", str(static), "--id-kind", "user_id", "-w", str(path),
                                 "--json"])  # fmt: skip
    assert copied.exit_code == 0, copied.output
    args = ["segments", "lookalike", "like copy", "--seed", str(json.loads(copied.output)["id"]), "--top", "20",
            "--dry-run", "-w", str(path)]  # fmt: skip
    doc = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert doc["excluded"] == [] and doc["quality"]["cv_auc"] >= 0.99
    assert [w["code"] for w in doc["warnings"]] == ["lookalike_perfect_fit"]
    text = runner.invoke(app, args).output
    assert "warning: Suspiciously perfect fit" in text and "警告：拟合过于完美" in text
