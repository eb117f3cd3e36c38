"""No input makes the server answer 5xx: random bodies, encodings and keys on every route of the spec."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collect.serving import ONE_SHOT_TLS, Server, new_server
from tests.conftest import examples

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
RECORDS = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "profile_set", "item_set", "x"]), "event": st.text(max_size=12)},
    optional={"distinct_id": JSON, "time": JSON, "properties": JSON, "messageId": JSON, "batch": JSON},
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The module's server: the fuzz sends hundreds of bad tokens from one address, which the default budget of
    failed authentications (20 a minute, tests/hostile checks it) would answer with 429 for the next test."""
    srv = new_server(Path(tmp_path_factory.mktemp("fuzz")), failed_auths_per_minute=100_000.0).start()
    yield srv
    srv.stop()


class _PathValues(dict[str, str]):
    """Values for a route's path parameters: the named ones, and "1" for any other (ids), so a route added with a
    new parameter is fuzzed too instead of failing the format."""

    def __missing__(self, key: str) -> str:
        return "1"


def _encode(doc: object, how: str) -> bytes:
    import orjson

    raw = orjson.dumps(doc)
    if how == "gzip":
        return gzip.compress(raw)
    if how == "form":
        return b"data=" + base64.b64encode(raw).replace(b"+", b"%2B") + b"&gzip=0"
    if how == "garbage":
        return raw[::-1]
    return raw


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_collector_never_answers_5xx(server: Server, data: st.DataObject) -> None:
    if "_spec" not in server.__dict__:  # fetched once (setdefault's argument would fetch it on every example)
        server.__dict__["_spec"] = httpx.get(server.url + "/openapi.json").json()
    spec = server.__dict__["_spec"]
    routes = sorted((p, m) for p, ops in spec["paths"].items() for m in ops)
    path, method = data.draw(st.sampled_from(routes))
    doc = data.draw(st.one_of(JSON, st.lists(RECORDS, max_size=5), st.fixed_dictionaries({"batch": st.lists(RECORDS)})))
    how = data.draw(st.sampled_from(["json", "gzip", "form", "garbage"]))
    key = data.draw(st.sampled_from([None, server.write_key, server.admin_token, "ulw_bad"]))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if how == "gzip":
        headers["Content-Encoding"] = "gzip"
    params = {"token": key or "", "project": "default", "filename": "x.jsonl"}
    url = server.url + path.format_map(_PathValues(name="default", kind="events", query_id="q1", key="u1", tag="x"))
    response = httpx.request(
        method.upper(),
        url,
        content=None if method == "get" else _encode(doc, how),
        headers=headers,
        params=params,
        auth=(key, "") if key and how == "json" else None,
        verify=ONE_SHOT_TLS,
    )
    assert response.status_code < 500, (method, path, response.text)


def test_body_that_is_not_utf8_gets_422_not_500(server: Server) -> None:
    import httpx

    # found by the fuzz above: a gzip body on a JSON route made FastAPI's own 422 handler fail with a 500
    for body in (gzip.compress(b"[]"), b'{"kind": \x8c}', b"\x8c\xff\x00"):
        headers = {**server.admin, "Content-Encoding": "gzip"}
        response = httpx.post(server.url + "/api/v1/keys", content=body, headers=headers)
        assert response.status_code in (400, 422), (body, response.status_code, response.text)
