"""A local Twilio Messaging API for tests: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP
Basic authentication (twilio.com/docs/messaging/api/message-resource#create-a-message-resource), Twilio's error body
``{code, message, more_info, status}`` (20003 authentication, 21211 invalid ``To``, 21602 missing ``Body``, 21603
missing ``From``), and status callbacks POSTed form-encoded with ``X-Twilio-Signature``
(twilio.com/docs/usage/security).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from userloop.engage.fakes.server import FakeServer, Request, Response, json_response, post

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PATH = re.compile(r"^/2010-04-01/Accounts/([A-Za-z0-9]+)/Messages\.json$")


def callback_signature(url: str, form: Mapping[str, str], auth_token: str) -> str:
    """The fake's own ``X-Twilio-Signature``: URL + each ``name + value`` in name order, HMAC-SHA1, base64."""
    data = url
    for name in sorted(form):
        data += name + form[name]
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode("utf-8"), hashlib.sha1).digest()).decode()


class TwilioFake:
    """See the module docstring. ``fail(number, code)`` answers ``To=number`` with that Twilio error code."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.accepted: list[dict[str, Any]] = []
        self.failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self.server = FakeServer(self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    def fail(self, number: str, code: int) -> None:
        self.failures[number] = code

    @staticmethod
    def _error(status: int, code: int, message: str) -> Response:
        return json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status,
        )

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.account_sid and hmac.compare_digest(password.encode(), self.auth_token.encode())

    def _handle(self, request: Request) -> Response:
        match = _PATH.match(request.path)
        if request.method != "POST" or not match:
            return self._error(404, 20404, "The requested resource was not found")
        if not self._authenticated(request) or match.group(1) != self.account_sid:
            return self._error(401, 20003, "Authenticate")
        form = request.form()
        to = form.get("To", "")
        if not _E164.match(to):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return self._error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        if not form.get("Body"):
            return self._error(400, 21602, "Message body is required.")
        if len(form["Body"]) > 1600:
            return self._error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if to in self.failures:
            code = self.failures[to]
            return self._error(429 if code == 20429 else 400, code, f"simulated error {code}")
        with self._lock:
            self._seq += 1
            sid = "SM" + hashlib.md5(f"{self.account_sid}{self._seq}".encode()).hexdigest()  # noqa: S324 - an id
            record = {
                "sid": sid,
                "to": to,
                "from": form.get("From"),
                "body": form["Body"],
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "status_callback": form.get("StatusCallback"),
                "reported": False,
            }
            self.accepted.append(record)
        status = "accepted" if form.get("MessagingServiceSid") else "queued"
        return json_response(
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": status,
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "error_code": None,
                "error_message": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
            201,
        )

    def callback(self, sid: str, status: str, error_code: str | None = None) -> tuple[bytes, dict[str, str], str]:
        """The status callback Twilio would POST for message ``sid``: (body, headers, URL)."""
        record = next(r for r in self.accepted if r["sid"] == sid)
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": record["from"] or "",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": record["to"],
        }
        if error_code:
            form["ErrorCode"] = error_code
        url = record["status_callback"]
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": callback_signature(url, form, self.auth_token),
            "I-Twilio-Idempotency-Token": f"{sid}-{status}",
        }
        return urlencode(form).encode(), headers, url

    def push_receipt(self, sid: str, status: str, error_code: str | None = None) -> int:
        body, headers, url = self.callback(sid, status, error_code)
        return post(url, body, headers)
