"""Profile operations in bulk, set-based.

Within one batch, when every property a person's operations touch is touched by one kind of operation only
(the usual case: sign-up data by ``profile_set``, counters by ``profile_increment``, lists by
``profile_append``), the fold of the operations in record order has a closed form per (person, property):

- set: the last value; set_once: the stored value, else the first value; increment: stored (or 0) + sum;
  append: stored (or []) ++ values in order; unset: NULL; delete (alone): every property NULL.

Those persons are updated with one aggregate and one ``UPDATE``. Persons whose operations mix kinds on one
property (``set`` then ``increment``, or ``delete`` with anything) are returned, to be folded one operation at a
time by :func:`userloop.ingest.profiles.apply_profile_ops`.
"""

from __future__ import annotations

from sqlglot import exp

from userloop.schema.types import PropertyType
from userloop.store.duck import DuckSession, ProjectStore
from userloop.store.sqlbuild import col, name, sql, table

OPS = table(None, "_ul_pops")
AGG = table(None, "_ul_pagg")
#: Where a profile operation without a time sorts: last.
NO_TIME = 9223372036854775807


def apply_simple_ops(
    project: ProjectStore, session: DuckSession, types: dict[str, PropertyType], now_ms: int
) -> exp.Expr:
    """Apply the operations in temp table ``OPS`` (user_id, type, time, _row, _keys, properties…) for persons
    whose operations do not mix kinds on a property; returns a query selecting the other persons' user_ids."""
    mixed = _mixed_persons(list(types))
    aggregates = [sql("bool_or(type = 'profile_delete') AS _delete")]
    for prop, ptype in types.items():
        aggregates += _aggregates(prop, ptype)
    session.execute(
        sql(
            "CREATE OR REPLACE TEMP TABLE $agg AS SELECT user_id, $aggregates "
            "FROM $ops WHERE user_id NOT IN ($mixed) GROUP BY user_id",
            agg=AGG,
            aggregates=aggregates,
            ops=OPS,
            mixed=mixed,
        )
    )
    all_props = list(project.properties("users"))
    sets: list[exp.Expr] = [exp.EQ(this=col(n), expression=_new_value(n, types.get(n))) for n in all_props]
    sets.append(sql("updated_at = make_timestamp(? * 1000)"))
    update = sql(
        "UPDATE $users AS u SET x = 1 FROM $agg AS a WHERE u.user_id = a.user_id", users=project.ref("users"), agg=AGG
    )
    update.set("expressions", sets)
    session.execute(update, [now_ms])
    session.execute(sql("DROP TABLE $agg", agg=AGG))
    return mixed


def _mixed_persons(names: list[str]) -> exp.Expr:
    """The persons whose operations need the one-by-one fold."""
    query = sql(
        "SELECT user_id FROM $ops GROUP BY user_id "
        "HAVING bool_or(type = 'profile_delete') AND bool_or(type <> 'profile_delete')",
        ops=OPS,
    )
    for prop in names:
        touches = sql("$c IS NOT NULL OR (type = 'profile_unset' AND list_contains(_keys, $n))", c=col(prop), n=prop)
        more = sql(
            "SELECT user_id FROM $ops WHERE $touches GROUP BY user_id HAVING count(DISTINCT type) > 1",
            ops=OPS,
            touches=touches,
        )
        query = exp.union(query, more, distinct=True, copy=False)
    return query


def _aggregates(prop: str, ptype: PropertyType) -> list[exp.Expr]:
    c = col(prop)
    out = [
        sql(
            "arg_max($c, [coalesce(time, $last), _row]) FILTER (WHERE type = 'profile_set' AND $c IS NOT NULL) AS $a",
            c=c,
            last=NO_TIME,
            a=name(prop + "__set"),
        ),
        sql(
            "arg_min($c, [coalesce(time, $last), _row]) FILTER (WHERE type = 'profile_set_once' AND $c IS NOT NULL) "
            "AS $a",
            c=c,
            last=NO_TIME,
            a=name(prop + "__once"),
        ),
        sql("bool_or(type = 'profile_unset' AND list_contains(_keys, $n)) AS $a", n=prop, a=name(prop + "__unset")),
    ]
    if ptype is PropertyType.NUMBER:
        out.append(sql("sum($c) FILTER (WHERE type = 'profile_increment') AS $a", c=c, a=name(prop + "__inc")))
    if ptype is PropertyType.LIST:
        out.append(
            sql(
                "flatten(list($c ORDER BY time NULLS LAST, _row) "
                "FILTER (WHERE type = 'profile_append' AND $c IS NOT NULL)) AS $a",
                c=c,
                a=name(prop + "__app"),
            )
        )
    return out


def _new_value(prop: str, ptype: PropertyType | None) -> exp.Expr:
    current = col(prop, "u")
    if ptype is None:  # a property this batch does not carry: only a delete touches it
        return sql("CASE WHEN a._delete THEN NULL ELSE $c END", c=current)

    def a(suffix: str) -> exp.Expr:
        return col(f"{prop}__{suffix}", "a")

    whens = [
        exp.If(this=sql("a._delete"), true=exp.null()),
        exp.If(this=a("unset"), true=exp.null()),
        exp.If(this=sql("$v IS NOT NULL", v=a("set")), true=a("set")),
    ]
    if ptype is PropertyType.NUMBER:
        whens.append(
            exp.If(this=sql("$v IS NOT NULL", v=a("inc")), true=sql("coalesce($c, 0) + $v", c=current, v=a("inc")))
        )
    if ptype is PropertyType.LIST:
        whens.append(
            exp.If(
                this=sql("$v IS NOT NULL", v=a("app")),
                true=sql("list_concat(coalesce($c, []), $v)", c=current, v=a("app")),
            )
        )
    return exp.Case(ifs=whens, default=sql("coalesce($c, $v)", c=current, v=a("once")))
