"""Journeys, materials, channels and benefits as stored things: create, read, change, and a journey's lifecycle.

Lifecycle: ``draft`` → ``running`` ⇄ ``paused`` → ``finished`` → ``archived`` (a draft may be archived at once).
Editing a draft replaces its definition; editing a journey that has run creates a new version, and the people
inside finish on the version they entered. A node the new version removes is redirected (``redirects``:
old node → node of the new version) for the people waiting there, the way PostHog's ``action_redirects`` works:
they move to the new version at that node at once. Everyone else finishes on the version they entered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, ValidationError
from userloop.engage.interpreter import parse_key
from userloop.engage.journey import Journey, parse
from userloop.engage.tables import FeedbackRow, JourneyRow, JourneyVersion, NodeCount, OutboxRow, RunRow
from userloop.store.meta import MetaStore, Project

#: action → (states it may be taken from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("draft",), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "finish": (("running", "paused"), "finished"),
    "archive": (("draft", "finished", "paused"), "archived"),
}


@dataclass(frozen=True)
class Saved:
    id: int
    name: str
    status: str
    version: int
    definition: Journey
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    redirected: int = 0


class Journeys:
    """One project's journeys."""

    def __init__(self, meta: MetaStore, project: Project) -> None:
        self.meta = meta
        self.project = project

    def create(self, doc: Any) -> Saved:
        journey = parse(doc)
        with self.meta.session.begin() as s:
            if s.scalar(select(JourneyRow.id).where(*self._named(journey.name))) is not None:
                raise ValidationError(
                    f"a journey named {journey.name!r} exists already", code="journey_state", field="name"
                )
            row = JourneyRow(project_id=self.project.id, name=journey.name, status="draft", version=1)
            s.add(row)
            s.flush()
            s.add(JourneyVersion(journey_id=row.id, version=1, definition=journey.model_dump_json(by_alias=True)))
        return self.get(row.id)

    def update(self, ref: str | int, doc: Any, redirects: dict[str, str] | None = None) -> Saved:
        journey = parse(doc)
        current = self.get(ref)
        if current.status == "archived":
            raise ValidationError(f"journey {current.name!r} is archived; it cannot change", code="journey_state")
        redirects = redirects or {}
        new_ids = {n.id for n in journey.nodes}
        bad = {old: new for old, new in redirects.items() if new not in new_ids}
        if bad:
            raise ValidationError(
                f"redirects point to nodes the new version lacks: {bad}", code="journey_invalid", field="redirects"
            )
        with self.meta.session.begin() as s:
            row = s.get(JourneyRow, current.id)
            assert row is not None
            if journey.name != row.name and s.scalar(select(JourneyRow.id).where(*self._named(journey.name))):
                raise ValidationError(f"a journey named {journey.name!r} exists already", code="journey_state")
            text = journey.model_dump_json(by_alias=True)
            redirected = 0
            if row.status == "draft":
                version = s.get(JourneyVersion, (row.id, row.version))
                assert version is not None
                version.definition = text
            else:
                row.version += 1
                s.add(
                    JourneyVersion(
                        journey_id=row.id, version=row.version, definition=text, redirects=json.dumps(redirects)
                    )
                )
                redirected = self._redirect(s, row.id, row.version, redirects)
            row.name = journey.name
            row.updated_at = utcnow()
        saved = self.get(current.id)
        return Saved(**{**saved.__dict__, "redirected": redirected})

    def _redirect(self, s: Any, journey_id: int, version: int, redirects: dict[str, str]) -> int:
        """Move the people waiting at a redirected node to the new version's node, due at once; nobody else
        changes version. Returns how many moved."""
        now = utcnow()
        moved = 0
        for old, new in redirects.items():
            result = s.execute(
                update(RunRow)
                .where(RunRow.journey_id == journey_id, RunRow.node == old, RunRow.status == "waiting")
                .values(node=new, version=version, since=now, wait_event=None, wake_at=now)
            )
            moved += int(result.rowcount or 0)
        return moved

    def transition(self, ref: str | int, action: str, at: datetime | None = None) -> Saved:
        allowed = TRANSITIONS.get(action)
        if allowed is None:
            raise ValidationError(f"unknown action {action!r}; use one of {', '.join(TRANSITIONS)}")
        sources, target = allowed
        current = self.get(ref)
        if current.status not in sources:
            raise ValidationError(
                f"journey {current.name!r} is {current.status}; {action} needs it {' or '.join(sources)}",
                code="journey_state",
            )
        with self.meta.session.begin() as s:
            row = s.get(JourneyRow, current.id)
            assert row is not None
            row.status = target
            row.updated_at = utcnow()
            if action == "start":
                row.started_at = at or utcnow()
        return self.get(current.id)

    def get(self, ref: str | int) -> Saved:
        with self.meta.session() as s:
            cond = JourneyRow.id == ref if isinstance(ref, int) else JourneyRow.name == ref
            row = s.scalar(select(JourneyRow).where(JourneyRow.project_id == self.project.id, cond))
            if row is None and isinstance(ref, str) and ref.isdigit():
                row = s.scalar(
                    select(JourneyRow).where(JourneyRow.project_id == self.project.id, JourneyRow.id == int(ref))
                )
            if row is None:
                raise NotFoundError(f"no journey {ref!r} in project {self.project.name!r}", code="unknown_journey")
            version = s.get(JourneyVersion, (row.id, row.version))
            assert version is not None
            journey = Journey.model_validate_json(version.definition)
        return Saved(row.id, row.name, row.status, row.version, journey, row.created_at, row.updated_at, row.started_at)

    def list(self) -> list[Saved]:
        with self.meta.session() as s:
            ids = s.scalars(
                select(JourneyRow.id).where(JourneyRow.project_id == self.project.id).order_by(JourneyRow.id)
            ).all()
        return [self.get(i) for i in ids]

    def stats(self, ref: str | int) -> dict[str, Any]:
        """Per node and per branch: counters, people waiting now, messages by status, goal conversions by branch."""
        saved = self.get(ref)
        jid = saved.id
        with self.meta.session() as s:
            counters = s.execute(
                select(NodeCount.node, NodeCount.outcome, func.sum(NodeCount.count))
                .where(NodeCount.journey_id == jid)
                .group_by(NodeCount.node, NodeCount.outcome)
            ).all()
            waiting = s.execute(
                select(RunRow.node, RunRow.status, func.count())
                .where(RunRow.journey_id == jid, RunRow.status != "exited")
                .group_by(RunRow.node, RunRow.status)
            ).all()
            messages = s.execute(
                select(OutboxRow.node, OutboxRow.status, func.count())
                .where(OutboxRow.journey_id == jid)
                .group_by(OutboxRow.node, OutboxRow.status)
            ).all()
            runs = s.execute(
                select(RunRow.path, func.count(), func.count(RunRow.converted_at))
                .where(RunRow.journey_id == jid, RunRow.status != "door")
                .group_by(RunRow.path)
            ).all()
            feedback = s.execute(
                select(FeedbackRow.key, FeedbackRow.event)
                .where(FeedbackRow.project_id == self.project.id, FeedbackRow.key.like(f"{jid}.%"))
                .distinct()
            ).all()
        nodes: dict[str, dict[str, int]] = {}
        for node, outcome, n in counters:
            nodes.setdefault(node, {})[outcome] = int(n)
        for node, status, n in waiting:
            key = "waiting" if status == "waiting" else status
            nodes.setdefault(node, {})[key] = nodes.get(node, {}).get(key, 0) + int(n)
        sends: dict[str, dict[str, int]] = {}
        for node, status, n in messages:
            sends.setdefault(node, {})[status] = int(n)
        received: dict[str, dict[str, int]] = {}
        for key, event in feedback:  # messages delivered, opened, clicked …: each once per kind of feedback
            parts = parse_key(key)
            if parts is not None:
                name = event.removeprefix("$message_").removeprefix("$")
                row = received.setdefault(parts[2], {})
                row[name] = row.get(name, 0) + 1
        branches: dict[str, dict[str, int]] = {}
        for path, entered, converted in runs:
            for step in (path or "").split("|"):
                if not step:
                    continue
                b = branches.setdefault(step, {"entered": 0, "converted": 0})
                b["entered"] += int(entered)
                b["converted"] += int(converted)
        total = sum(int(e) for _, e, _ in runs)
        converted = sum(int(c) for _, _, c in runs)
        return {
            "journey": saved.name,
            "version": saved.version,
            "status": saved.status,
            "entered": total,
            "converted": converted,
            "nodes": nodes,
            "messages": sends,
            "feedback": received,
            "branches": branches,
        }

    def _named(self, name: str) -> tuple[Any, ...]:
        return (JourneyRow.project_id == self.project.id, JourneyRow.name == name)
