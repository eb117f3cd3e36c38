"""The one place where a command chooses between the server and the files.

A command builds an operation's request and calls it: through the API of the server that owns the workspace
when one runs (:func:`userloop.cli.session.server_client`), else the operation's function in this process over
the workspace opened here, as its owner (every right, personal data in clear). Both ways return the same typed
reply, and :func:`as_json` prints it as the API sends it, so ``--json`` is the same either way.

Example::

    reply = call(workspace, "insights.get", project="default", insight_id=3)
    out.emit(as_json("insights.get", reply))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from userloop.core.errors import ValidationError
from userloop.ops import OpContext, ProjectScoped, find
from userloop.ops.runner import run_operation

if TYPE_CHECKING:
    from userloop.api.client import ServerClient
    from userloop.store import Workspace

R = TypeVar("R", bound=pydantic.BaseModel)
T = TypeVar("T")


class Dispatcher:
    """Runs operations either through ``client`` or in process over ``ws`` (exactly one of them is set)."""

    def __init__(self, client: ServerClient | None, ws: Workspace | None) -> None:
        self.client = client
        self.ws = ws

    def __call__(self, op_id: str, **fields: Any) -> Any:
        """Operation ``op_id`` with a request made of ``fields`` (a field that breaks a rule is a
        ValidationError naming it, before anything runs)."""
        op = find(op_id)
        request = build(op.request, fields)
        if self.client is not None:
            return self.client.run(op_id, request)
        return run_operation(op, self._context(request), request)

    def transfer(self, local: Callable[[OpContext, R], T], request: R, remote: Callable[[ServerClient, R], T]) -> T:
        """An operation whose content is a file rather than JSON (an upload, an import, an export), on a route of
        its own: ``remote`` calls that route through the client when a server runs, else ``local`` (the
        operation's function) runs in process on the same request."""
        if self.client is not None:
            return remote(self.client, request)
        return local(self._context(request), request)

    def _context(self, request: pydantic.BaseModel) -> OpContext:
        """The context of a call in process: the workspace's owner, and the project a scoped request names."""
        assert self.ws is not None
        ctx = OpContext(self.ws)
        if isinstance(request, ProjectScoped):
            ctx.project = ctx.resolve(request.project)
        return ctx


@contextmanager
def session(workspace: Path, *, writes: bool = False) -> Iterator[Dispatcher]:
    """A dispatcher for several calls: the server's API, or the workspace opened once (the event store
    read-only unless ``writes``; the metadata DB is writable either way)."""
    from userloop.cli.session import open_local, server_client

    client = server_client(workspace)
    if client is not None:
        yield Dispatcher(client, None)
        return
    with open_local(workspace, read_only=not writes) as ws:
        yield Dispatcher(None, ws)


def call(workspace: Path, op_id: str, **fields: Any) -> Any:
    """One operation on ``workspace`` (see :class:`Dispatcher`); the event store is opened for writing only
    when the operation writes it (:attr:`userloop.ops.Operation.store_writes`)."""
    with session(workspace, writes=find(op_id).store_writes) as run:
        return run(op_id, **fields)


def as_json(op_id: str, reply: Any) -> Any:
    """``reply`` as the JSON data the API sends for operation ``op_id``."""
    return find(op_id).dump(reply)


def build(model: type[pydantic.BaseModel], fields: dict[str, Any]) -> Any:
    """The request ``model`` made of ``fields``; a ValidationError says which field breaks which rule."""
    try:
        return model.model_validate(fields)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValidationError(f"invalid request: {problems}") from exc
