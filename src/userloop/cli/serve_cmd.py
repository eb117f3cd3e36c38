"""``userloop serve``, ``userloop keys …`` and ``userloop jobs list``.

Wire them into the main app with ``register(app)``. Key and job commands run their operations (``keys.*``,
``jobs.list``) through :mod:`userloop.cli.dispatch`: the running server's API when one owns the workspace, else
in process over the workspace's files.
"""

from __future__ import annotations

from typing import Annotated

import typer

from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Workspace_
from userloop.cli.output import Out

keys_app = typer.Typer(
    help="Project write keys and API tokens (rights: read, analyse, operate, write, admin, pii).",
    no_args_is_help=True,
)
jobs_app = typer.Typer(help="Scheduled jobs of the service and their runs.", no_args_is_help=True)
KEY_COLUMNS = ["id", "kind", "project", "rights", "name", "prefix", "created_at", "revoked_at"]


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``keys`` and ``jobs`` to the ``userloop`` command line."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
    app.add_typer(jobs_app, name="jobs")


def serve(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body accepted, as sent (413 above).")] = 5.0,
    max_decompressed_mb: Annotated[
        float, typer.Option(help="Largest collector body once decompressed (gzip, base64; 413 above).")
    ] = 50.0,
    max_records: Annotated[int, typer.Option(help="Most records in one collector request (413 above).")] = 10_000,
    max_record_kb: Annotated[
        float, typer.Option(help="Largest single record, as JSON: a larger one is refused alone, its neighbours kept.")
    ] = 1024.0,
    rate: Annotated[float, typer.Option(help="Records per second per write key (429 above); 0: no limit.")] = 200_000,
    burst: Annotated[
        float | None, typer.Option(help="Records a write key may send at once before --rate applies (default 2 s).")
    ] = None,
    clv_model: Annotated[
        str | None,
        typer.Option(
            help="The nightly models' CLV purchase model: auto (chosen by validation), bgnbd, paretonbd, mbgnbd."
        ),
    ] = None,
    horizon_days: Annotated[
        int | None, typer.Option(help="Days ahead the nightly CLV model predicts purchases and value for (default 90).")
    ] = None,
    collector_only: Annotated[
        str | None,
        typer.Option(
            "--collector-only",
            metavar="NAME",
            help="Run only a collector, named NAME, beside the running service: it acknowledges events into its own "
            "spool and the service loads them (more processes taking SDK traffic; see docs/deploy.md).",
        ),
    ] = None,
) -> None:
    """Serve the workspace: collector (Sensors, Segment, PostHog, Mixpanel, native), REST API, scheduler."""
    from userloop.api.server import serve as run
    from userloop.cli.ports import claim
    from userloop.collect.door import Limits
    from userloop.service.runtime import ServiceConfig

    limits = Limits(
        max_body_bytes=int(max_body_mb * (1 << 20)),
        max_decompressed_bytes=int(max_decompressed_mb * (1 << 20)),
        max_records=max_records,
        max_record_bytes=int(max_record_kb * (1 << 10)),
        rate_per_second=rate,
        burst=burst or max(rate * 2, 1.0),
    )
    with Out(False).errors():
        config = ServiceConfig(host=host, port=port, limits=limits, clv_model=clv_model, horizon_days=horizon_days)
        if collector_only is not None:
            from userloop.service.collectors import check_name

            check_name(collector_only)
        sock = claim(host, port)  # a taken port is refused before the workspace is opened, with a free one named
        run(workspace, config, sock=sock, collector=collector_only)


@keys_app.command("list")
def keys_list(workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, json_out: Json_ = False) -> None:
    """List keys (their prefixes; secrets are never stored)."""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        keys = as_json("keys.list", call(workspace, "keys.list"))
        out.table([{**{c: k[c] for c in KEY_COLUMNS}, "rights": " ".join(k["rights"])} for k in keys], KEY_COLUMNS)


@keys_app.command("create")
def keys_create(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    kind: Annotated[str, typer.Option(help="write (a project's collector key) or admin (API token).")] = "write",
    project: Annotated[
        str | None,
        typer.Option(
            "-p", "--project", help="The key's project (a write key: default 'default'; an API token: every project)."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    rights: Annotated[
        str | None,
        typer.Option(
            help="An API token's rights, comma-separated: write, read, analyse, operate, admin, pii "
            "(default: all but pii)."
        ),
    ] = None,
    json_out: Json_ = False,
) -> None:
    """Create a key and print its secret once. Through a running server a token never gets more rights than the
    session's own."""
    from userloop.cli.dispatch import call
    from userloop.core.errors import ValidationError

    out = Out(json_out)
    with out.errors():
        if rights is not None and kind == "write":
            raise ValidationError("a write key holds 'write' only; --rights is for API tokens (--kind admin)")
        wanted = None if rights is None else [r.strip() for r in rights.split(",") if r.strip()]
        key = call(workspace, "keys.create", kind=kind, project=project, name=name, rights=wanted)
        out.emit(
            {"id": key.id, "kind": key.kind, "project": key.project, "rights": key.rights, "secret": key.secret},
            text=[f"{key.kind} key {key.id} created: {key.secret}", "Keep it now: only its hash is stored."],
        )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="Key id (see `userloop keys list`).")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    json_out: Json_ = False,
) -> None:
    """Revoke a key: requests using it are refused (within seconds on a running server)."""
    from userloop.cli.dispatch import call

    out = Out(json_out)
    with out.errors():
        call(workspace, "keys.revoke", key_id=key_id)
        out.emit({"id": key_id, "revoked": True}, text=[f"key {key_id} revoked"])


@keys_app.command("grant")
def keys_grant(
    key_id: Annotated[int, typer.Argument(help="An admin token's id (see `userloop keys list`).")],
    right: Annotated[str, typer.Argument(help="The right: pii (see phone numbers and e-mail addresses unmasked).")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the right away instead.")] = False,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    json_out: Json_ = False,
) -> None:
    """Give an admin token a right (or take it away). Through a running server the session token (or
    ``USERLOOP_TOKEN``) does it, and a token never gives or takes a right it does not hold itself."""
    from userloop.cli.dispatch import call
    from userloop.store.meta import KNOWN_GRANTS

    out = Out(json_out)
    with out.errors():
        key = call(workspace, "keys.grant", key_id=key_id, right=right, revoke=revoke)
        held = [r for r in key.rights if r in KNOWN_GRANTS]
        out.emit({"id": key_id, "grants": held}, text=[f"key {key_id} holds: {', '.join(held) or 'no rights'}"])


@jobs_app.command("list")
def jobs_list(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    limit: Annotated[int, typer.Option(help="Most recent runs to show.")] = 50,
    json_out: Json_ = False,
) -> None:
    """Show recent runs of the scheduled jobs."""
    from userloop.cli.dispatch import as_json, call

    cols = ["id", "job", "project", "slot", "status", "attempts", "started_at", "finished_at", "error"]
    out = Out(json_out)
    with out.errors():
        out.table(as_json("jobs.list", call(workspace, "jobs.list", limit=limit))["runs"], cols)
