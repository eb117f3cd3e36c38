"""Materials (素材) and benefits (权益) as stored things: a project's message templates and coupons.

A material is a :class:`~userloop.engage.templates.Material` kept under a name unique in its project; saving one
checks and compiles every template first (``template_invalid`` / ``template_unsafe`` name the template at fault), so
what is stored always renders. A benefit is a coupon (``amount`` off an order of at least ``threshold``, valid
``valid_days`` after it is granted) drawn from a ``stock`` (None: unlimited); :class:`BenefitInfo` shows how many
were granted and how many remain. Journeys name both by name (:class:`userloop.engage.journey.Send`,
:class:`~userloop.engage.journey.Grant`), and ``journeys validate`` checks the names exist.

Both live in the metadata database (SQLite embedded, PostgreSQL at scale; tables in :mod:`userloop.engage.tables`)
and are reached through SQLAlchemy sessions with bound parameters only: a name is data, never SQL text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import delete, func, select

from userloop.benefits import BenefitRow, GrantRow
from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, UserloopError, ValidationError
from userloop.engage.journey import Journey
from userloop.engage.tables import MaterialRow
from userloop.engage.templates import Material
from userloop.store.meta import MetaStore, Project

__all__ = [
    "MAX_NAME",
    "BenefitInfo",
    "MaterialInfo",
    "check_benefit",
    "check_name",
    "create_benefit",
    "delete_benefit",
    "delete_material",
    "get_benefit",
    "get_material",
    "list_benefits",
    "list_materials",
    "parse_material",
    "save_material",
]

#: The longest name of a material or a benefit (the tables' column).
MAX_NAME = 100
#: The largest coupon amount or threshold (in the project's money unit): a bound that keeps the numbers exact.
MAX_AMOUNT = 1e12


def check_name(name: str, what: str) -> str:
    """``name`` when it can name a ``what``: 1 to 100 characters, no control character, no slash or backslash
    (it travels in a URL path), no surrounding spaces."""
    if not name or len(name) > MAX_NAME:
        raise ValidationError(f"a {what} name has 1 to {MAX_NAME} characters", field="name")
    if name != name.strip() or any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "/\\" for c in name):
        raise ValidationError(
            f"a {what} name may not hold control characters, slashes or surrounding spaces", field="name"
        )
    return name


def has_null(doc: Any) -> bool:
    """Whether a text of JSON data ``doc`` (keys included) holds a null character (PostgreSQL's text cannot)."""
    if isinstance(doc, str):
        return "\x00" in doc
    if isinstance(doc, dict):
        return any(has_null(k) or has_null(v) for k, v in doc.items())
    if isinstance(doc, list):
        return any(has_null(v) for v in doc)
    return False


# materials ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MaterialInfo:
    id: int
    name: str
    material: Material
    created_at: datetime
    updated_at: datetime


def parse_material(doc: Any) -> Material:
    """A material from JSON data, every template checked (``template_invalid`` / ``template_unsafe`` name the
    template); a shape error (an unknown field, a missing body) is ``template_invalid`` naming the field."""
    if isinstance(doc, Material):
        return doc
    if has_null(doc):
        raise ValidationError("a material may not hold a null character", code="template_invalid", field="material")
    try:
        return Material.model_validate(doc)
    except UserloopError:
        raise
    except PydanticValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "material"
        raise ValidationError(f"{where}: {err['msg']}", code="template_invalid", field=where) from None


def _material(row: MaterialRow) -> MaterialInfo:
    return MaterialInfo(row.id, row.name, Material.model_validate_json(row.definition), row.created_at,
                        row.updated_at)  # fmt: skip


def save_material(meta: MetaStore, project: Project, name: str, doc: Any) -> tuple[MaterialInfo, bool]:
    """Create or replace the material ``name``; returns it and whether it was made now."""
    check_name(name, "material")
    material = parse_material(doc)
    text = material.model_dump_json()
    now = utcnow()
    with meta.session.begin() as s:
        row = s.scalar(select(MaterialRow).where(MaterialRow.project_id == project.id, MaterialRow.name == name))
        created = row is None
        if row is None:
            row = MaterialRow(project_id=project.id, name=name, definition=text, created_at=now, updated_at=now)
            s.add(row)
        else:
            row.definition = text
            row.updated_at = now
        s.flush()
        return _material(row), created


def get_material(meta: MetaStore, project: Project, name: str) -> MaterialInfo:
    with meta.session() as s:
        row = s.scalar(select(MaterialRow).where(MaterialRow.project_id == project.id, MaterialRow.name == name))
        if row is None:
            raise NotFoundError(f"no material {name!r} in project {project.name!r}", field="name")
        return _material(row)


def list_materials(meta: MetaStore, project: Project) -> list[MaterialInfo]:
    with meta.session() as s:
        rows = s.scalars(select(MaterialRow).where(MaterialRow.project_id == project.id).order_by(MaterialRow.name))
        return [_material(r) for r in rows]


def delete_material(meta: MetaStore, project: Project, name: str) -> int:
    """Delete the material ``name``; returns its id. A running journey that names it fails its sends (and
    ``journeys validate`` reports the missing name)."""
    with meta.session.begin() as s:
        row = s.scalar(select(MaterialRow).where(MaterialRow.project_id == project.id, MaterialRow.name == name))
        if row is None:
            raise NotFoundError(f"no material {name!r} in project {project.name!r}", field="name")
        s.delete(row)
        return row.id


def material_names(meta: MetaStore, project: Project) -> dict[str, str]:
    """Every material's name → its channel kind."""
    with meta.session() as s:
        rows = s.execute(select(MaterialRow.name, MaterialRow.definition).where(MaterialRow.project_id == project.id))
        return {name: str(json.loads(text).get("channel", "")) for name, text in rows}


# benefits -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenefitInfo:
    id: int
    name: str
    kind: str
    amount: float
    threshold: float
    valid_days: int
    stock: int | None
    granted: int
    remaining: int | None
    created_at: datetime


def check_benefit(amount: float, threshold: float, valid_days: int, stock: int | None) -> None:
    """A coupon's rules: ``0 < amount``, ``0 ≤ threshold``, finite and at most 10¹²; ``1 ≤ valid_days ≤ 3650``;
    ``stock`` None (unlimited) or ``≥ 0``."""
    if not math.isfinite(amount) or not 0 < amount <= MAX_AMOUNT:
        raise ValidationError(f"amount must be above 0 and at most {MAX_AMOUNT:g}", field="amount")
    if not math.isfinite(threshold) or not 0 <= threshold <= MAX_AMOUNT:
        raise ValidationError(f"threshold must be 0 or more and at most {MAX_AMOUNT:g}", field="threshold")
    if not 1 <= valid_days <= 3650:
        raise ValidationError("valid_days must be 1 to 3650", field="valid_days")
    if stock is not None and not 0 <= stock <= 2**31 - 1:
        raise ValidationError("stock must be empty (unlimited) or 0 or more", field="stock")


def _benefit(row: BenefitRow) -> BenefitInfo:
    remaining = None if row.stock is None else max(row.stock - row.granted, 0)
    return BenefitInfo(row.id, row.name, row.kind, row.amount, row.threshold, row.valid_days, row.stock,
                       row.granted, remaining, row.created_at)  # fmt: skip


def create_benefit(
    meta: MetaStore,
    project: Project,
    name: str,
    *,
    amount: float,
    threshold: float = 0.0,
    valid_days: int = 30,
    stock: int | None = None,
    kind: str = "coupon",
) -> BenefitInfo:
    """A new coupon ``name`` (``invalid`` when the project has a benefit of that name already)."""
    check_name(name, "benefit")
    if kind != "coupon":
        raise ValidationError(f"unknown benefit kind {kind!r}; the kind is 'coupon'", field="kind")
    check_benefit(amount, threshold, valid_days, stock)
    with meta.session.begin() as s:
        if s.scalar(select(BenefitRow.id).where(BenefitRow.project_id == project.id, BenefitRow.name == name)):
            raise ValidationError(f"a benefit named {name!r} exists already", field="name")
        row = BenefitRow(project_id=project.id, name=name, kind=kind, amount=float(amount), threshold=float(threshold),
                         valid_days=valid_days, stock=stock, granted=0, created_at=utcnow())  # fmt: skip
        s.add(row)
        s.flush()
        return _benefit(row)


def _benefit_row(s: Any, project: Project, ref: str | int) -> BenefitRow:
    cond = BenefitRow.id == ref if isinstance(ref, int) else BenefitRow.name == ref
    row: BenefitRow | None = s.scalar(select(BenefitRow).where(BenefitRow.project_id == project.id, cond))
    if row is None and isinstance(ref, str) and ref.isascii() and ref.isdigit() and len(ref) < 19:
        row = s.scalar(select(BenefitRow).where(BenefitRow.project_id == project.id, BenefitRow.id == int(ref)))
    if row is None:
        raise NotFoundError(f"no benefit {ref!r} in project {project.name!r}", code="unknown_benefit")
    return row


def get_benefit(meta: MetaStore, project: Project, ref: str | int) -> BenefitInfo:
    """The benefit of id or name ``ref`` (``unknown_benefit`` when there is none)."""
    with meta.session() as s:
        return _benefit(_benefit_row(s, project, ref))


def list_benefits(meta: MetaStore, project: Project) -> list[BenefitInfo]:
    with meta.session() as s:
        rows = s.scalars(select(BenefitRow).where(BenefitRow.project_id == project.id).order_by(BenefitRow.id))
        return [_benefit(r) for r in rows]


def delete_benefit(meta: MetaStore, project: Project, ref: str | int) -> int:
    """Delete a benefit that was never granted; returns its id. One already granted is kept (its grants are
    the coupons people hold) and the deletion is refused (``invalid``)."""
    with meta.session.begin() as s:
        row = _benefit_row(s, project, ref)
        held = s.scalar(select(func.count()).select_from(GrantRow).where(GrantRow.benefit_id == row.id)) or 0
        if held or row.granted:
            raise ValidationError(
                f"benefit {row.name!r} was granted {max(int(held), row.granted)} time(s); it is kept for the "
                "coupons people hold",
                field="benefit",
            )
        s.execute(delete(BenefitRow).where(BenefitRow.id == row.id))
        return row.id


def benefit_names(meta: MetaStore, project: Project) -> set[str]:
    with meta.session() as s:
        return set(s.scalars(select(BenefitRow.name).where(BenefitRow.project_id == project.id)))


# what a journey names ------------------------------------------------------------------------------------------
def journey_references(meta: MetaStore, project: Project, journey: Journey) -> list[dict[str, str]]:
    """Every name a journey uses that the project lacks, as ``{node, field, message}``: channels (also those of a
    send's fallback), materials, benefits and segments; and a material made for another kind of channel than the
    one its send goes out on; member programmes (and their wallets) of points nodes and membership conditions. The
    entry is node ``$entry``, the audience ``$who``."""
    from userloop.engage.journey import AllOf, InSegment, MemberIs, Points, Send, Split, StrategySet
    from userloop.engage.journey import Grant as GrantNode
    from userloop.engage.tables import ChannelRow
    from userloop.membership.members import Programmes
    from userloop.store.tables import Segment

    with meta.session() as s:
        rows = s.execute(select(ChannelRow.name, ChannelRow.kind).where(ChannelRow.project_id == project.id))
        channels = {str(r[0]): str(r[1]) for r in rows}
        segments = set(s.scalars(select(Segment.id).where(Segment.project_id == project.id)))
    materials = material_names(meta, project)
    benefits = benefit_names(meta, project)
    wallets = {p.name: {w.name for w in p.definition.wallets} for p in Programmes(meta, project).all()}
    errors: list[dict[str, str]] = []

    def programme(node: str, prefix: str, name: str, wallet: str | None) -> None:
        if name not in wallets:
            errors.append({"node": node, "field": f"{prefix}programme", "message": f"no member programme {name!r}"})
        elif wallet is not None and wallet not in wallets[name]:
            errors.append({"node": node, "field": f"{prefix}wallet",
                           "message": f"programme {name!r} has no wallet {wallet!r}"})  # fmt: skip

    def segment(node: str, field: str, seg: int | None) -> None:
        if seg is not None and seg not in segments:
            errors.append({"node": node, "field": field, "message": f"no segment {seg} in project {project.name!r}"})

    def conditions(node: str, field: str, when: AllOf) -> None:
        for i, c in enumerate(when.all):
            if isinstance(c, InSegment):
                segment(node, f"{field}.all.{i}.segment", c.segment)
            elif isinstance(c, MemberIs):
                programme(node, f"{field}.all.{i}.", c.programme, c.wallet if c.field == "points" else None)

    segment("$entry", "entry.segment", getattr(journey.entry, "segment", None))
    conditions("$who", "who", journey.who)
    for n in journey.nodes:
        if isinstance(n, Send):
            for field, name in [("channel", n.channel), *((f"fallback.{i}", f) for i, f in enumerate(n.fallback))]:
                if name not in channels:
                    errors.append({"node": n.id, "field": field, "message": f"no channel {name!r}"})
            if n.material not in materials:
                errors.append({"node": n.id, "field": "material", "message": f"no material {n.material!r}"})
            elif n.channel in channels and materials[n.material] != channels[n.channel]:
                errors.append({"node": n.id, "field": "material", "message": f"material {n.material!r} is for "
                               f"{materials[n.material]}, channel {n.channel!r} is {channels[n.channel]}"})  # fmt: skip
            if n.benefit is not None and n.benefit not in benefits:
                errors.append({"node": n.id, "field": "benefit", "message": f"no benefit {n.benefit!r}"})
        elif isinstance(n, GrantNode) and n.benefit not in benefits:
            errors.append({"node": n.id, "field": "benefit", "message": f"no benefit {n.benefit!r}"})
        elif isinstance(n, Points):
            programme(n.id, "", n.programme, n.wallet)
        elif isinstance(n, Split):
            for i, b in enumerate(n.branches):
                conditions(n.id, f"branches.{i}.when", b.when)
        elif isinstance(n, StrategySet):
            for i, st in enumerate(n.strategies):
                conditions(n.id, f"strategies.{i}.when", st.when)
    return errors
