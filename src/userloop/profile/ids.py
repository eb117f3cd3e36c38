"""From the ids people are known by to person keys, for lists a user uploads (static segments, upload tags)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pyarrow as pa
from sqlglot import exp

from userloop.ingest.identity import DISTINCT_NS
from userloop.store.duck import ProjectStore
from userloop.store.sqlbuild import sql

IdKind = Literal["user_id", "distinct_id"]
#: The name the uploaded ids are read by, on the private session that reads them.
_IDS_VIEW = "_ul_ids"


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
        query = sql("SELECT k.key, u.user_id FROM $ids k JOIN $users u ON u.user_id = k.id",
                    ids=exp.to_table(_IDS_VIEW), users=project.ref("users"))  # fmt: skip
    else:
        ids = pa.array([i for _, i in keyed], pa.string())
        query = sql("SELECT k.key, min(i.user_id) FROM $ids k JOIN $identities i ON i.ns = $ns AND i.id_value = k.id "
                    "GROUP BY k.key", ids=exp.to_table(_IDS_VIEW), identities=project.ref("identities"),
                    ns=DISTINCT_NS)  # fmt: skip
    with project.session() as s:
        s.register(_IDS_VIEW, pa.table({"key": keys, "id": ids}))
        found = s.fetchall(query)
    return {int(k): int(p) for k, p in found}
