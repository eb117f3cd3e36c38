"""The profile platform of one project, as the faces use it: tags, segments, comparisons, users, exports.

:class:`Profiles` answers in JSON-ready dicts, so the API returns them as they are and the CLI prints the same
shapes whether it runs in process or through the server. It holds no state of its own beyond the project it
works on; every operation reads the metadata DB and the event store afresh.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import orjson
from sqlglot import exp

from userloop.core.clock import today_in
from userloop.core.errors import ValidationError
from userloop.profile import history, segments, tags
from userloop.profile.features import Feature, property_features
from userloop.profile.materialise import coverage, materialise, upload
from userloop.profile.rules import conditions, parse_rule, referenced_tags
from userloop.profile.rulesql import model_fields
from userloop.query.compile import col, sql
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project

#: A group to compare: ``{"segment": id}`` or ``{"rule": {…}}``; ``None`` for "everyone else".
GroupRef = dict[str, Any] | None
MAX_MEMBERS_PAGE = 10_000


class Profiles:
    """Tags, segments, comparisons, look-alikes, the user 360 and exports of one project."""

    def __init__(self, meta: MetaStore, project: ProjectStore, info: Project) -> None:
        self.meta = meta
        self.project = project
        self.info = info

    @property
    def today(self) -> date:
        return today_in(self.info.timezone)

    # tags -----------------------------------------------------------------------------------------------------
    def tags(self) -> list[dict[str, Any]]:
        """Every tag with its latest run (date, people with a value, coverage)."""
        out = []
        for row in tags.listing(self.meta, self.info.id):
            last = history.runs(self.project, row.table, limit=1)
            out.append({**tags.as_dict(row), "last_run": last[0] if last else None})
        return out

    def tag(self, name: str) -> dict[str, Any]:
        row = tags.get(self.meta, self.info.id, name)
        return {**tags.as_dict(row), "coverage": coverage(self.project, self.meta, self.info.id, name)}

    def save_tag(self, definition: dict[str, Any]) -> dict[str, Any]:
        return tags.as_dict(tags.save(self.meta, self.project, self.info.id, definition))

    def update_tag(self, name: str, definition: dict[str, Any]) -> dict[str, Any]:
        return tags.as_dict(tags.update(self.meta, self.project, self.info.id, name, definition))

    def delete_tag(self, name: str) -> None:
        tags.delete(self.meta, self.project, self.info.id, name)

    def install_starter(self) -> list[dict[str, Any]]:
        return [tags.as_dict(row) for row in tags.install_starter(self.meta, self.project, self.info.id)]

    def materialise(
        self, names: list[str] | None = None, *, run_date: date | None = None, full: bool = False
    ) -> dict[str, Any]:
        """Compute tags as of the end of ``run_date`` (default: today so far) and record their history."""
        day = run_date or self.today
        runs = materialise(self.project, self.meta, self.info.id, self.info.timezone, day, names=names, full=full)
        return {"run_date": day.isoformat(), "tags": [r.as_dict() for r in runs]}

    def upload_tag(
        self, name: str, csv_text: str, *, id_column: str, id_kind: str, value_column: str | None
    ) -> dict[str, Any]:
        return upload(
            self.meta, self.project, self.info.id, name, csv_text,
            id_column=id_column, id_kind=id_kind, value_column=value_column, run_date=self.today,
        )  # fmt: skip

    # features -------------------------------------------------------------------------------------------------
    def features(self, kinds: tuple[str, ...] = ("tag", "property")) -> list[Feature]:
        """What comparisons and look-alikes read: tags (current values), profile properties, model outputs."""
        out: list[Feature] = []
        if "tag" in kinds:
            out.extend(tags.tag_features(self.meta, self.info.id, self.project.schema, project=self.project))
        if "property" in kinds:
            out.extend(property_features(self.project.schema, self.project.properties("users")))
        if "model" in kinds:
            out.extend(model_features(self.project))
        return out

    # segments -------------------------------------------------------------------------------------------------
    def segments(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in segments.listing(self.meta, self.info.id)]

    def segment(self, segment_id: int) -> dict[str, Any]:
        row = segments.get(self.meta, self.info.id, segment_id)
        return {**row.as_dict(), "runs": history.runs(self.project, row.table, limit=60)}

    def estimate(self, rule: dict[str, Any], *, timeout_s: float = 30.0) -> dict[str, Any]:
        return segments.estimate(self.project, self.meta, self.info, rule, timeout_s=timeout_s)

    def save_segment(
        self, name: str, rule: dict[str, Any], *, description: str = "", refresh: str = "daily", compute: bool = True
    ) -> dict[str, Any]:
        """Save a rule segment and (by default) compute its members now."""
        row = segments.save(self.meta, self.project, self.info, name=name, rule=rule, description=description,
                            refresh=refresh)  # fmt: skip
        if compute:
            segments.refresh(self.meta, self.project, self.info, row.id)
        return self.segment(row.id)

    def update_segment(self, segment_id: int, **changes: Any) -> dict[str, Any]:
        segments.update(self.meta, self.project, self.info, segment_id, **changes)
        return self.segment(segment_id)

    def delete_segment(self, segment_id: int) -> None:
        segments.delete(self.meta, self.project, self.info, segment_id)

    def refresh_segment(self, segment_id: int, *, run_date: date | None = None) -> dict[str, Any]:
        return segments.refresh(self.meta, self.project, self.info, segment_id, run_date=run_date).as_dict()

    def static_segment(
        self, name: str, ids: list[str], *, id_kind: str = "distinct_id", description: str = ""
    ) -> dict[str, Any]:
        row, rejects = segments.create_static(
            self.meta, self.project, self.info, name=name, ids=ids, id_kind=id_kind, description=description
        )
        return {**self.segment(row.id), "rejects": rejects}

    def segment_from_analysis(self, name: str, definition: dict[str, Any], *, description: str = "") -> dict[str, Any]:
        row = segments.create_from_analysis(
            self.meta, self.project, self.info, name=name, definition=definition, description=description
        )
        return self.segment(row.id)

    def members(self, segment_id: int, *, limit: int = 1000, after: int | None = None) -> dict[str, Any]:
        """A page of the current members' person keys, ascending; ``next`` continues after the last one."""
        row = segments.get(self.meta, self.info.id, segment_id)
        limit = max(1, min(limit, MAX_MEMBERS_PAGE))
        if not history.exists(self.project, row.table):
            return {"user_ids": [], "next": None}
        rows = self.project.fetchall(
            sql("SELECT user_id FROM $t WHERE valid_to IS NULL AND user_id > ? ORDER BY user_id LIMIT ?",
                t=self.project.ref(row.table)),
            [after if after is not None else -(2**63), limit],
        )  # fmt: skip
        ids = [int(r[0]) for r in rows]
        return {"user_ids": ids, "next": ids[-1] if len(ids) == limit else None}

    def changes(self, segment_id: int, day: date) -> dict[str, Any]:
        row = segments.get(self.meta, self.info.id, segment_id)
        return {"date": day.isoformat(), **segments.changes(self.project, row, day)}

    def group(self, ref: GroupRef) -> exp.Select | None:
        """A group reference as ``SELECT user_id``: a segment's current members or a rule's people now."""
        if ref is None:
            return None
        if set(ref) == {"segment"}:
            row = segments.get(self.meta, self.info.id, int(ref["segment"]))
            if not history.exists(self.project, row.table):
                raise ValidationError(f"segment {row.id} has no members yet; refresh it first")
            return segments.members(self.project.schema, row)
        if set(ref) == {"rule"}:
            tree, _warnings = segments.compile_members(self.project, self.meta, self.info, ref["rule"])
            return tree
        raise ValidationError('a group is {"segment": id} or {"rule": {…}}')

    def compare(
        self,
        a: GroupRef,
        b: GroupRef = None,
        *,
        kinds: tuple[str, ...] = ("tag", "property"),
        correction: Literal["bh", "holm", "bonferroni"] = "bh",
        alpha: float = 0.05,
    ) -> dict[str, Any]:
        from userloop.profile.compare import compare

        group_a = self.group(a)
        if group_a is None:
            raise ValidationError("compare needs a group A")
        defining = self._defining(a) | self._defining(b)
        features = [f for f in self.features(kinds) if f.name not in defining]
        result = compare(self.project, group_a, self.group(b), features, alpha=alpha, correction=correction)
        excluded = [{"feature": name, "reason": "the groups are defined by it"} for name in sorted(defining)]
        return {"a": a, "b": b, "excluded_features": excluded, **result.as_dict()}

    def _defining(self, ref: GroupRef) -> set[str]:
        """The tags and profile properties a group's rule is made of: comparing on them shows only the rule."""
        if ref is None:
            return set()
        rule = ref.get("rule")
        if "segment" in ref:
            row = segments.get(self.meta, self.info.id, int(ref["segment"]))
            rule = orjson.loads(row.definition) if row.kind == "rule" else None
        if rule is None:
            return set()
        parsed = parse_rule(rule)
        names = {f"tag:{t}" for t in referenced_tags(parsed)}
        names |= {f"property:{c.property}" for _p, c in conditions(parsed) if getattr(c, "type", "") == "property"}
        return names

    def lookalike(
        self, name: str, seed: int, *, top_n: int, kinds: tuple[str, ...] = ("tag", "property"), save: bool = True
    ) -> dict[str, Any]:
        """Score people outside segment ``seed`` by likeness to it; save the top ``top_n`` as a segment."""
        from userloop.profile.lookalike import lookalike

        seed_group = self.group({"segment": seed})
        assert seed_group is not None
        features = self.features(kinds)
        leaks = {leak.feature: leak.as_dict() for leak in self._leaks(seed, features)}
        found = lookalike(
            self.project, seed_group, [f for f in features if f.name not in leaks], top_n=top_n,
            as_of=today_in(self.info.timezone), excluded=list(leaks.values()),
        )  # fmt: skip
        report = found.as_dict()
        if not save:
            return report
        people = [int(u) for u in found.scores.column("user_id").to_pylist()]
        row = segments.create_people(
            self.meta, self.project, self.info, name=name, kind="lookalike", people=people,
            definition={"seed": seed, "top_n": top_n, "features": list(kinds), "quality": report.get("quality"),
                        "excluded": sorted(leaks)},
        )  # fmt: skip
        return {**report, "segment": self.segment(row.id)}

    def _leaks(self, seed: int, features: list[Feature]) -> list[Any]:
        """The features segment ``seed``'s own rule is made of (:mod:`userloop.profile.leakage`)."""
        from userloop.profile.leakage import leaking, rule_reads

        def segment_rule(segment_id: int) -> Any | None:
            row = segments.get(self.meta, self.info.id, segment_id)
            return orjson.loads(row.definition) if row.kind == "rule" else None

        rule = segment_rule(seed)
        if rule is None:
            return []
        sources = {row.name: tags.tag_of(row).source for row in tags.listing(self.meta, self.info.id)}
        return leaking(features, rule_reads(rule, segment_rule), sources, self._model_events())

    def _model_events(self) -> dict[str, set[str]]:
        """The events each model's outputs are computed from here: the purchase event of the model's latest
        stored configuration (the default when it has not run), and every active event for activity."""
        from userloop.models.base import ModelError, latest_report
        from userloop.profile.leakage import MODEL_EVENTS

        out: dict[str, set[str]] = {}
        for model, default in MODEL_EVENTS.items():
            if default == "$any":
                out[model] = {"$any", *(e for e, active in self.project.event_flags().items() if active)}
                continue
            try:
                purchases = latest_report(self.project, model).get("config", {}).get("purchases") or {}
            except ModelError:
                purchases = {}
            out[model] = {str(purchases.get("event") or default)}
        return out

    # people ---------------------------------------------------------------------------------------------------
    def user(self, key: str, *, unmask: bool = False) -> dict[str, Any]:
        from userloop.profile import user360

        user_id = user360.resolve(self.project, key)
        tag_list = [(t.name, *tags.titles(t)) for t in tags.listing(self.meta, self.info.id)]
        seg_list = [(s.id, s.name) for s in segments.listing(self.meta, self.info.id)]
        from userloop.store.settings import money_property

        return user360.profile_360(self.project, user_id, timezone=self.info.timezone, tags=tag_list,
                                   segments=seg_list, unmask=unmask,
                                   order_amount=money_property(self.project))  # fmt: skip

    def timeline(
        self, key: str, *, limit: int = 50, before: str | None = None, events: list[str] | None = None,
        unmask: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        from userloop.profile import user360

        user_id = user360.resolve(self.project, key)
        return user360.timeline(self.project, user_id, timezone=self.info.timezone, limit=limit, before=before,
                                events=events, unmask=unmask)  # fmt: skip

    def export_fields(self) -> list[dict[str, Any]]:
        from userloop.profile.export import export_fields

        return export_fields(self.project, {t.name for t in tags.listing(self.meta, self.info.id)})

    def export(
        self, segment_id: int, fields: list[str], *, path: Path, fmt: Literal["csv", "parquet"] = "csv",
        unmask: bool = False, limit: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        from userloop.profile.export import export_segment

        row = segments.get(self.meta, self.info.id, segment_id)
        if not history.exists(self.project, row.table):
            raise ValidationError(f"segment {segment_id} has no members yet; refresh it first")
        return export_segment(
            self.project, segments.members(self.project.schema, row), fields, path=path, format=fmt,
            timezone=self.info.timezone, unmask=unmask,
            tags={t.name for t in tags.listing(self.meta, self.info.id)}, limit=limit,
        )  # fmt: skip


def model_features(project: ProjectStore) -> list[Feature]:
    """Each model output column (latest run) as a feature ``model:<model>.<field>``."""
    out = []
    for model, fields in sorted(model_fields(project).items()):
        table = exp.table_(f"model_{model}", db=project.schema, quoted=True, alias="o")
        latest = exp.select(exp.func("max", col("run_date"))).from_(
            exp.table_(f"model_{model}", db=project.schema, quoted=True)
        )
        for field, ftype in sorted(fields.items()):
            source = (
                exp.select(col("user_id", "o"), exp.alias_(col(field, "o"), "value", quoted=True))
                .from_(table.copy())
                .where(exp.EQ(this=col("run_date", "o"), expression=exp.Subquery(this=latest.copy())))
            )
            out.append(Feature(f"model:{model}.{field}", f"{model}.{field}", "model", ftype, source))  # type: ignore[arg-type]
    return out
