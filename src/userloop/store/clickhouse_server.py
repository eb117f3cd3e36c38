"""A ClickHouse server reached over HTTP with clickhouse-connect: its URL (``clickhouse://``, ``clickhouses://``),
the client, and the :class:`HttpLink` a :class:`~userloop.store.clickhouse.ChSession` runs its statements on.

A URL's password is never shown: :func:`redact` is what errors, logs and the CLI print."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pyarrow as pa
from sqlglot import exp

from userloop.core.errors import QueryError, ValidationError
from userloop.store.dialects import render
from userloop.store.sqlbuild import literal

DIALECT = "clickhouse"


#: The URL schemes of a ClickHouse server (HTTP, HTTPS) and their default ports.
SERVER_SCHEMES = {"clickhouse": 8123, "clickhouses": 8443}


def redact(url: str) -> str:
    """``url`` with its password (if any) as ``***``: what errors, logs and the CLI show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


@dataclass(frozen=True)
class ServerAddress:
    """Where a ClickHouse server is and who logs in: a ``clickhouse://`` or ``clickhouses://`` URL, parsed."""

    host: str
    port: int
    user: str
    password: str
    database: str
    secure: bool
    verify: bool = True
    ca_cert: str | None = None

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        """``clickhouse[s]://user:password@host[:port][/database][?verify=false&ca_cert=/path]`` (user and password
        percent-encoded; the database defaults to ``default``)."""
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - {"verify", "ca_cert"}
        database = unquote(parts.path.strip("/")) or "default"
        if parts.scheme not in SERVER_SCHEMES or not parts.hostname or "/" in database or unknown:
            raise ValidationError(
                f"a ClickHouse server URL is clickhouse://user:password@host:port/database, not {redact(url)!r} / "
                f"ClickHouse 服务器地址应为 clickhouse://用户:密码@主机:端口/数据库",
                code="invalid",
            )
        return cls(
            host=parts.hostname,
            port=parts.port or SERVER_SCHEMES[parts.scheme],
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=database,
            secure=parts.scheme == "clickhouses",
            verify=options.get("verify", "true").lower() not in {"0", "false", "no"},
            ca_cert=options.get("ca_cert"),
        )


def server_client(address: ServerAddress, settings: Mapping[str, object], *, session: bool, shown_url: str) -> Any:
    """A clickhouse-connect client with the session settings (a server session of its own if ``session``).

    A server that cannot be reached or refuses the login is a ``query`` error naming the URL without its
    password."""
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import DatabaseError

    try:
        return clickhouse_connect.get_client(
            host=address.host,
            port=address.port,
            username=address.user,
            password=address.password,
            database=address.database,
            secure=address.secure,
            verify=address.verify,
            ca_cert=address.ca_cert,
            settings=dict(settings),
            session_id=str(uuid.uuid4()) if session else None,
            autogenerate_session_id=False,
            show_clickhouse_errors="scrub",
            client_name="userloop",
        )
    except DatabaseError as exc:
        raise QueryError(
            f"the ClickHouse server at {shown_url} cannot be used: {str(exc).splitlines()[0]} / "
            f"无法使用 ClickHouse 服务器 {shown_url}"
        ) from exc


class HttpLink:
    """A server session through clickhouse-connect (HTTP): queries answer as Arrow streams, inserts go as one
    Arrow stream per call (sent in chunks, a batch at a time), and :meth:`cancel` kills the running statement by
    its ``query_id`` through another connection (``control``), as ``KILL QUERY`` does on a server."""

    def __init__(self, client: Any, control: Any, release: Callable[[Any], None] | None = None) -> None:
        self.client = client
        self._control = control
        self._release = release
        self._running: str | None = None

    def query(self, text: str, *, rows: bool) -> pa.Table:
        settings = {"query_id": self._start()}
        try:
            if not rows:
                self.client.command(text, settings=settings)
                return pa.table({})
            data = self.client.raw_query(text, settings=settings, fmt="ArrowStream")
        finally:
            self._running = None
        return pa.ipc.open_stream(data).read_all() if data else pa.table({})

    def stream(self, text: str) -> Iterator[pa.RecordBatch]:
        """The query's answer a record batch at a time, read from the HTTP response as it arrives."""
        qid = self._start()
        try:
            with self.client.raw_stream(text, settings={"query_id": qid}, fmt="ArrowStream") as response:
                yield from pa.ipc.open_stream(response)
        finally:
            self._running = None

    def insert(self, head: exp.Schema, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int:
        written = 0

        def stream() -> Iterator[bytes]:
            nonlocal written
            sink = _Chunks()
            with pa.ipc.new_stream(sink, schema) as writer:
                yield sink.take()
                for batch in batches:
                    writer.write_batch(batch)
                    written += batch.num_rows
                    yield sink.take()
            yield sink.take()

        settings = {"query_id": self._start()}
        try:  # the table and columns rendered as a tree; clickhouse-connect writes "INSERT INTO <them> FORMAT …"
            self.client.raw_insert(render(head, DIALECT), None, stream(), settings=settings, fmt="ArrowStream")
        finally:
            self._running = None
        return written

    def _start(self) -> str:
        self._running = str(uuid.uuid4())
        return self._running

    def cancel(self) -> None:
        """Kill the running statement, best effort: it runs on a deadline's timer thread, and a server that cannot
        be reached now fails the statement itself (the session is already marked stopped)."""
        from clickhouse_connect.driver.exceptions import DatabaseError

        running = self._running
        if running is None:
            return
        try:
            self._control().command(f"KILL QUERY WHERE query_id = {literal(running).sql(DIALECT)} ASYNC")
        except (DatabaseError, QueryError, OSError):
            return

    def close(self) -> None:
        if self._release is not None:
            self._release(self.client)
        else:
            self.client.close()


class _Chunks:
    """A write-only file for Arrow's stream writer whose bytes are taken piece by piece (an HTTP body)."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(self._parts[-1])

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out
