"""A local SMTP sink: the receiving mail system for the demo and the tests, a real SMTP server (aiosmtpd).

Run it as its own process::

    python -m userloop.engage.sink --host 127.0.0.1 --port 0 --dir DIR [--user U --password P] [--reply ADDR=REPLY]

It prints one JSON line when it listens (``{"host": "127.0.0.1", "port": 40123, "dir": "DIR"}``; port 0 picks a
free one) and runs until SIGTERM or SIGINT. In process, :class:`SmtpSink` is the same server on a thread of its own
(a context manager with ``.port`` and ``.stop()``). Another process reads what arrived with :class:`Mailbox`.

What it keeps. Every accepted ``DATA`` is one row of ``DIR/mailbox.sqlite3`` (the raw RFC 5322 bytes, the envelope,
the ``Message-ID``, the connection it came on), so the store counts ``received`` (every copy, transport-level resends
included) and ``unique`` (distinct ``Message-ID``s; a message without one counts on its own): a mailbox that shows
the reader one copy per ``Message-ID`` and drops the rest, as large providers do. Each connection is a row too, so
a test can prove that a client reused one connection for a batch.

Durability (the fsync policy). A ``250`` to ``DATA`` is sent only after the message's row is committed, like a real
MTA that answers once the message is queued; the commits are grouped: every message accepted in the same turn of the
event loop (any number of concurrent connections) shares one commit. The database runs in WAL mode and ``sync``
chooses what a commit costs:

- ``"normal"`` (default, ``PRAGMA synchronous=NORMAL``): a commit is a write to the WAL, no fsync. An accepted message
  survives the sink process being killed; the WAL is fsynced at each checkpoint and at stop, so an OS crash or power
  loss can lose the commits since the last checkpoint.
- ``"full"`` (``synchronous=FULL``): each grouped commit fsyncs the WAL before the ``250``; survives power loss, at
  one fsync per group (slow for one sequential client on a slow disk).
- ``"off"``: no fsync at all, for throwaway benchmarks.

SQLite's WAL lets a :class:`Mailbox` in another process read while the sink writes. Auth: with ``auth=(user,
password)`` the sink offers AUTH PLAIN and LOGIN (RFC 4954) without TLS (it is a loopback test server) and answers
``530 5.7.0`` to ``MAIL`` before a successful AUTH; passwords are compared with :func:`hmac.compare_digest`.
Scripted refusals: ``replies={"bounce@example.com": "550 5.1.1 no such user"}`` answers ``RCPT`` for that address
with that reply, so a client's handling of permanent (5xx) and transient (4xx) refusals is tested for real.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from userloop.core.errors import NotFoundError, ValidationError

Sync = Literal["normal", "full", "off"]

DB_NAME = "mailbox.sqlite3"
#: The largest message the sink accepts (the ``SIZE`` it advertises, RFC 1870).
DATA_SIZE_LIMIT = 32 * 1024 * 1024

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS connections (id INTEGER PRIMARY KEY, peer TEXT, opened_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, connection INTEGER NOT NULL, "
    "received_ms INTEGER NOT NULL, auth_user TEXT, mail_from TEXT NOT NULL, rcpt_to TEXT NOT NULL, "
    "message_id TEXT, raw BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS messages_message_id ON messages (message_id)",
)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(rb"\r?\n[ \t]+")
_MESSAGE_ID = re.compile(rb"(?im)^message-id[ \t]*:[ \t]*(.*?)[ \t]*\r?$")


def message_id_of(raw: bytes) -> str | None:
    """The first ``Message-ID`` field of a raw message (unfolded, trimmed), or None when it has none."""
    end = _HEADER_END.search(raw)
    head = _FOLD.sub(b" ", raw[: end.start()] if end else raw)
    found = _MESSAGE_ID.search(head)
    if found is None or not found.group(1):
        return None
    return found.group(1).decode("utf-8", "replace")


class _Store:
    """The sink's SQLite file, written only from the event loop's thread.

    Rows wait in memory until the end of the current loop turn, then go in with one statement (one row) or one
    transaction (several); the sink is the only writer, so it numbers rows itself and ``executemany`` needs no
    ``lastrowid``. A message's future is done once its row is committed.
    """

    def __init__(self, directory: Path, sync: Sync, loop: asyncio.AbstractEventLoop) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / DB_NAME
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={ {'normal': 'NORMAL', 'full': 'FULL', 'off': 'OFF'}[sync] }")
        for statement in _SCHEMA:
            self.db.execute(statement)
        self._next_conn = int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM connections").fetchone()[0]) + 1
        self._next_seq = int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0]) + 1
        self.loop = loop
        self._conns: list[tuple[int, str, int]] = []
        self._msgs: list[tuple[int, int, int, str | None, str, str, str | None, bytes]] = []
        self._waiters: list[asyncio.Future[int]] = []
        self._scheduled = False

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self.flush)

    def connection(self, peer: str) -> int:
        conn, self._next_conn = self._next_conn, self._next_conn + 1
        self._conns.append((conn, peer, _now_ms()))
        self._schedule()
        return conn

    def message(
        self, conn: int, auth_user: str | None, mail_from: str, rcpt_to: list[str], raw: bytes
    ) -> asyncio.Future[int]:
        """Queue one message; the future gives its ``seq`` once committed (or the store's error)."""
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        rcpt = json.dumps(rcpt_to, ensure_ascii=False)
        self._msgs.append((seq, conn, _now_ms(), auth_user, mail_from, rcpt, message_id_of(raw), raw))
        waiter: asyncio.Future[int] = self.loop.create_future()
        self._waiters.append(waiter)
        self._schedule()
        return waiter

    def flush(self) -> None:
        conns, msgs, waiters = self._conns, self._msgs, self._waiters
        self._conns, self._msgs, self._waiters, self._scheduled = [], [], [], False
        if not conns and not msgs:
            return
        error: sqlite3.Error | None = None
        many = len(conns) + len(msgs) > 1
        try:
            if many:
                self.db.execute("BEGIN")
            if conns:
                self.db.executemany("INSERT INTO connections (id, peer, opened_ms) VALUES (?, ?, ?)", conns)
            if msgs:
                self.db.executemany(
                    "INSERT INTO messages (seq, connection, received_ms, auth_user, mail_from, rcpt_to, message_id, "
                    "raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    msgs,
                )
            if many:
                self.db.execute("COMMIT")
        except sqlite3.Error as exc:  # a full disk: every message of this group answers 451
            error = exc
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
        for waiter, row in zip(waiters, msgs, strict=True):
            if not waiter.done():
                if error is None:
                    waiter.set_result(row[0])
                else:
                    waiter.set_exception(error)

    def close(self) -> None:
        self.flush()
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(FULL)")  # fsyncs the WAL's content into the database file
        self.db.close()


def _now_ms() -> int:
    # The sink stamps arrivals with the wall clock: it is the receiving system, not product logic under test.
    return time.time_ns() // 1_000_000


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when installed (it comes with uvicorn[standard]; about 1.6x the messages per second of
    asyncio's own loop here, which spends most of a message in its selector and stream plumbing), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency through uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _Handler:
    """aiosmtpd handler hooks: scripted RCPT replies, AUTH enforced at MAIL, DATA stored before its 250."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.sink.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.sink.replies.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        store = self.sink.store
        assert store is not None
        conn = getattr(server, "connection_id", 0)
        auth = session.auth_data
        user = auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else None
        try:
            seq = await store.message(conn, user, envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        except sqlite3.Error:
            return "451 4.3.0 Mailbox store unavailable, try again later"
        self.sink.received += 1
        return f"250 2.0.0 OK queued as {seq}"


class _QuietSession(Session):
    """aiosmtpd's session without the deprecation log line its own AUTH success path triggers (it still sets the
    legacy ``login_data``); the sink reads ``auth_data``."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _SinkSMTP(SMTP):
    """aiosmtpd's SMTP protocol that records each connection in the store (for connection-reuse checks)."""

    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(_Handler(sink), **kwargs)
        self.sink = sink
        self.connection_id = 0

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.session is not None and self.session.ssl is None and self.sink.store is not None:
            peer = self.session.peer
            self.connection_id = self.sink.store.connection(f"{peer[0]}:{peer[1]}" if peer else "")
            self.sink.connections += 1
            self.sink.open.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sink.open.discard(self)
        super().connection_lost(error)


class SmtpSink:
    """The SMTP sink on a thread of its own: ``with SmtpSink(dir) as sink: ... sink.port ...``.

    ``auth=(user, password)`` requires AUTH before ``MAIL`` (``mechanisms`` offered: PLAIN, LOGIN); ``replies``
    maps a recipient address (compared lower-cased) to the full reply its ``RCPT`` gets (``"550 5.1.1 no such
    user"``). ``received`` and ``connections`` count this run; :class:`Mailbox` reads everything in ``directory``.
    """

    def __init__(
        self,
        directory: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auth: tuple[str, str] | None = None,
        replies: Mapping[str, str] | None = None,
        sync: Sync = "normal",
        hostname: str = "sink.userloop.local",
        mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"),
    ) -> None:
        if sync not in ("normal", "full", "off"):
            raise ValidationError(f"sync must be normal, full or off, not {sync!r}", field="sync")
        for address, reply in (replies or {}).items():
            if not re.fullmatch(r"[245]\d\d( .*)?", reply) or "\r" in reply or "\n" in reply:
                raise ValidationError(f"the reply for {address!r} is not an SMTP reply line", field="replies")
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.auth = auth
        self.replies = {k.lower(): v for k, v in (replies or {}).items()}
        self.sync: Sync = sync
        self.hostname = hostname
        unknown = set(mechanisms) - {"PLAIN", "LOGIN"}
        if unknown or not mechanisms:
            raise ValidationError(f"AUTH mechanisms are PLAIN and LOGIN, not {sorted(unknown)}", field="mechanisms")
        self.mechanisms = mechanisms
        self.received = 0
        self.connections = 0
        self.store: _Store | None = None
        self.open: set[_SinkSMTP] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.auth is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user_ok = hmac.compare_digest(auth_data.login, self.auth[0].encode())
        password_ok = hmac.compare_digest(auth_data.password, self.auth[1].encode())
        return AuthResult(success=user_ok and password_ok, handled=False, auth_data=auth_data)

    def _protocol(self) -> _SinkSMTP:
        assert self._loop is not None
        return _SinkSMTP(
            self,
            loop=self._loop,
            hostname=self.hostname,
            data_size_limit=DATA_SIZE_LIMIT,
            enable_SMTPUTF8=True,
            auth_require_tls=False,
            authenticator=self._authenticate if self.auth is not None else None,
            auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m not in self.mechanisms],
            timeout=300,
        )

    def start(self) -> SmtpSink:
        """Listen (binding errors raise here) and serve on a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return self
        loop = _new_loop()
        self._loop = loop
        self.store = _Store(self.directory, self.sync, loop)
        try:
            self._server = loop.run_until_complete(
                loop.create_server(self._protocol, self.host, self.port, reuse_address=True)
            )
        except BaseException:
            self.store.close()
            loop.close()
            self._loop = None
            raise
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._thread = threading.Thread(target=loop.run_forever, name=f"smtp-sink-{self.port}", daemon=True)
        self._thread.start()
        return self

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for proto in list(self.open):
            if proto.transport is not None:
                proto.transport.close()
        await asyncio.sleep(0)  # let the connections' handlers see their end
        await self._server.wait_closed()

    def stop(self) -> None:
        """Close the listener and every open connection, commit and checkpoint the store; idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            # Cancel what is left (handlers of closed connections) so the loop closes without pending tasks.
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            if self.store is not None:
                self.store.close()
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class MailMessage:
    """One stored message as a reader sees it: envelope, decoded headers, text and HTML parts, raw bytes."""

    seq: int
    connection: int
    received_ms: int
    auth_user: str | None
    mail_from: str
    rcpt_to: list[str]
    message_id: str | None
    to: str
    subject: str
    text: str | None
    html: str | None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = ""
    raw: bytes = b""


class Mailbox:
    """Reads a sink's directory, also from another process while the sink runs (SQLite WAL, read-only)."""

    def __init__(self, directory: str | Path) -> None:
        path = Path(directory).resolve() / DB_NAME  # a file URI needs an absolute path
        if not path.exists():
            raise NotFoundError(f"no SMTP sink mailbox in {directory}", field="dir")
        self._con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)

    def received(self) -> int:
        """Every accepted DATA, resends included."""
        return int(self._con.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def unique(self) -> int:
        """Distinct Message-IDs (what a de-duplicating mailbox shows); each message without one counts once."""
        row = self._con.execute(
            "SELECT COUNT(DISTINCT message_id) + SUM(CASE WHEN message_id IS NULL THEN 1 ELSE 0 END) FROM messages"
        ).fetchone()
        return int(row[0] or 0)

    def duplicates(self) -> dict[str, int]:
        """Message-IDs received more than once, with how many times."""
        rows = self._con.execute(
            "SELECT message_id, COUNT(*) FROM messages WHERE message_id IS NOT NULL "
            "GROUP BY message_id HAVING COUNT(*) > 1 ORDER BY message_id"
        ).fetchall()
        return {str(mid): int(n) for mid, n in rows}

    def connections(self) -> int:
        """SMTP connections the sink has accepted."""
        return int(self._con.execute("SELECT COUNT(*) FROM connections").fetchone()[0])

    def messages(self, limit: int | None = None, *, after: int = 0) -> list[MailMessage]:
        """Stored messages in arrival order (``seq`` > ``after``), at most ``limit``, parsed."""
        rows = self._con.execute(
            "SELECT seq, connection, received_ms, auth_user, mail_from, rcpt_to, message_id, raw FROM messages "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, -1 if limit is None else limit),
        ).fetchall()
        return [_parse(*row) for row in rows]

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(
    seq: int, conn: int, received_ms: int, user: str | None, mail_from: str, rcpt: str, mid: str | None, raw: bytes
) -> MailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    text = html = None
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and text is None:
            text = str(part.get_content()).replace("\r\n", "\n")
        elif kind == "text/html" and html is None:
            html = str(part.get_content()).replace("\r\n", "\n")
    headers: dict[str, str] = {}
    for name, value in msg.items():
        headers.setdefault(name, str(value))
    return MailMessage(
        seq=seq,
        connection=conn,
        received_ms=received_ms,
        auth_user=user,
        mail_from=mail_from,
        rcpt_to=list(json.loads(rcpt)),
        message_id=mid,
        to=str(msg.get("To", "")),
        subject=str(msg.get("Subject", "")),
        text=text,
        html=html,
        headers=headers,
        content_type=msg.get_content_type(),
        raw=bytes(raw),
    )


def _parse_reply(spec: str) -> tuple[str, str]:
    address, sep, reply = spec.partition("=")
    if not sep or not address or not reply:
        raise argparse.ArgumentTypeError(f"expected ADDRESS=REPLY, e.g. bounce@example.com='550 5.1.1 no such user'; "
                                         f"got {spec!r}")  # fmt: skip
    return address, reply


def main(argv: list[str] | None = None) -> int:
    """``python -m userloop.engage.sink``: serve until SIGTERM/SIGINT; one JSON line on stdout when listening."""
    parser = argparse.ArgumentParser(prog="python -m userloop.engage.sink", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed when ready)")
    parser.add_argument("--dir", required=True, type=Path, help="where the mailbox (SQLite) is kept")
    parser.add_argument("--user", help="require AUTH PLAIN/LOGIN with this user")
    parser.add_argument("--password", help="the password of --user (or env USERLOOP_SINK_PASSWORD)")
    parser.add_argument(
        "--reply",
        action="append",
        type=_parse_reply,
        default=[],
        metavar="ADDRESS=REPLY",
        help="answer RCPT for ADDRESS with REPLY, e.g. '550 5.1.1 no such user' (repeatable)",
    )
    parser.add_argument("--sync", choices=("normal", "full", "off"), default="normal")
    parser.add_argument(
        "--with-parent", action="store_true", help="stop when the process that started this one ends (the demo)"
    )
    args = parser.parse_args(argv)
    auth = None
    if args.user is not None:
        password = args.password if args.password is not None else os.environ.get("USERLOOP_SINK_PASSWORD")
        if password is None:
            parser.error("--user needs --password or USERLOOP_SINK_PASSWORD")
        auth = (args.user, password)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with SmtpSink(args.dir, args.host, args.port, auth=auth, replies=dict(args.reply), sync=args.sync) as sink:
        print(json.dumps({"host": sink.host, "port": sink.port, "dir": str(args.dir)}), flush=True)
        parent = os.getppid()
        # with --with-parent: a parent killed without its cleanup (SIGKILL, SIGTERM) leaves no sink behind
        while not stop.wait(1.0 if args.with_parent else 3600):
            if args.with_parent and os.getppid() != parent:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
