"""Check-ins, tasks, the level and the points exchange through a running server: the member's app with a member
token, the operator with an admin token; a missing or forged token is refused before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.collect.serving import Server, new_server
from userloop.benefits import BenefitRow
from userloop.membership.members import Programmes, join
from userloop.store import Workspace
from userloop.store.meta import MetaStore

PERSON = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = new_server(Path(tmp_path_factory.mktemp("serve")))
    ws = Workspace.open(srv.path)
    meta: MetaStore = ws.meta
    project = meta.project("default")
    assert project is not None
    saved = Programmes(meta, project).create({
        "name": "club", "title": {"zh": "俱乐部", "en": "Club"}, "timezone": "Asia/Shanghai",
        "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0},
                   {"name": "gold", "title": {"zh": "黄金", "en": "Gold"}, "threshold": 500}],
        "exchange": [{"name": "ten", "title": {"zh": "10元券", "en": "10 off"}, "benefit": "ten_off", "points": 5},
                     {"name": "vip", "title": {"zh": "贵宾券", "en": "VIP"}, "benefit": "ten_off", "points": 1,
                      "min_level": 1}],
        "check_in": {"points": 5, "streaks": [{"days": 7, "reward": {"points": 100}}]},
        "tasks": [{"name": "share", "title": {"zh": "分享", "en": "Share"}, "event": "share", "times": 3,
                   "reward": {"points": 10}}],
    })  # fmt: skip
    assert saved.id == 1
    with meta.session.begin() as s:
        s.add(BenefitRow(project_id=project.id, name="ten_off", amount=10, threshold=50, valid_days=30))
    join(meta, saved, PERSON, saved.created_at)
    ws.close()
    srv.start()
    yield srv
    srv.stop()


def test_the_app_checks_in_once_a_day_and_reads_its_streak_and_tasks(server: Server) -> None:
    token = httpx.post(f"{server.url}/api/v1/members/{PERSON}/token", headers=server.admin, json={}).json()["token"]
    app = {"Authorization": f"Bearer {token}"}
    first = httpx.post(f"{server.url}/app/v1/member/check-in", headers=app)
    again = httpx.post(f"{server.url}/app/v1/member/check-in", headers=app)
    assert first.status_code == again.status_code == 200, first.text
    assert (first.json()["new"], again.json()["new"], again.json()["streak"]) == (True, False, 1)
    assert [r["points"] for r in again.json()["rewards"]] == [5]
    shown = httpx.get(f"{server.url}/app/v1/member/check-ins", headers=app).json()
    assert (shown["checked_in_today"], shown["streak"], len(shown["days"])) == (True, 1, 1)
    balance = httpx.get(f"{server.url}/app/v1/member/balance", headers=app).json()
    assert balance["spendable"] == 5
    tasks = httpx.get(f"{server.url}/app/v1/member/tasks", headers=app).json()
    assert [(t["task"], t["count"], t["completed"]) for t in tasks] == [("share", 0, False)]
    operator = httpx.get(f"{server.url}/api/v1/members/{PERSON}/check-ins", headers=server.admin).json()
    assert operator["days"] == shown["days"]


def test_no_token_or_a_forged_one_is_refused_and_nothing_is_written(server: Server) -> None:
    missing = httpx.post(f"{server.url}/app/v1/member/check-in")
    forged = httpx.post(f"{server.url}/app/v1/member/check-in", headers={"Authorization": "Bearer x.y.z"})
    admin = httpx.post(f"{server.url}/app/v1/member/check-in", headers=server.admin)
    assert (missing.status_code, forged.status_code, admin.status_code) == (401, 403, 403)
    assert forged.json()["error"]["code"] == "token_invalid"
    stranger = httpx.post(f"{server.url}/api/v1/members/6/check-ins", headers=server.admin, json={})
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "unknown_member"


def test_the_app_shows_the_level_and_redeems_points_once(server: Server) -> None:
    token = httpx.post(f"{server.url}/api/v1/members/{PERSON}/token", headers=server.admin, json={}).json()["token"]
    app = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{server.url}/app/v1/member", headers=app).json()
    assert (me["level_name"], me["level_zh"], me["next_level"], me["next_threshold"]) == ("base", "普通", "gold", 500)
    items = httpx.get(f"{server.url}/app/v1/member/exchange", headers=app).json()
    assert [(i["name"], i["points"], i["allowed"]) for i in items] == [("ten", 5, True), ("vip", 1, False)]
    httpx.post(f"{server.url}/api/v1/members/{PERSON}/points/earn", headers=server.admin,
               json={"amount": 20, "request_id": "gift"}).raise_for_status()  # fmt: skip
    body = {"item": "ten", "request_id": "app-1"}
    first = httpx.post(f"{server.url}/app/v1/member/exchange", headers=app, json=body)
    again = httpx.post(f"{server.url}/app/v1/member/exchange", headers=app, json=body)
    assert first.status_code == again.status_code == 200, first.text
    assert again.json()["code"] == first.json()["code"] and again.json()["replayed"]
    refused = httpx.post(f"{server.url}/app/v1/member/exchange", headers=app, json={"item": "vip", "request_id": "v"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "exchange_refused"
    forged = httpx.post(f"{server.url}/app/v1/member/exchange", headers={"Authorization": "Bearer x.y.z"}, json=body)
    assert forged.status_code == 403
    spendable = httpx.get(f"{server.url}/app/v1/member/balance", headers=app).json()["spendable"]
    operator = httpx.post(f"{server.url}/api/v1/members/{PERSON}/exchange", headers=server.admin,
                          json={"programme": "club", "item": "ten", "request_id": "op-1"})  # fmt: skip
    assert operator.status_code == 200, operator.text
    assert httpx.get(f"{server.url}/app/v1/member/balance", headers=app).json()["spendable"] == spendable - 5
