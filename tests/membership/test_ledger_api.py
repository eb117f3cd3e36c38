"""The points ledger over HTTP against a real server on loopback: the operator API, the member token and the
app-facing routes, and hostile input (bad amounts, spends beyond the balance, forged or foreign tokens, a reused
request id) — each a clear 4xx with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from tests.membership.ledger_server import LedgerServer, ledger_server
from userloop.membership.ledger_tables import PointsEntry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerServer]:
    srv = ledger_server(Path(tmp_path_factory.mktemp("ledger-api"))).start()
    yield srv
    srv.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def _entries(server: LedgerServer) -> int:
    engine = create_engine(f"sqlite:///{server.path / 'meta.sqlite'}")
    try:
        with engine.connect() as c:
            return int(c.scalar(select(func.count()).select_from(PointsEntry)) or 0)
    finally:
        engine.dispose()


def _token(server: LedgerServer, client: httpx.Client, person: int) -> dict[str, str]:
    made = server.post(client, f"/api/v1/members/{person}/token", {})
    assert made.status_code == 200, made.text
    return {"Authorization": f"Bearer {made.json()['token']}"}


def _code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def test_a_member_reads_and_spends_their_own_points_with_their_token(
    server: LedgerServer, client: httpx.Client
) -> None:
    earned = server.post(client, "/api/v1/members/11/points/earn", {"amount": 300, "request_id": "api-e1"})
    assert earned.status_code == 201 and earned.json()["spendable_after"] == 300
    me = _token(server, client, 11)
    spent = client.post(server.url + "/app/v1/member/points/spend", headers=me,
                        json={"amount": 120, "request_id": "api-s1"})  # fmt: skip
    assert spent.status_code == 201, spent.text
    again = client.post(server.url + "/app/v1/member/points/spend", headers=me,
                        json={"amount": 120, "request_id": "api-s1"})  # fmt: skip
    assert again.json()["entry_id"] == spent.json()["entry_id"] and again.json()["replayed"] is True
    assert client.get(server.url + "/app/v1/member/balance", headers=me).json()["spendable"] == 180
    page = client.get(server.url + "/app/v1/member/points", headers=me, params={"limit": 1}).json()
    assert [e["request_id"] for e in page["entries"]] == ["api-s1"] and page["next_before"] is not None
    older = client.get(server.url + "/app/v1/member/points", headers=me, params={"before": page["next_before"]})
    assert [e["request_id"] for e in older.json()["entries"]] == ["api-e1"]
    operator = client.get(server.url + "/api/v1/members/11/points/balance", headers=server.admin,
                          params={"programme": server.programme})  # fmt: skip
    assert operator.json()["spendable"] == 180


@pytest.mark.parametrize(
    "amount",
    [-5, 0, 10**13, 1.5, 1e3, "10", True, None, "NaN", 2**64],
)
def test_bad_amounts_are_refused_and_nothing_is_written(
    server: LedgerServer, client: httpx.Client, amount: Any
) -> None:
    before = _entries(server)
    for path in ("earn", "spend", "adjust"):
        if path == "adjust" and amount == -5:
            continue  # a debit
        response = server.post(client, f"/api/v1/members/12/points/{path}", {"amount": amount, "request_id": "bad"})
        assert response.status_code == 422, (path, amount, response.text)
        assert response.json()["error"]["field"] == "amount"
    me = _token(server, client, 12)
    own = client.post(
        server.url + "/app/v1/member/points/spend", headers=me, json={"amount": amount, "request_id": "x"}
    )
    assert own.status_code == 422 and own.json()["error"]["field"] == "amount"
    assert _entries(server) == before


def test_non_finite_numbers_in_the_body_are_refused(server: LedgerServer, client: httpx.Client) -> None:
    before = _entries(server)
    for text in ('{"amount": NaN, "request_id": "n"}', '{"amount": Infinity, "request_id": "n"}',
                 '{"amount": 1e400, "request_id": "n"}'):  # fmt: skip
        response = client.post(server.url + f"/api/v1/members/12/points/earn?programme={server.programme}",
                               content=text, headers={**server.admin, "Content-Type": "application/json"})  # fmt: skip
        assert response.status_code == 422, text
    assert _entries(server) == before


def test_spending_beyond_the_balance_and_reusing_a_request_id_are_refused(
    server: LedgerServer, client: httpx.Client
) -> None:
    server.post(client, "/api/v1/members/13/points/earn", {"amount": 50, "request_id": "api-e13"})
    before = _entries(server)
    beyond = server.post(client, "/api/v1/members/13/points/spend", {"amount": 51, "request_id": "api-s13"})
    assert beyond.status_code == 409 and _code(beyond) == "points_insufficient"
    reused = server.post(client, "/api/v1/members/13/points/earn", {"amount": 51, "request_id": "api-e13"})
    assert reused.status_code == 409 and _code(reused) == "points_request_conflict"
    elsewhere = server.post(client, "/api/v1/members/14/points/earn", {"amount": 50, "request_id": "api-e13"})
    assert elsewhere.status_code == 409 and _code(elsewhere) == "points_request_conflict"
    me = _token(server, client, 13)
    own = client.post(server.url + "/app/v1/member/points/spend", headers=me, json={"amount": 51, "request_id": "o"})
    assert own.status_code == 409 and _code(own) == "points_insufficient"
    assert _entries(server) == before


def test_forged_foreign_and_missing_tokens_are_refused(server: LedgerServer, client: httpx.Client) -> None:
    server.post(client, "/api/v1/members/15/points/earn", {"amount": 40, "request_id": "api-e15"})
    before = _entries(server)
    token = _token(server, client, 15)["Authorization"].removeprefix("Bearer ")
    payload, tag = token.split(".")
    forged = payload.replace(payload[5], "A" if payload[5] != "A" else "B", 1) + "." + tag
    inbox = client.post(server.url + "/api/v1/inbox/tokens", headers=server.admin, json={"person": 15}).json()["token"]
    for bad in (forged, payload + "." + tag[::-1], inbox, server.admin_token, server.write_key):
        headers = {"Authorization": f"Bearer {bad}"}
        spend = client.post(server.url + "/app/v1/member/points/spend", headers=headers,
                            json={"amount": 1, "request_id": "f"})  # fmt: skip
        assert spend.status_code == 403 and _code(spend) == "token_invalid", bad
        assert client.get(server.url + "/app/v1/member/balance", headers=headers).status_code == 403
    assert client.get(server.url + "/app/v1/member/balance").status_code == 401
    # a member token is not an API token: the operator routes refuse it
    member = {"Authorization": f"Bearer {token}"}
    operator = client.post(server.url + "/api/v1/members/16/points/earn", headers=member,
                           json={"programme": server.programme, "amount": 5, "request_id": "m"})  # fmt: skip
    assert operator.status_code == 401
    # another person's token reaches that person only: no route names a person, and a body naming one is refused
    other = _token(server, client, 16)
    named = client.post(server.url + "/app/v1/member/points/spend", headers=other,
                        json={"amount": 1, "request_id": "p", "person": 15})  # fmt: skip
    assert named.status_code == 422
    theirs = client.get(server.url + "/app/v1/member/balance", headers=other).json()
    assert (theirs["person"], theirs["spendable"]) == (16, 0)
    assert _entries(server) == before


def test_a_batch_keeps_the_valid_operations_and_names_each_reject(server: LedgerServer, client: httpx.Client) -> None:
    operations = [
        {"op": "earn", "person": 17, "amount": 100, "request_id": "b-1"},
        {"op": "earn", "person": 17, "amount": -1, "request_id": "b-2"},
        {"op": "spend", "person": 17, "amount": 500, "request_id": "b-3"},
        {"op": "spend", "person": 17, "amount": 30, "request_id": "b-4"},
        {"op": "earn", "person": 17, "wallet": "nope", "amount": 1, "request_id": "b-5"},
        {"op": "burn", "person": 17, "amount": 1, "request_id": "b-6"},
    ]
    first = server.post(client, "/api/v1/members/points/batch", {"operations": operations})
    assert first.status_code == 200, first.text
    items = first.json()["items"]
    assert [i["index"] for i in items if i["posted"]] == [0, 3]
    rejects = {i["index"]: (i["rejected"]["code"], i["rejected"]["field"]) for i in items if i["rejected"]}
    assert rejects == {
        1: ("points_invalid", "operations.1.amount"),
        2: ("points_insufficient", "operations.2.amount"),
        4: ("points_invalid", "operations.4.wallet"),
        5: ("points_invalid", "operations.5.op"),
    }
    again = server.post(client, "/api/v1/members/points/batch", {"operations": operations}).json()["items"]
    assert [i["posted"]["entry_id"] for i in again if i["posted"]] == [
        i["posted"]["entry_id"] for i in items if i["posted"]
    ]
    assert all(i["posted"]["replayed"] for i in again if i["posted"])


def test_reversals_and_the_expiry_trigger(server: LedgerServer, client: httpx.Client) -> None:
    earned = server.post(client, "/api/v1/members/18/points/earn", {"amount": 100, "request_id": "r-e"}).json()
    spent = server.post(client, "/api/v1/members/18/points/spend", {"amount": 70, "request_id": "r-s"}).json()
    back = server.post(client, "/api/v1/members/18/points/reverse",
                       {"transfer_id": earned["entry_id"], "request_id": "r-r1"})  # fmt: skip
    assert back.status_code == 201 and (back.json()["amount"], back.json()["shortfall"]) == (-30, 70)
    twice = server.post(client, "/api/v1/members/18/points/reverse",
                        {"transfer_id": earned["entry_id"], "request_id": "r-r2"})  # fmt: skip
    assert twice.status_code == 409 and _code(twice) == "points_already_reversed"
    stranger = server.post(client, "/api/v1/members/19/points/reverse",
                           {"transfer_id": spent["entry_id"], "request_id": "r-r3"})  # fmt: skip
    assert stranger.status_code == 404 and _code(stranger) == "points_unknown_transfer"
    undo = server.post(client, "/api/v1/members/18/points/reverse",
                       {"transfer_id": spent["entry_id"], "request_id": "r-r4"})  # fmt: skip
    # the spending drew on the reversed earning's lot: nothing is given back (it settles the shortfall)
    assert undo.status_code == 201 and undo.json()["amount"] == 0 and undo.json()["spendable_after"] == 0
    job = server.post(client, "/api/v1/members/points/expire", {})
    assert job.status_code == 200 and set(job.json()) == {"members", "lots", "points"}
