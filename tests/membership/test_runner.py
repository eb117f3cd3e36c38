"""The membership pass on a real workspace with events loaded: growth credited, levels up, the level's coupons
granted exactly once (run twice, a crash mid-way, a used-up benefit restocked), the ledger's expiry run, the
level's points multiplier on check-in rewards only, and the membership events written once; and the service's
loop running the pass on its own."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import func, insert, select, update
from typer.testing import CliRunner

from tests.conftest import rows
from tests.membership import stores
from tests.store.metadb import BACKENDS
from userloop.benefits import BenefitRow, GrantRow
from userloop.cli.members_cmd import members_app
from userloop.core.clock import utcnow
from userloop.ingest.api import load_table
from userloop.membership import benefit_grants, runner
from userloop.membership.accounts import ledger_of
from userloop.membership.engagement import check_in
from userloop.membership.ledger_types import Earn
from userloop.membership.members import LevelChange, Programmes, SavedProgramme, get_member, join
from userloop.membership.runner import run_pass
from userloop.membership.runner_tables import LevelGrantRow, PassStateRow
from userloop.service.membership import MembershipLoop
from userloop.store import ProjectStore, Workspace
from userloop.store.meta import MetaStore, Project

SECRET = b"k" * 32
#: Events happen at T and are loaded at T; the pass runs an hour later (12:00 and 13:00 in Asia/Shanghai).
T = datetime(2026, 3, 10, 4, 0)
PASS = T + timedelta(hours=1)
DEFINITION: dict[str, Any] = {
    "name": "club", "title": {"zh": "俱乐部", "en": "Club"}, "timezone": "Asia/Shanghai",
    "growth": {"rules": [{"name": "spend", "event": "order_paid",
                          "amount": {"kind": "per_property", "property": "order_amount"}}]},
    "levels": [
        {"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0,
         "benefits": [{"kind": "birthday_pack", "benefits": ["welcome"], "points": 3}]},
        {"name": "silver", "title": {"zh": "白银", "en": "Silver"}, "threshold": 100,
         "benefits": [{"kind": "coupon", "benefit": "welcome", "count": 2},
                      {"kind": "points_multiplier", "multiplier": 2.5}]},
        {"name": "gold", "title": {"zh": "黄金", "en": "Gold"}, "threshold": 500,
         "benefits": [{"kind": "coupon", "benefit": "gold_gift"}]},
    ],
    "check_in": {"points": 10},
}  # fmt: skip


def ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)


def orders(store: ProjectStore, amounts: dict[str, float], at: datetime, *, loaded: datetime | None = None) -> None:
    table = pa.Table.from_pylist([
        {"type": "track", "event": "order_paid", "distinct_id": d, "time": ms(at), "event_id": f"o-{d}-{ms(at)}",
         "order_amount": a} for d, a in amounts.items()
    ])  # fmt: skip
    result = load_table(store, table, source="runner-test", now_ms=None if loaded is None else ms(loaded))
    assert result.rejected == 0, result


def person_keys(store: ProjectStore) -> dict[str, int]:
    return {str(d): int(u) for u, d in rows(store, "SELECT user_id, first_id FROM {users}")}  # type: ignore[call-overload]


def setup(
    ws: Workspace, *, gold_stock: int | None = None, beside: tuple[MetaStore, Project] | None = None
) -> tuple[MetaStore, Project, ProjectStore, SavedProgramme]:
    """The programme and its benefits in the workspace's metadata, or in ``beside`` (PostgreSQL)."""
    store = ws.project("default")
    meta, project = beside if beside is not None else (ws.meta, ws.meta.project("default"))
    assert project is not None
    with meta.session.begin() as s:
        s.execute(insert(BenefitRow), [{"project_id": project.id, "name": "welcome", "amount": 5.0},
                                       {"project_id": project.id, "name": "gold_gift", "amount": 50.0,
                                        "stock": gold_stock}])  # fmt: skip
    return meta, project, store, Programmes(meta, project).create(DEFINITION)


def grants(meta: MetaStore, person: int) -> dict[str, int]:
    with meta.session() as s:
        found = s.execute(select(BenefitRow.name, func.count()).join(GrantRow, GrantRow.benefit_id == BenefitRow.id)
                          .where(GrantRow.person == person).group_by(BenefitRow.name)).all()  # fmt: skip
    return {str(n): int(c) for n, c in found}


def event_counts(store: ProjectStore) -> dict[str, tuple[int, int]]:
    found = rows(store, "SELECT event, count(*), count(DISTINCT event_id) FROM {events} "
                        "WHERE event_id LIKE 'membership:%' GROUP BY event")  # fmt: skip
    return {str(e): (int(n), int(d)) for e, n, d in found}  # type: ignore[call-overload]


def three_members(meta: MetaStore, store: ProjectStore, saved: SavedProgramme) -> tuple[int, int, int]:
    orders(store, {"silver": 150, "gold": 620, "base": 40}, T, loaded=T)
    keys = person_keys(store)
    for name in ("silver", "gold", "base"):
        join(meta, saved, keys[name], T - timedelta(days=1))
    return keys["silver"], keys["gold"], keys["base"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pass_credits_growth_raises_levels_grants_once_expires_and_writes_events_once(
    workspace: Workspace, backend: str, tmp_path: Path
) -> None:
    with stores.beside(workspace, backend, tmp_path) as metadb:
        a_pass_credits_growth_raises_levels_grants_once_expires_and_writes_events_once(workspace, metadb)


def a_pass_credits_growth_raises_levels_grants_once_expires_and_writes_events_once(
    workspace: Workspace, metadb: tuple[MetaStore, Project]
) -> None:
    meta, project, store, saved = setup(workspace, beside=metadb)
    silver, gold, base = three_members(meta, store, saved)
    ledger_of(meta, saved).post(Earn(person=base, request_id="short", amount=7, expires_at=T + timedelta(minutes=30)),
                                T)  # fmt: skip
    done = run_pass(meta, project, store, PASS, secret=SECRET)
    (club,) = done.programmes
    assert (club.up, club.down, club.full, club.levels_granted, club.coupons) == (2, 0, True, 2, 3)
    assert (club.lots_expired, club.points_expired) == (1, 7)
    assert [get_member(meta, saved, p).level for p in (silver, gold, base)] == [1, 2, 0]
    assert grants(meta, silver) == {"welcome": 2}
    assert grants(meta, gold) == {"gold_gift": 1}  # the level reached, not the one skipped on the way
    assert grants(meta, base) == {}
    again = run_pass(meta, project, store, PASS + timedelta(minutes=5), secret=SECRET)
    assert (again.programmes[0].full, again.programmes[0].coupons, again.events_written) == (False, 0, 0)
    assert grants(meta, silver) == {"welcome": 2}
    assert event_counts(store) == {"$member_joined": (3, 3), "$member_level_up": (2, 2), "$points_earned": (1, 1),
                                   "$points_expired": (1, 1)}  # fmt: skip
    # the next local day (Asia/Shanghai: 16:00 UTC) brings the full evaluation again, and nothing twice
    next_day = run_pass(meta, project, store, datetime(2026, 3, 10, 16, 0), secret=SECRET)
    assert (next_day.programmes[0].full, next_day.programmes[0].coupons) == (True, 0)
    with meta.session() as s:  # the upgrades granted long enough ago are behind the cursor, their rows dropped
        ups = s.scalars(select(LevelChange.id).where(LevelChange.to_level > LevelChange.from_level)).all()
        assert s.get(PassStateRow, saved.id).levels_low == max(ups)  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(LevelGrantRow)) == 0
    # falling and climbing back is a new reach: the level's coupons again, once
    with meta.session.begin() as s:
        s.add(LevelChange(programme_id=saved.id, member_id=get_member(meta, saved, silver).id, person=silver,
                          from_level=1, to_level=0, at=datetime(2026, 3, 11), reason="grace"))  # fmt: skip
        s.add(LevelChange(programme_id=saved.id, member_id=get_member(meta, saved, silver).id, person=silver,
                          from_level=0, to_level=1, at=datetime(2026, 3, 12), reason="upgrade"))  # fmt: skip
    for minutes in (0, 1):
        run_pass(meta, project, store, datetime(2026, 3, 12, 1, minutes), secret=SECRET)
    assert grants(meta, silver) == {"welcome": 4}


def test_coupons_exactly_once_through_a_crash_mid_pass_and_a_used_up_benefit(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta, project, store, saved = setup(workspace, gold_stock=1)
    silver, gold, _ = three_members(meta, store, saved)
    real_grant, calls = benefit_grants._grant_units, []

    def crash_on_second(*args: Any) -> int:
        calls.append(args)
        granted = real_grant(*args)
        if len(calls) == 2:  # one call per change: silver's (its two units), then gold's
            raise RuntimeError("killed inside the second change's transaction, after its grant")
        return granted

    monkeypatch.setattr(benefit_grants, "_grant_units", crash_on_second)
    with pytest.raises(RuntimeError):
        run_pass(meta, project, store, PASS, secret=SECRET)
    monkeypatch.undo()
    assert grants(meta, silver) == {"welcome": 2} and grants(meta, gold) == {}  # the first change committed
    first = run_pass(meta, project, store, PASS, secret=SECRET).programmes[0]
    assert (first.levels_granted, first.coupons, first.failed) == (1, 1, 0)
    assert grants(meta, silver) == {"welcome": 2} and grants(meta, gold) == {"gold_gift": 1}
    # a second member reaches gold when its one unit is gone: kept, and granted after a restock
    orders(store, {"late": 900}, T + timedelta(hours=2), loaded=T + timedelta(hours=2))
    late = person_keys(store)["late"]
    join(meta, saved, late, T)
    orders(store, {"late": 1}, T + timedelta(hours=3), loaded=T + timedelta(hours=3))
    used_up = run_pass(meta, project, store, T + timedelta(hours=3), secret=SECRET).programmes[0]
    assert (used_up.up, used_up.levels_granted, used_up.failed) == (1, 0, 1)
    with meta.session.begin() as s:
        s.execute(update(BenefitRow).where(BenefitRow.name == "gold_gift").values(stock=5))
    restocked = run_pass(meta, project, store, T + timedelta(hours=4), secret=SECRET).programmes[0]
    assert (restocked.levels_granted, restocked.coupons, restocked.failed) == (1, 1, 0)
    run_pass(meta, project, store, T + timedelta(hours=5), secret=SECRET)
    assert [grants(meta, p) for p in (silver, gold, late)] == [{"welcome": 2}, {"gold_gift": 1}, {"gold_gift": 1}]
    with meta.session() as s:
        assert s.scalar(select(BenefitRow.granted).where(BenefitRow.name == "gold_gift")) == 2
    assert event_counts(store)["$member_level_up"] == (3, 3)


def test_the_crash_of_a_later_step_loses_and_doubles_nothing(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta, project, store, saved = setup(workspace)
    silver, _, _ = three_members(meta, store, saved)

    def killed(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("killed in the engagement pass")

    monkeypatch.setattr(runner.engagement, "run_pass", killed)
    with pytest.raises(RuntimeError):
        run_pass(meta, project, store, PASS, secret=SECRET)
    monkeypatch.undo()
    assert event_counts(store) == {}
    done = run_pass(meta, project, store, PASS, secret=SECRET)
    assert done.programmes[0].coupons == 0 and grants(meta, silver) == {"welcome": 2}
    assert event_counts(store)["$member_level_up"] == (2, 2)


def test_the_level_multiplier_applies_to_check_in_rewards_by_the_level_held_then(workspace: Workspace) -> None:
    meta, project, store, saved = setup(workspace)
    silver, gold, base = three_members(meta, store, saved)
    run_pass(meta, project, store, PASS, secret=SECRET)  # silver and gold reached at PASS
    check_in(meta, saved, silver, PASS + timedelta(hours=1), secret=SECRET)  # silver: 10 × 2.5
    check_in(meta, saved, gold, PASS - timedelta(minutes=30), secret=SECRET)  # still base then: 10
    check_in(meta, saved, base, PASS + timedelta(hours=1), secret=SECRET)  # base: 10
    ledger = ledger_of(meta, saved)
    ledger.post(Earn(person=silver, request_id="api-earn", amount=100), PASS + timedelta(hours=1))  # not multiplied
    later = PASS + timedelta(hours=2)
    done = run_pass(meta, project, store, later, secret=SECRET).programmes[0]
    assert (done.multiplied, done.bonus_points) == (3, 15)
    run_pass(meta, project, store, later + timedelta(minutes=1), secret=SECRET)
    balances = [ledger.balance(p, "points", later).spendable for p in (silver, gold, base)]
    assert balances == [125, 10, 10]
    earned = rows(store, "SELECT person_key, points FROM (SELECT user_id AS person_key, points FROM {events} "
                         "WHERE event = '$points_earned') ORDER BY 1, 2")  # fmt: skip
    assert sorted(int(p) for u, p in earned if u == silver) == [10, 15, 100]  # type: ignore[call-overload]


def test_the_pass_gives_a_birthday_pack_once_looking_once_a_quarter_hour(workspace: Workspace) -> None:
    meta, project, store, saved = setup(workspace)
    join(meta, saved, 7, T - timedelta(days=1), birthday=date(1999, 3, 10), zone="America/Los_Angeles")

    def packs(at: datetime) -> int:
        return run_pass(meta, project, store, at, secret=SECRET).programmes[0].birthdays

    # 9 March, 23:50 in Los Angeles (PDT since 8 March); then 00:04, the first pass of the quarter 10 March began in
    assert [packs(datetime(2026, 3, 10, 6, 50)), packs(datetime(2026, 3, 10, 7, 4))] == [0, 1]
    join(meta, saved, 8, T - timedelta(days=1), birthday=date(1999, 3, 10), zone="America/Los_Angeles")
    found = [packs(datetime(2026, 3, 10, 7, m)) for m in (10, 14, 15, 29, 44)]
    assert found == [0, 0, 1, 0, 0]  # the quarter was looked at already: member 8's pack in the next one
    assert grants(meta, 7) == grants(meta, 8) == {"welcome": 1}
    assert ledger_of(meta, saved).balance(7, "points", datetime(2026, 3, 11)).spendable == 3


def test_the_service_loop_runs_the_pass_on_its_own(workspace: Workspace) -> None:
    meta, _, store, saved = setup(workspace)
    now = utcnow()
    orders(store, {"silver": 150}, now - timedelta(minutes=1))
    (person,) = person_keys(store).values()
    join(meta, saved, person, now - timedelta(days=1))
    loop = MembershipLoop(workspace, tick=0.05)
    loop.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not grants(meta, person):
            time.sleep(0.05)
    finally:
        loop.stop()
    assert get_member(meta, saved, person).level == 1
    assert grants(meta, person) == {"welcome": 2}
    assert loop.passes >= 1


def test_the_command_runs_one_pass_in_process(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws")
    meta, _, store, saved = setup(ws)
    now = utcnow()
    orders(store, {"silver": 150}, now - timedelta(minutes=1))
    (person,) = person_keys(store).values()
    join(meta, saved, person, now - timedelta(days=1))
    ws.close()
    shown = CliRunner().invoke(members_app, ["run-once", "-w", str(tmp_path / "ws"), "--json"], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    (club,) = json.loads(shown.output)["programmes"]
    assert (club["programme"], club["up"], club["coupons"]) == ("club", 1, 2)
    text = CliRunner().invoke(members_app, ["run-once", "-w", str(tmp_path / "ws")], catch_exceptions=False)
    assert "0 coupons granted" in text.output and "发放优惠券 0" in text.output
