"""Shared fixtures for the journeys tests that run on a real workspace: a project (zone Asia/Shanghai) on DuckDB and
the SQLite metadata DB, people with profiles (``email``, ``$timezone``, ``$language``, ``push_enabled``,
``push_token``), a real SMTP sink (aiosmtpd on 127.0.0.1, port 0), an e-mail channel and a push channel saved
through the registry (secrets encrypted), materials and a benefit.

Time is never read from the machine: every load passes ``now_ms`` (the loader stamps ``received_at`` with it, and
the engine's event triggers read by ``received_at``), and every engine pass or delivery pass gets its ``now``.
Dates are in 2026, before today, because the reporter loads its ``$message_*`` events with the wall clock as the
load time and the loader refuses event times more than an hour in the future.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from userloop.engage import settings as engage_settings
from userloop.engage.assets import create_benefit, save_material
from userloop.engage.catalog import Journeys
from userloop.engage.channels.registry import ChannelBook, save_channel
from userloop.engage.delivery import Deliverer
from userloop.engage.engine import JourneyEngine
from userloop.engage.secrets import SecretBox
from userloop.engage.settings import EngageSettings
from userloop.engage.sink import Mailbox, MailMessage, SmtpSink
from userloop.ingest.api import load_table
from userloop.store import ProjectStore, Workspace
from userloop.store.meta import MetaStore, Project

PROJECT_ZONE = "Asia/Shanghai"
#: When the people's profiles are loaded (UTC): 2026-01-01 00:00.
PROFILES_AT = datetime(2026, 1, 1)


@dataclass(frozen=True)
class Person:
    """One test person: their distinct id and profile."""

    did: str
    zone: str | None = PROJECT_ZONE
    language: str = "zh-CN"
    push_enabled: bool = True
    email: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.email if self.email is not None else f"{self.did}@example.com"


def ms(at: datetime) -> int:
    """Milliseconds since the epoch of a naive-UTC datetime."""
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)


def _table(records: Sequence[dict[str, Any]]) -> pa.Table:
    """An Arrow table of Sensors-style canonical columns plus one column per property."""
    names: list[str] = []
    for r in records:
        for k in r:
            if k not in names:
                names.append(k)
    return pa.Table.from_pylist([{k: r.get(k) for k in names} for r in records])


@dataclass
class Env:
    """A workspace with one project ready for journeys."""

    ws: Workspace
    store: ProjectStore
    meta: MetaStore
    info: Project
    box: SecretBox
    sink: SmtpSink
    mail_dir: Path
    book: ChannelBook
    people: dict[str, Person] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    _events: int = 0

    # loading ------------------------------------------------------------------------------------------------------
    def add_people(self, people: Sequence[Person], at: datetime = PROFILES_AT) -> None:
        """Load the people's profiles (``profile_set``) at ``at`` and learn their person keys."""
        records = []
        for p in people:
            props: dict[str, Any] = {
                "email": p.address,
                "$language": p.language,
                "push_enabled": p.push_enabled,
                "push_token": f"token-{p.did}",
                **p.extra,
            }
            if p.zone is not None:
                props["$timezone"] = p.zone
            records.append({"type": "profile_set", "distinct_id": p.did, "time": ms(at), **props})
            self.people[p.did] = p
        result = load_table(self.store, _table(records), source="engage-test", now_ms=ms(at))
        assert result.rejected == 0, result
        self.keys = {str(d): int(u) for u, d in self.sql("SELECT user_id, first_id FROM {users}")}
        assert set(self.people) <= set(self.keys)

    def track(self, events: Sequence[tuple[str, str, datetime]], loaded_at: datetime, **props: Any) -> None:
        """Load ``(distinct_id, event, time)`` events, received at ``loaded_at``."""
        records = []
        for did, name, at in events:
            self._events += 1
            records.append({"type": "track", "event": name, "distinct_id": did, "time": ms(at),
                            "event_id": f"test-{self._events}", **props})  # fmt: skip
        result = load_table(self.store, _table(records), source="engage-test", now_ms=ms(loaded_at))
        assert result.rejected == 0, result

    def profile(self, did: str, at: datetime, **props: Any) -> None:
        record = {"type": "profile_set", "distinct_id": did, "time": ms(at), **props}
        result = load_table(self.store, _table([record]), source="engage-test", now_ms=ms(at))
        assert result.rejected == 0, result

    # reading ------------------------------------------------------------------------------------------------------
    def sql(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Plain SQL on the project's tables (``{events}``, ``{users}``): the independent read."""
        names = {t: self.store.table(t) for t in ("events", "users", "identities")}
        with self.store.store.lock:
            return self.store.con.execute(text.format(**names), list(params)).fetchall()

    def mail(self) -> list[MailMessage]:
        with Mailbox(self.mail_dir) as box:
            return box.messages()

    def mail_to(self) -> dict[str, int]:
        """How many messages each recipient got."""
        out: dict[str, int] = {}
        for m in self.mail():
            for rcpt in m.rcpt_to:
                out[rcpt] = out.get(rcpt, 0) + 1
        return out

    # engage -------------------------------------------------------------------------------------------------------
    def engine(self) -> JourneyEngine:
        return JourneyEngine(self.meta, self.info, self.store, self.book, link_secret=self.box.derive("links"))

    def deliverer(self, **kwargs: Any) -> Deliverer:
        return Deliverer(self.meta, self.info, self.book, link_secret=self.box.derive("links"), **kwargs)

    def journeys(self) -> Journeys:
        return Journeys(self.meta, self.info)

    def start(self, doc: dict[str, Any], at: datetime) -> int:
        """Create and start a journey; its id."""
        cat = self.journeys()
        saved = cat.create(doc)
        cat.transition(saved.id, "start", at)
        return saved.id

    def rules(self, **changes: Any) -> EngageSettings:
        """Save the project's delivery rules (the defaults with ``changes``)."""
        return engage_settings.save(self.meta, self.info.id, EngageSettings(**changes))


#: A plain reminder, an e-mail with a coupon, and a push message.
MATERIALS: dict[str, dict[str, Any]] = {
    "reminder": {
        "channel": "email",
        "subject": {"zh-CN": "您的购物车", "en": "Your cart"},
        "body": {"zh-CN": "您好 {{ person.id }}，购物车还在等您。", "en": "Hello {{ person.id }}, your cart waits."},
    },
    "welcome": {
        "channel": "email",
        "subject": {"zh-CN": "欢迎", "en": "Welcome"},
        "body": {
            "zh-CN": "欢迎！优惠券 {{ benefit.code }} 减 {{ benefit.amount }} 元。",
            "en": "Welcome! Coupon {{ benefit.code }} takes {{ benefit.amount }} off.",
        },
    },
    "nudge": {
        "channel": "push",
        "subject": {"zh-CN": "提醒", "en": "Reminder"},
        "body": {"zh-CN": "回来看看", "en": "Come back"},
    },
}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    ws, _ = Workspace.init(tmp_path / "ws", timezone=PROJECT_ZONE)
    store = ws.project()
    info = ws.project_info()
    box = SecretBox(SecretBox.generate_key())
    mail_dir = tmp_path / "mail"
    sink = SmtpSink(mail_dir).start()
    book = ChannelBook(ws.meta, info.id, box)
    try:
        save_channel(ws.meta, info.id, "mail", "email", "smtp",
                     {"host": "127.0.0.1", "port": sink.port, "sender": "运营团队 <ops@example.com>",
                      "username": None, "password": None, "timeout": 10},
                     box)  # fmt: skip
        # never called by these tests: people are reached on it, or not, by their profile
        save_channel(ws.meta, info.id, "app", "push", "jpush",
                     {"app_key": "k" * 24, "master_secret": "s" * 24, "endpoint": "http://127.0.0.1:9",
                      "report_endpoint": "http://127.0.0.1:9"},
                     box)  # fmt: skip
        for name, doc in MATERIALS.items():
            save_material(ws.meta, info, name, doc)
        create_benefit(ws.meta, info, "welcome10", amount=10, threshold=50, valid_days=14, stock=100)
        # no caps and no quiet hours unless a test sets them
        engage_settings.save(ws.meta, info.id, EngageSettings(caps=[], quiet_hours=None))
        yield Env(ws, store, ws.meta, info, box, sink, mail_dir, book)
    finally:
        book.close()
        sink.stop()
        ws.close()


__all__ = ["MATERIALS", "PROFILES_AT", "PROJECT_ZONE", "Env", "Person", "ms", "time"]
