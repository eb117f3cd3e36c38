"""A loopback HTTP endpoint over chdb that speaks the part of ClickHouse's HTTP interface clickhouse-connect uses.

**A test and single-machine convenience, not a replacement for clickhouse-server.** It runs the same engine
(chdb is ClickHouse's engine in process) on one folder and lets several processes share it over
``clickhouse://user:password@127.0.0.1:PORT/db`` URLs: the tests start it in a subprocess and run userloop's
ClickHouse backend through clickhouse-connect against it, exactly as against a server. It binds 127.0.0.1 only,
checks one user and password, has no TLS, no users or grants, no quotas, no replication, no system logs, and
none of clickhouse-server's tuning; put a real ClickHouse server in front of anything that matters.

What it speaks (ClickHouse's HTTP interface, https://clickhouse.com/docs/interfaces/http):

* ``GET /ping`` and ``GET /`` answer ``Ok.``; every other request runs a statement;
* the statement is the ``query`` parameter, the body, or the parameter followed by the body; ``INSERT … FORMAT
  x`` with the rows in the body (any input format chdb reads; passed to the engine as they arrive when the
  statement is the parameter and the body is not compressed);
* ``database``, ``default_format`` (TabSeparated when absent; a ``FORMAT`` clause wins), ``query_id``,
  ``session_id`` / ``session_timeout`` / ``session_check`` (a session is a chdb connection: its settings and
  temporary tables are its own, one statement at a time), ``param_<name>`` query parameters, and any other
  parameter as a setting for that statement;
* credentials from HTTP Basic, ``X-ClickHouse-User`` / ``X-ClickHouse-Key`` or ``user`` / ``password``;
* request bodies compressed with gzip, deflate, lz4 or zstd (``Content-Encoding``); answers are not compressed;
* answers carry ``X-ClickHouse-Query-Id``, ``-Format``, ``-Timezone`` and ``-Summary``; errors are HTTP 500 (403
  for a refused login) with ``X-ClickHouse-Exception-Code`` and a ``Code: N. DB::Exception: …`` body;
* ``KILL QUERY WHERE query_id = '…'`` stops the statement the client started with that ``query_id`` (the
  endpoint tags each statement with its id in the ``log_comment`` setting, which it therefore overrides), and a
  client that closes its connection while a statement runs cancels it, as ClickHouse does.

Run it as its own process (the password from a file or ``USERLOOP_CHDB_HTTP_PASSWORD``, never the command line)::

    python -m userloop.store.chdb_http --path /srv/userloop/ch --port 8123 --user userloop --password-file pw
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hmac
import json
import os
import re
import select
import socket
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["ChdbHttpServer", "main", "serve"]

#: Request parameters that are not settings (ClickHouse's HTTP interface and clickhouse-connect's transport ones).
NOT_SETTINGS = frozenset({
    "query", "database", "default_format", "user", "password", "query_id", "session_id", "session_timeout",
    "session_check", "compress", "decompress", "buffer_size", "wait_end_of_query", "client_protocol_version",
    "quota_key", "role", "stacktrace", "close_session", "log_comment",
})  # fmt: skip
DEFAULT_SESSION_TIMEOUT_S = 60.0
SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: ``INSERT … FORMAT name``, the rows following (after one line break) in the body.
INSERT_FORMAT = re.compile(r"\s*(INSERT\b.*?)\bFORMAT\s+(\w+)[ \t]*(?:\r?\n)?", re.IGNORECASE | re.DOTALL)
KILL_BY_ID = re.compile(
    r"\s*KILL\s+QUERY\s+WHERE\s+query_id\s*=\s*'((?:[^'\\]|\\.)*)'\s*(SYNC|ASYNC|TEST)?\s*;?\s*\Z", re.IGNORECASE
)
TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*\Z", re.IGNORECASE)
RESULT_STATEMENT = re.compile(r"\s*(SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN|\()", re.IGNORECASE)
ERROR_CODE = re.compile(r"Code: (\d+)\.")
SET_STATEMENT = re.compile(r"\s*SET\b", re.IGNORECASE)
CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}


class EndpointError(Exception):
    """A request refused the way ClickHouse refuses it: an error code, an HTTP status, a message."""

    def __init__(self, code: int, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def body(self) -> str:
        return f"Code: {self.code}. DB::Exception: {self}\n"


def quote_string(value: str) -> str:
    """A ClickHouse string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_name(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


@dataclass
class Connection:
    """One chdb connection: a session's, or a pooled one for requests without a session."""

    con: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    applied: dict[str, str] = field(default_factory=dict)  # settings as the last request set them
    timeout_s: float = DEFAULT_SESSION_TIMEOUT_S
    used_at: float = field(default_factory=time.monotonic)


class Engine:
    """The engine's side: chdb connections on one folder (a pool, and sessions by id) and a control connection
    that kills statements by the client's query id (each statement carries it in ``log_comment``)."""

    def __init__(self, path: Path) -> None:
        import chdb

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._connect: Callable[[], Any] = lambda: chdb.connect(str(path))
        self._control = Connection(self._connect())  # KILL QUERY and the connect-time reads
        self._pool: list[Connection] = []
        self._sessions: dict[str, Connection] = {}
        self._guard = threading.Lock()

    @contextmanager
    def connection(self, session_id: str | None, timeout_s: float, check: bool) -> Iterator[Connection]:
        """The session's connection (made on first use unless ``check``), or a pooled one; held for the block."""
        with self._guard:
            self._expire()
            if session_id is None:
                conn = self._pool.pop() if self._pool else Connection(self._connect())
            elif session_id in self._sessions:
                conn = self._sessions[session_id]
            elif check:
                raise EndpointError(372, f"Session {session_id} not found (SESSION_NOT_FOUND)", 404)
            else:
                conn = self._sessions[session_id] = Connection(self._connect(), timeout_s=timeout_s)
        if not conn.lock.acquire(blocking=False):
            raise EndpointError(373, f"Session {session_id} is locked by a concurrent client. (SESSION_IS_LOCKED)")
        try:
            yield conn
        finally:
            conn.used_at = time.monotonic()
            conn.lock.release()
            if session_id is None:
                with self._guard:
                    self._pool.append(conn)

    def _expire(self) -> None:
        now = time.monotonic()
        for sid, conn in list(self._sessions.items()):
            if now - conn.used_at > conn.timeout_s and not conn.lock.locked():
                del self._sessions[sid]
                conn.con.close()

    def kill(self, marker: str) -> None:
        """Stop the statement tagged ``marker`` (a client's query id), if it still runs."""
        with self._control.lock:
            self._control.con.query(f"KILL QUERY WHERE Settings['log_comment'] = {quote_string(marker)} ASYNC")

    def close(self) -> None:
        with self._guard:
            for conn in [*self._pool, *self._sessions.values(), self._control]:
                conn.con.close()
            self._pool.clear()
            self._sessions.clear()


@dataclass
class Request:
    """One statement to run, as the HTTP request gave it."""

    text: str
    data: bytes | Iterator[bytes] | None  # an INSERT's rows, whole or as they arrive
    insert_format: str | None
    fmt: str
    query_id: str
    database: str | None
    settings: dict[str, str]
    params: dict[str, str]


@dataclass
class Answer:
    body: bytes
    fmt: str | None
    summary: dict[str, str]


def run(engine: Engine, conn: Connection, req: Request, gone: Callable[[], bool]) -> Answer:
    """Run ``req`` on ``conn``: its settings for this statement only, tagged with its id for KILL QUERY; if the
    client goes away first (``gone``), the statement is killed."""
    con = conn.con
    wanted = {**req.settings, "log_comment": req.query_id}
    for name in conn.applied.keys() - wanted.keys():
        con.query(f"SET {name} = DEFAULT")
    for name, value in wanted.items():
        if conn.applied.get(name) != value:  # a client sends the same settings with every request: set them once
            con.query(f"SET {name} = {quote_string(value)}")
    # a SET in the statement itself may change what the parameters set: set them all again next time
    conn.applied = {} if SET_STATEMENT.match(req.text) else wanted
    if req.database is not None:
        con.query(f"USE {quote_name(req.database)}")
    if req.insert_format is not None:
        return _insert(con, req)
    killed = KILL_BY_ID.match(req.text)
    if killed:
        engine.kill(killed.group(1).replace("\\'", "'"))
        return Answer(b"", None, {})
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=_query, args=(con, req, outcome), daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.05)
        if worker.is_alive() and gone():
            engine.kill(req.query_id)
            worker.join()
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    own_format = TRAILING_FORMAT.search(req.text)
    fmt = own_format.group(1) if own_format else req.fmt
    body = bytes(result.bytes())
    shown = fmt if body or RESULT_STATEMENT.match(req.text) else None
    return Answer(body, shown, _summary(result))


def _query(con: Any, req: Request, outcome: dict[str, Any]) -> None:
    try:
        outcome["result"] = con.query(req.text, req.fmt, params=req.params)
    except Exception as exc:  # the engine's refusal, handed to the request's thread
        outcome["error"] = exc


def _insert(con: Any, req: Request) -> Answer:
    assert req.insert_format is not None
    with con.send_insert(req.text, req.insert_format) as ins:
        for chunk in [req.data] if isinstance(req.data, bytes) else req.data or ():
            if chunk:
                ins.append(chunk)
        result = ins.finish()
    n, size = str(result.rows_written), str(result.bytes_written)
    return Answer(b"", None, {"read_rows": n, "read_bytes": size, "written_rows": n, "written_bytes": size})


def _summary(result: Any) -> dict[str, str]:
    """``X-ClickHouse-Summary`` of a query's result, as the server's JSON (numbers as strings)."""
    return {
        "read_rows": str(result.rows_read()),
        "read_bytes": str(result.bytes_read()),
        "written_rows": "0",
        "written_bytes": "0",
        "result_rows": str(result.rows_read()),
        "elapsed_ns": str(int(result.elapsed() * 1e9)),
    }


def decode_body(data: bytes, encoding: str | None) -> bytes:
    """The request body without its ``Content-Encoding`` (gzip, deflate, lz4 frame, zstd)."""
    encoding = (encoding or "").strip().lower()
    if encoding in {"", "identity"}:
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "lz4":
        import lz4.frame

        return bytes(lz4.frame.decompress(data))
    if encoding == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found, no-redef, unused-ignore]
        return bytes(zstd.decompress(data))
    raise EndpointError(86, f"Unknown Content-Encoding {encoding!r} (UNKNOWN_COMPRESSION_METHOD)")


def parse_request(params: dict[str, str], body: bytes, rows: Iterator[bytes] | None = None) -> Request:
    """The statement, its rows, format, id and settings from the request's parameters and body (``rows``: the
    body as it arrives, for an ``INSERT … FORMAT x`` given whole in the ``query`` parameter)."""
    param_query = params.get("query", "")
    data: bytes | Iterator[bytes] | None = None
    insert_format: str | None = None
    head = INSERT_FORMAT.match(param_query)
    if rows is not None and head is not None:
        text, insert_format, data = head.group(1), head.group(2), rows
    elif param_query and body:
        head = INSERT_FORMAT.match(param_query)
        if head and not param_query[head.end() :].strip():
            text, insert_format, data = head.group(1), head.group(2), body
        else:
            text = param_query + "\n" + body.decode("utf-8")
    elif param_query:
        text = param_query
    else:
        head = INSERT_FORMAT.match(body[:65536].decode("utf-8", errors="replace"))
        if head:
            prefix = body[: len(head.group(0).encode("utf-8", errors="replace"))]
            text, insert_format, data = head.group(1), head.group(2), body[len(prefix) :]
        else:
            text = body.decode("utf-8")
    if not text.strip():
        raise EndpointError(62, "Empty query (SYNTAX_ERROR)", 400)
    settings = {k: v for k, v in params.items() if k not in NOT_SETTINGS and not k.startswith("param_")}
    for name in settings:
        if not SETTING_NAME.match(name):
            raise EndpointError(115, f"Unknown setting {name!r} (UNKNOWN_SETTING)", 400)
    return Request(
        text=text,
        data=data,
        insert_format=insert_format,
        fmt=params.get("default_format") or "TabSeparated",
        query_id=params.get("query_id") or str(uuid.uuid4()),
        database=params.get("database") or None,
        settings=settings,
        params={k.removeprefix("param_"): v for k, v in params.items() if k.startswith("param_")},
    )


class ChdbHttpServer(ThreadingHTTPServer):
    """The HTTP server: one engine, one user and password, loopback only."""

    daemon_threads = True

    def __init__(self, path: Path, *, port: int = 0, user: str = "default", password: str = "") -> None:
        self.engine = Engine(path)
        self.user = user
        self.password = password
        super().__init__(("127.0.0.1", port), Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def server_close(self) -> None:
        super().server_close()
        self.engine.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    _unread = False
    disable_nagle_algorithm = True  # headers and body are two writes: without it each answer waits ~40 ms for an ACK
    server: ChdbHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: statements and credentials stay out of the logs."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        params["query_id"] = query_id
        self._unread = True
        try:
            if parts.path.rstrip("/") == "/ping" or (self.command == "GET" and "query" not in params):
                for _ in self._body_chunks():
                    pass
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                return
            self._authenticate(params)
            head = INSERT_FORMAT.match(params.get("query", ""))
            encoding = (self.headers.get("Content-Encoding") or "identity").lower()
            if head and not params["query"][head.end() :].strip() and encoding == "identity":
                req = parse_request(params, b"", self._body_chunks())  # rows go to the engine as they arrive
            else:
                req = parse_request(params, decode_body(b"".join(self._body_chunks()), encoding))
            timeout = float(params.get("session_timeout") or DEFAULT_SESSION_TIMEOUT_S)
            with self.server.engine.connection(
                params.get("session_id"), timeout, params.get("session_check") == "1"
            ) as conn:
                answer = run(self.server.engine, conn, req, self._client_gone)
        except EndpointError as exc:
            self._fail(exc, query_id)
            return
        except Exception as exc:  # the engine's own refusal: ClickHouse's message and code, as the server sends them
            text = str(exc)
            at = text.find("Code: ")
            message = text[at:] if at >= 0 else f"Code: 1001. DB::Exception: {text}"
            found = ERROR_CODE.match(message)
            self._fail_text(message, int(found.group(1)) if found else 1001, 500, query_id)
            return
        headers = {
            "Content-Type": CONTENT_TYPES.get(answer.fmt or "", "application/octet-stream"),
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": "chdb-http",
            "X-ClickHouse-Summary": json.dumps(answer.summary),
        }
        if answer.fmt:
            headers["X-ClickHouse-Format"] = answer.fmt
        self._send(200, answer.body, headers)

    def _authenticate(self, params: dict[str, str]) -> None:
        user, password = params.pop("user", None), params.pop("password", None)
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            with suppress(ValueError, UnicodeDecodeError):
                user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
        user = self.headers.get("X-ClickHouse-User", user) or "default"
        password = self.headers.get("X-ClickHouse-Key", password) or ""
        ok = hmac.compare_digest(user.encode(), self.server.user.encode())
        if not (hmac.compare_digest(password.encode(), self.server.password.encode()) and ok):
            raise EndpointError(
                516,
                f"{user}: Authentication failed: password is incorrect, or there is no user with such name. "
                "(AUTHENTICATION_FAILED)",
                403,
            )

    def _body_chunks(self, piece: int = 1 << 20) -> Iterator[bytes]:
        """The request body as it arrives (``Content-Length`` or chunked transfer), at most ``piece`` bytes at a
        time; once it is read whole, the connection can take the next request."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                while size > 0:
                    chunk = self.rfile.read(min(size, piece))
                    if not chunk:
                        return
                    size -= len(chunk)
                    yield chunk
                self.rfile.readline()
            while self.rfile.readline() not in {b"\r\n", b"\n", b""}:
                pass  # trailers
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                chunk = self.rfile.read(min(left, piece))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk
        self._unread = False

    def _client_gone(self) -> bool:
        """Whether the client closed its connection (readable with nothing to read)."""
        sock: socket.socket = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _fail(self, exc: EndpointError, query_id: str) -> None:
        self._fail_text(exc.body(), exc.code, exc.status, query_id)

    def _fail_text(self, message: str, code: int, status: int, query_id: str) -> None:
        text = message if message.endswith("\n") else message + "\n"
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(code),
            "X-ClickHouse-Query-Id": query_id,
        }
        self._send(status, text.encode("utf-8"), headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        if self._unread:  # a refused request's body was not read: the connection cannot carry another request
            self.close_connection = True
            headers = {**headers, "Connection": "close"}
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client went away; nothing to tell it


def serve(path: Path, *, port: int = 0, user: str = "default", password: str = "") -> ChdbHttpServer:
    """An endpoint on 127.0.0.1:``port`` (0: any free port) serving ``path`` in a background thread.

    Example::

        server = serve(Path("/tmp/ch"), user="u", password="p")
        url = f"clickhouse://u:p@127.0.0.1:{server.port}/default"
        ...
        server.shutdown(); server.server_close()
    """
    server = ChdbHttpServer(path, port=port, user=user, password=password)
    threading.Thread(target=server.serve_forever, name="chdb-http", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    """``python -m userloop.store.chdb_http``: serve a chdb folder on loopback until interrupted; prints the
    address as one line (``listening 127.0.0.1:PORT``) once it accepts requests."""
    parser = argparse.ArgumentParser(prog="python -m userloop.store.chdb_http", description=__doc__.split("\n")[0])
    parser.add_argument("--path", type=Path, required=True, help="the chdb folder (made if missing)")
    parser.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--user", default="default")
    parser.add_argument("--password-file", type=Path, help="a file holding the password (else the environment's "
                        "USERLOOP_CHDB_HTTP_PASSWORD, else empty)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.password_file is not None:
        password = args.password_file.read_text(encoding="utf-8").strip()
    else:
        password = os.environ.get("USERLOOP_CHDB_HTTP_PASSWORD", "")
    server = ChdbHttpServer(args.path.resolve(), port=args.port, user=args.user, password=password)
    print(f"listening 127.0.0.1:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
