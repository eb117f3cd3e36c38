"""The member diagnosis on a small programme built by hand, every figure against a number worked out here.

Six members of a three-level programme in Asia/Shanghai move through September to November 2026 (one joins at
local midnight of 1 October, which is still 30 September in UTC; one level change is a minute before that
midnight; one member leaves, one leaves and rejoins), a points ledger is written through the product's
:class:`~userloop.membership.ledger.Ledger` (FEFO spending, an expiry run, a lot lapsed but not swept, a reversed
earning, a pending wallet), benefits are granted through :func:`userloop.benefits.grant`, and orders carry the
grants' codes. Level distributions, flows, growth shares, liability and breakage are the numbers worked out by
hand in the comments; the members vs non-members table is recomputed from the event list in plain Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import typer
from sqlalchemy import select, update
from typer.testing import CliRunner

from tests.collect.serving import LAUNCH, Server
from tests.store.metadb import meta_url
from userloop.benefits import BenefitRow, grant, grant_key
from userloop.cli.lazy import load
from userloop.cli.main import SUBCOMMANDS
from userloop.cli.member_diagnosis_cmd import diagnose as diagnose_cmd
from userloop.core.errors import NotFoundError
from userloop.ingest import load_json_lines
from userloop.membership.diagnosis import benefit_use, growth_sources, liability, member_grants, snapshot, tracks
from userloop.membership.diagnosis_report import page
from userloop.membership.diagnosis_types import Diagnosis
from userloop.membership.ledger import Ledger
from userloop.membership.ledger import Programme as LedgerProgramme
from userloop.membership.ledger_types import Earn, Reverse, Spend
from userloop.membership.members import GrowthEntry, LevelChange, MemberRow, Programmes, SavedProgramme, join, leave
from userloop.ops import OpContext, find
from userloop.store import Workspace
from userloop.store.meta import Base, MetaStore

AS_OF = datetime(2026, 11, 20, 4, 0)  # 12:00 on 20 November in Shanghai
ZONE = "Asia/Shanghai"
PEOPLE = tuple(f"u{i}" for i in range(1, 9))
SECRET = b"diagnosis-test"

DOC: dict[str, Any] = {
    "name": "fresh",
    "title": {"zh": "鲜享会<script>alert(1)</script>", "en": "Fresh & Co <b>club</b>"},
    "timezone": ZONE,
    "wallets": [
        {"name": "points", "unit_value": 0.01, "expiry": {"kind": "after_days", "days": 60}},
        {"name": "coins", "title_zh": "金币", "title_en": "Coins", "unit_value": 0.1, "pending": {"days": 7}},
    ],
    "growth": {"rules": [{"name": "spend", "title": {"zh": "消费", "en": "Spend"}, "event": "order_paid",
                          "amount": {"kind": "per_property", "property": "order_amount"}}]},
    "levels": [
        {"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0},
        {"name": "silver", "title": {"zh": "白银", "en": "Silver"}, "threshold": 100},
        {"name": "gold", "title": {"zh": "黄金", "en": "Gold <i>&</i>"}, "threshold": 500},
    ],
}  # fmt: skip


@dataclass(frozen=True)
class Built:
    path: Path
    admin_token: str
    found: Diagnosis
    ids: dict[str, int]
    events: list[dict[str, Any]]


def _t(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi)


def _ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)


def _event(n: int, who: str, event: str, at: datetime, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "distinct_id": who, "time": _ms(at), "event_id": f"e{n}",
            "properties": {"$is_login_id": True, **props}}  # fmt: skip


def _members(meta: MetaStore, programme: SavedProgramme, ids: dict[str, int]) -> dict[str, int]:
    """The members' paths (see the module); returns member ids by login."""

    def move(who: str, to: int, at: datetime, reason: str = "upgrade") -> None:
        with meta.session.begin() as s:
            row = s.scalars(select(MemberRow).where(MemberRow.person == ids[who])).one()
            s.add(LevelChange(programme_id=programme.id, member_id=row.id, person=row.person, from_level=row.level,
                              to_level=to, at=at, reason=reason))  # fmt: skip
            s.execute(update(MemberRow).where(MemberRow.id == row.id).values(level=to, level_since=at))

    join(meta, programme, ids["u1"], _t(2026, 7, 15))
    move("u1", 1, _t(2026, 9, 30, 15, 59))  # 23:59 on 30 September in Shanghai
    move("u1", 2, _t(2026, 10, 20))
    join(meta, programme, ids["u2"], _t(2026, 9, 30, 16, 0))  # midnight of 1 October in Shanghai
    move("u2", 1, _t(2026, 11, 5))
    join(meta, programme, ids["u3"], _t(2026, 8, 1))
    move("u3", 2, _t(2026, 8, 20))
    move("u3", 1, _t(2026, 11, 1), "period_end")
    join(meta, programme, ids["u4"], _t(2026, 10, 5))
    leave(meta, programme, ids["u4"], _t(2026, 11, 12))
    join(meta, programme, ids["u5"], _t(2026, 6, 1))
    move("u5", 1, _t(2026, 7, 1))
    leave(meta, programme, ids["u5"], _t(2026, 11, 1))
    join(meta, programme, ids["u5"], _t(2026, 11, 10))  # rejoins at the base: a 1 → 0 change
    join(meta, programme, ids["u6"], _t(2026, 11, 19))
    with meta.session() as s:
        return {who: s.scalars(select(MemberRow.id).where(MemberRow.person == ids[who])).one()
                for who in ("u1", "u2", "u3", "u4", "u5", "u6")}  # fmt: skip


def _growth(meta: MetaStore, programme: SavedProgramme, members: dict[str, int]) -> None:
    rows = [
        ("u1", "spend", 300, _t(2026, 9, 10)),
        ("u1", "check_in", 5, _t(2026, 10, 1)),
        ("u2", "spend", 120, _t(2026, 11, 5)),
        ("u3", "spend", 50, _t(2026, 8, 30)),  # before the window (it starts 2026-08-31 16:00 UTC)
        ("u3", "check_in", 5, _t(2026, 8, 31, 16, 0)),  # the window's first instant
        ("u1", "spend", 10, AS_OF),  # at as_of: outside [start, as_of)
    ]
    with meta.session.begin() as s:
        for i, (who, source, amount, at) in enumerate(rows):
            s.add(GrowthEntry(programme_id=programme.id, member_id=members[who], key=f"k{i}", source=source,
                              amount=amount, at=at, day=at.date()))  # fmt: skip


def _ledger(meta: MetaStore, programme: SavedProgramme, ids: dict[str, int]) -> None:
    wallets = {w.name: w for w in programme.definition.wallets}
    ledger = Ledger(meta.engine, LedgerProgramme(programme.project_id, programme.id, ZONE, wallets.__getitem__))
    n = iter(range(1000))

    def earn(who: str, amount: int, at: datetime, wallet: str = "points") -> int:
        return ledger.post(Earn(person=ids[who], amount=amount, wallet=wallet, request_id=f"r{next(n)}"), at).entry_id

    def spend(who: str, amount: int, at: datetime, wallet: str = "points") -> None:
        ledger.post(Spend(person=ids[who], amount=amount, wallet=wallet, request_id=f"r{next(n)}"), at)

    earn("u1", 100, _t(2026, 9, 1))  # lapses 10-31; spent in full below
    earn("u1", 50, _t(2026, 10, 1))  # lapses 11-30: 30 left
    spend("u1", 120, _t(2026, 10, 10))  # FEFO: 100 from the first lot, 20 from the second
    earn("u2", 200, _t(2026, 9, 1))  # lapses 10-31
    spend("u2", 50, _t(2026, 9, 10))
    ledger.expire(_t(2026, 11, 1))  # sweeps u2's 150
    earn("u3", 80, _t(2026, 10, 15))  # lapses 12-14: within 30 days
    earn("u3", 30, _t(2026, 11, 19))  # lapses 2027-01-18: within 90 days only
    earn("u4", 40, _t(2026, 9, 25))  # lapses 11-24: within 30 days
    earn("u5", 60, _t(2026, 9, 10))  # lapses 11-09: lapsed, never swept
    undone = earn("u1", 25, _t(2026, 11, 1))
    ledger.post(Reverse(person=ids["u1"], transfer_id=undone, request_id="undo"), _t(2026, 11, 2))
    earn("u1", 10, _t(2026, 11, 18), "coins")  # pending until 11-25
    earn("u2", 5, _t(2026, 11, 1), "coins")
    spend("u2", 2, _t(2026, 11, 9), "coins")


def _grants(meta: MetaStore, project_id: int, ids: dict[str, int]) -> dict[str, str]:
    """Grants by label → coupon code."""
    with meta.session.begin() as s:
        s.add_all([BenefitRow(project_id=project_id, name=name) for name in ("满99减10", "生日礼包")])
    plan = {
        "u1_l0": ("u1", "满99减10", _t(2026, 9, 20)),  # level 0
        "u1_l2": ("u1", "满99减10", _t(2026, 10, 20)),  # the instant of the change to 2: level 2
        "u3_l2": ("u3", "满99减10", _t(2026, 10, 1)),
        "u3_bd": ("u3", "生日礼包", _t(2026, 11, 15)),  # level 1
        "u4_l0": ("u4", "满99减10", _t(2026, 10, 6)),
        "u2_early": ("u2", "满99减10", _t(2026, 9, 1)),  # before u2 joined: not counted
        "u7": ("u7", "满99减10", _t(2026, 10, 1)),  # not a member
        "u6_old": ("u6", "满99减10", _t(2026, 8, 1)),  # before the window and before joining
    }
    codes = {}
    with meta.engine.begin() as conn:
        for label, (who, name, at) in plan.items():
            codes[label] = grant(conn, project_id=project_id, name=name, key=grant_key(label), person=ids[who],
                                 now=at, secret=SECRET).code  # fmt: skip
    return codes


def _orders(codes: dict[str, str]) -> list[dict[str, Any]]:
    e = iter(range(100, 1000))
    return [
        _event(next(e), "u1", "order_paid", _t(2026, 10, 25, 2), order_amount=50.0, coupon_code=codes["u1_l2"]),
        _event(next(e), "u1", "order_paid", _t(2026, 9, 15, 10), order_amount=30.0),
        _event(next(e), "u1", "page_view", _t(2026, 10, 25, 15, 30)),  # the same Shanghai day as the order
        _event(next(e), "u1", "page_view", _t(2026, 10, 25, 16, 30)),  # the next Shanghai day
        _event(next(e), "u1", "push_sent", _t(2026, 11, 1)),  # passive: no active day
        _event(next(e), "u2", "order_paid", _t(2026, 11, 5), order_amount=20.0),
        _event(next(e), "u3", "order_paid", _t(2026, 11, 16), order_amount=70.0, coupon_code=codes["u3_bd"]),
        _event(next(e), "u4", "order_paid", _t(2026, 10, 5), order_amount=15.0, coupon_code=codes["u4_l0"]),
        _event(next(e), "u7", "order_paid", _t(2026, 11, 10), order_amount=100.0, coupon_code=codes["u3_l2"]),
        _event(next(e), "u7", "page_view", _t(2026, 8, 22, 3)),  # an hour before the 90-day window
        _event(next(e), "u8", "page_view", _t(2026, 11, 19, 23)),
        _event(next(e), "u5", "order_paid", _t(2026, 8, 25), order_amount=40.0),
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The scenario of the module's docstring, diagnosed through the operation at :data:`AS_OF` over 3 months."""
    path = tmp_path_factory.mktemp("diagnosis") / "ws"
    ws, secrets = Workspace.init(path)
    assert secrets.admin_token
    try:
        Base.metadata.create_all(ws.meta.engine)
        project = ws.project()
        first = [_event(i, who, "page_view", _t(2026, 6, 1, 1)) for i, who in enumerate(PEOPLE)]
        assert load_json_lines(project, [json.dumps(r) for r in first], source="test").rejected == 0
        found = project.con.execute(f"SELECT id_value, user_id FROM {project.table('identities')}").fetchall()
        ids = {str(k): int(v) for k, v in found}
        info = ws.meta.project("default")
        assert info is not None
        programme = Programmes(ws.meta, info).create(DOC)
        members = _members(ws.meta, programme, ids)
        _growth(ws.meta, programme, members)
        _ledger(ws.meta, programme, ids)
        orders = _orders(_grants(ws.meta, info.id, ids))
        assert load_json_lines(project, [json.dumps(r) for r in orders], source="test").rejected == 0
        op = find("members.diagnosis")
        ctx = OpContext(ws, project=info)
        result = op.fn(ctx, op.request.model_validate({"name": "fresh", "months": 3, "as_of": AS_OF}))
    finally:
        ws.close()  # the tests that run the faces open the workspace themselves
    return Built(path, secrets.admin_token, result, ids, first + orders)


# levels -------------------------------------------------------------------------------------------------------
def test_level_distribution_at_each_month_end_and_now(built: Built) -> None:
    d = built.found
    # September's end (before 2026-09-30 16:00 UTC): u1 at 1 (a minute before), u3 at 2, u5 at 1 (left later);
    # u2 joined at that instant and is not yet counted. October: u1 2, u2 0, u3 2, u4 0, u5 1. Now: u4 left,
    # u5 rejoined at 0, u2 1, u3 1 (period end), u6 0.
    assert [(h.period, h.counts, h.total) for h in d.history] == [
        ("2026-09", [0, 2, 1], 3), ("2026-10", [2, 1, 2], 5), ("2026-11", [2, 2, 1], 5)]  # fmt: skip
    assert d.now.counts == [2, 2, 1]
    assert d.window_start == datetime(2026, 8, 31, 16, 0)


def test_flows_between_levels_per_month(built: Built) -> None:
    got = {f.period: (f.joins, f.upgrades, f.downgrades, f.stayed, f.leaves) for f in built.found.flows}
    assert got == {"2026-09": (0, 1, 0, 2, 0), "2026-10": (2, 1, 0, 2, 0), "2026-11": (1, 1, 2, 1, 1)}
    november = built.found.flows[-1].matrix
    # rows: new, 0, 1, 2; columns: 0, 1, 2, left
    assert november == [[1, 0, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 1, 1, 0]]
    # each month's rows add up to the distribution at its start, its columns to the one at its end
    starts = [[1, 1, 1], [0, 2, 1], [2, 1, 2]]  # September starts with u1 at 0, u5 at 1, u3 at 2
    for flow, start, end in zip(built.found.flows, starts, built.found.history, strict=True):
        assert [sum(row) for row in flow.matrix[1:]][:3] == start
        assert [sum(row[j] for row in flow.matrix) for j in range(3)] == end.counts


# growth and points ------------------------------------------------------------------------------------------
def test_growth_sources_share_the_window(built: Built) -> None:
    got = [(g.source, g.title_en, g.amount, g.entries, g.members) for g in built.found.growth]
    assert got == [("spend", "Spend", 420, 2, 2), ("check_in", "check_in", 10, 2, 2)]
    assert [g.share for g in built.found.growth] == pytest.approx([420 / 430, 10 / 430])


def test_points_liability_expiring_and_breakage(built: Built) -> None:
    points, coins = built.found.liability
    assert (points.wallet, points.spendable, points.pending, points.outstanding) == ("points", 180, 0, 180)
    assert points.liability_yuan == pytest.approx(1.80)
    assert (points.expiring_30, points.expiring_90) == (150, 180)
    # settled lots: u1's first (100, none lapsed), u2's (200, 150 swept), u5's (60, lapsed unswept);
    # the reversed earning counts nowhere
    assert (points.settled_credited, points.settled_expired) == (360, 210)
    assert points.breakage == pytest.approx(210 / 360)
    assert (coins.spendable, coins.pending, coins.outstanding, coins.expiring_90) == (3, 10, 13, 0)
    assert coins.liability_yuan == pytest.approx(1.30)
    assert coins.breakage is None


# benefits ---------------------------------------------------------------------------------------------------
def test_benefit_use_by_level_at_grant_and_redemption(built: Built) -> None:
    got = [(b.level, b.benefit, b.grants, b.people, b.redeemed) for b in built.found.benefits]
    # u1's code came back on an order after the grant; u3's birthday code too; u4 used its code before the grant
    # and u7 used u3's code: neither counts
    assert got == [(0, "满99减10", 2, 2, 0), (1, "生日礼包", 1, 1, 1), (2, "满99减10", 2, 2, 1)]
    assert built.found.redemption_measured
    assert [b.redemption_rate for b in built.found.benefits] == [0.0, 1.0, 0.5]


# members vs non-members ---------------------------------------------------------------------------------------
def _reference(events: list[dict[str, Any]], members: set[str], days: int) -> dict[str, Any]:
    lo, hi = _ms(AS_OF - timedelta(days=days)), _ms(AS_OF)
    out: dict[str, Any] = {}
    for group, people in (("members", members), ("non_members", set(PEOPLE) - members)):
        inside = [e for e in events if e["distinct_id"] in people and lo <= e["time"] < hi]
        orders = [e for e in inside if e["event"] == "order_paid"]
        active: set[tuple[str, date]] = {
            (e["distinct_id"], datetime.fromtimestamp(e["time"] / 1000, ZoneInfo(ZONE)).date())
            for e in inside if e["event"] != "push_sent"
        }  # fmt: skip
        n = len(people)
        out[group] = (n, sum(e["properties"].get("order_amount", 0.0) for e in orders) / n, len(orders) / n,
                      len(active) / n, len({e["distinct_id"] for e in orders}) / n)  # fmt: skip
    return out


def test_members_vs_non_members_against_the_event_list(built: Built) -> None:
    members = {"u1", "u2", "u3", "u5", "u6"}  # u4 left
    for days in (30, 90):
        want = _reference(built.events, members, days)
        for row in (r for r in built.found.comparison if r.days == days):
            got = (row.people, row.spend_per_person, row.orders_per_person, row.active_days_per_person,
                   row.buyers_share)  # fmt: skip
            assert got == pytest.approx(want[row.group]), (days, row.group)
    assert any(s.en.startswith("The gap between members and non-members is not") for s in built.found.notes)


# faces ------------------------------------------------------------------------------------------------------
def test_sentences_in_both_languages(built: Built) -> None:
    first = built.found.sentences[0]
    assert first.zh == "当前会员 5 人：普通 2（40.0%）、白银 2（40.0%）、黄金 1（20.0%）。"
    assert first.en == "5 members now: Member 2 (40.0%), Silver 2 (40.0%), Gold <i>&</i> 1 (20.0%)."
    assert all(s.zh and s.en for s in built.found.sentences + built.found.notes)


def test_the_page_escapes_every_name_and_stands_alone(built: Built) -> None:
    html = page(built.found)
    assert "<script" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;" in html and "Gold &lt;i&gt;&amp;&lt;/i&gt;" in html
    assert "http" not in html and "<link" not in html and " src=" not in html


def test_an_unknown_programme_is_a_404(built: Built) -> None:
    ws = Workspace.open(built.path, read_only=True)
    try:
        info = ws.meta.project("default")
        op = find("members.diagnosis")
        with pytest.raises(NotFoundError) as caught:
            op.fn(OpContext(ws, project=info), op.request.model_validate({"name": "nope"}))
        assert caught.value.code == "unknown_programme"
    finally:
        ws.close()


def test_the_route_answers_the_same_and_refuses_clearly(built: Built) -> None:
    op = find("members.diagnosis")
    assert (op.method, op.path, op.right) == ("GET", "/api/v1/programmes/{name}/diagnosis", "read")
    server = Server(built.path, "", built.admin_token)
    # no membership pass: the service would book today's expiries and growth into the workspace diagnosed as of
    # AS_OF, and the route's answer would rightly differ from the one computed before
    frozen = LAUNCH.replace("scheduler_tick=0.2,", "scheduler_tick=0.2, membership_tick=None,")
    server.spawn(frozen, [str(built.path), str(server.port), str(server.max_body), str(server.max_records),
                          str(server.rate), str(server.failed_auths_per_minute)])  # fmt: skip
    try:
        url, auth = f"{server.url}/api/v1/programmes/fresh/diagnosis", server.admin
        ok = httpx.get(url, headers=auth, params={"months": 3, "as_of": AS_OF.isoformat()}, timeout=30)
        assert ok.status_code == 200, ok.text
        assert ok.json() == op.dump(built.found)
        bad = httpx.get(url, headers=auth, params={"months": 0}, timeout=30)
        assert bad.status_code == 422 and bad.json()["error"]["field"].endswith("months")
        missing = httpx.get(url.replace("fresh", "nope"), headers=auth, timeout=30)
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "unknown_programme")
        assert httpx.get(url, timeout=30).status_code == 401
    finally:
        server.stop()


def test_the_command_prints_tables_json_and_a_page(built: Built, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(diagnose_cmd)
    app.command("other")(lambda: None)  # two commands, so the command is named on the line as under `members`
    runner = CliRunner()
    args = ["diagnose", "fresh", "-w", str(built.path), "--months", "3", "--as-of", AS_OF.isoformat()]
    shown = runner.invoke(app, args, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "Points liability / 积分负债" in shown.output and "• 当前会员" in shown.output
    out = tmp_path / "report.html"
    as_json = runner.invoke(app, [*args, "--json", "--html", str(out)], catch_exceptions=False)
    assert json.loads(as_json.output) == find("members.diagnosis").dump(built.found)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert load("diagnose", SUBCOMMANDS["members"]["diagnose"]).name == "diagnose"


def test_the_metadata_figures_are_the_same_on_postgresql(built: Built, tmp_path: Path) -> None:
    """The same members, growth, ledger and grants on PostgreSQL give the same levels, growth, liability and
    benefit use (the event store's part, redemption, is not the metadata database's)."""
    with meta_url("postgresql", tmp_path) as url:
        meta = MetaStore(url)
        try:
            Base.metadata.create_all(meta.engine)
            info = meta.add_project("default", ZONE)
            programme = Programmes(meta, info).create(DOC)
            _growth(meta, programme, _members(meta, programme, built.ids))
            _ledger(meta, programme, built.ids)
            _grants(meta, info.id, built.ids)
            d = built.found
            found = list(tracks(meta, programme, 2).values())
            history = [snapshot(found, 3, h.period, h.at, final=h.at == AS_OF) for h in d.history]
            assert history == d.history
            assert growth_sources(meta, programme, d.window_start, AS_OF) == d.growth
            assert liability(meta, programme, AS_OF) == d.liability
            grants = member_grants(meta, programme, {t.person: t for t in found}, d.window_start, AS_OF)
            unmeasured = {"redeemed": None, "redemption_rate": None}
            assert benefit_use(grants, None) == [b.model_copy(update=unmeasured) for b in d.benefits]
        finally:
            meta.dispose()
