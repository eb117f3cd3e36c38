"""Operators' accounts in tests: make one through the API with the server's admin token, sign it in."""

from __future__ import annotations

from typing import Any

import httpx

from tests.collect.serving import ONE_SHOT_TLS, Server

PASSWORD = "correct horse 42"


def make_account(server: Server, login: str, roles: list[dict[str, Any]], password: str = PASSWORD) -> dict[str, Any]:
    """A new account with ``roles`` (``[{"project": None | name, "role": …}]``), made by the admin token."""
    made = httpx.post(server.url + "/api/v1/accounts", headers=server.admin,
                      json={"login": login, "password": password, "roles": roles}, timeout=30)  # fmt: skip
    assert made.status_code == 201, made.text
    return dict(made.json())


def login(server: Server, login: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
    return httpx.post(server.url + "/api/v1/auth/login", json={"login": login, "password": password}, timeout=30,
                      **kwargs, verify=ONE_SHOT_TLS)  # fmt: skip


def sign_in(server: Server, name: str, password: str = PASSWORD) -> httpx.Client:
    """A client holding the session cookies of ``name``, sending its CSRF token with every request."""
    client = httpx.Client(base_url=server.url, timeout=30)
    signed = client.post("/api/v1/auth/login", json={"login": name, "password": password})
    assert signed.status_code == 200, signed.text
    client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
    return client


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])
