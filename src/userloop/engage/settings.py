"""A project's delivery rules: frequency caps, quiet hours, the global control group, where a person's zone and
locale are read from. Stored as JSON in ``engage_settings``; every field has a default a careful operator would
pick, so a new project protects its users from over-messaging before anyone configures anything."""

from __future__ import annotations

import json
from datetime import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from userloop.engage.rules import CapRule, QuietHours
from userloop.engage.tables import EngageSettingsRow
from userloop.store.meta import MetaStore


class EngageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: marketing messages per person per local day and week (:class:`userloop.engage.rules.CapRule`)
    caps: list[CapRule] = Field(default_factory=lambda: [CapRule(channel="*", per_day=3, per_week=10)], max_length=20)
    #: quiet hours (勿扰) in each person's zone; None turns them off
    quiet_hours: QuietHours | None = Field(default_factory=lambda: QuietHours(start=time(22, 0), end=time(8, 0)))
    #: the share of all people who receive no marketing message (the global control group); 0 turns it off
    control_share: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    #: the control group's salt: changing it draws a new group
    control_salt: Annotated[str, Field(min_length=1, max_length=64)] = "global-control-v1"
    zone_property: Annotated[str, Field(min_length=1, max_length=100)] = "$timezone"
    locale_property: Annotated[str, Field(min_length=1, max_length=100)] = "$language"
    default_locale: Literal["zh-CN", "en"] = "zh-CN"
    #: where the public links (open pixel, click, unsubscribe) point: the service's address as people reach it
    public_url: Annotated[str, Field(max_length=500, pattern=r"^https?://[^\s]+$")] = "http://127.0.0.1:8000"


def load(meta: MetaStore, project_id: int) -> EngageSettings:
    with meta.session() as s:
        row = s.scalar(select(EngageSettingsRow).where(EngageSettingsRow.project_id == project_id))
    return EngageSettings.model_validate(json.loads(row.settings)) if row is not None else EngageSettings()


def save(meta: MetaStore, project_id: int, settings: EngageSettings) -> EngageSettings:
    with meta.session.begin() as s:
        row = s.get(EngageSettingsRow, project_id)
        if row is None:
            s.add(EngageSettingsRow(project_id=project_id, settings=settings.model_dump_json()))
        else:
            row.settings = settings.model_dump_json()
    return settings
