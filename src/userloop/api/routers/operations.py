"""The routes of the operation layer: one per registered operation, made from its record.

Each route takes the operation's path parameters from the path and its other fields from the query string or a
JSON body (:attr:`Operation.inputs`), needs the operation's right (:func:`userloop.api.deps.require`), checks a
project-scoped token against the project the request names (403 before 404), and runs the function in the
thread pool with a context over the running service. The OpenAPI operation id is the operation's id.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError, create_model

from userloop.api.deps import Caller, RuntimeDep, require
from userloop.api.limits import client_address
from userloop.ops import OpContext, Operation, operations
from userloop.ops.runner import run_operation
from userloop.service.runtime import Runtime
from userloop.service.scheduler import Scheduler


class RuntimeService:
    """The running service as an operation sees it (:class:`userloop.ops.Service`)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @property
    def scheduler(self) -> Scheduler:
        return self.rt.scheduler

    def project_created(self, name: str) -> None:
        self.rt.door.rules.pop(name, None)

    def settings_changed(self) -> None:
        self.rt.keys.forget()

    def keys_changed(self) -> None:
        from userloop.api.deps import forget_tokens

        forget_tokens(self.rt)


def context(rt: Runtime, caller: Caller, req: BaseModel, op: Operation) -> OpContext:
    """The context of ``op`` called by ``caller``: its access (an account's rights in the project the request
    names, or over every project for an operation over the workspace), the service's caches, the project."""
    ctx = OpContext(rt.ws, cache=rt.query_cache, sql_max_reply_bytes=rt.config.sql_max_reply_bytes,
                    service=RuntimeService(rt))  # fmt: skip
    if op.scoped:
        name = str(getattr(req, "project"))  # noqa: B009 - ProjectScoped's field
        caller.check_project(name)
        ctx.project = ctx.resolve(name)
    ctx.access = caller.access_for(ctx.project, op.right)
    return ctx


def _parameter(name: str, field: Any, where: Any) -> inspect.Parameter:
    """A path or query parameter with the field's type, constraints, default and description."""
    annotation = Annotated[(field.annotation, *field.metadata, where(description=field.description))]
    default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def _body_model(op: Operation) -> type[BaseModel]:
    """The JSON body: the request without its path fields (the request itself when it has none)."""
    if not op.path_params:
        return op.request
    fields: Any = {n: (f.annotation, f) for n, f in op.request.model_fields.items() if n not in op.path_params}
    return create_model(f"{op.request.__name__}Body", __config__=op.request.model_config,
                        __doc__=op.request.__doc__, **fields)  # fmt: skip


def endpoint(op: Operation) -> Any:
    """The route function of ``op``, with a signature FastAPI reads for its parameters and dependencies."""
    rights = Depends(require(op.right, workspace=op.workspace_token))
    params = [
        inspect.Parameter("rt", inspect.Parameter.KEYWORD_ONLY, annotation=RuntimeDep),
        inspect.Parameter("caller", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[Caller, rights]),
    ]
    fields = op.request.model_fields
    params += [_parameter(n, fields[n], Path) for n in op.path_params]
    if op.inputs == "query":
        params += [_parameter(n, f, Query) for n, f in fields.items() if n not in op.path_params]
    else:
        params.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Annotated[_body_model(op), Body()]))  # fmt: skip
        if op.scoped:  # a body's project may also be named as every GET names it: ?project= (the body wins)
            params.append(inspect.Parameter("project", inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=Annotated[str | None, Query(max_length=40)]))  # fmt: skip

    params.append(inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request))

    def run(rt: Runtime, caller: Caller, request: Request, body: BaseModel | None = None, **values: Any) -> Any:
        if body is not None:
            values = {k: v for k, v in values.items() if v is not None} | body.model_dump(exclude_unset=True)
        try:
            req = op.request.model_validate(values)
        except ValidationError as exc:  # a rule across fields (a model validator), which the body's schema lacks
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from exc
        return run_operation(op, context(rt, caller, req, op), req, address=client_address(request.scope))

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__name__ = op.id.replace(".", "_")
    run.__doc__ = op.fn.__doc__
    return run


def router_for(ops: dict[str, Operation]) -> APIRouter:
    """A router with a route per operation."""
    router = APIRouter()
    for op in ops.values():
        router.add_api_route(
            op.path,
            endpoint(op),
            methods=[op.method],
            operation_id=op.id,
            summary=op.summary,
            response_model=op.response,
            response_model_exclude_none=op.exclude_none,
            status_code=op.status,
            tags=list(op.tags),
        )
    return router


router = router_for(operations())
