"""A local JPush REST API v3 for tests: ``GET /v3/push/cid`` (the cid pool), ``POST /v3/push`` and the Report API's
``GET /v3/received/detail``, all behind HTTP Basic ``base64(appKey:masterSecret)``
(docs.jiguang.cn/jpush/server/push/rest_api_v3_push, …_push_advanced, …_report).

Modelled as JPush documents it: a wrong key or secret is ``401 {"error": {"code": 1004, "message": "Authen
failed"}}``; a malformed push is ``400`` code 1003; a cid that the pool did not issue is refused (1003); a cid
already used returns the first push's ``{sendno, msg_id}`` and pushes nothing; a device told to fail answers its
code (e.g. 1011 "cannot find user by this audience").
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from userloop.engage.fakes.server import FakeServer, Request, Response, json_response

_STATUS = {1011: 400, 1003: 400, 2002: 429, 2003: 429, 1000: 500, 1030: 503}


class JPushFake:
    """See the module docstring. ``deliveries`` are the pushes shown on devices (one per accepted push)."""

    def __init__(self, app_key: str, master_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self.app_key = app_key
        self.master_secret = master_secret
        self.clock = clock
        self.deliveries: list[dict[str, Any]] = []
        self.failures: dict[str, int] = {}
        self.offline: set[str] = set()
        self.push_calls = 0
        self._issued: dict[str, float] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self.server = FakeServer(self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    def fail(self, registration_id: str, code: int) -> None:
        self.failures[registration_id] = code

    @staticmethod
    def _error(status: int, code: int, message: str, msg_id: str | None = None) -> Response:
        body: dict[str, Any] = {"error": {"code": code, "message": message}}
        if msg_id:
            body["msg_id"] = msg_id
        return json_response(body, status)

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            key, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return key == self.app_key and hmac.compare_digest(secret.encode(), self.master_secret.encode())

    def _handle(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(401, 1004, "Authen failed")
        if request.method == "GET" and request.path == "/v3/push/cid":
            return self._cids(request)
        if request.method == "POST" and request.path == "/v3/push":
            return self._push(request)
        if request.method == "GET" and request.path == "/v3/received/detail":
            return self._received(request)
        return self._error(404, 1003, "Not found")

    def _cids(self, request: Request) -> Response:
        try:
            count = int(request.query_params().get("count", "1"))
        except ValueError:
            return self._error(400, 1003, "count is invalid")
        count = max(1, min(count, 10))  # a non-VIP application gets at most 10 at a time
        with self._lock:
            cids = [f"{self.app_key}-{uuid.uuid4()}" for _ in range(count)]
            for cid in cids:
                self._issued[cid] = self.clock()
        return json_response({"cidlist": cids})

    def _push(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self._error(400, 1003, "Invalid json")
        if not isinstance(body, dict) or "platform" not in body or "audience" not in body:
            return self._error(400, 1003, "Missing parameter: platform or audience")
        if "notification" not in body and "message" not in body:
            return self._error(400, 1003, "Either notification or message should be present")
        audience = body["audience"]
        regids = audience.get("registration_id") if isinstance(audience, dict) else None
        if not isinstance(regids, list) or not regids or len(regids) > 1000:
            return self._error(400, 1003, "audience.registration_id must hold 1 to 1000 ids")
        options = body.get("options") or {}
        sendno = options.get("sendno", 0)
        cid = body.get("cid")
        with self._lock:
            self.push_calls += 1
            if cid is not None:
                issued = self._issued.get(str(cid))
                if issued is None or self.clock() - issued > 86_400:
                    return self._error(400, 1003, "cid is invalid or expired")
                if cid in self._results:
                    return json_response(self._results[cid])  # the first result, nothing pushed again
            self._seq += 1
            msg_id = str(18_100_000_000_000_000 + self._seq)
            for regid in regids:
                if regid in self.failures:
                    code = self.failures[regid]
                    message = "cannot find user by this audience" if code == 1011 else f"simulated error {code}"
                    return self._error(_STATUS.get(code, 400), code, message, msg_id)
            result = {"sendno": str(sendno), "msg_id": msg_id}
            if cid is not None:
                self._results[str(cid)] = result
            for regid in regids:
                self.deliveries.append(
                    {
                        "msg_id": msg_id,
                        "registration_id": regid,
                        "cid": cid,
                        "notification": body.get("notification"),
                        "options": options,
                    }
                )
        return json_response(result)

    def _received(self, request: Request) -> Response:
        ids = [i for i in request.query_params().get("msg_ids", "").split(",") if i]
        if not ids or len(ids) > 100:
            return self._error(400, 1003, "msg_ids must hold 1 to 100 ids")
        out = []
        for msg_id in ids:
            devices = [d["registration_id"] for d in self.deliveries if d["msg_id"] == msg_id]
            received = sum(1 for d in devices if d not in self.offline)
            out.append(
                {
                    "msg_id": msg_id,
                    "jpush_received": received,
                    "android_pns_sent": 0,
                    "android_pns_received": 0,
                    "ios_apns_sent": 0,
                    "ios_apns_received": 0,
                    "ios_msg_received": 0,
                    "live_acivity_sent": 0,
                    "live_acivity_received": 0,
                    "quickapp_jpush_received": 0,
                    "quickapp_pns_sent": 0,
                }
            )
        return json_response(out)
