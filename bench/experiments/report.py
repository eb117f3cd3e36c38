"""The report after launch over 1,000,000 people and 20M events, against a bare SQL aggregate of the same sums.

Run from the repository root::

    python -m bench.experiments.report [--people 1000000] [--events 20000000] [--reps 3]

A deterministic dataset (hash-based, no random state) is written straight into a userloop project's tables, as
``bench/analytics.py`` does: every person is exposed once to the standalone experiment ``checkout`` (variant
``control`` or ``coupon``, 50/50 by a hash; 5 % in the global control group) during the first 30 days; the other
events (page views, orders with an ``order_amount``, coupons granted to the ``coupon`` arm, a few unsubscribes)
spread over 60 days, orders more likely in the ``coupon`` arm. Figures, each the best of ``--reps`` runs with the
two interleaved:

* ``report_seconds``: :func:`userloop.experiment.report.standalone_report` (the one aggregate, the statistics, the
  sentences; target <= 5 s);
* ``bare_seconds``: a hand-written DuckDB statement computing the same per-arm sums (the reference);
* ``ratio``: report / bare.

The two must agree on every per-arm sum (people, conversions, revenue, cost, unsubscribes and churn: no active
event since a day after exposure, by the profile's last seen). Datasets are cached under
``bench/.data/experiments-<people>-<events>``.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import time
from datetime import datetime
from pathlib import Path

from bench.harness import data_dir, report

from userloop.schema.types import PropertyType
from userloop.store import Workspace

START = "2026-01-01"
DAYS = 60
TWO64 = "18446744073709551616.0"
WINDOW_SECONDS = 14 * 86_400
AS_OF = datetime(2026, 3, 15)
#: The passive events of the dataset: first and last seen count the others (as the loader does).
PASSIVE = "('$experiment_exposure', '$benefit_granted')"
NAMES = ("page_view", "view_item", "add_cart", "order_paid", "$benefit_granted", "$unsubscribed",
         "$experiment_exposure")  # fmt: skip


def generate(path: Path, people: int, events: int) -> None:
    """Write the dataset into a fresh workspace at ``path`` (timezone UTC)."""
    if path.exists():
        shutil.rmtree(path)
    ws, _ = Workspace.init(path, timezone="UTC")
    project = ws.project()
    con = project.con
    with project.store.transaction():
        project.register("events", {"experiment": PropertyType.STRING, "variant": PropertyType.STRING,
                                    "global_control": PropertyType.BOOL, "order_amount": PropertyType.NUMBER,
                                    "benefit": PropertyType.STRING})  # fmt: skip
        project.register_events(list(NAMES))
    events_table = project.table("events")
    con.execute("SET preserve_insertion_order = false")
    # exposures: one per person in the first 30 days
    con.execute(f"""
        INSERT INTO {events_table} (event_id, event, user_id, distinct_id, time, received_at, lib, experiment,
                                    variant, global_control)
        SELECT 'x' || u, '$experiment_exposure', u, 'd' || u, t, t, 'bench', 'checkout',
               CASE WHEN hash(u * 8 + 1) % 2 = 0 THEN 'control' ELSE 'coupon' END, hash(u * 8 + 2) % 20 = 0
        FROM (SELECT r.i + 1 AS u, TIMESTAMP '{START}' + to_milliseconds(
                     CAST(floor(hash(r.i * 8 + 3) / {TWO64} * 30 * 86400000) AS BIGINT)) AS t
              FROM range({people}) r(i))
    """)
    # the other events: person by a skewed draw, time over 60 days, the name by a uniform draw; the coupon arm
    # (outside the global control) orders more, and gets a coupon with some of its views
    con.execute(f"""
        INSERT INTO {events_table} (event_id, event, user_id, distinct_id, time, received_at, lib, order_amount,
                                    benefit)
        SELECT 'e' || i, name, u, 'd' || u, t, t, 'bench',
               CASE WHEN name = 'order_paid' THEN round(20 + (hash(i * 8 + 6) % 20000) / 100.0, 2) END,
               CASE WHEN name = '$benefit_granted' THEN 'coupon10' END
        FROM (SELECT i, u, t,
                     CASE WHEN x < 0.55 THEN 'page_view' WHEN x < 0.80 THEN 'view_item'
                          WHEN x < 0.92 THEN 'add_cart'
                          WHEN x < 0.96 + (CASE WHEN treated THEN 0.01 ELSE 0 END) THEN 'order_paid'
                          WHEN x < 0.99 THEN CASE WHEN treated THEN '$benefit_granted' ELSE 'view_item' END
                          WHEN x < 0.9905 THEN '$unsubscribed' ELSE 'page_view' END AS name
              FROM (SELECT i, u, t, x, hash(u * 8 + 1) % 2 = 1 AND hash(u * 8 + 2) % 20 <> 0 AS treated
                    FROM (SELECT i, hash(i * 8 + 4) / {TWO64} AS x,
                                 1 + CAST(floor({people} * pow(hash(i * 8 + 5) / {TWO64}, 1.3)) AS BIGINT) AS u,
                                 TIMESTAMP '{START}' + to_milliseconds(CAST(floor(hash(i * 8 + 7) / {TWO64}
                                     * {DAYS} * 86400000) AS BIGINT)) AS t
                          FROM range({events - people}) r(i))))
        ORDER BY t
    """)
    con.execute(f"""
        INSERT INTO {project.table("users")} (user_id, first_id, created_at, updated_at, first_seen, last_seen)
        SELECT user_id, 'd' || user_id, min(time), max(time), min(time) FILTER (WHERE event NOT IN {PASSIVE}),
               max(time) FILTER (WHERE event NOT IN {PASSIVE})
        FROM {events_table} GROUP BY user_id
    """)
    con.execute("CHECKPOINT")
    ws.close()


def bare(con: object, events: str, users: str) -> list[tuple[object, ...]]:
    """The same per-arm sums, written by hand in DuckDB's SQL: first exposures, the window's orders, coupons and
    unsubscribes joined by person, churn from the profile's last seen."""
    return con.execute(f"""
        WITH x AS (
            SELECT user_id, experiment, arg_min(variant, time) AS variant,
                   coalesce(arg_min(global_control, time), false) AS gc, min(time) AS t0
            FROM {events} WHERE event = '$experiment_exposure' AND experiment = 'checkout' AND variant IS NOT NULL
            GROUP BY user_id, experiment),
        p AS (
            SELECT x.user_id,
                   count(*) FILTER (WHERE e.event = 'order_paid') > 0 AS converted,
                   coalesce(sum(e.order_amount) FILTER (WHERE e.event = 'order_paid'), 0) AS revenue,
                   10.0 * count(*) FILTER (WHERE e.event = '$benefit_granted' AND e.benefit = 'coupon10') AS cost,
                   count(*) FILTER (WHERE e.event = '$unsubscribed') > 0 AS unsubscribed
            FROM x JOIN {events} AS e
              ON e.user_id = x.user_id AND e.time >= x.t0 AND e.time < x.t0 + INTERVAL {WINDOW_SECONDS} SECOND
            WHERE e.event IN ('order_paid', '$benefit_granted', '$unsubscribed')
            GROUP BY x.user_id)
        SELECT x.experiment, x.variant, x.gc, count(*), count(*) FILTER (WHERE p.converted),
               coalesce(sum(p.revenue), 0), coalesce(sum(p.revenue * p.revenue), 0), coalesce(sum(p.cost), 0),
               coalesce(sum(p.cost * p.cost), 0), coalesce(sum(p.revenue * p.cost), 0),
               count(*) FILTER (WHERE p.unsubscribed), 0,
               count(*) FILTER (WHERE u.last_seen IS NULL OR u.last_seen < x.t0 + INTERVAL 1 DAY)
        FROM x LEFT JOIN p ON p.user_id = x.user_id LEFT JOIN {users} AS u ON u.user_id = x.user_id
        GROUP BY ALL ORDER BY 1, 2, 3
    """).fetchall()  # type: ignore[attr-defined, no-any-return]


def restamp(path: Path) -> None:
    """Set a dataset's first and last seen from its active events, as the loader keeps them (datasets made
    before the report read churn from the profile)."""
    ws = Workspace.open(path)
    project = ws.project()
    project.con.execute(f"""
        UPDATE {project.table("users")} AS u SET first_seen = s.lo, last_seen = s.hi
        FROM (SELECT user_id, min(time) AS lo, max(time) AS hi FROM {project.table("events")}
              WHERE event NOT IN {PASSIVE} GROUP BY user_id) AS s
        WHERE u.user_id = s.user_id""")
    project.con.execute("CHECKPOINT")
    ws.close()


def main(argv: list[str]) -> int:
    from userloop.benefits import BenefitRow
    from userloop.experiment.assignment import Standalone
    from userloop.experiment.report import standalone_report

    parser = argparse.ArgumentParser(prog="python -m bench.experiments.report")
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print where the report's time goes (cProfile)")
    args = parser.parse_args(argv)
    path = data_dir() / f"experiments-{args.people}-{args.events}"
    if not (path / "ready").exists():
        started = time.perf_counter()
        generate(path, args.people, args.events)
        (path / "ready").write_text("seen")
        report("experiments_data", "generate_seconds", time.perf_counter() - started, "s",
               people=args.people, events=args.events)  # fmt: skip
    elif (path / "ready").read_text() != "seen":
        restamp(path)
        (path / "ready").write_text("seen")
    ws = Workspace.open(path)
    store, info = ws.project(), ws.project_info()
    with ws.meta.session.begin() as s:
        if s.query(BenefitRow).filter_by(project_id=info.id, name="coupon10").first() is None:
            s.add(BenefitRow(project_id=info.id, name="coupon10", amount=10.0, threshold=50.0))
    experiment = Standalone(name="checkout", weights={"control": 50, "coupon": 50})
    events, users = store.table("events"), store.table("users")

    def ours() -> object:
        return standalone_report(ws.meta, info, store, experiment, "order_paid", WINDOW_SECONDS, AS_OF)

    def reference() -> object:
        with store.store.lock:
            return bare(store.con, events, users)

    times: dict[str, list[float]] = {"report": [], "bare": []}
    found: dict[str, object] = {}
    for _ in range(args.reps):
        for key, fn in (("report", ours), ("bare", reference)):
            gc.collect()
            started = time.perf_counter()
            found[key] = fn()
            times[key].append(time.perf_counter() - started)
    got = found["report"]
    want = found["bare"]
    arms = {(a.variant, a.global_control): (a.people, a.conversions, round(a.revenue, 2), round(a.cost, 2),
                                            a.unsubscribed, a.churned) for a in got.arms}  # type: ignore[attr-defined]  # fmt: skip
    expected = {(v, gc_): (n, conv, round(float(r), 2), round(float(c), 2), u, ch)
                for _, v, gc_, n, conv, r, _rr, c, _cc, _rc, u, _k, ch in want}  # type: ignore[attr-defined]  # fmt: skip
    if arms != expected:
        print(f"MISMATCH\nreport: {arms}\nbare:   {expected}")
        return 1
    ours_s, bare_s = min(times["report"]), min(times["bare"])
    report("experiments_report", "report_seconds", ours_s, "s", people=args.people, events=args.events,
           reference="hand-written DuckDB aggregate of the same sums", reference_value=bare_s,
           ratio=ours_s / bare_s, target="<= 5 s")  # fmt: skip
    for s in got.sentences:  # type: ignore[attr-defined]
        print(s.zh)
        print(s.en)
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(ours)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(15)
    ws.close()
    return 0 if ours_s <= 5.0 else 1


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
