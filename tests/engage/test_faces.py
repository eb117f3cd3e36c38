"""The faces of journeys, materials, benefits and channels: the REST API of a real server on loopback (a process of
its own) and the CLI in process, over the one operation layer.

What is proven: a journey goes create → validate → start → pause → resume → archive with the state machine's 409
(``journey_state``) for every action its state does not allow; an invalid journey answers every error by node, and
validation also names the channels, materials, benefits and segments the project lacks; every new route refuses a
request without credentials (401) and a change with a read-only token (403); hostile strings in every text field of
a journey definition and of a material are refused (400/422) or stored byte for byte and never run or echoed into
HTML; a material previews for a real person of a simulated business and escapes profile values in HTML; benefits
go through their CRUD and rules; channel secrets never appear in any reply (save, show, list, errors), yet a test
message through the stored (encrypted) SMTP password reaches a real SMTP server with AUTH.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.collect.serving import ONE_SHOT_TLS, Server, new_server
from userloop.cli.main import app
from userloop.engage.journey import validate
from userloop.engage.sink import Mailbox, SmtpSink
from userloop.ops import operations

NOW = datetime(2026, 6, 30, 12, 0)
SECRET = "s3cr3t-口令-Zq9!xK"
NEW_DOMAINS = ("journeys", "templates", "benefits", "channels")


def journey(name: str = "welcome", **extra: Any) -> dict[str, Any]:
    """A journey that sends nothing: wait, a random split with a control, a profile update, an exit."""
    doc: dict[str, Any] = {
        "name": name,
        "description": "new users",
        "entry": {"kind": "event", "event": "signup"},
        "start": "w1",
        "nodes": [
            {"kind": "wait", "id": "w1", "label": "one hour", "seconds": 3600, "next": "ab"},
            {"kind": "split", "id": "ab", "branches": [
                {"name": "a", "percent": 50, "next": "u1"},
                {"name": "holdout", "percent": 50, "control": True},
            ]},
            {"kind": "update", "id": "u1", "set": {"welcomed": True}, "next": "x"},
            {"kind": "exit", "id": "x"},
        ],
        "goal": {"event": "order_paid", "within_seconds": 86400},
    }  # fmt: skip
    doc.update(extra)
    return doc


MATERIAL = {
    "channel": "email",
    "subject": {"zh-CN": "你好 {{ person.city }}", "en": "Hello {{ person.city }}"},
    "body": {"zh-CN": "<p>欢迎 {{ person.city }}{{ tags.vip }}</p>", "en": "<p>Welcome {{ person.city }}</p>"},
    "html": True,
}


# the server ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = new_server(Path(tmp_path_factory.mktemp("faces")), failed_auths_per_minute=1e6).start()  # 401s by design
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def reader(server: Server) -> dict[str, str]:
    """A workspace token with the ``read`` right only."""
    made = httpx.post(server.url + "/api/v1/keys", headers=server.admin, timeout=30,
                      json={"kind": "admin", "name": "reader", "rights": ["read"]})  # fmt: skip
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['secret']}"}


def call(server: Server, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    return httpx.request(method, server.url + path, headers=server.admin if headers is None else headers,
                         timeout=60, **kw, verify=ONE_SHOT_TLS)  # fmt: skip


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


# journeys -----------------------------------------------------------------------------------------------------
def test_a_journey_lives_through_its_lifecycle_and_refuses_what_its_state_does_not_allow(server: Server) -> None:
    made = call(server, "POST", "/api/v1/journeys", json={"definition": journey("lifecycle")})
    assert made.status_code == 201, made.text
    j = made.json()
    assert (j["status"], j["version"], j["entry"], j["nodes"]) == ("draft", 1, "event", 4)
    assert {"from": "$entry", "to": "w1", "branch": ""} in j["edges"]
    assert {"from": "ab", "to": "u1", "branch": "a"} in j["edges"]
    assert not any(e["branch"] == "holdout" for e in j["edges"])  # a control leads nowhere

    checked = call(server, "POST", "/api/v1/journeys/validate", json={"definition": journey("lifecycle")})
    assert checked.status_code == 200 and checked.json() == {"valid": True, "errors": []}

    same_name = call(server, "POST", "/api/v1/journeys", json={"definition": journey("lifecycle")})
    assert same_name.status_code == 409 and code(same_name) == "journey_state"

    def act(action: str, ref: str | int = j["id"]) -> httpx.Response:
        return call(server, "POST", f"/api/v1/journeys/{ref}/{action}")

    for action in ("pause", "resume", "finish"):  # a draft only starts or is archived
        refused = act(action)
        assert refused.status_code == 409 and code(refused) == "journey_state", (action, refused.text)
    started = act("start", "lifecycle")  # by name
    assert started.status_code == 200 and started.json()["status"] == "running" and started.json()["started_at"]
    for action in ("start", "resume", "archive"):
        assert act(action).status_code == 409, action
    assert act("pause").json()["status"] == "paused"
    assert act("pause").status_code == 409
    assert act("resume").json()["status"] == "running"
    assert act("pause").json()["status"] == "paused"

    # an edit of a journey that ran is a new version; a redirect must name a node of the new version
    edited = journey("lifecycle", nodes=[{"kind": "wait", "id": "w2", "seconds": 60, "next": "x"},
                                         {"kind": "exit", "id": "x"}], start="w2")  # fmt: skip
    bad = call(server, "PUT", f"/api/v1/journeys/{j['id']}", json={"definition": edited, "redirects": {"w1": "nope"}})
    assert bad.status_code == 400 and code(bad) == "journey_invalid"
    v2 = call(server, "PUT", f"/api/v1/journeys/{j['id']}", json={"definition": edited, "redirects": {"w1": "w2"}})
    assert v2.status_code == 200, v2.text
    assert v2.json()["version"] == 2 and v2.json()["definition"]["start"] == "w2"

    archived = act("archive")
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    for action in ("start", "pause", "resume", "finish", "archive"):
        assert act(action).status_code == 409, action
    frozen = call(server, "PUT", f"/api/v1/journeys/{j['id']}", json={"definition": edited})
    assert frozen.status_code == 409 and code(frozen) == "journey_state"

    listed = call(server, "GET", "/api/v1/journeys").json()
    assert [(r["name"], r["status"], r["version"]) for r in listed if r["id"] == j["id"]] == [
        ("lifecycle", "archived", 2)
    ]
    shown = call(server, "GET", f"/api/v1/journeys/{j['id']}").json()
    assert shown["status"] == "archived" and shown["edges"][0] == {"from": "$entry", "to": "w2", "branch": ""}
    stats = call(server, "GET", "/api/v1/journeys/lifecycle/stats")
    assert stats.status_code == 200 and stats.json()["entered"] == 0
    for missing in ("/api/v1/journeys/nope", "/api/v1/journeys/987654/stats", "/api/v1/journeys/99999999999999999999"):
        gone = call(server, "GET", missing)
        assert gone.status_code == 404 and code(gone) == "unknown_journey", missing
    assert call(server, "POST", "/api/v1/journeys/nope/start").status_code == 404


def test_an_invalid_journey_answers_every_error_by_node(server: Server) -> None:
    doc = journey("broken")
    doc["nodes"] = [
        {"kind": "wait", "id": "w1", "next": "ab"},  # no duration
        {"kind": "split", "id": "ab", "branches": [{"name": "a", "percent": 70, "next": "u1"},
                                                   {"name": "b", "percent": 20, "next": "u1"}]},  # 90 %
        {"kind": "update", "id": "u1", "set": {}, "next": "ghost"},  # nothing to set
        {"kind": "send", "id": "s1"},  # no channel, no material
    ]  # fmt: skip
    made = call(server, "POST", "/api/v1/journeys", json={"definition": doc})
    assert made.status_code == 400 and code(made) == "journey_invalid"
    message = made.json()["error"]["message"]
    for node in ("w1", "ab", "u1", "s1"):
        assert f"{node}: " in message, (node, message)
    checked = call(server, "POST", "/api/v1/journeys/validate", json={"definition": doc})
    assert checked.status_code == 200
    reply = checked.json()
    assert reply["valid"] is False
    by_node = {(e["node"], e["field"]) for e in reply["errors"]}
    assert {"w1", "ab", "u1", "s1"} <= {n for n, _ in by_node}
    assert ("s1", "channel") in by_node and ("s1", "material") in by_node
    # the graph: a pointer to no node, a node no path reaches, a cycle
    graph = journey("graph", nodes=[
        {"kind": "wait", "id": "w1", "seconds": 5, "next": "w2"},
        {"kind": "wait", "id": "w2", "seconds": 5, "next": "w1"},
        {"kind": "exit", "id": "lonely"},
    ])  # fmt: skip
    errors = call(server, "POST", "/api/v1/journeys/validate", json={"definition": graph}).json()["errors"]
    assert {e["node"] for e in errors} >= {"w1", "lonely"}, errors
    assert call(server, "GET", "/api/v1/journeys/broken").status_code == 404  # nothing was saved


def test_validation_and_start_check_the_names_a_journey_uses(server: Server) -> None:
    doc = journey("refs", entry={"kind": "segment", "segment": 424242},
                  who={"all": [{"kind": "segment", "segment": 515151}]})  # fmt: skip
    doc["nodes"][2] = {"kind": "send", "id": "u1", "channel": "no_such_channel", "material": "no_such_material",
                       "benefit": "no_such_benefit", "fallback": ["no_fallback"], "next": "x"}  # fmt: skip
    doc["nodes"].append({"kind": "grant", "id": "g1", "benefit": "no_such_benefit"})
    doc["nodes"][3] = {"kind": "exit", "id": "x"}
    doc["nodes"][2]["next"] = "g1"
    doc["nodes"][4]["next"] = "x"
    reply = call(server, "POST", "/api/v1/journeys/validate", json={"definition": doc}).json()
    assert reply["valid"] is False
    found = {(e["node"], e["field"]) for e in reply["errors"]}
    assert found == {
        ("$entry", "entry.segment"), ("$who", "who.all.0.segment"), ("u1", "channel"), ("u1", "fallback.0"),
        ("u1", "material"), ("u1", "benefit"), ("g1", "benefit"),
    }, reply  # fmt: skip
    # a draft may name what does not exist yet; starting it may not
    assert call(server, "POST", "/api/v1/journeys", json={"definition": doc}).status_code == 201
    start = call(server, "POST", "/api/v1/journeys/refs/start")
    assert start.status_code == 400 and code(start) == "journey_invalid"
    assert "no channel 'no_such_channel'" in start.json()["error"]["message"]
    assert call(server, "GET", "/api/v1/journeys/refs").json()["status"] == "draft"


# rights -------------------------------------------------------------------------------------------------------
def _new_routes() -> list[tuple[str, str, str, str]]:
    """(id, method, path with its parameters filled, right) of every operation this face added."""
    out = []
    for op in operations().values():
        if op.id.split(".")[0] in NEW_DOMAINS:
            path = op.path
            for p in op.path_params:
                path = path.replace("{" + p + "}", "x1")
            out.append((op.id, op.method, path, op.right))
    return out


def test_the_routes_are_registered() -> None:
    ids = {r[0] for r in _new_routes()}
    expected = {f"journeys.{a}" for a in ("list", "create", "show", "update", "validate", "start", "pause", "resume",
                                          "finish", "archive", "stats")}  # fmt: skip
    expected |= {f"templates.{a}" for a in ("list", "show", "save", "delete", "preview", "test_send")}
    expected |= {f"benefits.{a}" for a in ("list", "create", "show", "delete")}
    expected |= {f"channels.{a}" for a in ("list", "show", "save", "delete")}
    assert expected <= ids


def test_every_new_route_needs_credentials_and_a_read_token_cannot_change(
    server: Server, reader: dict[str, str]
) -> None:
    routes = _new_routes()
    assert len(routes) >= 25
    for op_id, method, path, right in routes:
        body = {} if method in ("POST", "PUT") else None
        bare = call(server, method, path, headers={}, json=body)
        assert bare.status_code == 401 and code(bare) == "unauthorized", (op_id, bare.text)
        wrong = call(server, method, path, headers={"Authorization": "Bearer ula_not_a_token"}, json=body)
        assert wrong.status_code == 401, op_id
        as_reader = call(server, method, path, headers=reader, json=body)
        if right == "read":
            assert as_reader.status_code not in (401, 403), (op_id, as_reader.text)
        else:
            assert as_reader.status_code == 403 and code(as_reader) == "forbidden", (op_id, as_reader.text)
    # a reader reads
    assert call(server, "GET", "/api/v1/journeys", headers=reader).status_code == 200
    assert call(server, "GET", "/api/v1/channels", headers=reader).status_code == 200


# hostile strings ----------------------------------------------------------------------------------------------
HOSTILE = [
    "x' OR '1'='1'; DROP TABLE journeys; --",
    '"; DELETE FROM materials; --',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "{{7*7}}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% include '../../etc/passwd' %}",
    "../../etc/passwd",
    "x" * 5000,
    "a\x00b",
    "\u202eevil",
]


def _string_paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place of ``doc`` holding a string (values and dict keys, the key marked ``("key", k)``)."""
    if isinstance(doc, str):
        yield path
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield (*path, ("key", k))
            yield from _string_paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _string_paths(v, (*path, i))


def _put(doc: Any, path: tuple[Any, ...], value: str) -> Any:
    out = copy.deepcopy(doc)
    *head, last = path
    target = out
    for p in head:
        target = target[p]
    if isinstance(last, tuple):
        target[value] = target.pop(last[1])
    else:
        target[last] = value
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _inert(response: httpx.Response) -> None:
    """An answer is JSON (never HTML a browser would run) and no server error."""
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-content-type-options") == "nosniff"


def test_hostile_strings_in_every_field_of_a_journey_are_refused_or_stored_inert(server: Server) -> None:
    base = journey("hostile")
    base["nodes"][2] = {"kind": "send", "id": "u1", "label": "l", "channel": "c", "material": "m", "benefit": "b",
                        "next": "x"}  # fmt: skip
    base["entry"]["filters"] = []
    base["goal"]["event"] = "order_paid"
    paths = [p for p in _string_paths(base) if p[-1] != "kind" and not isinstance(p[-1], tuple)]
    paths.append(("nodes", 2, "fallback", 0))
    base["nodes"][2]["fallback"] = ["c2"]
    assert len(paths) > 15
    stored = refused = 0
    for n, path in enumerate(paths):
        for payload in HOSTILE:
            doc = _put(base, path, payload)
            doc["name"] = f"hostile-{n}-{HOSTILE.index(payload)}" if path != ("name",) else payload
            checked = call(server, "POST", "/api/v1/journeys/validate", json={"definition": doc})
            _inert(checked)
            assert checked.status_code == 200  # validation never fails for an invalid journey
            made = call(server, "POST", "/api/v1/journeys", json={"definition": doc})
            _inert(made)
            assert (made.status_code != 201) == (bool(validate(doc)) or "\x00" in payload), (path, payload)
            if made.status_code == 201:
                stored += 1
                shown = call(server, "GET", f"/api/v1/journeys/{made.json()['id']}")
                assert _get(shown.json()["definition"], path) == payload  # byte for byte, not evaluated
            else:
                refused += 1
                assert made.status_code == 400 and code(made) == "journey_invalid", (path, payload, made.text)
                assert checked.json()["valid"] is False
    assert stored and refused
    # the name: too long or with a null character is refused; a quote or a tag is only a name
    for name in ("x" * 101, "a\x00b"):
        assert call(server, "POST", "/api/v1/journeys", json={"definition": journey(name)}).status_code == 400
    for name in ("o'brien\"; --", "<b>bold</b>"):
        made = call(server, "POST", "/api/v1/journeys", json={"definition": journey(name)})
        assert made.status_code == 201
        assert call(server, "GET", f"/api/v1/journeys/{made.json()['id']}").json()["name"] == name
    # hostile identifiers in the path never reach SQL as text
    for ref in ("1 OR 1=1", "'; DROP TABLE journeys; --", "..%2F..%2Fetc%2Fpasswd", "²", "<script>"):
        gone = call(server, "GET", f"/api/v1/journeys/{ref}")
        _inert(gone)
        assert gone.status_code == 404
    assert len(call(server, "GET", "/api/v1/journeys").json()) == stored + 2 + _others(server)


def _others(server: Server) -> int:
    """Journeys other tests of the module made (lifecycle, refs), when they ran first."""
    names = {j["name"] for j in call(server, "GET", "/api/v1/journeys").json()}
    return len(names & {"lifecycle", "refs"})


def test_hostile_strings_in_every_field_of_a_material_are_refused_or_stored_inert(server: Server) -> None:
    base = {**MATERIAL, "params": {"code": "{{ benefit.code }}"}, "provider_template": "SMS_1", "html": False,
            "locale_property": "$language", "channel": "email"}  # fmt: skip
    paths = [p for p in _string_paths(base) if p != ("channel",)]
    for n, path in enumerate(paths):
        for i, payload in enumerate(HOSTILE):
            doc = _put(base, path, payload)
            saved = call(server, "PUT", f"/api/v1/templates/m-{n}-{i}", json={"definition": doc})
            _inert(saved)
            if saved.status_code == 200:
                assert "\x00" not in payload
                shown = call(server, "GET", f"/api/v1/templates/m-{n}-{i}").json()
                assert _get(shown["definition"], path) == payload
            else:
                assert saved.status_code in (400, 422), (path, payload, saved.text)
                assert code(saved) in ("template_invalid", "template_unsafe", "invalid_request"), saved.text
    # the sandbox: internals and file access are refused when the material is saved
    for source in ("{{ ''.__class__.__mro__ }}", "{% include '../../etc/passwd' %}", "{{ config }}",
                   "{{ self._TemplateReference__context }}", "{{ '{0.__class__}'.format(1) }}"):  # fmt: skip
        saved = call(
            server, "PUT", "/api/v1/templates/evil", json={"definition": {"channel": "sms", "body": {"en": source}}}
        )
        assert saved.status_code == 400 and code(saved) in ("template_invalid", "template_unsafe"), source
    assert call(server, "GET", "/api/v1/templates/evil").status_code == 404
    # hostile names: a path may not escape, hold a control character or be too long
    for name in ("..%2F..%2Fetc%2Fpasswd", "a%00b", "x" * 101, " padded"):
        saved = call(server, "PUT", f"/api/v1/templates/{name}", json={"definition": MATERIAL})
        assert saved.status_code in (400, 404, 422), (name, saved.text)
    for name in ("o'brien\"; --", "<img src=x onerror=alert(1)>", "{{7*7}}"):
        saved = call(server, "PUT", f"/api/v1/templates/{name}", json={"definition": MATERIAL})
        assert saved.status_code == 200 and saved.json()["name"] == name
        assert call(server, "GET", f"/api/v1/templates/{name}").json()["name"] == name
        assert call(server, "DELETE", f"/api/v1/templates/{name}").status_code == 200


# materials ----------------------------------------------------------------------------------------------------
def test_materials_save_show_preview_and_delete(server: Server) -> None:
    made = call(server, "PUT", "/api/v1/templates/welcome_mail", json={"definition": MATERIAL})
    assert made.status_code == 200 and made.json()["created"] is True and made.json()["channel"] == "email"
    again = call(server, "PUT", "/api/v1/templates/welcome_mail", json={"definition": MATERIAL})
    assert again.json()["created"] is False
    assert "welcome_mail" in [m["name"] for m in call(server, "GET", "/api/v1/templates").json()]
    scope = {"person": {"city": "<script>alert('x')</script>{{7*7}}", "$language": "en"}, "tags": {"vip": "gold"}}
    preview = call(server, "POST", "/api/v1/templates/welcome_mail/preview", json={"scope": scope})
    assert preview.status_code == 200, preview.text
    r = preview.json()
    assert r["locale"] == "en" and r["html"] is True
    assert r["text"] == "<p>Welcome &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;{{7*7}}</p>"
    assert "49" not in r["text"] and "<script>" not in r["text"]
    zh = call(server, "POST", "/api/v1/templates/welcome_mail/preview", json={"scope": {"person": {"city": "上海"}}})
    assert zh.json()["subject"] == "你好 上海" and zh.json()["missing"] == ["tags.vip"]
    assert any("tags.vip" in w for w in zh.json()["warnings"])
    bad_zone = call(server, "POST", "/api/v1/templates/welcome_mail/preview", json={"scope": {"timezone": "Mars/X"}})
    assert bad_zone.status_code == 400
    unknown = call(server, "POST", "/api/v1/templates/nope/preview", json={})
    assert unknown.status_code == 404
    assert call(server, "DELETE", "/api/v1/templates/welcome_mail").json() == {"deleted": "welcome_mail"}
    assert call(server, "GET", "/api/v1/templates/welcome_mail").status_code == 404
    assert call(server, "DELETE", "/api/v1/templates/welcome_mail").status_code == 404


# benefits -----------------------------------------------------------------------------------------------------
def test_benefits_crud_and_rules(server: Server) -> None:
    made = call(server, "POST", "/api/v1/benefits", json={"name": "new10", "amount": 10, "threshold": 59,
                                                          "valid_days": 7, "stock": 500})  # fmt: skip
    assert made.status_code == 201, made.text
    b = made.json()
    assert (b["amount"], b["threshold"], b["valid_days"], b["stock"], b["granted"], b["remaining"]) == (
        10.0, 59.0, 7, 500, 0, 500)  # fmt: skip
    free = call(server, "POST", "/api/v1/benefits", json={"name": "any5", "amount": 5})
    assert free.status_code == 201 and free.json()["stock"] is None and free.json()["remaining"] is None
    assert free.json()["valid_days"] == 30 and free.json()["threshold"] == 0
    dup = call(server, "POST", "/api/v1/benefits", json={"name": "new10", "amount": 1})
    assert dup.status_code == 400 and dup.json()["error"]["field"] == "name"
    for bad in ({"amount": 0}, {"amount": -1}, {"amount": 1, "threshold": -0.01}, {"amount": 1, "valid_days": 0},
                {"amount": 1, "valid_days": 3651}, {"amount": 1, "stock": -1}, {"amount": 1, "kind": "cash"},
                {"amount": 1, "extra": True}):  # fmt: skip
        refused = call(server, "POST", "/api/v1/benefits", json={"name": "bad", **bad})
        assert refused.status_code == 422, (bad, refused.text)
    assert call(server, "POST", "/api/v1/benefits", json={"name": "a/b", "amount": 1}).status_code == 400
    assert call(server, "GET", f"/api/v1/benefits/{b['id']}").json()["name"] == "new10"
    assert call(server, "GET", "/api/v1/benefits/new10").json()["id"] == b["id"]
    listed = {x["name"]: x for x in call(server, "GET", "/api/v1/benefits").json()}
    assert listed["new10"]["remaining"] == 500 and "any5" in listed
    assert call(server, "DELETE", "/api/v1/benefits/any5").json() == {"deleted": free.json()["id"]}
    for ref in ("any5", "999999", "99999999999999999999", "²"):
        gone = call(server, "GET", f"/api/v1/benefits/{ref}")
        assert gone.status_code == 404 and code(gone) == "unknown_benefit", ref


# channels -----------------------------------------------------------------------------------------------------
def test_channel_secrets_never_appear_in_replies_and_a_test_message_uses_them(
    server: Server, tmp_path: Path, reader: dict[str, str]
) -> None:
    with SmtpSink(tmp_path / "mail", auth=("ops", SECRET)) as sink:
        settings = {"host": "127.0.0.1", "port": sink.port, "sender": "运营 <noreply@example.com>",
                    "username": "ops", "password": SECRET, "timeout": 10}  # fmt: skip
        replies = []
        saved = call(server, "PUT", "/api/v1/channels/mail", json={"kind": "email", "provider": "smtp",
                                                                   "settings": settings})  # fmt: skip
        assert saved.status_code == 200, saved.text
        assert saved.json()["settings"]["password"] == "********" and saved.json()["settings"]["port"] == sink.port
        replies.append(saved)
        replies.append(call(server, "GET", "/api/v1/channels/mail"))
        replies.append(call(server, "GET", "/api/v1/channels"))
        replies.append(call(server, "GET", "/api/v1/channels", headers=reader))
        # an invalid setting beside the secret: the error names the field, not the value
        bad = call(server, "PUT", "/api/v1/channels/mail2", json={"kind": "email", "provider": "smtp",
                                                                  "settings": {**settings, "port": 0}})  # fmt: skip
        assert bad.status_code == 400 and code(bad) == "channel_invalid"
        replies.append(bad)
        unknown = call(server, "PUT", "/api/v1/channels/mail3", json={"kind": "email", "provider": "nope",
                                                                      "settings": settings})  # fmt: skip
        assert unknown.status_code == 400
        replies.append(unknown)
        # saved again from what show gave: the mask keeps the stored secret
        shown = call(server, "GET", "/api/v1/channels/mail").json()
        resaved = call(server, "PUT", "/api/v1/channels/mail", json={"kind": "email", "provider": "smtp",
                                                                     "settings": shown["settings"]})  # fmt: skip
        assert resaved.status_code == 200, resaved.text
        replies.append(resaved)

        assert call(server, "PUT", "/api/v1/templates/hello", json={"definition": MATERIAL}).status_code == 200
        sent = call(
            server,
            "POST",
            "/api/v1/templates/hello/test-send",
            json={"channel": "mail", "to": "me@example.com", "scope": {"person": {"city": "杭州"}}},
        )
        assert sent.status_code == 200, sent.text
        replies.append(sent)
        reply = sent.json()
        assert reply["status"] == "sent" and reply["key"].startswith("test.") and len(reply["key"]) == 41
        mails = Mailbox(tmp_path / "mail").messages()
        assert len(mails) == 1
        mail = mails[0]
        assert mail.rcpt_to == ["me@example.com"] and mail.subject == "你好 杭州" and mail.auth_user == "ops"
        assert "List-Unsubscribe" not in mail.headers  # transactional: no unsubscribe header
        for r in replies:
            assert SECRET not in r.text and "s3cr3t" not in r.text, r.text
        kind_mismatch = call(
            server, "PUT", "/api/v1/templates/sms1", json={"definition": {"channel": "sms", "body": {"en": "hi"}}}
        )
        assert kind_mismatch.status_code == 200
        wrong = call(server, "POST", "/api/v1/templates/sms1/test-send", json={"channel": "mail", "to": "a@b.c"})
        assert wrong.status_code == 400 and code(wrong) == "channel_invalid"
        nochan = call(server, "POST", "/api/v1/templates/hello/test-send", json={"channel": "nope", "to": "a@b.c"})
        assert nochan.status_code == 404 and code(nochan) == "unknown_channel"
    # the secret is encrypted at rest
    raw = (server.path / "meta.sqlite").read_bytes()
    assert SECRET.encode() not in raw and b"s3cr3t" not in raw
    assert call(server, "DELETE", "/api/v1/channels/mail").json() == {"deleted": "mail"}
    assert call(server, "GET", "/api/v1/channels/mail").status_code == 404


# the CLI in process -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with a small simulated business; no server owns it, so the CLI runs the operations itself."""
    from userloop.sim.run import run_simulation
    from userloop.store import Workspace

    ws, _ = Workspace.init(Path(tmp_path_factory.mktemp("faces-cli")) / "ws")
    try:
        run_simulation(ws, "default", users=40, days=5, seed=5, end_date=date(2026, 6, 30))
    finally:
        ws.close()
    return ws.path


def cli(path: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "-w", str(path)], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def cli_json(path: Path, *args: str, code: int = 0) -> Any:
    return json.loads(cli(path, *args, "--json", code=code))


def test_the_cli_runs_a_journey_through_its_lifecycle(local: Path, tmp_path: Path) -> None:
    good = tmp_path / "welcome.json"
    good.write_text(json.dumps(journey("cli-welcome")), encoding="utf-8")
    assert "valid / 校验通过" in cli(local, "journeys", "validate", str(good))
    made = cli_json(local, "journeys", "create", str(good))
    assert made["status"] == "draft" and made["edges"][0] == {"from": "$entry", "to": "w1", "branch": ""}
    assert cli_json(local, "journeys", "create", str(tmp_path / "none.json"), code=2)["error"]["code"] == "invalid"
    text = cli(local, "journeys", "show", "cli-welcome")
    assert "$entry" in text and "holdout" not in text.split("branch")[-1]
    assert cli_json(local, "journeys", "start", "cli-welcome")["status"] == "running"
    assert "paused / 已暂停" in cli(local, "journeys", "pause", "cli-welcome")
    refused = cli_json(local, "journeys", "pause", "cli-welcome", code=2)
    assert refused["error"]["code"] == "journey_state"
    assert cli_json(local, "journeys", "resume", "cli-welcome")["status"] == "running"
    assert cli_json(local, "journeys", "finish", "cli-welcome")["status"] == "finished"
    assert cli_json(local, "journeys", "archive", str(made["id"]))["status"] == "archived"
    rows = cli_json(local, "journeys", "list")
    assert [(r["name"], r["status"]) for r in rows if r["name"] == "cli-welcome"] == [("cli-welcome", "archived")]
    assert "archived" in cli(local, "journeys", "list")

    bad = tmp_path / "bad.json"
    broken = journey("cli-bad")
    broken["nodes"][0] = {"kind": "wait", "id": "w1", "next": "ab"}
    broken["nodes"][2]["set"] = {}
    bad.write_text(json.dumps(broken), encoding="utf-8")
    out = cli(local, "journeys", "validate", str(bad), code=1)
    assert "w1" in out and "u1" in out and "error(s)" in out
    reply = cli_json(local, "journeys", "validate", str(bad), code=1)
    assert reply["valid"] is False and {e["node"] for e in reply["errors"]} >= {"w1", "u1"}
    failed = cli_json(local, "journeys", "create", str(bad), code=2)
    assert failed["error"]["code"] == "journey_invalid"

    # edit: a draft is replaced, a started journey gets a new version
    v = tmp_path / "v.json"
    v.write_text(json.dumps(journey("cli-edit")), encoding="utf-8")
    cli_json(local, "journeys", "create", str(v))
    cli_json(local, "journeys", "start", "cli-edit")
    v2 = journey("cli-edit", start="w9", nodes=[{"kind": "wait", "id": "w9", "seconds": 9, "next": "x"},
                                                {"kind": "exit", "id": "x"}])  # fmt: skip
    v.write_text(json.dumps(v2), encoding="utf-8")
    edited = cli_json(local, "journeys", "edit", "cli-edit", str(v), "--redirect", "w1=w9")
    assert edited["version"] == 2 and edited["definition"]["start"] == "w9"
    assert cli_json(local, "journeys", "edit", "cli-edit", str(v), "--redirect", "w1", code=2)["error"]["field"] == (
        "redirect"
    )


def test_the_cli_prints_stats_by_node_messages_and_branches_with_the_control(local: Path, tmp_path: Path) -> None:
    from sqlalchemy import insert

    from userloop.engage.tables import FeedbackRow, NodeCount, OutboxRow, RunRow
    from userloop.store import Workspace

    f = tmp_path / "s.json"
    doc = journey("cli-stats")
    f.write_text(json.dumps(doc), encoding="utf-8")
    jid = cli_json(local, "journeys", "create", str(f))["id"]
    ws = Workspace.open(local)
    try:
        with ws.meta.session.begin() as s:
            counts = [
                ("w1", "entered", 10),
                ("w1", "moved", 8),
                ("ab", "entered", 8),
                ("ab", "branch:a", 5),
                ("ab", "branch:holdout", 3),
                ("u1", "entered", 5),
                ("u1", "moved", 5),
                ("x", "exited", 5),
            ]
            s.execute(insert(NodeCount), [{"journey_id": jid, "version": 1, "node": n, "outcome": o, "count": c}
                                          for n, o, c in counts])  # fmt: skip
            runs = [("w1", "waiting", ""), ("w1", "waiting", "")]
            runs += [("x", "exited", "ab:a")] * 5 + [("ab", "held", "ab:holdout")] * 3
            s.execute(insert(RunRow), [
                {"journey_id": jid, "version": 1, "person": i + 1, "occurrence": 1, "node": node, "since": NOW,
                 "entered_at": NOW, "path": path, "status": status,
                 "converted_at": NOW if (path == "ab:a" and i < 6) or (path == "ab:holdout" and i == 7) else None}
                for i, (node, status, path) in enumerate(runs)
            ])  # fmt: skip
            outbox = [("sent", 1), ("sent", 2), ("failed", 3), ("capped", 4)]
            s.execute(insert(OutboxRow), [
                {"journey_id": jid, "version": 1, "node": "u1", "person": p, "occurrence": 1, "project_id": 1,
                 "kind": "send", "status": st, "due_at": NOW} for st, p in outbox
            ])  # fmt: skip
            s.add(FeedbackRow(project_id=1, key=f"{jid}.1.u1.1.1", person=1, event="$message_opened", at=NOW))
    finally:
        ws.close()
    stats = cli_json(local, "journeys", "stats", "cli-stats")
    nodes = {n["node"]: n for n in stats["nodes"]}
    assert (nodes["w1"]["entered"], nodes["w1"]["waiting"], nodes["w1"]["moved"]) == (10, 2, 8)
    assert nodes["ab"]["branches"] == {"a": 5, "holdout": 3} and nodes["ab"]["held"] == 3
    assert nodes["x"]["exited"] == 5
    assert stats["messages"] == [
        {"node": "u1", "total": 4, "statuses": {"sent": 2, "failed": 1, "capped": 1}, "feedback": {"opened": 1}}
    ]
    conv = {(c["node"], c["branch"]): c for c in stats["conversions"]}
    assert (conv[("ab", "a")]["entered"], conv[("ab", "a")]["converted"], conv[("ab", "a")]["control"]) == (5, 4, False)
    assert (conv[("ab", "holdout")]["entered"], conv[("ab", "holdout")]["converted"]) == (3, 1)
    assert conv[("ab", "holdout")]["control"] is True
    assert stats["entered"] == 10 and stats["converted"] == 5
    text = cli(local, "journeys", "stats", "cli-stats")
    for needle in ("Nodes / 节点", "Messages / 消息", "Conversions by branch / 分支转化", "control / 对照", "capped",
                   "80.0%", "33.3%"):  # fmt: skip
        assert needle in text, needle


def test_the_cli_saves_previews_and_lists_materials_benefits_and_channels(local: Path, tmp_path: Path) -> None:
    rows = cli_json(local, "sql", "SELECT user_id, city FROM users WHERE city IS NOT NULL ORDER BY user_id LIMIT 1")
    person, city = rows["rows"][0]
    m = tmp_path / "welcome_mail.json"
    m.write_text(json.dumps(MATERIAL), encoding="utf-8")
    assert "saved / 已保存 material welcome_mail (email)" in cli(local, "templates", "save", str(m))
    assert cli_json(local, "templates", "save", str(m), "--name", "other")["created"] is True
    assert [r["name"] for r in cli_json(local, "templates", "list")] == ["other", "welcome_mail"]
    assert "--- body [zh-CN]" in cli(local, "templates", "show", "welcome_mail")
    shown = cli_json(local, "templates", "preview", "welcome_mail", "--person", str(person))
    assert shown["subject"] == f"你好 {city}" and shown["missing"] == ["tags.vip"]
    assert any("vip" in w for w in shown["warnings"])
    assert f"subject / 标题: 你好 {city}" in cli(local, "templates", "preview", "welcome_mail", "--person", str(person))
    scope = tmp_path / "scope.json"
    scope.write_text(json.dumps({"person": {"city": "<b>x</b>"}, "tags": {"vip": "!"}}), encoding="utf-8")
    inline = cli_json(local, "templates", "preview", "welcome_mail", "--scope", str(scope))
    assert inline["text"] == "<p>欢迎 &lt;b&gt;x&lt;/b&gt;!</p>" and inline["missing"] == []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"channel": "sms", "body": {"en": "{{ person.__class__ }}"}}), encoding="utf-8")
    assert cli_json(local, "templates", "save", str(bad), code=2)["error"]["code"] in (
        "template_invalid", "template_unsafe")  # fmt: skip
    assert cli_json(local, "templates", "delete", "other") == {"deleted": "other"}

    made = cli_json(local, "benefits", "create", "c10", "--amount", "10", "--threshold", "59", "--stock", "3")
    assert (made["remaining"], made["valid_days"]) == (3, 30)
    assert "made / 已创建 benefit" in cli(local, "benefits", "create", "c5", "--amount", "5")
    assert cli_json(local, "benefits", "create", "c0", "--amount", "0", code=2)["error"]["code"] == "invalid"
    assert [b["name"] for b in cli_json(local, "benefits", "list")] == ["c10", "c5"]
    assert "remaining: 3" in cli(local, "benefits", "show", "c10")
    # a benefit already granted is kept
    from userloop.benefits import GrantRow
    from userloop.store import Workspace

    ws = Workspace.open(local)
    try:
        with ws.meta.session.begin() as s:
            s.add(GrantRow(key="k1", project_id=1, benefit_id=made["id"], person=1, code="X", granted_at=NOW,
                           expires_at=NOW))  # fmt: skip
    finally:
        ws.close()
    assert cli_json(local, "benefits", "delete", "c10", code=2)["error"]["code"] == "invalid"
    assert cli_json(local, "benefits", "delete", "c5")["deleted"] > 0

    settings = tmp_path / "hook.json"
    settings.write_text(json.dumps({"url": "https://hooks.example.com/x", "secret": SECRET}), encoding="utf-8")
    out = cli(local, "channels", "save", "hook", "--kind", "webhook", "--provider", "webhook", "--settings",
              str(settings), "--rate", "5")  # fmt: skip
    assert "secret: ********" in out and SECRET not in out
    for args in (("channels", "list"), ("channels", "show", "hook")):
        assert SECRET not in cli(local, *args) and SECRET not in cli(local, *args, "--json")
    assert cli_json(local, "channels", "show", "hook")["settings"]["secret"] == "********"
    off = cli_json(local, "channels", "save", "hook", "--kind", "webhook", "--provider", "webhook", "--settings",
                   str(settings), "--disabled")  # fmt: skip
    assert off["enabled"] is False
    again = cli_json(local, "channels", "save", "hook", "--kind", "webhook", "--provider", "webhook", "--settings",
                     str(settings))  # fmt: skip
    assert again["enabled"] is False and again["rate_per_second"] is None  # kept off; the rate is as given
    assert cli_json(local, "channels", "delete", "hook") == {"deleted": "hook"}
    assert cli_json(local, "channels", "show", "hook", code=2)["error"]["code"] == "unknown_channel"
