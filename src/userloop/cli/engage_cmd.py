"""``userloop templates …``, ``userloop benefits …`` and ``userloop channels …``: what journeys send with.

Materials (素材, message templates), benefits (权益, coupons) and channels (渠道). Every command runs an operation of
:mod:`userloop.ops.engage_assets` through :mod:`userloop.cli.dispatch`; ``--json`` prints what the API answers.
Channel secrets are masked in every answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from userloop.cli.journeys_cmd import read_json
from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Project_, Workspace_
from userloop.cli.output import Out

templates_app = typer.Typer(
    help="Materials (素材): message templates in zh-CN and en, checked when saved; preview, test send.",
    no_args_is_help=True,
)
benefits_app = typer.Typer(help="Benefits (权益): coupons with a stock, granted by journeys.", no_args_is_help=True)
channels_app = typer.Typer(
    help="Channels (渠道): e-mail, SMS, push, webhook; settings with secrets stored encrypted.", no_args_is_help=True
)

Name_ = Annotated[str, typer.Argument(help="The name.")]


# templates ----------------------------------------------------------------------------------------------------
@templates_app.command("save")
def templates_save(
    file: Annotated[str, typer.Argument(help="A material file (JSON), or - for standard input.")],
    name: Annotated[str | None, typer.Option("--name", help="The material's name (default: the file's name).")] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Save a material (made or replaced); every template is checked first. 保存素材（保存前校验模板）。

    The file is a material ({"channel", "subject", "body", …}), or {"name": …, "definition": {…}}."""
    from userloop.cli.dispatch import as_json, call
    from userloop.core.errors import ValidationError

    out = Out(json_out)
    with out.errors():
        doc = read_json(file, "material")
        if set(doc) == {"name", "definition"} and isinstance(doc["definition"], dict):
            name, doc = name or str(doc["name"]), doc["definition"]
        if name is None:
            if file == "-":
                raise ValidationError("a material read from standard input needs --name", field="name")
            name = Path(file).stem
        row = as_json("templates.save", call(workspace, "templates.save", project=project, name=name, definition=doc))
        what = "saved / 已保存" if row["created"] else "replaced / 已替换"
        out.emit(row, text=[f"{what} material {row['name']} ({row['channel']})"])


@templates_app.command("list")
def templates_list(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """List the project's materials. 列出素材。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        rows = as_json("templates.list", call(workspace, "templates.list", project=project))
        if not json_out:
            rows = [{**r, "locales": ", ".join(r["definition"]["body"])} for r in rows]
        out.table(rows, ["name", "channel", "locales", "updated_at"])


@templates_app.command("show")
def templates_show(
    name: Name_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Show a material's templates. 查看素材。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        row = as_json("templates.show", call(workspace, "templates.show", project=project, name=name))
        d = row["definition"]
        lines = [f"{row['name']} ({row['channel']}{', HTML' if d.get('html') else ''})"]
        for part in ("subject", "body"):
            for locale, source in (d.get(part) or {}).items():
                lines.append(f"--- {part} [{locale}]")
                lines.append(source)
        for param, source in (d.get("params") or {}).items():
            lines.append(f"--- params.{param}: {source}")
        out.emit(row, text=lines)


@templates_app.command("delete")
def templates_delete(
    name: Name_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Delete a material. 删除素材。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        reply = as_json("templates.delete", call(workspace, "templates.delete", project=project, name=name))
        out.emit(reply, text=[f"deleted / 已删除 material {name}"])


def _rendered(out: Out, r: dict[str, Any]) -> None:
    lines = [f"{r['name']} ({r['channel']}, {r['locale']})"]
    if r["subject"] is not None:
        lines.append(f"subject / 标题: {r['subject']}")
    lines += ["--- body / 正文", r["text"]]
    lines += [f"params.{k}: {v}" for k, v in r["params"].items()]
    out.emit(r, text=lines)
    for w in r["warnings"]:
        out.note(f"note / 提示: {w}")


@templates_app.command("preview")
def templates_preview(
    name: Name_,
    person: Annotated[
        int | None, typer.Option("--person", help="A person key: their profile, tags and models.")
    ] = None,
    scope: Annotated[
        str | None, typer.Option("--scope", help="A JSON file of values given inline (person, tags, benefit…).")
    ] = None,
    locale: Annotated[
        str, typer.Option("--locale", help="The locale when the person has none: zh-CN or en.")
    ] = "zh-CN",
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Render a material for one person, listing what was undefined. 预览素材（按用户渲染）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        inline = read_json(scope, "scope") if scope else None
        reply = call(workspace, "templates.preview", project=project, name=name, person=person, scope=inline,
                     default_locale=locale)  # fmt: skip
        _rendered(out, as_json("templates.preview", reply))


@templates_app.command("test-send")
def templates_test_send(
    name: Name_,
    channel: Annotated[str, typer.Option("--channel", help="The channel's name.")],
    to: Annotated[str, typer.Option("--to", help="The address: an e-mail, a phone number, a device token, a URL.")],
    person: Annotated[int | None, typer.Option("--person", help="Render for this person key.")] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Send a material once to an address, as a transactional test message. 发送测试消息。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        reply = as_json("templates.test_send", call(workspace, "templates.test_send", project=project, name=name,
                                                    channel=channel, to=to, person=person))  # fmt: skip
        state = "sent / 已发送" if reply["status"] == "sent" else f"{reply['status']} / 未发送"
        detail = f": {reply['error']}" if reply.get("error") else ""
        out.emit(reply, text=[f"{state} {name} → {to} via {channel} (key {reply['key']}){detail}"])


# benefits -----------------------------------------------------------------------------------------------------
BENEFIT_COLUMNS = ["id", "name", "kind", "amount", "threshold", "valid_days", "stock", "granted", "remaining"]


@benefits_app.command("create")
def benefits_create(
    name: Name_,
    amount: Annotated[float, typer.Option("--amount", help="The amount off, in the project's money unit.")],
    threshold: Annotated[float, typer.Option("--threshold", help="The least order it applies to (0: any).")] = 0.0,
    valid_days: Annotated[int, typer.Option("--valid-days", help="Days a granted coupon stays valid.")] = 30,
    stock: Annotated[int | None, typer.Option("--stock", help="How many may be granted (default: unlimited).")] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Make a coupon with a stock. 创建优惠券权益。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        row = as_json("benefits.create", call(workspace, "benefits.create", project=project, name=name,
                                              amount=amount, threshold=threshold, valid_days=valid_days,
                                              stock=stock))  # fmt: skip
        stock_text = "unlimited / 不限" if row["stock"] is None else f"{row['stock']:,}"
        out.emit(row, text=[f"made / 已创建 benefit {row['id']}: {row['name']} — {row['amount']:g} off orders of "
                            f"{row['threshold']:g}+, valid {row['valid_days']} days, stock {stock_text}"])  # fmt: skip


@benefits_app.command("list")
def benefits_list(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """List benefits with granted and remaining stock. 列出权益（已发放、剩余）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        out.table(as_json("benefits.list", call(workspace, "benefits.list", project=project)), BENEFIT_COLUMNS)


@benefits_app.command("show")
def benefits_show(
    benefit: Annotated[str, typer.Argument(help="The benefit's id or name.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Show a benefit. 查看权益。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        row = as_json("benefits.show", call(workspace, "benefits.show", project=project, benefit=benefit))
        out.emit(row, text=[f"{c}: {'' if row[c] is None else row[c]}" for c in BENEFIT_COLUMNS])


@benefits_app.command("delete")
def benefits_delete(
    benefit: Annotated[str, typer.Argument(help="The benefit's id or name.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Delete a benefit never granted. 删除未发放过的权益。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        reply = as_json("benefits.delete", call(workspace, "benefits.delete", project=project, benefit=benefit))
        out.emit(reply, text=[f"deleted / 已删除 benefit {reply['deleted']}"])


# channels -----------------------------------------------------------------------------------------------------
PROVIDERS_HELP = "smtp; aliyun, tencent, twilio; jpush, getui, fcm; webhook; inbox."
PROVIDERS_HELP = "smtp; aliyun, tencent, twilio; jpush, getui, fcm; webhook; inbox."
CHANNEL_COLUMNS = ["name", "kind", "provider", "enabled", "rate_per_second", "created_at"]


def _settings_lines(row: dict[str, Any]) -> list[str]:
    state = "enabled / 启用" if row["enabled"] else "disabled / 停用"
    rate = f", {row['rate_per_second']:g}/s" if row.get("rate_per_second") else ""
    lines = [f"{row['name']}: {row['kind']} via {row['provider']} ({state}{rate})"]
    lines += [f"  {k}: {'' if v is None else v}" for k, v in sorted(row["settings"].items())]
    return lines


@channels_app.command("save")
def channels_save(
    name: Name_,
    kind: Annotated[str, typer.Option("--kind", help="email, sms, push, webhook or inbox.")],
    provider: Annotated[str, typer.Option("--provider", help=PROVIDERS_HELP)],
    settings: Annotated[
        str | None, typer.Option("--settings", help="A JSON file of the provider's settings (- for standard input).")
    ] = None,
    rate: Annotated[float | None, typer.Option("--rate", help="At most this many messages a second.")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Switch it on or off (default: new on, saved kept).")
    ] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Save a channel (made or replaced); secrets are stored encrypted and shown masked. 保存渠道（密钥加密保存）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        doc = read_json(settings, "settings") if settings else {}
        row = as_json("channels.save", call(workspace, "channels.save", project=project, name=name, kind=kind,
                                            provider=provider, settings=doc, rate_per_second=rate,
                                            enabled=enabled))  # fmt: skip
        out.emit(row, text=["saved / 已保存", *_settings_lines(row)])


@channels_app.command("list")
def channels_list(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """List the project's channels. 列出渠道。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        out.table(as_json("channels.list", call(workspace, "channels.list", project=project)), CHANNEL_COLUMNS)


@channels_app.command("show")
def channels_show(
    name: Name_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Show a channel's settings (secrets masked). 查看渠道设置（密钥已隐藏）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        row = as_json("channels.show", call(workspace, "channels.show", project=project, name=name))
        out.emit(row, text=_settings_lines(row))


@channels_app.command("delete")
def channels_delete(
    name: Name_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Delete a channel. 删除渠道。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        reply = as_json("channels.delete", call(workspace, "channels.delete", project=project, name=name))
        out.emit(reply, text=[f"deleted / 已删除 channel {name}"])
