"""The analytics engine against ClickHouse's engine (chdb, in process) on the same synthetic events.

Run from the repository root::

    python -m bench.analytics [--events 20000000] [--users 1000000] [--scale 100000000] [--reps 3]

A deterministic dataset (hash-based, no random state) of ``--events`` events by ``--users`` people over 180 days
is written straight into a userloop project's tables (the layout the engine reads) in time order, as collection
appends them, and exported to Parquet for a chdb MergeTree table ORDER BY (user_id, time), the layout ClickHouse
users choose for funnels and retention. Figures, each the best of ``--reps`` runs with the two engines
interleaved, results checked to agree:

* ``funnel_3step_7d``: view_item → add_cart → order_paid, 7-day window, 180 days; chdb's ``windowFunnel``
  (target ratio ≤ 1.0);
* ``retention_weekly_12``: first-event weekly cohorts, return on week N = 0..12; chdb's ``retention``
  (target ratio ≤ 1.0);
* ``trend_daily_breakdown_90d``: page_view events per day by ``$os`` over 90 days (target ≤ 0.5 s), and the same
  with unique people per day as a second series;
* ``peak_rss``: the engine's peak RSS over the three queries, measured before chdb is loaded, in a process that
  only opens the workspace and queries it (the dataset is built in a process of its own; target ≤ 4 GiB);
* with ``--clustered``: the engine reads a copy of the workspace whose events are clustered by person and time
  (``ProjectStore.cluster_events``, a compaction's layout) instead of the append order;
* with ``--scale M``: the same at M events (and M/N times the people), and the ratio of times M/N (target ≤ 5.5
  for 100M/20M) beside chdb's own ratio (retention's must not exceed it).

Datasets are cached under ``bench/.data/analytics-<events>``.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import data_dir, report
from userloop.schema.types import PropertyType
from userloop.store import Workspace

START = "2026-01-01"
DAYS = 180
TWO64 = "18446744073709551616.0"

#: Event names by cumulative share (thresholds on a uniform draw).
NAMES = (
    (0.40, "page_view"), (0.60, "view_item"), (0.70, "app_start"), (0.78, "add_cart"), (0.82, "search"),
    (0.85, "order_submit"), (0.875, "order_paid"), (0.895, "login"), (0.91, "remove_cart"), (0.92, "share"),
    (0.93, "add_wishlist"), (0.94, "signup"), (0.95, "view_promo"), (0.96, "click_banner"), (0.97, "logout"),
    (0.975, "rate_item"), (0.98, "contact_support"), (0.985, "refund_request"), (0.99, "app_crash"),
    (1.01, "push_open"),
)  # fmt: skip

FUNNEL = {
    "kind": "funnel",
    "date_range": {"from": "2026-01-01", "to": "2026-06-29"},
    "steps": [{"event": "view_item"}, {"event": "add_cart"}, {"event": "order_paid"}],
    "window": {"value": 7, "unit": "day"},
}
RETENTION = {
    "kind": "retention",
    "date_range": {"from": "2026-01-05", "to": "2026-03-29"},
    "start": {"event": "$any"},
    "return_event": {"event": "$any"},
    "start_type": "first_time",
    "interval": "week",
    "periods": 12,
    "mode": "on",
}
TREND = {
    "kind": "trends",
    "date_range": {"from": "2026-04-01", "to": "2026-06-29"},
    "series": [{"event": "page_view"}],
    "breakdown": {"property": "$os"},
}
#: The same with unique people per day and over the range as a second series.
TREND_USERS = {**TREND, "series": [{"event": "page_view"}, {"event": "page_view", "math": "users"}]}

CH_FUNNEL = """
SELECT level, count() AS users FROM (
  SELECT user_id, windowFunnel(604800000)(toUInt64(toUnixTimestamp64Milli(time)),
                                           event = 'view_item', event = 'add_cart', event = 'order_paid') AS level
  FROM events WHERE event IN ('view_item', 'add_cart', 'order_paid')
    AND time >= toDateTime64('2026-01-01 00:00:00', 3, 'UTC') AND time < toDateTime64('2026-06-30 00:00:00', 3, 'UTC')
  GROUP BY user_id)
WHERE level > 0 GROUP BY level ORDER BY level
"""
#: Weeks since Monday 2025-12-29; cohorts are the first-event weeks 2026-01-05 … 2026-03-23 (weeks 1 … 12).
CH_WEEK = "toInt32(intDiv(toUnixTimestamp64Milli(time) - 1766966400000, 604800000))"
CH_RETENTION = f"""
SELECT c, n, users FROM (
  SELECT c, sumForEach(r) AS s FROM (
    SELECT user_id, any(c0) AS c, retention({{conds}}) AS r
    FROM (SELECT user_id, {CH_WEEK} AS wk FROM events) AS e
    INNER JOIN (SELECT user_id, min({CH_WEEK}) AS c0 FROM events GROUP BY user_id HAVING c0 BETWEEN 1 AND 12) AS cc
      USING (user_id)
    GROUP BY user_id)
  GROUP BY c)
ARRAY JOIN s AS users, range(13) AS n
ORDER BY c, n
"""


def generate(path: Path, events: int, users: int) -> None:
    """Write the dataset into a fresh workspace at ``path`` (timezone UTC) and a Parquet copy for chdb."""
    if path.exists():
        shutil.rmtree(path)
    ws, _ = Workspace.init(path, timezone="UTC")
    project = ws.project()
    con = project.con
    with project.store.transaction():
        project.register("events", {"$os": PropertyType.STRING, "amount": PropertyType.NUMBER})
        project.register("users", {"channel": PropertyType.STRING})
        project.register_events([n for _, n in NAMES])
    name_case = " ".join(f"WHEN x < {t} THEN '{n}'" for t, n in NAMES)
    # the sort by time spills beyond this instead of growing (DuckDB's default, 80 % of RAM, took 16.7 GiB for 100M)
    con.execute("SET memory_limit = '6GB'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"""
        INSERT INTO {project.table("events")} (event_id, event, user_id, distinct_id, time, received_at, lib,
                                               "$os", amount)
        SELECT 'e' || i, CASE {name_case} END, u, 'd' || u, t, t, 'bench',
               CASE WHEN hash(u * 8 + 5) % 20 < 11 THEN 'Android' WHEN hash(u * 8 + 5) % 20 < 18 THEN 'iOS'
                    ELSE 'HarmonyOS' END,
               CASE WHEN x >= 0.85 AND x < 0.875 THEN round(5 + (hash(i * 8 + 6) % 20000) / 100.0, 2) END
        FROM (SELECT i, hash(i * 8 + 1) / {TWO64} AS x,
                     CASE WHEN i < {users} THEN i + 1
                          ELSE 1 + CAST(floor({users} * pow(hash(i * 8 + 2) / {TWO64}, 2.0)) AS BIGINT) END AS u,
                     TIMESTAMP '{START}' + to_milliseconds(CAST(floor(hash(i * 8 + 3) / {TWO64} * {DAYS} * 86400000)
                                                                AS BIGINT)) AS t
              FROM range({events}) r(i))
        ORDER BY t
    """)
    con.execute(f"""
        INSERT INTO {project.table("users")} (user_id, first_id, created_at, updated_at, first_seen, last_seen,
                                              channel)
        SELECT user_id, 'd' || user_id, min(time), max(time), min(time), max(time),
               CASE WHEN hash(user_id * 8 + 7) % 5 = 0 THEN 'ads' ELSE 'organic' END
        FROM {project.table("events")} GROUP BY user_id
    """)
    con.execute(f"""COPY (SELECT user_id, event, time, "$os" AS os, amount FROM {project.table("events")})
                    TO '{path / "events.parquet"}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)""")
    ws.close()


def prepare(path: Path, events: int, users: int, clustered: bool) -> None:
    """The dataset at ``path`` (built when missing) and, with ``clustered``, a copy of its workspace beside it
    with the events clustered by person (``ProjectStore.cluster_events``, the layout after a compaction)."""
    if not (path / "events.parquet").exists():
        started = time.perf_counter()
        generate(path, events, users)
        report("analytics_data", "generate_seconds", time.perf_counter() - started, "s", events=events, users=users)
    target = path.with_name(path.name + "-clustered")
    if clustered and not (target / "events.duckdb").exists():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(path, target, ignore=shutil.ignore_patterns("chdb", "*.parquet"))
        started = time.perf_counter()
        ws = Workspace.open(target)
        ws.events.set_memory_limit("6GB")  # as the build: the rewrite's sort spills past it
        ws.project().cluster_events()
        ws.close()
        report("analytics_data", "cluster_seconds", time.perf_counter() - started, "s", events=events)


def load_chdb(path: Path) -> Any:
    from chdb import session

    store = path / "chdb"
    fresh = not store.exists()
    s = session.Session(str(store))
    if fresh:
        s.query("""CREATE TABLE events (user_id UInt64, event LowCardinality(String), time DateTime64(3, 'UTC'),
                   os LowCardinality(String), amount Nullable(Float64)) ENGINE = MergeTree ORDER BY (user_id, time)""")
        s.query(f"INSERT INTO events SELECT * FROM file('{path / 'events.parquet'}', Parquet)")
        s.query("OPTIMIZE TABLE events FINAL")
    return s


def ch_rows(s: Any, sql: str) -> list[list[Any]]:
    out = s.query(sql, "JSONCompact")
    import json

    return list(json.loads(out.bytes())["data"])


def best(reps: int, fns: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Best time of each function over ``reps`` rounds, the functions interleaved within each round; and under
    ``<key>_cpu`` its best CPU time (every thread of the process: both engines run in it). On a shared machine
    the CPU times compare the engines' work where the wall times also measure the other tenants."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for key, fn in fns.items():
            gc.collect()
            started, cpu_started = time.perf_counter(), _cpu_seconds()
            fn()
            times[key].append(time.perf_counter() - started)
            cpu[key].append(_cpu_seconds() - cpu_started)
    return {k: min(v) for k, v in times.items()} | {f"{k}_cpu": min(v) for k, v in cpu.items()}


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def hwm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_scale(events: int, users: int, reps: int, memory_gb: float = 3.0, clustered: bool = False) -> dict[str, float]:
    from userloop.query.engine import Engine

    path = data_dir() / f"analytics-{events}"
    ours_path = path.with_name(path.name + "-clustered") if clustered else path
    if not (ours_path / "events.duckdb").exists() or not (path / "events.parquet").exists():
        # built in a process of its own, so this process's peak RSS is the engine's alone
        _child([sys.executable, "-m", "bench.analytics", "--generate", "--events", str(events), "--users", str(users),
                *(["--clustered"] if clustered else [])])  # fmt: skip
    ws = Workspace.open(ours_path, read_only=True)
    # the engine's memory budget: DuckDB spills to disk beyond it instead of growing (its default is 80 % of RAM)
    ws.events.con.execute(f"SET memory_limit = '{memory_gb}GB'")
    engine = Engine(ws.project(), "UTC")
    ours = {
        "funnel": lambda: engine.run(FUNNEL, use_cache=False, timeout_s=600),
        "retention": lambda: engine.run(RETENTION, use_cache=False, timeout_s=600),
        "trend": lambda: engine.run(TREND, use_cache=False, timeout_s=600),
        "trend_users": lambda: engine.run(TREND_USERS, use_cache=False, timeout_s=600),
    }
    first = {k: fn() for k, fn in ours.items()}  # warm: file pages and the registry
    rss = hwm_bytes()
    report("analytics", "peak_rss", rss / 2**30, "GiB", events=events, target="<= 4")
    s = load_chdb(path)  # chdb reads the Parquet copy into its own MergeTree, whatever layout ours has
    check_agreement(first, s)
    t = best(
        reps,
        {
            "funnel": ours["funnel"],
            "ch_funnel": lambda: ch_rows(s, CH_FUNNEL),
            "retention": ours["retention"],
            "ch_retention": lambda: ch_rows(s, ch_retention_sql()),
            "trend": ours["trend"],
            "trend_users": ours["trend_users"],
        },
    )
    report("analytics", "funnel_3step_7d", t["funnel"], "s", events=events, reference="chdb windowFunnel",
           reference_value=t["ch_funnel"], ratio=t["funnel"] / t["ch_funnel"], target="<= 1.0",
           cpu_s=t["funnel_cpu"], reference_cpu_s=t["ch_funnel_cpu"],
           cpu_ratio=t["funnel_cpu"] / t["ch_funnel_cpu"])  # fmt: skip
    report("analytics", "retention_weekly_12", t["retention"], "s", events=events, reference="chdb retention()",
           reference_value=t["ch_retention"], ratio=t["retention"] / t["ch_retention"], target="<= 1.0",
           cpu_s=t["retention_cpu"], reference_cpu_s=t["ch_retention_cpu"],
           cpu_ratio=t["retention_cpu"] / t["ch_retention_cpu"])  # fmt: skip
    report("analytics", "trend_daily_breakdown_90d", t["trend"], "s", events=events, target="<= 0.5",
           cpu_s=t["trend_cpu"])  # fmt: skip
    report("analytics", "trend_daily_breakdown_90d_with_users", t["trend_users"], "s", events=events)
    ws.close()
    return t


def ch_retention_sql() -> str:
    return CH_RETENTION.replace("{conds}", ", ".join(f"wk = c0 + {i}" for i in range(13)))


def check_agreement(first: dict[str, Any], s: Any) -> None:
    """The engine's numbers next to chdb's: retention cells must be equal; funnel levels within 0.1 % (the two
    engines order events that share a millisecond differently)."""
    ch_funnel = {int(level): int(n) for level, n in ch_rows(s, CH_FUNNEL)}
    reached = {k: sum(n for level, n in ch_funnel.items() if level >= k) for k in (1, 2, 3)}
    steps = first["funnel"].result["steps"]
    ours = {i + 1: int(step["count"]) for i, step in enumerate(steps)}
    worst = max(abs(ours[k] - reached[k]) / max(reached[k], 1) for k in reached)
    report("analytics_check", "funnel_levels", worst, "relative difference", ours=ours, chdb=reached)
    assert worst < 1e-3, (ours, reached)
    ch_cells = {(int(c), int(n)): int(u) for c, n, u in ch_rows(s, ch_retention_sql())}
    cohorts = first["retention"].result["cohorts"]
    mismatches = 0
    for i, cohort in enumerate(cohorts):
        for n, value in enumerate(cohort["counts"]):
            if value is not None and ch_cells.get((i + 1, n), 0) != value:
                mismatches += 1
    report("analytics_check", "retention_cells_differing", mismatches, "cells")
    assert mismatches == 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics")
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--scale", type=int, default=0, help="Also run at this many events and report the ratio.")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--memory-gb", type=float, default=3.0, help="DuckDB memory limit for the engine.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--clustered", action="store_true", help="The engine reads a copy clustered by person (cluster_events)."
    )
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        prepare(data_dir() / f"analytics-{args.events}", args.events, args.users, args.clustered)
        return 0
    if args.child or not args.scale:
        run_scale(args.events, args.users, args.reps, args.memory_gb, args.clustered)
        return 0
    # each scale in a process of its own, so each peak RSS is its own
    base = [sys.executable, "-m", "bench.analytics", "--child", "--reps", str(args.reps), "--memory-gb",
            str(args.memory_gb), *(["--clustered"] if args.clustered else [])]  # fmt: skip
    small = _child([*base, "--events", str(args.events), "--users", str(args.users)])
    big_users = args.users * args.scale // args.events
    big = _child([*base, "--events", str(args.scale), "--users", str(big_users)])
    for key in ("funnel_3step_7d", "retention_weekly_12", "trend_daily_breakdown_90d"):
        extra = {}
        if key + "_reference" in small:  # chdb's own growth in the same run
            extra["reference_ratio"] = big[key + "_reference"] / small[key + "_reference"]
        report("analytics_scale", key, big[key] / small[key], "ratio", events=(args.events, args.scale),
               target="<= 5.5 (retention: and <= chdb's)", **extra)  # fmt: skip
    return 0


def _child(cmd: list[str]) -> dict[str, float]:
    import json

    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    figures: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        print(line, flush=True)
        row = json.loads(line)
        if row["bench"] == "analytics":
            figures[row["figure"]] = row["value"]
            if "reference_value" in row:
                figures[row["figure"] + "_reference"] = row["reference_value"]
    return figures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
