"""Programmes and members through the REST API of a real server on loopback (a process of its own).

What is proven: a programme goes validate → create → update (version 2) → versions; an invalid one answers every
error by path, and validation names the benefits the project lacks; a taken name is 409; members join, show their
level and progress to the next, list, get a VIP period, leave; re-evaluation answers what it did; unknown
programmes and members are 404; a request without credentials is 401 and a change with a read-only token 403.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collect.serving import ONE_SHOT_TLS, Server, new_server

PROGRAMME: dict[str, Any] = {
    "name": "club",
    "title": {"zh": "会员俱乐部", "en": "Club"},
    "growth": {"rules": [{"name": "spend", "event": "order_paid",
                          "amount": {"kind": "per_property", "property": "order_amount"}, "daily_cap": 5000}]},
    "levels": [
        {"name": "base", "title": {"zh": "普通会员", "en": "Member"}, "threshold": 0},
        {"name": "gold", "title": {"zh": "黄金会员", "en": "Gold"}, "threshold": 1000,
         "benefits": [{"kind": "coupon", "benefit": "gold-coupon"}, {"kind": "title", "title": {"zh": "金", "en": "G"}},
                      {"kind": "birthday_pack", "benefits": ["gold-coupon"], "points": 100}]},
    ],
    "window": {"kind": "calendar_year"},
    "downgrade": {"kind": "period_end"},
    "check_in": {"points": 5, "streaks": [{"days": 7, "reward": {"points": 50}}]},
    "tasks": [{"name": "review3", "title": {"zh": "评价三次", "en": "Review 3 times"}, "event": "review", "times": 3,
               "period": "week", "reward": {"growth": 20}, "limit": 10}],
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = new_server(Path(tmp_path_factory.mktemp("members")), failed_auths_per_minute=1e6).start()
    yield srv
    srv.stop()


def call(server: Server, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    return httpx.request(method, server.url + path, headers=server.admin if headers is None else headers,
                         timeout=60, **kw, verify=ONE_SHOT_TLS)  # fmt: skip


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def test_a_programme_is_checked_saved_versioned_and_its_members_progress(server: Server) -> None:
    checked = call(server, "POST", "/api/v1/programmes/validate", json={"definition": PROGRAMME})
    assert checked.status_code == 200
    assert checked.json()["valid"] is False
    assert {e["path"] for e in checked.json()["errors"]} == {"levels.1.benefits.0.benefit",
                                                             "levels.1.benefits.2.benefits.0"}  # fmt: skip
    made = call(server, "POST", "/api/v1/benefits", json={"name": "gold-coupon", "amount": 20, "threshold": 100})
    assert made.status_code == 201, made.text
    assert call(server, "POST", "/api/v1/programmes/validate", json={"definition": PROGRAMME}).json()["valid"]

    created = call(server, "POST", "/api/v1/programmes", json={"definition": PROGRAMME})
    assert created.status_code == 201, created.text
    assert (created.json()["version"], created.json()["levels"], created.json()["title_zh"]) == (1, 2, "会员俱乐部")
    taken = call(server, "POST", "/api/v1/programmes", json={"definition": PROGRAMME})
    assert taken.status_code == 409 and code(taken) == "programme_exists"

    changed = copy.deepcopy(PROGRAMME)
    changed["levels"][1]["threshold"] = 800
    updated = call(server, "PUT", "/api/v1/programmes/club", json={"definition": changed})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    versions = call(server, "GET", "/api/v1/programmes/club/versions").json()
    assert [v["definition"]["levels"][1]["threshold"] for v in versions] == [1000, 800]
    assert [p["name"] for p in call(server, "GET", "/api/v1/programmes").json()] == ["club"]

    joined = call(
        server,
        "POST",
        "/api/v1/members",
        json={"programme": "club", "person": 42, "birthday": "2000-02-29", "zone": "Asia/Shanghai"},
    )
    assert joined.status_code == 201, joined.text
    m = joined.json()
    assert (m["level"], m["level_name"], m["level_zh"], m["growth"]) == (0, "base", "普通会员", 0)
    assert (m["next_level"], m["next_threshold"], m["to_next"]) == ("gold", 800, 800)
    assert m["birthday"] == "2000-02-29"

    vip = call(
        server,
        "POST",
        "/api/v1/members/42/vip",
        json={"programme": "club", "since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"},
    )
    assert vip.status_code == 200 and vip.json()["vip_until"].startswith("2026-02-01")
    backwards = call(
        server,
        "POST",
        "/api/v1/members/42/vip",
        json={"programme": "club", "since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )
    assert backwards.status_code == 400
    listed = call(server, "GET", "/api/v1/members", params={"programme": "club", "level": 0}).json()
    assert [x["person"] for x in listed] == [42]

    evaluated = call(server, "POST", "/api/v1/members/evaluate", json={"programme": "club"})
    assert evaluated.status_code == 200, evaluated.text
    assert (evaluated.json()["members"], evaluated.json()["up"]) == (1, 0)
    assert call(server, "GET", "/api/v1/programmes/club/level-changes").json() == []

    shown = call(server, "GET", "/api/v1/members/42", params={"programme": "club"})
    assert shown.status_code == 200 and shown.json()["status"] == "active"
    left = call(server, "DELETE", "/api/v1/members/42", params={"programme": "club"})
    assert left.status_code == 200 and left.json()["status"] == "left"
    assert call(server, "GET", "/api/v1/members", params={"programme": "club"}).json() == []


def test_errors_are_clear_4xx(server: Server) -> None:
    bad = copy.deepcopy(PROGRAMME)
    bad["name"] = "bad"
    bad["levels"][1]["threshold"] = 0
    bad["window"] = {"kind": "rolling_days"}
    refused = call(server, "POST", "/api/v1/programmes", json={"definition": bad})
    assert refused.status_code == 400 and code(refused) == "programme_invalid"
    assert "levels.1.threshold" in refused.json()["error"]["message"] or "window.days" in refused.json()["error"][
        "message"]  # fmt: skip
    checked = call(server, "POST", "/api/v1/programmes/validate", json={"definition": bad}).json()
    assert {e["path"] for e in checked["errors"]} == {"window.days"}  # the shape first, then coherence
    unknown = call(server, "GET", "/api/v1/programmes/nope")
    assert unknown.status_code == 404 and code(unknown) == "unknown_programme"
    nobody = call(server, "GET", "/api/v1/members/7", params={"programme": "club"})
    assert nobody.status_code == 404 and code(nobody) in ("unknown_member", "unknown_programme")
    huge = call(server, "GET", "/api/v1/members/99999999999999999999", params={"programme": "club"})
    assert huge.status_code in (400, 422)
    assert call(server, "GET", "/api/v1/programmes", headers={}).status_code == 401
    made = call(server, "POST", "/api/v1/keys", json={"kind": "admin", "name": "reader", "rights": ["read"]})
    reader = {"Authorization": f"Bearer {made.json()['secret']}"}
    forbidden = call(server, "POST", "/api/v1/programmes", headers=reader, json={"definition": PROGRAMME})
    assert forbidden.status_code == 403
