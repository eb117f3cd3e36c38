"""A simulated business loaded into a workspace for the causal tests and benches: the records the estimators
read (profiles, identities, orders, the programme's joins, registrations, app starts, coupons), without the
page views and carts that only cost loading time."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from userloop.ingest import TimePolicy, load_table
from userloop.sim import SimConfig, ground_truth, simulate
from userloop.store import Workspace

#: The track events kept (every profile, item and identity record is kept).
KEPT = ("order_paid", "member_join", "register", "app_start", "coupon_received", "push_received", "$SignUp")


def load(config: SimConfig, path: Path) -> tuple[Path, pa.Table]:
    """Simulate ``config`` into a fresh workspace at ``path`` (its project's zone is the simulator's)."""
    ws, _ = Workspace.init(path, timezone=config.timezone)
    try:
        store = ws.project("default")
        policy = TimePolicy(max_future_seconds=86_400, max_past_days=100_000)
        kept = [_kept(table) for table in simulate(config, workers=0)]
        load_table(store, pa.concat_tables(kept, promote_options="permissive"), source="sim", policy=policy)
        for event in ("coupon_received", "push_received"):
            if event in store.event_names():
                store.set_event_active(event, False)
    finally:
        ws.close()
    return path, ground_truth(config)


def _kept(table: pa.Table) -> pa.Table:
    if table.column("type")[0].as_py() != "track":
        return table
    return table.filter(pc.is_in(table.column("event").cast(pa.string()), pa.array(KEPT)))
