"""The starter tags for the simulator's business: a community fresh-food O2O shop (DOMAIN §3).

Thirty-odd definitions over the simulator's events, profile properties and the per-user models, covering the
four kinds: *basic* (who people are), *behaviour* (what they did lately), *result* (repurchase, retention and
preference states) and *predictive* (model outputs). :func:`userloop.profile.tags.install_starter` saves the ones
a project's data supports. Enumerations list their values lowest first; bins cut numbers into such labels.
"""

from __future__ import annotations

from typing import Any

#: Bookkeeping events that are not something a person did in the app. Events sent to a person (a push or coupon
#: received) need no list here: ``$any`` is every *active* event of the project's registry.
_NOT_ACTIVITY = ["$SignUp"]


def _tag(name: str, zh: str, en: str, kind: str, type_: str, source: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": name, "title_zh": zh, "title_en": en, "kind": kind, "type": type_, "source": source, **more}


def _profile(prop: str, derive: str | None = None) -> dict[str, Any]:
    return {"from": "profile", "property": prop, **({"derive": derive} if derive else {})}


def _events(event: str, agg: str, *, prop: str | None = None, last: int | None = None,
            filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    source: dict[str, Any] = {"from": "events", "event": event, "agg": agg}
    if prop is not None:
        source["property"] = prop
    if last is not None:
        source["window"] = {"last": last}
    if filters:
        source["filters"] = filters
    return source


def _model(model: str, field: str) -> dict[str, Any]:
    return {"from": "model", "model": model, "field": field}


def _bins(edges: list[float], labels: list[str]) -> dict[str, Any]:
    return {"bins": {"edges": edges, "labels": labels}}


_ACTIVITY = [{"property": "event", "op": "not_in", "value": _NOT_ACTIVITY}]

BASIC: list[dict[str, Any]] = [
    _tag("gender", "性别", "Gender", "basic", "string", _profile("gender")),
    _tag("age_band", "年龄段", "Age band", "basic", "enum", _profile("age_band"),
         values=["18-25", "26-35", "36-45", "46-55", "56+"]),
    _tag("age", "年龄", "Age", "basic", "number", _profile("birthday", "years_since")),
    _tag("birthday_md", "生日(月-日)", "Birthday (MM-DD)", "basic", "string", _profile("birthday", "month_day")),
    _tag("city", "城市", "City", "basic", "string", _profile("city")),
    _tag("community", "小区", "Community", "basic", "string", _profile("community")),
    _tag("os", "操作系统", "Operating system", "basic", "string", _profile("$os")),
    _tag("channel", "注册渠道", "Sign-up channel", "basic", "string", _profile("channel")),
    _tag("push_enabled", "开启推送", "Push notifications on", "basic", "bool", _profile("push_enabled")),
    _tag("tenure_band", "注册时长", "Time since sign-up", "basic", "enum", _profile("registered_at", "days_since"),
         **_bins([30, 90, 180, 365], ["<30d", "30-89d", "90-179d", "180-364d", "1y+"])),
]  # fmt: skip

BEHAVIOUR: list[dict[str, Any]] = [
    _tag("orders_30d", "近30天支付订单数", "Paid orders, last 30 days", "behaviour", "number",
         _events("order_paid", "count", last=30)),
    _tag("spend_30d_band", "近30天消费档位", "Spend band, last 30 days", "behaviour", "enum",
         _events("order_paid", "sum", prop="order_amount", last=30),
         **_bins([0.01, 100, 300, 800], ["0", "<100", "100-299", "300-799", "800+"])),
    _tag("active_days_30d", "近30天活跃天数", "Active days, last 30 days", "behaviour", "number",
         _events("$any", "active_days", last=30, filters=_ACTIVITY)),
    _tag("first_order_date", "首单日期", "First order date", "behaviour", "date", _events("order_paid", "first_time")),
    _tag("last_order_date", "最近下单日期", "Last order date", "behaviour", "date", _events("order_paid", "last_time")),
    _tag("days_since_visit", "距上次访问天数", "Days since last visit", "behaviour", "number",
         _events("app_start", "days_since_last")),
    _tag("visit_recency", "访问新近度", "Visit recency", "behaviour", "enum", _events("app_start", "days_since_last"),
         **_bins([3, 8, 15, 31], ["0-2d", "3-7d", "8-14d", "15-30d", "31d+"])),
    _tag("avg_order_value", "平均客单价", "Average order value", "behaviour", "number",
         _events("order_paid", "avg", prop="order_amount")),
    _tag("favorite_payment", "常用支付方式", "Favourite payment method", "behaviour", "string",
         _events("order_paid", "most_frequent", prop="payment_method")),
    _tag("last_payment", "最近支付方式", "Last payment method", "behaviour", "string",
         _events("order_paid", "last", prop="payment_method")),
    _tag("top_keyword_90d", "近90天最常搜索词", "Most searched keyword, last 90 days", "behaviour", "string",
         _events("search", "most_frequent", prop="keyword", last=90)),
    _tag("shares_90d", "近90天分享次数", "Shares, last 90 days", "behaviour", "number",
         _events("share", "count", last=90)),
    _tag("likes_90d", "近90天点赞次数", "Likes, last 90 days", "behaviour", "number",
         _events("like", "count", last=90)),
    _tag("comments_90d", "近90天评论次数", "Comments, last 90 days", "behaviour", "number",
         _events("comment", "count", last=90)),
    _tag("coupon_user", "用券用户", "Has used a coupon", "behaviour", "enum", _events("coupon_used", "count"),
         **_bins([1], ["no", "yes"])),
    _tag("stores_used", "下单门店数", "Stores ordered from", "behaviour", "number",
         _events("order_paid", "distinct_count", prop="store_id")),
]  # fmt: skip

RESULT: list[dict[str, Any]] = [
    _tag("repurchase_state", "复购状态", "Repurchase state", "result", "enum", _events("order_paid", "count"),
         **_bins([1, 2], ["never", "once", "repeat"])),
    _tag("retention_state", "留存状态", "Retention state", "result", "enum", _events("app_start", "days_since_last"),
         **_bins([8, 31, 91], ["active", "cooling", "dormant", "lost"])),
    _tag("category_preference", "品类偏好", "Category preference", "result", "string",
         _model("preference", "category")),
    _tag("browse_category_30d", "近30天最常浏览品类", "Most viewed category, last 30 days", "result", "string",
         _events("view_item", "most_frequent", prop="category", last=30)),
    _tag("preferred_time", "偏好时段", "Preferred time of day", "result", "string",
         _model("preference", "time_of_day")),
]  # fmt: skip

PREDICTIVE: list[dict[str, Any]] = [
    _tag("churn_risk", "流失风险", "Churn risk", "predictive", "enum", _model("churn", "risk_tier"),
         values=["low", "medium", "high"]),
    _tag("clv_tier", "客户终身价值档", "Customer lifetime value tier", "predictive", "enum", _model("clv", "clv"),
         **_bins([200, 500, 1000], ["low", "medium", "high", "top"])),
    _tag("rfm_class", "RFM分群", "RFM class", "predictive", "string", _model("rfm", "class_zh")),
    _tag("lifecycle_stage", "生命周期阶段", "Lifecycle stage", "predictive", "enum", _model("lifecycle", "stage"),
         values=["introduction", "growth", "maturity", "dormancy", "churn"]),
    _tag("value_tier", "价值分层", "Value tier", "predictive", "enum", _model("value", "value_tier"),
         values=["low", "medium", "high"]),
    _tag("low_frequency", "低频用户", "Low-frequency user", "predictive", "bool", _model("activity", "low_frequency")),
]  # fmt: skip

#: Every starter tag, basic first.
STARTER_TAGS: list[dict[str, Any]] = [*BASIC, *BEHAVIOUR, *RESULT, *PREDICTIVE]
#: The money property the starter tags above are written with; :func:`starter_tags` puts the project's in.
MONEY = "order_amount"


def starter_tags(money: str = MONEY) -> list[dict[str, Any]]:
    """The starter tags with purchase amounts read from ``money`` (the project's money property)."""
    if money == MONEY:
        return STARTER_TAGS
    out = []
    for doc in STARTER_TAGS:
        source = doc.get("source") or {}
        reads_money = source.get("property") == MONEY
        out.append({**doc, "source": {**source, "property": money}} if reads_money else doc)
    return out
