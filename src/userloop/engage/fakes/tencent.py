"""A local Tencent Cloud SMS (``sms.tencentcloudapi.com``, API 2021-01-11 ``SendSms``) for tests.

It checks a request the way Tencent Cloud API 3.0 does (cloud.tencent.com/document/api/382/52072): the
``X-TC-Action``/``X-TC-Version`` headers, an ``X-TC-Timestamp`` within 5 minutes (``AuthFailure.SignatureExpire``),
a known SecretId (``AuthFailure.SecretIdNotFound``) and the TC3-HMAC-SHA256 ``Authorization`` recomputed from the
headers the client says it signed (``AuthFailure.SignatureFailure``); errors come as HTTP 200 with
``Response.Error``. Then ``SendSms``'s shape: ``PhoneNumberSet`` of E.164 numbers, at most 200, the SDK app id, and
one ``SendStatusSet`` entry per number. Status callbacks are POSTed as Tencent does: an unsigned JSON array.
"""

from __future__ import annotations

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

from userloop.engage.fakes.server import FakeServer, Request, Response, json_response, post

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([a-z]+)/tc3_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$"
)
_CST = timezone(timedelta(hours=8))


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


class TencentSmsFake:
    """Serves ``POST /`` like ``sms.tencentcloudapi.com``; see the module docstring."""

    def __init__(
        self, secret_id: str, secret_key: str, sdk_app_id: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.clock = clock
        self.accepted: list[dict[str, Any]] = []
        self.requests = 0
        self.failures: dict[str, str] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self.server = FakeServer(self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    def fail(self, phone: str, code: str) -> None:
        """Answer ``phone`` (E.164) in ``SendStatusSet`` with ``code`` instead of ``Ok``."""
        self.failures[phone] = code

    @staticmethod
    def _error(code: str, message: str) -> Response:
        return json_response(
            {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}}
        )

    def _check_auth(self, request: Request) -> Response | None:
        headers = request.headers
        match = _AUTH.match(headers.get("authorization", ""))
        if not match:
            return self._error("AuthFailure.InvalidAuthorization", "Authorization is invalid.")
        secret_id, date, service, signed, signature = match.groups()
        try:
            stamp = int(headers.get("x-tc-timestamp", ""))
        except ValueError:
            return self._error("AuthFailure.InvalidAuthorization", "X-TC-Timestamp is invalid.")
        if abs(stamp - self.clock()) > 300:
            return self._error("AuthFailure.SignatureExpire", "Signature expired.")
        if secret_id != self.secret_id:
            return self._error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        names = signed.split(";")
        if "content-type" not in names or "host" not in names or service != "sms":
            return self._error("AuthFailure.InvalidAuthorization", "content-type and host must be signed.")
        if datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d") != date:
            return self._error("AuthFailure.SignatureFailure", "The credential date is not the timestamp's.")
        # the documented canonical form: header names and values lower-cased and trimmed, in SignedHeaders order
        canonical_headers = "".join(f"{n}:{headers.get(n, '').strip().lower()}\n" for n in names)
        canonical = "POST\n/\n\n" + canonical_headers + "\n" + signed + "\n" + hashlib.sha256(request.body).hexdigest()
        scope = f"{date}/{service}/tc3_request"
        to_sign = f"TC3-HMAC-SHA256\n{stamp}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
        key = _sign(_sign(_sign(("TC3" + self.secret_key).encode(), date), service), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return self._error("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")
        return None

    def _handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/":
            return self._error("UnsupportedOperation", "Only POST / is served.")
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        if request.headers.get("x-tc-action") != "SendSms" or request.headers.get("x-tc-version") != "2021-01-11":
            return self._error("InvalidAction", "The action or version does not exist.")
        try:
            body = request.json()
        except ValueError:
            return self._error("InvalidParameter", "The body is not JSON.")
        if not isinstance(body, dict):
            return self._error("InvalidParameter", "The body is not an object.")
        numbers = body.get("PhoneNumberSet")
        for name in ("SmsSdkAppId", "TemplateId", "PhoneNumberSet"):
            if name not in body:
                return self._error("MissingParameter", f"The parameter `{name}` is missing.")
        if body["SmsSdkAppId"] != self.sdk_app_id:
            return self._error("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId verify failed.")
        if not isinstance(numbers, list) or not numbers:
            return self._error("InvalidParameterValue.IncorrectPhoneNumber", "PhoneNumberSet is empty.")
        if len(numbers) > 200:
            return self._error("LimitExceeded.PhoneNumberCountLimit", "More than 200 numbers in one request.")
        if len({str(n).startswith("+86") for n in numbers}) > 1:
            return self._error(
                "FailedOperation.ContainDomesticAndInternationalPhoneNumber",
                "The request mixes mainland and international numbers.",
            )
        params = body.get("TemplateParamSet") or []
        context = str(body.get("SessionContext") or "")
        if len(context.encode()) > 512:
            return self._error("InvalidParameterValue.ContentLengthLimit", "SessionContext is over 512 bytes.")
        statuses = []
        with self._lock:
            self.requests += 1
            for number in numbers:
                self._seq += 1
                serial = f"2645:{self._seq:020d}"
                code = self.failures.get(number)
                if code is None and not (isinstance(number, str) and _E164.match(number)):
                    code = "InvalidParameterValue.IncorrectPhoneNumber"
                if code is None:
                    self.accepted.append(
                        {
                            "phone": number,
                            "serial": serial,
                            "params": params,
                            "sign_name": body.get("SignName"),
                            "template": body["TemplateId"],
                            "context": context,
                            "send_time": self.clock(),
                            "reported": False,
                        }
                    )
                statuses.append(
                    {
                        "SerialNo": serial if code is None else "",
                        "PhoneNumber": number,
                        "Fee": 1 if code is None else 0,
                        "SessionContext": context,
                        "Code": code or "Ok",
                        "Message": "send success" if code is None else code,
                        "IsoCode": "CN" if str(number).startswith("+86") else "XX",
                    }
                )
        return json_response({"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}})

    def report_body(self, undelivered: Mapping[str, str] | None = None) -> bytes:
        """The next status callback: one entry per accepted, unreported SMS (``FAIL`` with the given ``errmsg`` for
        the E.164 numbers in ``undelivered``)."""
        undelivered = undelivered or {}
        items = []
        with self._lock:
            for rec in self.accepted:
                if rec["reported"]:
                    continue
                rec["reported"] = True
                err = undelivered.get(rec["phone"])
                number: str = rec["phone"]
                nation, mobile = ("86", number[3:]) if number.startswith("+86") else (number[1:3], number[3:])
                items.append(
                    {
                        "user_receive_time": datetime.fromtimestamp(self.clock() + 3, _CST).strftime(
                            "%Y-%m-%d %H:%M:%S"
                        ),
                        "nationcode": nation,
                        "mobile": mobile,
                        "report_status": "SUCCESS" if err is None else "FAIL",
                        "errmsg": err or "DELIVRD",
                        "description": "用户短信送达成功" if err is None else "用户短信接收失败",
                        "sid": rec["serial"],
                    }
                )
        return json.dumps(items, ensure_ascii=False).encode("utf-8")

    def push_receipts(self, callback_url: str, undelivered: Mapping[str, str] | None = None) -> int:
        return post(callback_url, self.report_body(undelivered), {"Content-Type": "application/json"})
