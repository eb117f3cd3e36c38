"""Member programmes (会员体系) as operations: check, save, read, change (a new version), and the versions.

A programme's definition is JSON (:mod:`userloop.membership.programme`); it is checked as a whole and every error
comes back by path (``{path, message}``, e.g. ``levels.2.threshold``). ``programmes.validate`` never fails for an
invalid programme: it answers ``valid: false`` with the errors, and also checks the benefits it names against the
project's (the journeys' coupons). Saving and changing need ``admin``; reading needs ``read``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from userloop.core.errors import ValidationError
from userloop.ops.base import OpContext, ProjectScoped, Strict, operation

ProgrammeName = Annotated[str, Field(min_length=1, max_length=100, description="The programme's id or name.")]


class ProgrammeSummary(Strict):
    id: int
    name: str
    title_zh: str
    title_en: str
    status: str
    version: int
    levels: int
    rules: int
    created_at: datetime
    updated_at: datetime


class ShownProgramme(ProgrammeSummary):
    definition: dict[str, Any] = Field(description="The definition, as saved (every default filled in).")


class Problem(Strict):
    """One error of a definition: where (a dotted path) and what is wrong."""

    path: str
    message: str


class Checked(Strict):
    valid: bool
    errors: list[Problem]


class VersionShown(Strict):
    version: int
    created_at: datetime
    definition: dict[str, Any]


class Definition(ProjectScoped):
    definition: dict[str, Any] = Field(description="The programme definition (see docs/membership.md).")


class ProgrammeRef(ProjectScoped):
    programme: ProgrammeName


class Edit(ProjectScoped):
    programme: ProgrammeName
    definition: dict[str, Any] = Field(description="The new definition (saved as a new version).")


def catalog(ctx: OpContext) -> Any:
    from userloop.membership.members import Programmes

    return Programmes(ctx.ws.meta, ctx.info)


def _summary(saved: Any) -> dict[str, Any]:
    d = saved.definition
    return {"id": saved.id, "name": saved.name, "title_zh": d.title.zh, "title_en": d.title.en,
            "status": saved.status, "version": saved.version, "levels": len(d.levels), "rules": len(d.growth.rules),
            "created_at": saved.created_at, "updated_at": saved.updated_at}  # fmt: skip


def _shown(saved: Any) -> ShownProgramme:
    from userloop.membership.members import definition_json

    return ShownProgramme.model_validate({**_summary(saved), "definition": definition_json(saved.definition)})


def problems(ctx: OpContext, doc: Any) -> list[dict[str, str]]:
    """Every error of ``doc`` by path: its shape and coherence first, then (when those hold) the benefits it names
    that the project lacks."""
    from userloop.engage import assets
    from userloop.membership.programme import Programme, benefit_names, validate

    errors = validate(doc)
    if errors:
        return errors
    known = {b.name for b in assets.list_benefits(ctx.ws.meta, ctx.info)}
    return [
        {"path": path, "message": f"no benefit named {name!r} in this project (`userloop benefits list`)"}
        for path, name in benefit_names(Programme.model_validate(doc))
        if name not in known
    ]


def _refuse(errors: list[dict[str, str]]) -> None:
    if errors:
        listed = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        raise ValidationError(f"the programme has {len(errors)} error(s): {listed}", code="programme_invalid",
                              field=errors[0]["path"])  # fmt: skip


@operation("programmes.list", "GET", "/api/v1/programmes", right="read",
           summary="Member programmes with their version and size")  # fmt: skip
def list_programmes(ctx: OpContext, req: ProjectScoped) -> list[ProgrammeSummary]:
    """Every programme of the project, oldest first."""
    return [ProgrammeSummary.model_validate(_summary(s)) for s in catalog(ctx).all()]


@operation("programmes.show", "GET", "/api/v1/programmes/{programme}", right="read",
           summary="A programme's current definition")  # fmt: skip
def show_programme(ctx: OpContext, req: ProgrammeRef) -> ShownProgramme:
    """A programme by id or name (``unknown_programme`` when there is none)."""
    return _shown(catalog(ctx).get(req.programme))


@operation("programmes.validate", "POST", "/api/v1/programmes/validate", right="read",
           summary="Check a programme definition: every error by path")  # fmt: skip
def validate_programme(ctx: OpContext, req: Definition) -> Checked:
    """Check a definition without saving it; an invalid programme is an answer, not an error."""
    errors = problems(ctx, req.definition)
    return Checked(valid=not errors, errors=[Problem.model_validate(e) for e in errors])


@operation("programmes.create", "POST", "/api/v1/programmes", right="admin", status=201,
           summary="Save a new programme")  # fmt: skip
def create_programme(ctx: OpContext, req: Definition) -> ShownProgramme:
    """Save a programme (version 1); ``programme_invalid`` lists every error by path, ``programme_exists`` when
    the name is taken."""
    _refuse(problems(ctx, req.definition))
    return _shown(catalog(ctx).create(req.definition))


@operation("programmes.update", "PUT", "/api/v1/programmes/{programme}", right="admin",
           summary="Change a programme (a new version)")  # fmt: skip
def update_programme(ctx: OpContext, req: Edit) -> ShownProgramme:
    """Save a new version; members keep their levels, and the next evaluation applies the new rules."""
    _refuse(problems(ctx, req.definition))
    return _shown(catalog(ctx).update(req.programme, req.definition))


@operation("programmes.versions", "GET", "/api/v1/programmes/{programme}/versions", right="read",
           summary="Every version of a programme")  # fmt: skip
def programme_versions(ctx: OpContext, req: ProgrammeRef) -> list[VersionShown]:
    """The versions of a programme, oldest first, each with its definition."""
    from userloop.membership.members import definition_json

    return [VersionShown(version=v, created_at=at, definition=definition_json(d))
            for v, at, d in catalog(ctx).versions(req.programme)]  # fmt: skip
