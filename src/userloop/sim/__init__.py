"""A behavioural simulator of a community fresh-food O2O business (DOMAIN §13), for demos, tests and benchmarks.

Example
-------
>>> from datetime import date
>>> from userloop.sim import SimConfig, simulate
>>> config = SimConfig(users=200, days=14, end_date=date(2024, 6, 30))
>>> sum(t.num_rows for t in simulate(config)) > 0
True
"""

from __future__ import annotations

from userloop.sim.config import MembershipConfig, SimConfig
from userloop.sim.generator import estimate_event_count, simulate
from userloop.sim.membership import MembershipEffect, membership_att
from userloop.sim.truth import PASSIVE_EVENTS, daily_active, ground_truth, write_ground_truth

__all__ = [
    "PASSIVE_EVENTS",
    "MembershipConfig",
    "MembershipEffect",
    "SimConfig",
    "daily_active",
    "estimate_event_count",
    "ground_truth",
    "membership_att",
    "simulate",
    "write_ground_truth",
]
