"""Ingest: every way data comes in (SDK wire formats, files, the simulator) goes through one loader."""

from __future__ import annotations

from userloop.ingest.api import load_json_lines, load_table
from userloop.ingest.loader import LoadResult, TimePolicy

__all__ = ["LoadResult", "TimePolicy", "load_json_lines", "load_table"]
