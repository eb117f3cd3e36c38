"""Bad input: the good records are kept, the bad ones are named in the reply and land in the dead letter."""

from __future__ import annotations

import base64
import time

import httpx

from tests.collect.serving import Server


def test_mixed_batch_keeps_good_records_and_names_bad_ones(server: Server) -> None:
    now = int(time.time() * 1000)
    records = [
        {"type": "track", "event": "ok_event", "distinct_id": "b1", "time": now, "properties": {"price": 1}},
        {"type": "track", "event": "bad name", "distinct_id": "b1", "time": now},
        {"type": "track", "event": "ok_event", "time": now},
        {"type": "track", "event": "ok_event", "distinct_id": "b1", "time": now + 86_400_000 * 3},
        {"type": "track", "event": "ok_event", "distinct_id": "b1", "time": now, "properties": {"price": "cheap"}},
    ]
    auth = {"Authorization": f"Bearer {server.write_key}"}
    httpx.post(server.url + "/api/v1/events:batch", json=records[:1], headers=auth)
    server.settle()  # price is now a NUMBER in the registry the front door checks against
    time.sleep(0.1)
    reply = httpx.post(server.url + "/api/v1/events:batch", json=records, headers=auth).json()
    assert reply["accepted"] == 1
    assert [(r["index"], r["field"]) for r in reply["rejected"]] == [
        (1, "event"),
        (2, "distinct_id"),
        (3, "time"),
        (4, "price"),
    ]
    reasons = {r["reason"] for r in server.rejects() if r["source"] == "collector:native"}
    assert any("future" in r for r in reasons)


def test_undecodable_payload_is_dead_lettered_with_raw(server: Server) -> None:
    url = f"{server.url}/sa?project=default&token={server.write_key}"
    reply = httpx.post(url, data={"data": "!!!not base64!!!", "gzip": "1"})
    assert reply.status_code == 400
    assert any("base64" in r["reason"] and "not base64" in (r["raw"] or "") for r in server.rejects())
    bad_gzip = base64.b64encode(b"\x1f\x8bnot gzip").decode()
    assert httpx.post(url, data={"data": bad_gzip, "gzip": "1"}).status_code == 400


def test_limits(server: Server) -> None:
    auth = (server.write_key, "")
    big = b'{"batch": [' + b" " * (6 << 20) + b"]}"
    assert httpx.post(server.url + "/v1/batch", content=big, auth=auth).status_code == 413
    many = {"batch": [{"type": "track", "event": "e", "anonymousId": "a"}] * 10_001}
    assert httpx.post(server.url + "/v1/batch", json=many, auth=auth).status_code == 413


def test_rate_limit_answers_429_with_retry_after(server: Server) -> None:
    headers = server.admin
    httpx.patch(server.url + "/api/v1/projects/default", headers=headers, json={"rate_per_second": 10})
    try:
        # 10 records a request: the burst is 2 s of the rate (a request larger than it is refused with 413)
        body = {"batch": [{"type": "track", "event": "e", "anonymousId": "rl"}] * 10}
        codes = [httpx.post(server.url + "/v1/batch", json=body, auth=(server.write_key, "")) for _ in range(4)]
        limited = [r for r in codes if r.status_code == 429]
        assert limited and int(limited[0].headers["Retry-After"]) >= 1
    finally:
        httpx.patch(server.url + "/api/v1/projects/default", headers=headers, json={"rate_per_second": None})


def test_cors_is_per_project(server: Server) -> None:
    headers = server.admin
    httpx.patch(
        server.url + "/api/v1/projects/default", headers=headers, json={"cors_origins": ["https://shop.example"]}
    )
    pre = httpx.options(server.url + "/v1/batch", headers={"Origin": "https://shop.example"})
    assert pre.status_code == 204
    assert httpx.options(server.url + "/v1/batch", headers={"Origin": "https://evil.example"}).status_code == 403
    body = {"batch": [{"type": "track", "event": "e", "anonymousId": "c"}]}
    reply = httpx.post(
        server.url + "/v1/batch", json=body, auth=(server.write_key, ""), headers={"Origin": "https://shop.example"}
    )
    assert reply.headers["access-control-allow-origin"] == "https://shop.example"
