"""The public face: configuration rules, the estimate, the ground truth file, the catalogue records."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pydantic
import pytest

from userloop.sim import SimConfig, estimate_event_count, ground_truth, simulate, write_ground_truth

from .conftest import Simulated


def test_config_is_strict_and_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        SimConfig(users=10, unknown_knob=1)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        SimConfig(timezone="Mars/Olympus")
    with pytest.raises(pydantic.ValidationError):
        SimConfig(channel_shares=(1.0, 2.0))
    config = SimConfig()
    with pytest.raises(pydantic.ValidationError):
        config.users = 5  # type: ignore[misc]
    assert (config.users, config.days, config.seed, config.chunk_days) == (100_000, 180, 42, 7)


def test_simulating_needs_an_end_date() -> None:
    with pytest.raises(ValueError, match="end_date"):
        next(simulate(SimConfig(users=10, days=3)))


def test_estimate_is_close_to_the_real_count(small: Simulated) -> None:
    real = sum(t.num_rows for t in small.tables if t.column("type")[0].as_py() in ("track", "track_signup"))
    assert estimate_event_count(small.config) == pytest.approx(real, rel=0.25)


def test_ground_truth_has_one_row_per_person_and_the_promised_columns(small: Simulated) -> None:
    truth = small.truth
    assert truth.num_rows == small.config.users
    assert truth.column("person").to_pylist() == list(range(small.config.users))
    for name in ("login_id", "anonymous_ids", "purchase_rate", "dropout_prob", "dropout_time", "channel",
                 "is_fake_install", "coupon_uplift", "push_uplift", "never_treated"):  # fmt: skip
        assert name in truth.column_names
    fake = truth.filter(truth.column("is_fake_install"))
    assert pc.max(fake.column("purchase_rate")).as_py() == 0.0
    assert pc.max(fake.column("coupon_uplift")).as_py() == 0.0
    # Heterogeneous uplifts: older households respond more to coupons.
    means = truth.group_by("age_band").aggregate([("coupon_uplift", "mean")])
    by_age = dict(zip(means["age_band"].to_pylist(), means["coupon_uplift_mean"].to_pylist(), strict=True))
    assert by_age["56+"] > 1.5 * by_age["18-25"]


def test_write_ground_truth(tmp_path: Path) -> None:
    config = SimConfig(users=300, days=10, end_date=date(2024, 6, 30))
    path = write_ground_truth(config, tmp_path / "truth" / "gt.parquet")
    assert pq.read_table(path).equals(ground_truth(config))


def test_catalogue_items(small: Simulated) -> None:
    products, coupons = small.tables[0], small.tables[1]
    assert set(pc.unique(products.column("item_type")).to_pylist()) == {"product"}
    assert products.num_rows == 500
    assert len(pc.unique(products.column("item_id"))) == len(pc.unique(products.column("name"))) == 500
    assert {"imported_fruit", "laundry", "fresh_food"} - set(pc.unique(products.column("category")).to_pylist()) == {
        "fresh_food"
    }
    assert pc.all(products.filter(pc.equal(products.column("category"), "imported_fruit")).column("is_imported"))
    assert set(pc.unique(coupons.column("item_type")).to_pylist()) == {"coupon"}
    assert pc.all(pc.less(coupons.column("amount"), coupons.column("threshold"))).as_py()
