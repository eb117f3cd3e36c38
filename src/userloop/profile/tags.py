"""Tags (标签, DOMAIN §3): named per-person values with history, their definitions and where they are kept.

A tag is a JSON definition, validated here and stored in the metadata DB (:class:`TagRow`); its values live in
the project's DuckDB schema as the history table ``tag_<name>`` (:mod:`userloop.profile.history`), written by
:func:`userloop.profile.materialise.materialise`. Four kinds, each from a source::

    {"name": "orders_30d", "title_zh": "近30天支付订单数", "title_en": "Paid orders, last 30 days",
     "kind": "behaviour", "type": "number",
     "source": {"from": "events", "event": "order_paid", "agg": "count", "window": {"last": 30}}}

- ``basic`` — a profile property, as it is or derived (age from a birthday, tenure from a sign-up time);
- ``behaviour`` — an aggregate of a person's events (count, sum, first/last/most frequent value, active days…);
- ``result`` — a state derived from behaviour or from a model (repurchase, retention, preference);
- ``predictive`` — a model output (churn tier, CLV tier, RFM class, lifecycle stage);
- ``sql`` (admin only; read-only, time-limited) and ``upload`` (values from a CSV of ids).

Value types: ``enum`` (an ordered enumeration: ``values`` lists it lowest first), ``string``, ``number``,
``bool``, ``date``. ``bins`` turn a number into an ordered enumeration.

A definition is checked against the project when it is saved (every property, event and model field must
exist and fit the aggregate); a changed definition starts the tag's history again, since old values meant
something else.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, ValidationError
from userloop.profile import history
from userloop.profile.features import Feature
from userloop.profile.tagdefs import TagDef, parse_tag
from userloop.profile.tagsql import check
from userloop.store.meta import Base, MetaStore

if TYPE_CHECKING:
    from userloop.store.duck import ProjectStore


# storage --------------------------------------------------------------------------------------------------------
class TagRow(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(16))
    definition: Mapped[str] = mapped_column(Text)
    builtin: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def tag(self) -> TagDef:
        return parse_tag(orjson.loads(self.definition))

    @property
    def table(self) -> str:
        """The history table in the project's schema."""
        return f"tag_{self.name}"

    @property
    def title_zh(self) -> str:
        return self.tag.title_zh or self.name

    @property
    def title_en(self) -> str:
        return self.tag.title_en or self.name

    def as_dict(self) -> dict[str, Any]:
        tag = self.tag
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "title_zh": tag.title_zh,
            "title_en": tag.title_en,
            "definition": orjson.loads(self.definition),
            "incremental": tag.incremental,
            "builtin": self.builtin,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


_ready: set[int] = set()


def ensure_tables(meta: MetaStore) -> None:
    """Create the table on first use (workspaces made before tags existed lack it)."""
    if id(meta.engine) not in _ready:
        Base.metadata.create_all(meta.engine, tables=[TagRow.__table__])  # type: ignore[list-item]
        _ready.add(id(meta.engine))


def _canonical(tag: TagDef) -> str:
    return orjson.dumps(tag.as_json(), option=orjson.OPT_SORT_KEYS).decode()


def save(
    meta: MetaStore, project: ProjectStore, project_id: int, definition: dict[str, Any] | TagDef, *,
    builtin: bool = False,
) -> TagRow:  # fmt: skip
    """Check ``definition`` against the project and store it; a tag of the same name is an error.

    >>> save(meta, project, 1, {"name": "gender", "kind": "basic", "type": "string",
    ...                         "source": {"from": "profile", "property": "gender"}})  # doctest: +SKIP
    """

    ensure_tables(meta)
    tag = parse_tag(definition)
    check(tag, project)
    with meta.session() as s:
        taken = s.scalar(select(TagRow.id).where(TagRow.project_id == project_id, TagRow.name == tag.name))
    if taken is not None:
        raise ValidationError(f"a tag named {tag.name!r} already exists; change it with update", code="tag_exists")
    # a tag deleted and made again must not inherit the old one's values
    history.reset(project, tag.table)
    with meta.session.begin() as s:
        row = TagRow(project_id=project_id, name=tag.name, kind=tag.kind, type=tag.type,
                     definition=_canonical(tag), builtin=builtin)  # fmt: skip
        s.add(row)
    return row


def get(meta: MetaStore, project_id: int, name: str) -> TagRow:
    ensure_tables(meta)
    with meta.session() as s:
        row = s.scalar(select(TagRow).where(TagRow.project_id == project_id, TagRow.name == name))
        if row is None:
            names = list(s.scalars(select(TagRow.name).where(TagRow.project_id == project_id)))
    if row is None:
        close = sorted(n for n in names if n.startswith(name[:3]))[:8]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise NotFoundError(f"no tag named {name!r} in this project{hint}")
    return row


def listing(meta: MetaStore, project_id: int) -> list[TagRow]:
    ensure_tables(meta)
    with meta.session() as s:
        return list(s.scalars(select(TagRow).where(TagRow.project_id == project_id).order_by(TagRow.name)))


def update(
    meta: MetaStore,
    project: ProjectStore,
    project_id: int,
    name: str,
    definition: dict[str, Any] | TagDef | None = None,
    *,
    enabled: bool | None = None,
) -> TagRow:
    """Replace a tag's definition (its history starts again if the meaning changed) and/or switch it on or off.

    The name cannot change: it names the history table (define a new tag instead).
    """

    current = get(meta, project_id, name)
    new_text = current.definition
    if definition is not None:
        doc = definition.as_json() if isinstance(definition, TagDef) else {"name": name, **definition}
        tag = parse_tag(doc)
        if tag.name != name:
            raise ValidationError(f"a tag cannot be renamed ({name!r} → {tag.name!r}); define a new tag instead")
        check(tag, project)
        new_text = _canonical(tag)
        if new_text != current.definition:
            history.reset(project, tag.table)
    with meta.session.begin() as s:
        row = s.get(TagRow, current.id)
        assert row is not None
        if new_text != row.definition:
            tag = parse_tag(orjson.loads(new_text))
            row.definition, row.kind, row.type = new_text, tag.kind, tag.type
        if enabled is not None:
            row.enabled = enabled
        row.updated_at = utcnow()
    return row


def delete(meta: MetaStore, project: ProjectStore, project_id: int, name: str) -> None:
    """Remove a tag and its history."""
    row = get(meta, project_id, name)
    history.reset(project, row.table)
    with meta.session.begin() as s:
        s.delete(s.get(TagRow, row.id))


def install_starter(meta: MetaStore, project: ProjectStore, project_id: int) -> list[TagRow]:
    """Save the starter tags (:mod:`userloop.profile.starter`) that the project's data supports and that are not
    there yet; returns every starter tag now defined. Installing twice changes nothing; a starter tag that names
    an event or property the project lacks is left out (install again once the data has it)."""
    from userloop.profile.starter import STARTER_TAGS

    have = {row.name: row for row in listing(meta, project_id)}
    out: list[TagRow] = []
    for doc in STARTER_TAGS:
        row = have.get(doc["name"])
        if row is None:
            try:
                row = save(meta, project, project_id, doc, builtin=True)
            except ValidationError:
                continue
        out.append(row)
    return out


# readers for the rest of the profile platform --------------------------------------------------------------------
def tag_features(
    meta: MetaStore, project_id: int, schema: str, *, project: ProjectStore | None = None
) -> list[Feature]:
    """Every enabled tag's current values as a :class:`Feature` (with ``project``: only tags computed at least
    once, so every source table exists)."""
    out = []
    for row in listing(meta, project_id):
        if not row.enabled or (project is not None and not history.exists(project, row.table)):
            continue
        tag = row.tag
        out.append(
            Feature(
                name=f"tag:{tag.name}",
                label=tag.title_en or tag.title_zh or tag.name,
                kind="tag",
                type=tag.type,
                source=history.values_on(schema, row.table),
                order=tag.order,
            )
        )
    return out


def tag_infos(meta: MetaStore, project_id: int) -> dict[str, tuple[str, tuple[str, ...] | None]]:
    """``name → (type, order)`` of every tag, for the segment rule compiler."""
    return {row.name: (row.type, row.tag.order) for row in listing(meta, project_id)}
