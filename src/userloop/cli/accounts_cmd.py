"""``userloop accounts …``: operators' accounts (操作员账号) for the console: create, list, grant, disable, enable,
reset a password.

Every command runs an operation of :mod:`userloop.ops.accounts` through :mod:`userloop.cli.dispatch` (the running
server's API, or the workspace in process, as its owner): on a fresh workspace this is how the first admin is made::

    userloop accounts create alice --name "Alice" --role admin
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Workspace_
from userloop.cli.output import Out
from userloop.core.errors import ValidationError

accounts_app = typer.Typer(
    help="Operators' accounts (操作员账号) for the console: create, list, grant a role per project, disable, "
    "enable, reset a password.",
    no_args_is_help=True,
)

Login_ = Annotated[str, typer.Argument(help="The account's login (登录名).")]
Role_ = Annotated[str | None, typer.Option("--role", help="viewer, analyst, operator or admin (角色).")]
ProjectOpt_ = Annotated[
    str | None, typer.Option("-p", "--project", help="The project of the role; none: every project (全部项目).")
]
PasswordStdin_ = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts).")
]


def _password(from_stdin: bool) -> str:
    """The password: the first line of standard input, or typed twice without echo."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ValidationError("no password on standard input / 标准输入中没有密码", field="--password-stdin")
        return line
    entered: str = typer.prompt("Password / 密码", hide_input=True, confirmation_prompt="Again / 再输入一次")
    return entered


def _roles(account: dict[str, Any]) -> str:
    return ", ".join(f"{r['role']}@{r['project'] or '*'}" for r in account["roles"]) or "-"


def _show(out: Out, account: dict[str, Any], headline: str) -> None:
    state = "disabled / 已停用" if account["disabled_at"] else "active / 启用"
    grants = ", ".join(f"{g['grant']}@{g['project'] or '*'}" for g in account["grants"]) or "-"
    out.emit(account, text=[f"{headline} account {account['login']} ({account['name']}): {state}; "
                            f"roles / 角色: {_roles(account)}; grants / 授权: {grants}"])  # fmt: skip


@accounts_app.command("create")
def create(
    login: Login_,
    name: Annotated[str, typer.Option("--name", help="The name shown in the console (显示名).")] = "",
    role: Role_ = None,
    project: ProjectOpt_ = None,
    password_stdin: PasswordStdin_ = False,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    json_out: Json_ = False,
) -> None:
    """Create an account; the password is typed twice (or read with --password-stdin). 创建账号。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        roles = [] if role is None else [{"project": project, "role": role}]
        password = _password(password_stdin)
        reply = call(workspace, "accounts.create", login=login, name=name, password=password, roles=roles)
        _show(out, as_json("accounts.create", reply), "created / 已创建")


@accounts_app.command("list")
def list_(workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, json_out: Json_ = False) -> None:
    """List the accounts with their roles. 列出账号及角色。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        rows = as_json("accounts.list", call(workspace, "accounts.list"))
        if json_out:
            out.emit(rows)
            return
        table = [{"login": a["login"], "name": a["name"], "roles": _roles(a),
                  "pii": ", ".join(g["project"] or "*" for g in a["grants"] if g["grant"] == "pii") or "-",
                  "state": "disabled" if a["disabled_at"] else "locked" if a["locked_until"] else "active",
                  "created_at": a["created_at"]} for a in rows]  # fmt: skip
        out.table(table, ["login", "name", "roles", "pii", "state", "created_at"])


@accounts_app.command("grant")
def grant(
    login: Login_,
    role: Role_ = None,
    project: ProjectOpt_ = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the role in the project away (收回角色).")] = False,
    pii: Annotated[
        bool | None, typer.Option("--pii/--no-pii", help="Give or take personal data in clear (个人信息明文).")
    ] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    json_out: Json_ = False,
) -> None:
    """Give a role in a project (or every project), take it away, or grant pii. 授予或收回角色。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        reply = call(workspace, "accounts.grant", login=login, project=project, role=role, revoke=revoke, pii=pii)
        _show(out, as_json("accounts.grant", reply), "changed / 已修改")


def _simple(op_id: str, headline: str, workspace: Any, json_out: bool, **fields: Any) -> None:
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        _show(out, as_json(op_id, call(workspace, op_id, **fields)), headline)


@accounts_app.command("disable")
def disable(login: Login_, workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, json_out: Json_ = False) -> None:
    """Disable an account: it cannot sign in, its sessions end. 停用账号。"""
    _simple("accounts.disable", "disabled / 已停用", workspace, json_out, login=login)


@accounts_app.command("enable")
def enable(login: Login_, workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, json_out: Json_ = False) -> None:
    """Enable a disabled account (and unlock it). 启用账号。"""
    _simple("accounts.enable", "enabled / 已启用", workspace, json_out, login=login)


@accounts_app.command("password")
def password(
    login: Login_,
    password_stdin: PasswordStdin_ = False,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    json_out: Json_ = False,
) -> None:
    """Set an account's password; its sessions end. 重置密码。"""
    out = Out(json_out)
    with out.errors():
        secret = _password(password_stdin)
    _simple("accounts.password", "password set / 密码已重置", workspace, json_out, login=login, password=secret)
