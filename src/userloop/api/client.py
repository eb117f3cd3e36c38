"""A small HTTP client for CLI commands when a running server owns the workspace.

The server writes a session admin token to ``WORKSPACE/server.token`` (mode 0600) while it runs, so a local user
who can read the workspace can talk to it without pasting a token; ``USERLOOP_TOKEN`` overrides it.

It speaks HTTP/1.1 with the standard library's :mod:`http.client` (one request per connection, bodies streamed
both ways): a command that goes through the server starts in a fraction of the time an HTTP library takes to
import, and it loads neither the server nor the engines (see tests/cli/test_client_imports.py).

Example::

    client = ServerClient.for_workspace(Path("userloop-data"))
    if client is not None:
        print(client.run("sql.run", RunSql(query="SELECT count(*) FROM events")).rows)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
from pydantic import BaseModel

from userloop.core.errors import CODES, NotFoundError, UserloopError, WorkspaceError, code_for_status
from userloop.ops import find
from userloop.store.owner import current_owner

if TYPE_CHECKING:
    from http.client import HTTPResponse

    from userloop.ops.imports import ImportedByServer, ImportFiles
    from userloop.ops.segments import Downloaded, ExportSegment
    from userloop.ops.tags import Uploaded, UploadTag

TOKEN_FILE = "server.token"  # noqa: S105 - a file name, not a secret


class ServerClient:
    """Calls the management API of a running server with an admin token."""

    def __init__(self, url: str, token: str, *, timeout: float = 3600.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def for_workspace(cls, path: Path) -> ServerClient | None:
        """A client for the server owning ``path``, or None when no server runs."""
        path = path.expanduser().resolve()
        owner = current_owner(path)
        if owner is None:
            return None
        token = os.environ.get("USERLOOP_TOKEN")
        if not token:
            try:
                token = (path / TOKEN_FILE).read_text().strip()
            except OSError as exc:
                raise WorkspaceError(
                    f"the server at {owner.url} owns this workspace; set USERLOOP_TOKEN to an admin token"
                ) from exc
        return cls(owner.url, token)

    @contextmanager
    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[HTTPResponse]:
        """The server's response to one request, its body not yet read: ``params`` go in the query string,
        ``json`` or ``content`` (bytes, or chunks sent with chunked encoding) in the body; a status of 400 or more
        is raised as the error the server reported; an unreachable server is a WorkspaceError."""
        import http.client

        target = urlsplit(self.url)
        query = _query(params or {})
        url = (target.path.rstrip("/") + path) + (f"?{query}" if query else "")
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        body: bytes | Iterable[bytes] | None = content
        if json is not None:
            body = orjson.dumps(json)
            sent["Content-Type"] = "application/json"
        kind = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        conn = kind(target.hostname or "127.0.0.1", target.port, timeout=self.timeout)
        try:
            try:
                conn.request(method, url, body=body, headers=sent)
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise WorkspaceError(f"cannot reach the server at {self.url}: {exc}") from exc
            if response.status >= 400:
                raise _error(response.status, response.read())
            yield response
        finally:
            conn.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request's reply, parsed from its JSON (None for an empty body)."""
        import http.client

        with self._request(method, path, **kwargs) as response:
            try:
                content = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise WorkspaceError(f"cannot reach the server at {self.url}: {exc}") from exc
        return orjson.loads(content) if content else None

    def run(self, op_id: str, request: BaseModel) -> Any:
        """Operation ``op_id`` through its route: the path's fields fill the path, the others go in the query
        string or a JSON body as the operation says; the reply comes back as the operation's typed reply."""
        op = find(op_id)
        fields = request.model_dump(mode="json")
        path = op.path.format(**{n: quote(str(fields.pop(n)), safe="") for n in op.path_params})
        if op.inputs == "query":
            reply = self._call(op.method, path, params={k: v for k, v in fields.items() if v is not None})
        else:
            reply = self._call(op.method, path, json=fields)
        return op.reply.validate_python(reply)

    def download(self, path: str, dest: Path, *, params: dict[str, Any] | None = None) -> int:
        """Stream a GET route's body into ``dest``; returns the bytes written."""
        import http.client

        written = 0
        with self._request("GET", path, params=params) as response, dest.open("wb") as f:
            try:
                while chunk := response.read(1 << 20):
                    written += f.write(chunk)
            except (OSError, http.client.HTTPException) as exc:
                raise WorkspaceError(f"cannot reach the server at {self.url}: {exc}") from exc
        return written

    def import_file(self, req: ImportFiles, path: Path) -> ImportedByServer:
        """One file of ``req`` through ``POST /api/v1/imports/{kind}``, its bytes streamed as the body."""
        from dataclasses import asdict

        from userloop.ops.imports import ImportedByServer

        if not path.is_file():
            raise NotFoundError(f"no such file: {path}")
        params: dict[str, Any] = {"project": req.project, "filename": path.name,
                                  "mapping": orjson.dumps(asdict(req.mapping)).decode()}  # fmt: skip
        if req.max_past_days:
            params["max_past_days"] = req.max_past_days
        with path.open("rb") as f:
            chunks = iter(lambda: f.read(1 << 20), b"")
            reply = self._call("POST", f"/api/v1/imports/{req.kind}", params=params, content=chunks)
        return ImportedByServer.model_validate(reply)

    def upload_tag(self, req: UploadTag) -> Uploaded:
        """``req.csv`` as the text/csv body of ``POST /api/v1/tags/{tag}/upload``."""
        from userloop.ops.tags import Uploaded

        params = {"project": req.project, "id_column": req.id_column, "id_kind": req.id_kind,
                  "value_column": req.value_column}  # fmt: skip
        reply = self._call("POST", f"/api/v1/tags/{quote(req.tag, safe='')}/upload", content=req.csv.encode(),
                           params={k: v for k, v in params.items() if v is not None},
                           headers={"Content-Type": "text/csv"})  # fmt: skip
        return Uploaded.model_validate(reply)

    def export_segment(self, req: ExportSegment) -> Downloaded:
        """The file of ``GET /api/v1/segments/{id}/export``, written to ``req.path``."""
        from userloop.ops.segments import Downloaded

        params = {"project": req.project, "fields": ",".join(req.fields), "format": req.format, "unmask": req.unmask,
                  "limit": req.limit}  # fmt: skip
        path = f"/api/v1/segments/{req.segment_id}/export"
        size = self.download(path, req.path, params={k: v for k, v in params.items() if v is not None})
        return Downloaded(path=str(req.path), bytes=size, fields=req.fields, format=req.format)


def _query(params: dict[str, Any]) -> str:
    """``params`` as a query string, as the API reads them: booleans as ``true``/``false``, a list as the name
    repeated, None as an empty value."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    pairs = [(k, text(item)) for k, v in params.items() for item in (v if isinstance(v, list | tuple) else [v])]
    return urlencode(pairs)


def _error(status: int, content: bytes) -> UserloopError:
    """The server's error body (``{"error": {code, message, field?, hint?}}``) as the error it raised; a body
    that is not one (a proxy's page, a code this version does not know) keeps its status's code."""
    try:
        error = orjson.loads(content).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if not isinstance(error, dict):
        error = {"message": content.decode("utf-8", "replace")[:300] or f"HTTP {status}"}
    code = error.get("code")
    code = code if code in CODES else code_for_status(status)
    message, field, hint = str(error.get("message", "")), error.get("field"), error.get("hint")
    if status == 404:
        return NotFoundError(message, code=code, field=field, hint=hint)
    return UserloopError(f"server: {message}", code=code, field=field, hint=hint)
