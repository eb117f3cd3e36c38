"""The collector: wire-format adapters, the durable spool and the background loader."""

from __future__ import annotations

from userloop.collect.door import Answer, FrontDoor, Limits
from userloop.collect.drain import BackgroundLoader
from userloop.collect.spool import Position, Spool
from userloop.collect.wire import RawRequest, WireFormat

__all__ = ["Answer", "BackgroundLoader", "FrontDoor", "Limits", "Position", "RawRequest", "Spool", "WireFormat"]
