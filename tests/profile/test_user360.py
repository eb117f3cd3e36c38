"""User 360 against a plain-Python reference of random logs with identity merges, profiles and typed ids."""

from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query.logs import BASE_MS, LOGIN, Ev, event_logs, fresh_project, load, person_names, reference_events
from userloop.core.errors import NotFoundError, ValidationError
from userloop.ingest import load_json_lines
from userloop.ingest.identity import ANONYMOUS
from userloop.ingest.identity import LOGIN as LOGIN_TYPE
from userloop.models.base import write_rows
from userloop.profile import history
from userloop.profile.user360 import decode_cursor, encode_cursor, profile_360, resolve, timeline
from userloop.query.masking import mask_email, mask_phone
from userloop.store import ProjectStore, Workspace
from userloop.store.sqlbuild import sql

TZ = "Asia/Shanghai"
MOBILE = "$identity_mobile"
EVENT_KINDS = ("view", "order_paid", "push", "push_received")  # push_received: passive by default
SETTINGS = settings(
    max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def people(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    """Track and sign-up records (orders carry ``order_amount``), typed-id binds and profile records."""
    events = draw(event_logs(max_events=30, events=EVENT_KINDS))
    for r in events:
        if r["event"] == "order_paid" and "amount" in r["properties"]:
            r["properties"]["order_amount"] = r["properties"].pop("amount")
    binds, profiles = [], []
    for i, login in enumerate(LOGIN):
        if draw(st.booleans()):
            binds.append({
                "type": "track_id_bind", "event": "$BindID", "distinct_id": login, "event_id": f"b_{login}",
                "time": BASE_MS + draw(st.integers(0, 21 * 96 - 1)) * 15 * 60_000,
                "properties": {"$is_login_id": True},
                "identities": {LOGIN_TYPE: login, MOBILE: f"139{i:04d}{draw(st.integers(0, 9999)):04d}"},
            })  # fmt: skip
        for k in range(draw(st.integers(0, 2))):
            props: dict[str, Any] = {"$is_login_id": True, "city": draw(st.sampled_from(["上海", "北京"]))}
            if draw(st.booleans()):
                props["phone"] = f"138{draw(st.integers(0, 10**8 - 1)):08d}"
            if draw(st.booleans()):
                props["email"] = f"{login.lower()}.{k}@example.com"
            at = BASE_MS + (i * 10 + k) * 1000 + draw(st.integers(0, 999)) * 1_000_000
            profiles.append({"type": "profile_set", "distinct_id": login, "time": at, "properties": props})
    return {"events": events, "binds": binds, "profiles": profiles}


class Reference:
    """What the 360 should show, from the records alone."""

    def __init__(self, data: dict[str, list[dict[str, Any]]]) -> None:
        tracked = data["events"] + data["binds"]
        self.evs = reference_events(tracked)
        self.props = {r["event_id"]: {k: v for k, v in r["properties"].items() if k != "$is_login_id"} for r in tracked}
        login_of = {str(r["original_id"]): str(r["distinct_id"]) for r in tracked if r["type"] == "track_signup"}
        self.ids: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for r in tracked + data["profiles"]:
            who = str(r["distinct_id"])
            self.ids[login_of.get(who, who)].add((LOGIN_TYPE if who in LOGIN else ANONYMOUS, who))
            if r["type"] == "track_signup":
                self.ids[who].add((ANONYMOUS, str(r["original_id"])))
            for id_type, value in r.get("identities", {}).items():
                self.ids[who].add((id_type, value))
        self.profile: dict[str, dict[str, Any]] = defaultdict(dict)
        for r in sorted(data["profiles"], key=lambda r: r["time"]):
            self.profile[r["distinct_id"]].update({k: v for k, v in r["properties"].items() if k != "$is_login_id"})

    def events_of(self, person: str) -> list[Ev]:
        """The person's events, newest first (ties: larger event id first)."""
        return sorted((e for e in self.evs if e.person == person), key=lambda e: (e.time_ms, e.event_id), reverse=True)


def _local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(TZ)).replace(tzinfo=None)


def _naive(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=None)


def _load(ws: Workspace, data: dict[str, list[dict[str, Any]]], chunks: int) -> ProjectStore:
    _, project = fresh_project(ws, TZ)
    load(project, data["events"] + data["binds"], chunks=chunks)
    if data["profiles"]:
        result = load_json_lines(project, [json.dumps(r) for r in data["profiles"]], source="profiles")
        assert result.rejected == 0
    return project


def _merge_in_second_batch() -> dict[str, list[dict[str, Any]]]:
    """The failure found on 2026-12-06: three devices' events in the first batch, then three sign-ups of one login
    at the same instant in the second; the merged person's first/last seen came from one device only."""
    hour = 3_600_000

    def track(who: str, at: int, event_id: str) -> dict[str, Any]:
        props = {"$is_login_id": True} if who.startswith("L") else {}
        return {"type": "track", "event": "view", "distinct_id": who, "time": BASE_MS + at * hour,
                "event_id": event_id, "properties": props}  # fmt: skip

    def signup(anon: str) -> dict[str, Any]:
        return {"type": "track_signup", "event": "$SignUp", "distinct_id": "L1", "original_id": anon,
                "time": BASE_MS + 50 * hour, "event_id": f"s_{anon}", "properties": {"$is_login_id": True}}  # fmt: skip

    events = [track("a1", 0, "e000"), track("a2", 5, "e001"), track("L1", 100, "e002"), track("a3", 200, "e003")]
    return {"events": [*events, *(signup(a) for a in ("a1", "a2", "a3"))], "binds": [], "profiles": []}


@SETTINGS
@given(data=people(), chunks=st.integers(1, 3), page=st.integers(1, 7), only=st.sets(st.sampled_from(EVENT_KINDS)))
@example(data=_merge_in_second_batch(), chunks=2, page=3, only=set())
def test_360_equals_reference(ws: Workspace, data: dict[str, list[dict[str, Any]]], chunks: int, page: int,
                              only: set[str]) -> None:  # fmt: skip
    project = _load(ws, data, chunks)
    ref = Reference(data)
    names = person_names(project)
    assert sorted(names.values()) == sorted(ref.ids)
    for user_id, name in names.items():
        assert resolve(project, name) == user_id
        assert resolve(project, str(user_id)) == user_id
        for _, value in ref.ids[name]:
            assert resolve(project, value) == user_id
        clear = profile_360(project, user_id, timezone=TZ, unmask=True)
        masked = profile_360(project, user_id, timezone=TZ)
        _check_identities(clear, masked, ref.ids[name])
        _check_profile(clear, masked, ref.profile.get(name, {}))
        evs = ref.events_of(name)
        _check_summary(clear["summary"], clear["profile"], evs)
        _check_orders(clear["orders"], evs, ref)
        assert _walk(project, user_id, page, None) == [e.event_id for e in evs]
        if only:
            assert _walk(project, user_id, page, sorted(only)) == [e.event_id for e in evs if e.event in only]
        _check_timeline_rows(project, user_id, evs, ref)


def _check_identities(clear: dict[str, Any], masked: dict[str, Any], ids: set[tuple[str, str]]) -> None:
    assert {(i["id_type"], i["id_value"]) for i in clear["identities"]} == ids
    shown = {(i["id_type"], i["id_value"]) for i in masked["identities"]}
    assert shown == {(t, mask_phone(v) if t == MOBILE else v) for t, v in ids}


def _check_profile(clear: dict[str, Any], masked: dict[str, Any], want: dict[str, Any]) -> None:
    for prop in ("city", "phone", "email"):
        assert clear["profile"].get(prop) == want.get(prop)
    assert masked["profile"].get("city") == want.get("city")
    phone, email = want.get("phone"), want.get("email")
    assert masked["profile"].get("phone") == (mask_phone(phone) if phone else None)
    assert masked["profile"].get("email") == (mask_email(email) if email else None)


def _check_summary(summary: dict[str, Any], profile: dict[str, Any], evs: list[Ev]) -> None:
    assert summary["events"] == len(evs)
    assert summary["by_event"] == dict(Counter(e.event for e in evs))
    active = [e for e in evs if e.event != "push_received"]  # a push received is not the person's activity
    assert summary["active_days"] == len({e.local_day(TZ) for e in active})
    if evs:
        first, last = min(e.time_ms for e in evs), max(e.time_ms for e in evs)
        assert _naive(summary["first_event"]) == _local(first)
        assert _naive(summary["last_event"]) == _local(last)
    else:
        assert summary["first_event"] is None and summary["last_event"] is None
    if active:
        first, last = min(e.time_ms for e in active), max(e.time_ms for e in active)
        assert _naive(profile["first_seen"]) == _local(first)
        assert _naive(summary["last_active"]) == _local(last) == _naive(profile["last_seen"])
    else:
        assert summary["last_active"] is None and profile.get("last_seen") is None


def _check_orders(orders: dict[str, Any], evs: list[Ev], ref: Reference) -> None:
    paid = [e for e in evs if e.event == "order_paid"]
    amounts = [ref.props[e.event_id]["order_amount"] for e in paid if "order_amount" in ref.props[e.event_id]]
    assert orders["count"] == len(paid)
    assert orders["amount"] == (pytest.approx(sum(amounts)) if amounts else None)
    assert [o["event_id"] for o in orders["items"]] == [e.event_id for e in paid[:50]]
    for item, e in zip(orders["items"], paid, strict=False):
        assert item["properties"] == ref.props[e.event_id]
        assert _naive(item["time"]) == e.local(TZ)


def _walk(project: ProjectStore, user_id: int, page: int, events: list[str] | None) -> list[str]:
    """Every event id the timeline shows, following ``next`` until it ends."""
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        out = timeline(project, user_id, timezone=TZ, limit=page, before=cursor, events=events)
        assert len(out["events"]) <= page
        assert out["next"] is None or len(out["events"]) == page
        seen += [e["event_id"] for e in out["events"]]
        cursor = out["next"]
        if cursor is None:
            return seen
    raise AssertionError("the timeline never ended")


def _check_timeline_rows(project: ProjectStore, user_id: int, evs: list[Ev], ref: Reference) -> None:
    out = timeline(project, user_id, timezone=TZ, limit=500)
    assert out["next"] is None
    for shown, e in zip(out["events"], evs, strict=True):
        assert (shown["event_id"], shown["event"]) == (e.event_id, e.event)
        assert _naive(shown["time"]) == e.local(TZ)
        assert shown["properties"] == ref.props[e.event_id]


# errors -----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(ws: Workspace) -> tuple[ProjectStore, int]:
    data = {
        "events": [
            {"type": "track", "event": "view", "distinct_id": "a1", "time": BASE_MS + i * 60_000, "event_id": f"e{i}",
             "properties": {"phone": "13812345678", "channel": "a"}}
            for i in range(5)
        ],
        "binds": [],
        "profiles": [{"type": "profile_set", "distinct_id": "a1", "time": BASE_MS,
                      "properties": {"email": "zhang@example.com", "mobile": 13812345678}}],
    }  # fmt: skip
    project = _load(ws, data, 1)
    return project, resolve(project, "a1")


def test_unknown_person_is_not_found(small: tuple[ProjectStore, int]) -> None:
    project, user_id = small
    for key in ("nobody", "999999", "L0"):
        with pytest.raises(NotFoundError, match="no person"):
            resolve(project, key)
    with pytest.raises(NotFoundError):
        profile_360(project, user_id + 1000, timezone=TZ)
    with pytest.raises(NotFoundError):
        timeline(project, user_id + 1000, timezone=TZ)
    with pytest.raises(ValidationError):
        resolve(project, "")


def test_masked_unless_asked(small: tuple[ProjectStore, int]) -> None:
    project, user_id = small
    masked = profile_360(project, user_id, timezone=TZ)
    assert masked["profile"]["email"] == "z***@example.com"
    assert masked["profile"]["mobile"] == "138****5678"  # a number masked as its text
    assert {e["properties"]["phone"] for e in timeline(project, user_id, timezone=TZ)["events"]} == {"138****5678"}
    clear = profile_360(project, user_id, timezone=TZ, unmask=True)
    assert (clear["profile"]["email"], clear["profile"]["mobile"]) == ("zhang@example.com", 13812345678.0)
    events = timeline(project, user_id, timezone=TZ, unmask=True)["events"]
    assert {e["properties"]["phone"] for e in events} == {"13812345678"}


def _forged(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@settings(max_examples=examples(200), deadline=None)
@given(cursor=st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    # no digits in the texts: "20260105" would be a valid time, and [1, "20260105", "x"] a valid cursor
    st.lists(st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text("ab:-T", max_size=8)),
             max_size=4).map(_forged),
    st.sampled_from([
        _forged([1, "2026-01-05T00:00:00+00:00", "e1"]), _forged({"u": 1}), _forged([True, "2026-01-05", "e1"]),
        _forged([1, "2026-01-05T00:00:00", 3]), "x" * 5000,
    ]),
))  # fmt: skip
def test_forged_cursor_is_a_validation_error(small: tuple[ProjectStore, int], cursor: str) -> None:
    project, user_id = small
    with pytest.raises(ValidationError, match="before"):
        timeline(project, user_id, timezone=TZ, before=cursor)


def test_cursor_of_another_person_and_bad_limits(small: tuple[ProjectStore, int]) -> None:
    project, user_id = small
    other = encode_cursor(user_id + 1, datetime(2026, 1, 5), "e1")
    with pytest.raises(ValidationError, match="another person"):
        timeline(project, user_id, timezone=TZ, before=other)
    assert decode_cursor(encode_cursor(user_id, datetime(2026, 1, 5, 1, 2, 3, 4), "e'1"), user_id) == (
        datetime(2026, 1, 5, 1, 2, 3, 4),
        "e'1",
    )
    for limit in (0, 501, -1):
        with pytest.raises(ValidationError, match="limit"):
            timeline(project, user_id, timezone=TZ, limit=limit)
    with pytest.raises(ValidationError, match="events"):
        timeline(project, user_id, timezone=TZ, events=[])
    with pytest.raises(ValidationError, match="time zone"):
        timeline(project, user_id, timezone="Mars/Base")
    injected = timeline(project, user_id, timezone=TZ, events=["view' OR '1'='1"])
    assert injected == {"events": [], "next": None}


# tags, segments and models ------------------------------------------------------------------------------------------
def test_tags_segments_and_models_with_history(ws: Workspace) -> None:
    data = {
        "events": [
            {"type": "track", "event": "view", "distinct_id": who, "time": BASE_MS, "event_id": f"e_{who}",
             "properties": {}}
            for who in ("a1", "a2", "a3")
        ],
        "binds": [],
        "profiles": [],
    }  # fmt: skip
    project = _load(ws, data, 1)
    one, two, three = (resolve(project, who) for who in ("a1", "a2", "a3"))
    d1, d2 = date(2026, 1, 5), date(2026, 1, 6)
    # tag x: a1 low → high, a2 low throughout, a3 none
    history.apply_snapshot(project, "tag_x", "VARCHAR", d1, pa.table({"user_id": [one, two], "value": ["low", "low"]}))
    history.apply_snapshot(project, "tag_x", "VARCHAR", d2, pa.table({"user_id": [one, two], "value": ["high", "low"]}))
    # segment 1: a1 member on d1 only, a2 enters on d2
    members = sql("SELECT user_id, user_id = ? AS value FROM $u", u=project.ref("users"))
    history.apply_snapshot(project, "segment_1", "BOOLEAN", d1, members, params=[one])
    history.apply_snapshot(project, "segment_1", "BOOLEAN", d2, members, params=[two])
    # model churn: a1 medium → high; a2 unchanged; a3 only in the first run
    churn1 = {"user_id": [one, two, three], "risk_tier": ["medium", "low", "low"], "churn_probability": [0.5, 0.1, 0.1]}
    write_rows(project, "model_churn", d1, "v1", pa.table(churn1))
    churn2 = {"user_id": [one, two], "risk_tier": ["high", "low"], "churn_probability": [0.8, 0.1]}
    write_rows(project, "model_churn", d2, "v2", pa.table(churn2))

    def view(user_id: int) -> dict[str, Any]:
        return profile_360(project, user_id, timezone=TZ, tags=[("x", "标签", "Tag X"), ("never", "无", "Never")],
                           segments=[(1, "one"), (2, "never refreshed")])  # fmt: skip

    first, second, third = view(one), view(two), view(three)
    assert [t["name"] for t in first["tags"]] == ["x"]  # a tag never materialised is left out
    assert first["tags"][0]["value"] == "high"
    assert [(h["value"], h["from"], h["to"]) for h in first["tags"][0]["history"]] == [
        ("low", "2026-01-05", "2026-01-06"),
        ("high", "2026-01-06", None),
    ]
    assert second["tags"][0]["history"] == [{**second["tags"][0]["history"][0], "from": "2026-01-05", "to": None}]
    assert (third["tags"][0]["value"], third["tags"][0]["history"]) == (None, [])

    assert first["segments"] == [
        {"id": 1, "name": "one", "member": False, "intervals": [{"entered": "2026-01-05", "left": "2026-01-06"}]}
    ]
    assert second["segments"][0]["member"] is True
    assert second["segments"][0]["intervals"] == [{"entered": "2026-01-06", "left": None}]
    assert third["segments"][0] == {"id": 1, "name": "one", "member": False, "intervals": []}

    [churn] = first["models"]
    assert (churn["model"], churn["run_date"], churn["model_version"]) == ("churn", "2026-01-06", "v2")
    assert churn["outputs"] == {"risk_tier": "high", "churn_probability": 0.8}
    assert churn["previous"] == {
        "run_date": "2026-01-05",
        "model_version": "v1",
        "changed": {"risk_tier": "medium", "churn_probability": 0.5},
    }
    assert second["models"][0]["previous"] is None  # nothing changed
    assert third["models"] == []  # not scored in the latest run


def test_resolve_prefers_login_ids(ws: Workspace) -> None:
    _, project = fresh_project(ws, TZ)
    records = [
        {"type": "track", "event": "view", "distinct_id": "shared", "time": BASE_MS, "event_id": "e1",
         "properties": {"$is_login_id": True}},
        {"type": "track_id_bind", "event": "$BindID", "distinct_id": "other", "time": BASE_MS, "event_id": "b1",
         "properties": {"$is_login_id": True},
         "identities": {LOGIN_TYPE: "other", "$identity_email": "shared"}},
    ]  # fmt: skip
    load(project, records)
    login_person = resolve(project, "other")
    shared = resolve(project, "shared")
    assert shared != login_person
    assert (LOGIN_TYPE, "shared") in {
        (i["id_type"], i["id_value"]) for i in profile_360(project, shared, timezone=TZ)["identities"]
    }
