"""Running an operation, for every face: the API's route and the CLI in process both call :func:`run_operation`,
which runs the function and, for a change, appends it to the audit log (:mod:`userloop.store.audit`).

A *change* is an operation whose method is not GET and whose right is neither ``read`` nor ``write``:

* ``read`` operations that are POSTs (``query.run``, ``segments.estimate``, previews, validations, plans,
  reports) compute an answer and change nothing;
* ``write`` operations are data entry — the collector's events and the members' points, check-ins and joins —
  and each already has its own append-only ledger (the event store, the points ledger, the check-ins table), so
  a second copy in the audit log would only double their volume.

What a change records: the actor (``account`` / ``token`` / ``owner``, the CLI on the workspace's own files),
the operation id as ``action``, the path parameters as ``target``, the request, the thing before (the reply of
the GET operation on the same path with the same parameters and project, when there is one and the thing exists)
and after (the operation's reply), secrets redacted (:func:`userloop.store.audit.redact`). Only a change that
succeeded is recorded, in the same request, after it succeeded.

Example::

    reply = run_operation(find("tags.update"), ctx, request, address="10.0.0.7")
"""

from __future__ import annotations

import getpass
from functools import cache
from typing import TYPE_CHECKING, Any

import pydantic

from userloop.core.errors import UserloopError
from userloop.ops.base import OpContext, Operation, ProjectScoped, operations

if TYPE_CHECKING:
    from userloop.store.audit import Actor


def run_operation(op: Operation, ctx: OpContext, req: pydantic.BaseModel, *, address: str | None = None) -> Any:
    """``op``'s reply to ``req`` in ``ctx``; a change (:func:`is_change`) is recorded in the audit log once it
    succeeded, with the client's ``address`` when it came over HTTP."""
    if not is_change(op):
        return op.fn(ctx, req)
    before = _before(op, ctx, req)
    reply = op.fn(ctx, req)
    _record(op, ctx, req, before, reply, address)
    return reply


def is_change(op: Operation) -> bool:
    """Whether ``op`` changes the workspace and is audited (see the module's docstring for what is not)."""
    return op.method != "GET" and op.right not in ("read", "write")


@cache
def _readers() -> dict[str, Operation]:
    """The GET operation of each path that has path parameters (a collection's listing is no "before")."""
    return {op.path: op for op in operations().values() if op.method == "GET" and op.path_params}


def _before(op: Operation, ctx: OpContext, req: pydantic.BaseModel) -> Any:
    """The reply of the GET operation on ``op``'s path for the same parameters and project, as JSON; None when
    there is no such operation or the thing cannot be read (it does not exist yet)."""
    reader = _readers().get(op.path)
    if reader is None:
        return None
    fields = {name: getattr(req, name) for name in op.path_params}
    if isinstance(req, ProjectScoped):
        fields["project"] = req.project
    try:
        request = reader.request.model_validate(fields)
        return reader.dump(reader.fn(ctx, request))
    except (UserloopError, pydantic.ValidationError):
        return None


def _record(
    op: Operation, ctx: OpContext, req: pydantic.BaseModel, before: Any, reply: Any, address: str | None
) -> None:
    from userloop.store import audit

    request = req.model_dump(mode="json")
    audit.record(
        ctx.ws.meta, actor(ctx), op.id, project_id=ctx.project.id if ctx.project is not None else None,
        target={name: request.get(name) for name in op.path_params}, request=audit.redact(request),
        before=audit.redact(before), after=audit.redact(op.dump(reply)), address=address,
    )  # fmt: skip


def actor(ctx: OpContext) -> Actor:
    """Who runs in ``ctx``: a signed-in account, an API token, or the owner of the workspace's files."""
    from userloop.store.audit import Actor

    access = ctx.access
    if access.account_id is not None:
        return Actor("account", access.account_id, _account_name(ctx, access.account_id))
    if access.key_id is not None:
        key = ctx.ws.meta.key(access.key_id)
        name = (key.name or key.prefix) if key is not None else ""
        return Actor("token", access.key_id, name or f"key {access.key_id}")
    return Actor("owner", None, _os_user())


def _account_name(ctx: OpContext, account_id: int) -> str:
    """The account's login (its id when the account is gone)."""
    from userloop.store import accounts

    account = accounts.by_id(ctx.ws.meta, account_id)
    return account.login if account is not None else f"account {account_id}"


def _os_user() -> str:
    """The operating-system user running the CLI on the workspace's files (``owner`` when it has no name)."""
    try:
        return f"owner:{getpass.getuser()}"
    except (OSError, KeyError):
        return "owner"
