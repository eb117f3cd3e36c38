"""Paths: what people do after an event, or before one, step by step (a Sankey diagram).

The shape follows the path/flow analyses of PostHog (Paths insight: start point, end point, steps, exclusions,
"dropped off" node), Mixpanel (Flows) and Sensors (路径分析, session paths). The exact rules used here:

**Events.** Only events in the date range that pass the global ``filters`` are used. ``include`` keeps only those
event names, ``exclude`` drops those names; what remains is the person's *stream*, ordered by ``(time, event_id)``.

**Sessions.** A gap of more than ``session_gap_minutes`` between two consecutive events of the stream starts a new
session. A path never crosses a session boundary, nor the edges of the date range.

**Repeats.** With ``collapse_repeats`` (the default) a run of consecutive identical event names in a session is one
step, and one event stands for it: the run's first going forward, its last going backward (an ``end`` without a
``start``). ``start`` and ``end`` conditions are tested on that event only; the others of the run are gone.

**Which path a session contributes.** Each session contributes at most one path, from its *anchor*:

- neither ``start`` nor ``end``: the anchor is the session's first event; the path is the anchor and the next
  ``steps − 1`` steps (``direction: "forward"``);
- ``start``: the anchor is the session's first event matching ``start``; the path goes forward from it;
- ``end`` only: the anchor is the session's first event matching ``end``; the path is the anchor and the ``steps − 1``
  steps before it, in time order (``direction: "backward"``; node steps are 0 at the anchor, −1, −2 … before it);
- both: forward from the first ``start`` event up to the first later step (step ≥ 1) whose event matches ``end``; a
  session whose ``end`` does not come within ``steps`` steps contributes no path.

A forward path shorter than ``steps`` (its session ended) gets a pseudo node ``$end`` after its last step, a
backward one a pseudo node ``$start`` before its first step (the session began there). Paths with both ``start`` and
``end`` are complete by definition and get no pseudo node.

**Counting.** A node is (step, event); a link is (step, source event, target event). ``users`` counts distinct
people (a person is counted once even if several of their sessions pass there), ``events`` counts paths (sessions).
``links`` are the ``top`` links with most users (ties: more paths, then step, source, target names); ``nodes`` are
the nodes those links touch, with their full counts; ``paths`` are the ``top_paths`` most common complete paths by
people (ties: more sessions, then the event names in order).

**After a funnel drop-off** (``after_funnel: {"funnel": <funnel definition>, "step": k}``, ordered funnels only).
The people whose depth in the funnel is exactly ``k`` (they reached step ``k`` and no later step; ``funnel_levels``
of :mod:`userloop.query.kinds.funnel` gives each one's depth and the time of the step-``k`` event of their chosen
attempt). Each contributes one path, forward from their step event: the first event of the stream at that time
matching step ``k`` (ties by ``event_id``), or with repeats collapsed the run holding it; a person whose step event
is not in the stream (the paths' filters drop it) has no path. The funnel's date range applies (the paths' own
``date_range`` must be left out): the stream covers it plus the funnel's window, rounded up to whole days. ``end``
may be given (paths from the drop-off up to that event, as with ``start`` and ``end``); ``start`` may not.

``partial: true`` says the stream's days (the date range, or the funnel's extended by its window) reach into today,
a day still running (:mod:`userloop.query.periods`): paths near its end may not be over yet.

SQL shape: one scan of events; one window pass in ``(time, event_id)`` order (position, session boundaries,
neighbours' names: enough to drop repeats), one over the collapsed stream in position order that gathers each row's
``steps − 1`` neighbours with ``lead``/``lag`` and finds each session's anchor with a running maximum; then each
anchor's path is a list slice, and nodes, links and paths are hash aggregates over the paths. No self-join, no
per-person loop; after a funnel, the funnel's statement gives the dropped people, hash-joined to the scan.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import Field, model_validator
from sqlglot import exp

from userloop.query.compile import Context, and_, col, sql
from userloop.query.kinds.base import Analysis, Frame, Result
from userloop.query.kinds.funnel import FunnelQuery, funnel_levels
from userloop.query.periods import running
from userloop.query.spec import ANY_EVENT, EventRef, Name, Spec

#: Pseudo nodes: a forward path that ended before ``steps``, a backward path whose session began before ``steps``.
END = "$end"
START = "$start"

Direction = Literal["forward", "backward"]


class AfterFunnel(Spec):
    """People whose deepest step of ``funnel`` is ``step``: they reached it and no later step."""

    funnel: FunnelQuery
    step: int = Field(ge=1, description="1-based; paths start at the step's event in the person's chosen attempt.")

    @model_validator(mode="after")
    def _a_step_people_can_drop_after(self) -> AfterFunnel:
        n = len(self.funnel.steps)
        if self.step >= n:
            raise ValueError(f"step must be below the funnel's last step ({n}): nobody drops off after the last one")
        if self.funnel.order == "any":
            raise ValueError("paths after a drop-off need an ordered funnel ('sequential' or 'strict')")
        return self

    @property
    def ref(self) -> EventRef:
        return self.funnel.steps[self.step - 1]


class PathsQuery(Analysis):
    """Where people go from an event (``start``), or how they reach one (``end``), within a session."""

    kind: Literal["paths"] = "paths"
    start: EventRef | None = Field(None, description="Paths begin at the first such event of each session.")
    end: EventRef | None = Field(None, description="Paths end at the first such event of each session.")
    steps: int = Field(5, ge=2, le=10, description="Nodes per path, the anchor included.")
    session_gap_minutes: int = Field(30, ge=1, le=24 * 60, description="A longer gap between events splits sessions.")
    exclude: list[Name] = Field(default_factory=list, max_length=100, description="Event names left out of paths.")
    include: list[Name] | None = Field(
        None, min_length=1, max_length=100, description="Only these event names make up paths."
    )
    collapse_repeats: bool = Field(True, description="Consecutive identical events count as one step.")
    top: int = Field(50, ge=1, le=500, description="How many links (transitions) to return, most people first.")
    top_paths: int = Field(20, ge=1, le=200, description="How many complete paths to return, most people first.")
    after_funnel: AfterFunnel | None = Field(None, description="Paths of the people who dropped off after a step.")

    @model_validator(mode="after")
    def _consistent(self) -> PathsQuery:
        both = set(self.exclude) & set(self.include or [])
        if both:
            raise ValueError(f"events {sorted(both)} are both included and excluded; keep each in one list")
        after = self.after_funnel
        if after is not None:
            if self.start is not None:
                raise ValueError("after_funnel sets where paths start; remove 'start'")
            if "date_range" in self.model_fields_set:
                raise ValueError("with after_funnel the funnel's date_range applies; remove the paths' date_range")
        anchors = [("start", self.start), ("end", self.end), ("after_funnel step", after.ref if after else None)]
        for field, ref in anchors:
            if ref is None or ref.event == ANY_EVENT:
                continue
            if ref.event in self.exclude:
                raise ValueError(f"the {field} event {ref.event!r} is excluded; remove it from 'exclude'")
            if self.include is not None and ref.event not in self.include:
                raise ValueError(f"the {field} event {ref.event!r} is not in 'include'; add it there")
        return self

    @property
    def direction(self) -> Direction:
        forward = self.start is not None or self.end is None or self.after_funnel is not None
        return "forward" if forward else "backward"

    def days(self, ctx: Context) -> tuple[date, date]:
        """The local days of the stream: the date range, or the funnel's extended by its window."""
        if self.after_funnel is None:
            return ctx.days(self.date_range)
        funnel = self.after_funnel.funnel
        first, last = ctx.days(funnel.date_range)
        return first, last + timedelta(days=-(-funnel.window.seconds // 86_400))

    # statements ----------------------------------------------------------------------------------------------
    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        first, last = self.days(ctx)
        for name in [*self.exclude, *(self.include or [])]:
            if name not in ctx.event_names:
                ctx.warn(f"event {name!r} has never been seen in this project")
        names = col("event", "e")
        step_cond: list[exp.Expr] = []
        if self.include is not None:
            step_cond.append(exp.In(this=names, expressions=[exp.Literal.string(n) for n in self.include]))
        if self.exclude:
            excluded = exp.In(this=names, expressions=[exp.Literal.string(n) for n in self.exclude])
            step_cond.append(exp.Not(this=excluded))
        where = and_([ctx.time_cond(first, last), ctx.filters_cond(self.filters), *step_cond])
        end = ctx.event_cond(self.end) if self.end is not None else exp.false()
        if self.after_funnel is None:
            start = ctx.event_cond(self.start) if self.start is not None else exp.false()
            return {"paths": self._statement(where, start, end, ctx.table("events"))}
        # the stream of the people who dropped after the step, each with the time of their step event
        source = sql(_DROPPED, events=ctx.table("events"))
        start = exp.and_(ctx.event_cond(self.after_funnel.ref), sql("e.time = e.anchor_time"))
        tree = self._statement(where, start, end, exp.Subquery(this=source))
        drops = sql(
            "SELECT user_id, last_step_time FROM ($levels) AS l WHERE level = $k",
            levels=funnel_levels(ctx, self.after_funnel.funnel),
            k=self.after_funnel.step,
        )
        cte = exp.CTE(this=drops, alias=exp.TableAlias(this=exp.to_identifier("drops")), materialized=True)
        tree.args["with_"].expressions.insert(0, cte)
        return {"paths": tree}

    def _statement(self, where: exp.Expr, start: exp.Expr, end: exp.Expr, source: exp.Expr) -> exp.Expr:
        after = self.after_funnel is not None
        return sql(
            _TEMPLATE,
            events=source,
            anchor_time=col("anchor_time", "e") if after else exp.cast(exp.null(), exp.DataType.Type.TIMESTAMP),
            aid=sql(_ANCHOR_ID) if after else exp.cast(exp.null(), exp.DataType.Type.VARCHAR),
            pos=sql(_POSITION) if after else exp.null(),
            where=where,
            start=start,
            end=end,
            gap=exp.Interval(this=exp.Literal.string(str(self.session_gap_minutes * 60)), unit=exp.var("SECOND")),
            kept=self._kept(),
            cand=exp.column("is_start" if self.start is not None else "is_end" if self.end is not None else "new_sess"),
            **self._neighbours(),
            **self._cut(),
            first_step=sql("1 - len(disp)") if self.direction == "backward" else exp.Literal.number(0),
            top=self.top,
            top_paths=self.top_paths,
        )

    def _kept(self) -> exp.Expr:
        """Which rows of the stream stay when repeats collapse: a run's first going forward, its last backward."""
        if not self.collapse_repeats:
            return exp.true()
        if self.direction == "backward":
            return sql("NOT coalesce(NOT sess_last AND next_name = name, FALSE)")
        return sql("NOT coalesce(NOT new_sess AND prev_name = name, FALSE)")

    def _neighbours(self) -> dict[str, exp.Expr]:
        """``around``: the anchor and its ``steps − 1`` neighbours in time order; ``stops``: for each neighbour,
        whether the session breaks before reaching it (TRUE appended, so the first TRUE is the path's length);
        ``anchor``: whether the row is its session's anchor (see _LATEST_FORWARD), or after a funnel the row that
        stands for the run holding the person's step event."""
        n = self.steps
        if self.direction == "backward":
            lags = [_win("lag", "name", j) for j in range(n - 1, 0, -1)]
            return {
                "around": exp.Array(expressions=[*lags, exp.column("name")]),
                "stops": _flags([_win("lag", "sess_last", j) for j in range(1, n)], default=True, last=True),
                "anchor": sql("cand AND coalesce(($latest) % 2 = 0, TRUE)", latest=sql(_LATEST_BACKWARD)),
            }
        leads = [_win("lead", "name", j) for j in range(1, n)]
        if self.after_funnel is not None:
            anchor = sql("pos = 0 AND coalesce(lead(pos) OVER w, 1) = 1")
        elif self.start is not None:
            anchor = sql("cand AND (new_sess OR coalesce(($latest) % 2 = 0, TRUE))", latest=sql(_LATEST_FORWARD))
        else:
            anchor = exp.column("new_sess")
        return {
            "around": exp.Array(expressions=[exp.column("name"), *leads]),
            "stops": _flags([_win("lead", "new_sess", j) for j in range(1, n)], default=True, last=True),
            "anchor": anchor,
        }

    def _cut(self) -> dict[str, exp.Expr]:
        """``complete``: each anchor's path (event names in time order); ``disp``: the path with its pseudo node;
        ``ends``: with both start and end, which of the next steps match ``end``."""
        n = self.steps
        if self.direction == "forward" and self.end is not None:
            return {
                "ends": _flags([_win("lead", "is_end", j) for j in range(1, n)], default=False, last=None),
                "complete": sql(_BETWEEN),
                "disp": exp.column("names"),
            }
        if self.direction == "backward":
            names = sql("around[$n - len + 1:$n]", n=n)
            disp = sql("CASE WHEN len(names) < $n THEN [$pseudo] || names ELSE names END", n=n, pseudo=START)
        else:
            names = sql("around[1:len]")
            disp = sql("CASE WHEN len(names) < $n THEN names || [$pseudo] ELSE names END", n=n, pseudo=END)
        return {
            "ends": exp.null(),
            "complete": sql("SELECT user_id, $names AS names FROM anchors", names=names),
            "disp": disp,
        }

    # shaping -------------------------------------------------------------------------------------------------
    def shape(self, ctx: Context, data: dict[str, Frame]) -> PathsResult:
        frame = data["paths"]
        users = total = 0
        nodes: dict[str, PathNode] = {}
        links: list[PathLink] = []
        paths: list[PathSequence] = []
        for row in frame.dicts():
            part = row["part"]
            if part == "total":
                users, total = int(row["users"]), int(row["n"])
            elif part == "node":
                node = PathNode(
                    id=node_id(row["step"], row["source"]),
                    step=row["step"],
                    event=row["source"],
                    users=row["users"],
                    events=row["n"],
                )
                nodes[node.id] = node
            elif part == "link":
                links.append(
                    PathLink(
                        source=node_id(row["step"], row["source"]),
                        target=node_id(row["step"] + 1, row["target"]),
                        step=row["step"],
                        users=row["users"],
                        events=row["n"],
                    )
                )
            else:
                paths.append(PathSequence(events=list(row["names"]), users=row["users"], count=row["n"]))
        links.sort(key=lambda lk: (-lk.users, -lk.events, lk.step, lk.source, lk.target))
        used = {lk.source for lk in links} | {lk.target for lk in links}
        paths.sort(key=lambda p: (-p.users, -p.count, p.events))
        return PathsResult(
            direction=self.direction,
            steps=self.steps,
            users=users,
            paths_total=total,
            nodes=sorted((n for n in nodes.values() if n.id in used), key=lambda n: (n.step, -n.users, n.event)),
            links=links,
            paths=paths,
            partial=running(self.days(ctx)[1], ctx.today),
        )


def node_id(step: int, event: str) -> str:
    """A node's id in ``nodes``/``links``: its step, a colon and its event name, e.g. ``"2:view"``."""
    return f"{step}:{event}"


class PathNode(Result):
    id: str
    step: int
    event: str
    users: int = Field(description="Distinct people whose path has this event at this step.")
    events: int = Field(description="Paths (sessions) with this event at this step.")


class PathLink(Result):
    source: str
    target: str
    step: int = Field(description="The source node's step.")
    users: int = Field(description="Distinct people who made this transition at this step.")
    events: int = Field(description="Paths (sessions) that made this transition at this step.")


class PathSequence(Result):
    events: list[str]
    users: int
    count: int = Field(description="Sessions that took exactly this path.")


class PathsResult(Result):
    direction: Direction
    steps: int
    users: int = Field(description="People with at least one path.")
    paths_total: int = Field(description="Paths (sessions) in all.")
    nodes: list[PathNode]
    links: list[PathLink]
    paths: list[PathSequence]
    partial: bool = Field(
        default=False, description="The stream's days reach into a period still running (they end today or later)."
    )


def _flags(values: list[exp.Expr], *, default: bool, last: bool | None) -> exp.Expr:
    """``[coalesce(v, default), …]``, with ``last`` appended when given."""
    items = [exp.func("coalesce", v, exp.convert(default)) for v in values]
    return exp.Array(expressions=items if last is None else [*items, exp.convert(last)])


def _win(func: str, column: str, offset: int) -> exp.Expr:
    """``lag``/``lead`` of ``column`` by ``offset`` rows over the window ``w`` of the query it is put in."""
    return exp.Window(this=exp.func(func, exp.column(column), exp.Literal.number(offset)), alias=exp.var("w"))


# The latest earlier row that is an anchor candidate or a session boundary, as 2p+1 (a candidate in the same
# session as the current row) or 2p (a boundary): a candidate is its session's first, the anchor, iff that value is
# even or missing. Going forward a boundary is a session's first row, going backward its last one (the rows the
# collapsed stream is sure to keep in each direction).
_LATEST_FORWARD = """max(2 * p + cand::INTEGER) FILTER (WHERE cand OR new_sess)
  OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"""
_LATEST_BACKWARD = """max(2 * p + (cand AND NOT sess_last)::INTEGER) FILTER (WHERE cand OR sess_last)
  OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"""

# After a funnel: the stream of the people whose depth is the step, with the time of their step event.
_DROPPED = """SELECT x.*, d.last_step_time AS anchor_time FROM $events AS x JOIN drops AS d ON d.user_id = x.user_id"""
# The person's step event: the first event of the stream at that time matching the step (ties by event_id) ...
_ANCHOR_ID = """min(CASE WHEN is_start THEN event_id END)
  OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"""
# ... and whether a row comes at or before it (0) or after it (1); the anchor is the last kept row at or before it.
_POSITION = """CASE WHEN aid IS NULL THEN NULL
  WHEN time < anchor_time OR (time = anchor_time AND event_id <= aid) THEN 0 ELSE 1 END"""

# With both start and end: the path stops at the first later step matching ``end`` inside the session.
_BETWEEN = """SELECT user_id, around[1:e + 1] AS names
FROM (SELECT *, list_position(ends, TRUE) AS e FROM anchors) AS a WHERE e < len"""

# s1: the person's stream in (time, event_id) order: position p, session boundaries, neighbours' names.
# runs: the stream with repeats collapsed (a run keeps its first row going forward, its last going backward).
# s2: over the collapsed stream, each row's neighbours up to steps - 1 away, where the session stops among them
#     (the first TRUE of ``stops`` gives the path's length), and whether the row is its session's anchor.
_TEMPLATE = """
WITH ev AS (
  SELECT e.user_id AS user_id, e.time AS time, e.event_id AS event_id, e.event AS name,
         coalesce($start, FALSE) AS is_start, coalesce($end, FALSE) AS is_end, $anchor_time AS anchor_time
  FROM $events AS e WHERE $where
),
s1 AS (
  SELECT user_id, time, event_id, name, is_start, is_end, anchor_time, $aid AS aid,
         row_number() OVER w AS p,
         coalesce(time - lag(time) OVER w > $gap, TRUE) AS new_sess,
         coalesce(lead(time) OVER w - time > $gap, TRUE) AS sess_last,
         lag(name) OVER w AS prev_name,
         lead(name) OVER w AS next_name
  FROM ev WINDOW w AS (PARTITION BY user_id ORDER BY time, event_id)
),
runs AS (
  SELECT user_id, name, is_end, p, new_sess, sess_last, $cand AS cand, $pos AS pos FROM s1 WHERE $kept
),
s2 AS (
  SELECT user_id, $anchor AS is_anchor, $around AS around, $stops AS stops, $ends AS ends
  FROM runs WINDOW w AS (PARTITION BY user_id ORDER BY p)
),
anchors AS (
  SELECT user_id, around, list_position(stops, TRUE) AS len, ends FROM s2 WHERE is_anchor
),
paths AS MATERIALIZED (
  SELECT user_id, names, disp, $first_step AS first_step
  FROM (SELECT user_id, names, $disp AS disp FROM ($complete) AS c) AS d
),
units AS (
  SELECT user_id, disp, first_step, unnest(range(len(disp))) AS i FROM paths
)
SELECT 'total' AS part, CAST(NULL AS INTEGER) AS step, CAST(NULL AS VARCHAR) AS source,
       CAST(NULL AS VARCHAR) AS target, CAST(NULL AS VARCHAR[]) AS names,
       count(DISTINCT user_id) AS users, count(*) AS n
FROM paths
UNION ALL
(SELECT 'node', first_step + i, disp[i + 1], NULL, NULL, count(DISTINCT user_id), count(*)
 FROM units GROUP BY first_step + i, disp[i + 1])
UNION ALL
(SELECT 'link', first_step + i AS step, disp[i + 1] AS source, disp[i + 2] AS target, NULL,
        count(DISTINCT user_id) AS users, count(*) AS n
 FROM units WHERE i + 1 < len(disp) GROUP BY first_step + i, disp[i + 1], disp[i + 2]
 ORDER BY users DESC, n DESC, step, source, target LIMIT $top)
UNION ALL
(SELECT 'path', NULL, NULL, NULL, names, count(DISTINCT user_id) AS users, count(*) AS n
 FROM paths GROUP BY names ORDER BY users DESC, n DESC, names LIMIT $top_paths)
"""


__all__ = ["PathLink", "PathNode", "PathSequence", "PathsQuery", "PathsResult"]
