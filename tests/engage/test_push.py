"""The push adapters against local fakes of JPush, Getui and FCM that check the real authentication and answer in
the providers' formats (userloop.engage.fakes)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from userloop.core.errors import ValidationError
from userloop.engage.channels.base import ChannelError, Message
from userloop.engage.channels.push import (
    Fcm,
    FcmConfig,
    Getui,
    GetuiConfig,
    JPush,
    JPushConfig,
    getui_request_id,
    service_account_jwt,
)
from userloop.engage.fakes.fcm import FcmFake
from userloop.engage.fakes.getui import GetuiFake
from userloop.engage.fakes.jpush import JPushFake
from userloop.engage.fakes.server import CallbackSink

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z, fixed: the tests never read the machine's clock
TITLE, TEXT = "周末特惠", "全场五折,今晚八点开始 🎉"


def clock() -> float:
    return NOW


def push(
    key: str, to: str, *, subject: str | None = TITLE, body: str = TEXT, params: dict[str, str] | None = None
) -> Message:
    return Message(key=key, channel="push", person=1, to=to, body=body, subject=subject, params=params or {})


_A = TypeVar("_A", JPush, Getui, Fcm)
_OPEN: list[JPush | Getui | Fcm] = []


@pytest.fixture(autouse=True)
def _close_adapters() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def opened(adapter: _A) -> _A:
    _OPEN.append(adapter)
    return adapter


# ----------------------------------------------------------------------------------------------------------- JPush


@pytest.fixture
def jpush() -> Iterator[JPushFake]:
    fake = JPushFake("8103a4c628a0b98974ec1949", "fake-master-secret", clock=clock)
    yield fake
    fake.stop()


def jpush_adapter(fake: JPushFake, secret: str = "fake-master-secret", store: dict[str, str] | None = None) -> JPush:
    config = JPushConfig(
        app_key="8103a4c628a0b98974ec1949", master_secret=secret, endpoint=fake.url, report_endpoint=fake.url
    )
    return opened(JPush(config, cid_store=store))


def test_jpush_round_trip_with_chinese_content_and_report(jpush: JPushFake) -> None:
    adapter = jpush_adapter(jpush)
    jpush.offline.add("regid-offline")
    deliveries = adapter.send(
        [push("k-1", "regid-1", params={"deeplink": "app://sale/1"}), push("k-2", "regid-offline", subject=None)]
    )
    assert [d.status for d in deliveries] == ["sent", "sent"]
    first = jpush.deliveries[0]
    assert first["registration_id"] == "regid-1"
    assert first["notification"]["android"] == {"alert": TEXT, "title": TITLE, "extras": {"deeplink": "app://sale/1"}}
    assert first["notification"]["ios"]["alert"] == {"title": TITLE, "body": TEXT}
    assert jpush.deliveries[1]["notification"]["ios"]["alert"] == TEXT
    assert first["options"]["sendno"] == JPush.sendno("k-1")
    assert first["cid"] == adapter.cid_store["k-1"]
    assert first["cid"].startswith("8103a4c628a0b98974ec1949-")

    receipts = adapter.fetch_receipts([str(d.provider_id) for d in deliveries])
    assert [(r.status, r.provider_id) for r in receipts] == [("delivered", deliveries[0].provider_id)]


def test_jpush_resend_with_the_same_cid_returns_the_first_result_and_pushes_once(jpush: JPushFake) -> None:
    store: dict[str, str] = {}  # stands for the outbox's durable key → cid column
    first = jpush_adapter(jpush, store=store).send([push("k-1", "regid-1")])
    # a new process (after a crash) with the same store resends the same key
    again = jpush_adapter(jpush, store=store).send([push("k-1", "regid-1")])
    assert again == first
    assert jpush.push_calls == 2
    assert len(jpush.deliveries) == 1
    # a key the store has never seen draws a new cid and is pushed
    jpush_adapter(jpush, store=store).send([push("k-2", "regid-1")])
    assert len(jpush.deliveries) == 2
    assert len(set(store.values())) == 2


def test_jpush_cid_pool_is_drawn_in_batches_of_ten(jpush: JPushFake) -> None:
    adapter = jpush_adapter(jpush)
    deliveries = adapter.send([push(f"k-{i}", f"regid-{i}") for i in range(23)])
    assert all(d.status == "sent" for d in deliveries)
    assert len(set(adapter.cid_store.values())) == 23


def test_jpush_authentication_and_forged_cids_are_refused(jpush: JPushFake) -> None:
    with pytest.raises(ChannelError, match="1004"):
        jpush_adapter(jpush, secret="wrong").send([push("k", "regid-1")])
    assert jpush.deliveries == []
    auth = "Basic " + base64.b64encode(b"8103a4c628a0b98974ec1949:fake-master-secret").decode()
    forged = {
        "platform": "all",
        "audience": {"registration_id": ["regid-1"]},
        "notification": {"android": {"alert": TEXT}},
        "cid": "8103a4c628a0b98974ec1949-made-up",
    }
    refused = httpx.post(jpush.url + "/v3/push", json=forged, headers={"Authorization": auth})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, 1003)
    assert jpush.deliveries == []


def test_jpush_error_mapping(jpush: JPushFake) -> None:
    jpush.fail("regid-gone", 1011)
    jpush.fail("regid-busy", 2002)
    deliveries = jpush_adapter(jpush).send([push("a", "regid-gone"), push("b", "regid-busy"), push("c", "regid-ok")])
    assert [(d.status, d.error, d.retryable) for d in deliveries] == [
        ("failed", "1011", False),
        ("failed", "2002", True),
        ("sent", None, False),
    ]


# ----------------------------------------------------------------------------------------------------------- Getui


@pytest.fixture
def getui() -> Iterator[GetuiFake]:
    fake = GetuiFake("gtAppId0001", "gtAppKey0001", "gt-master-secret", clock=clock)
    yield fake
    fake.stop()


def getui_adapter(fake: GetuiFake, secret: str = "gt-master-secret") -> Getui:
    config = GetuiConfig(app_id="gtAppId0001", app_key="gtAppKey0001", master_secret=secret, endpoint=fake.url)
    return opened(Getui(config, clock=clock))


def test_getui_round_trip_and_signed_receipts(getui: GetuiFake, sink: CallbackSink) -> None:
    adapter = getui_adapter(getui)
    deliveries = adapter.send([push("k-1", "cid-1"), push("k-2", "cid-2", subject=None)])
    assert [d.status for d in deliveries] == ["sent", "sent"]
    assert getui.auth_calls == 1  # one token for the batch
    assert getui.deliveries[0]["notification"] == {"title": TITLE, "body": TEXT, "click_type": "startapp"}
    assert getui.deliveries[1]["notification"]["title"] == "通知"
    assert getui.deliveries[0]["request_id"] == getui_request_id("k-1")
    assert 10 <= len(getui_request_id("k-1")) <= 32

    assert getui.push_receipts(sink.url, failed={"cid-2": "401"}) == 200
    receipts = adapter.receipts(sink.requests[0].body, sink.requests[0].headers)
    assert [(r.status, r.provider_id, r.error) for r in receipts] == [
        ("delivered", deliveries[0].provider_id, None),
        ("failed", deliveries[1].provider_id, "401"),
    ]
    assert receipts[0].at_ms == int(NOW * 1000) + 2000


def test_getui_forged_receipt_is_refused(getui: GetuiFake) -> None:
    adapter = getui_adapter(getui)
    adapter.send([push("k-1", "cid-1")])
    body = getui.receipt_body()
    assert adapter.receipts(body, {})[0].status == "delivered"
    line = json.loads(body)
    line["code"] = "200"
    line["cid"] = "cid-someone-else"
    with pytest.raises(ValidationError, match="sign"):
        adapter.receipts(json.dumps(line).encode(), {})
    with pytest.raises(ValidationError, match="sign"):
        getui_adapter(getui, secret="other").receipts(body, {})


def test_getui_repeated_request_id_is_dropped_and_answers_the_first_result(getui: GetuiFake) -> None:
    first = getui_adapter(getui).send([push("k-1", "cid-1")])
    again = getui_adapter(getui).send([push("k-1", "cid-1")])  # a resend after a crash: a new process, same key
    assert again == first
    assert len(getui.deliveries) == 1


def test_getui_expired_token_is_renewed_once(getui: GetuiFake) -> None:
    adapter = getui_adapter(getui)
    adapter.send([push("k-1", "cid-1")])
    getui.expire_tokens()
    deliveries = adapter.send([push("k-2", "cid-2")])
    assert deliveries[0].status == "sent"
    assert (adapter.auth_count, getui.auth_calls, getui.token_refusals) == (2, 2, 1)
    refused = httpx.post(f"{getui.url}/v2/gtAppId0001/push/single/cid", json={}, headers={"token": "forged"})
    assert refused.json()["code"] == 10001


def test_getui_token_past_its_expire_time_is_renewed_before_use(getui: GetuiFake) -> None:
    now = [NOW]
    getui.clock = lambda: now[0]
    config = GetuiConfig(
        app_id="gtAppId0001", app_key="gtAppKey0001", master_secret="gt-master-secret", endpoint=getui.url
    )
    adapter = opened(Getui(config, clock=lambda: now[0]))
    adapter.send([push("k-1", "cid-1")])
    now[0] += 86_400  # a day later the token (valid 24 h) is past its expire_time
    assert adapter.send([push("k-2", "cid-2")])[0].status == "sent"
    assert (adapter.auth_count, getui.auth_calls, getui.token_refusals) == (2, 2, 0)


def test_getui_authentication_and_errors(getui: GetuiFake) -> None:
    with pytest.raises(ChannelError, match="authentication refused"):
        getui_adapter(getui, secret="wrong").send([push("k", "cid-1")])
    getui.fail("cid-inactive", "successed_ignore")
    getui.fail("cid-bad", 20001)
    deliveries = getui_adapter(getui).send([push("a", "cid-inactive"), push("b", "cid-bad"), push("c", "cid-ok")])
    assert [(d.status, d.error, d.retryable) for d in deliveries] == [
        ("failed", "successed_ignore", False),
        ("failed", "20001", False),
        ("sent", None, False),
    ]
    assert [d["cid"] for d in getui.deliveries] == ["cid-ok"]


# ------------------------------------------------------------------------------------------------------------- FCM

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_PEM = _KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
EMAIL = "userloop@demo-project.iam.gserviceaccount.com"


@pytest.fixture
def fcm() -> Iterator[FcmFake]:
    fake = FcmFake("demo-project", EMAIL, _KEY.public_key(), clock=clock)
    yield fake
    fake.stop()


def fcm_adapter(fake: FcmFake, pem: str = _PEM, project: str = "demo-project") -> Fcm:
    config = FcmConfig(
        project_id=project,
        client_email=EMAIL,
        private_key_pem=pem,
        private_key_id="kid-1",
        token_uri=fake.token_uri,
        endpoint=fake.url,
    )
    return opened(Fcm(config, clock=clock))


def test_fcm_round_trip_with_a_service_account_token(fcm: FcmFake) -> None:
    adapter = fcm_adapter(fcm)
    deliveries = adapter.send([push("k-1", "token-1", params={"coupon": "五折"}), push("k-2", "token-2")])
    assert [d.status for d in deliveries] == ["sent", "sent"]
    assert all(str(d.provider_id).startswith("projects/demo-project/messages/") for d in deliveries)
    assert fcm.deliveries[0]["notification"] == {"title": TITLE, "body": TEXT}
    assert fcm.deliveries[0]["data"] == {"coupon": "五折"}
    assert fcm.token_grants == 1 and adapter.token_exchanges == 1  # the token is reused until it expires
    with pytest.raises(ValidationError, match="no delivery callbacks"):
        adapter.receipts(b"", {})


def test_fcm_jwt_signature_is_checked(fcm: FcmFake) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ChannelError, match="Invalid JWT Signature"):
        fcm_adapter(fcm, pem=other_pem).send([push("k", "token-1")])
    jwt = service_account_jwt(
        client_email=EMAIL, private_key_pem=_PEM, private_key_id=None, token_uri=fcm.token_uri, now=NOW
    )
    header, claims, signature = jwt.split(".")
    raw = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    raw["iss"] = "intruder@evil.example"
    forged_claims = base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    refused = httpx.post(
        fcm.token_uri, data={"grant_type": grant, "assertion": f"{header}.{forged_claims}.{signature}"}
    )
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    accepted = httpx.post(fcm.token_uri, data={"grant_type": grant, "assertion": jwt})
    assert accepted.json()["token_type"] == "Bearer"
    assert fcm.deliveries == []


def test_fcm_error_mapping(fcm: FcmFake) -> None:
    fcm.fail("token-uninstalled", "UNREGISTERED")
    fcm.fail("token-busy", "UNAVAILABLE")
    fcm.fail("token-oops", "INTERNAL")
    fcm.fail("token-bad", "INVALID_ARGUMENT")
    fcm.fail("token-apns", "THIRD_PARTY_AUTH_ERROR")
    deliveries = fcm_adapter(fcm).send(
        [
            push("a", "token-uninstalled"),
            push("b", "token-busy"),
            push("c", "token-oops"),
            push("d", "token-bad"),
            push("e", "token-apns"),
        ]
    )
    assert [(d.status, d.error, d.retryable) for d in deliveries] == [
        ("failed", "unregistered", False),
        ("failed", "unavailable", True),
        ("failed", "internal", True),
        ("failed", "invalid_argument", False),
        ("failed", "third_party_auth_error", False),
    ]
    with pytest.raises(ChannelError, match="may not send"):
        fcm_adapter(fcm, project="someone-elses").send([push("k", "token-1")])


def test_fcm_revoked_token_is_exchanged_once_more(fcm: FcmFake) -> None:
    adapter = fcm_adapter(fcm)
    adapter.send([push("k-1", "token-1")])
    fcm.expire_tokens()
    assert adapter.send([push("k-2", "token-2")])[0].status == "sent"
    assert (adapter.token_exchanges, fcm.unauthenticated) == (2, 1)


def test_fcm_token_is_renewed_before_it_expires(fcm: FcmFake) -> None:
    now = [NOW]
    fcm.clock = lambda: now[0]
    config = FcmConfig(
        project_id="demo-project", client_email=EMAIL, private_key_pem=_PEM, token_uri=fcm.token_uri, endpoint=fcm.url
    )
    adapter = opened(Fcm(config, clock=lambda: now[0]))
    adapter.send([push("k-1", "token-1")])
    now[0] += 3_000  # within the hour: the same token
    adapter.send([push("k-2", "token-1")])
    assert adapter.token_exchanges == 1
    now[0] += 600  # a minute before the token's end it is exchanged again, without a refused request
    adapter.send([push("k-3", "token-1")])
    assert (adapter.token_exchanges, fcm.token_grants, len(fcm.deliveries), fcm.unauthenticated) == (2, 2, 3, 0)


def test_fcm_static_bearer_token(fcm: FcmFake) -> None:
    fcm.allow_token("ya29.static")
    config = FcmConfig(project_id="demo-project", access_token="ya29.static", endpoint=fcm.url)
    assert opened(Fcm(config, clock=clock)).send([push("k", "token-1")])[0].status == "sent"
    wrong = FcmConfig(project_id="demo-project", access_token="ya29.wrong", endpoint=fcm.url)
    with pytest.raises(ChannelError, match="refused"):
        opened(Fcm(wrong, clock=clock)).send([push("k", "token-1")])
    with pytest.raises(ValueError, match="service account"):
        FcmConfig(project_id="demo-project")


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    s = CallbackSink()
    yield s
    s.stop()
