"""The demo's two journeys on the simulated business, sending e-mail to a local SMTP sink the demo starts:

- **welcome** (新用户欢迎): a new registration gets a first-order coupon by e-mail, then the journey waits three days
  for the first order; who has not ordered by then gets a reminder. Goal: an order within seven days.
- **win-back** (流失挽回): the repeat buyers at high churn risk (the demo's segment) are split 45 / 45 / 10 into two
  messages and a control branch that receives nothing, so the messages' effect can be read against it. Goal: an
  order within fourteen days.

Simulated people have no e-mail address, so each gets one on the sink's test domain (``user<id>@demo.userloop.test``),
written as a profile property through the loader like any import.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from sqlalchemy import select

from userloop.benefits import BenefitRow
from userloop.engage import settings as engage_settings
from userloop.engage.catalog import Journeys
from userloop.engage.channels.registry import save_channel
from userloop.engage.secrets import SecretBox
from userloop.engage.tables import MaterialRow
from userloop.engage.templates import Material
from userloop.ingest.api import load_table
from userloop.query.compile import sql
from userloop.store.workspace import Workspace

DOMAIN = "demo.userloop.test"
WINBACK_SEGMENT = "高流失风险的复购用户 / repeat buyers at high churn risk"

MATERIALS: dict[str, dict[str, Any]] = {
    "welcome_coupon": {
        "channel": "email",
        "subject": {
            "zh-CN": "欢迎加入！送你 {{ benefit.amount }} 元首单券",
            "en": "Welcome! ¥{{ benefit.amount }} off",
        },
        "body": {
            "zh-CN": "你好，感谢注册。首单满 {{ benefit.threshold }} 元减 {{ benefit.amount }} 元，券码 "
            "{{ benefit.code }}，{{ benefit.valid_until | date }} 前有效。\n退订：{{ links.unsubscribe }}",
            "en": "Hello, thanks for joining. ¥{{ benefit.amount }} off an order of ¥{{ benefit.threshold }} or "
            "more with code {{ benefit.code }}, valid until {{ benefit.valid_until | date }}.\n"
            "Unsubscribe: {{ links.unsubscribe }}",
        },
    },
    "welcome_reminder": {
        "channel": "email",
        "subject": {"zh-CN": "你的首单券还没用哦", "en": "Your first-order coupon is waiting"},
        "body": {
            "zh-CN": "首单券即将过期，别错过。\n退订：{{ links.unsubscribe }}",
            "en": "Your coupon expires soon.\nUnsubscribe: {{ links.unsubscribe }}",
        },
    },
    "winback_discount": {
        "channel": "email",
        "subject": {"zh-CN": "好久不见，回来看看？", "en": "We miss you"},
        "body": {
            "zh-CN": "送你一张满 {{ benefit.threshold }} 减 {{ benefit.amount }} 的回归券：{{ benefit.code }}。\n"
            "退订：{{ links.unsubscribe }}",
            "en": "A welcome-back coupon: ¥{{ benefit.amount }} off ¥{{ benefit.threshold }}, code "
            "{{ benefit.code }}.\nUnsubscribe: {{ links.unsubscribe }}",
        },
    },
    "winback_news": {
        "channel": "email",
        "subject": {"zh-CN": "本周新品上架", "en": "New this week"},
        "body": {
            "zh-CN": "新品和热卖都在这里，回来逛逛吧。\n退订：{{ links.unsubscribe }}",
            "en": "New arrivals and best sellers are in.\nUnsubscribe: {{ links.unsubscribe }}",
        },
    },
}
BENEFITS = (
    {"name": "first_order", "amount": 20.0, "threshold": 99.0, "valid_days": 7, "stock": 100_000},
    {"name": "winback", "amount": 30.0, "threshold": 199.0, "valid_days": 14, "stock": 50_000},
)


def welcome_journey() -> dict[str, Any]:
    return {
        "name": "welcome",
        "description": "新用户欢迎：首单券，三天未下单提醒 / first-order coupon, a reminder after three days",
        "entry": {"kind": "event", "event": "register"},
        "start": "coupon",
        "goal": {"event": "order_paid", "within_seconds": 7 * 86400, "exit": True},
        "nodes": [
            {"kind": "send", "id": "coupon", "channel": "email", "material": "welcome_coupon",
             "benefit": "first_order", "next": "wait_order"},
            {"kind": "wait_event", "id": "wait_order", "event": "order_paid", "timeout_seconds": 3 * 86400,
             "next": None, "timeout_next": "reminder"},
            {"kind": "send", "id": "reminder", "channel": "email", "material": "welcome_reminder"},
        ],
    }  # fmt: skip


def winback_journey(segment: int, at: datetime) -> dict[str, Any]:
    return {
        "name": "win-back",
        "description": "流失挽回：两种消息 A/B，对照组不发送 / two messages A/B and a control branch",
        "entry": {"kind": "schedule", "segment": segment, "once_at": at.isoformat()},
        "start": "ab",
        "goal": {"event": "order_paid", "within_seconds": 14 * 86400, "exit": True},
        "nodes": [
            {"kind": "split", "id": "ab", "branches": [
                {"name": "discount", "percent": 45, "next": "send_discount"},
                {"name": "news", "percent": 45, "next": "send_news"},
                {"name": "control", "percent": 10, "control": True},
            ]},
            {"kind": "send", "id": "send_discount", "channel": "email", "material": "winback_discount",
             "benefit": "winback"},
            {"kind": "send", "id": "send_news", "channel": "email", "material": "winback_news"},
        ],
    }  # fmt: skip


def set_up(ws: Workspace, project: str, *, sink_port: int, public_url: str, now: datetime) -> dict[str, Any]:
    """Addresses, settings, the e-mail channel to the sink, materials, benefits and both journeys, started."""
    info = ws.meta.project(project)
    assert info is not None
    store = ws.project(project)
    people = store.fetchall(sql("SELECT user_id, first_id FROM $u WHERE first_id IS NOT NULL", u=store.ref("users")))
    when = int((now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp() * 1000)
    load_table(
        store,
        pa.table(
            {
                "type": ["profile_set"] * len(people),
                "distinct_id": [str(d) for _, d in people],
                "time": pa.array([when] * len(people), type=pa.int64()),
                "email": [f"user{p}@{DOMAIN}" for p, _ in people],
            }
        ),
        source="demo",
    )
    engage_settings.save(ws.meta, info.id, engage_settings.EngageSettings(control_share=0.05, public_url=public_url))
    box = SecretBox.for_workspace(ws.path)
    save_channel(
        ws.meta,
        info.id,
        "email",
        "email",
        "smtp",
        {"host": "127.0.0.1", "port": sink_port, "sender": f"userloop 演示 <ops@{DOMAIN}>", "domain": DOMAIN},
        box,
        rate_per_second=None,
    )
    with ws.meta.session.begin() as s:
        for name, doc in MATERIALS.items():
            s.add(MaterialRow(project_id=info.id, name=name, definition=Material.model_validate(doc).model_dump_json()))
        for b in BENEFITS:
            s.add(BenefitRow(project_id=info.id, kind="coupon", **b))
    journeys = Journeys(ws.meta, info)
    welcome = journeys.create(welcome_journey())
    journeys.transition(welcome.id, "start", now)
    started = [welcome.name]
    segment = _segment_id(ws, info.id)
    if segment is not None:
        local = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(ZoneInfo(info.timezone))
        at = datetime.combine(local.date(), time(local.hour, local.minute)) + timedelta(minutes=1)
        winback = journeys.create(winback_journey(segment, at))
        journeys.transition(winback.id, "start", now)
        started.append(winback.name)
    return {"addresses": len(people), "journeys": started, "segment": segment}


def _segment_id(ws: Workspace, project_id: int) -> int | None:
    from userloop.store.tables import Segment

    with ws.meta.session() as s:
        return s.scalar(select(Segment.id).where(Segment.project_id == project_id, Segment.name == WINBACK_SEGMENT))
