"""Paths by brute force: sessions, collapsed repeats, one anchor per session, then plain counting.

Written from the rules in the docstring of :mod:`userloop.query.kinds.paths`, without looking at its SQL: walk each
person's events in ``(time, event_id)`` order, cut sessions at long gaps, fold repeats, pick the anchor, cut the
path, count nodes, links and whole paths with sets of people.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tests.query.logs import Ev

Pred = Callable[[Ev], bool]


@dataclass
class PathsOptions:
    first: date
    last: date
    timezone: str
    start: Pred | None = None
    end: Pred | None = None
    steps: int = 5
    gap_minutes: int = 30
    exclude: list[str] = field(default_factory=list)
    include: list[str] | None = None
    collapse: bool = True
    top: int = 50
    top_paths: int = 20
    keep: Pred = lambda ev: True  # the global filters


def sessions(evs: list[Ev], o: PathsOptions) -> dict[str, list[list[Ev]]]:
    """Each person's sessions of shown events, repeats folded as the options say."""
    stream: dict[str, list[Ev]] = defaultdict(list)
    for ev in evs:
        if not o.first <= ev.local_day(o.timezone) <= o.last or not o.keep(ev):
            continue
        if ev.event in o.exclude or (o.include is not None and ev.event not in o.include):
            continue
        stream[ev.person].append(ev)
    out: dict[str, list[list[Ev]]] = {}
    backward = o.end is not None and o.start is None
    for person, mine in stream.items():
        mine.sort(key=lambda e: (e.time_ms, e.event_id))
        split: list[list[Ev]] = []
        for ev in mine:
            if split and ev.time_ms - split[-1][-1].time_ms <= o.gap_minutes * 60_000:
                split[-1].append(ev)
            else:
                split.append([ev])
        out[person] = [fold(s, backward) if o.collapse else s for s in split]
    return out


def fold(session: list[Ev], keep_last: bool) -> list[Ev]:
    """One event per run of equal names: the run's first, or its last when ``keep_last``."""
    out: list[Ev] = []
    for ev in session:
        if out and out[-1].event == ev.event:
            if keep_last:
                out[-1] = ev
            continue
        out.append(ev)
    return out


def session_path(session: list[Ev], o: PathsOptions) -> list[str] | None:
    """The path one session contributes (event names in time order), or None."""
    names = [e.event for e in session]
    if o.start is None and o.end is not None:
        hits = [i for i, e in enumerate(session) if o.end(e)]
        if not hits:
            return None
        i = hits[0]
        return names[max(0, i - o.steps + 1) : i + 1]
    i = 0
    if o.start is not None:
        hits = [k for k, e in enumerate(session) if o.start(e)]
        if not hits:
            return None
        i = hits[0]
    window = names[i : i + o.steps]
    if o.end is None:
        return window
    for j in range(1, len(window)):
        if o.end(session[i + j]):
            return window[: j + 1]
    return None


def reference_paths(evs: list[Ev], o: PathsOptions) -> dict[str, Any]:
    """The same dictionary ``PathsResult`` dumps to."""
    backward = o.end is not None and o.start is None
    both = o.start is not None and o.end is not None
    node_users: dict[tuple[int, str], set[str]] = defaultdict(set)
    node_n: dict[tuple[int, str], int] = defaultdict(int)
    link_users: dict[tuple[int, str, str], set[str]] = defaultdict(set)
    link_n: dict[tuple[int, str, str], int] = defaultdict(int)
    path_users: dict[tuple[str, ...], set[str]] = defaultdict(set)
    path_n: dict[tuple[str, ...], int] = defaultdict(int)
    people: set[str] = set()
    total = 0
    for person, person_sessions in sessions(evs, o).items():
        for s in person_sessions:
            path = session_path(s, o)
            if path is None:
                continue
            people.add(person)
            total += 1
            path_users[tuple(path)].add(person)
            path_n[tuple(path)] += 1
            disp = list(path)
            if len(path) < o.steps and not both:
                disp = [*disp, "$end"]
            first_step = 1 - len(disp) if backward else 0
            for i, name in enumerate(disp):
                node_users[(first_step + i, name)].add(person)
                node_n[(first_step + i, name)] += 1
                if i + 1 < len(disp):
                    key = (first_step + i, name, disp[i + 1])
                    link_users[key].add(person)
                    link_n[key] += 1
    links = sorted(link_users, key=lambda k: (-len(link_users[k]), -link_n[k], k))[: o.top]
    used = {f"{s}:{a}" for s, a, _ in links} | {f"{s + 1}:{b}" for s, _, b in links}
    nodes = [
        {"id": f"{s}:{e}", "step": s, "event": e, "users": len(node_users[(s, e)]), "events": node_n[(s, e)]}
        for s, e in node_users
        if f"{s}:{e}" in used
    ]
    nodes.sort(key=lambda n: (n["step"], -n["users"], n["event"]))
    paths = sorted(path_users, key=lambda p: (-len(path_users[p]), -path_n[p], list(p)))[: o.top_paths]
    return {
        "direction": "backward" if backward else "forward",
        "steps": o.steps,
        "users": len(people),
        "paths_total": total,
        "nodes": nodes,
        "links": [
            {
                "source": f"{s}:{a}",
                "target": f"{s + 1}:{b}",
                "step": s,
                "users": len(link_users[(s, a, b)]),
                "events": link_n[(s, a, b)],
            }
            for s, a, b in links
        ],
        "paths": [{"events": list(p), "users": len(path_users[p]), "count": path_n[p]} for p in paths],
    }
