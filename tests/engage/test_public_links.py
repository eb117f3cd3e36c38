"""The journeys' public links and the app inbox, against a real server on loopback: only tokens signed with the
workspace's key are accepted (forged, altered, expired, of another kind: 403); an open, a click and an unsubscribe
are recorded once per request and the unsubscribe opts the person out; a GET of the unsubscribe page never does."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.collect.serving import ONE_SHOT_TLS, Server, new_server
from userloop.core.clock import now_ms
from userloop.core.errors import ValidationError
from userloop.engage import tracking
from userloop.engage.secrets import SecretBox


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = new_server(Path(tmp_path_factory.mktemp("links"))).start()
    yield srv
    srv.stop()


def _secret(server: Server) -> bytes:
    return SecretBox.for_workspace(server.path).derive("links")


def _claims(person: int = 7) -> dict[str, str | int]:
    return {"p": 1, "k": f"1.1.send.{person}.1", "u": person, "c": "email"}


def _meta(server: Server, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(server.path / "meta.sqlite") as con:
        return con.execute(query).fetchall()


def test_open_click_and_unsubscribe_are_recorded(server: Server) -> None:
    secret = _secret(server)
    opened = httpx.get(f"{server.url}/t/o/{tracking.sign(secret, 'open', _claims(), None)}")
    assert opened.status_code == 200 and opened.content == tracking.PIXEL
    assert opened.headers["content-type"] == tracking.PIXEL_CONTENT_TYPE
    assert "no-store" in opened.headers["cache-control"]

    click = tracking.sign(secret, "click", {**_claims(), "url": "https://shop.example/item?id=1&a=b"}, None)
    clicked = httpx.get(f"{server.url}/t/c/{click}", follow_redirects=False)
    assert clicked.status_code == 302 and clicked.headers["location"] == "https://shop.example/item?id=1&a=b"

    unsub = tracking.sign(secret, "unsubscribe", _claims(), None)
    page = httpx.get(f"{server.url}/t/u/{unsub}")
    assert page.status_code == 200 and "退订" in page.text and "Unsubscribe" in page.text
    assert _meta(server, "SELECT count(*) FROM subscriptions") == [(0,)]  # a GET never unsubscribes

    done = httpx.post(f"{server.url}/t/u/{unsub}", content=b"List-Unsubscribe=One-Click")
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert _meta(server, "SELECT person, topic, subscribed FROM subscriptions") == [(7, "email", 0)]
    events = _meta(server, "SELECT event, person, key FROM message_feedback ORDER BY id")
    assert events == [
        ("$message_opened", 7, "1.1.send.7.1"),
        ("$message_clicked", 7, "1.1.send.7.1"),
        ("$unsubscribed", 7, "1.1.send.7.1"),
    ]


@pytest.mark.parametrize("route", ["/t/o/", "/t/c/", "/t/u/"])
def test_only_signed_tokens_are_accepted(server: Server, route: str) -> None:
    kind = {"/t/o/": "open", "/t/c/": "click", "/t/u/": "unsubscribe"}[route]
    claims: dict[str, str | int] = {**_claims(9), "url": "https://shop.example/"}
    good = tracking.sign(_secret(server), kind, claims, None)  # type: ignore[arg-type]
    forged = tracking.sign(b"s" * 32, kind, claims, None)  # type: ignore[arg-type]
    other = "open" if kind != "open" else "click"
    wrong_kind = tracking.sign(_secret(server), other, claims, None)  # type: ignore[arg-type]
    expired = tracking.sign(_secret(server), kind, claims, now_ms() - 1)  # type: ignore[arg-type]
    altered = good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:]
    before = _meta(server, "SELECT count(*) FROM message_feedback")
    for token in (forged, wrong_kind, expired, altered, "x", "a.b", "%00", "' OR 1=1 --"):
        for method in ("GET", "POST") if route == "/t/u/" else ("GET",):
            response = httpx.request(method, f"{server.url}{route}{token}", follow_redirects=False, verify=ONE_SHOT_TLS)
            assert response.status_code in (403, 404), (token, response.status_code, response.text)
            if response.status_code == 403:
                assert response.json()["error"]["code"] == "token_invalid"
    assert _meta(server, "SELECT count(*) FROM message_feedback") == before


def test_a_click_token_to_a_dangerous_target_is_refused(server: Server) -> None:
    with pytest.raises(ValidationError, match="must start with http"):
        tracking.sign(_secret(server), "click", {**_claims(), "url": "javascript:alert(1)"}, None)


def test_the_inbox_needs_a_person_token(server: Server) -> None:
    assert httpx.get(f"{server.url}/app/v1/inbox").status_code == 401
    assert httpx.post(f"{server.url}/app/v1/inbox/read", json={"keys": ["k"]}).status_code == 401
    forged = tracking.sign(b"s" * 32, "inbox", {"p": 1, "u": 5}, None)
    response = httpx.get(f"{server.url}/app/v1/inbox", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 403
    # the backend asks for the person's token (admin), the app reads its inbox with it
    made = httpx.post(f"{server.url}/api/v1/inbox/tokens", json={"person": 5}, headers=server.admin)
    assert made.status_code == 200, made.text
    token = made.json()["token"]
    assert httpx.post(f"{server.url}/api/v1/inbox/tokens", json={"person": 5}).status_code == 401
    page = httpx.get(f"{server.url}/app/v1/inbox", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200 and page.json() == {"items": [], "next": None, "unread": 0}
    bad = httpx.post(f"{server.url}/app/v1/inbox/read", content=b"{", headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code in (400, 422) and bad.json()["error"]["code"] == "invalid_request"


def test_provider_receipts_are_recorded_through_the_channels_signed_url(server: Server) -> None:
    from userloop.engage.channels.registry import save_channel
    from userloop.store.meta import MetaStore

    meta = MetaStore(f"sqlite:///{(server.path / 'meta.sqlite').as_posix()}")
    try:
        settings = {"access_key_id": "LTAI-test", "access_key_secret": "s" * 30, "sign_name": "优惠",
                    "template_code": "SMS_1", "endpoint": "http://127.0.0.1:9"}  # fmt: skip
        save_channel(meta, 1, "sms", "sms", "aliyun", settings, SecretBox.for_workspace(server.path))
    finally:
        meta.dispose()
    assert httpx.get(f"{server.url}/api/v1/channels/sms/receipt-url").status_code == 401
    made = httpx.get(f"{server.url}/api/v1/channels/sms/receipt-url", headers=server.admin)
    assert made.status_code == 200, made.text
    url = made.json()["url"]
    assert url.startswith("http://127.0.0.1:8000/t/r/")  # the project's public address
    path = url.removeprefix("http://127.0.0.1:8000")
    report = [
        {"phone_number": "13800000000", "success": True, "err_code": "DELIVERED", "biz_id": "b1",
         "out_id": "1.1.sms_node.11.1", "report_time": "2026-12-01 10:00:05"},
        {"phone_number": "13800000001", "success": False, "err_code": "MK:0001", "biz_id": "b2",
         "out_id": "1.1.sms_node.12.1", "report_time": "2026-12-01 10:00:06"},
        {"phone_number": "13800000002", "success": True, "biz_id": "b3", "out_id": "not-ours"},
    ]  # fmt: skip
    answer = httpx.post(server.url + path, json=report)
    assert answer.status_code == 200 and answer.json()["code"] == 0
    got = _meta(server, "SELECT person, event, key FROM message_feedback WHERE key LIKE '1.1.sms_node.%' ORDER BY id")
    assert got == [(11, "$message_delivered", "1.1.sms_node.11.1"), (12, "$message_failed", "1.1.sms_node.12.1")]
    forged = tracking.sign(b"s" * 32, "receipt", {"p": 1, "c": "sms"}, None)
    assert httpx.post(f"{server.url}/t/r/{forged}", json=report).status_code == 403
    other_kind = tracking.sign(_secret(server), "open", {"p": 1, "c": "sms"}, None)
    assert httpx.post(f"{server.url}/t/r/{other_kind}", json=report).status_code == 403
