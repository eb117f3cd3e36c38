"""The programme definition: every error by path, birthdays on 29 February and across zones, and the CLI in
process (``userloop programmes …`` / ``userloop members …``)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from userloop.cli.main import app
from userloop.core.errors import ValidationError
from userloop.membership.programme import birthday_in, birthday_window, parse, validate
from userloop.store import Workspace

BASE: dict[str, Any] = {
    "name": "club",
    "title": {"zh": "会员", "en": "Club"},
    "growth": {"rules": [{"name": "spend", "event": "order_paid",
                          "amount": {"kind": "per_property", "property": "order_amount", "multiplier": 1}}]},
    "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0},
               {"name": "gold", "title": {"zh": "黄金", "en": "Gold"}, "threshold": 1000}],
}  # fmt: skip


def with_(**parts: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(BASE)), **parts}


def paths(doc: dict[str, Any]) -> set[str]:
    return {e["path"] for e in validate(doc)}


def test_every_shape_error_comes_back_with_its_path() -> None:
    doc = with_(
        window={"kind": "rolling_days", "days": 0},
        downgrade={"kind": "grace"},
        wallets=[{"name": "Points!"}],
        extra_field=1,
    )
    doc["levels"][1]["benefits"] = [{"kind": "title", "title": {"zh": ""}}, {"kind": "vip_lounge"}]
    doc["growth"]["rules"][0]["where"] = [{"property": "x", "op": "gt", "value": "big"},
                                          {"property": "y", "op": "in", "value": 3}]  # fmt: skip
    assert paths(doc) == {
        "window.days", "downgrade.days", "wallets.0.name", "extra_field", "levels.1.benefits.0.title.zh",
        "levels.1.benefits.0.title.en", "levels.1.benefits.1", "growth.rules.0.where.0.value",
        "growth.rules.0.where.1.value",
    }  # fmt: skip


def test_coherence_errors_come_back_together() -> None:
    doc = with_(timezone="Mars/Olympus", tasks=[
        {"name": "t", "title": {"zh": "任务", "en": "Task"}, "event": "review", "reward": {}},
        {"name": "t", "title": {"zh": "任务", "en": "Task"}, "event": "review", "reward": {"points": 5,
                                                                                        "wallet": "coins"}},
    ], check_in={"points": 1, "wallet": "coins", "streaks": [{"days": 7, "reward": {"points": 9}},
                                                           {"days": 7, "reward": {"growth": 1}}]})  # fmt: skip
    doc["levels"][0]["threshold"] = 5
    doc["levels"].append({"name": "gold", "title": {"zh": "铂金", "en": "Platinum"}, "threshold": 1000,
                          "benefits": [{"kind": "points_multiplier", "multiplier": 2},
                                       {"kind": "points_multiplier", "multiplier": 3}]})  # fmt: skip
    assert paths(doc) == {
        "timezone", "levels.0.threshold", "levels.2.threshold", "levels.2.name", "tasks.1.name",
        "tasks.1.reward.wallet", "check_in.wallet", "levels.2.benefits", "check_in.streaks.1.days", "tasks.0.reward",
    }  # fmt: skip
    with pytest.raises(ValidationError) as raised:
        parse(doc)
    assert raised.value.code == "programme_invalid" and "levels.0.threshold" in str(raised.value)


def test_a_valid_programme_round_trips_with_its_defaults() -> None:
    p = parse(BASE)
    assert (p.timezone, p.window.kind, p.downgrade.kind, [w.name for w in p.wallets]) == (
        "Asia/Shanghai", "lifetime", "never", ["points"])  # fmt: skip
    assert parse(json.loads(p.model_dump_json())) == p
    assert [p.level_for(g) for g in (0, 999, 1000, 10**9)] == [0, 0, 1, 1]


def test_a_29_february_birthday_is_kept_on_28_february_outside_leap_years() -> None:
    leap = date(2000, 2, 29)
    assert birthday_in(leap, 2028) == date(2028, 2, 29)
    assert birthday_in(leap, 2027) == date(2027, 2, 28)
    assert birthday_in(date(1990, 3, 1), 2027) == date(2027, 3, 1)
    # 28 February 2027 in Shanghai is 27 Feb 16:00 UTC to 28 Feb 16:00 UTC
    assert birthday_window(leap, datetime(2027, 2, 27, 16, 0), "Asia/Shanghai") == (
        datetime(2027, 2, 27, 16, 0), datetime(2027, 2, 28, 16, 0))  # fmt: skip
    assert birthday_window(leap, datetime(2027, 2, 27, 15, 59), "Asia/Shanghai") is None
    assert birthday_window(leap, datetime(2027, 2, 28, 16, 0), "Asia/Shanghai") is None  # 1 March there
    assert birthday_window(leap, datetime(2027, 2, 28, 16, 0), "UTC") is not None
    assert birthday_window(leap, datetime(2028, 2, 28, 12, 0), "UTC") is None  # a leap year: the 29th
    assert birthday_window(leap, datetime(2028, 2, 29, 23, 0), "America/New_York") is not None  # 18:00 there


def test_the_cli_saves_shows_and_evaluates(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws")
    ws.close()
    runner = CliRunner()
    spec = tmp_path / "club.json"
    spec.write_text(json.dumps(BASE), encoding="utf-8")
    common = ["--workspace", str(tmp_path / "ws")]

    def run(*args: str) -> Any:
        return runner.invoke(app, [*args, *common])

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(with_(window={"kind": "rolling_days"})), encoding="utf-8")
    refused = run("programmes", "validate", str(bad))
    assert refused.exit_code == 1 and "window.days" in refused.output
    made = run("programmes", "create", str(spec))
    assert made.exit_code == 0 and "saved / 已保存" in made.output, made.output
    shown = run("programmes", "show", "club")
    assert shown.exit_code == 0 and "order_amount × 1.0" in shown.output and "黄金" in shown.output
    joined = run("members", "join", "5", "--programme", "club", "--birthday", "2000-02-29", "--json")
    assert joined.exit_code == 0, joined.output
    assert json.loads(joined.output)["to_next"] == 1000
    evaluated = run("members", "evaluate", "--programme", "club")
    assert evaluated.exit_code == 0 and "1 members evaluated" in evaluated.output, evaluated.output
    missing = run("members", "show", "6", "--programme", "club")
    assert missing.exit_code != 0 and "not a member" in missing.output


def test_a_null_character_anywhere_is_refused_by_path() -> None:
    doc = with_(name="club\x00")
    doc["levels"][1]["title"]["zh"] = "黄\x00金"
    assert paths(doc) == {"name", "levels.1.title.zh"}
