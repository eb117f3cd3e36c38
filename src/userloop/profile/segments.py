"""Segments (人群): saved audiences, their definitions in the metadata DB and their membership with history.

Three kinds:

- ``rule``: a rule in the segment language (:mod:`userloop.profile.rules`), evaluated on demand and daily;
- ``static``: a fixed list of people — uploaded ids, or the user list of an analysis (a funnel's dropped users);
- ``lookalike``: the top N people most like a seed segment (:mod:`userloop.profile.lookalike`), static once made.

Membership lives in the project's DuckDB schema as a history table ``segment_<id>``
(:mod:`userloop.profile.history`): ``valid_from`` is when a person entered, ``valid_to`` when they left. The
definitions table is :class:`userloop.store.tables.Segment`.

Estimating, saving or changing a rule takes the caller's ``pii`` right: without it a condition on a phone number
or an e-mail address is refused (``pii_required``), so a size estimate is no oracle for a guessed value.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any, Literal

import orjson
import pyarrow as pa
from sqlalchemy import select
from sqlglot import exp

from userloop.core.clock import today_in, utcnow
from userloop.core.errors import NotFoundError, UserloopError, ValidationError
from userloop.profile import history
from userloop.profile.groups import GroupReader
from userloop.profile.ids import resolve_ids
from userloop.profile.rules import conditions, parse_rule, referenced_segments, referenced_tags
from userloop.profile.rulesql import RuleContext, TagInfo, compile_rule, model_fields
from userloop.query.engine import Engine
from userloop.query.kinds import parse_definition
from userloop.store.backend import deadline
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project
from userloop.store.sqlbuild import col, sql
from userloop.store.tables import Segment

SegmentKind = Literal["rule", "static", "lookalike"]


def listing(meta: MetaStore, project_id: int) -> list[Segment]:
    with meta.session() as s:
        return list(s.scalars(select(Segment).where(Segment.project_id == project_id).order_by(Segment.id)))


def get(meta: MetaStore, project_id: int, segment_id: int) -> Segment:
    with meta.session() as s:
        row = s.get(Segment, segment_id)
    if row is None or row.project_id != project_id:
        raise NotFoundError(f"no segment {segment_id} in this project")
    return row


# the rule context ----------------------------------------------------------------------------------------------
def rule_context(
    project: ProjectStore,
    meta: MetaStore,
    info: Project,
    today: date | None = None,
    *,
    rule: Any = None,
    pii: bool = True,
) -> RuleContext:
    """What compiling a rule needs: the project's registry and clock, its tags, model outputs and segments.

    With ``rule``, only what it refers to is looked up (a size estimate should not pay for reading every model
    table's columns), and a tag or segment it uses that has never been computed is a clear error."""
    from userloop.profile.tags import listing as tag_listing
    from userloop.profile.tags import tag_of

    wanted_tags = referenced_tags(rule) if rule is not None else None
    wanted_segments = referenced_segments(rule) if rule is not None else None
    uses_models = rule is None or any(getattr(c, "type", None) == "model" for _path, c in conditions(rule))
    tags = {}
    for row in tag_listing(meta, info.id):
        if wanted_tags is not None and row.name in wanted_tags and not history.exists(project, row.table):
            raise ValidationError(
                f"tag {row.name!r} has not been computed yet; run `userloop tags materialise --name {row.name}` first",
                code="tag_not_computed",
            )
        tags[row.name] = TagInfo(row.type, tag_of(row).order)  # type: ignore[arg-type]
    segs = set()
    for seg in listing(meta, info.id):
        if wanted_segments is not None and seg.id not in wanted_segments:
            segs.add(seg.id)  # not used by this rule: its table is never read
        elif history.exists(project, seg.table):
            segs.add(seg.id)
        elif wanted_segments is not None:
            raise ValidationError(f"segment {seg.id} has no members yet; refresh it first", code="segment_not_computed")
    return RuleContext(
        ctx=Engine(project, info.timezone, pii=pii).context(today),
        tags=tags,
        models=model_fields(project) if uses_models else {},
        segments=segs,
    )


def members(schema: str, segment: Segment, on: date | None = None) -> exp.Select:
    """``SELECT user_id`` of the segment's members now (or on ``on``)."""
    return exp.select(col("user_id", "m")).from_(_sub(history.values_on(schema, segment.table, on), "m"))


def _sub(tree: exp.Expr, alias: str) -> exp.Subquery:
    return exp.Subquery(this=tree, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def _rule_of(doc: Any) -> Any:
    return parse_rule(doc)


def compile_members(
    project: ProjectStore,
    meta: MetaStore,
    info: Project,
    rule: dict[str, Any],
    *,
    today: date | None = None,
    pii: bool = True,
) -> tuple[exp.Select, list[str]]:
    """The rule compiled to ``SELECT user_id …`` and the compiler's warnings (``pii``: see the module's doc)."""
    parsed = _rule_of(rule)
    rctx = rule_context(project, meta, info, today, rule=parsed, pii=pii)
    tree = compile_rule(parsed, rctx)
    return tree, list(rctx.ctx.warnings)


# sizes --------------------------------------------------------------------------------------------------------
def estimate(
    project: ProjectStore,
    meta: MetaStore,
    info: Project,
    rule: dict[str, Any],
    *,
    today: date | None = None,
    timeout_s: float = 30.0,
    pii: bool = True,
) -> dict[str, Any]:
    """How many people the rule selects now, out of how many, before the segment is saved. Without ``pii`` a
    condition on personal data is refused (a size of 1 or 0 would confirm a guessed phone number)."""
    started = time.perf_counter()
    tree, warnings = compile_members(project, meta, info, rule, today=today, pii=pii)
    count = exp.select(exp.func("count", exp.Star())).from_(_sub(tree, "s"))
    total = exp.select(exp.func("count", exp.Star())).from_(exp.table_("users", db=project.schema, quoted=True))
    with GroupReader(project, timeout_s) as reader:  # a private session, interrupted at the deadline
        size, everyone = int(reader.rows(count)[0][0]), int(reader.rows(total)[0][0])
    return {
        "size": size,
        "total": everyone,
        "share": round(size / everyone, 6) if everyone else 0.0,
        "warnings": warnings,
        "took_ms": round((time.perf_counter() - started) * 1000, 2),
    }


# saving --------------------------------------------------------------------------------------------------------
def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError("a segment needs a name of 1 to 200 characters")
    return name


def _check_cycles(meta: MetaStore, info: Project, segment_id: int | None, rule: Any) -> None:
    """Refuse a rule that refers (directly or through other segments) to the segment it defines."""
    if segment_id is None:
        return
    rules = {s.id: s for s in listing(meta, info.id) if s.kind == "rule"}
    todo, seen = list(referenced_segments(rule)), set()
    while todo:
        other = todo.pop()
        if other == segment_id:
            raise ValidationError(f"segment {segment_id} would refer to itself through its rule", code="segment_cycle")
        if other in seen or other not in rules:
            continue
        seen.add(other)
        todo.extend(referenced_segments(_rule_of(orjson.loads(rules[other].definition))))


def save(
    meta: MetaStore,
    project: ProjectStore,
    info: Project,
    *,
    name: str,
    rule: dict[str, Any],
    description: str = "",
    refresh: str = "daily",
    pii: bool = True,
) -> Segment:
    """Save a rule segment (the rule is compiled first, so a saved segment always runs)."""
    _check_refresh(refresh)
    compile_members(project, meta, info, rule, pii=pii)
    return _insert(meta, info, name=name, kind="rule", definition=rule, description=description, refresh=refresh)


def _check_refresh(refresh: str) -> None:
    if refresh not in ("daily", "manual"):
        raise ValidationError("refresh is 'daily' (by the scheduler) or 'manual'")


def _insert(
    meta: MetaStore,
    info: Project,
    *,
    name: str,
    kind: str,
    definition: dict[str, Any],
    description: str = "",
    refresh: str = "manual",
) -> Segment:
    with meta.session.begin() as s:
        row = Segment(
            project_id=info.id,
            name=_check_name(name),
            kind=kind,
            description=description,
            definition=orjson.dumps(definition).decode(),
            refresh=refresh,
        )
        s.add(row)
    return row


def update(
    meta: MetaStore,
    project: ProjectStore,
    info: Project,
    segment_id: int,
    *,
    name: str | None = None,
    rule: dict[str, Any] | None = None,
    description: str | None = None,
    refresh: str | None = None,
    pii: bool = True,
) -> Segment:
    """Change a segment; a new rule is compiled and checked for cycles, and the membership history goes on."""
    row = get(meta, info.id, segment_id)
    if rule is not None:
        if row.kind != "rule":
            raise ValidationError(f"segment {segment_id} is {row.kind}; only rule segments have a rule")
        compile_members(project, meta, info, rule, pii=pii)
        _check_cycles(meta, info, segment_id, _rule_of(rule))
    if refresh is not None:
        _check_refresh(refresh)
    with meta.session.begin() as s:
        stored = s.get(Segment, segment_id)
        assert stored is not None
        if name is not None:
            stored.name = _check_name(name)
        if rule is not None:
            stored.definition = orjson.dumps(rule).decode()
        if description is not None:
            stored.description = description
        if refresh is not None:
            stored.refresh = refresh
        stored.updated_at = utcnow()
    return get(meta, info.id, segment_id)


def delete(meta: MetaStore, project: ProjectStore, info: Project, segment_id: int) -> None:
    """Delete a segment and its membership history; refused while another segment's rule refers to it."""
    row = get(meta, info.id, segment_id)
    users = [
        s.name
        for s in listing(meta, info.id)
        if s.kind == "rule"
        and s.id != segment_id
        and segment_id in referenced_segments(_rule_of(orjson.loads(s.definition)))
    ]
    if users:
        raise ValidationError(
            f"segment {segment_id} is used by {', '.join(users)}; change those first", code="segment_in_use"
        )
    history.reset(project, row.table)
    with meta.session.begin() as s:
        stored = s.get(Segment, segment_id)
        if stored is not None:
            s.delete(stored)


# membership ----------------------------------------------------------------------------------------------------
def refresh(
    meta: MetaStore,
    project: ProjectStore,
    info: Project,
    segment_id: int,
    *,
    run_date: date | None = None,
    timeout_s: float = 600.0,
) -> history.RunStats:
    """Recompute a rule segment's members as of the end of local day ``run_date`` (default: today so far) and
    record who entered and who left. Static and look-alike segments keep their people."""
    row = get(meta, info.id, segment_id)
    if row.kind != "rule":
        raise ValidationError(f"segment {segment_id} is {row.kind}: its people were fixed when it was made")
    day = run_date or today_in(info.timezone)
    tree, warnings = compile_members(project, meta, info, orjson.loads(row.definition), today=day)
    snapshot = exp.select(col("user_id", "r"), exp.alias_(exp.true(), "value")).from_(_sub(tree, "r"))
    stats = _apply_members(project, row, day, snapshot, {"warnings": warnings}, timeout_s=timeout_s)
    _record_size(meta, segment_id, stats.users)
    return stats


def _apply_members(
    project: ProjectStore,
    row: Segment,
    day: date,
    snapshot: exp.Expr | pa.Table,
    stats: dict[str, Any],
    *,
    timeout_s: float = 600.0,
) -> history.RunStats:
    with deadline(timeout_s, what="the segment") as watch:
        return history.apply_snapshot(project, row.table, "BOOLEAN", day, snapshot, stats=stats, watch=watch)


def _record_size(meta: MetaStore, segment_id: int, size: int) -> None:
    with meta.session.begin() as s:
        stored = s.get(Segment, segment_id)
        if stored is not None:
            stored.size, stored.refreshed_at = size, utcnow()


def refresh_all(meta: MetaStore, project: ProjectStore, info: Project, run_date: date) -> dict[str, Any]:
    """Refresh every daily rule segment, each after the segments its rule refers to."""
    rows = {s.id: s for s in listing(meta, info.id) if s.kind == "rule" and s.refresh == "daily"}
    deps = {i: referenced_segments(_rule_of(orjson.loads(r.definition))) & set(rows) for i, r in rows.items()}
    done: dict[str, Any] = {}
    order: list[int] = []
    while len(order) < len(rows):
        ready = [i for i in sorted(rows) if i not in order and deps[i] <= set(order)]
        if not ready:  # a cycle slipped in (cannot be saved, but be safe): run the rest in id order
            ready = [i for i in sorted(rows) if i not in order]
        order.extend(ready)
    for i in order:
        try:
            done[str(i)] = refresh(meta, project, info, i, run_date=run_date).users
        except UserloopError as exc:
            done[str(i)] = f"error: {exc.code}: {exc.message}"
    return done


def create_static(
    meta: MetaStore,
    project: ProjectStore,
    info: Project,
    *,
    name: str,
    ids: list[str],
    id_kind: str = "distinct_id",
    description: str = "",
) -> tuple[Segment, list[dict[str, Any]]]:
    """A segment of the people behind ``ids`` (person keys, or any id a person is known by). Unknown ids are
    returned as rejects with their position; the people found become the members."""
    if id_kind not in ("user_id", "distinct_id"):
        raise ValidationError("id_kind is 'user_id' (person keys) or 'distinct_id' (any id a person is known by)")
    if not ids:
        raise ValidationError("a static segment needs at least one id")
    if len(ids) > MAX_STATIC_IDS:
        raise ValidationError(f"at most {MAX_STATIC_IDS:,} ids per static segment")
    found, rejects = _resolve_ids(project, ids, id_kind)
    if not found:
        raise ValidationError("none of the ids is a known person", code="segment_empty")
    row = _insert(
        meta,
        info,
        name=name,
        kind="static",
        description=description,
        definition={"source": "ids", "id_kind": id_kind, "ids": len(ids), "rejected": len(rejects)},
    )
    _set_people(meta, project, info, row, sorted(found))
    return get(meta, info.id, row.id), rejects


MAX_STATIC_IDS = 5_000_000


def _resolve_ids(project: ProjectStore, ids: list[str], id_kind: str) -> tuple[set[int], list[dict[str, Any]]]:
    people = resolve_ids(project, list(enumerate(ids, start=1)), id_kind)
    rejects = [{"row": row, "id": ident, "reason": "no person has this id"}
               for row, ident in enumerate(ids, start=1) if row not in people]  # fmt: skip
    return set(people.values()), rejects[:1000]


def _set_people(meta: MetaStore, project: ProjectStore, info: Project, row: Segment, people: list[int]) -> None:
    day = today_in(info.timezone)
    table = pa.table({"user_id": pa.array(people, pa.int64()), "value": pa.array([True] * len(people), pa.bool_())})
    stats = _apply_members(project, row, day, table, {"source": row.kind})
    _record_size(meta, row.id, stats.users)


def create_from_analysis(
    meta: MetaStore,
    project: ProjectStore,
    info: Project,
    *,
    name: str,
    definition: dict[str, Any],
    description: str = "",
    limit: int = MAX_STATIC_IDS,
) -> Segment:
    """A static segment of an analysis' people: a funnel step's converted or dropped people, a retention cell's,
    a lifecycle bucket's — whatever the definition's ``people`` asks for, without its listing limit."""
    analysis = parse_definition(definition)
    people = getattr(analysis, "people", None)
    if people is None:
        raise ValidationError(
            f"a {analysis.kind} definition with a 'people' request is needed (funnel, retention, "
            'lifecycle); add e.g. "people": {"step": 3, "status": "dropped"}'
        )
    unbounded = analysis.model_copy(update={"people": people.model_copy(update={"limit": limit})})
    result = Engine(project, info.timezone).run(unbounded, use_cache=False, timeout_s=600)
    found = (result.result.get("people") or {}).get("user_ids") or []
    if not found:
        raise ValidationError("the analysis lists no people for that request", code="segment_empty")
    row = _insert(
        meta,
        info,
        name=name,
        kind="static",
        description=description,
        definition={"source": "analysis", "analysis": definition},
    )
    _set_people(meta, project, info, row, sorted(int(u) for u in found))
    return get(meta, info.id, row.id)


def create_people(
    meta: MetaStore,
    project: ProjectStore,
    info: Project,
    *,
    name: str,
    kind: str,
    people: list[int],
    definition: dict[str, Any],
    description: str = "",
) -> Segment:
    """A segment of the given person keys (look-alikes use it)."""
    row = _insert(meta, info, name=name, kind=kind, description=description, definition=definition)
    _set_people(meta, project, info, row, sorted(set(people)))
    return get(meta, info.id, row.id)


def changes(project: ProjectStore, segment: Segment, day: date) -> dict[str, list[int]]:
    """Who entered and who left the segment in the run of ``day`` (for journeys to trigger on)."""
    if not history.exists(project, segment.table):
        return {"entered": [], "left": []}
    members = project.ref(segment.table)
    entered = project.fetchall(sql("SELECT user_id FROM $t WHERE valid_from = ? ORDER BY user_id", t=members), [day])
    left = project.fetchall(sql("SELECT user_id FROM $t WHERE valid_to = ? ORDER BY user_id", t=members), [day])
    return {"entered": [int(r[0]) for r in entered], "left": [int(r[0]) for r in left]}


def require_rule_pii(project: ProjectStore, meta: MetaStore, info: Project, rule: Any, *, pii: bool) -> None:
    """Refuse ``rule`` (``pii_required``) when it has a condition on personal data and the caller lacks ``pii``;
    for faces that save or compare through :class:`userloop.profile.platform.Profiles`, before they do."""
    if not pii:
        compile_members(project, meta, info, rule, pii=False)


def require_analysis_pii(project: ProjectStore, info: Project, definition: dict[str, Any], *, pii: bool) -> None:
    """Refuse an analysis whose people would become a segment (``pii_required``) when it filters on personal
    data and the caller lacks ``pii``: the segment's size would confirm a guessed value."""
    if not pii:
        Engine(project, info.timezone, pii=False).compile(definition)
