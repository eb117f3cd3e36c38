"""Identity: every id a person is known by maps to one person key.

The model is Sensors Analytics' ID-Mapping. ``distinct_id`` values (anonymous device ids and login ids) share
one namespace, ``"d"``; other identity types (``$identity_mobile``, ``$identity_email``, …) each have their own.

- ``track_signup`` binds an anonymous id (``original_id``) to a login id (``distinct_id``). An anonymous id can
  belong to one login id only; a login id may have many devices.
- ``track_id_bind`` binds every id of its ``identities`` object to one person (typed ids such as a mobile).
- ``track_id_unbind`` detaches ids from their person; later records with them start a new person.

When a binding joins two persons, the younger one is merged into the other: its events, identities and
profile move (in the loader, by one set-based UPDATE per table), so the anonymous history counts as the
logged-in person in every query, whatever order the records arrived in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp

from userloop.store.duck import DuckSession
from userloop.store.sqlbuild import sql

LOGIN = "$identity_login_id"
ANONYMOUS = "$identity_anonymous_id"
DISTINCT_NS = "d"


def namespace(id_type: str) -> str:
    return DISTINCT_NS if id_type in (LOGIN, ANONYMOUS) else id_type


@dataclass(frozen=True)
class BindOp:
    """One identity record: ``kind`` is signup, bind or unbind; ``ids`` are (id_type, value) pairs."""

    row: int
    kind: str
    ids: tuple[tuple[str, str], ...]


@dataclass
class IdentityPlan:
    """What a batch's identity records change: applied by the loader in one transaction."""

    new_ids: list[tuple[str, str, str, int]] = field(default_factory=list)  # ns, type, value, person
    merges: dict[int, int] = field(default_factory=dict)  # merged person → surviving person
    removed: list[tuple[str, str]] = field(default_factory=list)  # ns, value
    new_persons: list[tuple[int, str]] = field(default_factory=list)  # person, first id
    rejects: dict[int, str] = field(default_factory=dict)  # row → reason


class IdentityResolver:
    """Plans identity changes for a batch against the stored mapping (read once, for the ids involved)."""

    def __init__(self, session: DuckSession, identities: exp.Table, next_person: PersonKeys) -> None:
        self.session = session
        self.table = identities
        self.keys = next_person
        self.person: dict[tuple[str, str], int] = {}
        self.login_of: dict[int, str] = {}
        self.plan = IdentityPlan()

    def load(self, ops: list[BindOp]) -> None:
        wanted = {(namespace(t), v) for op in ops for t, v in op.ids}
        if not wanted:
            return
        ns, values = zip(*sorted(wanted), strict=True)
        rows = self.session.fetchall(
            sql(
                "SELECT i.ns, i.id_value, i.user_id FROM $t AS i "
                "JOIN (SELECT unnest(?) AS ns, unnest(?) AS id_value) AS w USING (ns, id_value)",
                t=self.table,
            ),
            [list(ns), list(values)],
        )
        self.person = {(n, v): p for n, v, p in rows}
        persons = sorted(set(self.person.values()))
        if persons:
            logins = self.session.fetchall(
                sql("SELECT user_id, id_value FROM $t WHERE id_type = ? AND list_contains(?, user_id)", t=self.table),
                [LOGIN, persons],
            )
            self.login_of = dict(logins)

    def apply(self, ops: list[BindOp]) -> IdentityPlan:
        self.load(ops)
        for op in ops:
            reason = (
                self._signup(op) if op.kind == "signup" else self._bind(op) if op.kind == "bind" else self._unbind(op)
            )
            if reason:
                self.plan.rejects[op.row] = reason
        return self.plan

    # one record each -------------------------------------------------------------------------------------
    def _signup(self, op: BindOp) -> str | None:
        (_, login), (_, anon) = op.ids
        p_login, p_anon = self._find(LOGIN, login), self._find(ANONYMOUS, anon)
        if p_anon is not None and self.login_of.get(p_anon, login) != login:
            return (
                f"anonymous id {anon!r} is already bound to login id {self.login_of[p_anon]!r}; "
                "an anonymous id can be bound to one login id only"
            )
        if p_login is None and p_anon is None:
            person = self._new_person(login)
            self._add(LOGIN, login, person)
            self._add(ANONYMOUS, anon, person)
        elif p_login is None:
            assert p_anon is not None
            self._add(LOGIN, login, p_anon)
        elif p_anon is None:
            self._add(ANONYMOUS, anon, p_login)
        elif p_anon != p_login:
            self._merge(p_anon, into=p_login)
        return None

    def _bind(self, op: BindOp) -> str | None:
        found = {(t, v): self._find(t, v) for t, v in op.ids}
        logins = {self.login_of.get(p) for p in found.values() if p is not None} - {None}
        given_login = next((v for t, v in op.ids if t == LOGIN), None)
        if given_login is not None:
            logins.add(given_login)
        if len(logins) > 1:
            return f"these identities belong to different login ids ({', '.join(sorted(map(str, logins)))}); not bound"
        persons = sorted({p for p in found.values() if p is not None})
        target = persons[0] if persons else self._new_person(op.ids[0][1])
        for other in persons[1:]:
            self._merge(other, into=target)
        for (t, v), p in found.items():
            if p is None:
                self._add(t, v, target)
        return None

    def _unbind(self, op: BindOp) -> str | None:
        missing = [v for t, v in op.ids if self._find(t, v) is None]
        if missing:
            return f"cannot unbind unknown identity {missing[0]!r}"
        for t, v in op.ids:
            key = (namespace(t), v)
            person = self.person.pop(key)
            if self.login_of.get(person) == v:
                del self.login_of[person]
            self.plan.removed.append(key)
        return None

    # state ----------------------------------------------------------------------------------------------
    def _find(self, id_type: str, value: str) -> int | None:
        person = self.person.get((namespace(id_type), value))
        return None if person is None else self._final(person)

    def _final(self, person: int) -> int:
        while person in self.plan.merges:
            person = self.plan.merges[person]
        return person

    def _new_person(self, first_id: str) -> int:
        person = self.keys.take()
        self.plan.new_persons.append((person, first_id))
        return person

    def _add(self, id_type: str, value: str, person: int) -> None:
        ns = namespace(id_type)
        self.person[(ns, value)] = person
        self.plan.new_ids.append((ns, id_type, value, person))
        if id_type == LOGIN:
            self.login_of[person] = value

    def _merge(self, person: int, *, into: int) -> None:
        self.plan.merges[person] = into
        if person in self.login_of and into not in self.login_of:
            self.login_of[into] = self.login_of[person]
        self.login_of.pop(person, None)


class PersonKeys:
    """Hands out person keys one at a time from blocks reserved with ``reserve(n) -> first key``."""

    def __init__(self, reserve: Callable[[int], int]) -> None:
        self.reserve = reserve
        self.next = self.end = 0

    def take(self) -> int:
        if self.next == self.end:
            self.next = self.reserve(64)
            self.end = self.next + 64
        self.next += 1
        return self.next - 1


def final_merges(merges: dict[int, int]) -> dict[int, int]:
    """Resolve merge chains (a→b, b→c) to their end (a→c, b→c)."""
    out = {}
    for start in merges:
        end = start
        while end in merges:
            end = merges[end]
        out[start] = end
    return out
