"""``userloop migrate``: copy a workspace's projects from DuckDB into ClickHouse and show the verified counts."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from userloop.cli.options import DEFAULT_WORKSPACE, Json_, Workspace_
from userloop.cli.output import Out

if TYPE_CHECKING:
    from userloop.store.duck import ProjectStore


class Target(StrEnum):
    clickhouse = "clickhouse"


def migrate(
    to: Annotated[Target, typer.Option("--to", help="The store to copy into.")],
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Where it is: clickhouse://user:password@host:8123/database (a server; clickhouses:// over TLS) "
            "or chdb:///absolute/path (ClickHouse in process). The password is never printed.",
        ),
    ] = None,
    project: Annotated[
        str | None, typer.Option("-p", "--project", help="Copy only this project (default: every project).")
    ] = None,
    ddl_only: Annotated[
        bool,
        typer.Option("--ddl-only", help="Print the CREATE statements instead of copying (for a server or cluster)."),
    ] = False,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="With --ddl-only: the cluster layout (replicated, sharded by person)."),
    ] = None,
    switch: Annotated[
        bool,
        typer.Option(
            "--switch",
            help="After a verified copy of every project, keep events in ClickHouse from now on: the loader writes "
            "each batch there too ([storage] events_url). Stop the server first.",
        ),
    ] = False,
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    json_out: Json_ = False,
) -> None:
    """Copy projects from DuckDB into ClickHouse and verify the counts of every table and month.

    Every table (events, users, identities, items, registry, event names, counters, settings, the tag, segment and
    model tables) is copied, then counted on both sides with each month of events; any difference is an error
    (mirror_mismatch). With ``--ddl-only`` print the tables' CREATE statements (``--cluster NAME``: replicated
    local tables and Distributed tables sharded by person) to run on a ClickHouse server first. With ``--switch``
    every project is copied in the layout the loader then writes (events behind a view that applies person
    overrides) and the workspace's ``[storage] events_url`` is set to ``--url``.
    将项目从 DuckDB 迁移到 ClickHouse 并核对行数；--ddl-only 只打印建表语句。"""
    from userloop.cli.session import open_local
    from userloop.core.errors import ValidationError
    from userloop.store.clickhouse import ClickHouseStore
    from userloop.store.mirror import copy_project

    out = Out(json_out)
    with out.errors(), open_local(workspace, read_only=True) as ws:
        names = [project] if project is not None else [p.name for p in ws.meta.projects()]
        sources = [ws.project(name) for name in names]  # every name checked before anything is copied
        if ddl_only:
            _print_ddl(out, sources, cluster)
            return
        if url is None:
            raise ValidationError("--url is needed to copy (or give --ddl-only) / 迁移需要 --url（或使用 --ddl-only）",
                                  code="invalid")  # fmt: skip
        if switch and project is not None:
            raise ValidationError(
                "--switch moves every project: leave out --project / --switch 迁移全部项目，请去掉 --project",
                code="invalid",
            )
        store = ClickHouseStore(url)
        try:
            rows = []
            for name, source in zip(names, sources, strict=True):
                for count in copy_project(source, store, written=switch):
                    rows.append({"project": name, "table": count.table, "duckdb": count.duckdb,
                                 "clickhouse": count.clickhouse, "equal": count.equal})  # fmt: skip
        finally:
            store.close()
        if switch:
            ws.set_events_url(url)
        if json_out:
            out.emit({"to": to.value, "url": store.shown_url, "tables": rows, "switched": switch})
            return
        out.table(rows, ["project", "table", "duckdb", "clickhouse", "equal"])
        typer.echo(
            f"Copied {len(names)} project(s) to {store.shown_url}; every count equal. / "
            f"已迁移 {len(names)} 个项目，行数一致。"
        )
        if switch:
            typer.echo("Events now also live in ClickHouse ([storage] events_url). / 事件此后同时写入 ClickHouse。")
            if "@" in url:
                typer.echo(
                    "The password is not kept in userloop.toml: set USERLOOP_CLICKHOUSE_PASSWORD for the service. / "
                    "密码不写入 userloop.toml：请为服务设置环境变量 USERLOOP_CLICKHOUSE_PASSWORD。"
                )


def _print_ddl(out: Out, sources: list[ProjectStore], cluster: str | None) -> None:
    """Each project's ClickHouse tables as statements, one per line (``;``-terminated), or as JSON."""
    from userloop.store.clickhouse_ddl import project_ddl
    from userloop.store.dialects import render
    from userloop.store.mirror import duck_columns

    statements = [
        render(stmt, "clickhouse") for source in sources for stmt in project_ddl(source.schema, duck_columns(source),
                                                                                  cluster=cluster)
    ]  # fmt: skip
    if out.json:
        out.emit({"cluster": cluster, "statements": statements})
        return
    for text in statements:
        typer.echo(f"{text};")
