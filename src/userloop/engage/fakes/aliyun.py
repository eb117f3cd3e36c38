"""A local Aliyun SMS (dysmsapi 2017-05-25) for tests: ``SendSms`` over RPC-style requests signed with signature
v1 (help.aliyun.com/document_detail/315526), and ``SmsReport`` receipts pushed as a JSON array.

It checks what Aliyun checks before sending: the common parameters (``Format``, ``Version``, ``SignatureMethod``
HMAC-SHA1, ``SignatureVersion`` 1.0), a ``Timestamp`` within 15 minutes (``InvalidTimeStamp.Expired``), a
``SignatureNonce`` not seen before (``SignatureNonceUsed``), a known ``AccessKeyId``
(``InvalidAccessKeyId.NotFound``, HTTP 404) and the signature (``SignatureDoesNotMatch``, HTTP 400); then the
business parameters (``isv.MOBILE_NUMBER_ILLEGAL``, ``isv.INVALID_JSON_PARAM``…, HTTP 200 with the code), as
Aliyun answers them. Like Aliyun it has no idempotence: a repeated call is another SMS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from userloop.engage.fakes.server import CallbackSink, FakeServer, Request, Response, json_response, post

_NUMBER = re.compile(r"^(1\d{10}|[2-9]\d{7,14})$")
_CST = timezone(timedelta(hours=8))


def _enc(text: str) -> str:
    # RFC 3986 unreserved characters stay; everything else is %XX of its UTF-8 bytes
    return "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "-_.~") else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
        for ch in text
    )


def expected_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """The fake's own computation of Aliyun's signature v1, written apart from the adapter's."""
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(_enc(k) + "=" + _enc(v) for k, v in pairs)
    to_sign = method + "&" + _enc("/") + "&" + _enc(canonical)
    key = (secret + "&").encode("utf-8")
    return base64.b64encode(hmac.new(key, to_sign.encode("utf-8"), hashlib.sha1).digest()).decode()


class AliyunSmsFake:
    """Serves ``POST /`` (form) and ``GET /?…`` like ``dysmsapi.aliyuncs.com``; see the module docstring."""

    def __init__(self, access_key_id: str, access_key_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.clock = clock
        self.accepted: list[dict[str, Any]] = []
        self.failures: dict[str, str] = {}
        self.refused: list[str] = []
        self._nonces: set[str] = set()
        self._lock = threading.Lock()
        self._seq = 0
        self.server = FakeServer(self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    def fail(self, phone: str, code: str) -> None:
        """Answer ``SendSms`` for ``phone`` (as sent: bare mainland number) with the business error ``code``."""
        self.failures[phone] = code

    def stop(self) -> None:
        self.server.stop()

    def _error(self, status: int, code: str, message: str) -> Response:
        self.refused.append(code)
        request_id = str(uuid.uuid4()).upper()
        return json_response(
            {
                "RequestId": request_id,
                "HostId": "dysmsapi.aliyuncs.com",
                "Code": code,
                "Message": message,
                "Recommend": "https://api.aliyun.com/troubleshoot",
            },
            status,
        )

    def _handle(self, request: Request) -> Response:
        if request.path != "/":
            return self._error(404, "InvalidAction.NotFound", "Specified api is not found")
        params = request.query_params() if request.method == "GET" else {**request.query_params(), **request.form()}
        for name in (
            "AccessKeyId",
            "Action",
            "Format",
            "SignatureMethod",
            "SignatureNonce",
            "SignatureVersion",
            "Timestamp",
            "Version",
            "Signature",
        ):
            if not params.get(name):
                return self._error(400, f"Missing{name}", f"{name} is mandatory for this action.")
        if (
            params["Version"] != "2017-05-25"
            or params["SignatureMethod"] != "HMAC-SHA1"
            or params["SignatureVersion"] != "1.0"
        ):
            return self._error(400, "InvalidParameter", "SignatureMethod/SignatureVersion/Version is not supported")
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return self._error(400, "InvalidTimeStamp.Format", "Specified time stamp does not match the format.")
        if abs(stamp - self.clock()) > 900:
            return self._error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        if params["AccessKeyId"] != self.access_key_id:
            return self._error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        expected = expected_signature(request.method, params, self.access_key_secret)
        if not hmac.compare_digest(expected.encode(), params["Signature"].encode()):
            return self._error(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        with self._lock:
            if params["SignatureNonce"] in self._nonces:
                return self._error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces.add(params["SignatureNonce"])
        if params["Action"] != "SendSms":
            return self._error(404, "InvalidAction.NotFound", "Specified api is not found")
        return self._send_sms(params)

    def _send_sms(self, params: Mapping[str, str]) -> Response:
        request_id = str(uuid.uuid4()).upper()
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return self._error(400, f"Missing{name}", f"{name} is mandatory for this action.")
        phones = params["PhoneNumbers"].split(",")
        if len(phones) > 1000:
            return json_response(
                {"RequestId": request_id, "Code": "isv.MOBILE_COUNT_OVER_LIMIT", "Message": "手机号码数量超过限制"}
            )
        if not all(_NUMBER.match(p) for p in phones):
            return json_response(
                {"RequestId": request_id, "Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "手机号码格式错误"}
            )
        template_params: Any = {}
        if params.get("TemplateParam"):
            try:
                template_params = json.loads(params["TemplateParam"])
            except ValueError:
                template_params = None
            if not isinstance(template_params, dict):
                return json_response(
                    {
                        "RequestId": request_id,
                        "Code": "isv.INVALID_JSON_PARAM",
                        "Message": "JSON参数不合法,只接受字符串值",
                    }
                )
        for phone in phones:
            if phone in self.failures:
                code = self.failures[phone]
                return json_response({"RequestId": request_id, "Code": code, "Message": f"模拟失败: {code}"})
        with self._lock:
            self._seq += 1
            biz_id = f"{900000000000000000 + self._seq}^0"
            for phone in phones:
                self.accepted.append(
                    {
                        "phone": phone,
                        "biz_id": biz_id,
                        "out_id": params.get("OutId"),
                        "sign_name": params["SignName"],
                        "template": params["TemplateCode"],
                        "params": template_params,
                        "send_time": self.clock(),
                        "reported": False,
                    }
                )
        return json_response({"RequestId": request_id, "BizId": biz_id, "Code": "OK", "Message": "OK"})

    def report_body(self, undelivered: Mapping[str, str] | None = None) -> bytes:
        """The next ``SmsReport`` body: every accepted, unreported SMS, failed with the given ``err_code`` for the
        numbers in ``undelivered`` and ``DELIVERED`` otherwise."""
        undelivered = undelivered or {}
        items = []
        with self._lock:
            for rec in self.accepted:
                if rec["reported"]:
                    continue
                rec["reported"] = True
                code = undelivered.get(rec["phone"])
                fmt = "%Y-%m-%d %H:%M:%S"
                items.append(
                    {
                        "phone_number": rec["phone"],
                        "send_time": datetime.fromtimestamp(rec["send_time"], _CST).strftime(fmt),
                        "report_time": datetime.fromtimestamp(self.clock() + 5, _CST).strftime(fmt),
                        "success": code is None,
                        "err_code": code or "DELIVERED",
                        "err_msg": "用户接收成功" if code is None else "用户接收失败",
                        "sms_size": "1",
                        "biz_id": rec["biz_id"],
                        "out_id": rec["out_id"],
                    }
                )
        return json.dumps(items, ensure_ascii=False).encode("utf-8")

    def push_receipts(self, callback_url: str, undelivered: Mapping[str, str] | None = None) -> int:
        """POST the next ``SmsReport`` to ``callback_url`` as Aliyun does (JSON, unsigned); the receiver's status."""
        return post(callback_url, self.report_body(undelivered), {"Content-Type": "application/json"})


__all__ = ["AliyunSmsFake", "CallbackSink", "expected_signature"]
