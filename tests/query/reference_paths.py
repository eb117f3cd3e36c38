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
    #: after a funnel: each dropped person's step time (UTC ms), and the step's condition
    drops: dict[str, int] | None = None
    drop_step: Pred | None = None


def sessions(evs: list[Ev], o: PathsOptions) -> dict[str, list[list[list[Ev]]]]:
    """Each person's sessions of shown events, as runs: a run is one event, or with ``collapse`` the events of a run
    of repeats."""
    stream: dict[str, list[Ev]] = defaultdict(list)
    for ev in evs:
        if not o.first <= ev.local_day(o.timezone) <= o.last or not o.keep(ev):
            continue
        if ev.event in o.exclude or (o.include is not None and ev.event not in o.include):
            continue
        stream[ev.person].append(ev)
    out: dict[str, list[list[list[Ev]]]] = {}
    for person, mine in stream.items():
        mine.sort(key=lambda e: (e.time_ms, e.event_id))
        split: list[list[Ev]] = []
        for ev in mine:
            if split and ev.time_ms - split[-1][-1].time_ms <= o.gap_minutes * 60_000:
                split[-1].append(ev)
            else:
                split.append([ev])
        out[person] = [runs(s) if o.collapse else [[e] for e in s] for s in split]
    return out


def runs(session: list[Ev]) -> list[list[Ev]]:
    """The session cut into runs of equal names."""
    out: list[list[Ev]] = []
    for ev in session:
        if out and out[-1][-1].event == ev.event:
            out[-1].append(ev)
        else:
            out.append([ev])
    return out


def backward(o: PathsOptions) -> bool:
    return o.end is not None and o.start is None and o.drops is None


def session_path(session_runs: list[list[Ev]], o: PathsOptions) -> list[str] | None:
    """The path one session contributes (event names in time order), or None. A run is represented by its first
    event going forward, by its last going backward."""
    session = [r[-1] if backward(o) else r[0] for r in session_runs]
    names = [e.event for e in session]
    if backward(o):
        assert o.end is not None
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
    return forward_path(session, i, o)


def forward_path(session: list[Ev], i: int, o: PathsOptions) -> list[str] | None:
    """The path from the ``i``-th step of a session (representative events), up to an ``end`` if there is one."""
    names = [e.event for e in session]
    window = names[i : i + o.steps]
    if o.end is None:
        return window
    for j in range(1, len(window)):
        if o.end(session[i + j]):
            return window[: j + 1]
    return None


def dropped_path(person_sessions: list[list[list[Ev]]], o: PathsOptions, at_ms: int) -> list[str] | None:
    """After a funnel: the path from the run holding the person's first event at ``at_ms`` that matches the step."""
    assert o.drop_step is not None
    for session_runs in person_sessions:
        for i, run in enumerate(session_runs):
            if any(e.time_ms == at_ms and o.drop_step(e) for e in run):
                return forward_path([r[0] for r in session_runs], i, o)
    return None


def person_paths(person: str, person_sessions: list[list[list[Ev]]], o: PathsOptions) -> list[list[str]]:
    if o.drops is None:
        found = [session_path(s, o) for s in person_sessions]
    elif person in o.drops:
        found = [dropped_path(person_sessions, o, o.drops[person])]
    else:
        found = []
    return [p for p in found if p is not None]


def reference_paths(evs: list[Ev], o: PathsOptions) -> dict[str, Any]:
    """The same dictionary ``PathsResult`` dumps to."""
    back = backward(o)
    complete = o.end is not None and not back  # forward to an end event: no pseudo node
    node_users: dict[tuple[int, str], set[str]] = defaultdict(set)
    node_n: dict[tuple[int, str], int] = defaultdict(int)
    link_users: dict[tuple[int, str, str], set[str]] = defaultdict(set)
    link_n: dict[tuple[int, str, str], int] = defaultdict(int)
    path_users: dict[tuple[str, ...], set[str]] = defaultdict(set)
    path_n: dict[tuple[str, ...], int] = defaultdict(int)
    people: set[str] = set()
    total = 0
    for person, person_sessions in sessions(evs, o).items():
        for path in person_paths(person, person_sessions, o):
            people.add(person)
            total += 1
            path_users[tuple(path)].add(person)
            path_n[tuple(path)] += 1
            disp = list(path)
            if len(path) < o.steps and not complete:
                disp = ["$start", *disp] if back else [*disp, "$end"]
            first_step = 1 - len(disp) if back else 0
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
        "direction": "backward" if back else "forward",
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
