"""Configured channels: settings validated per provider, secrets encrypted at rest and masked in listings, adapters
opened from the stored rows and sending for real (an aiosmtpd sink, a webhook receiver, the provider fakes), on
SQLite and on the PostgreSQL running on this machine."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tests.store.metadb import BACKENDS, meta_url
from userloop.core.errors import NotFoundError, ValidationError
from userloop.engage.channels.base import Channel, ChannelError, Message
from userloop.engage.channels.email import SmtpChannel
from userloop.engage.channels.inbox import InboxChannel, inbox_page
from userloop.engage.channels.push import Fcm, Getui, JPush
from userloop.engage.channels.registry import (
    SECRET_FIELDS,
    SETTINGS,
    ChannelBook,
    delete_channel,
    get_channel,
    list_channels,
    open_channel,
    save_channel,
)
from userloop.engage.channels.sms import AliyunSms, TencentSms, TwilioSms
from userloop.engage.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, verify_signature
from userloop.engage.fakes.aliyun import AliyunSmsFake
from userloop.engage.fakes.fcm import FcmFake
from userloop.engage.fakes.getui import GetuiFake
from userloop.engage.fakes.jpush import JPushFake
from userloop.engage.fakes.server import CallbackSink
from userloop.engage.fakes.tencent import TencentSmsFake
from userloop.engage.fakes.twilio import TwilioFake
from userloop.engage.runtime import _public_config
from userloop.engage.secrets import ENV_KEY, KEY_FILE, MASK, PREFIX, SecretBox
from userloop.engage.sink import Mailbox, SmtpSink
from userloop.engage.tables import ChannelRow
from userloop.store.meta import MetaStore

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z, fixed: the tests never read the machine's clock
PASSWORD = "口令-Sm7p-very-secret"
HOOK_SECRET = "whsec-0123456789abcdef"


def clock() -> float:
    return NOW


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)


@pytest.fixture(params=BACKENDS)
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetaStore]:
    with meta_url(request.param, tmp_path) as url:
        store = MetaStore(url)
        yield store
        store.dispose()


@pytest.fixture
def project(meta: MetaStore) -> int:
    return meta.add_project("shop", "Asia/Shanghai").id


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.for_workspace(tmp_path / "ws")


_OPEN: list[Channel] = []


@pytest.fixture(autouse=True)
def _close_adapters() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def opened(meta: MetaStore, project: int, name: str, box: SecretBox) -> Channel:
    """The adapter of a channel opened from its listing (the path an operator's "test send" takes)."""
    adapter = open_channel(get_channel(meta, project, name), box, meta, clock=clock)
    _OPEN.append(adapter)
    return adapter


def raw_config(meta: MetaStore, project: int, name: str) -> tuple[str, dict[str, Any]]:
    with meta.session() as s:
        text = s.scalar(select(ChannelRow.config).where(ChannelRow.project_id == project, ChannelRow.name == name))
    assert text is not None
    return text, json.loads(text)


def msg(kind: Any, key: str, to: str, **kw: Any) -> Message:
    return Message(key=key, channel=kind, person=1, to=to, body=kw.pop("body", "全场五折"), **kw)


# ------------------------------------------------------------------------------------------------------ secret box


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    first = SecretBox.for_workspace(ws)
    path = ws / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_bytes()
    token = first.encrypt("秘密")
    assert token.startswith(PREFIX) and "秘密" not in token
    second = SecretBox.for_workspace(ws)
    assert path.read_bytes() == key
    assert second.decrypt(token) == "秘密"
    assert [p.name for p in ws.iterdir()] == [KEY_FILE]  # no temporary file left behind


def test_the_key_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        SecretBox.for_workspace(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_processes_racing_to_make_the_key_all_get_the_one_that_won(tmp_path: Path) -> None:
    boxes: list[SecretBox] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        boxes.append(SecretBox.for_workspace(tmp_path))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(boxes) == 8
    token = boxes[0].encrypt("shared")
    assert all(b.decrypt(token) == "shared" for b in boxes)
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]


_SHARED_BOX = SecretBox(Fernet.generate_key())


@given(st.text())
def test_any_text_survives_encryption_and_never_shows(clear: str) -> None:
    token = _SHARED_BOX.encrypt(clear)
    assert SecretBox.is_encrypted(token) and token.isascii()
    assert _SHARED_BOX.decrypt(token) == clear
    if len(clear) >= 8:
        assert clear not in token


def test_the_environment_key_wins_and_a_bad_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key()
    monkeypatch.setenv(ENV_KEY, key.decode())
    box = SecretBox.for_workspace(tmp_path)
    assert not (tmp_path / KEY_FILE).exists()
    assert SecretBox(key).decrypt(box.encrypt("x")) == "x"
    monkeypatch.setenv(ENV_KEY, "not-a-key")
    with pytest.raises(ValidationError) as err:
        SecretBox.for_workspace(tmp_path)
    assert err.value.code == "channel_invalid" and err.value.field == ENV_KEY


def test_a_wrong_key_gives_the_clear_error(tmp_path: Path) -> None:
    token = SecretBox.for_workspace(tmp_path / "a").encrypt("pw")
    other = SecretBox.for_workspace(tmp_path / "b")
    with pytest.raises(ValidationError) as err:
        other.decrypt(token)
    assert err.value.code == "channel_invalid"
    assert err.value.message == "the workspace's secret key does not open this value"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(ValidationError):
        SecretBox.for_workspace(tmp_path / "a").decrypt(tampered)
    with pytest.raises(ValidationError):
        other.decrypt("pw")  # not an encrypted value at all
    assert SecretBox.is_encrypted(token) and not SecretBox.is_encrypted("pw") and not SecretBox.is_encrypted(None)


# ---------------------------------------------------------------------------------------- secrets in the database


def smtp_settings(port: int, **kw: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "sender": "运营团队 <noreply@example.com>",
        "username": "ops",
        "password": PASSWORD,
        "domain": "mail.example.com",
        "timeout": 5,
        **kw,
    }


def test_secrets_are_never_stored_in_clear_masked_in_listings_and_kept_on_update(
    meta: MetaStore, project: int, box: SecretBox, tmp_path: Path
) -> None:
    mail = tmp_path / "mail"
    mail.mkdir()
    with SmtpSink(mail, auth=("ops", PASSWORD)) as sink:
        row = save_channel(meta, project, "mail", "email", "smtp", smtp_settings(sink.port), box, rate_per_second=50)
        assert (row.kind, row.provider, row.rate_per_second, row.enabled) == ("email", "smtp", 50, True)
        text, stored = raw_config(meta, project, "mail")
        assert PASSWORD not in text and PASSWORD.encode("unicode_escape").decode() not in text
        assert stored["password"].startswith(PREFIX)
        assert box.decrypt(stored["password"]) == PASSWORD
        assert (stored["host"], stored["port"], stored["address_property"], stored["topic"]) == (
            "127.0.0.1",
            sink.port,
            "email",
            "email",
        )

        info = get_channel(meta, project, "mail")
        assert info.settings["password"] == MASK
        assert info.settings["username"] == "ops"
        assert PASSWORD not in info.model_dump_json()
        assert [c.name for c in list_channels(meta, project)] == ["mail"]
        assert all(PASSWORD not in c.model_dump_json() for c in list_channels(meta, project))

        # the operator edits the form from the listing: the mask (or no password at all) keeps the stored value
        save_channel(meta, project, "mail", "email", "smtp", info.settings | {"timeout": 7}, box)
        _, kept = raw_config(meta, project, "mail")
        assert kept["password"] == stored["password"] and kept["timeout"] == 7
        without = {k: v for k, v in info.settings.items() if k != "password"}
        save_channel(meta, project, "mail", "email", "smtp", without, box, rate_per_second=50)
        _, kept = raw_config(meta, project, "mail")
        assert kept["password"] == stored["password"]

        adapter = opened(meta, project, "mail", box)
        assert isinstance(adapter, SmtpChannel)
        [delivery] = adapter.send([msg("email", "1.1.mail.1.1", "张三 <zhangsan@example.com>", subject="周末特惠")])
        assert delivery.status == "sent", delivery
    with Mailbox(mail) as mailbox:
        [got] = mailbox.messages()
    assert got.auth_user == "ops"  # logged in with the password decrypted from the row
    assert got.subject == "周末特惠" and got.message_id == "<1.1.mail.1.1@mail.example.com>"

    # a new value replaces it; changing the provider's secrets needs them given again
    save_channel(meta, project, "mail", "email", "smtp", smtp_settings(1, password="new-password"), box)
    _, changed = raw_config(meta, project, "mail")
    assert changed["password"] != stored["password"] and box.decrypt(changed["password"]) == "new-password"


def test_a_mask_is_no_secret_for_a_new_channel(meta: MetaStore, project: int, box: SecretBox) -> None:
    with pytest.raises(ValidationError) as err:
        save_channel(meta, project, "hook", "webhook", "webhook", {"url": "https://h.example/x", "secret": MASK}, box)
    assert (err.value.code, err.value.field) == ("channel_invalid", "secret")


def test_a_wrong_workspace_key_gives_the_clear_error_on_open_and_on_update(
    meta: MetaStore, project: int, box: SecretBox, tmp_path: Path
) -> None:
    save_channel(meta, project, "mail", "email", "smtp", smtp_settings(2525), box)
    other = SecretBox.for_workspace(tmp_path / "elsewhere")
    with pytest.raises(ValidationError) as err:
        open_channel(get_channel(meta, project, "mail"), other, meta)
    assert (err.value.code, err.value.message) == (
        "channel_invalid",
        "the workspace's secret key does not open this value",
    )
    with pytest.raises(ValidationError) as err:
        save_channel(meta, project, "mail", "email", "smtp", smtp_settings(2525, password=MASK), other)
    assert err.value.message == "the workspace's secret key does not open this value"
    with pytest.raises(ValidationError) as err:
        ChannelBook(meta, project, other).get("mail")  # the book too, on first use
    assert err.value.code == "channel_invalid"


def test_the_runtime_reads_address_reach_and_url_without_the_key(meta: MetaStore, project: int, box: SecretBox) -> None:
    save_channel(
        meta, project, "hook", "webhook", "webhook", {"url": "https://hooks.example.com/in", "secret": HOOK_SECRET}, box
    )
    save_channel(meta, project, "app", "push", "jpush", {"app_key": "k", "master_secret": "s"}, box)
    save_channel(
        meta,
        project,
        "vip-sms",
        "sms",
        "aliyun",
        {
            "access_key_id": "i",
            "access_key_secret": "s",
            "sign_name": "用户回路",
            "template_code": "SMS_1",
            "address_property": "mobile",
            "reach": {"sms_ok": True},
            "topic": "promotions",
        },
        box,
    )

    def public(name: str) -> dict[str, Any]:
        seen = _public_config(raw_config(meta, project, name)[0])  # what the runtime reads, without the key
        return {k: seen.get(k) for k in ("url", "address_property", "reach", "topic")}

    assert public("hook") == {
        "url": "https://hooks.example.com/in",
        "address_property": None,
        "reach": {},
        "topic": "webhook",
    }
    assert public("app") == {
        "url": None,
        "address_property": "push_token",
        "reach": {"push_enabled": True, "app_uninstalled": False},
        "topic": "push",
    }
    assert public("vip-sms") == {
        "url": None,
        "address_property": "mobile",
        "reach": {"sms_ok": True},
        "topic": "promotions",
    }
    assert raw_config(meta, project, "vip-sms")[1]["topic"] == "promotions"
    assert get_channel(meta, project, "app").settings["topic"] == "push"


def test_delete_and_unknown_channel(meta: MetaStore, project: int, box: SecretBox) -> None:
    save_channel(meta, project, "inbox", "inbox", "inbox", {}, box)
    other = meta.add_project("other", "UTC").id
    with pytest.raises(NotFoundError) as err:
        get_channel(meta, other, "inbox")  # channels belong to their project
    assert (err.value.code, err.value.field) == ("unknown_channel", "name")
    delete_channel(meta, project, "inbox")
    assert list_channels(meta, project) == []
    for call in (
        lambda: get_channel(meta, project, "inbox"),
        lambda: delete_channel(meta, project, "inbox"),
        lambda: ChannelBook(meta, project, box).get("inbox"),
    ):
        with pytest.raises(NotFoundError) as err:
            call()
        assert err.value.code == "unknown_channel"


# ------------------------------------------------------------------------------------------------- every provider


def test_webhook_channel_signs_with_the_decrypted_secret(meta: MetaStore, project: int, box: SecretBox) -> None:
    receiver = CallbackSink()
    try:
        save_channel(meta, project, "hook", "webhook", "webhook", {"url": receiver.url, "secret": HOOK_SECRET}, box)
        assert HOOK_SECRET not in raw_config(meta, project, "hook")[0]
        adapter = opened(meta, project, "hook", box)
        assert isinstance(adapter, WebhookChannel)
        url = raw_config(meta, project, "hook")[1]["url"]
        [delivery] = adapter.send([msg("webhook", "1.1.hook.1.1", url)])
        assert delivery.status == "sent", delivery
        [request] = receiver.requests
        assert request.headers["idempotency-key"] == "1.1.hook.1.1"
        assert verify_signature(
            HOOK_SECRET.encode(),
            request.headers[TIMESTAMP_HEADER.lower()],
            request.body,
            request.headers[SIGNATURE_HEADER.lower()],
            NOW,
        )
    finally:
        receiver.stop()


def test_inbox_channel_opens_on_the_metadata_database(meta: MetaStore, project: int, box: SecretBox) -> None:
    save_channel(meta, project, "inbox", "inbox", "inbox", {}, box)
    adapter = opened(meta, project, "inbox", box)
    assert isinstance(adapter, InboxChannel)
    [delivery] = adapter.send([msg("inbox", "1.1.in.1.1", "1", subject="标题")])
    assert (delivery.status, delivery.provider_id) == ("sent", "1.1.in.1.1")
    [item] = inbox_page(meta, project, 1).items
    assert (item.title, item.body, item.created_at.isoformat()) == ("标题", "全场五折", "2026-01-01T00:00:00")


def test_aliyun_sms(meta: MetaStore, project: int, box: SecretBox) -> None:
    fake = AliyunSmsFake("LTAI5tFakeKeyId", "aliyun-secret", clock=clock)
    try:
        save_channel(
            meta,
            project,
            "sms",
            "sms",
            "aliyun",
            {
                "access_key_id": "LTAI5tFakeKeyId",
                "access_key_secret": "aliyun-secret",
                "sign_name": "用户回路",
                "template_code": "SMS_154950909",
                "endpoint": fake.url,
            },
            box,
        )
        assert "aliyun-secret" not in raw_config(meta, project, "sms")[0]
        adapter = opened(meta, project, "sms", box)
        assert isinstance(adapter, AliyunSms) and adapter.name == "sms"
        [d] = adapter.send([msg("sms", "k-1", "+8613800138000", params={"name": "张三"})])
        assert d.status == "sent", d
        assert fake.accepted[0]["phone"] == "13800138000" and fake.accepted[0]["out_id"] == "k-1"
    finally:
        fake.stop()


def test_tencent_sms(meta: MetaStore, project: int, box: SecretBox) -> None:
    fake = TencentSmsFake("AKIDfakeSecretId", "tencent-secret", "1400000001", clock=clock)
    try:
        save_channel(
            meta,
            project,
            "sms",
            "sms",
            "tencent",
            {
                "secret_id": "AKIDfakeSecretId",
                "secret_key": "tencent-secret",
                "sms_sdk_app_id": "1400000001",
                "template_id": "449739",
                "sign_name": "用户回路",
                "endpoint": fake.url,
            },
            box,
        )
        assert "tencent-secret" not in raw_config(meta, project, "sms")[0]
        adapter = opened(meta, project, "sms", box)
        assert isinstance(adapter, TencentSms)
        [d] = adapter.send([msg("sms", "k-1", "+8613800138000", params={"1": "张三"})])
        assert d.status == "sent", d
        assert len(fake.accepted) == 1
    finally:
        fake.stop()


def test_twilio_sms(meta: MetaStore, project: int, box: SecretBox) -> None:
    fake = TwilioFake("ACfake0000000000000000000000000001", "twilio-token")
    try:
        save_channel(
            meta,
            project,
            "sms",
            "sms",
            "twilio",
            {
                "account_sid": "ACfake0000000000000000000000000001",
                "auth_token": "twilio-token",
                "from_number": "+15005550006",
                "endpoint": fake.url,
            },
            box,
        )
        assert "twilio-token" not in raw_config(meta, project, "sms")[0]
        adapter = opened(meta, project, "sms", box)
        assert isinstance(adapter, TwilioSms)
        [d] = adapter.send([msg("sms", "k-1", "+14155550100", body="Sale tonight")])
        assert d.status == "sent", d
        assert len(fake.accepted) == 1
    finally:
        fake.stop()


def test_jpush(meta: MetaStore, project: int, box: SecretBox) -> None:
    fake = JPushFake("8103a4c628a0b98974ec1949", "jpush-master", clock=clock)
    try:
        save_channel(
            meta,
            project,
            "app",
            "push",
            "jpush",
            {
                "app_key": "8103a4c628a0b98974ec1949",
                "master_secret": "jpush-master",
                "endpoint": fake.url,
                "report_endpoint": fake.url,
            },
            box,
        )
        assert "jpush-master" not in raw_config(meta, project, "app")[0]
        adapter = opened(meta, project, "app", box)
        assert isinstance(adapter, JPush)
        [d] = adapter.send([msg("push", "k-1", "regid-1", subject="周末特惠")])
        assert d.status == "sent", d
        assert fake.deliveries[0]["registration_id"] == "regid-1"
    finally:
        fake.stop()


def test_getui(meta: MetaStore, project: int, box: SecretBox) -> None:
    fake = GetuiFake("gtAppId0001", "gtAppKey0001", "getui-master", clock=clock)
    try:
        save_channel(
            meta,
            project,
            "app",
            "push",
            "getui",
            {"app_id": "gtAppId0001", "app_key": "gtAppKey0001", "master_secret": "getui-master", "endpoint": fake.url},
            box,
        )
        assert "getui-master" not in raw_config(meta, project, "app")[0]
        adapter = opened(meta, project, "app", box)
        assert isinstance(adapter, Getui)
        [d] = adapter.send([msg("push", "k-1", "cid-1", subject="周末特惠")])
        assert d.status == "sent", d
        assert len(fake.deliveries) == 1
    finally:
        fake.stop()


_FCM_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_FCM_PEM = _FCM_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
_FCM_EMAIL = "userloop@demo-project.iam.gserviceaccount.com"


def test_fcm(meta: MetaStore, project: int, box: SecretBox) -> None:
    fake = FcmFake("demo-project", _FCM_EMAIL, _FCM_KEY.public_key(), clock=clock)
    try:
        save_channel(
            meta,
            project,
            "app",
            "push",
            "fcm",
            {
                "project_id": "demo-project",
                "client_email": _FCM_EMAIL,
                "private_key_pem": _FCM_PEM,
                "private_key_id": "kid-1",
                "token_uri": fake.token_uri,
                "endpoint": fake.url,
            },
            box,
        )
        text, stored = raw_config(meta, project, "app")
        assert "PRIVATE KEY" not in text and stored["private_key_pem"].startswith(PREFIX)
        assert stored["access_token"] is None
        assert get_channel(meta, project, "app").settings["private_key_pem"] == MASK
        adapter = opened(meta, project, "app", box)
        assert isinstance(adapter, Fcm)
        [d] = adapter.send([msg("push", "k-1", "token-1", subject="周末特惠")])
        assert d.status == "sent", d
        assert len(fake.deliveries) == 1
    finally:
        fake.stop()


def test_every_provider_has_its_secret_fields() -> None:
    for (_kind, provider), model in SETTINGS.items():
        assert SECRET_FIELDS[provider] <= set(model.model_fields), provider


# ----------------------------------------------------------------------------------------------- invalid settings

_EC_PEM = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)
_SMTP = {"host": "smtp.example.com", "port": 587, "sender": "noreply@example.com"}
_HOOK = {"url": "https://hooks.example.com/in", "secret": HOOK_SECRET}
_ALIYUN = {"access_key_id": "i", "access_key_secret": "s", "sign_name": "n", "template_code": "t"}
_FCM = {"project_id": "p", "client_email": _FCM_EMAIL, "private_key_pem": _FCM_PEM}


@pytest.mark.parametrize(
    ("kind", "provider", "settings", "field"),
    [
        ("email", "smtp", {**_SMTP, "port": 0}, "port"),
        ("email", "smtp", {k: v for k, v in _SMTP.items() if k != "host"}, "host"),
        ("email", "smtp", {**_SMTP, "sender": "not an address"}, "sender"),
        ("email", "smtp", {**_SMTP, "domain": "bad domain"}, "domain"),
        ("email", "smtp", {**_SMTP, "username": "ops"}, "username"),
        ("email", "smtp", {**_SMTP, "timeout": -1}, "timeout"),
        ("email", "smtp", {**_SMTP, "hots": "typo"}, "hots"),
        ("email", "smtp", {**_SMTP, "address_property": ""}, "address_property"),
        ("email", "smtp", {**_SMTP, "reach": {"ok": [1]}}, "reach.ok"),
        ("webhook", "webhook", {**_HOOK, "url": "ftp://files.example.com/"}, "url"),
        ("webhook", "webhook", {**_HOOK, "secret": "short"}, "secret"),
        ("webhook", "webhook", {"url": "https://hooks.example.com/in"}, "secret"),
        ("inbox", "inbox", {"anything": 1}, "anything"),
        ("sms", "aliyun", {k: v for k, v in _ALIYUN.items() if k != "sign_name"}, "sign_name"),
        (
            "sms",
            "tencent",
            {"secret_id": "i", "secret_key": "k", "sms_sdk_app_id": "1", "template_id": "2"},
            "sign_name",
        ),
        ("sms", "twilio", {"account_sid": "AC1", "auth_token": "t"}, "from_number"),
        ("push", "jpush", {"app_key": "k", "master_secret": "s", "time_to_live_s": -5}, "time_to_live_s"),
        ("push", "getui", {"app_id": "a", "app_key": "k"}, "master_secret"),
        ("push", "fcm", {"project_id": "p"}, "private_key_pem"),
        ("push", "fcm", {**_FCM, "private_key_pem": "-----BEGIN PRIVATE KEY-----\nnope\n"}, "private_key_pem"),
        ("push", "fcm", {**_FCM, "private_key_pem": _EC_PEM}, "private_key_pem"),
        ("pigeon", "coop", {}, "kind"),
        ("sms", "smtp", _SMTP, "provider"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(
    meta: MetaStore, project: int, box: SecretBox, kind: str, provider: str, settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        save_channel(meta, project, "c", kind, provider, settings, box)
    assert (err.value.code, err.value.field) == ("channel_invalid", field)
    for value in settings.values():  # the message never echoes a value (it may be a secret)
        if isinstance(value, str) and len(value) > 3:
            assert value not in err.value.message
    assert list_channels(meta, project) == []


def test_names_and_rates_are_checked(meta: MetaStore, project: int, box: SecretBox) -> None:
    for name in ("", "a b", "x" * 101, "a/b"):
        with pytest.raises(ValidationError) as err:
            save_channel(meta, project, name, "inbox", "inbox", {}, box)
        assert err.value.field == "name"
    with pytest.raises(ValidationError) as err:
        save_channel(meta, project, "inbox", "inbox", "inbox", {}, box, rate_per_second=0)
    assert err.value.field == "rate_per_second"
    save_channel(meta, project, "站内信", "inbox", "inbox", {}, box)
    assert [c.name for c in list_channels(meta, project)] == ["站内信"]


# ------------------------------------------------------------------------------------------------------ the book


def test_the_book_caches_reopens_changed_channels_and_refuses_disabled_ones(
    meta: MetaStore, project: int, box: SecretBox
) -> None:
    receiver = CallbackSink()
    book = ChannelBook(meta, project, box, clock=clock)
    try:
        save_channel(meta, project, "hook", "webhook", "webhook", {"url": receiver.url, "secret": HOOK_SECRET}, box)
        save_channel(meta, project, "inbox", "inbox", "inbox", {}, box)
        hook = book.get("hook")
        assert book.get("hook") is hook
        inbox = book.get("inbox")
        book.refresh()  # nothing changed: the same adapters
        assert book.get("hook") is hook and book.get("inbox") is inbox

        info = get_channel(meta, project, "hook")
        save_channel(meta, project, "hook", "webhook", "webhook", info.settings | {"timeout": 3}, box)
        book.refresh()
        renewed = book.get("hook")
        assert renewed is not hook and isinstance(renewed, WebhookChannel) and renewed.timeout == 3
        assert book.get("inbox") is inbox
        [d] = renewed.send([msg("webhook", "k-1", receiver.url)])
        assert d.status == "sent"

        save_channel(meta, project, "inbox", "inbox", "inbox", {}, box, enabled=False)
        save_channel(meta, project, "inbox", "inbox", "inbox", {"topic": "notices"}, box)  # stays disabled
        assert get_channel(meta, project, "inbox").enabled is False
        book.refresh()
        with pytest.raises(ChannelError) as err:
            book.get("inbox")
        assert err.value.code == "channel_unavailable"
        delete_channel(meta, project, "hook")
        book.refresh()
        with pytest.raises(NotFoundError):
            book.get("hook")
    finally:
        book.close()
        receiver.stop()
