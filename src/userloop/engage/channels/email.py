"""E-mail over SMTP: one connection reused across a batch and across calls, one SMTP transaction per message.

What goes on the wire (RFC 5321 for the transaction, RFC 5322 for the message):

- ``Message-ID: <{key}@{domain}>`` (RFC 5322 §3.6.4) from the outbox's idempotency key, so a resend after a crash
  carries the same id and a receiving mailbox that de-duplicates by ``Message-ID`` shows one copy. A key that is
  not a dot-atom (``atext`` and single inner dots), or holds a '%', goes percent-encoded (:func:`message_id`: the
  same way every time, two keys never one id). The id is also the delivery's ``provider_id``, angle brackets
  included, as bounces quote it.
- Non-ASCII subjects, display names and extra header values are RFC 2047 encoded words (UTF-8), domains are IDNA
  (punycode); a non-ASCII local part needs the server's ``SMTPUTF8`` extension (RFC 6531), and the message is then
  sent with ``MAIL FROM … SMTPUTF8`` and the address in UTF-8 (RFC 6532). Bodies are ``text/plain`` (or
  ``multipart/alternative`` with a plain-text rendition of the HTML first and the HTML last, RFC 2046 §5.1.4),
  canonical CRLF text as 7bit when ASCII, else base64: never raw 8-bit, so any server takes them.
- ``List-Unsubscribe: <url>`` (RFC 2369) with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058) for
  marketing messages that carry an ``unsubscribe_url`` (http, https; a ``mailto:`` gets no Post header). RFC 8058
  wants an HTTPS URL and a DKIM signature covering both fields: the URL is the operator's, the signing is the
  outbound relay's.

Per message: ``250`` → ``sent``; a ``5xx`` reply (to MAIL, RCPT or DATA) → ``failed`` with the code as ``error``,
not retryable; ``4xx`` → ``failed``, retryable. Checked before anything is sent: a malformed address is ``failed``
``bad_address``; CR or LF in any header value, a header name that is not an RFC 5322 field name, or an extra header
that would replace one the adapter writes (From, To, Subject, Message-ID, Content-*, …) is ``failed`` ``bad_header``
(header injection); neither is retryable. A connection that drops (or a ``421``, the server closing) is opened again
once and the message sent again on it, under the same ``Message-ID``. :class:`ChannelError` when the server cannot
be reached, refuses the credentials or wants some (``530``) before any message of the call got an answer; after
that, the rest of the batch is ``failed`` ``connection_lost`` (retryable), so what was already accepted is not
reported as unsent. A message whose connection drops twice is ``connection_lost`` too, and the next goes on.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import formatdate

from userloop.core.errors import ValidationError
from userloop.engage.channels.base import ChannelError, ChannelKind, Delivery, Message

#: Headers the adapter writes itself; ``Message.headers`` may not set them.
RESERVED_HEADERS = frozenset(
    {
        "from", "sender", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version", "content-type",
        "content-transfer-encoding", "content-disposition", "list-unsubscribe", "list-unsubscribe-post",
        "received", "return-path",
    }
)  # fmt: skip

# RFC 5322 §3.2.3 atext, plus non-ASCII characters (RFC 6532 §3.2 UTF8-non-ascii) in a local part, but not the C1
# controls nor U+2028/U+2029, which some parsers take for line ends.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_UTF8 = r"\u00a0-\u2027\u202a-\U0010ffff"
_LOCAL = re.compile(rf"[{_ATEXT}{_UTF8}]+(?:\.[{_ATEXT}{_UTF8}]+)*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 §3.6.8 ftext: printable ASCII but ':'
_MSGID_KEY = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_NAMED = re.compile(r"\s*(.*?)\s*<([^<>]*)>\s*")
_UNSUB_SCHEMES = ("http://", "https://", "mailto:")
_CONTROL = ("\r", "\n", "\0")


@dataclass(frozen=True)
class EmailAddress:
    """A checked address: display name, ASCII-compatible ``local@domain`` and whether it needs SMTPUTF8."""

    name: str
    local: str
    domain: str

    @property
    def addr_spec(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def utf8(self) -> bool:
        return not self.local.isascii()


def parse_address(text: str) -> EmailAddress | None:
    """``addr@domain`` or ``Display Name <addr@domain>`` checked (dot-atom local part, LDH or IDN domain of two
    labels or more, RFC 5321 §4.5.3.1 lengths); None when malformed. Quoted local parts and address literals are
    refused: no mass mailing needs them and they are where parsers disagree."""
    if any(c in text for c in _CONTROL):
        return None
    named = _NAMED.fullmatch(text)
    name, spec = (named.group(1), named.group(2).strip()) if named else ("", text.strip())
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    local, at, domain = spec.rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or len(local.encode()) > 64:
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        return None
    if len(ascii_domain) > 253 or len(local.encode()) + 1 + len(ascii_domain) > 254:
        return None
    return EmailAddress(name=name, local=local, domain=ascii_domain.lower())


def _encoded_words(value: str, first: int) -> str:
    """RFC 2047 §4.1 'B' encoded words of UTF-8, one per folded line, every line at most 76 characters (§2) and
    never splitting a character (§5); the first line already holds ``first`` characters (``"Subject: "``)."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    # 12 characters of "=?utf-8?b??=" around 4 base64 characters per 3 bytes; later lines start with one space.
    budget = max(3, (76 - first - 12) // 4 * 3)
    for char in value:
        n = len(char.encode())
        if size + n > budget and chunk:
            words.append("".join(chunk))
            chunk, size, budget = [], 0, 45
        chunk.append(char)
        size += n
    words.append("".join(chunk))
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words)


def _unstructured(value: str, first: int) -> str:
    """An unstructured field body (RFC 5322 §3.2.5): ASCII as it is while it fits a line of 998, else encoded
    words (RFC 2047), which also keeps any line of the field short."""
    if value.isascii() and first + len(value) <= 900 and "=?" not in value:
        return value
    return _encoded_words(value, first)


def _address_field(box: EmailAddress, first: int) -> str:
    """``name <addr>``: an ASCII name as an atom phrase or a quoted string, any other as encoded words."""
    if not box.name:
        return box.addr_spec
    name = box.name
    if not name.isascii() or "=?" in name:
        phrase = _encoded_words(name, first)
    elif re.fullmatch(rf"[{_ATEXT} ]+", name):
        phrase = name
    else:
        phrase = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{phrase} <{box.addr_spec}>"


def _body(text: str) -> tuple[bytes, str]:
    """Canonical CRLF text as 7bit when it is ASCII in lines of at most 998 octets, else base64 in lines of 76."""
    canonical = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    if canonical.isascii() and all(len(line) <= 998 for line in canonical.split("\r\n")):
        return canonical.encode(), "7bit"
    return base64.encodebytes(canonical.encode()).replace(b"\n", b"\r\n"), "base64"


def _boundary(key: str, parts: bytes) -> str:
    """A multipart boundary (RFC 2046 §5.1.1) derived from the key and absent from the parts."""
    boundary = "=_ul_" + hashlib.sha256(key.encode()).hexdigest()[:24]
    while boundary.encode() in parts:
        boundary += "_"
    return boundary


def message_id(key: str, domain: str) -> str:
    """``<key@domain>``; a key that is not a dot-atom without '%' has every character but atext percent-encoded
    (dots and '%' included), so the mapping is deterministic and one-to-one."""
    if not _MSGID_KEY.fullmatch(key) or "%" in key:  # '%' too, so two keys never give one id
        key = "".join(c if re.fullmatch(f"[{_ATEXT}]", c) and c != "%" else _pct(c) for c in key)
    return f"<{key}@{domain}>"


def _pct(c: str) -> str:
    return "".join(f"%{b:02X}" for b in c.encode())


# One scan of an HTML body: comments, tags (attribute values quoted either way may hold '>'), text, a stray '<'.
_TOKEN = re.compile(r"""<!--.*?(?:-->|$)|<(/?)([A-Za-z][A-Za-z0-9]*)((?:[^>"']|"[^"]*"|'[^']*')*)>|([^<]+)|<""", re.S)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_BLOCK = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"})


def html_to_text(body: str) -> str:
    """The plain-text alternative of an HTML body: its text, a line break at each block, links as ``text (url)``
    (http, https, mailto), scripts, styles and comments dropped, entities decoded.

    A single regular-expression scan instead of :class:`html.parser.HTMLParser`, which took three quarters of
    the time to build a message; the result only has to read well, it is never parsed again."""
    out: list[str] = []
    hrefs: list[str | None] = []
    pos = 0
    while pos < len(body):
        token = _TOKEN.match(body, pos)
        assert token is not None  # the last alternative matches any '<'
        pos = token.end()
        close, tag, attrs, text = token.groups()
        if tag is None:
            if not token.group(0).startswith("<!--"):
                out.append(text if text is not None else "<")
            continue
        tag = tag.lower()
        if tag in ("script", "style"):
            if not close:  # raw text up to its end tag (HTML §13.1.2.1): '<' inside is not a tag
                end = re.compile(rf"</{tag}\s*>", re.I).search(body, pos)
                pos = end.end() if end else len(body)
        elif tag in _BLOCK:
            out.append("\n")
        elif tag == "a" and not close:
            href = _HREF.search(attrs)
            hrefs.append(next((g for g in href.groups() if g is not None), None) if href else None)
        elif tag == "a" and hrefs:
            link = hrefs.pop()
            if link and html.unescape(link).strip().lower().startswith(("http://", "https://", "mailto:")):
                out.append(f" ({link.strip()})")
    lines = (" ".join(line.split()) for line in html.unescape("".join(out)).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


@dataclass(frozen=True)
class _Outgoing:
    key: str
    message_id: str
    mail_from: str
    rcpt_to: str
    raw: bytes
    utf8: bool


class _LostError(Exception):
    """The connection dropped twice for one message."""


def _failed(key: str, error: str, retryable: bool = False) -> Delivery:
    return Delivery(key=key, status="failed", error=error, retryable=retryable)


class SmtpChannel:
    """An SMTP relay as a :class:`~userloop.engage.channels.base.Channel` (kind ``email``).

    ``sender`` is the ``From`` (``"运营团队 <noreply@example.com>"`` or a bare address) and the envelope sender;
    ``domain`` is the right side of every ``Message-ID`` and the name given in ``EHLO``. ``username``/``password``
    log in (AUTH PLAIN or LOGIN, whichever the server offers; RFC 4954) after ``STARTTLS`` when ``starttls``
    (RFC 3207; ``ssl_context`` defaults to the system's verifying context). ``clock`` gives the ``Date`` header's
    time (seconds since the epoch).
    """

    kind: ChannelKind = "email"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
        domain: str = "userloop.local",
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parsed = parse_address(sender)
        if parsed is None:
            raise ValidationError(f"the sender {sender!r} is not an e-mail address", code="channel_invalid",
                                  field="sender")  # fmt: skip
        checked_domain = parse_address(f"x@{domain}")
        if checked_domain is None:
            raise ValidationError(f"{domain!r} is not a domain name", code="channel_invalid", field="domain")
        if (username is None) != (password is None):
            raise ValidationError("username and password go together", code="channel_invalid", field="username")
        if not 0 < port < 65536:
            raise ValidationError(f"port {port} is out of range", code="channel_invalid", field="port")
        self.name = name
        self.host = host
        self.port = port
        self.sender = parsed
        self.username = username
        self._password = password
        self.starttls = starttls
        self.timeout = timeout
        self.domain = checked_domain.domain
        self.ssl_context = ssl_context
        self.clock = clock
        #: Connections opened so far (each reconnect counts): one per channel while the server keeps it open.
        self.connections = 0
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    # -- building ---------------------------------------------------------------------------------------------

    def build(self, message: Message) -> _Outgoing | Delivery:
        """The message's envelope and bytes, or its ``failed`` delivery when it cannot be sent as given."""
        key = message.key
        values = [message.to, message.subject or "", message.unsubscribe_url or "", key]
        values += [*message.headers.keys(), *message.headers.values()]
        if any(c in v for v in values for c in _CONTROL):
            return _failed(key, "bad_header")
        for header in message.headers:
            if not _FIELD_NAME.fullmatch(header) or header.lower() in RESERVED_HEADERS:
                return _failed(key, "bad_header")
        to = parse_address(message.to)
        if to is None:
            return _failed(key, "bad_address")
        unsubscribe = message.unsubscribe_url if message.category == "marketing" else None
        if unsubscribe is not None and (
            not unsubscribe.startswith(_UNSUB_SCHEMES)
            or not unsubscribe.isascii()
            or any(c in unsubscribe for c in " <>\t")
            or len(unsubscribe) > 900
        ):
            return _failed(key, "bad_header")

        utf8 = to.utf8 or self.sender.utf8
        mid = message_id(key, self.domain)
        head = [
            ("From", _address_field(self.sender, 6)),
            ("To", _address_field(to, 4)),
            *([("Subject", _unstructured(message.subject, 9))] if message.subject is not None else []),
            ("Date", formatdate(self.clock(), usegmt=True)),
            ("Message-ID", mid),
        ]
        if unsubscribe is not None:
            head.append(("List-Unsubscribe", f"<{unsubscribe}>"))
            if not unsubscribe.startswith("mailto:"):
                head.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        head += [(name, _unstructured(value, len(name) + 2)) for name, value in message.headers.items()]
        head.append(("MIME-Version", "1.0"))
        if message.html:
            text, text_cte = _body(html_to_text(message.body))
            rich, rich_cte = _body(message.body)
            boundary = _boundary(key, text + rich)
            head.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
            body = b"".join(
                [
                    f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    f"Content-Transfer-Encoding: {text_cte}\r\n\r\n".encode(),
                    text,
                    f"\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
                    f"Content-Transfer-Encoding: {rich_cte}\r\n\r\n".encode(),
                    rich,
                    f"\r\n--{boundary}--\r\n".encode(),
                ]
            )
        else:
            body, cte = _body(message.body)
            head += [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", cte)]
        raw = "".join(f"{name}: {value}\r\n" for name, value in head).encode() + b"\r\n" + body
        return _Outgoing(key, mid, self.sender.addr_spec, to.addr_spec, raw, utf8)

    # -- the connection ---------------------------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        where = f"SMTP server {self.host}:{self.port} of channel {self.name!r}"
        try:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.domain, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"cannot connect to the {where}: {exc}") from exc
        try:
            smtp.ehlo()
            if self.starttls:
                if not smtp.has_extn("starttls"):
                    raise ChannelError(f"the {where} does not offer STARTTLS")
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.username is not None and self._password is not None:
                self._login(smtp, where)
            if smtp.has_extn("smtputf8"):
                smtp.command_encoding = "utf-8"  # MAIL/RCPT may carry a UTF-8 address (RFC 6531 §3.2)
        except ChannelError:
            smtp.close()
            raise
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            smtp.close()
            raise ChannelError(f"the {where} failed during the greeting: {exc}") from exc
        except BaseException:
            smtp.close()
            raise
        self.connections += 1
        return smtp

    def _login(self, smtp: smtplib.SMTP, where: str) -> None:
        """AUTH PLAIN (RFC 4616) or LOGIN, whichever the server offers, with UTF-8 credentials (smtplib's
        ``login`` encodes them as ASCII, so a Chinese password would fail on our side, not the server's)."""
        assert self.username is not None and self._password is not None
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        user, password = self.username.encode(), self._password.encode()
        if "PLAIN" in offered:
            code, _ = smtp.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0" + user + b"\0" + password).decode())
        elif "LOGIN" in offered:
            code, _ = smtp.docmd("AUTH", "LOGIN " + base64.b64encode(user).decode())
            if code == 334:
                code, _ = smtp.docmd(base64.b64encode(password).decode())
        else:
            raise ChannelError(f"the {where} does not offer AUTH PLAIN or LOGIN")
        if code != 235:
            raise ChannelError(f"the {where} rejected the credentials of user {self.username!r} ({code})",
                               hint="check the channel's username and password")  # fmt: skip

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    @staticmethod
    def _transaction(smtp: smtplib.SMTP, out: _Outgoing) -> int:
        """MAIL, RCPT, DATA (RFC 5321 §3.3) for one message; the code of the reply that ended it (250 accepted).

        Commands are written here rather than through ``sendmail``, which parses both addresses again with
        ``email.utils.parseaddr`` on every message (they are checked once, in :meth:`build`); ``data`` still does
        the dot-stuffing. After a refusal the transaction is reset (RSET) so the connection serves the next."""
        code, _ = smtp.docmd("MAIL", _path("FROM", out.mail_from) + (" SMTPUTF8" if out.utf8 else ""))
        if code == 250:
            code, _ = smtp.docmd("RCPT", _path("TO", out.rcpt_to))
            if code in (250, 251):
                try:
                    code, _ = smtp.data(out.raw)
                except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
                    code = exc.smtp_code
                if code == 250:
                    return code
        if code != 421:
            smtp.rset()
        return code

    def _deliver(self, out: _Outgoing) -> Delivery:
        """One SMTP transaction on the kept connection; on a drop, one more on a new one (:class:`_LostError` after)."""
        for _attempt in range(2):
            if self._smtp is None:
                self._smtp = self._connect()  # ChannelError: send() decides what it means for the batch
            smtp = self._smtp
            if out.utf8 and not smtp.has_extn("smtputf8"):
                return _failed(out.key, "smtputf8_unsupported")
            try:
                code = self._transaction(smtp, out)
            except (smtplib.SMTPServerDisconnected, OSError):
                code = 421
            if code == 250:
                return Delivery(key=out.key, status="sent", provider_id=out.message_id)
            if code == 421:  # the server closes the transmission channel (RFC 5321 §3.8): a drop
                self._drop()
                continue
            if code == 530:  # authentication required (RFC 4954 §6): the channel lacks credentials, not the message
                self._drop()
                raise ChannelError(f"the SMTP server of channel {self.name!r} requires AUTH",
                                   hint="set the channel's username and password")  # fmt: skip
            return _failed(out.key, str(code), retryable=not 500 <= code < 600)
        raise _LostError

    # -- the Channel interface --------------------------------------------------------------------------------

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        """One :class:`Delivery` per message, in order (see the module's docstring for the mapping)."""
        results: list[Delivery] = []
        answered = False
        with self._lock:
            for message in messages:
                out = self.build(message)
                if isinstance(out, Delivery):
                    results.append(out)
                    continue
                try:
                    delivery = self._deliver(out)
                except ChannelError:
                    if answered:
                        results.append(_failed(out.key, "connection_lost", retryable=True))
                        continue
                    raise
                except _LostError:
                    delivery = _failed(out.key, "connection_lost", retryable=True)
                answered = True
                results.append(delivery)
        return results

    def close(self) -> None:
        """QUIT and close the kept connection (the next :meth:`send` opens a new one)."""
        with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is not None:
                try:
                    smtp.quit()
                except (OSError, smtplib.SMTPException):
                    smtp.close()


def _path(keyword: str, address: str) -> str:
    """An SMTP command's argument, ``FROM:<address>`` or ``TO:<address>`` (RFC 5321 §4.1.1.2–3)."""
    return f"{keyword}:<{address}>"
