"""The ``userloop`` command line.

Every command takes ``-w/--workspace`` (or ``USERLOOP_WORKSPACE``) and prints JSON with ``--json``; the JSON
shapes are documented in docs/cli.md and kept stable. Errors meant for the user exit with status 2 and one
line that says what to do; with ``--json`` they print ``{"error": {"code": …, "message": …}}``.

Commands live in their own modules and load on use (:mod:`userloop.cli.lazy`), so that starting the command
line imports none of the heavy libraries. To add a command or a group of commands, add one line to
:data:`COMMANDS`: its name, the module, the attribute (a ``typer.Typer`` for a group, a function for one
command) and the first sentence of its help, e.g.::

    "events": Lazy("userloop.cli.events_cmd", "events_app", "Events of the registry: active or passive."),
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from userloop import __version__
from userloop.cli.lazy import Lazy, LazyGroup, load
from userloop.cli.output import report
from userloop.core.errors import UserloopError

_W = "userloop.cli.workspace_cmd"

#: Every top-level command, in the order ``userloop --help`` lists them: name → where it lives, one-line help.
COMMANDS: dict[str, Lazy] = {
    "init": Lazy(_W, "init", "Create a workspace with the project `default`; prints its write key and admin token "
                 "once."),
    "demo": Lazy(_W, "demo", "Create a workspace, simulate a business, load it, and show what to do next."),
    "simulate": Lazy(_W, "simulate", "Simulate a fresh-food community O2O business and load it through the ingest "
                     "layer."),
    "serve": Lazy("userloop.cli.serve_cmd", "serve", "Serve the workspace: collector (Sensors, Segment, PostHog, "
                  "Mixpanel, native), REST API, scheduler."),
    "import": Lazy("userloop.cli.import_cmd", "import_app", "Import events, users or items from JSON lines, CSV or "
                   "Parquet files (gzip accepted)."),
    "sql": Lazy(_W, "sql", "Run read-only SQL."),
    "migrate": Lazy("userloop.cli.migrate_cmd", "migrate", "Copy projects from DuckDB into ClickHouse and verify "
                    "the counts of every table and month."),
    "query": Lazy("userloop.cli.query_cmd", "query", "Run an analysis definition: trends, funnel, retention, paths, "
                  "lifecycle, stickiness, distribution, interval, attribution, ltv, drilldown."),
    "insights": Lazy("userloop.cli.query_cmd", "insights_app", "Saved analyses: save, list, show, run, update, "
                     "delete."),
    "dashboard": Lazy("userloop.cli.query_cmd", "dashboard_app", "Ready-made dashboards."),
    "tags": Lazy("userloop.cli.profile_cmd", "tags_app", "Tags (标签): define, compute daily or now, read coverage "
                 "and history."),
    "segments": Lazy("userloop.cli.profile_cmd", "segments_app", "Segments (人群): rule, static and look-alike "
                     "audiences; estimate, compare, export."),
    "users": Lazy("userloop.cli.profile_cmd", "users_app", "One person: the 360 view and the event timeline "
                  "(用户360)."),
    "models": Lazy("userloop.cli.models_cmd", "models_app", "User models: RFM, lifecycle, CLV, value, activity, "
                   "preference, churn."),
    "projects": Lazy(_W, "projects_app", "Projects of a workspace (each has its own data, keys and time zone)."),
    "keys": Lazy("userloop.cli.serve_cmd", "keys_app", "Project write keys and API tokens (rights: read, analyse, "
                 "operate, write, admin, pii)."),
    "audit": Lazy("userloop.cli.audit_cmd", "audit", "Show the audit log: every change, who made it, when, before "
                  "and after (newest first)."),
    "accounts": Lazy("userloop.cli.accounts_cmd", "accounts_app", "Operators' accounts (操作员账号) for the "
                     "console: create, list, grant a role per project, disable, enable, reset a password."),
    "jobs": Lazy("userloop.cli.serve_cmd", "jobs_app", "Scheduled jobs of the service and their runs."),
    "properties": Lazy(_W, "properties_app", "The property registry: names, types, display names."),
    "events": Lazy("userloop.cli.events_cmd", "events_app", "Events of the registry: active (a person's action) or "
                   "passive (sent to the person, such as a push received)."),
    "rejects": Lazy(_W, "rejects_app", "Records that were refused, with the reason (the dead letter)."),
    "journeys": Lazy("userloop.cli.journeys_cmd", "journeys_app", "Journeys (流程画布): save, validate, start, "
                     "pause, resume, finish, archive, edit; statistics by node."),
    "templates": Lazy("userloop.cli.engage_cmd", "templates_app", "Materials (素材): message templates in zh-CN and "
                      "en, checked when saved; preview, test send."),
    "benefits": Lazy("userloop.cli.engage_cmd", "benefits_app", "Benefits (权益): coupons with a stock, granted by "
                     "journeys."),
    "channels": Lazy("userloop.cli.engage_cmd", "channels_app", "Channels (渠道): e-mail, SMS, push, webhook; "
                     "settings with secrets stored encrypted."),
    "programmes": Lazy("userloop.cli.members_cmd", "programmes_app", "Member programmes (会员体系): growth rules, "
                       "levels, benefits, check-ins, tasks; validate, create, edit."),
    "members": Lazy("userloop.cli.members_cmd", "members_app", "Members (会员): join, level and progress, list, "
                    "leave, re-evaluate levels, run the membership pass, diagnose a programme."),
    "experiments": Lazy("userloop.cli.experiments_cmd", "experiments_app", "Experiments (效果回归): plan before "
                        "launch, rehearse on a simulated business, report after launch, standalone experiments "
                        "seen."),
}  # fmt: skip

#: Commands that live in a module of their own but belong to a group defined elsewhere: group → name → where.
#: They join their group when it loads.
SUBCOMMANDS: dict[str, dict[str, Lazy]] = {
    "members": {
        "diagnose": Lazy("userloop.cli.member_diagnosis_cmd", "diagnose", "Diagnose a member programme: levels and "
                         "flows, growth sources, points liability, benefits, members vs non-members."),
    },
    "experiments": {
        "did": Lazy("userloop.cli.causal_cmd", "did", "The effect of a treatment event by difference-in-differences "
                    "with matched controls, beside the naive comparisons."),
        "uplift": Lazy("userloop.cli.causal_cmd", "uplift", "Who is persuadable: T- or X-learner on a randomized "
                       "treatment, Qini curve, top-uplift people."),
    },
}  # fmt: skip


class _Root(LazyGroup):
    lazy = COMMANDS

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        fresh = cmd_name not in self.commands
        command = super().get_command(ctx, cmd_name)
        if fresh and command is not None:
            for name, entry in SUBCOMMANDS.get(cmd_name, {}).items():
                command.add_command(load(name, entry), name)
        return command


app = typer.Typer(
    name="userloop",
    cls=_Root,
    help="userloop — self-hosted user operations: collect → understand → segment → act → measure → iterate.\n\n"
    "用户运营平台：采集 → 洞察 → 分群 → 触达 → 度量 → 迭代。",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"userloop {__version__}")
        raise typer.Exit


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """userloop command line."""


def main() -> None:
    import sys

    from userloop.core.permissions import restrict_permissions

    restrict_permissions()  # exports and rejects files the CLI writes are its user's alone, server or not
    try:
        app()
    except UserloopError as exc:  # a command outside out.errors(): still one clear line, or the body with --json
        report(exc, json_out="--json" in sys.argv[1:])
        sys.exit(2)


if __name__ == "__main__":
    os.environ.setdefault("USERLOOP_CLI", "1")
    main()
