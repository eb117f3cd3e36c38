"""The SMS adapters against local fakes of Aliyun SMS, Tencent Cloud SMS and Twilio that check the real signatures
and answer in the providers' formats (userloop.engage.fakes)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import TypeVar

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from userloop.core.errors import ValidationError
from userloop.engage.channels.base import ChannelError, Message
from userloop.engage.channels.sms import (
    AliyunSms,
    AliyunSmsConfig,
    TencentSms,
    TencentSmsConfig,
    TwilioSms,
    TwilioSmsConfig,
    aliyun_signature,
    tc3_authorization,
    twilio_signature,
    verify_twilio_signature,
)
from userloop.engage.fakes import aliyun as aliyun_fake
from userloop.engage.fakes.aliyun import AliyunSmsFake
from userloop.engage.fakes.server import CallbackSink
from userloop.engage.fakes.tencent import TencentSmsFake
from userloop.engage.fakes.twilio import TwilioFake, callback_signature

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z, fixed: the tests never read the machine's clock


def clock() -> float:
    return NOW


def sms(key: str, to: str, params: dict[str, str] | None = None, body: str = "") -> Message:
    return Message(key=key, channel="sms", person=1, to=to, body=body, params=params or {})


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


_A = TypeVar("_A", AliyunSms, TencentSms, TwilioSms)
_OPEN: list[AliyunSms | TencentSms | TwilioSms] = []


@pytest.fixture(autouse=True)
def _close_adapters() -> Iterator[None]:
    """Every adapter made here is closed after its test (an unclosed HTTP client is a ResourceWarning → error)."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def opened(adapter: _A) -> _A:
    _OPEN.append(adapter)
    return adapter


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    s = CallbackSink()
    yield s
    s.stop()


# ---------------------------------------------------------------------------------------------------------- Aliyun


@pytest.fixture
def aliyun() -> Iterator[AliyunSmsFake]:
    fake = AliyunSmsFake("LTAI5tFakeKeyId", "fake-secret", clock=clock)
    yield fake
    fake.stop()


def aliyun_adapter(fake: AliyunSmsFake, secret: str = "fake-secret", endpoint: str | None = None) -> AliyunSms:
    config = AliyunSmsConfig(
        access_key_id="LTAI5tFakeKeyId",
        access_key_secret=secret,
        sign_name="用户回路",
        template_code="SMS_154950909",
        endpoint=endpoint or fake.url,
    )
    return opened(AliyunSms(config, clock=clock))


def test_aliyun_round_trip_with_chinese_params_and_receipts(aliyun: AliyunSmsFake, sink: CallbackSink) -> None:
    adapter = aliyun_adapter(aliyun)
    messages = [
        sms("k-1", "+8613800138000", {"name": "张三", "code": "1234"}),
        sms("k-2", "+8613900139000", {"name": "李四", "code": "5678"}),
    ]
    deliveries = adapter.send(messages)
    assert [d.status for d in deliveries] == ["sent", "sent"]
    assert [d.key for d in deliveries] == ["k-1", "k-2"]
    assert all(d.provider_id and d.provider_id.endswith("^0") for d in deliveries)
    first = aliyun.accepted[0]
    assert first["phone"] == "13800138000"  # mainland numbers go bare
    assert first["params"] == {"name": "张三", "code": "1234"}
    assert first["out_id"] == "k-1"
    assert first["sign_name"] == "用户回路"

    assert aliyun.push_receipts(sink.url, undelivered={"13900139000": "MOBILE_NOT_ON_SERVICE"}) == 200
    receipts = adapter.receipts(sink.requests[0].body, sink.requests[0].headers)
    assert [(r.status, r.key, r.provider_id, r.error) for r in receipts] == [
        ("delivered", "k-1", deliveries[0].provider_id, None),
        ("failed", "k-2", deliveries[1].provider_id, "MOBILE_NOT_ON_SERVICE"),
    ]
    assert receipts[0].at_ms == int(NOW * 1000) + 5000  # report_time is China time, read back as UTC epoch
    assert json.loads(adapter.receipt_ack) == {"code": 0, "msg": "接收成功"}


def test_aliyun_wrong_secret_is_refused_as_a_channel_error(aliyun: AliyunSmsFake) -> None:
    adapter = aliyun_adapter(aliyun, secret="not-the-secret")
    with pytest.raises(ChannelError, match="SignatureDoesNotMatch"):
        adapter.send([sms("k", "+8613800138000", {"code": "1"})])
    assert aliyun.accepted == []


def test_aliyun_tampered_or_replayed_request_is_refused(aliyun: AliyunSmsFake) -> None:
    form = {
        "AccessKeyId": "LTAI5tFakeKeyId",
        "Action": "SendSms",
        "Format": "JSON",
        "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "n-1",
        "SignatureVersion": "1.0",
        "Timestamp": "2026-01-01T00:00:00Z",
        "Version": "2017-05-25",
        "PhoneNumbers": "13800138000",
        "SignName": "用户回路",
        "TemplateCode": "SMS_1",
        "TemplateParam": '{"code":"1234"}',
        "OutId": "k",
    }
    form["Signature"] = aliyun_signature("POST", form, "fake-secret")
    tampered = {**form, "TemplateParam": '{"code":"9999"}'}
    refused = httpx.post(aliyun.url + "/", data=tampered)
    assert (refused.status_code, refused.json()["Code"]) == (400, "SignatureDoesNotMatch")
    ok = httpx.post(aliyun.url + "/", data=form)
    assert ok.json()["Code"] == "OK"
    replay = httpx.post(aliyun.url + "/", data=form)
    assert replay.json()["Code"] == "SignatureNonceUsed"
    assert len(aliyun.accepted) == 1


def test_aliyun_signature_matches_aliyuns_published_example() -> None:
    # Aliyun's RPC signature doc: DescribeRegions with the secret "testsecret" signs to OLeaidS1JvxuMvnyHOwuJ+uX5qY=
    params = {
        "Timestamp": "2016-02-23T12:46:24Z",
        "Format": "XML",
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "Version": "2014-05-26",
        "SignatureVersion": "1.0",
    }
    assert aliyun_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    assert aliyun_fake.expected_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20), max_size=6))
def test_aliyun_signature_agrees_with_the_fakes_own_computation(params: dict[str, str]) -> None:
    assert aliyun_signature("POST", params, "s3cr*t ~") == aliyun_fake.expected_signature("POST", params, "s3cr*t ~")


def test_aliyun_error_codes_map_to_failed_and_retryable(aliyun: AliyunSmsFake) -> None:
    aliyun.fail("13800000001", "isv.BUSINESS_LIMIT_CONTROL")
    aliyun.fail("13800000002", "isv.BLACK_KEY_CONTROL_LIMIT")
    adapter = aliyun_adapter(aliyun)
    deliveries = adapter.send(
        [
            sms("a", "+8613800000001", {"code": "1"}),
            sms("b", "+8613800000002", {"code": "1"}),
            sms("c", "+861380000", {"code": "1"}),  # E.164-shaped, but not a mainland mobile number: Aliyun refuses
            sms("d", "13800000003", {"code": "1"}),  # not E.164: refused before any request
        ]
    )
    assert [(d.status, d.error, d.retryable) for d in deliveries] == [
        ("failed", "isv.BUSINESS_LIMIT_CONTROL", True),
        ("failed", "isv.BLACK_KEY_CONTROL_LIMIT", False),
        ("failed", "isv.MOBILE_NUMBER_ILLEGAL", False),
        ("failed", "invalid_address", False),
    ]
    assert aliyun.accepted == []


def test_a_channel_failure_after_some_sends_keeps_them(aliyun: AliyunSmsFake) -> None:
    aliyun.fail("13800000002", "isv.ACCOUNT_ABNORMAL")  # the account is suspended between two calls
    adapter = aliyun_adapter(aliyun)
    deliveries = adapter.send([sms("a", "+8613800000001"), sms("b", "+8613800000002"), sms("c", "+8613800000003")])
    assert [(d.status, d.error, d.retryable) for d in deliveries] == [
        ("sent", None, False),
        ("failed", "channel_unavailable", True),
        ("failed", "channel_unavailable", True),
    ]
    assert [r["phone"] for r in aliyun.accepted] == ["13800000001"]
    with pytest.raises(ChannelError, match="ACCOUNT_ABNORMAL"):  # nothing sent yet: the whole batch is retried
        adapter.send([sms("b", "+8613800000002"), sms("c", "+8613800000003")])


def test_aliyun_unreachable_and_skewed_clock_are_channel_errors(aliyun: AliyunSmsFake) -> None:
    with pytest.raises(ChannelError, match="cannot reach"):
        aliyun_adapter(aliyun, endpoint=closed_port_url()).send([sms("k", "+8613800138000")])
    skewed = opened(
        AliyunSms(
            AliyunSmsConfig(
                access_key_id="LTAI5tFakeKeyId",
                access_key_secret="fake-secret",
                sign_name="s",
                template_code="t",
                endpoint=aliyun.url,
            ),
            clock=lambda: NOW + 3600,
        )
    )
    with pytest.raises(ChannelError, match=r"InvalidTimeStamp\.Expired"):
        skewed.send([sms("k", "+8613800138000")])


# --------------------------------------------------------------------------------------------------------- Tencent


@pytest.fixture
def tencent() -> Iterator[TencentSmsFake]:
    fake = TencentSmsFake("AKIDfakeSecretId", "fake-secret-key", "1400000001", clock=clock)
    yield fake
    fake.stop()


def tencent_adapter(fake: TencentSmsFake, secret: str = "fake-secret-key") -> TencentSms:
    config = TencentSmsConfig(
        secret_id="AKIDfakeSecretId",
        secret_key=secret,
        sms_sdk_app_id="1400000001",
        template_id="449739",
        sign_name="用户回路",
        endpoint=fake.url,
    )
    return opened(TencentSms(config, clock=clock))


def test_tencent_batches_by_template_values_with_per_number_results(
    tencent: TencentSmsFake, sink: CallbackSink
) -> None:
    tencent.fail("+8613800000009", "LimitExceeded.PhoneNumberDailyLimit")
    same = {"1": "张三", "2": "周末特惠"}
    messages = [sms(f"k-{i}", f"+861380000000{i}", same) for i in range(1, 4)]
    messages.append(sms("k-other", "+8613900000001", {"1": "李四", "2": "会员日"}))
    messages.append(sms("k-9", "+8613800000009", same))
    deliveries = adapter_send = tencent_adapter(tencent).send(messages)
    assert [d.key for d in adapter_send] == ["k-1", "k-2", "k-3", "k-other", "k-9"]
    assert [d.status for d in deliveries] == ["sent", "sent", "sent", "sent", "failed"]
    assert (deliveries[4].error, deliveries[4].retryable) == ("LimitExceeded.PhoneNumberDailyLimit", True)
    assert tencent.requests == 2  # one request per distinct set of template values
    by_phone = {r["phone"]: r for r in tencent.accepted}
    assert by_phone["+8613800000001"]["params"] == ["张三", "周末特惠"]
    assert by_phone["+8613900000001"]["context"] == "k-other"  # a one-message request carries the key itself
    assert by_phone["+8613800000001"]["context"].startswith("batch:")

    assert tencent.push_receipts(sink.url, undelivered={"+8613800000002": "MK:0001"}) == 200
    receipts = tencent_adapter(tencent).receipts(sink.requests[0].body, sink.requests[0].headers)
    serial = {d.key: d.provider_id for d in deliveries}
    assert {(r.provider_id, r.status, r.error) for r in receipts} == {
        (serial["k-1"], "delivered", None),
        (serial["k-2"], "failed", "MK:0001"),
        (serial["k-3"], "delivered", None),
        (serial["k-other"], "delivered", None),
    }
    assert all(r.at_ms == int(NOW * 1000) + 3000 for r in receipts)


def tc3_headers(fake: TencentSmsFake, payload: bytes, *, sign_action: bool = True) -> dict[str, str]:
    """Headers of a SendSms request to the fake, signed with the fake's credentials."""
    authorization = tc3_authorization(
        secret_id="AKIDfakeSecretId",
        secret_key="fake-secret-key",
        service="sms",
        host=fake.url.removeprefix("http://"),
        timestamp=int(NOW),
        payload=payload,
        action="SendSms",
        sign_action=sign_action,
    )
    return {
        "Authorization": authorization,
        "Content-Type": "application/json; charset=utf-8",
        "X-TC-Action": "SendSms",
        "X-TC-Timestamp": str(int(NOW)),
        "X-TC-Version": "2021-01-11",
    }


def test_tencent_splits_at_200_numbers_and_mainland_from_international(tencent: TencentSmsFake) -> None:
    messages = [sms(f"k{i}", f"+86139{i:08d}", {"1": "码"}) for i in range(201)]
    messages.insert(7, sms("k-hk", "+85291234567", {"1": "码"}))
    deliveries = tencent_adapter(tencent).send(messages)
    assert all(d.status == "sent" for d in deliveries)
    assert [d.key for d in deliveries] == [m.key for m in messages]
    assert tencent.requests == 3
    assert len(tencent.accepted) == 202
    payload = json.dumps(
        {
            "PhoneNumberSet": ["+8613900000001", "+85291234568"],
            "SmsSdkAppId": "1400000001",
            "TemplateId": "1",
            "SignName": "用户回路",
            "TemplateParamSet": ["码"],
        }
    ).encode()
    refused = httpx.post(tencent.url + "/", content=payload, headers=tc3_headers(tencent, payload)).json()
    assert {refused["Response"]["Error"]["Code"]} == {"FailedOperation.ContainDomesticAndInternationalPhoneNumber"}


def test_tc3_matches_tencents_published_example() -> None:
    # cloud.tencent.com "签名方法 v3": CVM DescribeInstances at 1551113065 signs (content-type;host) to 72e494ea…
    payload = rb'{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}'
    authorization = tc3_authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        service="cvm",
        host="cvm.tencentcloudapi.com",
        timestamp=1551113065,
        payload=payload,
        action="DescribeInstances",
        sign_action=False,
    )
    assert authorization.endswith(
        "/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_tencent_signature_is_checked(tencent: TencentSmsFake) -> None:
    with pytest.raises(ChannelError, match=r"AuthFailure\.SignatureFailure"):
        tencent_adapter(tencent, secret="wrong").send([sms("k", "+8613800138000", {"1": "1"})])
    payload = json.dumps(
        {
            "PhoneNumberSet": ["+8613800138000"],
            "SmsSdkAppId": "1400000001",
            "TemplateId": "1",
            "SignName": "用户回路",
            "TemplateParamSet": ["1"],
        },
        ensure_ascii=False,
    ).encode()
    headers = tc3_headers(tencent, payload)
    tampered = payload.replace(b"+8613800138000", b"+8613800138001")
    refused = httpx.post(tencent.url + "/", content=tampered, headers=headers).json()
    assert refused["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    accepted = httpx.post(tencent.url + "/", content=payload, headers=headers).json()
    assert accepted["Response"]["SendStatusSet"][0]["Code"] == "Ok"
    # the documented form, content-type and host signed only, is accepted too
    documented = tc3_headers(tencent, payload, sign_action=False)
    assert "SignedHeaders=content-type;host," in documented["Authorization"]
    accepted = httpx.post(tencent.url + "/", content=payload, headers=documented).json()
    assert accepted["Response"]["SendStatusSet"][0]["Code"] == "Ok"
    assert [r["phone"] for r in tencent.accepted] == ["+8613800138000"] * 2


def test_tencent_error_mapping(tencent: TencentSmsFake) -> None:
    tencent.fail("+8613800000001", "FailedOperation.PhoneNumberInBlacklist")
    tencent.fail("+8613800000002", "InvalidParameterValue.IncorrectPhoneNumber")
    deliveries = tencent_adapter(tencent).send(
        [sms("a", "+8613800000001"), sms("b", "+8613800000002"), sms("c", "not-a-number")]
    )
    assert [(d.error, d.retryable) for d in deliveries] == [
        ("FailedOperation.PhoneNumberInBlacklist", False),
        ("InvalidParameterValue.IncorrectPhoneNumber", False),
        ("invalid_address", False),
    ]
    late = opened(TencentSms(tencent_adapter(tencent).config, clock=lambda: NOW - 600))
    with pytest.raises(ChannelError, match=r"AuthFailure\.SignatureExpire"):
        late.send([sms("k", "+8613800138000")])


# ---------------------------------------------------------------------------------------------------------- Twilio


@pytest.fixture
def twilio() -> Iterator[TwilioFake]:
    fake = TwilioFake("ACfake0000000000000000000000000001", "fake-auth-token")
    yield fake
    fake.stop()


def twilio_adapter(fake: TwilioFake, callback: str, token: str = "fake-auth-token") -> TwilioSms:
    config = TwilioSmsConfig(
        account_sid="ACfake0000000000000000000000000001",
        auth_token=token,
        from_number="+15005550006",
        status_callback=callback,
        endpoint=fake.url,
    )
    return opened(TwilioSms(config))


def test_twilio_signature_matches_twilios_published_example() -> None:
    # twilio.com/docs/usage/security: token 12345, this URL and these parameters sign to 0/KCTR6DLpKmkAf8muzZqo1nDgQ=
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, params.items(), "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert callback_signature(url, params, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert verify_twilio_signature(url, params.items(), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "12345")
    assert not verify_twilio_signature(url, params.items(), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "12346")


@given(
    st.text(min_size=1, max_size=30),
    st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20), max_size=6),
)
def test_twilio_signature_agrees_with_the_fakes_own_computation(path: str, form: dict[str, str]) -> None:
    url = "https://hooks.example.cn/twilio/" + path
    assert twilio_signature(url, form.items(), "tok") == callback_signature(url, form, "tok")


def test_twilio_round_trip_and_signed_status_callbacks(twilio: TwilioFake, sink: CallbackSink) -> None:
    adapter = twilio_adapter(twilio, sink.url)
    deliveries = adapter.send(
        [
            sms("k-1", "+8613800138000", body="您的验证码是 1234,五分钟内有效。"),
            sms("k-2", "+14155550100", body="Hello 世界"),
        ]
    )
    assert [d.status for d in deliveries] == ["sent", "sent"]
    assert all(d.provider_id and d.provider_id.startswith("SM") for d in deliveries)
    assert twilio.accepted[0]["body"] == "您的验证码是 1234,五分钟内有效。"
    assert twilio.accepted[0]["status_callback"] == sink.url

    assert twilio.push_receipt(str(deliveries[0].provider_id), "delivered") == 200
    assert twilio.push_receipt(str(deliveries[1].provider_id), "undelivered", "30003") == 200
    assert twilio.push_receipt(str(deliveries[1].provider_id), "sent") == 200
    got = [adapter.receipts(r.body, r.headers) for r in sink.requests]
    assert [(r.status, r.provider_id, r.error) for rs in got for r in rs] == [
        ("delivered", deliveries[0].provider_id, None),
        ("failed", deliveries[1].provider_id, "30003"),
    ]
    assert got[2] == []  # "sent" is not a receipt


def test_twilio_forged_callback_is_refused(twilio: TwilioFake, sink: CallbackSink) -> None:
    adapter = twilio_adapter(twilio, sink.url)
    sid = str(adapter.send([sms("k", "+14155550100", body="hi")])[0].provider_id)
    body, headers, _ = twilio.callback(sid, "delivered")
    assert adapter.receipts(body, headers)[0].status == "delivered"
    forged = body.replace(b"delivered", b"undelivered")
    with pytest.raises(ValidationError, match="signature"):
        adapter.receipts(forged, headers)
    with pytest.raises(ValidationError, match="signature"):
        adapter.receipts(body, {"Content-Type": "application/x-www-form-urlencoded"})
    other_account = twilio_adapter(twilio, sink.url, token="another-token")
    with pytest.raises(ValidationError, match="signature"):
        other_account.receipts(body, headers)


def test_twilio_errors(twilio: TwilioFake, sink: CallbackSink) -> None:
    twilio.fail("+14155550101", 21211)
    twilio.fail("+14155550102", 20429)
    twilio.fail("+14155550103", 21610)
    deliveries = twilio_adapter(twilio, sink.url).send(
        [sms("a", "+14155550101", body="x"), sms("b", "+14155550102", body="x"), sms("c", "+14155550103", body="x")]
    )
    assert [(d.status, d.error, d.retryable) for d in deliveries] == [
        ("failed", "21211", False),
        ("failed", "20429", True),
        ("failed", "21610", False),
    ]
    with pytest.raises(ChannelError, match="20003"):
        twilio_adapter(twilio, sink.url, token="wrong").send([sms("k", "+14155550100", body="x")])
    assert twilio.accepted == []
    with pytest.raises(ValidationError):
        TwilioSms(TwilioSmsConfig(account_sid="AC1", auth_token="t"))
