"""SMS channel adapters: Aliyun SMS (dysmsapi), Tencent Cloud SMS (API 2021-01-11) and Twilio Programmable
Messaging, each speaking the provider's real HTTP API behind :class:`userloop.engage.channels.base.Channel`.

Every adapter takes its provider's configuration (the endpoint base URL, so tests point it at the local fakes in
:mod:`userloop.engage.fakes`, and the credentials), sends a batch with :meth:`send` (one :class:`Delivery` per
message, in order), maps the provider's error codes to ``failed`` with ``retryable`` set when a later attempt may
succeed, and raises :class:`ChannelError` when the channel as a whole is unusable (credentials refused, server
unreachable). :meth:`receipts` turns the provider's delivery callback (the request body and headers our endpoint
received) into :class:`Receipt` records, checking the provider's signature where it signs them, and each adapter's
``receipt_ack`` is the body the provider expects back.

Mainland numbers are sent without ``+86`` where the provider wants bare national numbers (Aliyun); ``Message.to``
must be E.164 (``+8613800138000``), and a message whose address is not is failed locally (``invalid_address``).
SMS providers send approved *templates*: ``Message.params`` are the template's values and ``Message.body`` (the
rendered text) is sent only by Twilio, which has no templates.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from userloop.core.errors import ValidationError
from userloop.engage.channels.base import ChannelError, ChannelKind, Delivery, Message, Receipt

if TYPE_CHECKING:
    from userloop.engage.channels.base import Channel

Clock = Callable[[], float]

#: E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
#: Aliyun and Tencent report times in China Standard Time, without a zone.
CHINA_TZ = timezone(timedelta(hours=8))


def _china_time_ms(text: str | None) -> int | None:
    """``2017-01-01 00:00:00`` (China Standard Time, as Aliyun and Tencent write receipt times) → epoch ms."""
    if not text:
        return None
    try:
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


def _invalid_address(message: Message) -> Delivery:
    return Delivery(message.key, "failed", error="invalid_address", retryable=False)


def http_client(endpoint: str, timeout: float) -> httpx.Client:
    """An HTTP client for one provider's base URL (the push adapters share these helpers)."""
    return httpx.Client(base_url=endpoint.rstrip("/"), timeout=timeout)


def http_request(client: httpx.Client, provider: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One HTTP exchange; a connection failure or timeout makes the whole channel unavailable."""
    try:
        return client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise ChannelError(f"{provider}: cannot reach the provider: {exc}") from exc


def json_reply(response: httpx.Response, provider: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        if response.status_code >= 500:
            raise ChannelError(f"{provider}: server error {response.status_code}") from exc
        raise ChannelError(f"{provider}: an answer that is not JSON (HTTP {response.status_code})") from exc


def _json_list(body: bytes, provider: str) -> list[dict[str, Any]]:
    try:
        items = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(f"{provider} receipt: not JSON", code="invalid") from exc
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValidationError(f"{provider} receipt: expected a JSON array of objects", code="invalid")
    return items


def send_each(messages: Sequence[Message], send_one: Callable[[Message], Delivery]) -> list[Delivery]:
    """Send one message at a time. If the channel fails (:class:`ChannelError`) after some messages went out, those
    are not thrown away by raising (the runtime would resend the whole batch, and providers without idempotence
    would send them twice): the rest are reported ``failed``, ``channel_unavailable``, retryable. With nothing sent
    yet the error is raised as usual."""
    out: list[Delivery] = []
    for i, message in enumerate(messages):
        try:
            out.append(send_one(message))
        except ChannelError:
            if not any(d.status == "sent" for d in out):
                raise
            out.extend(Delivery(m.key, "failed", error="channel_unavailable", retryable=True) for m in messages[i:])
            break
    return out


class ProviderConfig(BaseModel):
    """Base of the providers' settings: unknown fields are refused, settings do not change once made."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------------------------------
# Aliyun SMS
# --------------------------------------------------------------------------------------------------------------------


def aliyun_percent_encode(value: str) -> str:
    """Aliyun's RPC percent-encoding (RFC 3986: only ``A-Z a-z 0-9 - _ . ~`` stay; space is ``%20``, ``*`` is
    ``%2A``), UTF-8 first."""
    return quote(value, safe="~")


def aliyun_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Aliyun RPC signature v1 (help.aliyun.com/document_detail/315526, "RPC 机制的签名"): sort the parameters
    (``Signature`` excluded) by name, join ``enc(k)=enc(v)`` with ``&``, build
    ``METHOD&%2F&enc(that string)``, HMAC-SHA1 it with ``secret + "&"`` and base64 the digest."""
    canonical = "&".join(
        f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    string_to_sign = f"{method.upper()}&{aliyun_percent_encode('/')}&{aliyun_percent_encode(canonical)}"
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class AliyunSmsConfig(ProviderConfig):
    """An Aliyun SMS account: the RAM access key, the approved signature (签名) and template (模板)."""

    access_key_id: str
    access_key_secret: str = Field(repr=False)
    sign_name: str
    template_code: str
    endpoint: str = "https://dysmsapi.aliyuncs.com"
    region_id: str = "cn-hangzhou"
    timeout_s: float = 10.0


class AliyunSms:
    """Aliyun SMS ``SendSms`` (dysmsapi 2017-05-25, RPC style, signature v1 over the form parameters).

    One ``SendSms`` call per message: ``SendSms`` takes up to 1000 numbers but one ``TemplateParam`` and one
    ``OutId`` per call, and ``SendBatchSms`` has no per-number ``OutId``, so batching would lose the link from a
    receipt back to the message. ``OutId`` carries our outbox key and comes back in the ``SmsReport`` receipt.

    **Aliyun SMS has no idempotence** ("短信服务不支持幂等", help.aliyun.com/document_detail/101867): a retried
    ``SendSms`` sends the text again. Duplicate protection therefore rests on our outbox (a key with a recorded
    delivery is not handed to :meth:`send` again); a crash between the provider's reply and the outbox write can
    still send twice, which receipts then show as two ``biz_id`` for one ``out_id``.

    Receipts (``SmsReport`` HTTP push) are not signed by Aliyun: protect the receipt URL (a secret path, an IP
    allow-list of Aliyun's callback ranges).
    """

    kind: ChannelKind = "sms"
    VERSION: ClassVar[str] = "2017-05-25"
    #: Business codes after which the same message may go through later (flow control, balance).
    RETRYABLE: ClassVar[frozenset[str]] = frozenset(
        {
            "isv.BUSINESS_LIMIT_CONTROL",
            "isv.DAY_LIMIT_CONTROL",
            "isv.AMOUNT_NOT_ENOUGH",
            "isv.OUT_OF_SERVICE",
            "isp.SYSTEM_ERROR",
            "isp.GATEWAY_ERROR",
            "Throttling.User",
            "ServiceUnavailable",
            "InternalError",
        }
    )
    #: Codes that mean the account or its key is unusable: the channel as a whole stops.
    AUTH: ClassVar[frozenset[str]] = frozenset(
        {
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId.NotFound",
            "InvalidAccessKeyId.Inactive",
            "InvalidTimeStamp.Expired",
            "SignatureNonceUsed",
            "isv.ACCOUNT_NOT_EXISTS",
            "isv.ACCOUNT_ABNORMAL",
            "isp.RAM_PERMISSION_DENY",
            "Forbidden.RAM",
        }
    )
    receipt_ack: ClassVar[bytes] = json.dumps({"code": 0, "msg": "接收成功"}, ensure_ascii=False).encode("utf-8")

    def __init__(
        self,
        config: AliyunSmsConfig,
        *,
        name: str = "aliyun-sms",
        clock: Clock = time.time,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._nonce = nonce
        self._client = http_client(config.endpoint, config.timeout_s)

    @staticmethod
    def phone_number(e164: str) -> str:
        """Aliyun takes mainland numbers bare (11 digits) and others as country code + number, without ``+``."""
        return e164[3:] if e164.startswith("+86") else e164[1:]

    def _signed(self, action: str, params: Mapping[str, str]) -> dict[str, str]:
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        full = {
            "AccessKeyId": self.config.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": self.config.region_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": stamp,
            "Version": self.VERSION,
            **params,
        }
        full["Signature"] = aliyun_signature("POST", full, self.config.access_key_secret)
        return full

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        return send_each(messages, self._send_one)

    def _send_one(self, message: Message) -> Delivery:
        if not E164.match(message.to):
            return _invalid_address(message)
        form = self._signed(
            "SendSms",
            {
                "PhoneNumbers": self.phone_number(message.to),
                "SignName": self.config.sign_name,
                "TemplateCode": self.config.template_code,
                "TemplateParam": json.dumps(dict(message.params), ensure_ascii=False, separators=(",", ":")),
                "OutId": message.key,
            },
        )
        response = http_request(self._client, "aliyun", "POST", "/", data=form)
        body = json_reply(response, "aliyun")
        code = str(body.get("Code", "")) if isinstance(body, dict) else ""
        if code == "OK":
            return Delivery(message.key, "sent", provider_id=str(body.get("BizId")))
        if code in self.AUTH:
            raise ChannelError(f"aliyun: credentials refused ({code}): {body.get('Message')}")
        if not code:
            raise ChannelError(f"aliyun: unexpected answer (HTTP {response.status_code})")
        return Delivery(
            message.key, "failed", error=code, retryable=code in self.RETRYABLE or response.status_code >= 500
        )

    def receipts(self, body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
        """Parse an ``SmsReport`` push: a JSON array of ``{phone_number, send_time, report_time, success, err_code,
        err_msg, sms_size, biz_id, out_id}`` (help.aliyun.com SmsReport). ``out_id`` is our key."""
        del headers  # Aliyun does not sign SmsReport
        out: list[Receipt] = []
        for item in _json_list(body, "aliyun"):
            ok = item.get("success") in (True, "true")
            out.append(
                Receipt(
                    status="delivered" if ok else "failed",
                    provider_id=str(item["biz_id"]) if item.get("biz_id") else None,
                    key=str(item["out_id"]) if item.get("out_id") else None,
                    error=None if ok else str(item.get("err_code") or "UNKNOWN"),
                    at_ms=_china_time_ms(item.get("report_time")),
                )
            )
        return out

    def close(self) -> None:
        self._client.close()


# --------------------------------------------------------------------------------------------------------------------
# Tencent Cloud SMS
# --------------------------------------------------------------------------------------------------------------------


def tc3_authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    timestamp: int,
    payload: bytes,
    action: str,
    content_type: str = "application/json; charset=utf-8",
    sign_action: bool = True,
) -> str:
    """The ``Authorization`` header of Tencent Cloud API 3.0, TC3-HMAC-SHA256 (cloud.tencent.com/document/api/382/
    52072): a canonical request over ``POST``, ``/``, an empty query, the signed headers ``content-type``, ``host``
    and ``x-tc-action`` and the payload's SHA-256; the string to sign names the UTC date and service; the key is
    derived ``HMAC("TC3"+key, date) → service → "tc3_request"``."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_headers = f"content-type:{content_type}\nhost:{host}\n"
    signed_headers = "content-type;host"
    if sign_action:  # the SDKs' current practice; the documented example signs content-type and host only
        canonical_headers += f"x-tc-action:{action.lower()}\n"
        signed_headers += ";x-tc-action"
    canonical_request = "\n".join(
        ["POST", "/", "", canonical_headers, signed_headers, hashlib.sha256(payload).hexdigest()]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )

    def _hmac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    signing_key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    signature = hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"


class TencentSmsConfig(ProviderConfig):
    """A Tencent Cloud SMS application: the API key pair, the SDK app id, the approved signature and template."""

    secret_id: str
    secret_key: str = Field(repr=False)
    sms_sdk_app_id: str
    template_id: str
    sign_name: str
    endpoint: str = "https://sms.tencentcloudapi.com"
    region: str = "ap-guangzhou"
    timeout_s: float = 10.0


class TencentSms:
    """Tencent Cloud SMS ``SendSms`` (API 2021-01-11, cloud.tencent.com/document/api/382/55981), signed with
    TC3-HMAC-SHA256.

    Messages with the same template values go out together, up to 200 numbers per request (the API's limit; mainland
    and international numbers in separate requests, as the API requires), and
    the reply's ``SendStatusSet`` gives one result per number, matched back by ``PhoneNumber`` (a number appears
    once per request). ``SessionContext`` (echoed per number) carries our key when a request holds one message; a
    shared request carries ``batch:<digest of its keys>``. Tencent documents no idempotence either, so duplicate
    protection rests on the outbox, as for Aliyun. Receipts are matched by ``sid`` (= ``SerialNo``); Tencent does not
    sign status callbacks.
    """

    kind: ChannelKind = "sms"
    VERSION: ClassVar[str] = "2021-01-11"
    SERVICE: ClassVar[str] = "sms"
    MAX_NUMBERS: ClassVar[int] = 200
    RETRYABLE_PREFIXES: ClassVar[tuple[str, ...]] = (
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "LimitExceeded.DeliveryFrequencyLimit",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "RequestLimitExceeded",
        "InternalError",
    )
    receipt_ack: ClassVar[bytes] = b'{"result":0,"errmsg":"OK"}'

    def __init__(self, config: TencentSmsConfig, *, name: str = "tencent-sms", clock: Clock = time.time) -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._client = http_client(config.endpoint, config.timeout_s)
        self._host = urlsplit(config.endpoint).netloc

    @classmethod
    def _retryable(cls, code: str) -> bool:
        return code.startswith(cls.RETRYABLE_PREFIXES)

    @staticmethod
    def template_values(params: Mapping[str, str]) -> list[str]:
        """Tencent templates are positional (``{1}``, ``{2}``…): numbered keys go in number order, others in the
        mapping's order."""
        if params and all(k.isdigit() for k in params):
            return [params[k] for k in sorted(params, key=int)]
        return list(params.values())

    def _batches(self, messages: Iterable[tuple[int, Message]]) -> list[list[tuple[int, Message]]]:
        open_batches: dict[tuple[str, ...], list[list[tuple[int, Message]]]] = {}
        out: list[list[tuple[int, Message]]] = []
        for item in messages:
            # a request holds mainland numbers only or international ones only (the API refuses a mix)
            values = (str(item[1].to.startswith("+86")), *self.template_values(item[1].params))
            for batch in open_batches.get(values, []):
                if len(batch) < self.MAX_NUMBERS and all(m.to != item[1].to for _, m in batch):
                    batch.append(item)
                    break
            else:
                batch = [item]
                open_batches.setdefault(values, []).append(batch)
                out.append(batch)
        return out

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        results: list[Delivery | None] = [None] * len(messages)
        valid: list[tuple[int, Message]] = []
        for i, m in enumerate(messages):
            if E164.match(m.to):
                valid.append((i, m))
            else:
                results[i] = _invalid_address(m)
        sent_any = False
        batches = self._batches(valid)
        for n, batch in enumerate(batches):
            try:
                deliveries = self._send_batch([m for _, m in batch])
            except ChannelError:
                if not sent_any:
                    raise
                # as in send_each: keep what went out, report the rest retryable
                for rest in batches[n:]:
                    for i, m in rest:
                        results[i] = Delivery(m.key, "failed", error="channel_unavailable", retryable=True)
                break
            for i, delivery in zip((i for i, _ in batch), deliveries, strict=True):
                results[i] = delivery
                sent_any = sent_any or delivery.status == "sent"
        return [r for r in results if r is not None]

    def _send_batch(self, batch: Sequence[Message]) -> list[Delivery]:
        keys = [m.key for m in batch]
        context = keys[0] if len(keys) == 1 else "batch:" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32]
        payload = json.dumps(
            {
                "PhoneNumberSet": [m.to for m in batch],
                "SmsSdkAppId": self.config.sms_sdk_app_id,
                "TemplateId": self.config.template_id,
                "SignName": self.config.sign_name,
                "TemplateParamSet": self.template_values(batch[0].params),
                "SessionContext": context,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        timestamp = int(self._clock())
        headers = {
            "Authorization": tc3_authorization(
                secret_id=self.config.secret_id,
                secret_key=self.config.secret_key,
                service=self.SERVICE,
                host=self._host,
                timestamp=timestamp,
                payload=payload,
                action="SendSms",
            ),
            "Content-Type": "application/json; charset=utf-8",
            "Host": self._host,
            "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": self.VERSION,
            "X-TC-Region": self.config.region,
        }
        response = http_request(self._client, "tencent", "POST", "/", content=payload, headers=headers)
        body = json_reply(response, "tencent")
        reply = body.get("Response") if isinstance(body, dict) else None
        if not isinstance(reply, dict):
            raise ChannelError(f"tencent: unexpected answer (HTTP {response.status_code})")
        error = reply.get("Error")
        if isinstance(error, dict):
            code = str(error.get("Code", ""))
            if code.startswith(("AuthFailure", "UnauthorizedOperation")):
                raise ChannelError(f"tencent: credentials refused ({code}): {error.get('Message')}")
            # a request-level refusal (bad template, signature, parameters, throttling) applies to every number
            return [Delivery(m.key, "failed", error=code, retryable=self._retryable(code)) for m in batch]
        statuses = {str(s.get("PhoneNumber")): s for s in reply.get("SendStatusSet") or [] if isinstance(s, dict)}
        out: list[Delivery] = []
        for m in batch:
            status = statuses.get(m.to)
            if status is None:
                out.append(Delivery(m.key, "failed", error="no_status", retryable=True))
            elif status.get("Code") == "Ok":
                out.append(Delivery(m.key, "sent", provider_id=str(status.get("SerialNo"))))
            else:
                code = str(status.get("Code"))
                out.append(Delivery(m.key, "failed", error=code, retryable=self._retryable(code)))
        return out

    def receipts(self, body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
        """Parse a status callback: a JSON array of ``{user_receive_time, nationcode, mobile, report_status, errmsg,
        description, sid}`` (cloud.tencent.com/document/product/382/52077); ``sid`` is the send's ``SerialNo``."""
        del headers  # Tencent does not sign status callbacks
        out: list[Receipt] = []
        for item in _json_list(body, "tencent"):
            ok = item.get("report_status") == "SUCCESS"
            out.append(
                Receipt(
                    status="delivered" if ok else "failed",
                    provider_id=str(item["sid"]) if item.get("sid") else None,
                    error=None if ok else str(item.get("errmsg") or "FAIL"),
                    at_ms=_china_time_ms(item.get("user_receive_time")),
                )
            )
        return out

    def close(self) -> None:
        self._client.close()


# --------------------------------------------------------------------------------------------------------------------
# Twilio
# --------------------------------------------------------------------------------------------------------------------


def twilio_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """``X-Twilio-Signature`` (twilio.com/docs/usage/security#validating-requests): the full URL, then every POST
    parameter's name and value appended in name order (values of a repeated name in value order), HMAC-SHA1 with
    the auth token, base64."""
    data = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_twilio_signature(url: str, params: Iterable[tuple[str, str]], signature: str, auth_token: str) -> bool:
    """Whether ``signature`` is Twilio's for this URL and form, compared in constant time."""
    expected = twilio_signature(url, params, auth_token)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))


class TwilioSmsConfig(ProviderConfig):
    """A Twilio account: its SID and auth token, the sender (a number or a Messaging Service), and the public URL of
    our status-callback endpoint (the URL Twilio signs, so it must be exactly what Twilio is given)."""

    account_sid: str
    auth_token: str = Field(repr=False)
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    endpoint: str = "https://api.twilio.com"
    timeout_s: float = 10.0


class TwilioSms:
    """Twilio ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (HTTP Basic with the account SID and auth
    token; form fields ``To``, ``From`` or ``MessagingServiceSid``, ``Body``, ``StatusCallback``).

    One request per message (the API has no batch), the rendered ``Message.body`` as text. Twilio's Messages API has
    no idempotency key, so a resend is prevented by the outbox only. Errors come as ``{code, message, more_info,
    status}`` (twilio.com/docs/api/errors); 20003 (authentication) stops the channel.
    """

    kind: ChannelKind = "sms"
    #: Twilio error codes after which a later attempt may succeed (rate limits, queue overflow, server errors).
    RETRYABLE: ClassVar[frozenset[int]] = frozenset({20429, 20500, 20503, 30001, 14107})
    receipt_ack: ClassVar[bytes] = b""

    def __init__(self, config: TwilioSmsConfig, *, name: str = "twilio-sms") -> None:
        if not (config.from_number or config.messaging_service_sid):
            raise ValidationError("twilio: set from_number or messaging_service_sid", code="channel_invalid")
        self.config = config
        self.name = name
        self._client = http_client(config.endpoint, config.timeout_s)

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        return send_each(messages, self._send_one)

    def _send_one(self, message: Message) -> Delivery:
        if not E164.match(message.to):
            return _invalid_address(message)
        form = {"To": message.to, "Body": message.body}
        if self.config.messaging_service_sid:
            form["MessagingServiceSid"] = self.config.messaging_service_sid
        else:
            form["From"] = str(self.config.from_number)
        if self.config.status_callback:
            form["StatusCallback"] = self.config.status_callback
        path = f"/2010-04-01/Accounts/{self.config.account_sid}/Messages.json"
        response = http_request(
            self._client, "twilio", "POST", path, data=form, auth=(self.config.account_sid, self.config.auth_token)
        )
        body = json_reply(response, "twilio")
        if not isinstance(body, dict):
            raise ChannelError(f"twilio: unexpected answer (HTTP {response.status_code})")
        if response.status_code in (200, 201) and body.get("sid"):
            if body.get("status") == "failed":
                return Delivery(message.key, "failed", provider_id=str(body["sid"]), error=str(body.get("error_code")))
            return Delivery(message.key, "sent", provider_id=str(body["sid"]))
        code = int(body.get("code") or 0)
        if response.status_code in (401, 403) and code in (20003, 20005, 20006, 0):
            raise ChannelError(f"twilio: credentials refused ({code}): {body.get('message')}")
        retryable = code in self.RETRYABLE or response.status_code == 429 or response.status_code >= 500
        return Delivery(message.key, "failed", error=str(code or response.status_code), retryable=retryable)

    def receipts(self, body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
        """Parse a status callback (form-encoded ``MessageSid``, ``MessageStatus``, ``ErrorCode``…) after checking
        ``X-Twilio-Signature`` against the configured ``status_callback`` URL; a missing or wrong signature raises
        :class:`ValidationError` (``token_invalid``). Intermediate states (queued, sending, sent) give no receipt."""
        if not self.config.status_callback:
            raise ValidationError("twilio: no status_callback URL configured", code="channel_invalid")
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        signature = next((v for k, v in headers.items() if k.lower() == "x-twilio-signature"), "")
        if not verify_twilio_signature(self.config.status_callback, pairs, signature, self.config.auth_token):
            raise ValidationError("twilio: status callback signature does not match", code="token_invalid")
        form = dict(pairs)
        status = form.get("MessageStatus") or form.get("SmsStatus")
        sid = form.get("MessageSid") or form.get("SmsSid")
        if status == "delivered":
            return [Receipt(status="delivered", provider_id=sid)]
        if status in ("undelivered", "failed"):
            return [Receipt(status="failed", provider_id=sid, error=form.get("ErrorCode") or status)]
        if status == "read":
            return [Receipt(status="opened", provider_id=sid)]
        return []

    def close(self) -> None:
        self._client.close()


if TYPE_CHECKING:  # each adapter is a Channel (mypy checks the protocol here)

    def _is_channel(a: AliyunSms, t: TencentSms, w: TwilioSms) -> tuple[Channel, Channel, Channel]:
        return a, t, w
