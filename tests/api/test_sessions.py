"""Sessions of operators' accounts over real HTTP: cookies, CSRF, session fixation, sign-out, lock-out after failed
sign-ins, disabled accounts, one's own password change."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from tests.api.signin import PASSWORD, code, login, make_account, sign_in
from tests.collect.serving import Server
from userloop.core.clock import utcnow
from userloop.store.accounts import Account
from userloop.store.meta import MetaStore


@pytest.fixture(scope="module")
def people(server: Server) -> Server:
    make_account(server, "ada", [{"project": None, "role": "admin"}])
    make_account(server, "vic", [{"project": "default", "role": "viewer"}])
    return server


def _cookie(response: httpx.Response, name: str) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}="))


def test_sign_in_sets_the_cookies_and_me_tells_the_roles(people: Server) -> None:
    signed = login(people, "ADA")  # a login is not case-sensitive
    assert signed.status_code == 200, signed.text
    session, csrf = _cookie(signed, "userloop_session"), _cookie(signed, "userloop_csrf")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert attribute.lower() in session.lower()
    assert "httponly" not in csrf.lower() and "samesite=strict" in csrf.lower()
    assert "secure" not in session.lower()  # plain http on loopback; over https the cookie is Secure
    doc = signed.json()
    assert doc["account"]["login"] == "ada" and csrf.startswith(f"userloop_csrf={doc['csrf_token']};")
    with closing(sign_in(people, "vic")) as vic:
        me = vic.get("/api/v1/auth/me").json()
        assert me["roles"] == [{"project": "default", "role": "viewer", "rights": ["read"], "pii": False}]
        assert me["csrf_token"] == vic.headers["X-CSRF-Token"]
    assert httpx.get(people.url + "/api/v1/auth/me").status_code == 401
    token = httpx.get(people.url + "/api/v1/auth/me", headers=people.admin)
    assert token.status_code == 403  # about a session, not a token


def test_unknown_login_and_wrong_password_get_the_same_answer(people: Server) -> None:
    unknown, wrong = login(people, "nobody-here"), login(people, "vic", "not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_a_sign_in_is_json_from_this_site(people: Server) -> None:
    form = httpx.post(people.url + "/api/v1/auth/login", data={"login": "vic", "password": PASSWORD})
    assert form.status_code == 415 and code(form) == "unsupported_media_type"
    elsewhere = login(people, "vic", headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403 and code(elsewhere) == "csrf"
    here = login(people, "vic", headers={"Origin": people.url})
    assert here.status_code == 200, here.text


def test_a_change_needs_the_csrf_token(people: Server) -> None:
    with closing(sign_in(people, "ada")) as ada:
        path = "/api/v1/accounts/vic/enable"
        good = ada.headers.pop("X-CSRF-Token")
        missing = ada.post(path)
        assert missing.status_code == 403 and code(missing) == "csrf"
        wrong = ada.post(path, headers={"X-CSRF-Token": good[:-2] + "xx"})
        assert wrong.status_code == 403 and code(wrong) == "csrf"
        assert ada.get("/api/v1/accounts").status_code == 200  # reading needs none
        right = ada.post(path, headers={"X-CSRF-Token": good})
        assert right.status_code == 200, right.text
    token = httpx.post(people.url + path, headers=people.admin)  # a token needs no CSRF token
    assert token.status_code == 200, token.text


def test_a_sign_in_always_opens_a_new_session(people: Server) -> None:
    """Session fixation: a session cookie sent with the sign-in (planted, or an earlier one) is never the session."""
    planted = "attacker-chosen-session-value-0123456789abcdefghij"
    signed = login(people, "vic", cookies={"userloop_session": planted})
    assert signed.status_code == 200
    fresh = signed.cookies["userloop_session"]
    assert fresh != planted
    assert httpx.get(people.url + "/api/v1/auth/me", cookies={"userloop_session": planted}).status_code == 401
    again = login(people, "vic", cookies={"userloop_session": fresh})
    assert again.cookies["userloop_session"] not in (fresh, planted)


def test_sign_out_ends_the_session(people: Server) -> None:
    with closing(sign_in(people, "vic")) as vic:
        stolen = vic.cookies["userloop_session"]
        out = vic.post("/api/v1/auth/logout")
    assert out.status_code == 200 and out.json() == {"signed_out": True}
    assert "max-age=0" in _cookie(out, "userloop_session").lower()
    replay = httpx.get(people.url + "/api/v1/auth/me", cookies={"userloop_session": stolen})
    assert replay.status_code == 401


def test_five_failures_in_a_row_lock_the_account_for_fifteen_minutes(people: Server) -> None:
    make_account(people, "lou", [{"project": "default", "role": "viewer"}])
    answers = [login(people, "lou", f"wrong password {n}") for n in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 423]
    locked = login(people, "lou")  # even the right password, while locked
    assert locked.status_code == 423 and code(locked) == "account_locked"
    assert 850 <= int(locked.headers["Retry-After"]) <= 900
    assert "locked" in locked.json()["error"]["message"] and "锁定" in locked.json()["error"]["message"]
    # fifteen minutes pass: the lock's end moves into the past, as the clock would move it
    meta = MetaStore(f"sqlite:///{people.path.as_posix()}/meta.sqlite")
    with meta.session.begin() as s:
        s.execute(update(Account).where(Account.login == "lou").values(locked_until=utcnow() - timedelta(seconds=1)))
    meta.dispose()
    assert login(people, "lou").status_code == 200
    assert login(people, "lou", "wrong again").status_code == 401  # a success reset the count: not locked at once


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(people: Server) -> None:
    make_account(people, "dan", [{"project": "default", "role": "viewer"}])
    with closing(sign_in(people, "dan")) as dan:
        assert dan.get("/api/v1/auth/me").status_code == 200
        off = httpx.post(people.url + "/api/v1/accounts/dan/disable", headers=people.admin)
        assert off.status_code == 200 and off.json()["disabled_at"]
        assert dan.get("/api/v1/auth/me").status_code == 401
    refused = login(people, "dan")
    assert refused.status_code == 403 and "disabled" in refused.text
    assert httpx.post(people.url + "/api/v1/accounts/dan/enable", headers=people.admin).status_code == 200
    assert login(people, "dan").status_code == 200


def test_changing_ones_password_ends_the_other_sessions(people: Server) -> None:
    make_account(people, "pam", [{"project": "default", "role": "viewer"}])
    with closing(sign_in(people, "pam")) as here, closing(sign_in(people, "pam")) as there:
        _change_password(people, here, there)


def _change_password(people: Server, here: httpx.Client, there: httpx.Client) -> None:
    body = {"old_password": "not it at all", "new_password": "another fine pass"}
    assert here.post("/api/v1/auth/password", json=body).status_code == 403
    weak = here.post("/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": "pam"})
    assert weak.status_code == 400 and "10" in weak.text
    changed = here.post("/api/v1/auth/password", json={**body, "old_password": PASSWORD})
    assert changed.status_code == 200, changed.text
    assert here.get("/api/v1/auth/me").status_code == 200
    assert there.get("/api/v1/auth/me").status_code == 401
    assert login(people, "pam").status_code == 401
    assert login(people, "pam", "another fine pass").status_code == 200
