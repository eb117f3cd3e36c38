"""Level re-evaluation benchmark: every member of a programme evaluated at once.

    python -m bench.membership.levels [--members 1000000] [--entries 2] [--quick]

A SQLite metadata database (a file, as a workspace has) holds one programme (five levels, calendar-year window,
``period_end`` downgrades, Asia/Shanghai) and ``--members`` members at random levels reached at random instants
of 2025 and 2026, with ``--entries`` growth entries each spread over 2025 and 2026: the batch finds upgrades,
downgrades at the turn of the year, and members who keep their level. Setup is raw ``sqlite3`` and not timed.

Figures (one JSON line each, see bench/harness.py):

- ``levels_evaluate_s``: :func:`userloop.membership.levels.evaluate` over every member (read the members, one
  aggregate over the entries, the decisions in numpy, the changed rows and their history written). The issue's
  bar: 1,000,000 members <= 60 s.
- ``bare_aggregate_s``: the reference of the same run, the bare reads of the same rows with raw ``sqlite3``
  (``SELECT id, level, level_since FROM members`` and ``SELECT member_id, sum(amount) … GROUP BY member_id``);
  ``ratio`` = evaluation / bare.

``--quick``: 100,000 members (a smoke run).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from bench.harness import report
from sqlalchemy import select

from userloop.membership import levels
from userloop.membership.members import LevelChange, Programmes
from userloop.store.meta import MetaStore

NOW = datetime(2026, 6, 30, 12, 0)
PROGRAMME = {
    "name": "bench",
    "title": {"zh": "会员", "en": "Members"},
    "timezone": "Asia/Shanghai",
    "levels": [{"name": f"l{i}", "title": {"zh": f"等级{i}", "en": f"Level {i}"}, "threshold": t}
               for i, t in enumerate([0, 100, 500, 2000, 10000])],
    "window": {"kind": "calendar_year"},
    "downgrade": {"kind": "period_end"},
}  # fmt: skip


def _stamp(seconds: np.ndarray) -> list[str]:
    """Seconds after 2025-01-01 as the text SQLAlchemy stores a DateTime as on SQLite."""
    base = datetime(2025, 1, 1)
    return [(base + timedelta(seconds=int(s))).strftime("%Y-%m-%d %H:%M:%S.%f") for s in seconds]


def populate(path: Path, members: int, entries: int, seed: int = 7) -> tuple[MetaStore, int]:
    meta = MetaStore(f"sqlite:///{path}")
    meta.create_all()
    project = meta.add_project("bench", "Asia/Shanghai")
    saved = Programmes(meta, project).create(PROGRAMME)
    rng = np.random.default_rng(seed)
    span = int((NOW - datetime(2025, 1, 1)).total_seconds())
    con = sqlite3.connect(path)
    with con:
        joined = _stamp(np.zeros(members, dtype=np.int64))
        since = _stamp(rng.integers(0, span, members))
        level = rng.integers(0, 5, members)
        con.executemany(
            "INSERT INTO members (id, project_id, programme_id, person, status, joined_at, level, level_since) "
            "VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
            ((i + 1, project.id, saved.id, i + 1, joined[i], int(level[i]), since[i]) for i in range(members)),
        )
        n = members * entries
        owner = rng.integers(1, members + 1, n)
        at_seconds = rng.integers(0, span, n)
        at = _stamp(at_seconds)
        amount = rng.integers(1, 3000, n)
        con.executemany(
            "INSERT INTO growth_entries (programme_id, member_id, key, source, amount, at, day, created_at) "
            "VALUES (?, ?, ?, 'bench', ?, ?, ?, ?)",
            ((saved.id, int(owner[i]), f"k{i}", int(amount[i]), at[i], at[i][:10], at[i]) for i in range(n)),
        )
    con.close()
    return meta, saved.id


def bare(path: Path, programme_id: int) -> float:
    con = sqlite3.connect(path)
    start = time.perf_counter()
    con.execute("SELECT id, level, level_since FROM members WHERE programme_id = ?", [programme_id]).fetchall()
    con.execute(
        "SELECT member_id, sum(amount) FROM growth_entries WHERE programme_id = ? GROUP BY member_id", [programme_id]
    ).fetchall()
    seconds = time.perf_counter() - start
    con.close()
    return seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.membership.levels")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=2, help="growth entries per member")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    members = 100_000 if args.quick else args.members
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "meta.db"
        meta, programme_id = populate(path, members, args.entries)
        saved = Programmes(meta, meta.project("bench")).get(programme_id)  # type: ignore[arg-type]
        reference = bare(path, programme_id)
        start = time.perf_counter()
        done = levels.evaluate(meta, saved, NOW)
        seconds = time.perf_counter() - start
        with meta.session() as s:
            written = len(s.scalars(select(LevelChange.id)).all())
        assert written == done.up + done.down, (written, done)
        report("membership.levels", "levels_evaluate_s", seconds, "s", members=members, entries=members * args.entries,
               up=done.up, down=done.down, bar_s=60.0)  # fmt: skip
        report("membership.levels", "bare_aggregate_s", reference, "s", ratio=seconds / reference)
        meta.dispose()
    return 0


if __name__ == "__main__":
    from bench.harness import main_guard

    main_guard(main)
