"""Typed records and the property registry's rules: names, types, record kinds."""

from __future__ import annotations

from userloop.schema.names import check_event_name, check_property_name, name_problem
from userloop.schema.types import PropertyType, RecordType

__all__ = ["PropertyType", "RecordType", "check_event_name", "check_property_name", "name_problem"]
