"""Users' dashboards over real HTTP: create, arrange, show, run (from the cache the second time), delete; the
layout's rules name the field at fault; a dashboard and its insights stay in their project; the ready-made
core-metrics dashboard keeps its routes beside /dashboards/{id}."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.collect.serving import ONE_SHOT_TLS, Server

TRENDS = {"kind": "trends", "date_range": {"from": "2026-06-01", "to": "2026-06-07"}, "series": [{"event": "view"}]}
FUNNEL = {"kind": "funnel", "date_range": {"from": "2026-06-01", "to": "2026-06-07"},
          "steps": [{"event": "view"}, {"event": "order_paid"}]}  # fmt: skip


def _api(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("headers", server.admin)
    return httpx.request(method, server.url + path, timeout=60, **kwargs, verify=ONE_SHOT_TLS)


def _ok(server: Server, method: str, path: str, **kwargs: Any) -> Any:
    reply = _api(server, method, path, **kwargs)
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def _error(reply: httpx.Response) -> dict[str, Any]:
    return dict(reply.json()["error"])


@pytest.fixture(scope="module")
def insights(server: Server) -> list[int]:
    saved = [_ok(server, "POST", "/api/v1/insights", json={"name": f"i{n}", "definition": d})
             for n, d in enumerate((TRENDS, FUNNEL))]  # fmt: skip
    return [int(s["id"]) for s in saved]


def test_create_arrange_show_run_and_delete(server: Server, insights: list[int]) -> None:
    trends, funnel = insights
    layout = [
        {"insight_id": trends, "x": 0, "y": 0, "w": 6, "h": 4},
        {"insight_id": funnel, "x": 6, "y": 0, "w": 6, "h": 4},
    ]
    made = _ok(server, "POST", "/api/v1/dashboards", json={"name": "日报 daily", "layout": layout})
    board = made["id"]
    assert made["layout"] == layout and made["created_by"]
    moved = [{**layout[1], "x": 0, "y": 4, "w": 12}, layout[0]]
    arranged = _ok(server, "PATCH", f"/api/v1/dashboards/{board}", json={"layout": moved, "description": "晨会"})
    assert arranged["layout"] == moved and arranged["name"] == "日报 daily" and arranged["description"] == "晨会"
    shown = _ok(server, "GET", f"/api/v1/dashboards/{board}")
    assert [(t["insight_name"], t["insight_kind"]) for t in shown["layout"]] == [("i1", "funnel"), ("i0", "trends")]
    assert [d["id"] for d in _ok(server, "GET", "/api/v1/dashboards")] == [board]
    first = _ok(server, "POST", f"/api/v1/dashboards/{board}/run")
    assert [(t["tile"], t["insight_id"], t["kind"]) for t in first["tiles"]] == [
        (0, funnel, "funnel"),
        (1, trends, "trends"),
    ]
    assert all("result" in t and "error" not in t for t in first["tiles"]), first
    again = _ok(server, "POST", f"/api/v1/dashboards/{board}/run")
    assert [t["cached"] for t in again["tiles"]] == [True, True]
    held = _api(server, "DELETE", f"/api/v1/insights/{trends}")
    assert (
        held.status_code == 409 and _error(held)["code"] == "insight_in_use" and "日报 daily" in _error(held)["message"]
    )
    assert _ok(server, "DELETE", f"/api/v1/dashboards/{board}") == {"deleted": board}
    assert _api(server, "GET", f"/api/v1/dashboards/{board}").status_code == 404
    spare = _ok(server, "POST", "/api/v1/insights", json={"name": "spare", "definition": TRENDS})["id"]
    assert _ok(server, "DELETE", f"/api/v1/insights/{spare}") == {"deleted": spare}  # on no dashboard: deleted


def test_the_core_metrics_routes_live_beside_dashboard_ids(server: Server) -> None:
    panels = _ok(server, "GET", "/api/v1/dashboards/core-metrics")
    assert panels and {"key", "title_zh", "title_en"} <= set(panels[0])
    assert _ok(server, "POST", "/api/v1/dashboards/core-metrics/run")["panels"]
    assert _api(server, "GET", "/api/v1/dashboards/999").status_code == 404
    assert _api(server, "DELETE", "/api/v1/dashboards/core-metrics").status_code == 422  # not an id


@pytest.mark.parametrize(
    ("tile", "field"),
    [
        ({"w": 13}, "layout.0.w"),
        ({"h": 0}, "layout.0.h"),
        ({"x": 8, "w": 6}, "layout.0.w"),
        ({"x": 1.5}, "layout.0.x"),
        ({"y": "2"}, "layout.0.y"),
        ({"insight_id": 999_999}, "layout.0.insight_id"),
    ],
)
def test_layout_errors_name_the_field(server: Server, insights: list[int], tile: dict[str, Any], field: str) -> None:
    layout = [{"insight_id": insights[0], "x": 0, "y": 0, "w": 4, "h": 4, **tile}]
    reply = _api(server, "POST", "/api/v1/dashboards", json={"name": "bad", "layout": layout})
    assert reply.status_code in (400, 422), reply.text
    assert _error(reply)["field"].endswith(field), reply.text


def test_names_are_checked_and_unique(server: Server) -> None:
    for name, field in (("", "name"), (" ", "name"), ("x" * 101, "name")):
        reply = _api(server, "POST", "/api/v1/dashboards", json={"name": name})
        assert reply.status_code == 422 and _error(reply)["field"].endswith(field)
    first = _ok(server, "POST", "/api/v1/dashboards", json={"name": "twice"})
    again = _api(server, "POST", "/api/v1/dashboards", json={"name": "twice"})
    assert again.status_code == 409 and _error(again)["code"] == "dashboard_exists"
    other = _ok(server, "POST", "/api/v1/dashboards", json={"name": "other"})
    clash = _api(server, "PATCH", f"/api/v1/dashboards/{other['id']}", json={"name": "twice"})
    assert clash.status_code == 409 and _error(clash)["field"] == "name"
    for board in (first, other):
        _ok(server, "DELETE", f"/api/v1/dashboards/{board['id']}")


def test_dashboards_stay_in_their_project(server: Server, insights: list[int]) -> None:
    _ok(server, "POST", "/api/v1/projects", json={"name": "shop2"})
    board = _ok(server, "POST", "/api/v1/dashboards", json={"name": "mine", "layout": []})["id"]
    assert _api(server, "GET", f"/api/v1/dashboards/{board}", params={"project": "shop2"}).status_code == 404
    assert _ok(server, "GET", "/api/v1/dashboards", params={"project": "shop2"}) == []
    foreign = {"project": "shop2", "name": "x", "layout": [{"insight_id": insights[0], "x": 0, "y": 0, "w": 1, "h": 1}]}
    reply = _api(server, "POST", "/api/v1/dashboards", json=foreign)
    assert reply.status_code == 400 and _error(reply)["field"] == "layout.0.insight_id"
    token = _ok(server, "POST", "/api/v1/keys", json={"kind": "admin", "project": "shop2"})["secret"]
    scoped = {"Authorization": f"Bearer {token}"}
    assert _api(server, "GET", f"/api/v1/dashboards/{board}", headers=scoped).status_code == 403
    assert _api(server, "DELETE", f"/api/v1/dashboards/{board}", headers=scoped).status_code == 403
    reader = _ok(server, "POST", "/api/v1/keys", json={"kind": "admin", "rights": ["read"]})["secret"]
    refused = _api(
        server, "POST", "/api/v1/dashboards", json={"name": "r"}, headers={"Authorization": f"Bearer {reader}"}
    )
    assert refused.status_code == 403
    _ok(server, "DELETE", f"/api/v1/dashboards/{board}")
