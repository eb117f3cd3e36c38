"""Push channel adapters: JPush (极光) REST API v3, Getui (个推) RestAPI v2 and Firebase Cloud Messaging HTTP v1,
each speaking the provider's real HTTP API behind :class:`userloop.engage.channels.base.Channel`.

``Message.to`` is the device address the provider knows: a JPush ``registration_id``, a Getui ``cid``, an FCM
registration token. ``Message.subject`` is the notification title, ``Message.body`` its text and
``Message.params`` its extras (JPush ``extras``, FCM ``data``). The JPush and Getui adapters carry our outbox key
to the provider's own deduplication (JPush ``cid``, Getui ``request_id``), so a resend after a crash is not shown
twice; FCM has no such id, so there the outbox alone prevents a resend.

APNs is not built: its provider API is HTTP/2 only and no HTTP/2 client (``h2``) is installed; FCM carries iOS
notifications through its APNs bridge.

In mainland China, Android notifications reach a device offline only through the phone makers' channels (Xiaomi,
Huawei, OPPO, vivo, Honor), which JPush and Getui route to for us; FCM does not reach devices there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import httpx
from pydantic import Field, model_validator

from userloop.core.errors import ValidationError
from userloop.engage.channels.base import ChannelError, ChannelKind, Delivery, Message, Receipt

if TYPE_CHECKING:
    from userloop.engage.channels.base import Channel

from userloop.engage.channels.sms import ProviderConfig, http_client, http_request, json_reply, send_each

Clock = Callable[[], float]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# --------------------------------------------------------------------------------------------------------------------
# JPush
# --------------------------------------------------------------------------------------------------------------------


class JPushConfig(ProviderConfig):
    """A JPush application: its AppKey and Master Secret, and the API hosts (push and report)."""

    app_key: str
    master_secret: str = Field(repr=False)
    endpoint: str = "https://api.jpush.cn"
    report_endpoint: str = "https://report.jpush.cn"
    platform: Literal["all"] | list[Literal["android", "ios", "hmos"]] = "all"
    apns_production: bool = False
    time_to_live_s: int = Field(86_400, ge=0, le=864_000)
    timeout_s: float = 10.0


class JPush:
    """JPush ``POST /v3/push`` to one ``registration_id`` per message (docs.jiguang.cn/jpush/server/push/
    rest_api_v3_push), HTTP Basic ``base64(appKey:masterSecret)``.

    Idempotence: JPush's push identifier ``cid`` (docs.jiguang.cn/jpush/server/push/rest_api_v3_push_advanced) —
    "a push with a cid already used returns the first push's result and is not pushed again", valid one day. A cid
    must come from JPush's pool (``GET /v3/push/cid``), so it cannot be computed from our key: the adapter draws cids
    from the pool for keys it has not seen and keeps the ``key → cid`` mapping in ``cid_store``. Pass a durable
    mapping (the outbox row of the key) so that a resend after a crash reuses the cid; the default is in memory.

    Receipts: JPush reports delivery by pull (``GET report.jpush.cn/v3/received/detail?msg_ids=…``; the push
    callback service is VIP-only); :meth:`fetch_receipts` asks for them and :meth:`receipts` reads that answer. As
    each push here has one device, a message counts as delivered once any ``*_received`` figure is positive.
    """

    kind: ChannelKind = "push"
    #: Error codes after which the push may succeed later (rate limits, server-side failures).
    RETRYABLE: ClassVar[frozenset[int]] = frozenset({1000, 1030, 2002, 2003, 2008})
    AUTH: ClassVar[frozenset[int]] = frozenset({1004, 1008, 1009})
    CID_POOL_BATCH: ClassVar[int] = 10  # the non-VIP limit of GET /v3/push/cid
    receipt_ack: ClassVar[bytes] = b""

    def __init__(
        self, config: JPushConfig, *, name: str = "jpush", cid_store: MutableMapping[str, str] | None = None
    ) -> None:
        self.config = config
        self.name = name
        self.cid_store: MutableMapping[str, str] = {} if cid_store is None else cid_store
        auth = _basic(config.app_key, config.master_secret)
        self._client = http_client(config.endpoint, config.timeout_s)
        self._client.headers["Authorization"] = auth
        self._report = http_client(config.report_endpoint, config.timeout_s)
        self._report.headers["Authorization"] = auth

    @staticmethod
    def sendno(key: str) -> int:
        """JPush's ``sendno`` (an int32 echoed back), derived from our key for log correlation."""
        return int(hashlib.sha256(key.encode()).hexdigest()[:7], 16)

    def _error(self, response: httpx.Response) -> tuple[int, str]:
        body = json_reply(response, "jpush")
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            raise ChannelError(f"jpush: unexpected answer (HTTP {response.status_code})")
        code = int(error.get("code") or 0)
        if response.status_code == 401 or code in self.AUTH:
            raise ChannelError(f"jpush: credentials refused ({code}): {error.get('message')}")
        return code, str(error.get("message", ""))

    def _cids_for(self, keys: Sequence[str]) -> None:
        missing = [k for k in dict.fromkeys(keys) if k not in self.cid_store]
        while missing:
            count = min(len(missing), self.CID_POOL_BATCH)
            response = http_request(self._client, "jpush", "GET", "/v3/push/cid", params={"count": count})
            if response.status_code != 200:
                code, message = self._error(response)
                raise ChannelError(f"jpush: cannot draw push ids ({code}): {message}")
            cids = json_reply(response, "jpush").get("cidlist") or []
            if not cids:
                raise ChannelError("jpush: the cid pool answered no ids")
            for key, cid in zip(missing, cids, strict=False):
                self.cid_store[key] = str(cid)
            missing = missing[len(cids) :]

    def payload(self, message: Message, cid: str) -> dict[str, Any]:
        """The ``/v3/push`` body for one message."""
        extras = dict(message.params)
        android: dict[str, Any] = {"alert": message.body, "extras": extras}
        ios_alert: str | dict[str, str] = message.body
        if message.subject:
            android["title"] = message.subject
            ios_alert = {"title": message.subject, "body": message.body}
        return {
            "platform": self.config.platform,
            "audience": {"registration_id": [message.to]},
            "notification": {"android": android, "ios": {"alert": ios_alert, "extras": extras}},
            "options": {
                "sendno": self.sendno(message.key),
                "time_to_live": self.config.time_to_live_s,
                "apns_production": self.config.apns_production,
            },
            "cid": cid,
        }

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        self._cids_for([m.key for m in messages])
        return send_each(messages, self._send_one)

    def _send_one(self, m: Message) -> Delivery:
        body = self.payload(m, self.cid_store[m.key])
        response = http_request(self._client, "jpush", "POST", "/v3/push", json=body)
        if response.status_code == 200:
            reply = json_reply(response, "jpush")
            return Delivery(m.key, "sent", provider_id=str(reply.get("msg_id")))
        if response.status_code >= 500 and not response.content.strip().startswith(b"{"):
            return Delivery(m.key, "failed", error=str(response.status_code), retryable=True)
        code, _ = self._error(response)
        retryable = code in self.RETRYABLE or response.status_code in (429, 500, 502, 503, 504)
        return Delivery(m.key, "failed", error=str(code), retryable=retryable)

    def fetch_receipts(self, msg_ids: Sequence[str]) -> list[Receipt]:
        """Ask JPush's Report API for the delivery of these pushes (100 ids per request)."""
        out: list[Receipt] = []
        for i in range(0, len(msg_ids), 100):
            chunk = ",".join(msg_ids[i : i + 100])
            response = http_request(self._report, "jpush", "GET", "/v3/received/detail", params={"msg_ids": chunk})
            if response.status_code != 200:
                code, message = self._error(response)
                raise ChannelError(f"jpush: report refused ({code}): {message}")
            out.extend(self.receipts(response.content, response.headers))
        return out

    def receipts(self, body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
        """Read a ``/v3/received/detail`` answer: ``[{msg_id, jpush_received, android_pns_received,
        ios_apns_received, ios_msg_received, …}]``; a push with any positive ``*_received`` is delivered, one with
        none is not reported yet (no receipt)."""
        del headers
        try:
            items = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValidationError("jpush report: not JSON", code="invalid") from exc
        if not isinstance(items, list):
            raise ValidationError("jpush report: expected a JSON array", code="invalid")
        out: list[Receipt] = []
        for item in items:
            if not isinstance(item, dict) or "msg_id" not in item:
                continue
            received = sum(int(v or 0) for k, v in item.items() if k.endswith("_received") and v is not None)
            if received > 0:
                out.append(Receipt(status="delivered", provider_id=str(item["msg_id"])))
        return out

    def close(self) -> None:
        self._client.close()
        self._report.close()


# --------------------------------------------------------------------------------------------------------------------
# Getui
# --------------------------------------------------------------------------------------------------------------------


class GetuiConfig(ProviderConfig):
    """A Getui application: AppID, AppKey and MasterSecret, the notification's default title and offline TTL."""

    app_id: str
    app_key: str
    master_secret: str = Field(repr=False)
    endpoint: str = "https://restapi.getui.com"
    ttl_ms: int = Field(3_600_000, ge=-1, le=3 * 24 * 3600 * 1000)
    default_title: str = "通知"
    click_type: Literal["startapp", "none"] = "startapp"
    timeout_s: float = 10.0


def getui_request_id(key: str) -> str:
    """Getui's ``request_id`` (10–32 characters) for our key: the first 32 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def getui_receipt_sign(appid: str, cid: str, taskid: str, msgid: str, master_secret: str) -> str:
    """Getui's receipt signature: ``MD5(appid + cid + taskid + msgid + masterSecret)`` (docs.getui.com/getui/server/
    receipt/)."""
    text = appid + cid + taskid + msgid + master_secret
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - Getui's scheme, not our choice


class Getui:
    """Getui RestAPI v2 ``POST /v2/{appId}/push/single/cid`` (docs.getui.com/getui/server/rest_v2/push/) with the
    ``token`` header from ``POST /v2/{appId}/auth`` (``sign = sha256(appkey + timestamp + mastersecret)``).

    ``request_id`` is derived from our key (:func:`getui_request_id`): Getui drops a push whose ``request_id`` it has
    seen ("如果 request_id 重复,会导致消息丢失"), so a resend of the same key is never shown twice. A token past its
    ``expire_time`` is renewed before use; an answer ``10001`` (token wrong or expired) renews it once and repeats
    the same request. ``successed_ignore`` (the device has been inactive over 90 days) is a non-retryable failure.
    Receipts are Getui's callback lines, each signed with MD5 over the ids and the MasterSecret. ``Message.params`` are
    not sent: a Getui notification has no extras (only a ``payload`` that replaces the click action).
    """

    kind: ChannelKind = "push"
    TOKEN_EXPIRED: ClassVar[int] = 10001
    SENT: ClassVar[frozenset[str]] = frozenset({"successed_online", "successed_offline"})
    #: Answer codes after which the push may succeed later (Getui's flow control and server faults).
    RETRYABLE: ClassVar[frozenset[int]] = frozenset({20003, 30000, 30001, 50000})
    receipt_ack: ClassVar[bytes] = b""

    def __init__(self, config: GetuiConfig, *, name: str = "getui", clock: Clock = time.time) -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._client = http_client(f"{config.endpoint.rstrip('/')}/v2/{config.app_id}", config.timeout_s)
        self._token: str | None = None
        self._token_expiry_ms = 0
        self.auth_count = 0

    def _authenticate(self) -> str:
        timestamp = str(int(self._clock() * 1000))
        sign = hashlib.sha256((self.config.app_key + timestamp + self.config.master_secret).encode()).hexdigest()
        body = {"sign": sign, "timestamp": timestamp, "appkey": self.config.app_key}
        response = http_request(self._client, "getui", "POST", "/auth", json=body)
        reply = json_reply(response, "getui")
        self.auth_count += 1
        if not isinstance(reply, dict) or reply.get("code") != 0:
            code = reply.get("code") if isinstance(reply, dict) else response.status_code
            raise ChannelError(f"getui: authentication refused ({code}): {reply}")
        data = reply.get("data") or {}
        self._token = str(data["token"])
        self._token_expiry_ms = int(data.get("expire_time") or 0)
        return self._token

    def _token_now(self) -> str:
        if self._token is None or self._clock() * 1000 >= self._token_expiry_ms - 60_000:
            return self._authenticate()
        return self._token

    def payload(self, message: Message) -> dict[str, Any]:
        return {
            "request_id": getui_request_id(message.key),
            "settings": {"ttl": self.config.ttl_ms},
            "audience": {"cid": [message.to]},
            "push_message": {
                "notification": {
                    "title": message.subject or self.config.default_title,
                    "body": message.body,
                    "click_type": self.config.click_type,
                }
            },
        }

    def _post(self, body: dict[str, Any]) -> tuple[httpx.Response, Any]:
        for attempt in (1, 2):
            token = self._token_now()
            response = http_request(
                self._client, "getui", "POST", "/push/single/cid", json=body, headers={"token": token}
            )
            reply = json_reply(response, "getui")
            if isinstance(reply, dict) and reply.get("code") == self.TOKEN_EXPIRED:
                self._token = None  # renew once, then repeat the same request (same request_id)
                if attempt == 1:
                    continue
                break
            return response, reply
        raise ChannelError("getui: the token was refused again right after renewal")

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        return send_each(messages, self._send_one)

    def _send_one(self, m: Message) -> Delivery:
        response, reply = self._post(self.payload(m))
        if not isinstance(reply, dict):
            raise ChannelError(f"getui: unexpected answer (HTTP {response.status_code})")
        code = reply.get("code")
        if code != 0:
            retryable = code in self.RETRYABLE or response.status_code >= 500
            return Delivery(m.key, "failed", error=str(code), retryable=retryable)
        tasks = reply.get("data") or {}
        taskid, per_cid = next(iter(tasks.items()), (None, {}))
        status = per_cid.get(m.to) if isinstance(per_cid, dict) else None
        if status in self.SENT:
            return Delivery(m.key, "sent", provider_id=str(taskid))
        return Delivery(m.key, "failed", provider_id=taskid, error=str(status), retryable=False)

    def receipts(self, body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
        """Parse a Getui receipt POST: one JSON object a line, ``{appid, cid, taskid, msgid, code, desc, sign,
        …}``; every line's ``sign`` is checked (a wrong one raises :class:`ValidationError` ``token_invalid``).
        ``code`` 200 is delivered; other codes (400 APNs failure, 401 unknown user, 402 inactive…) are failures."""
        del headers
        out: list[Receipt] = []
        for line in body.decode("utf-8").splitlines():
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise ValidationError("getui receipt: a line is not JSON", code="invalid") from exc
            ids = [str(item.get(k, "")) for k in ("appid", "cid", "taskid", "msgid")]
            expected = getui_receipt_sign(ids[0], ids[1], ids[2], ids[3], self.config.master_secret)
            if ids[0] != self.config.app_id or not hmac.compare_digest(expected, str(item.get("sign", ""))):
                raise ValidationError("getui receipt: the sign does not match", code="token_invalid")
            ok = str(item.get("code")) == "200"
            at = item.get("recvtime")
            out.append(
                Receipt(
                    status="delivered" if ok else "failed",
                    provider_id=ids[2],
                    error=None if ok else str(item.get("code")),
                    at_ms=int(at) if isinstance(at, int | str) and str(at).isdigit() else None,
                )
            )
        return out

    def close(self) -> None:
        self._client.close()


# --------------------------------------------------------------------------------------------------------------------
# FCM
# --------------------------------------------------------------------------------------------------------------------

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def service_account_jwt(
    *, client_email: str, private_key_pem: str, private_key_id: str | None, token_uri: str, now: float
) -> str:
    """The RS256-signed JWT a Google service account exchanges for an access token (RFC 7523; developers.google.com/
    identity/protocols/oauth2/service-account#authorizingrequests): ``iss`` the account, ``scope`` FCM, ``aud`` the
    token URI, valid one hour."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValidationError("fcm: the service account key is not an RSA key", code="channel_invalid")
    header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
    if private_key_id:
        header["kid"] = private_key_id
    iat = int(now)
    claims = {"iss": client_email, "scope": FCM_SCOPE, "aud": token_uri, "iat": iat, "exp": iat + 3600}
    signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64url(signature)


class FcmConfig(ProviderConfig):
    """A Firebase project and a service account allowed to send (its e-mail, PEM key and key id), or, where no
    key can be used, a fixed OAuth access token."""

    project_id: str
    client_email: str | None = None
    private_key_pem: str | None = Field(None, repr=False)
    private_key_id: str | None = None
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
    access_token: str | None = Field(None, repr=False)
    endpoint: str = "https://fcm.googleapis.com"
    timeout_s: float = 10.0

    @model_validator(mode="after")
    def _credentials(self) -> FcmConfig:
        if not self.access_token and not (self.client_email and self.private_key_pem):
            raise ValueError("set client_email and private_key_pem (a service account), or access_token")
        return self


class Fcm:
    """FCM HTTP v1 ``POST /v1/projects/{project}/messages:send`` (firebase.google.com/docs/reference/fcm/rest/v1/
    projects.messages/send) with ``Authorization: Bearer`` from the service account's JWT exchanged at the token URI
    (kept until a minute before it expires, renewed once on a 401).

    Errors follow ``google.firebase.fcm.v1.FcmError`` (firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode):
    ``UNREGISTERED`` (the app is gone from the device) → ``failed`` ``unregistered``, not retryable — a reachability
    fact for the person; ``UNAVAILABLE``, ``INTERNAL``, ``QUOTA_EXCEEDED`` → retryable; ``INVALID_ARGUMENT``,
    ``SENDER_ID_MISMATCH``, ``THIRD_PARTY_AUTH_ERROR`` → not retryable. FCM has no idempotency id and sends no
    delivery callbacks (delivery data goes to a BigQuery export), so :meth:`receipts` refuses.
    """

    kind: ChannelKind = "push"
    RETRYABLE: ClassVar[frozenset[str]] = frozenset({"UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED", "UNSPECIFIED_ERROR"})
    receipt_ack: ClassVar[bytes] = b""

    def __init__(self, config: FcmConfig, *, name: str = "fcm", clock: Clock = time.time) -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._client = http_client(config.endpoint, config.timeout_s)
        self._token: str | None = config.access_token
        self._token_expiry = float("inf") if config.access_token else 0.0
        self.token_exchanges = 0

    def _exchange(self) -> str:
        assert self.config.client_email and self.config.private_key_pem
        assertion = service_account_jwt(
            client_email=self.config.client_email,
            private_key_pem=self.config.private_key_pem,
            private_key_id=self.config.private_key_id,
            token_uri=self.config.token_uri,
            now=self._clock(),
        )
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        response = http_request(self._client, "fcm", "POST", self.config.token_uri, data=form)
        reply = json_reply(response, "fcm")
        self.token_exchanges += 1
        if response.status_code != 200 or not isinstance(reply, dict) or not reply.get("access_token"):
            raise ChannelError(f"fcm: the token exchange was refused (HTTP {response.status_code}): {reply}")
        self._token = str(reply["access_token"])
        self._token_expiry = self._clock() + float(reply.get("expires_in", 3600)) - 60
        return self._token

    def _bearer(self) -> str:
        if self._token is None or self._clock() >= self._token_expiry:
            return self._exchange()
        return self._token

    @staticmethod
    def error_code(reply: Any) -> str:
        """The FcmError code of an error answer (``details[].errorCode``), else the canonical ``status``."""
        error = reply.get("error") if isinstance(reply, dict) else None
        if not isinstance(error, dict):
            return "UNSPECIFIED_ERROR"
        for detail in error.get("details") or []:
            if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("FcmError"):
                return str(detail.get("errorCode") or "UNSPECIFIED_ERROR")
        return str(error.get("status") or "UNSPECIFIED_ERROR")

    def payload(self, message: Message) -> dict[str, Any]:
        notification = {"body": message.body}
        if message.subject:
            notification["title"] = message.subject
        body: dict[str, Any] = {"token": message.to, "notification": notification}
        if message.params:
            body["data"] = {str(k): str(v) for k, v in message.params.items()}
        return {"message": body}

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        return send_each(messages, self._send_one)

    def _send_one(self, message: Message) -> Delivery:
        path = f"/v1/projects/{self.config.project_id}/messages:send"
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._bearer()}"}
            response = http_request(self._client, "fcm", "POST", path, json=self.payload(message), headers=headers)
            if response.status_code == 200:
                return Delivery(message.key, "sent", provider_id=str(json_reply(response, "fcm").get("name")))
            try:
                reply = response.json()
            except ValueError:
                reply = None
            code = self.error_code(reply)
            if code == "UNAUTHENTICATED":
                if attempt == 1 and not self.config.access_token:
                    self._token = None  # the token was revoked or expired early: exchange once more
                    continue
                raise ChannelError("fcm: the access token was refused")
            if code == "PERMISSION_DENIED":
                raise ChannelError(f"fcm: the service account may not send for project {self.config.project_id}")
            retryable = code in self.RETRYABLE or response.status_code in (429, 500, 502, 503, 504)
            return Delivery(message.key, "failed", error=code.lower(), retryable=retryable)
        raise ChannelError("fcm: the access token was refused")  # pragma: no cover - the loop returns or raises

    def receipts(self, body: bytes, headers: Mapping[str, str]) -> list[Receipt]:
        """FCM sends no delivery callbacks; there is nothing to parse."""
        del body, headers
        raise ValidationError("fcm: FCM sends no delivery callbacks (use its BigQuery export)", code="channel_invalid")

    def close(self) -> None:
        self._client.close()


if TYPE_CHECKING:  # each adapter is a Channel (mypy checks the protocol here)

    def _is_channel(j: JPush, g: Getui, f: Fcm) -> tuple[Channel, Channel, Channel]:
        return j, g, f
