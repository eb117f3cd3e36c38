"""``userloop programmes …`` and ``userloop members …``: member programmes (会员体系) and their members.

Every command runs an operation of :mod:`userloop.ops.programmes` or :mod:`userloop.ops.members` through
:mod:`userloop.cli.dispatch` (the running server's API, or the workspace in process); ``--json`` prints what the
API answers.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from userloop.cli.journeys_cmd import read_json
from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Project_, Workspace_
from userloop.cli.output import Out

programmes_app = typer.Typer(
    help="Member programmes (会员体系): growth rules, levels, benefits, check-ins, tasks; validate, create, edit.",
    no_args_is_help=True,
)
members_app = typer.Typer(
    help="Members (会员): join, level and progress, list, leave, re-evaluate levels, run the membership pass, "
    "diagnose a programme.",
    no_args_is_help=True,
)

Programme_ = Annotated[str, typer.Argument(help="The programme's id or name.")]
ProgrammeOpt_ = Annotated[str, typer.Option("--programme", help="The programme's id or name.")]
Person_ = Annotated[int, typer.Argument(help="The person key (users.user_id).")]
File_ = Annotated[str, typer.Argument(help="A JSON file, or - for standard input.")]


# programmes -------------------------------------------------------------------------------------------------
def _show_programme(out: Out, p: dict[str, Any], headline: str) -> None:
    headline = f"{headline} " if headline else ""
    out.emit(p, text=[f"{headline}programme {p['id']}: {p['name']} ({p['title_zh']} / {p['title_en']}), "
                      f"version {p['version']}, {p['levels']} levels / 个等级, "
                      f"{p['rules']} growth rules / 条成长值规则"])  # fmt: skip


@programmes_app.command("create")
def programmes_create(
    file: File_, workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, project: Project_ = "default", json_out: Json_ = False
) -> None:
    """Save a programme from a definition file. 保存会员体系。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        doc = read_json(file, "programme")
        reply = as_json("programmes.create", call(workspace, "programmes.create", project=project, definition=doc))
        _show_programme(out, reply, "saved / 已保存")


@programmes_app.command("edit")
def programmes_edit(
    programme: Programme_,
    file: File_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Change a programme: a new version. 修改会员体系（生成新版本）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        doc = read_json(file, "programme")
        reply = as_json("programmes.update", call(workspace, "programmes.update", project=project,
                                                  programme=programme, definition=doc))  # fmt: skip
        _show_programme(out, reply, "changed / 已修改")


@programmes_app.command("list")
def programmes_list(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, project: Project_ = "default", json_out: Json_ = False
) -> None:
    """List the project's programmes. 列出会员体系。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        rows = as_json("programmes.list", call(workspace, "programmes.list", project=project))
        out.table(rows, ["id", "name", "title_zh", "title_en", "status", "version", "levels", "rules", "updated_at"])


@programmes_app.command("show")
def programmes_show(
    programme: Programme_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Show a programme: its levels with thresholds and its growth rules. 查看等级与成长值规则。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        p = as_json("programmes.show", call(workspace, "programmes.show", project=project, programme=programme))
        if json_out:
            out.emit(p)
            return
        _show_programme(out, p, "")
        d = p["definition"]
        levels = [{"level": i, "name": lv["name"], "zh": lv["title"]["zh"], "en": lv["title"]["en"],
                   "threshold": lv["threshold"], "benefits": ", ".join(b["kind"] for b in lv["benefits"])}
                  for i, lv in enumerate(d["levels"])]  # fmt: skip
        out.table(levels, ["level", "name", "zh", "en", "threshold", "benefits"])
        rules = [{"rule": r["name"], "event": r["event"], "amount": _amount(r["amount"]),
                  "daily_cap": r["daily_cap"], "total_cap": r["total_cap"]} for r in d["growth"]["rules"]]  # fmt: skip
        out.table(rules, ["rule", "event", "amount", "daily_cap", "total_cap"])
        typer.echo(f"window / 统计周期: {d['window']['kind']}; downgrade / 降级: {d['downgrade']['kind']}; "
                   f"zone / 时区: {d['timezone']}")  # fmt: skip


def _amount(a: dict[str, Any]) -> str:
    return str(a["amount"]) if a["kind"] == "fixed" else f"{a['property']} × {a['multiplier']}"


@programmes_app.command("validate")
def programmes_validate(
    file: File_, workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, project: Project_ = "default", json_out: Json_ = False
) -> None:
    """Check a definition file: every error by path (exit status 1 when invalid). 校验会员体系定义，按路径列出错误。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        doc = read_json(file, "programme")
        reply = as_json("programmes.validate", call(workspace, "programmes.validate", project=project, definition=doc))
    if json_out:
        out.emit(reply)
    elif reply["valid"]:
        typer.echo("valid / 校验通过")
    else:
        typer.echo(f"{len(reply['errors'])} error(s) / 个错误:")
        out.table(reply["errors"], ["path", "message"])
    if not reply["valid"]:
        raise typer.Exit(1)


@programmes_app.command("versions")
def programmes_versions(
    programme: Programme_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """List a programme's versions. 列出会员体系的版本。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        rows = as_json("programmes.versions", call(workspace, "programmes.versions", project=project,
                                                   programme=programme))  # fmt: skip
        if json_out:
            out.emit(rows)
            return
        out.table([{"version": r["version"], "created_at": r["created_at"], "levels": len(r["definition"]["levels"])}
                   for r in rows], ["version", "created_at", "levels"])  # fmt: skip


# members -----------------------------------------------------------------------------------------------------
def _show_member(out: Out, m: dict[str, Any], headline: str) -> None:
    headline = f"{headline} " if headline else ""
    if m["next_level"] is None:
        progress = "top level / 已是最高等级"
    else:
        progress = (f"{m['to_next']} more to {m['next_level']} ({m['next_threshold']}) / "
                    f"距 {m['next_level']} 还差 {m['to_next']}")  # fmt: skip
    out.emit(m, text=[f"{headline}person {m['person']} in {m['programme']}: level {m['level']} {m['level_name']} "
                      f"({m['level_zh']} / {m['level_en']}) since {m['level_since']}, {m['status']}; growth / 成长值 "
                      f"{m['growth']}; {progress}"])  # fmt: skip


@members_app.command("join")
def members_join(
    person: Person_,
    programme: ProgrammeOpt_,
    birthday: Annotated[str | None, typer.Option(help="YYYY-MM-DD, for the birthday pack.")] = None,
    zone: Annotated[str | None, typer.Option(help="The member's IANA time zone.")] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Make a person a member (at the base level). 加入会员。"""
    from userloop.cli.dispatch import as_json, call
    from userloop.core.clock import parse_day

    out = Out(json_out)
    with out.errors():
        day: date | None = parse_day(birthday, "birthday")
        reply = as_json("members.join", call(workspace, "members.join", project=project, programme=programme,
                                             person=person, birthday=day, zone=zone))  # fmt: skip
        _show_member(out, reply, "joined / 已加入")


@members_app.command("show")
def members_show(
    person: Person_,
    programme: ProgrammeOpt_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """A member's level and progress to the next level. 查看会员等级与升级进度。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        reply = as_json("members.show", call(workspace, "members.show", project=project, programme=programme,
                                             person=person))  # fmt: skip
        _show_member(out, reply, "")


@members_app.command("leave")
def members_leave(
    person: Person_,
    programme: ProgrammeOpt_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """A member leaves the programme (their history stays). 退出会员。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        reply = as_json("members.leave", call(workspace, "members.leave", project=project, programme=programme,
                                              person=person))  # fmt: skip
        _show_member(out, reply, "left / 已退出")


@members_app.command("list")
def members_list(
    programme: ProgrammeOpt_,
    level: Annotated[int | None, typer.Option(help="Only members of this level.")] = None,
    after: Annotated[int, typer.Option(help="Person keys after this one (paging).")] = -1,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """List a programme's members by person key. 列出会员。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        rows = as_json("members.list", call(workspace, "members.list", project=project, programme=programme,
                                            level=level, after=after, limit=limit))  # fmt: skip
        out.table(rows, ["person", "level", "level_name", "level_since", "joined_at"])


@members_app.command("evaluate")
def members_evaluate(
    programme: ProgrammeOpt_,
    person: Annotated[list[int] | None, typer.Option("--person", help="Only this person (repeatable).")] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Credit new events' growth and re-evaluate levels. 计入新事件的成长值并重新评定等级。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        r = as_json("members.evaluate", call(workspace, "members.evaluate", project=project, programme=programme,
                                             persons=person or None))  # fmt: skip
        out.emit(r, text=[f"{r['events']} events read, {r['growth']} growth credited in {r['entries']} entries; "
                          f"{r['members']} members evaluated: {r['up']} up, {r['down']} down / "
                          f"读取 {r['events']} 个事件，计入成长值 {r['growth']}；评定 {r['members']} 名会员："
                          f"升级 {r['up']}，降级 {r['down']}"])  # fmt: skip


@members_app.command("run-once")
def members_run_once(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, project: Project_ = "default", json_out: Json_ = False
) -> None:
    """Run the membership pass once: growth, levels, expiries, benefits, tasks, events (what the server repeats).
    运行一次会员处理：成长值、等级、积分过期、权益、任务、事件（服务会自动重复运行）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        r = as_json("membership.pass", call(workspace, "membership.pass", project=project))
        text = [f"{p['programme']}: {p['evaluated']} members evaluated, {p['up']} up, {p['down']} down, "
                f"{p['points_expired']} points expired, {p['coupons']} coupons granted, {p['birthdays']} birthday "
                f"packs, {p['bonus_points']} multiplier points / 评定 {p['evaluated']} 名会员，升级 {p['up']}，"
                f"降级 {p['down']}，过期积分 {p['points_expired']}，发放优惠券 {p['coupons']}，生日礼包 "
                f"{p['birthdays']}，等级加倍积分 {p['bonus_points']}" for p in r["programmes"]]  # fmt: skip
        text.append(f"{r['tasks_completed']} tasks completed, {r['events_written']} events written / "
                    f"完成任务 {r['tasks_completed']}，写入事件 {r['events_written']}")  # fmt: skip
        out.emit(r, text=text)
