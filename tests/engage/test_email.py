"""SmtpChannel against the real SMTP sink on 127.0.0.1: what arrives, per-recipient answers, AUTH, reuse, refusals."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from userloop.core.errors import ValidationError
from userloop.engage.channels.base import ChannelError, Message
from userloop.engage.channels.email import SmtpChannel, html_to_text, message_id, parse_address
from userloop.engage.sink import Mailbox, SmtpSink

NOW_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z, passed explicitly: the Date header never reads the machine's clock
SENDER = "运营团队 <noreply@shop.example.com>"


def msg(key: str, to: str, **kw: object) -> Message:
    fields: dict[str, object] = {"key": key, "channel": "email", "person": 1, "to": to, "body": "hello"}
    fields.update(kw)
    return Message(**fields)  # type: ignore[arg-type]


def channel(port: int, **kw: object) -> SmtpChannel:
    return SmtpChannel("mail", "127.0.0.1", port, SENDER, clock=lambda: NOW_S, **kw)  # type: ignore[arg-type]


def parsed(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_chinese_and_english_html_and_text_arrive_as_sent(tmp_path: Path) -> None:
    html = "<h1>春节快乐</h1><p>张三，您好！<a href='https://shop.example.com/c?id=1&amp;x=2'>领取优惠券</a></p>"
    batch = [
        msg("k-zh", "张三 <zhang.san@example.com>", subject="欢迎回来，张三！春节限时优惠 🎉", body=html, html=True,
            unsubscribe_url="https://shop.example.com/u?t=abc", headers={"X-Campaign": "春节-2026"}),
        msg("k-en", '"Doe, Jane" <jane@example.com>', subject="Welcome back", body="Plain text\n.leading dot\nend",
            unsubscribe_url="https://shop.example.com/u?t=def", category="transactional"),
    ]  # fmt: skip
    with SmtpSink(tmp_path) as sink:
        ch = channel(sink.port)
        results = ch.send(batch)
        ch.close()
    assert [(r.key, r.status, r.provider_id) for r in results] == [
        ("k-zh", "sent", "<k-zh@userloop.local>"),
        ("k-en", "sent", "<k-en@userloop.local>"),
    ]
    with Mailbox(tmp_path) as box:
        zh, en = box.messages()
    assert zh.rcpt_to == ["zhang.san@example.com"] and zh.mail_from == "noreply@shop.example.com"
    assert zh.subject == "欢迎回来，张三！春节限时优惠 🎉"
    assert zh.to == "张三 <zhang.san@example.com>"
    assert zh.headers["From"] == SENDER
    assert zh.message_id == "<k-zh@userloop.local>"
    assert zh.headers["Date"] == "Thu, 01 Jan 2026 00:00:00 +0000"
    assert zh.headers["List-Unsubscribe"] == "<https://shop.example.com/u?t=abc>"
    assert zh.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert zh.headers["X-Campaign"] == "春节-2026"
    assert zh.content_type == "multipart/alternative"
    assert zh.html == html
    assert zh.text == "春节快乐\n\n张三，您好！领取优惠券 (https://shop.example.com/c?id=1&x=2)\n"
    parts = [p.get_content_type() for p in parsed(zh.raw).walk()]
    assert parts == ["multipart/alternative", "text/plain", "text/html"]  # the preferred form last (RFC 2046)
    assert zh.raw.isascii()  # headers RFC 2047, bodies base64: no raw 8-bit without SMTPUTF8
    assert all(len(line) <= 78 for line in zh.raw.split(b"\r\n"))

    assert en.to == '"Doe, Jane" <jane@example.com>'
    assert en.text == "Plain text\n.leading dot\nend\n"  # the leading dot survives SMTP's dot-stuffing
    assert "List-Unsubscribe" not in en.headers  # transactional mail carries no unsubscribe link
    assert en.content_type == "text/plain" and en.html is None


def test_one_connection_for_a_batch_of_200_and_across_calls(tmp_path: Path) -> None:
    with SmtpSink(tmp_path) as sink:
        ch = channel(sink.port)
        first = ch.send([msg(f"p{i}", f"p{i}@example.com") for i in range(200)])
        second = ch.send([msg(f"q{i}", f"q{i}@example.com") for i in range(10)])
        ch.close()
        assert sink.connections == 1
    assert {r.status for r in first + second} == {"sent"}
    assert ch.connections == 1
    with Mailbox(tmp_path) as box:
        assert box.connections() == 1
        assert box.received() == box.unique() == 210
        assert [m.rcpt_to[0] for m in box.messages(3)] == ["p0@example.com", "p1@example.com", "p2@example.com"]


def test_per_recipient_answers_5xx_4xx_and_250(tmp_path: Path) -> None:
    replies = {"gone@example.com": "550 5.1.1 no such user", "full@example.com": "451 4.2.2 mailbox full"}
    with SmtpSink(tmp_path, replies=replies) as sink:
        ch = channel(sink.port)
        results = ch.send([msg("a", "gone@example.com"), msg("b", "full@example.com"), msg("c", "ok@example.com")])
        ch.close()
        assert sink.connections == 1  # a refusal does not cost the connection (the client sends RSET)
    assert [(r.status, r.error, r.retryable) for r in results] == [
        ("failed", "550", False),
        ("failed", "451", True),
        ("sent", None, False),
    ]
    with Mailbox(tmp_path) as box:
        assert [m.rcpt_to for m in box.messages()] == [["ok@example.com"]]


def test_auth_succeeds_and_bad_or_missing_credentials_raise(tmp_path: Path) -> None:
    with SmtpSink(tmp_path, auth=("ops", "口令-secret")) as sink:
        ch = channel(sink.port, username="ops", password="口令-secret")
        assert ch.send([msg("a", "a@example.com")])[0].status == "sent"
        ch.close()
        with pytest.raises(ChannelError, match="rejected the credentials") as bad:
            channel(sink.port, username="ops", password="wrong").send([msg("b", "b@example.com")])
        assert bad.value.code == "channel_unavailable" and "wrong" not in str(bad.value)
        with pytest.raises(ChannelError, match="requires AUTH"):
            channel(sink.port).send([msg("c", "c@example.com")])
    with Mailbox(tmp_path) as box:
        assert [(m.auth_user, m.rcpt_to) for m in box.messages()] == [("ops", ["a@example.com"])]


def test_auth_login_when_the_server_offers_only_login(tmp_path: Path) -> None:
    with SmtpSink(tmp_path, auth=("运营", "pw"), mechanisms=("LOGIN",)) as sink:
        ch = channel(sink.port, username="运营", password="pw")
        assert ch.send([msg("a", "a@example.com")])[0].status == "sent"
        ch.close()
    with Mailbox(tmp_path) as box:
        assert [m.auth_user for m in box.messages()] == ["运营"]


def test_server_down_raises_channel_error() -> None:
    ch = channel(free_port(), timeout=5.0)
    with pytest.raises(ChannelError, match="cannot connect") as down:
        ch.send([msg("a", "a@example.com")])
    assert down.value.status == 503
    assert ch.send([msg("bad", "not an address")])[0].error == "bad_address"  # nothing to send: no connection needed


def test_a_server_that_never_greets_times_out_as_channel_error() -> None:
    with socket.socket() as silent:  # listens (the kernel completes the handshake) but never says 220
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        ch = channel(silent.getsockname()[1], timeout=0.3)
        with pytest.raises(ChannelError, match="cannot connect"):
            ch.send([msg("a", "a@example.com")])


def test_starttls_not_offered_raises(tmp_path: Path) -> None:
    with SmtpSink(tmp_path) as sink, pytest.raises(ChannelError, match="STARTTLS"):
        channel(sink.port, starttls=True).send([msg("a", "a@example.com")])


def test_a_restarted_server_is_reconnected_once_and_a_resend_keeps_its_message_id(tmp_path: Path) -> None:
    with SmtpSink(tmp_path) as sink:
        port = sink.port
        ch = channel(port)
        assert ch.send([msg("k1", "a@example.com")])[0].status == "sent"
    # The kept connection is dead now; the next call finds it out, connects again, and sends.
    with SmtpSink(tmp_path, port=port):
        assert [r.status for r in ch.send([msg("k2", "b@example.com"), msg("k1", "a@example.com")])] == ["sent"] * 2
    assert ch.connections == 2
    with pytest.raises(ChannelError):  # nobody listens any more: the reconnect fails and nothing was answered
        ch.send([msg("k3", "c@example.com")])
    with Mailbox(tmp_path) as box:
        assert box.connections() == 2
        assert (box.received(), box.unique(), box.duplicates()) == (3, 2, {"<k1@userloop.local>": 2})


def test_a_server_closing_on_one_message_loses_only_that_one(tmp_path: Path) -> None:
    with SmtpSink(tmp_path, replies={"drop@example.com": "421 4.3.2 closing"}) as sink:
        ch = channel(sink.port)
        results = ch.send([msg("a", "a@example.com"), msg("d", "drop@example.com"), msg("b", "b@example.com")])
        ch.close()
        # 421 is a drop: one reconnect and one more try for "d", then "b" goes on a third connection.
        assert sink.connections == 3
    assert [(r.status, r.error, r.retryable) for r in results] == [
        ("sent", None, False),
        ("failed", "connection_lost", True),
        ("sent", None, False),
    ]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"subject": "hi\r\nBcc: victim@example.com"}, "bad_header"),
        ({"subject": "hi\nX-Evil: 1"}, "bad_header"),
        ({"headers": {"X-Tag": "a\r\nBcc: victim@example.com"}}, "bad_header"),
        ({"headers": {"X-Tag\r\nBcc": "victim@example.com"}}, "bad_header"),
        ({"headers": {"X Tag": "a"}}, "bad_header"),
        ({"headers": {"Bcc": "victim@example.com"}}, "bad_header"),
        ({"headers": {"content-type": "text/html"}}, "bad_header"),
        ({"unsubscribe_url": "https://x.example.com/u\r\nBcc: v@example.com"}, "bad_header"),
        ({"unsubscribe_url": "javascript:alert(1)"}, "bad_header"),
        ({"unsubscribe_url": "https://x.example.com/u>, <https://evil.example.com"}, "bad_header"),
        ({"to": "a@example.com\r\nBcc: victim@example.com"}, "bad_header"),
        ({"to": "a@example.com, victim@example.com"}, "bad_address"),
    ],
)
def test_header_injection_is_refused_and_nothing_is_sent(tmp_path: Path, fields: dict[str, object], error: str) -> None:
    with SmtpSink(tmp_path) as sink:
        ch = channel(sink.port)
        bad = msg("x", "a@example.com")
        results = ch.send([Message(**{**bad.__dict__, **fields}), msg("ok", "ok@example.com")])
        ch.close()
    assert (results[0].status, results[0].error, results[0].retryable) == ("failed", error, False)
    assert results[1].status == "sent"
    with Mailbox(tmp_path) as box:
        assert [m.rcpt_to for m in box.messages()] == [["ok@example.com"]]
        assert b"victim" not in box.messages()[0].raw


@pytest.mark.parametrize(
    "address",
    ["plain", "@example.com", "a@", "a@@example.com", "a b@example.com", "a@example", "a@exa_mple.com",
     "a@-example.com", "a@example..com", ".a@example.com", "a..b@example.com", "a@example.com>", "<a@example.com",
     '"quoted"@example.com', "a@[127.0.0.1]", "a@1.2.3.4", "x" * 65 + "@example.com", "a@" + "b" * 64 + ".com", "",
     "a\u2028b@example.com", "a\x85@example.com", "a@exa\u2028mple.com"],
)  # fmt: skip
def test_malformed_addresses_are_bad_address_failures_not_exceptions(address: str) -> None:
    ch = channel(free_port())  # never connects: nothing valid to send
    assert ch.send([msg("k", address)]) == [ch.build(msg("k", address))]
    (result,) = ch.send([msg("k", address)])
    assert (result.status, result.error, result.retryable) == ("failed", "bad_address", False)


def test_well_formed_addresses_parse() -> None:
    assert parse_address("a.b+tag@sub.example.com") is not None
    box = parse_address('"王, 五" <Wang.Wu@Example.COM>')
    assert box is not None and (box.name, box.local, box.domain) == ("王, 五", "Wang.Wu", "example.com")
    idn = parse_address("用户@例子.中国")
    assert idn is not None and idn.domain == "xn--fsqu00a.xn--fiqs8s" and idn.utf8


def test_unicode_local_part_goes_with_smtputf8_and_idn_domain_as_punycode(tmp_path: Path) -> None:
    with SmtpSink(tmp_path) as sink:
        ch = channel(sink.port)
        results = ch.send([msg("u1", "李四 <李四@例子.中国>", subject="你好"), msg("u2", "b@例子.中国")])
        ch.close()
    assert [r.status for r in results] == ["sent", "sent"]
    with Mailbox(tmp_path) as box:
        utf8, idn = box.messages()
    assert utf8.rcpt_to == ["李四@xn--fsqu00a.xn--fiqs8s"] and utf8.subject == "你好"
    assert idn.rcpt_to == ["b@xn--fsqu00a.xn--fiqs8s"] and idn.raw.isascii()


def test_message_ids_are_valid_and_deterministic_for_any_key() -> None:
    assert message_id("ab12.cd", "userloop.local") == "<ab12.cd@userloop.local>"
    assert message_id("j1:v2/n 3", "x.example") == "<j1%3Av2/n%203@x.example>"
    assert message_id("..", "x.example") == "<%2E%2E@x.example>"
    assert message_id("50%", "x.example") == message_id("50%", "x.example") == "<50%25@x.example>"


@settings(max_examples=examples(150))
@given(
    subject=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200),
    name=st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="<>"), max_size=40),
    body=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=300),
)
@example(subject="=?utf-8?q?not_an_encoded_word?=", name='a "quoted" \\ name', body=".\n..\n")
@example(subject="中" * 300, name="张三" * 30, body="x" * 2000)
def test_headers_and_bodies_round_trip_through_a_mail_parser(subject: str, name: str, body: str) -> None:
    out = channel(25).build(msg("k", f"{name} <a@example.com>" if name.strip() else "a@example.com",
                                subject=subject, body=body))  # fmt: skip
    assert not isinstance(out, type(None))
    raw = getattr(out, "raw", None)
    assert raw is not None, out
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    back = parsed(raw)
    assert str(back["Subject"]) == subject
    assert back.get_content().replace("\r\n", "\n") in (body, body + "\n")  # SMTP ends the data with CRLF
    if name.strip():
        shown = back["To"].addresses[0].display_name
        if len(name.strip().encode()) <= 45:  # one encoded word
            assert shown == name.strip()
        else:  # several: Python's phrase parser puts a space between them, which RFC 2047 §6.2 says to drop
            assert shown.replace(" ", "") == name.strip().replace(" ", "")


def test_html_to_text_drops_scripts_and_keeps_links() -> None:
    html = "<style>p{}</style><p>第一段</p><script>x()</script><p>见 <a href='https://a.example/x'>这里</a><br>完</p>"
    assert html_to_text(html) == "第一段\n\n见 这里 (https://a.example/x)\n完\n"
    tricky = (
        '<!-- <p>hidden</p> --><P TITLE="a>b">5 &lt; 6 &amp;&nbsp;ok</P><SCRIPT>if (a<b) {}</SCRIPT>'
        '<a href=javascript:alert(1)>x</a> <a HREF="https://a.example/?a=1&amp;b=2">y</a> 3 < 4'
    )
    assert html_to_text(tricky) == "5 < 6 & ok\nx y (https://a.example/?a=1&b=2) 3 < 4\n"


@settings(max_examples=examples(100))
@given(st.lists(st.sampled_from(["<", ">", "/", "a", "p", "br", "script", "!--", "-->", '"', "'", "=", " ", "字", "&",
                                 "amp;", "href", "\n"])).map("".join))  # fmt: skip
def test_html_to_text_takes_any_markup(html: str) -> None:
    text = html_to_text(html)
    assert text.endswith("\n") and "\n\n\n" not in text


def test_bad_channel_settings() -> None:
    with pytest.raises(ValidationError) as bad_sender:
        SmtpChannel("m", "127.0.0.1", 25, "not an address")
    assert bad_sender.value.code == "channel_invalid" and bad_sender.value.field == "sender"
    with pytest.raises(ValidationError):
        SmtpChannel("m", "127.0.0.1", 25, SENDER, domain="bad domain")
    with pytest.raises(ValidationError):
        SmtpChannel("m", "127.0.0.1", 25, SENDER, username="u")


def test_every_person_gets_exactly_one_message_through_a_sink_process(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    proc = subprocess.Popen(
        [sys.executable, "-m", "userloop.engage.sink", "--port", "0", "--dir", str(folder), "--user", "ops",
         "--password", "pw", "--reply", "nobody@example.com=550 5.1.1 no such user"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        port = int(json.loads(proc.stdout.readline())["port"])
        people = [msg(f"j1-n2-p{i}", f"person{i}@example.com", person=i, subject=f"第{i}封") for i in range(300)]
        ch = channel(port, username="ops", password="pw")
        results = ch.send([*people[:150], msg("x", "nobody@example.com"), *people[150:]])
        # A crash after the batch: the runtime resends the last 20 under the same keys.
        resent = ch.send(people[-20:])
        ch.close()
        assert [r.error for r in results if r.status == "failed"] == ["550"]
        assert all(r.status == "sent" for r in resent)
        with Mailbox(folder) as box:
            assert box.received() == 320
            assert box.unique() == 300
            assert set(box.duplicates().values()) == {2} and len(box.duplicates()) == 20
            assert box.connections() == 1
            got = sorted(m.rcpt_to[0] for m in box.messages())
            assert sorted(set(got)) == sorted(f"person{i}@example.com" for i in range(300))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        if proc.stdout is not None:
            proc.stdout.close()
