"""Operators' accounts: password hashing and policy, lock-out in time, roles per project checked with a session
and with a token of the same rights, the last admin kept, hashes never shown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.signin import code, make_account, sign_in
from tests.collect.serving import ONE_SHOT_TLS, Server
from userloop.core.errors import ValidationError
from userloop.core.passwords import check_policy, hash_password, verify_password
from userloop.core.rights import implied
from userloop.store import accounts
from userloop.store.meta import MetaStore

TRENDS = {"kind": "trends", "date_range": {"from": "2026-06-01", "to": "2026-06-07"}, "series": [{"event": "view"}]}
SOURCE = {"from": "events", "event": "view", "agg": "count", "window": {"last": 7}}
RULE = {"type": "event", "event": "order_paid", "count": {"op": "gte", "value": 1}, "window": {"last": 30}}
JOURNEY = {
    "name": "welcome",
    "entry": {"kind": "event", "event": "signup"},
    "start": "w1",
    "nodes": [{"kind": "wait", "id": "w1", "seconds": 3600, "next": "x"}, {"kind": "exit", "id": "x"}],
}


# hashing, policy, lock-out (no server) ---------------------------------------------------------------------------
def test_a_password_hash_is_self_describing_salted_and_verified() -> None:
    stored = hash_password("correct horse 42")
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "32768", "8", "1")
    assert len(salt) == 22 and len(key) == 43  # 16 and 32 bytes, base64 without padding
    assert verify_password("correct horse 42", stored)
    assert not verify_password("correct horse 43", stored)
    assert not verify_password("correct horse 42", stored.replace("scrypt$", "md5$"))
    assert not verify_password("correct horse 42", "garbage")
    cheap = hash_password("correct horse 42", n=2**4)  # the cost travels with the hash
    assert cheap != stored and verify_password("correct horse 42", cheap)


def test_the_password_policy() -> None:
    with pytest.raises(ValidationError, match="at least 10"):
        check_policy("short", "ann")
    with pytest.raises(ValidationError, match="login"):
        check_policy("Operator.01", "operator.01")
    check_policy("a long enough one", "ann")


def test_rights_imply_others() -> None:
    assert implied({"admin"}) == {"admin", "analyse", "operate"}
    assert implied({"operate"}) == {"operate", "analyse"}
    assert implied({"read", "write"}) == {"read", "write"}  # a {read, write} token still cannot create tags


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[MetaStore]:
    store = MetaStore(f"sqlite:///{tmp_path.as_posix()}/meta.sqlite")
    store.create_all()
    yield store
    store.dispose()


def test_five_failures_lock_an_account_until_fifteen_minutes_pass(meta: MetaStore) -> None:
    made = accounts.create(meta, "Lou", "Lou", "correct horse 42")
    assert made.login == "lou" and "correct" not in made.password_hash
    t0 = datetime(2026, 12, 7, 9, 0)
    for n in range(4):
        assert accounts.check_password(meta, "lou", "wrong", t0 + timedelta(seconds=n)) is None
    with pytest.raises(accounts.AccountLockedError) as locked:
        accounts.check_password(meta, "lou", "wrong", t0 + timedelta(seconds=4))
    assert locked.value.until == t0 + timedelta(seconds=4, minutes=15)
    with pytest.raises(accounts.AccountLockedError):  # the right password does not open it early
        accounts.check_password(meta, "lou", "correct horse 42", t0 + timedelta(minutes=15))
    later = t0 + timedelta(minutes=15, seconds=5)
    assert accounts.check_password(meta, "lou", "correct horse 42", later) is not None
    for n in range(4):  # the success reset the count
        assert accounts.check_password(meta, "lou", "wrong", later + timedelta(seconds=n)) is None
    assert accounts.check_password(meta, "nobody", "whatever it is", later) is None


def test_sessions_end_at_their_expiry_and_when_idle(meta: MetaStore) -> None:
    account = accounts.create(meta, "ivy", "Ivy", "correct horse 42")
    t0 = datetime(2026, 12, 7, 9, 0)
    idle = timedelta(hours=12)
    opened = accounts.open_session(meta, account.id, t0, timedelta(days=7))
    digest = opened.row.digest
    assert opened.token not in digest and accounts.live_session(meta, digest, t0 + timedelta(hours=11), idle)
    assert accounts.live_session(meta, digest, t0 + timedelta(hours=22), idle)  # used at 11 h: not idle yet
    assert accounts.live_session(meta, digest, t0 + timedelta(hours=35), idle) is None  # idle 13 h
    kept = accounts.open_session(meta, account.id, t0, timedelta(days=7)).row.digest
    for hour in range(10, 24 * 7, 10):  # used every 10 hours, it still ends after 7 days
        assert accounts.live_session(meta, kept, t0 + timedelta(hours=hour), idle), hour
    assert accounts.live_session(meta, kept, t0 + timedelta(days=7, hours=1), idle) is None


# roles over HTTP ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(server: Server) -> Server:
    """Events in 'default', a second project 'other', and an account and a token per role in 'default'."""
    batch = [{"type": "track", "event": e, "userId": "u1", "messageId": f"m-{e}", "timestamp": "2026-06-02T08:00:00Z"}
             for e in ("view", "signup", "order_paid")]  # fmt: skip
    assert httpx.post(server.url + "/v1/batch", json={"batch": batch}, auth=(server.write_key, "")).status_code == 200
    server.settle()
    assert httpx.post(server.url + "/api/v1/projects", headers=server.admin, json={"name": "other"}).status_code < 300
    for login, role in (("vera", "viewer"), ("anna", "analyst"), ("otto", "operator")):
        make_account(server, login, [{"project": "default", "role": role}])
    make_account(server, "olaf", [{"project": "other", "role": "analyst"}])
    return server


def _token(server: Server, rights: list[str]) -> httpx.Client:
    made = httpx.post(server.url + "/api/v1/keys", headers=server.admin,
                      json={"kind": "admin", "project": "default", "rights": rights})  # fmt: skip
    assert made.status_code == 201, made.text
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {made.json()['secret']}"}, timeout=30)


ROLE_RIGHTS = {"viewer": ["read"], "analyst": ["read", "analyse"], "operator": ["read", "operate", "write"]}
LOGINS = {"viewer": "vera", "analyst": "anna", "operator": "otto"}


@pytest.fixture(params=["session", "token"])
def as_role(request: pytest.FixtureRequest, world: Server) -> Iterator[Callable[[str], httpx.Client]]:
    """A client for a role: an account's session, or a token of the same rights."""
    opened: list[httpx.Client] = []

    def client(role: str) -> httpx.Client:
        made = sign_in(world, LOGINS[role]) if request.param == "session" else _token(world, ROLE_RIGHTS[role])
        opened.append(made)
        return made

    yield client
    for c in opened:
        c.close()


def _changes(client: httpx.Client, suffix: str) -> dict[str, httpx.Response]:
    """What an analyst does: save an insight, define a tag, save a segment."""
    tag = {"name": f"views_{suffix}", "kind": "behaviour", "type": "number", "title_zh": "浏览", "title_en": "Views",
           "source": SOURCE}  # fmt: skip
    return {
        "insight": client.post("/api/v1/insights", json={"name": f"views {suffix}", "definition": TRENDS}),
        "tag": client.post("/api/v1/tags", json=tag),
        "segment": client.post("/api/v1/segments", json={"name": f"buyers {suffix}", "rule": RULE, "compute": False}),
    }


def test_a_viewer_changes_nothing(as_role: Callable[[str], httpx.Client], request: pytest.FixtureRequest) -> None:
    viewer = as_role("viewer")
    assert viewer.get("/api/v1/insights").status_code == 200
    for what, answer in _changes(viewer, f"v_{request.node.callspec.id}").items():
        assert answer.status_code == 403 and code(answer) == "forbidden", (what, answer.text)


def test_an_analyst_builds_but_neither_runs_journeys_nor_manages_accounts(
    as_role: Callable[[str], httpx.Client], request: pytest.FixtureRequest
) -> None:
    analyst, operator = as_role("analyst"), as_role("operator")
    for what, answer in _changes(analyst, f"a_{request.node.callspec.id}").items():
        assert answer.status_code == 201, (what, answer.text)
    name = f"welcome_{request.node.callspec.id}"
    assert analyst.post("/api/v1/journeys", json={"definition": {**JOURNEY, "name": name}}).status_code == 403
    made = operator.post("/api/v1/journeys", json={"definition": {**JOURNEY, "name": name}})
    assert made.status_code == 201, made.text
    assert analyst.post(f"/api/v1/journeys/{name}/start").status_code == 403
    assert analyst.get("/api/v1/accounts").status_code == 403
    new = {"login": "eve", "password": "correct horse 42", "roles": [{"role": "admin"}]}
    assert analyst.post("/api/v1/accounts", json=new).status_code == 403
    # an operator starts and pauses journeys
    assert operator.post(f"/api/v1/journeys/{name}/start").json()["status"] == "running"
    assert operator.post(f"/api/v1/journeys/{name}/pause").json()["status"] == "paused"
    assert operator.get("/api/v1/accounts").status_code == 403


def test_a_role_in_one_project_reaches_no_other(world: Server) -> None:
    with closing(sign_in(world, "olaf")) as olaf:
        assert olaf.get("/api/v1/segments", params={"project": "other"}).status_code == 200
        for project in ("default", "no-such-project"):  # 403 before the project is looked up
            refused = olaf.get("/api/v1/segments", params={"project": project})
            assert refused.status_code == 403, (project, refused.text)
        body = {"name": "elsewhere", "definition": TRENDS, "project": "default"}
        assert olaf.post("/api/v1/insights", json=body).status_code == 403
        export = olaf.get("/api/v1/segments/1/export", params={"project": "default", "fields": "user_id"})
        assert export.status_code == 403  # the hand-written routes apply the project's rights too
        assert olaf.get("/api/v1/projects").status_code == 403  # over every project: it has no role there
        me = olaf.get("/api/v1/auth/me").json()
        assert me["roles"] == [{"project": "other", "role": "analyst", "rights": ["analyse", "read"], "pii": False}]


def test_the_last_admin_is_kept_and_hashes_are_never_shown(world: Server) -> None:
    def api(method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, world.url + path, headers=world.admin, timeout=30, **kwargs, verify=ONE_SHOT_TLS)

    make_account(world, "root", [{"project": None, "role": "admin"}])
    disabled = api("POST", "/api/v1/accounts/root/disable")
    assert disabled.status_code == 409 and code(disabled) == "conflict"
    demoted = api("POST", "/api/v1/accounts/root/grants", json={"role": "viewer"})
    assert demoted.status_code == 409
    assert api("POST", "/api/v1/accounts/root/grants", json={"revoke": True}).status_code == 409
    make_account(world, "rita", [{"project": None, "role": "admin"}])
    with closing(sign_in(world, "rita")) as rita:
        assert rita.post("/api/v1/accounts/root/disable").status_code == 200
        refused = rita.post("/api/v1/accounts/rita/disable")  # now rita is the last one
        assert refused.status_code == 409
        assert rita.post("/api/v1/accounts/root/enable").status_code == 200
        # pii is given only by a caller that holds it (the initial admin token does not)
        assert rita.post("/api/v1/accounts/anna/grants", json={"pii": True}).status_code == 403
    listed = api("GET", "/api/v1/accounts")
    assert listed.status_code == 200 and {"root", "rita", "vera"} <= {a["login"] for a in listed.json()}
    assert "scrypt" not in listed.text and "hash" not in listed.text
    taken = api("POST", "/api/v1/accounts", json={"login": "ROOT", "password": "correct horse 42"})
    assert taken.status_code == 409 and code(taken) == "account_exists"
