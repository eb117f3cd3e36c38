"""Every route in the OpenAPI spec refuses a request without credentials, except the health check."""

from __future__ import annotations

import httpx

from tests.collect.serving import ONE_SHOT_TLS, Server
from userloop.ops.base import operations

DUMMY = {
    "key_id": "1",
    "name": "default",
    "kind": "events",
    "query_id": "q1",
    "insight_id": "1",
    "segment_id": "1",
    "key": "u1",
    "tag": "t1",
    "event": "view",
    "journey": "welcome",
    "benefit": "first_order",
    "action": "start",
    "token": "not-a-signed-token",
    "person": "1",
    "programme": "1",
    "login": "nobody",
    "dashboard_id": "1",
}
SIGN_IN = "/api/v1/auth/login"
BODIES = {  # well-formed for each wire format, with no key anywhere
    "/sa": b"data=eyJ0eXBlIjoidHJhY2sifQ%3D%3D",
    "/track": b"data=%5B%7B%22event%22%3A%22e%22%2C%22properties%22%3A%7B%22distinct_id%22%3A%22d%22%7D%7D%5D",
}


def _routes(spec: dict[str, object]) -> list[tuple[str, str]]:
    paths = spec["paths"]
    assert isinstance(paths, dict)
    return [(path, method.upper()) for path, ops in paths.items() for method in ops]


def test_only_health_answers_without_credentials(server: Server) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    routes = _routes(spec)
    assert len(routes) > 25
    for path, method in routes:
        url = server.url + path.format(**DUMMY)
        body = BODIES.get(path, b'{"batch": [{"type": "track", "event": "e", "anonymousId": "a"}]}')
        response = httpx.request(
            method, url, content=body if method != "GET" else None, params={"filename": "x.csv"}, verify=ONE_SHOT_TLS
        )
        if path == "/healthz":
            assert response.status_code == 200
        elif path == SIGN_IN:  # the way in takes a JSON body and no credentials (tests/api/test_sessions.py)
            assert response.status_code == 415, response.text
        else:
            assert response.status_code in (401, 403), (method, path, response.status_code, response.text)


def test_wrong_admin_token_and_write_key_as_admin_are_refused(server: Server) -> None:
    for token in ("ula_nope", server.write_key):
        response = httpx.get(server.url + "/api/v1/projects", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401


def test_revoked_write_key_stops_working(server: Server) -> None:
    created = httpx.post(server.url + "/api/v1/keys", headers=server.admin, json={"kind": "write"}).json()
    body = {"batch": [{"type": "track", "event": "e", "anonymousId": "a", "messageId": "rv1"}]}
    assert httpx.post(server.url + "/v1/batch", json=body, auth=(created["secret"], "")).status_code == 200
    assert httpx.delete(server.url + f"/api/v1/keys/{created['id']}", headers=server.admin).status_code == 200
    assert httpx.post(server.url + "/v1/batch", json=body, auth=(created["secret"], "")).status_code == 401


def test_every_management_route_needs_read_or_admin(server: Server) -> None:
    """A token holding only ``write`` (for sending events) is refused by every route that reads or changes."""
    created = httpx.post(
        server.url + "/api/v1/keys",
        headers=server.admin,
        json={"kind": "admin", "project": "default", "rights": ["write"], "name": "sender"},
    )
    assert created.status_code == 201, created.text
    sender = {"Authorization": f"Bearer {created.json()['secret']}"}
    spec = httpx.get(server.url + "/openapi.json").json()
    sending = {"/api/v1/events:batch", "/api/v1/imports/{kind}", SIGN_IN}
    # what the business's backend writes beside its events (members joining, points, check-ins) takes ``write``
    writing = {(op.path, op.method) for op in operations().values() if op.right == "write"}
    routes = [(p, m) for p, m in _routes(spec) if p.startswith("/api/v1/") and p not in sending
              and (p, m) not in writing]  # fmt: skip
    assert len(routes) > 25
    for path, method in routes:
        url = server.url + path.format(**DUMMY)
        response = httpx.request(
            method, url, headers=sender, content=b"{}" if method != "GET" else None, verify=ONE_SHOT_TLS
        )
        assert response.status_code == 403, (method, path, response.status_code, response.text)
    sent = httpx.post(server.url + "/api/v1/events:batch", headers=sender, json=[], params={"project": "default"})
    assert sent.status_code == 200, sent.text
