"""A local Getui (个推) RestAPI v2 for tests (docs.getui.com/getui/server/rest_v2/): ``POST /v2/{appId}/auth``
(``sign = sha256(appkey + timestamp + mastersecret)``, a 10-minute timestamp window) issuing a token,
``POST /v2/{appId}/push/single/cid`` behind the ``token`` header, and receipt callbacks (one JSON object a line,
``sign = MD5(appid + cid + taskid + msgid + masterSecret)``, docs.getui.com/getui/server/receipt/).

Modelled: an unknown or expired token answers ``{"code": 10001}``; a push whose ``request_id`` was already accepted
is dropped (Getui: "如果 request_id 重复,会导致消息丢失") — it answers the first push's result and nothing reaches the
device again; ``request_id`` must be 10–32 characters and ``audience.cid`` hold exactly one cid. Codes other than 0
and 10001 (20001 for a refused sign or a malformed body) are this fake's choice: Getui's table was not available to
check them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from userloop.engage.fakes.server import FakeServer, Request, Response, json_response, post


class GetuiFake:
    """See the module docstring. ``fail(cid, result)``: a status string (``successed_ignore``) or an error code."""

    def __init__(
        self, app_id: str, app_key: str, master_secret: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.app_id = app_id
        self.app_key = app_key
        self.master_secret = master_secret
        self.clock = clock
        self.deliveries: list[dict[str, Any]] = []
        self.failures: dict[str, str | int] = {}
        self.auth_calls = 0
        self.token_refusals = 0  # requests answered 10001
        self._tokens: dict[str, float] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self.server = FakeServer(self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    def fail(self, cid: str, result: str | int) -> None:
        self.failures[cid] = result

    def expire_tokens(self) -> None:
        """Every issued token stops working (as after its 24 hours)."""
        with self._lock:
            self._tokens.clear()

    @staticmethod
    def _reply(code: int, msg: str, data: Any = None) -> Response:
        body: dict[str, Any] = {"code": code, "msg": msg}
        if data is not None:
            body["data"] = data
        return json_response(body)

    def _handle(self, request: Request) -> Response:
        prefix = f"/v2/{self.app_id}"
        if request.method != "POST" or not request.path.startswith(prefix + "/"):
            return json_response({"code": 404, "msg": "not found"}, 404)
        route = request.path[len(prefix) :]
        try:
            body = request.json()
        except ValueError:
            return self._reply(20001, "body is not json")
        if not isinstance(body, dict):
            return self._reply(20001, "body is not an object")
        if route == "/auth":
            return self._auth(body)
        with self._lock:
            expiry = self._tokens.get(request.headers.get("token", ""))
        if expiry is None or self.clock() * 1000 >= expiry:
            self.token_refusals += 1
            return self._reply(10001, "token错误或失效")
        if route == "/push/single/cid":
            return self._single(body)
        return json_response({"code": 404, "msg": "not found"}, 404)

    def _auth(self, body: Mapping[str, Any]) -> Response:
        timestamp = str(body.get("timestamp", ""))
        if not timestamp.isdigit() or abs(int(timestamp) - self.clock() * 1000) > 600_000:
            return self._reply(20001, "timestamp error")
        expected = hashlib.sha256((self.app_key + timestamp + self.master_secret).encode()).hexdigest()
        if body.get("appkey") != self.app_key or not hmac.compare_digest(expected, str(body.get("sign", ""))):
            return self._reply(20001, "appkey or sign error")
        token = uuid.uuid4().hex + uuid.uuid4().hex
        expire = int(self.clock() * 1000) + 86_400_000
        with self._lock:
            self.auth_calls += 1
            self._tokens[token] = expire
        return self._reply(0, "success", {"expire_time": str(expire), "token": token})

    def _single(self, body: Mapping[str, Any]) -> Response:
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not 10 <= len(request_id) <= 32:
            return self._reply(20001, "request_id length must be 10 to 32")
        cids = (body.get("audience") or {}).get("cid")
        if not isinstance(cids, list) or len(cids) != 1:
            return self._reply(20001, "audience.cid must hold exactly one cid")
        notification = (body.get("push_message") or {}).get("notification")
        if not isinstance(notification, dict) or not notification.get("title") or not notification.get("body"):
            return self._reply(20001, "push_message.notification needs title and body")
        ttl = (body.get("settings") or {}).get("ttl", 3_600_000)
        if not isinstance(ttl, int) or not -1 <= ttl <= 3 * 86_400_000:
            return self._reply(20001, "settings.ttl out of range")
        cid = cids[0]
        with self._lock:
            if request_id in self._results:
                return self._reply(0, "", self._results[request_id])  # dropped: the first result, no delivery
            failure = self.failures.get(cid)
            if isinstance(failure, int):
                return self._reply(failure, f"simulated error {failure}")
            self._seq += 1
            taskid = f"RASS_1201_{self._seq:08d}{uuid.uuid4().hex[:12]}"
            status = failure or "successed_online"
            data = {taskid: {cid: status}}
            self._results[request_id] = data
            if status != "successed_ignore":
                self.deliveries.append(
                    {
                        "taskid": taskid,
                        "cid": cid,
                        "request_id": request_id,
                        "notification": notification,
                        "ttl": ttl,
                        "reported": False,
                    }
                )
        return self._reply(0, "", data)

    def receipt_body(self, failed: Mapping[str, str] | None = None) -> bytes:
        """The next receipt POST: a line per unreported delivery, ``code`` 200 unless ``failed`` names the cid."""
        failed = failed or {}
        lines = []
        with self._lock:
            for d in self.deliveries:
                if d["reported"]:
                    continue
                d["reported"] = True
                msgid = hashlib.md5(d["request_id"].encode()).hexdigest()  # noqa: S324 - an id, not security
                text = self.app_id + d["cid"] + d["taskid"] + msgid + self.master_secret
                sign = hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - Getui's receipt scheme
                code = failed.get(d["cid"], "200")
                lines.append(
                    json.dumps(
                        {
                            "appid": self.app_id,
                            "cid": d["cid"],
                            "taskid": d["taskid"],
                            "msgid": msgid,
                            "code": code,
                            "desc": "成功" if code == "200" else "失败",
                            "sign": sign,
                            "actionId": "0",
                            "recvtime": str(int(self.clock() * 1000) + 2000),
                        },
                        ensure_ascii=False,
                    )
                )
        return "\n".join(lines).encode("utf-8")

    def push_receipts(self, callback_url: str, failed: Mapping[str, str] | None = None) -> int:
        return post(callback_url, self.receipt_body(failed), {"Content-Type": "text/plain; charset=utf-8"})
