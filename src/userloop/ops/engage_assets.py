"""Materials (素材, the ``templates`` routes), benefits (权益) and channels (渠道) as operations.

Reading needs ``read``; saving, deleting and sending a test message need ``admin``. A material is checked and
compiled when saved (``template_invalid`` / ``template_unsafe`` name the template); a preview renders it in the
sandbox for one person, with that person's facts loaded the way a journey loads them
(:func:`userloop.engage.facts.load_facts`), or for a scope given inline. Channel settings hold secrets (API keys,
passwords): they are stored encrypted and every reply shows them masked.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from userloop.core.errors import ValidationError
from userloop.ops.base import MAX_ROW_ID, OpContext, ProjectScoped, Strict, operation

AssetName = Annotated[str, Field(min_length=1, max_length=100, description="The name, unique in the project.")]
Locale = Literal["zh-CN", "en"]


# materials ----------------------------------------------------------------------------------------------------
class Template(Strict):
    """A saved material: its name, the channel kind it is for, and its definition (subject, body, params…)."""

    id: int
    name: str
    channel: str
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SavedTemplate(Template):
    created: bool = Field(description="Whether the material was made now (else it was replaced).")


class DeletedTemplate(Strict):
    deleted: str


def _template(info: Any) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "channel": info.material.channel,
        "definition": info.material.model_dump(mode="json", exclude_none=True),
        "created_at": info.created_at,
        "updated_at": info.updated_at,
    }


@operation("templates.list", "GET", "/api/v1/templates", right="read",
           summary="Materials (message templates), by name")  # fmt: skip
def list_templates(ctx: OpContext, req: ProjectScoped) -> list[Template]:
    """Every material of the project, by name."""
    from userloop.engage import assets

    return [Template.model_validate(_template(m)) for m in assets.list_materials(ctx.ws.meta, ctx.info)]


class TemplateRef(ProjectScoped):
    name: AssetName


@operation("templates.show", "GET", "/api/v1/templates/{name}", right="read",
           summary="A material's definition")  # fmt: skip
def show_template(ctx: OpContext, req: TemplateRef) -> Template:
    """A material by name (``not_found`` when there is none)."""
    from userloop.engage import assets

    return Template.model_validate(_template(assets.get_material(ctx.ws.meta, ctx.info, req.name)))


class SaveTemplate(ProjectScoped):
    name: AssetName
    definition: dict[str, Any] = Field(description='A material: {"channel": "email", "subject": {"zh-CN": …}, '
                                       '"body": {"zh-CN": …, "en": …}, "html": false, "params": {}}')  # fmt: skip


@operation("templates.save", "PUT", "/api/v1/templates/{name}", right="admin",
           summary="Save a material (made or replaced); every template is checked")  # fmt: skip
def save_template(ctx: OpContext, req: SaveTemplate) -> SavedTemplate:
    """Create or replace a material; each template is parsed and compiled in the sandbox first, so a material
    that names something it may not read (``template_invalid``) or reaches for internals (``template_unsafe``)
    is refused with the template at fault."""
    from userloop.engage import assets

    info, created = assets.save_material(ctx.ws.meta, ctx.info, req.name, req.definition)
    return SavedTemplate.model_validate({**_template(info), "created": created})


@operation("templates.delete", "DELETE", "/api/v1/templates/{name}", right="admin",
           summary="Delete a material")  # fmt: skip
def delete_template(ctx: OpContext, req: TemplateRef) -> DeletedTemplate:
    """Delete a material; journeys that name it report it missing when validated or started."""
    from userloop.engage import assets

    assets.delete_material(ctx.ws.meta, ctx.info, req.name)
    return DeletedTemplate(deleted=req.name)


class Scope(Strict):
    """What a template reads, given inline: ``person`` (profile properties), ``tags``, ``models``, ``benefit``
    (amount, threshold, code, valid_until), ``links``, ``journey`` (name); ``timezone`` for dates."""

    person: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, Any] = Field(default_factory=dict)
    benefit: dict[str, Any] = Field(default_factory=dict)
    links: dict[str, Annotated[str, Field(max_length=2000)]] = Field(default_factory=dict)
    journey: dict[str, Any] = Field(default_factory=dict)
    timezone: str | None = Field(default=None, max_length=64, description="IANA zone (default: the project's).")


class Preview(ProjectScoped):
    name: AssetName
    person: int | None = Field(default=None, ge=-(2**63), le=MAX_ROW_ID,
                               description="A person key: their profile, tags and models are loaded.")  # fmt: skip
    scope: Scope | None = Field(default=None, description="Values given inline (over the person's, when both).")
    default_locale: Locale = "zh-CN"


class Rendered(Strict):
    """A material rendered for one person: the locale chosen, subject, body text, provider params, the names
    that were undefined (printed empty), and notes for the operator."""

    name: str
    channel: str
    locale: str
    subject: str | None
    text: str
    html: bool
    params: dict[str, str]
    missing: list[str]
    warnings: list[str]


_FIELD = re.compile(r"\b(person|tags|models)\s*(?:\.\s*([A-Za-z_$][\w$]*)|\[\s*['\"]([^'\"]{1,128})['\"]\s*\])")


def wanted_facts(material: Any) -> tuple[set[str], set[str], set[str]]:
    """The profile properties, tags and models a material's templates name (``person.city``,
    ``tags['会员等级']``), plus its locale property: what a preview loads for a person."""
    found: dict[str, set[str]] = {"person": {material.locale_property}, "tags": set(), "models": set()}
    for _, source, _ in material.templates():
        for m in _FIELD.finditer(source):
            found[m.group(1)].add(m.group(2) or m.group(3))
    return found["person"], found["tags"], found["models"]


def scope_for(ctx: OpContext, material: Any, person: int | None, inline: Scope | None) -> tuple[Any, list[str]]:
    """The :class:`~userloop.engage.templates.RenderScope` of a preview or a test message: the person's facts
    (loaded with :func:`userloop.engage.facts.load_facts`) under the values given inline; with the warnings of
    the loading (a property the project has never seen…)."""
    from userloop.engage.facts import MODEL_OUTPUTS, Needs, load_facts
    from userloop.engage.templates import RenderScope

    warnings: list[str] = []
    values: dict[str, Any] = {"person": {}, "tags": {}, "models": {}, "timezone": ctx.info.timezone}
    if person is not None:
        props, tags, models = wanted_facts(material)
        needs = Needs(
            frozenset(props), frozenset(tags), frozenset(), frozenset(m for m in models if m in MODEL_OUTPUTS)
        )
        loaded = load_facts(ctx.store, ctx.ws.meta, ctx.info, [person], needs)
        facts = loaded[person]
        warnings += loaded.warnings
        values["person"] = {"id": person, **{k: v for k, v in facts.props.items() if v is not None}}
        values["tags"] = {k: v for k, v in facts.tags.items() if v is not None}
        values["models"] = {k: v for k, v in facts.models.items() if v is not None}
        values["timezone"] = facts.zone
    if inline is not None:
        given = inline.model_dump(exclude_none=True)
        for key in ("person", "tags", "models"):
            values[key] = {**values[key], **given.pop(key, {})}
        values.update(given)
    try:
        return RenderScope.model_validate(values), warnings
    except ValidationError:
        raise
    except Exception as exc:  # pydantic's own error, as one of ours naming the field
        raise ValidationError(f"scope: {exc}", field="scope") from None


@operation("templates.preview", "POST", "/api/v1/templates/{name}/preview", right="read",
           summary="Render a material for one person (or an inline scope)")  # fmt: skip
def preview_template(ctx: OpContext, req: Preview) -> Rendered:
    """The material as one person would get it: their profile properties, tags and model outputs that the
    templates name are loaded as a journey loads them, values given inline win, and every undefined name is
    listed (it prints empty). Rendering runs in the sandbox with its limits (``template_unsafe``)."""
    from userloop.engage import assets
    from userloop.engage.templates import preview

    material = assets.get_material(ctx.ws.meta, ctx.info, req.name).material
    scope, warnings = scope_for(ctx, material, req.person, req.scope)
    result = preview(material, scope, req.default_locale)
    return Rendered(name=req.name, channel=material.channel, locale=result.locale, subject=result.subject,
                    text=result.text, html=material.html, params=result.params, missing=result.missing,
                    warnings=[*warnings, *result.warnings])  # fmt: skip


# benefits -----------------------------------------------------------------------------------------------------
class Benefit(Strict):
    """A coupon: ``amount`` off an order of at least ``threshold``, valid ``valid_days`` after it is granted;
    ``stock`` None is unlimited, ``remaining`` is what is left of it."""

    id: int
    name: str
    kind: Literal["coupon"]
    amount: float
    threshold: float
    valid_days: int
    stock: int | None
    granted: int
    remaining: int | None
    created_at: datetime


class CreateBenefit(ProjectScoped):
    name: AssetName
    kind: Literal["coupon"] = "coupon"
    amount: float = Field(gt=0, le=1e12, description="The amount off, in the project's money unit.")
    threshold: float = Field(default=0.0, ge=0, le=1e12, description="The least order it applies to (0: any).")
    valid_days: int = Field(default=30, ge=1, le=3650, description="Days a granted coupon stays valid.")
    stock: int | None = Field(default=None, ge=0, le=2**31 - 1, description="How many may be granted (None: any).")


class BenefitRef(ProjectScoped):
    benefit: AssetName = Field(description="The benefit's id or name.")


class DeletedBenefit(Strict):
    deleted: int


def _benefit(info: Any) -> Benefit:
    return Benefit.model_validate(info.__dict__)


@operation("benefits.list", "GET", "/api/v1/benefits", right="read",
           summary="Benefits (coupons) with granted and remaining stock")  # fmt: skip
def list_benefits(ctx: OpContext, req: ProjectScoped) -> list[Benefit]:
    """Every benefit of the project, with how many were granted and how many remain."""
    from userloop.engage import assets

    return [_benefit(b) for b in assets.list_benefits(ctx.ws.meta, ctx.info)]


@operation("benefits.create", "POST", "/api/v1/benefits", right="admin", status=201,
           summary="Make a benefit (a coupon with a stock)")  # fmt: skip
def create_benefit(ctx: OpContext, req: CreateBenefit) -> Benefit:
    """A new coupon; the name is unique in the project."""
    from userloop.engage import assets

    made = assets.create_benefit(ctx.ws.meta, ctx.info, req.name, amount=req.amount, threshold=req.threshold,
                                 valid_days=req.valid_days, stock=req.stock, kind=req.kind)  # fmt: skip
    return _benefit(made)


@operation("benefits.show", "GET", "/api/v1/benefits/{benefit}", right="read",
           summary="A benefit with granted and remaining stock")  # fmt: skip
def show_benefit(ctx: OpContext, req: BenefitRef) -> Benefit:
    """A benefit by id or name (``unknown_benefit`` when there is none)."""
    from userloop.engage import assets

    return _benefit(assets.get_benefit(ctx.ws.meta, ctx.info, req.benefit))


@operation("benefits.delete", "DELETE", "/api/v1/benefits/{benefit}", right="admin",
           summary="Delete a benefit never granted")  # fmt: skip
def delete_benefit(ctx: OpContext, req: BenefitRef) -> DeletedBenefit:
    """Delete a benefit that was never granted (one granted is kept for the coupons people hold)."""
    from userloop.engage import assets

    return DeletedBenefit(deleted=assets.delete_benefit(ctx.ws.meta, ctx.info, req.benefit))
