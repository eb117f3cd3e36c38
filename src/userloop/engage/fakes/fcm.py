"""A local FCM HTTP v1 and Google OAuth token endpoint for tests.

``POST /token`` takes a service account's RS256 JWT (RFC 7523 ``jwt-bearer`` grant) and checks it as Google does:
the signature against the account's public key, ``iss``, ``aud`` (this token URL), the FCM ``scope``, ``iat``
within five minutes and a lifetime of at most an hour; a bad one is ``400 {"error": "invalid_grant"}``.
``POST /v1/projects/{project}/messages:send`` checks ``Authorization: Bearer`` (``401 UNAUTHENTICATED``), the
project (``403 PERMISSION_DENIED``) and the message's shape (exactly one target, string-valued ``data``,
``400 INVALID_ARGUMENT``), and answers ``{"name": "projects/…/messages/…"}`` or an error carrying a
``google.firebase.fcm.v1.FcmError`` detail (``UNREGISTERED`` 404, ``UNAVAILABLE`` 503, ``INTERNAL`` 500…).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from userloop.engage.fakes.server import FakeServer, Request, Response, json_response

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_STATUS = {
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT"),
    "UNREGISTERED": (404, "NOT_FOUND"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED"),
    "UNAVAILABLE": (503, "UNAVAILABLE"),
    "INTERNAL": (500, "INTERNAL"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED"),
}


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FcmFake:
    """See the module docstring. ``allow_token(t)`` accepts a fixed bearer token (the no-key configuration)."""

    def __init__(
        self,
        project_id: str,
        client_email: str,
        public_key: rsa.RSAPublicKey,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project_id = project_id
        self.client_email = client_email
        self.public_key = public_key
        self.clock = clock
        self.deliveries: list[dict[str, Any]] = []
        self.failures: dict[str, str] = {}
        self.token_grants = 0
        self.unauthenticated = 0  # requests refused for their bearer token
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self.server = FakeServer(self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token_uri(self) -> str:
        return self.server.url + "/token"

    def stop(self) -> None:
        self.server.stop()

    def fail(self, token: str, error_code: str) -> None:
        self.failures[token] = error_code

    def allow_token(self, token: str) -> None:
        self._tokens[token] = float("inf")

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def _handle(self, request: Request) -> Response:
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        prefix, suffix = "/v1/projects/", "/messages:send"
        if request.method == "POST" and request.path.startswith(prefix) and request.path.endswith(suffix):
            return self._send(request, request.path[len(prefix) : -len(suffix)])
        return self._error(404, "NOT_FOUND", "Not found")

    @staticmethod
    def _grant_error(description: str) -> Response:
        return json_response({"error": "invalid_grant", "error_description": description}, 400)

    def _token(self, request: Request) -> Response:
        form = request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return json_response({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, 400)
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            return self._grant_error("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (binascii.Error, ValueError):
            return self._grant_error("Invalid JWT format")
        if header.get("alg") != "RS256":
            return self._grant_error("Invalid JWT: alg must be RS256")
        try:
            self.public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self._grant_error("Invalid JWT Signature.")
        now = self.clock()
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if claims.get("iss") != self.client_email:
            return self._grant_error("Invalid email or User ID")
        if claims.get("aud") != self.token_uri or SCOPE not in str(claims.get("scope", "")).split():
            return self._grant_error("Invalid JWT: aud or scope")
        if abs(iat - now) > 300 or exp - iat > 3600 or exp <= now:
            return self._grant_error("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
        token = "ya29.fake-" + uuid.uuid4().hex
        with self._lock:
            self.token_grants += 1
            self._tokens[token] = now + 3599
        return json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    @staticmethod
    def _error(status: int, canonical: str, message: str, fcm_code: str | None = None) -> Response:
        error: dict[str, Any] = {"code": status, "message": message, "status": canonical}
        if fcm_code:
            error["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}]
        return json_response({"error": error}, status)

    def _send(self, request: Request, project: str) -> Response:
        header = request.headers.get("authorization", "")
        expiry = self._tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        if expiry is None or self.clock() >= expiry:
            self.unauthenticated += 1
            return self._error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected "
                "OAuth 2 access token, login cookie or other valid authentication credential.",
            )
        if project != self.project_id:
            return self._error(403, "PERMISSION_DENIED", f"Permission denied on project {project}.")
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            return self._error(400, "INVALID_ARGUMENT", "message is required", "INVALID_ARGUMENT")
        targets = [t for t in ("token", "topic", "condition") if t in message]
        if len(targets) != 1:
            return self._error(400, "INVALID_ARGUMENT", "exactly one of token, topic, condition", "INVALID_ARGUMENT")
        data = message.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return self._error(400, "INVALID_ARGUMENT", "data values must be strings", "INVALID_ARGUMENT")
        token = str(message.get("token", ""))
        if token in self.failures:
            code = self.failures[token]
            status, canonical = _STATUS.get(code, (500, "INTERNAL"))
            text = "Requested entity was not found." if code == "UNREGISTERED" else f"simulated {code}"
            return self._error(status, canonical, text, code)
        with self._lock:
            self._seq += 1
            name = f"projects/{self.project_id}/messages/0:{int(self.clock() * 1000)}{self._seq:06d}%fake"
            self.deliveries.append(
                {"name": name, "token": token, "notification": message.get("notification"), "data": data}
            )
        return json_response({"name": name})
