"""Shared simulated data for the simulator's tests: one small business, generated once per session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa
import pytest

from userloop.sim import SimConfig, ground_truth, simulate

#: 2,000 people over 60 days ending 2024-06-30: contains weekends, the end of Labour Day and 618.
SMALL = SimConfig(users=2_000, days=60, end_date=date(2024, 6, 30))


@dataclass(frozen=True)
class Simulated:
    config: SimConfig
    tables: list[pa.Table]
    truth: pa.Table
    con: duckdb.DuckDBPyConnection

    def of_type(self, record_type: str) -> pa.Table:
        return pa.concat_tables([t for t in self.tables if t.column("type")[0].as_py() == record_type])

    def sql(self, query: str, params: list[object] | None = None) -> list[tuple]:
        return self.con.execute(query, params or []).fetchall()


def record_type(table: pa.Table) -> str:
    return table.column("type")[0].as_py()


def build(config: SimConfig) -> Simulated:
    """Simulate ``config`` and register its records in an in-memory DuckDB.

    Views: ``events`` (track records), ``signups``, ``truth`` (the ground truth) and ``ids`` (distinct_id →
    person, from the ground truth).
    """
    tables = list(simulate(config))
    truth = ground_truth(config)
    con = duckdb.connect()
    sim = Simulated(config, tables, truth, con)
    con.register("events", sim.of_type("track"))
    con.register("signups", sim.of_type("track_signup"))
    con.register("truth", truth)
    con.execute(
        "CREATE VIEW ids AS "
        "SELECT login_id AS distinct_id, person FROM truth WHERE login_id IS NOT NULL "
        "UNION ALL SELECT unnest(anonymous_ids) AS distinct_id, person FROM truth"
    )
    return sim


@pytest.fixture(scope="session")
def small() -> Simulated:
    return build(SMALL)
