"""Writing identity changes: a batch's identity plan into the tables, and records into identity operations.

The decisions are :mod:`userloop.ingest.identity`'s (which ids join which person); this module only carries them
out, set-based, inside the loader's transaction.
"""

from __future__ import annotations

import orjson
import pyarrow as pa
from sqlglot import exp

from userloop.ingest.identity import ANONYMOUS, LOGIN, BindOp, IdentityPlan, final_merges
from userloop.store.duck import DuckSession, ProjectStore
from userloop.store.sqlbuild import col, sql


def apply_plan(project: ProjectStore, session: DuckSession, plan: IdentityPlan, now_ms: int) -> None:
    """Write a batch's identity plan: removed ids, new persons, merges, new ids (``session`` is in the loader's
    transaction)."""
    identities = project.ref("identities")
    if plan.removed:
        ns, values = zip(*plan.removed, strict=True)
        session.execute(
            sql("DELETE FROM $t WHERE (ns, id_value) IN (SELECT (unnest(?), unnest(?)))", t=identities),
            [list(ns), list(values)],
        )
    if plan.new_persons:
        persons = pa.table({"user_id": [p for p, _ in plan.new_persons], "first_id": [f for _, f in plan.new_persons]})
        session.register("_ul_np", persons)
        session.execute(
            sql(
                "INSERT INTO $t (user_id, first_id, created_at, updated_at) "
                "SELECT user_id, first_id, make_timestamp(? * 1000), make_timestamp(? * 1000) FROM _ul_np",
                t=project.ref("users"),
            ),
            [now_ms, now_ms],
        )
        session.unregister("_ul_np")
    merges = final_merges(plan.merges)
    if merges:
        merge_persons(project, session, merges)
    if plan.new_ids:
        ns, types, values, persons_ = zip(*plan.new_ids, strict=True)
        final = [merges.get(p, p) for p in persons_]
        tab = pa.table({"ns": ns, "id_type": types, "id_value": values, "user_id": final})
        session.register("_ul_ni", tab)
        session.execute(
            sql(
                "INSERT INTO $t SELECT ns, id_type, id_value, user_id, make_timestamp(? * 1000) FROM _ul_ni",
                t=identities,
            ),
            [now_ms],
        )
        session.unregister("_ul_ni")


def merge_persons(project: ProjectStore, session: DuckSession, merges: dict[int, int]) -> None:
    """Move merged persons' events, identities and profile values to the surviving person."""
    session.register("_ul_m", pa.table({"old": list(merges), "new": list(merges.values())}))
    for name in ("events", "identities"):
        target = project.ref(name)
        session.execute(
            sql(
                "UPDATE $t SET user_id = m.new FROM _ul_m AS m WHERE $user = m.old", t=target, user=col("user_id", name)
            )
        )
    props = list(project.properties("users"))
    # Several persons can merge into one in a batch (one login signing up from several devices at once). An
    # UPDATE … FROM with several matching rows applies just one of them, so the merged persons are folded into
    # one row per survivor first: earliest first_seen/created_at, latest last_seen, and for each profile
    # property the value of the earliest-created merged person that has one.
    folded = [
        sql(
            "arg_min($o, o.user_id) FILTER (WHERE $o IS NOT NULL) AS $p",
            o=col(p, "o"),
            p=exp.to_identifier(p, quoted=True),
        )
        for p in props
    ]
    folded += [sql("min(o.first_seen) AS first_seen"), sql("max(o.last_seen) AS last_seen")]
    folded.append(sql("min(o.created_at) AS created_at"))
    sets: list[exp.Expr] = [
        exp.EQ(this=col(p), expression=sql("coalesce($u, $o)", u=col(p, "u"), o=col(p, "o"))) for p in props
    ]
    sets += [
        sql("first_seen = least(u.first_seen, o.first_seen)"),
        sql("last_seen = greatest(u.last_seen, o.last_seen)"),
        sql("created_at = least(u.created_at, o.created_at)"),
    ]
    users = project.ref("users")
    update = sql(
        """UPDATE $users AS u SET x = 1
            FROM (SELECT m.new AS _ul_survivor, $folded FROM _ul_m AS m JOIN $users AS o ON o.user_id = m.old
                  GROUP BY m.new) AS o
            WHERE u.user_id = o._ul_survivor""",
        users=users,
        folded=folded,
    )
    update.set("expressions", sets)
    session.execute(update)
    session.execute(sql("DELETE FROM $users WHERE user_id IN (SELECT old FROM _ul_m)", users=users))
    session.unregister("_ul_m")


def bind_op(
    row: int,
    rtype: str,
    distinct_id: str | None,
    is_login: bool | None,
    original_id: str | None,
    identities: str | None,
) -> BindOp | None:
    """The identity operation of a signup, bind or unbind record."""
    if rtype == "track_signup":
        assert distinct_id is not None and original_id is not None
        return BindOp(row, "signup", ((LOGIN, distinct_id), (ANONYMOUS, original_id)))
    ids: list[tuple[str, str]] = []
    if identities:
        parsed = orjson.loads(identities)
        if isinstance(parsed, dict):
            ids = [(str(k), str(v)) for k, v in parsed.items() if v is not None]
    if distinct_id and distinct_id not in {v for _, v in ids} and rtype == "track_id_bind":
        ids.insert(0, (LOGIN if is_login else ANONYMOUS, distinct_id))
    if not ids:
        return None
    return BindOp(row, "bind" if rtype == "track_id_bind" else "unbind", tuple(ids))
