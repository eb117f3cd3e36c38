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


@operation("templates.save", "PUT", "/api/v1/templates/{name}", right="operate",
           summary="Save a material (made or replaced); every template is checked")  # fmt: skip
def save_template(ctx: OpContext, req: SaveTemplate) -> SavedTemplate:
    """Create or replace a material; each template is parsed and compiled in the sandbox first, so a material
    that names something it may not read (``template_invalid``) or reaches for internals (``template_unsafe``)
    is refused with the template at fault."""
    from userloop.engage import assets

    info, created = assets.save_material(ctx.ws.meta, ctx.info, req.name, req.definition)
    return SavedTemplate.model_validate({**_template(info), "created": created})


@operation("templates.delete", "DELETE", "/api/v1/templates/{name}", right="operate",
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


@operation("benefits.create", "POST", "/api/v1/benefits", right="operate", status=201,
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


@operation("benefits.delete", "DELETE", "/api/v1/benefits/{benefit}", right="operate",
           summary="Delete a benefit never granted")  # fmt: skip
def delete_benefit(ctx: OpContext, req: BenefitRef) -> DeletedBenefit:
    """Delete a benefit that was never granted (one granted is kept for the coupons people hold)."""
    from userloop.engage import assets

    return DeletedBenefit(deleted=assets.delete_benefit(ctx.ws.meta, ctx.info, req.benefit))


# test messages ------------------------------------------------------------------------------------------------
class SendTrial(ProjectScoped):
    name: AssetName
    channel: AssetName = Field(description="The channel's name.")
    to: str = Field(min_length=1, max_length=2000, description="The address: e-mail, phone number, token, URL.")
    person: int | None = Field(default=None, ge=-(2**63), le=MAX_ROW_ID, description="Render for this person key.")
    scope: Scope | None = None
    default_locale: Locale = "zh-CN"


class TrialSent(Strict):
    """What the provider answered for the test message."""

    key: str = Field(description="test.<uuid>: the message's idempotency key.")
    channel: str
    status: Literal["sent", "failed"]
    provider_id: str | None
    error: str | None
    retryable: bool
    warnings: list[str]


@operation("templates.test_send", "POST", "/api/v1/templates/{name}/test-send", right="operate",
           summary="Send a material once to an address through a channel (transactional)")  # fmt: skip
def send_trial(ctx: OpContext, req: SendTrial) -> TrialSent:
    """Render a material (for ``person`` and/or an inline scope) and send it once to ``to`` through the named
    channel, opened from its stored settings. The message is transactional (no caps, quiet hours or control
    group: it is for the operator) and keyed ``test.<uuid>``. A channel that cannot send now is
    ``channel_unavailable``."""
    import uuid

    from userloop.engage import assets
    from userloop.engage.channels.base import Message
    from userloop.engage.channels.registry import get_channel, open_channel
    from userloop.engage.secrets import SecretBox
    from userloop.engage.templates import render

    material = assets.get_material(ctx.ws.meta, ctx.info, req.name).material
    info = get_channel(ctx.ws.meta, ctx.info.id, req.channel)
    if info.kind != material.channel:
        raise ValidationError(f"material {req.name!r} is for {material.channel}, channel {req.channel!r} is "
                              f"{info.kind}", code="channel_invalid", field="channel")  # fmt: skip
    scope, warnings = scope_for(ctx, material, req.person, req.scope)
    result = render(material, scope, req.default_locale)
    key = f"test.{uuid.uuid4()}"
    message = Message(key=key, channel=material.channel, person=req.person or 0, to=req.to, body=result.text,
                      subject=result.subject, html=material.html, params=result.params,
                      category="transactional")  # fmt: skip
    channel = open_channel(info, SecretBox.for_workspace(ctx.ws.path), ctx.ws.meta)
    try:
        (delivery,) = channel.send([message])
    finally:
        channel.close()
    return TrialSent(key=key, channel=req.channel, status=delivery.status, provider_id=delivery.provider_id,
                    error=delivery.error, retryable=delivery.retryable,
                    warnings=[*warnings, *result.warnings])  # fmt: skip


# channels -----------------------------------------------------------------------------------------------------
ChannelKind = Literal["email", "sms", "push", "webhook", "inbox"]


class ChannelOut(Strict):
    """A configured channel; every secret setting shows as ``********``."""

    id: int
    name: str
    kind: str
    provider: str
    settings: dict[str, Any] = Field(description="The settings, secrets masked as ********.")
    rate_per_second: float | None
    enabled: bool
    created_at: datetime


class ChannelRef(ProjectScoped):
    name: AssetName


class SaveChannel(ProjectScoped):
    name: AssetName
    kind: ChannelKind
    provider: str = Field(min_length=1, max_length=32, description="smtp; aliyun, tencent, twilio; jpush, getui, "
                          "fcm; webhook; inbox.")  # fmt: skip
    settings: dict[str, Any] = Field(default_factory=dict, description="The provider's settings; a secret given "
                                     "as ******** (or left out) keeps its stored value.")  # fmt: skip
    rate_per_second: float | None = Field(default=None, gt=0, le=1_000_000)
    enabled: bool | None = Field(default=None, description="Switch it on or off; omitted: a new channel is on, a "
                                 "saved one keeps its state.")  # fmt: skip


class DeletedChannel(Strict):
    deleted: str


def _channel(info: Any) -> ChannelOut:
    return ChannelOut.model_validate(info.model_dump(exclude={"project_id"}))


@operation("channels.list", "GET", "/api/v1/channels", right="read",
           summary="Channels with their settings (secrets masked)")  # fmt: skip
def list_channels(ctx: OpContext, req: ProjectScoped) -> list[ChannelOut]:
    """Every channel of the project by name; secrets show as ``********``."""
    from userloop.engage.channels import registry

    return [_channel(c) for c in registry.list_channels(ctx.ws.meta, ctx.info.id)]


@operation("channels.show", "GET", "/api/v1/channels/{name}", right="read",
           summary="A channel (secrets masked)")  # fmt: skip
def show_channel(ctx: OpContext, req: ChannelRef) -> ChannelOut:
    """A channel by name (``unknown_channel`` when there is none); secrets show as ``********``."""
    from userloop.engage.channels import registry

    return _channel(registry.get_channel(ctx.ws.meta, ctx.info.id, req.name))


@operation("channels.save", "PUT", "/api/v1/channels/{name}", right="admin",
           summary="Save a channel (made or replaced); secrets stored encrypted")  # fmt: skip
def save_channel(ctx: OpContext, req: SaveChannel) -> ChannelOut:
    """Create or replace a channel: the settings are checked by the provider's model (``channel_invalid`` names
    the field, never echoing its value), secrets are encrypted with the workspace's key, and the reply masks
    them."""
    from userloop.engage.assets import has_null
    from userloop.engage.channels import registry
    from userloop.engage.secrets import SecretBox

    if has_null(req.settings):
        raise ValidationError("settings may not hold a null character", code="channel_invalid", field="settings")
    box = SecretBox.for_workspace(ctx.ws.path)
    registry.save_channel(ctx.ws.meta, ctx.info.id, req.name, req.kind, req.provider, req.settings, box,
                          req.rate_per_second, enabled=req.enabled)  # fmt: skip
    return _channel(registry.get_channel(ctx.ws.meta, ctx.info.id, req.name))


@operation("channels.delete", "DELETE", "/api/v1/channels/{name}", right="admin",
           summary="Delete a channel")  # fmt: skip
def delete_channel(ctx: OpContext, req: ChannelRef) -> DeletedChannel:
    """Delete a channel; journeys naming it report it missing when validated or started."""
    from userloop.engage.channels import registry

    registry.delete_channel(ctx.ws.meta, ctx.info.id, req.name)
    return DeletedChannel(deleted=req.name)
