"""The SMTP sink as a real server: its own process and in process, read back with Mailbox from outside."""

from __future__ import annotations

import json
import signal
import smtplib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from userloop.core.errors import NotFoundError, ValidationError
from userloop.engage.sink import Mailbox, SmtpSink, message_id_of


def raw(mid: str | None, subject: str = "hi", body: str = "hello") -> bytes:
    head = f"Message-ID: {mid}\r\n" if mid else ""
    return f"{head}From: a@example.com\r\nTo: b@example.com\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()


@pytest.fixture
def sink_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    folder = tmp_path / "mail"
    proc = subprocess.Popen(
        [sys.executable, "-m", "userloop.engage.sink", "--host", "127.0.0.1", "--port", "0", "--dir", str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        yield proc, int(ready["port"]), folder
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_sink_process_keeps_every_copy_and_counts_unique_message_ids(sink_process) -> None:
    proc, port, folder = sink_process
    with smtplib.SMTP("127.0.0.1", port, local_hostname="test.local", timeout=10) as smtp:
        for i in range(3):
            assert smtp.sendmail("a@example.com", [f"p{i}@example.com"], raw(f"<m{i}@t>", subject=f"s{i}")) == {}
        smtp.sendmail("a@example.com", ["p1@example.com"], raw("<m1@t>", subject="s1"))  # a transport-level resend
        smtp.sendmail("a@example.com", ["x@example.com"], raw(None))
        smtp.sendmail("a@example.com", ["x@example.com"], raw(None))
        # A 250 means committed: another process reads it while the sink still runs.
        with Mailbox(folder) as box:
            assert box.received() == 6
            assert box.unique() == 5  # m0, m1, m2 and the two without a Message-ID
            assert box.duplicates() == {"<m1@t>": 2}
            assert box.connections() == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    with Mailbox(folder) as box:
        first = box.messages(2)
        assert [m.subject for m in first] == ["s0", "s1"]
        assert first[0].rcpt_to == ["p0@example.com"]
        assert first[0].mail_from == "a@example.com"
        assert first[0].message_id == "<m0@t>"
        assert first[0].text == "hello\n"
        assert first[0].headers["To"] == "b@example.com"
        assert [m.seq for m in box.messages(after=4)] == [5, 6]
        assert box.received() == 6


def test_scripted_refusals_and_auth(tmp_path: Path) -> None:
    replies = {"Bounce@Example.com": "550 5.1.1 no such user", "later@example.com": "451 4.3.0 try again"}
    with SmtpSink(tmp_path, auth=("ops", "秘密-pw"), replies=replies) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, local_hostname="test.local", timeout=10) as smtp:
            smtp.ehlo()
            assert "PLAIN" in smtp.esmtp_features["auth"] and "LOGIN" in smtp.esmtp_features["auth"]
            code, _ = smtp.docmd("MAIL", "FROM:<a@example.com>")
            assert code == 530  # no MAIL before AUTH
            with pytest.raises(smtplib.SMTPAuthenticationError):
                smtp.login("ops", "wrong")
            smtp.docmd("AUTH", "PLAIN " + __import__("base64").b64encode("\0ops\0秘密-pw".encode()).decode())
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                smtp.sendmail("a@example.com", ["bounce@example.com"], raw("<b@t>"))
            assert refused.value.recipients["bounce@example.com"][0] == 550
            with pytest.raises(smtplib.SMTPRecipientsRefused) as later:
                smtp.sendmail("a@example.com", ["later@example.com"], raw("<l@t>"))
            assert later.value.recipients["later@example.com"][0] == 451
            smtp.sendmail("a@example.com", ["ok@example.com"], raw("<ok@t>"))
        assert sink.received == 1
    with Mailbox(tmp_path) as box:
        (only,) = box.messages()
        assert only.auth_user == "ops"
        assert only.rcpt_to == ["ok@example.com"]


def test_concurrent_connections_share_commits_and_lose_nothing(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def client(port: int, n: int, worker: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="test.local", timeout=30) as smtp:
                for i in range(n):
                    smtp.sendmail("a@example.com", ["b@example.com"], raw(f"<w{worker}-{i}@t>"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with SmtpSink(tmp_path, sync="full") as sink:
        threads = [threading.Thread(target=client, args=(sink.port, 50, w)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    with Mailbox(tmp_path) as box:
        assert box.received() == box.unique() == 200
        assert box.connections() == 4
        assert sorted(m.seq for m in box.messages()) == list(range(1, 201))


def test_a_restarted_sink_appends_to_the_same_mailbox(tmp_path: Path) -> None:
    with SmtpSink(tmp_path) as sink, smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
        smtp.sendmail("a@example.com", ["b@example.com"], raw("<1@t>"))
    with SmtpSink(tmp_path) as sink, smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
        smtp.sendmail("a@example.com", ["b@example.com"], raw("<1@t>"))
        smtp.sendmail("a@example.com", ["b@example.com"], raw("<2@t>"))
    with Mailbox(tmp_path) as box:
        assert [m.seq for m in box.messages()] == [1, 2, 3]
        assert [m.connection for m in box.messages()] == [1, 2, 2]
        assert (box.received(), box.unique(), box.duplicates()) == (3, 2, {"<1@t>": 2})


def test_stop_closes_open_connections_and_is_idempotent(tmp_path: Path) -> None:
    sink = SmtpSink(tmp_path).start()
    smtp = smtplib.SMTP("127.0.0.1", sink.port, timeout=10)
    smtp.sendmail("a@example.com", ["b@example.com"], raw("<1@t>"))
    sink.stop()
    sink.stop()
    with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
        smtp.sendmail("a@example.com", ["b@example.com"], raw("<2@t>"))
    smtp.close()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", sink.port)) != 0


def test_message_id_of_reads_folded_and_missing_fields() -> None:
    assert message_id_of(b"Subject: x\r\nMessage-Id:\r\n  <a@b>\r\n\r\nMessage-ID: <body@x>\r\n") == "<a@b>"
    assert message_id_of(b"Subject: x\r\n\r\nMessage-ID: <in-body@x>\r\n") is None
    assert message_id_of(b"message-id: <lower@x>  \n\nbody") == "<lower@x>"


def test_bad_settings_and_a_missing_mailbox(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        SmtpSink(tmp_path, replies={"a@example.com": "ok\r\n250 injected"})
    with pytest.raises(NotFoundError):
        Mailbox(tmp_path / "nothing")
    with SmtpSink(tmp_path) as first, pytest.raises(OSError, match="address already in use"):
        SmtpSink(tmp_path / "other", port=first.port).start()
