"""The core-metrics dashboard (DOMAIN §10 growth framework, §11 core metric system) over the simulator's events.

Panels: new users, DAU and MAU with DAU/MAU, new-user retention, registration conversion, repurchase of new and
of all buyers, GMV per community per week, the categories of first orders, and channel quality (by acquisition
channel, from the install: install → register → first order, and retention after install — the simulator plants
a fake-install channel that shows up here as the worst on both).
Each panel is an ordinary definition, so it can be saved as an insight and edited.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from userloop.core.errors import UserloopError
from userloop.query.engine import Engine

DASHBOARD = "core_metrics"
#: An install: the first ``app_start`` on a device (``$is_first_time``). Channel quality starts here, not at
#: registration: a channel that buys installs of which few are real people (DOMAIN §10, "watch for fake installs")
#: loses them before they register, so a funnel starting at ``register`` cannot see it.
INSTALL: dict[str, Any] = {
    "event": "app_start", "name": "install", "filters": [{"property": "$is_first_time", "op": "eq", "value": True}],
}  # fmt: skip


def definitions(last_days: int = 30, money: str = "order_amount") -> list[dict[str, Any]]:
    """The panels: ``key``, titles in Chinese and English, and the definition; GMV sums the ``money`` property
    (the project's money property, :func:`userloop.store.settings.money_property`)."""
    rng = {"last": last_days, "include_today": False}
    weeks = {"last": max(last_days, 56), "include_today": False}
    paid = {"event": "order_paid"}
    return [
        _panel("new_users", "新增用户", "New users", {
            "kind": "trends", "date_range": rng, "series": [{"event": "register", "math": "users"}],
        }),
        _panel("dau_mau", "日活与月活", "DAU and MAU", {
            "kind": "trends", "date_range": rng,
            "series": [{"event": "$any", "math": "dau", "name": "DAU"},
                       {"event": "$any", "math": "mau", "name": "MAU"}],
        }),
        _panel("dau_over_mau", "日活/月活（粘性）", "DAU/MAU (stickiness, %)", {
            "kind": "trends", "date_range": rng, "formula": "A/B*100",
            "series": [{"event": "$any", "math": "dau"}, {"event": "$any", "math": "mau"}],
        }),
        _panel("new_user_retention", "新用户留存", "New-user retention", {
            "kind": "retention", "date_range": weeks, "interval": "week", "periods": 8,
            "start": {"event": "register"}, "return_event": {"event": "$any"}, "start_type": "first_time",
        }),
        _panel("registration_conversion", "注册转化", "Registration conversion", {
            "kind": "funnel", "date_range": rng, "window": {"value": 7, "unit": "day"},
            "steps": [{"event": "app_start"}, {"event": "register"}, paid],
        }),
        _panel("payment_funnel", "支付漏斗", "Payment funnel", {
            "kind": "funnel", "date_range": rng, "window": {"value": 1, "unit": "day"},
            "steps": [{"event": "add_to_cart"}, {"event": "checkout"}, {"event": "confirm_payment"},
                      {"event": "enter_password"}, paid],
            "breakdown": {"property": "$os"},
        }),
        _panel("repurchase_new_buyers", "新客复购", "Repurchase of new buyers", {
            "kind": "retention", "date_range": weeks, "interval": "week", "periods": 8, "mode": "on_or_after",
            "start": paid, "return_event": paid, "start_type": "first_time",
        }),
        _panel("repurchase_all_buyers", "老客复购", "Repurchase of all buyers", {
            "kind": "retention", "date_range": weeks, "interval": "week", "periods": 8, "mode": "on_or_after",
            "start": paid, "return_event": paid, "start_type": "recurring",
        }),
        _panel("gmv_by_community", "社区周 GMV", "GMV per community, weekly", {
            "kind": "trends", "date_range": weeks, "interval": "week",
            "series": [{"event": "order_paid", "math": "sum", "property": money}],
            "breakdown": {"property": "community", "source": "user", "limit": 20},
        }),
        _panel("first_order_categories", "首单品类", "Categories of first orders", {
            "kind": "funnel", "date_range": weeks, "window": {"value": 30, "unit": "day"},
            "steps": [{"event": "register"}, paid],
            "breakdown": {"property": "main_category"}, "breakdown_attribution": {"step": 2},
        }),
        _panel("channel_conversion", "渠道质量：安装→注册→首单", "Channel quality: install → register → order", {
            "kind": "funnel", "date_range": weeks, "window": {"value": 14, "unit": "day"},
            "steps": [INSTALL, {"event": "register"}, paid],
            "breakdown": {"property": "channel", "source": "user"},
        }),
        _panel("channel_retention", "渠道质量：安装后留存", "Channel quality: retention after install", {
            "kind": "retention", "date_range": weeks, "interval": "week", "periods": 4,
            "start": INSTALL, "return_event": {"event": "$any"}, "start_type": "first_time",
            "breakdown": {"property": "channel", "source": "user"},
        }),
    ]  # fmt: skip


def _panel(key: str, zh: str, en: str, definition: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "title_zh": zh, "title_en": en, "definition": definition}


def run(
    engine: Engine,
    *,
    last_days: int = 30,
    timeout_s: float = 120.0,
    today: date | None = None,
    money: str = "order_amount",
) -> dict[str, Any]:
    """Run every panel (as of ``today``, default the project's today); a panel that fails carries its error and
    the others still run."""
    panels = []
    for panel in definitions(last_days, money):
        try:
            result = engine.run(panel["definition"], timeout_s=timeout_s, today=today)
            panels.append({**panel, "result": result.result, "warnings": result.warnings, "took_ms": result.took_ms})
        except UserloopError as exc:
            panels.append({**panel, "error": {"code": exc.code, "message": exc.message}})
    return {"dashboard": DASHBOARD, "panels": panels}
