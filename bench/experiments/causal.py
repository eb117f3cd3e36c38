"""Causal estimators graded against the simulator's truth over many seeds (issue 15 items 6 and 7).

    python -m bench.experiments.causal [--only did|uplift] [--seeds 10] [--first 1] [--users 6000]

Figures (one JSON line each, then a summary line per estimator):

* ``did_seed``: per seed, the true membership ATT (extra orders per member-day, ``membership_att``), the matched
  DiD estimate and its 95% interval, whether it covers, the naive before/after estimate and whether *it* covers,
  and the estimates without IPCW (``cut``: later joiners dropped unweighted; ``keep``: never censored).
* ``did_coverage``: share of seeds whose DiD interval covers the truth, with its exact (Clopper–Pearson) 95%
  interval, and the truth of the matched joiners only, the DiD's own estimand: a joiner without look-alikes is
  left out (the acceptance: it covers; the naive before/after does not), mean relative bias of each variant, and
  the diagnosis of the interval's width: the spread of the estimate's error over seeds beside the mean reported
  standard error (two-way clustered, and one-way by person alone) and the coverage the one-way one would give.
* ``uplift_seed`` / ``uplift_ratio``: per seed, the true mean coupon uplift of the top 20% by predicted uplift
  over that of everyone (a random 20% in expectation), for the T- and X-learner; the acceptance is >= 1.5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from bench.harness import report, timed
from tests.experiment.causal_sim import load, person_of

from userloop.experiment.did import DidSpec, difference_in_differences
from userloop.sim import SimConfig
from userloop.sim.config import MembershipConfig
from userloop.sim.membership import membership_att
from userloop.store import Workspace

BENCH = "experiments_causal"
PROGRAMME = MembershipConfig(launch_day=40, campaign_day=80, campaign_days=7, campaign_lift=2.0, join_rate=0.001)


def did_seed(seed: int, users: int, root: Path, campaigns: bool = True) -> dict[str, Any]:
    """One simulated business: the truth, the DiD (three censorings) and the naive comparisons.

    Without ``campaigns`` (no coupons, no pushes) every purchase comes from the rate membership multiplies, so the
    truth is exact; with them, a member's coupon- and push-driven extra purchases also drop out less often (the
    dropout chance per purchase is divided by m), a small effect of membership that ``membership_att`` leaves out.
    """
    shares = {} if campaigns else {"coupon_share": 0.0, "push_share": 0.0}
    config = SimConfig(users=users, days=120, end_date=date(2024, 4, 20), seed=seed, membership=PROGRAMME, **shares)
    path, truth = load(config, root / f"did-{seed}")
    att = membership_att(truth).orders_per_member_day
    lately = ("push_received",) if campaigns else ()
    spec = DidSpec(had_done=("register",), did_lately=lately, start=config.start_date, end=config.end_date)
    out: dict[str, Any] = {"seed": seed, "truth": att}
    with Workspace.open(path, read_only=True) as ws:
        store, zone = ws.project("default"), ws.project_info("default").timezone
        with timed() as t:
            found = difference_in_differences(store, spec, zone)
        for censor in ("cut", "keep"):
            other = difference_in_differences(store, spec.model_copy(update={"censor": censor}), zone)
            out[f"did_{censor}"] = other.effect.estimate
    person = person_of(path, found.matched_ids, truth)
    m, cf, days = (np.asarray(truth.column(c).to_numpy())[person]
                   for c in ("membership_effect", "counterfactual_post_orders", "member_post_days"))  # fmt: skip
    matched_truth = float(((m - 1.0) * cf).sum() / days.sum())
    out |= {
        "truth_matched": matched_truth,
        "covers_matched": found.effect.low < matched_truth < found.effect.high,
        "did": found.effect.estimate,
        "low": found.effect.low,
        "high": found.effect.high,
        "covers": found.effect.low < att < found.effect.high,
        "se": found.effect.se,
        "se_person": found.se_person,
        "covers_person": abs(found.effect.estimate - att) < 1.959964 * found.se_person,
        "before_after": found.before_after.estimate,
        "before_after_covers": found.before_after.low < att < found.before_after.high,
        "members_vs_others": found.members_vs_others.estimate,
        "matched": found.matched,
        "joiners": found.joiners,
        "seconds": t.seconds,
    }
    return out


def run_did(seeds: list[int], users: int, campaigns: bool = True) -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            row = did_seed(seed, users, Path(tmp), campaigns) | {"campaigns": campaigns}
            rows.append(row)
            report(BENCH, "did_seed", row["did"], "orders/member-day", **{k: v for k, v in row.items() if k != "did"})
    hits = sum(r["covers"] for r in rows)
    covered = hits / len(rows)
    low, high = clopper_pearson(hits, len(rows))
    covered_matched = sum(r["covers_matched"] for r in rows) / len(rows)
    naive = sum(r["before_after_covers"] for r in rows) / len(rows)
    bias = {k: statistics.mean(r[k] / r["truth"] - 1 for r in rows) for k in ("did", "did_cut", "did_keep")}
    errors = [r["did"] - r["truth"] for r in rows]
    report(BENCH, "did_coverage", covered, "share", seeds=len(rows), users=users, campaigns=campaigns,
           clopper_pearson_95=[low, high],
           error_sd=statistics.stdev(errors) if len(rows) > 1 else None,
           mean_se=statistics.mean(r["se"] for r in rows),
           mean_se_person=statistics.mean(r["se_person"] for r in rows),
           covers_person_se=sum(r["covers_person"] for r in rows) / len(rows),
           naive_before_after_covers=naive,
           covers_matched_joiners_truth=covered_matched,
           relative_bias_weighted=bias["did"], relative_bias_cut=bias["did_cut"],
           relative_bias_keep=bias["did_keep"], target="DiD covers; before/after does not")  # fmt: skip
    return 0 if covered >= 0.8 and naive == 0 else 1


def clopper_pearson(hits: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """The exact binomial interval of a share (Clopper & Pearson, Biometrika 1934), from the beta quantiles."""
    from scipy.stats import beta

    low = float(beta.ppf(alpha / 2, hits, n - hits + 1)) if hits > 0 else 0.0
    high = float(beta.ppf(1 - alpha / 2, hits + 1, n - hits)) if hits < n else 1.0
    return low, high


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments.causal")
    parser.add_argument("--only", choices=("did", "uplift"))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first", type=int, default=1, help="the first seed (to split a run over processes)")
    parser.add_argument("--users", type=int, default=6_000)
    parser.add_argument("--no-campaigns", action="store_true", help="DiD without coupons and pushes")
    args = parser.parse_args(argv)
    seeds = list(range(args.first, args.first + args.seeds))
    failed = 0
    if args.only in (None, "did"):
        failed += run_did(seeds, args.users, not args.no_campaigns)
    if args.only in (None, "uplift"):
        from bench.experiments.causal_uplift import run_uplift

        failed += run_uplift(seeds[:5])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
