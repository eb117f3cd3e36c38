"""Writing identity changes: a batch's identity plan into the tables, and records into identity operations.

The decisions are :mod:`userloop.ingest.identity`'s (which ids join which person); this module only carries them
out, set-based, inside the loader's transaction.
"""

from __future__ import annotations

import orjson
import pyarrow as pa

from userloop.ingest.identity import ANONYMOUS, LOGIN, BindOp, IdentityPlan, final_merges
from userloop.store.duck import ProjectStore
from userloop.store.sqltext import ident


def apply_plan(project: ProjectStore, plan: IdentityPlan, now_ms: int) -> None:
    """Write a batch's identity plan: removed ids, new persons, merges, new ids (the caller holds a transaction)."""
    con = project.con
    t = project.table
    ts = f"make_timestamp({now_ms} * 1000)"
    if plan.removed:
        ns, values = zip(*plan.removed, strict=True)
        con.execute(
            f"DELETE FROM {t('identities')} WHERE (ns, id_value) IN (SELECT (unnest(?), unnest(?)))",
            [list(ns), list(values)],
        )
    if plan.new_persons:
        persons = pa.table({"user_id": [p for p, _ in plan.new_persons], "first_id": [f for _, f in plan.new_persons]})
        con.register("_ul_np", persons)
        con.execute(
            f"INSERT INTO {t('users')} (user_id, first_id, created_at, updated_at) "
            f"SELECT user_id, first_id, {ts}, {ts} FROM _ul_np"
        )
        con.unregister("_ul_np")
    merges = final_merges(plan.merges)
    if merges:
        merge_persons(project, merges)
    if plan.new_ids:
        ns, types, values, persons_ = zip(*plan.new_ids, strict=True)
        final = [merges.get(p, p) for p in persons_]
        tab = pa.table({"ns": ns, "id_type": types, "id_value": values, "user_id": final})
        con.register("_ul_ni", tab)
        con.execute(f"INSERT INTO {t('identities')} SELECT ns, id_type, id_value, user_id, {ts} FROM _ul_ni")
        con.unregister("_ul_ni")


def merge_persons(project: ProjectStore, merges: dict[int, int]) -> None:
    """Move merged persons' events, identities and profile values to the surviving person."""
    con = project.con
    t = project.table
    con.register("_ul_m", pa.table({"old": list(merges), "new": list(merges.values())}))
    for table in ("events", "identities"):
        con.execute(f"UPDATE {t(table)} SET user_id = m.new FROM _ul_m m WHERE {t(table)}.user_id = m.old")
    props = [ident(p) for p in project.properties("users")]
    # Several persons can merge into one in a batch (one login signing up from several devices at once). An
    # UPDATE … FROM with several matching rows applies just one of them, so the merged persons are folded into
    # one row per survivor first: earliest first_seen/created_at, latest last_seen, and for each profile
    # property the value of the earliest-created merged person that has one.
    folded = ", ".join(
        [f"arg_min(o.{p}, o.user_id) FILTER (WHERE o.{p} IS NOT NULL) AS {p}" for p in props]
        + ["min(o.first_seen) AS first_seen", "max(o.last_seen) AS last_seen", "min(o.created_at) AS created_at"]
    )
    sets = ", ".join(
        [f"{p} = coalesce(u.{p}, o.{p})" for p in props]
        + [
            "first_seen = least(u.first_seen, o.first_seen)",
            "last_seen = greatest(u.last_seen, o.last_seen)",
            "created_at = least(u.created_at, o.created_at)",
        ]
    )
    con.execute(
        f"""UPDATE {t("users")} AS u SET {sets}
            FROM (SELECT m.new AS _ul_survivor, {folded} FROM _ul_m m JOIN {t("users")} o ON o.user_id = m.old
                  GROUP BY m.new) o
            WHERE u.user_id = o._ul_survivor"""
    )
    con.execute(f"DELETE FROM {t('users')} WHERE user_id IN (SELECT old FROM _ul_m)")
    con.unregister("_ul_m")


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
