"""``userloop serve``, ``userloop keys …`` and ``userloop jobs list``.

Wire them into the main app with ``register(app)``. Key and job commands go through the running server when
one owns the workspace (:class:`userloop.api.client.ServerClient`), else they open the workspace directly.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Workspace_
from userloop.cli.output import Out

keys_app = typer.Typer(
    help="Project write keys and API tokens (rights: write, read, admin, pii).", no_args_is_help=True
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
) -> None:
    """Serve the workspace: collector (Sensors, Segment, PostHog, Mixpanel, native), REST API, scheduler."""
    from userloop.api.server import serve as run
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
        run(workspace, config)


def _key_row(key: Any, names: dict[int, str], rights: frozenset[str]) -> dict[str, Any]:
    return {
        "id": key.id,
        "kind": key.kind,
        "project": names.get(key.project_id) if key.project_id else None,
        "rights": " ".join(sorted(rights)),
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


@keys_app.command("list")
def keys_list(workspace: Workspace_ = DEFAULT_WORKSPACE_PATH, json_out: Json_ = False) -> None:
    """List keys (their prefixes; secrets are never stored)."""
    from userloop.api.client import ServerClient
    from userloop.cli.session import open_local

    out = Out(json_out)
    with out.errors():
        client = ServerClient.for_workspace(workspace)
        if client is not None:
            rows = [{**k, "rights": " ".join(k.get("rights", []))} for k in client.list_keys()]
            rows = [{c: k.get(c) for c in KEY_COLUMNS} for k in rows]
        else:
            with open_local(workspace) as ws:
                names = {p.id: p.name for p in ws.meta.projects()}
                rows = [_key_row(k, names, ws.meta.rights(k)) for k in ws.meta.keys(None)]
        out.table(rows, KEY_COLUMNS)


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
            help="An API token's rights, comma-separated: write, read, admin, pii (default read,write,admin)."
        ),
    ] = None,
    json_out: Json_ = False,
) -> None:
    """Create a key and print its secret once. Through a running server a token never gets more rights than the
    session's own."""
    from userloop.api.client import ServerClient
    from userloop.cli.session import open_local
    from userloop.core.errors import ValidationError
    from userloop.store.meta import ADMIN_ROLES, KNOWN_GRANTS, ROLES

    out = Out(json_out)
    with out.errors():
        if kind not in ("write", "admin"):
            raise ValidationError("--kind is write or admin")
        if rights is not None and kind == "write":
            raise ValidationError("a write key holds 'write' only; --rights is for API tokens (--kind admin)")
        wanted = [r.strip() for r in rights.split(",") if r.strip()] if rights is not None else list(ADMIN_ROLES)
        target = (project or "default") if kind == "write" else project
        client = ServerClient.for_workspace(workspace)
        if client is not None:
            doc = client.create_key(
                kind, project=target, name=name or f"{kind} key", rights=wanted if kind == "admin" else None
            )
            secret, key_id = doc["secret"], doc["id"]
        else:
            with open_local(workspace) as ws:
                project_id = ws.project_info(target).id if target else None
                roles = [r for r in wanted if r in ROLES] if kind == "admin" else None
                unknown = [r for r in wanted if r not in ROLES and r not in KNOWN_GRANTS]
                if unknown:
                    raise ValidationError(f"unknown rights {unknown}; the rights are write, read, admin, pii")
                key, secret = ws.meta.add_key(kind, name or f"{kind} key", project_id, roles=roles)
                for grant in (r for r in wanted if r in KNOWN_GRANTS and kind == "admin"):
                    ws.meta.grant(key.id, grant)
                key_id = key.id
        out.emit(
            {"id": key_id, "kind": kind, "project": target, "rights": wanted if kind == "admin" else ["write"],
             "secret": secret},
            text=[f"{kind} key {key_id} created: {secret}", "Keep it now: only its hash is stored."],
        )  # fmt: skip


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="Key id (see `userloop keys list`).")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    json_out: Json_ = False,
) -> None:
    """Revoke a key: requests using it are refused (within seconds on a running server)."""
    from userloop.api.client import ServerClient
    from userloop.cli.session import open_local
    from userloop.core.errors import NotFoundError, ValidationError

    out = Out(json_out)
    with out.errors():
        client = ServerClient.for_workspace(workspace)
        if client is not None:
            client.revoke_key(key_id)
        else:
            with open_local(workspace) as ws:
                key = ws.meta.key(key_id)
                if key is None:
                    raise NotFoundError(f"no key with id {key_id}")
                if [k.id for k in ws.meta.workspace_admins()] == [key_id]:
                    raise ValidationError(
                        f"key {key_id} is the last workspace-level admin token; create another first "
                        "(`userloop keys create --kind admin`), then revoke this one"
                    )
                ws.meta.revoke_key(key_id)
        out.emit({"id": key_id, "revoked": True}, text=[f"key {key_id} revoked"])


@keys_app.command("grant")
def keys_grant(
    key_id: Annotated[int, typer.Argument(help="An admin token's id (see `userloop keys list`).")],
    right: Annotated[str, typer.Argument(help="The right: pii (see phone numbers and e-mail addresses unmasked).")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the right away instead.")] = False,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    json_out: Json_ = False,
) -> None:
    """Give an admin token a right (or take it away). Only someone who can open the workspace's files can do
    this — there is no API route for it, so a token can never raise its own rights."""
    from userloop.core.errors import NotFoundError, ValidationError
    from userloop.store import Workspace

    out = Out(json_out)
    with out.errors(), Workspace.open(workspace) as ws:  # the metadata DB only: safe while a server runs
        key = next((k for k in ws.meta.keys(None) if k.id == key_id), None)
        if key is None:
            raise NotFoundError(f"no key with id {key_id}")
        if key.kind != "admin":
            raise ValidationError(f"key {key_id} is a {key.kind} key; rights are for admin tokens")
        if revoke:
            ws.meta.revoke_grant(key_id, right)
        else:
            ws.meta.grant(key_id, right)
        held = sorted(ws.meta.grants(key_id))
        out.emit({"id": key_id, "grants": held}, text=[f"key {key_id} holds: {', '.join(held) or 'no rights'}"])


@jobs_app.command("list")
def jobs_list(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    limit: Annotated[int, typer.Option(help="Most recent runs to show.")] = 50,
    json_out: Json_ = False,
) -> None:
    """Show recent runs of the scheduled jobs."""
    from userloop.api.client import ServerClient
    from userloop.cli.session import open_local
    from userloop.service.scheduler import Scheduler, run_as_dict
    from userloop.store.service_tables import create_tables

    cols = ["id", "job", "project", "slot", "status", "attempts", "started_at", "finished_at", "error"]
    out = Out(json_out)
    with out.errors():
        client = ServerClient.for_workspace(workspace)
        if client is not None:
            runs = client.jobs(limit=limit)["runs"]
        else:
            with open_local(workspace) as ws:
                create_tables(ws.meta)
                runs = [run_as_dict(r) for r in Scheduler(ws.meta).history(limit=limit)]
        out.table(runs, cols)
