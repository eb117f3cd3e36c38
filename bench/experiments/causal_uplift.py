"""The uplift part of ``python -m bench.experiments.causal``: T- and X-learner on the simulator's randomized
coupon drops, graded against each person's true ``coupon_uplift`` over several seeds.

Per seed and learner: the true mean uplift of the top 20% by predicted uplift over that of everyone scored (a
random 20% in expectation), against the effect a coupon has now (``coupon_uplift`` of people still buying; a
customer who dropped out does not respond) and against the latent trait alone; and the held-out Qini
coefficient.
"""

from __future__ import annotations

import statistics
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
from bench.harness import report, timed
from tests.experiment.causal_sim import load_latent, person_of

from userloop.experiment.uplift import UpliftSpec, fit_uplift, top_uplift
from userloop.sim import SimConfig
from userloop.store import Workspace

BENCH = "experiments_causal"
SPEC = UpliftSpec(features=("age_band", "channel", "$os", "push_enabled"), value_property=None)


def run_uplift(seeds: list[int], users: int = 20_000) -> int:
    ratios: dict[str, list[float]] = {"t": [], "x": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            config = SimConfig(users=users, days=120, end_date=date(2024, 4, 20), seed=seed)
            path, truth = load_latent(config, Path(tmp) / f"uplift-{seed}")
            with Workspace.open(path, read_only=True) as ws:
                store = ws.project("default")
                for learner in ("t", "x"):
                    with timed() as t:
                        fit = fit_uplift(store, SPEC.model_copy(update={"learner": learner}), config.timezone,
                                         config.start_date, config.end_date)  # fmt: skip
                    person = person_of(path, fit.user_id, truth)
                    trait = np.asarray(truth.column("coupon_uplift").to_numpy())[person]
                    now = trait * np.asarray(truth.column("still_buying").to_numpy(zero_copy_only=False))[person]
                    top = np.isin(fit.user_id, top_uplift(fit, 0.2))
                    ratio = float(now[top].mean() / now.mean())
                    ratios[learner].append(ratio)
                    report(BENCH, "uplift_seed", ratio, "x random 20%", seed=seed, learner=learner, users=users,
                           trait_ratio=float(trait[top].mean() / trait.mean()), qini=fit.curves.coefficient,
                           rows=fit.rows, drops=fit.drops, seconds=t.seconds, target=">= 1.5")  # fmt: skip
    for learner, values in ratios.items():
        report(BENCH, "uplift_ratio", statistics.mean(values), "x random 20%", learner=learner, seeds=len(values),
               min=min(values), max=max(values), target=">= 1.5")  # fmt: skip
    return 0 if all(min(v) >= 1.5 for v in ratios.values()) else 1
