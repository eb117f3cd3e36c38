"""From the ids people are known by to person keys, for lists a user uploads (static segments, upload tags)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pyarrow as pa

from userloop.ingest.identity import DISTINCT_NS
from userloop.store.duck import ProjectStore

IdKind = Literal["user_id", "distinct_id"]


def resolve_ids(project: ProjectStore, keyed: Sequence[tuple[int, str]], id_kind: str) -> dict[int, int]:
    """``key → person`` for every ``(key, id)`` whose id is known; unknown ids are simply absent.

    ``id_kind`` ``user_id``: the id is a person key (digits; others never match); ``distinct_id``: any id the
    person was sent with (anonymous or login id), as the collector saw it.
    """
    if not keyed:
        return {}
    keys = pa.array([k for k, _ in keyed], pa.int64())
    if id_kind == "user_id":
        ids = pa.array([int(i) if i.strip().lstrip("-").isdigit() and len(i) < 19 else None for _, i in keyed],
                       pa.int64())  # fmt: skip
        query = f"SELECT k.key, u.user_id FROM _ul_ids k JOIN {project.table('users')} u ON u.user_id = k.id"
    else:
        ids = pa.array([i for _, i in keyed], pa.string())
        query = (f"SELECT k.key, min(i.user_id) FROM _ul_ids k JOIN {project.table('identities')} i "
                 f"ON i.ns = '{DISTINCT_NS}' AND i.id_value = k.id GROUP BY k.key")  # fmt: skip
    with project.store.lock:
        project.con.register("_ul_ids", pa.table({"key": keys, "id": ids}))
        try:
            found = project.con.execute(query).fetchall()
        finally:
            project.con.unregister("_ul_ids")
    return {int(k): int(p) for k, p in found}
