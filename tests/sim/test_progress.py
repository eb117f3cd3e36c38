"""The simulation's progress counts project-local days, as the simulated days are."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from userloop.sim.run import _days_reached


def _batch(*utc: datetime) -> pa.Table:
    return pa.table({"time": [int(t.timestamp() * 1000) for t in utc]})


def test_a_record_after_local_midnight_reaches_the_next_local_day() -> None:
    # 2026-01-01 17:30 UTC is 2026-01-02 01:30 in Shanghai: the batch reaches the second local day there
    batch = _batch(datetime(2026, 1, 1, 9, tzinfo=UTC), datetime(2026, 1, 1, 17, 30, tzinfo=UTC))
    assert _days_reached(batch, date(2026, 1, 1), 30, "Asia/Shanghai") == 2
    assert _days_reached(batch, date(2026, 1, 1), 30, "UTC") == 1
    # 2026-01-01 05:00 UTC is still 2025-12-31 in Los Angeles: none of the simulated days is reached yet
    early = _batch(datetime(2026, 1, 1, 5, tzinfo=UTC))
    assert _days_reached(early, date(2026, 1, 1), 30, "America/Los_Angeles") == 0
    assert _days_reached(early, date(2026, 1, 1), 30, "UTC") == 1


def test_never_past_the_simulated_days_and_nothing_for_an_empty_batch() -> None:
    assert _days_reached(_batch(datetime(2026, 3, 1, tzinfo=UTC)), date(2026, 1, 1), 30, "UTC") == 30
    assert _days_reached(pa.table({"time": pa.array([], pa.int64())}), date(2026, 1, 1), 30, "UTC") == 0
