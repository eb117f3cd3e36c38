"""Tags (标签, DOMAIN §3): named per-person values with history, their definitions and where they are kept.

A tag is a JSON definition, validated here and stored in the metadata DB (:class:`userloop.store.tables.TagRow`);
its values live in the project's DuckDB schema as the history table ``tag_<name>``
(:mod:`userloop.profile.history`), written by :func:`userloop.profile.materialise.materialise`.
Four kinds, each from a source::

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

from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select

from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, ValidationError
from userloop.profile import history
from userloop.profile.features import Feature
from userloop.profile.tagdefs import TagDef, parse_tag
from userloop.profile.tagsql import check
from userloop.store.meta import MetaStore
from userloop.store.tables import TagRow

if TYPE_CHECKING:
    from userloop.store.duck import ProjectStore


# storage --------------------------------------------------------------------------------------------------------
def tag_of(row: TagRow) -> TagDef:
    """The parsed definition of a stored tag."""
    return parse_tag(orjson.loads(row.definition))


def titles(row: TagRow) -> tuple[str, str]:
    """The tag's Chinese and English titles, its name where a title is missing."""
    tag = tag_of(row)
    return tag.title_zh or row.name, tag.title_en or row.name


def as_dict(row: TagRow) -> dict[str, Any]:
    """A stored tag as the API and the CLI show it."""
    tag = tag_of(row)
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "type": row.type,
        "title_zh": tag.title_zh,
        "title_en": tag.title_en,
        "definition": orjson.loads(row.definition),
        "incremental": tag.incremental,
        "builtin": row.builtin,
        "enabled": row.enabled,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


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
    from userloop.profile.starter import starter_tags
    from userloop.store.settings import money_property

    have = {row.name: row for row in listing(meta, project_id)}
    out: list[TagRow] = []
    for doc in starter_tags(money_property(project)):
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
        tag = tag_of(row)
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
    return {row.name: (row.type, tag_of(row).order) for row in listing(meta, project_id)}
