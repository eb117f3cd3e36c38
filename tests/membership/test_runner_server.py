"""The running service (a server process of its own) runs the membership pass by itself: an order sent to the
collector raises a member's level, the level's coupons are granted once, and ``$member_level_up`` reaches the
events table once, with no call to any membership route."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.collect.serving import ONE_SHOT_TLS, Server, new_server
from userloop.benefits import GrantRow
from userloop.store import Workspace

PROGRAMME: dict[str, Any] = {
    "name": "club", "title": {"zh": "俱乐部", "en": "Club"},
    "growth": {"rules": [{"name": "spend", "event": "order_paid",
                          "amount": {"kind": "per_property", "property": "order_amount"}}]},
    "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0},
               {"name": "silver", "title": {"zh": "白银", "en": "Silver"}, "threshold": 100,
                "benefits": [{"kind": "coupon", "benefit": "welcome", "count": 2}]}],
}  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = new_server(tmp_path).start()
    yield srv
    srv.stop()


def send(server: Server, event: str, **properties: Any) -> None:
    at = datetime.now(UTC).isoformat()  # the collector stamps what arrives now; the service's clock is the wall's
    body = {"batch": [{"type": "track", "event": event, "userId": "buyer", "timestamp": at,
                       "messageId": f"{event}-{time.monotonic_ns()}", "properties": properties}]}  # fmt: skip
    assert httpx.post(server.url + "/v1/batch", json=body, auth=(server.write_key, ""), timeout=10).status_code == 200
    server.settle()


def test_the_service_raises_the_level_and_grants_its_coupons_once(server: Server) -> None:
    def post(path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(server.url + path, json=body, headers=server.admin, timeout=30, verify=ONE_SHOT_TLS)

    def level(person: int) -> int:
        shown = httpx.get(f"{server.url}/api/v1/members/{person}", params={"programme": "club"}, headers=server.admin,
                          timeout=30)  # fmt: skip
        return int(shown.json()["level"])

    assert post("/api/v1/benefits", {"name": "welcome", "amount": 5}).is_success
    assert post("/api/v1/programmes", {"definition": PROGRAMME}).is_success
    send(server, "app_start")
    (person,) = (int(r[0]) for r in server.sql("SELECT user_id FROM users"))
    joined = post("/api/v1/members", {"programme": "club", "person": person})
    assert joined.status_code == 201, joined.text
    send(server, "order_paid", order_amount=150)
    deadline, reached = time.monotonic() + 20, 0
    while reached == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        reached = level(person)
    assert reached == 1
    ups: list[list[Any]] = []
    while not ups and time.monotonic() < deadline:
        ups = server.sql("SELECT count(*), count(DISTINCT event_id) FROM events WHERE event = '$member_level_up' "
                         "HAVING count(*) > 0")  # fmt: skip
    assert ups == [[1, 1]]
    server.stop()
    ws = Workspace.open(server.path, read_only=True)
    try:
        with ws.meta.session() as s:
            assert s.scalar(select(func.count()).select_from(GrantRow).where(GrantRow.person == person)) == 2
    finally:
        ws.close()
