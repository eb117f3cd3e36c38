"""Per-person features: one value per person from a tag, a profile property or a model output.

A :class:`Feature` is what comparisons, look-alikes and exports read: a name, a label, a value type and a
sqlglot ``SELECT user_id, value`` that gives each person's value (people without a value have no row or a NULL).
Tags (:mod:`userloop.profile.tags`) and profile properties (:func:`property_features`) both produce them, so the
readers never care where a value comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

from userloop.query.compile import USER_COLUMNS, col
from userloop.schema.types import PropertyType

FeatureType = Literal["enum", "string", "number", "bool", "date"]
FeatureKind = Literal["tag", "property", "model"]

#: Profile columns that identify rather than describe a person; never compared or used to learn from.
IDENTIFYING = frozenset({"first_id", "created_at", "updated_at"})


@dataclass(frozen=True)
class Feature:
    """One value per person. ``name`` is unique across kinds (``tag:rfm_class``, ``property:city``)."""

    name: str
    label: str
    kind: FeatureKind
    type: FeatureType
    source: exp.Select
    #: The values of an ordered enumeration, lowest first (``None``: unordered or not an enumeration).
    order: tuple[str, ...] | None = None


def type_of(ptype: PropertyType) -> FeatureType | None:
    """The feature type of a property type, or None for types a person-level comparison cannot use (lists)."""
    kinds: dict[PropertyType, FeatureType] = {
        PropertyType.STRING: "string",
        PropertyType.NUMBER: "number",
        PropertyType.BOOL: "bool",
        PropertyType.DATETIME: "date",
        PropertyType.DATE: "date",
    }
    return kinds.get(ptype)


def property_features(schema: str, user_props: dict[str, PropertyType]) -> list[Feature]:
    """Every profile property (and the built-in ``first_seen``/``last_seen``) as a feature."""
    out: list[Feature] = []
    for name, ptype in sorted({**USER_COLUMNS, **user_props}.items()):
        ftype = type_of(ptype)
        if ftype is None or name in IDENTIFYING:
            continue
        value: exp.Expr = col(name, "u")
        if ptype == PropertyType.DATETIME:
            value = exp.cast(value, exp.DataType.Type.DATE)
        source = exp.select(col("user_id", "u"), exp.alias_(value, "value", quoted=True)).from_(
            exp.table_("users", db=schema, quoted=True, alias="u")
        )
        out.append(Feature(f"property:{name}", name, "property", ftype, source))
    return out
