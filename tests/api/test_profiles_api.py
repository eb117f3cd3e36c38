"""The profile platform over HTTP (tags, segments, users, exports, the ``pii`` right) and the CLI through the
same server, on a small simulated business with the user models run."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.collect.serving import ONE_SHOT_TLS, Server
from tests.conftest import examples
from userloop.cli.main import app
from userloop.ingest import load_json_lines
from userloop.models.pipeline import run_models
from userloop.sim.run import run_simulation
from userloop.store import Workspace

END = date(2026, 6, 30)
AS_OF = "2026-06-30"
BUYERS = {
    "type": "event",
    "event": "order_paid",
    "count": {"op": "gte", "value": 2},
    "window": {"from": "2026-05-01", "to": "2026-06-30"},
}


class Api:
    def __init__(self, server: Server, token: str, workspace: Path, person: str) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"}
        self.workspace = workspace
        self.person = person  # a login id whose profile has a phone number and an e-mail address

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return httpx.request(
            method, self.server.url + path, headers=headers, timeout=120, **kwargs, verify=ONE_SHOT_TLS
        )

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.call(method, path, **kwargs)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    ws, secrets = Workspace.init(Path(tmp_path_factory.mktemp("prof")) / "ws")
    try:
        run_simulation(ws, "default", users=800, days=90, seed=11, end_date=END)
        store = ws.project("default")
        (person,) = store.con.execute(
            f"SELECT id_value FROM {store.table('identities')} WHERE id_type = '$identity_login_id' "
            "ORDER BY id_value LIMIT 1"
        ).fetchall()[0]
        profile = {"type": "profile_set", "distinct_id": person, "is_login_id": True, "time": 1782000000000,
                   "properties": {"phone": "13812345678", "email": "zhang.san@example.com"}}  # fmt: skip
        assert load_json_lines(store, [json.dumps(profile)], source="test").rejected == 0
        run_models(store, END, timezone=ws.project_info("default").timezone)
    finally:
        ws.close()
    assert secrets.admin_token
    server = Server(ws.path, "", secrets.admin_token).start()
    yield Api(server, secrets.admin_token, ws.path, person)
    server.stop()


@pytest.fixture(scope="module")
def tagged(api: Api) -> Api:
    installed = api.ok("POST", "/api/v1/tags/starter")
    assert len(installed) >= 25
    run = api.ok("POST", "/api/v1/tags/materialise", json={"date": AS_OF})
    assert run["run_date"] == AS_OF and len(run["tags"]) == len(installed)
    return api


def test_tags_list_show_create_and_refuse(tagged: Api) -> None:
    api = tagged
    rows = api.ok("GET", "/api/v1/tags")
    kinds = {r["kind"] for r in rows}
    assert {"basic", "behaviour", "result", "predictive"} <= kinds
    assert all(r["last_run"] and r["last_run"]["run_date"] == AS_OF for r in rows)
    shown = api.ok("GET", "/api/v1/tags/repurchase_state")
    assert shown["coverage"]["series"][-1]["users"] > 0
    source = {"from": "events", "event": "view_item", "agg": "count", "window": {"last": 7}}
    titles = {"title_zh": "近7天浏览", "title_en": "Views 7d"}
    custom = {"name": "views_7d", "kind": "behaviour", "type": "number", **titles, "source": source}
    assert api.call("POST", "/api/v1/tags", json=custom).status_code == 201
    assert api.call("POST", "/api/v1/tags", json=custom).status_code == 400  # the name is taken
    bad = {**custom, "name": "bad_sum", "source": {**custom["source"], "agg": "sum", "property": "no_such_prop"}}
    r = api.call("POST", "/api/v1/tags", json=bad)
    assert r.status_code == 400 and "no_such_prop" in r.text
    assert api.call("GET", "/api/v1/tags/nope").status_code == 404
    assert api.ok("DELETE", "/api/v1/tags/views_7d") == {"deleted": "views_7d"}


def test_upload_tag_keeps_valid_rows_and_reports_rejects(tagged: Api) -> None:
    api = tagged
    doc = {"name": "vip_list", "kind": "upload", "type": "bool", "title_zh": "VIP 名单", "title_en": "VIP list",
           "source": {"from": "upload"}}  # fmt: skip
    assert api.call("POST", "/api/v1/tags", json=doc).status_code == 201
    body = f"id\n{api.person}\nnobody-has-this-id\n".encode()
    result = api.ok("POST", "/api/v1/tags/vip_list/upload", content=body, params={"id_column": "id"})
    assert result["rejected"] == 1 and result["accepted"] == 1, result
    assert [r["row"] for r in result["rejects"]] == [2]  # data rows count from 1, after the header


def test_segment_estimate_save_members_refresh_and_changes(tagged: Api) -> None:
    api = tagged
    rule = {"all": [BUYERS, {"type": "tag", "tag": "repurchase_state", "op": "eq", "value": "repeat"}]}
    est = api.ok("POST", "/api/v1/segments/estimate", json={"rule": rule})
    assert 0 < est["size"] < est["total"]
    seg = api.ok("POST", "/api/v1/segments", json={"name": "repeat buyers", "rule": rule})
    assert seg["size"] == est["size"] and seg["runs"][0]["opened"] == seg["size"]
    first = api.ok("GET", f"/api/v1/segments/{seg['id']}/members", params={"limit": 7})
    rest = api.ok("GET", f"/api/v1/segments/{seg['id']}/members", params={"limit": 10_000, "after": first["next"]})
    assert len(first["user_ids"]) + len(rest["user_ids"]) == seg["size"]
    again = api.ok("POST", f"/api/v1/segments/{seg['id']}/refresh")
    assert again["users"] == seg["size"]
    changes = api.ok("GET", f"/api/v1/segments/{seg['id']}/changes", params={"date": again["run_date"]})
    assert len(changes["entered"]) == seg["size"] and changes["left"] == []
    nested = api.ok(
        "POST",
        "/api/v1/segments",
        json={"name": "not repeat", "rule": {"type": "segment", "segment": seg["id"], "member": False}},
    )
    assert nested["size"] == est["total"] - est["size"]
    r = api.call("DELETE", f"/api/v1/segments/{seg['id']}")
    assert r.status_code == 400 and "not repeat" in r.text  # in use by the nested segment
    cyc = api.call(
        "PATCH", f"/api/v1/segments/{seg['id']}", json={"rule": {"type": "segment", "segment": nested["id"]}}
    )
    assert cyc.status_code == 400 and "itself" in cyc.text


def test_static_and_analysis_segments(tagged: Api) -> None:
    api = tagged
    static = api.ok("POST", "/api/v1/segments/static", json={"name": "list", "ids": [api.person, "ghost"]})
    assert static["size"] == 1 and static["rejects"][0]["id"] == "ghost"
    funnel = {"kind": "funnel", "date_range": {"from": "2026-05-01", "to": "2026-06-30"},
              "steps": [{"event": "checkout"}, {"event": "order_paid"}],
              "people": {"step": 2, "status": "dropped"}}  # fmt: skip
    dropped = api.ok("POST", "/api/v1/segments/from-analysis", json={"name": "dropped at pay", "definition": funnel})
    run = api.ok("POST", "/api/v1/query", json={"definition": funnel})
    assert dropped["size"] == run["result"]["people"]["total"] > 0


def test_compare_and_lookalike(tagged: Api) -> None:
    api = tagged
    seg = api.ok("POST", "/api/v1/segments", json={"name": "buyers for compare", "rule": BUYERS})
    result = api.ok("POST", "/api/v1/segments/compare", json={"a": {"segment": seg["id"]}})
    ranked = result["features"]
    assert ranked and ranked[0]["significant"]
    assert ranked[0]["effect"] >= ranked[-1]["effect"] or not ranked[-1]["significant"]
    assert ranked[0]["summary"]["en"] and ranked[0]["summary"]["zh"]
    like = api.ok("POST", "/api/v1/segments/lookalike", json={"name": "like buyers", "seed": seg["id"], "top_n": 50})
    assert like["segment"]["size"] == 50 and like["segment"]["kind"] == "lookalike"
    members = set(api.ok("GET", f"/api/v1/segments/{seg['id']}/members", params={"limit": 10_000})["user_ids"])
    found = set(api.ok("GET", f"/api/v1/segments/{like['segment']['id']}/members")["user_ids"])
    assert not members & found  # the seed is never among its look-alikes


def test_user_360_timeline_export_and_the_pii_right(tagged: Api, tmp_path: Path) -> None:
    api = tagged
    user = api.ok("GET", f"/api/v1/users/{api.person}")
    assert user["profile"]["phone"] == "138****5678" and user["profile"]["email"].startswith("z***@")
    assert {t["name"] for t in user["tags"]} >= {"repurchase_state", "lifecycle_stage"}
    page = api.ok("GET", f"/api/v1/users/{api.person}/timeline", params={"limit": 3})
    assert len(page["events"]) <= 3
    if page["next"]:
        more = api.ok("GET", f"/api/v1/users/{api.person}/timeline", params={"limit": 3, "before": page["next"]})
        assert not {e["event_id"] for e in more["events"]} & {e["event_id"] for e in page["events"]}
    assert api.call("GET", f"/api/v1/users/{api.person}/timeline", params={"before": "forged"}).status_code == 400
    assert api.call("GET", "/api/v1/users/nobody-at-all").status_code == 404
    assert api.call("GET", f"/api/v1/users/{api.person}", params={"unmask": True}).status_code == 403

    seg = api.ok("POST", "/api/v1/segments/static", json={"name": "one", "ids": [api.person]})
    url = f"/api/v1/segments/{seg['id']}/export"
    fields = "user_id,property:city,property:phone,property:email,tag:repurchase_state"
    masked = api.call("GET", url, params={"fields": fields})
    assert masked.status_code == 200, masked.text
    row = next(csv.DictReader(io.StringIO(masked.text)))
    assert row["property:phone"] == "138****5678" or row.get("phone") == "138****5678", row
    assert api.call("GET", url, params={"fields": fields, "unmask": True}).status_code == 403

    key_id = next(
        k["id"] for k in api.ok("GET", "/api/v1/keys") if k["kind"] == "admin" and k["name"] == "initial admin token"
    )
    granted = CliRunner().invoke(app, ["keys", "grant", str(key_id), "pii", "-w", str(api.workspace)])
    assert granted.exit_code == 0, granted.output
    plain = api.call("GET", url, params={"fields": fields, "unmask": True, "format": "parquet"})
    assert plain.status_code == 200
    (tmp_path / "x.parquet").write_bytes(plain.content)
    values = pq.read_table(tmp_path / "x.parquet").to_pylist()[0]
    assert "13812345678" in values.values() and "zhang.san@example.com" in values.values()
    assert api.ok("GET", f"/api/v1/users/{api.person}", params={"unmask": True})["profile"]["phone"] == "13812345678"
    revoked = CliRunner().invoke(app, ["keys", "grant", str(key_id), "pii", "--revoke", "-w", str(api.workspace)])
    assert revoked.exit_code == 0
    assert api.call("GET", f"/api/v1/users/{api.person}", params={"unmask": True}).status_code == 403


def test_cli_through_the_server(tagged: Api, tmp_path: Path) -> None:
    api = tagged
    runner = CliRunner()
    ws = ["-w", str(api.workspace)]
    listed = runner.invoke(app, ["tags", "list", *ws, "--json"])
    assert listed.exit_code == 0, listed.output
    assert any(t["name"] == "rfm_class" for t in json.loads(listed.output))
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps(BUYERS))
    est = runner.invoke(app, ["segments", "estimate", str(rule), *ws, "--json"])
    assert est.exit_code == 0 and json.loads(est.output)["size"] > 0
    made = runner.invoke(app, ["segments", "create", "cli buyers", str(rule), *ws, "--json"])
    assert made.exit_code == 0, made.output
    seg_id = json.loads(made.output)["id"]
    out = tmp_path / "buyers.csv"
    exported = runner.invoke(
        app, ["segments", "export", str(seg_id), "--fields", "user_id,tag:rfm_class", "-o", str(out), *ws]
    )
    assert exported.exit_code == 0, exported.output
    assert len(out.read_text().splitlines()) == json.loads(made.output)["size"] + 1
    page = runner.invoke(app, ["users", "show", api.person, *ws])
    assert page.exit_code == 0 and "tags / 标签:" in page.output and "138****5678" in page.output, page.output
    shown = runner.invoke(app, ["users", "show", api.person, *ws, "--json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["profile"]["phone"] == "138****5678"
    unmasked = runner.invoke(
        app, ["users", "show", api.person, "--unmask", *ws, "--json"]
    )  # the session token holds pii
    assert unmasked.exit_code == 0 and json.loads(unmasked.output)["profile"]["phone"] == "13812345678"
    bad = runner.invoke(app, ["segments", "estimate", "-", *ws], input='{"type": "event", "event": 5}')
    assert bad.exit_code == 2 and "error" in bad.output.lower()


RULE_LEAVES = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "property",
                "tag",
                "model",
                "segment",
                "event",
                "first_time",
                "sequence",
                "regular",
                "stopped",
                "restarted",
                "nope",
            ]
        )
    },
    optional={
        "property": st.sampled_from(["city", "age_band", 'x"; DROP TABLE users; --', "$os", ""]),
        "tag": st.sampled_from(["rfm_class", "orders_30d", "nope", "a'b"]),
        "event": st.sampled_from(["order_paid", "$any", "x' OR '1'='1", ""]),
        "op": st.sampled_from(["eq", "in", "gte", "between", "in_last_days", "anniversary_in_next_days", "bad"]),
        "value": st.one_of(
            st.none(),
            st.integers(-(10**20), 10**20),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=30),
            st.lists(st.text(max_size=5), max_size=3),
        ),
        "count": st.fixed_dictionaries({"op": st.sampled_from(["gte", "lte", "eq"]), "value": st.integers(-5, 10**12)}),
        "window": st.one_of(st.fixed_dictionaries({"last": st.integers(-5, 10**6)}), st.just({"from": "2026-01-01"})),
        "segment": st.integers(-5, 10**15),
    },
)
RULES = st.recursive(
    RULE_LEAVES,
    lambda inner: st.one_of(
        st.fixed_dictionaries({"all": st.lists(inner, max_size=4)}),
        st.fixed_dictionaries({"any": st.lists(inner, max_size=4)}),
        st.fixed_dictionaries({"not": inner}),
    ),
    max_leaves=12,
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=st.one_of(RULES, st.text(max_size=10), st.integers(), st.lists(st.none(), max_size=2)))
def test_hostile_rules_over_http_never_5xx(tagged: Api, rule: Any) -> None:
    r = tagged.call("POST", "/api/v1/segments/estimate", json={"rule": rule, "timeout": 20})
    assert r.status_code in (200, 400, 404, 422), (r.status_code, r.text)
    with Workspace.open(tagged.workspace) as ws:  # the metadata DB only; the tables are still there
        assert ws.meta.project("default") is not None
    assert tagged.ok("POST", "/api/v1/sql", json={"query": "SELECT count(*) FROM users"})["rows"][0][0] > 0


def test_non_finite_numbers_are_refused(tagged: Api) -> None:
    for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        body = b'{"rule": {"type": "event", "event": "order_paid", "count": {"op": "gte", "value": ' + raw + b"}, "
        body += b'"window": {"last": 30}}}'
        r = tagged.call("POST", "/api/v1/segments/estimate", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code in (400, 422), (raw, r.status_code, r.text)
