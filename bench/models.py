"""Benchmark of the user models on synthetic data of 1M users, generated in DuckDB SQL.

Run from the repository root: ``python -m bench.models [--users N]``. Figures:

* ``rfm_lifecycle``: RFM plus lifecycle stage of every user (compute, as the models run it), against a plain
  DuckDB GROUP BY of count/sum/max over the same purchases (target <= 3 s);
* ``churn_train``: features of every snapshot, training, calibration and validation (target <= 120 s);
* ``churn_score``: users scored per second from the feature matrix (target >= 200,000/s), and with features.

Every user has a latent purchase rate, a start day and (for 40 %) a dropout day after which they neither buy
nor open the app, so the churn labels carry signal.
"""

from __future__ import annotations

import argparse
import shutil
from datetime import date

from bench.harness import data_dir, report, timed
from userloop.models.base import RunContext
from userloop.models.churn import ChurnConfig, ChurnModel
from userloop.models.churn_features import ChurnFeatures, read_features
from userloop.models.lifecycle import LifecycleModel
from userloop.models.rfm import RFMModel
from userloop.schema.types import PropertyType
from userloop.store import EventStore, ProjectStore

AS_OF = date(2026, 6, 30)
PROPS = {"order_amount": PropertyType.NUMBER, "order_id": PropertyType.STRING, "category": PropertyType.STRING,
         "price": PropertyType.NUMBER, "product_id": PropertyType.STRING}  # fmt: skip
USERS_SQL = """
CREATE TEMP TABLE bench_users AS
SELECT range AS user_id, random() * 300 AS start, 0.005 + random() * random() * 0.08 AS lam, random() AS r
FROM range({n})
"""
SPANS_SQL = """
CREATE TEMP TABLE bench_spans AS
SELECT user_id, start, lam, CASE WHEN r < 0.4 THEN start + random() * (365 - start) ELSE 365 END AS stop
FROM bench_users
"""
ORDERS_SQL = """
CREATE TEMP TABLE bench_orders AS
SELECT user_id, TIMESTAMP '2025-07-01' + to_microseconds(CAST((start + random() * (stop - start)) * 86400e6 AS BIGINT))
       AS time, round(10 + random() * 90, 1) AS amount, 'O' || user_id || '_' || k AS order_id,
       'c' || CAST(floor(random() * 8) AS INTEGER) AS category
FROM bench_spans, LATERAL range(CAST(1 + lam * (stop - start) AS BIGINT)) t(k)
"""
INSERTS = (
    "SELECT 'order_paid', user_id, time, amount, order_id, NULL, NULL, NULL FROM bench_orders",
    "SELECT 'order_item', user_id, time, NULL, order_id, category, amount, category || '_p' FROM bench_orders",
    "SELECT 'app_start', user_id, time - INTERVAL 10 MINUTE, NULL, NULL, NULL, NULL, NULL FROM bench_orders",
    "SELECT 'app_start', user_id, TIMESTAMP '2025-07-01' + to_microseconds(CAST((start + random() * (stop - start)) "
    "* 86400e6 AS BIGINT)), NULL, NULL, NULL, NULL, NULL FROM bench_spans",
)


def build(n: int) -> ProjectStore:
    """A project with synthetic events of ``n`` users in a fresh DuckDB file under bench/.data."""
    folder = data_dir() / "models"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    store = EventStore(folder / "events.duckdb")
    project = store.create_project("bench")
    with store.transaction():
        project.register("events", PROPS)
    con, events = project.con, project.table("events")
    con.execute("SELECT setseed(0.42)")
    for sql in (USERS_SQL.format(n=n), SPANS_SQL, ORDERS_SQL):
        con.execute(sql)
    cols = "event, user_id, time, order_amount, order_id, category, price, product_id"
    for select in INSERTS:
        con.execute(
            f"INSERT INTO {events} (event_id, distinct_id, received_at, {cols}) "
            f"SELECT gen_random_uuid()::VARCHAR, user_id::VARCHAR, time, * EXCLUDE (received_at) FROM "
            f"(SELECT NULL AS received_at, * FROM ({select}) s(event, user_id, time, a, o, c, p, pid))"
        )
    project.register_events(["order_paid", "order_item", "app_start"])
    return project


def bench_rfm_lifecycle(project: ProjectStore, n: int) -> None:
    ctx = RunContext(project, AS_OF)
    events = project.table("events")
    with timed() as ref:
        project.con.execute(
            f"SELECT user_id, count(*), sum(order_amount), max(time) FROM {events} "
            "WHERE event = 'order_paid' AND time < ? GROUP BY user_id",
            [ctx.end],
        ).fetchnumpy()
    with timed() as t:
        rfm = RFMModel().compute(ctx)
        stages = LifecycleModel().compute(ctx)
    report("models", "rfm_lifecycle_seconds", t.seconds, "s", users=n, rfm_users=len(rfm.user_id),
           lifecycle_users=len(stages.user_id), reference="duckdb GROUP BY count/sum/max of purchases",
           reference_value=ref.seconds, ratio=t.seconds / ref.seconds, target="<= 3 s")  # fmt: skip


def bench_churn(project: ProjectStore, n: int) -> None:
    # Synthetic users have no profiles, so no profile flags; push events are absent too (a zero column).
    model = ChurnModel(ChurnConfig(training_snapshots=2, features=ChurnFeatures(profile_flags=())))
    ctx = RunContext(project, AS_OF)
    with timed() as t:
        fitted = model.fit(ctx)
    val = fitted.report["validation"]
    report("models", "churn_train_seconds", t.seconds, "s", users=n, training_rows=fitted.report["training_rows"],
           auc=val["auc"], ece=val["ece"], learner=fitted.report["learner"], target="<= 120 s")  # fmt: skip
    with timed() as f:
        feats = read_features(ctx, model.config.features)
    with timed() as s:
        model.score(fitted, feats)
    rows = len(feats.user_id)
    report("models", "churn_score_users_per_second", rows / s.seconds, "users/s", users=rows,
           with_features=rows / (s.seconds + f.seconds), target=">= 200000")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with timed() as gen:
        project = build(args.users)
    (rows,) = project.con.execute(f"SELECT count(*) FROM {project.table('events')}").fetchone() or (0,)
    report("models", "generate_seconds", gen.seconds, "s", users=args.users, events=rows)
    bench_rfm_lifecycle(project, args.users)
    bench_churn(project, args.users)
    project.store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
