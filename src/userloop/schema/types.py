"""Property types and record types.

The property types are Sensors Analytics' six: a property's type is inferred from its first value and fixed
after that; a later value of another type is rejected, never cast.
"""

from __future__ import annotations

from enum import StrEnum

import pyarrow as pa


class PropertyType(StrEnum):
    """The type of a property column."""

    NUMBER = "NUMBER"
    BOOL = "BOOL"
    STRING = "STRING"
    LIST = "LIST"
    DATETIME = "DATETIME"
    DATE = "DATE"

    @property
    def sql_type(self) -> str:
        """The DuckDB column type that stores this property."""
        return _SQL_TYPES[self]

    @classmethod
    def from_arrow(cls, dtype: pa.DataType) -> PropertyType | None:
        """The property type an Arrow column carries, or ``None`` for an unsupported Arrow type."""
        if pa.types.is_boolean(dtype):
            return cls.BOOL
        if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
            return cls.NUMBER
        if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_dictionary(dtype):
            return cls.STRING
        if pa.types.is_timestamp(dtype):
            return cls.DATETIME
        if pa.types.is_date(dtype):
            return cls.DATE
        if (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)) and (
            pa.types.is_string(dtype.value_type) or pa.types.is_large_string(dtype.value_type)
        ):
            return cls.LIST
        if pa.types.is_null(dtype):
            return None
        return None


_SQL_TYPES = {
    PropertyType.NUMBER: "DOUBLE",
    PropertyType.BOOL: "BOOLEAN",
    PropertyType.STRING: "VARCHAR",
    PropertyType.LIST: "VARCHAR[]",
    PropertyType.DATETIME: "TIMESTAMP",
    PropertyType.DATE: "DATE",
}

#: JSON value kinds (DuckDB's json_type) that each property type accepts. A STRING that looks like a date or a
#: date-time is accepted for DATE/DATETIME; the check of its shape happens in the loader.
JSON_KINDS = {
    PropertyType.NUMBER: ("BIGINT", "UBIGINT", "DOUBLE", "HUGEINT"),
    PropertyType.BOOL: ("BOOLEAN",),
    PropertyType.STRING: ("VARCHAR",),
    PropertyType.LIST: ("ARRAY",),
    PropertyType.DATETIME: ("VARCHAR",),
    PropertyType.DATE: ("VARCHAR",),
}

#: Sensors' formats for date and date-time strings.
DATETIME_REGEX = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$"
DATE_REGEX = r"^\d{4}-\d{2}-\d{2}$"


class RecordType(StrEnum):
    """Sensors Analytics record types (the ``type`` field of a record)."""

    TRACK = "track"
    TRACK_SIGNUP = "track_signup"
    TRACK_ID_BIND = "track_id_bind"
    TRACK_ID_UNBIND = "track_id_unbind"
    PROFILE_SET = "profile_set"
    PROFILE_SET_ONCE = "profile_set_once"
    PROFILE_INCREMENT = "profile_increment"
    PROFILE_APPEND = "profile_append"
    PROFILE_UNSET = "profile_unset"
    PROFILE_DELETE = "profile_delete"
    ITEM_SET = "item_set"
    ITEM_DELETE = "item_delete"

    @property
    def is_event(self) -> bool:
        return self in EVENT_TYPES

    @property
    def is_profile(self) -> bool:
        return self.value.startswith("profile_")

    @property
    def is_item(self) -> bool:
        return self.value.startswith("item_")


EVENT_TYPES = frozenset({RecordType.TRACK, RecordType.TRACK_SIGNUP, RecordType.TRACK_ID_BIND})
PROFILE_TYPES = frozenset(t for t in RecordType if t.is_profile)
ITEM_TYPES = frozenset(t for t in RecordType if t.is_item)
