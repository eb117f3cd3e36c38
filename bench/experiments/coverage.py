"""Coverage, false positives and sample ratio alerts of the experiment statistics, graded by rehearsals against the
simulator's truth (issue 15, acceptance "Coverage").

    python -m bench.experiments.coverage [--runs 200] [--aa 200] [--users 3000] [--days 24] [--entry-day 14]
                                         [--check 3] [--workers 2]

Each rehearsal (:func:`userloop.experiment.rehearsal.rehearse`) simulates ``--users`` people over ``--days`` days
(seed = the run's number) and a campaign entering everyone installed by ``--entry-day`` at 10:00, goal: an order
within 7 days. Figures (one JSON line each, with exact binomial 95% intervals, Clopper–Pearson):

* ``coverage``: over ``--runs`` rehearsals of coupon (50%) against control (50%), the share whose 95% Welch
  interval of the conversion effect covers the true average effect among everyone enrolled (the mean of each
  enrolled person's expected effect of the coupon had they been in the coupon arm, from their latent uplift and
  reachability); the same for revenue per person; beside it, the share covering the true effect among the coupon
  arm's own people.
* ``sequential_coverage``: the share whose always-valid confidence sequence covers the true effect *at every one
  of the 7 daily looks* (the truth at a look is the effect on an order by then); beside it, the fixed-horizon
  interval read at every look.
* ``false_positive_rate``: over ``--aa`` A/A rehearsals (both arms get the same coupon), the share with p < 0.05.
* ``srm_alert_rate``: over all rehearsals, the share whose split fails the sample ratio check (p < 0.001).
* ``fast_path_check``: the acceptance runs on the fast path (same simulated days, split hashing, reachability,
  responses and statistics; goal counted from the simulator's records). For ``--check`` seeds the full loop
  (workspace, loader, journeys engine, simulated channels, SQL) runs too, and its per-arm statistics and truth at
  every look must equal the fast path's given the loader's person keys.
* ``seconds_per_rehearsal``: CPU seconds of one fast rehearsal and of one loaded one (the machine is shared).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import report

from userloop.experiment.rehearsal import Arm, Rehearsal, campaign, rehearse
from userloop.sim import SimConfig

BENCH = "experiments_coverage"
END = date(2026, 3, 29)


def _config(seed: int, users: int, days: int) -> SimConfig:
    return SimConfig(users=users, days=days, seed=seed, end_date=END)


def _doc(config: SimConfig, entry_day: int, arms: list[Arm]) -> dict[str, Any]:
    at = datetime.combine(config.start_date + timedelta(days=entry_day), datetime.min.time()).replace(hour=10)
    return campaign(arms, at)


PLANTED = [Arm("coupon", 50, "coupon"), Arm("control", 50)]
A_A = [Arm("a", 50, "coupon"), Arm("b", 50, "coupon")]


def planted(seed: int, users: int, days: int, entry_day: int) -> dict[str, Any]:
    """One rehearsal with a planted effect: does each interval cover the truth?"""
    config = _config(seed, users, days)
    started = time.process_time()
    r = rehearse(config, _doc(config, entry_day, PLANTED), fast=True)
    seconds = time.process_time() - started
    out: dict[str, Any] = {"seed": seed, "seconds": seconds, "srm": r.srm().alert}
    for metric in ("conversion", "revenue"):
        i = r.effect("coupon", metric)  # type: ignore[arg-type]
        truth = r.true_effect("coupon", metric)  # type: ignore[arg-type]
        among_arm = r.true_effect("coupon", metric, among="arm")  # type: ignore[arg-type]
        out[f"{metric}_covers"] = i.low <= truth <= i.high
        out[f"{metric}_covers_arm"] = i.low <= among_arm <= i.high
        out[f"{metric}_truth"] = truth
        out[f"{metric}_estimate"] = i.estimate
    looks = range(len(r.looks))
    out["sequential_covers"] = all(_covers(r, k, sequential=True) for k in looks)
    out["fixed_peeking_covers"] = all(_covers(r, k, sequential=False) for k in looks)
    return out


def _covers(r: Rehearsal, look: int, *, sequential: bool) -> bool:
    i = r.effect("coupon", look=look, sequential=sequential)
    return i.low <= r.true_effect("coupon", look=look) <= i.high


def a_over_a(seed: int, users: int, days: int, entry_day: int) -> dict[str, Any]:
    """One A/A rehearsal: is the difference called significant, does the split look mismatched?"""
    config = _config(seed, users, days)
    r = rehearse(config, _doc(config, entry_day, A_A), fast=True)
    return {"seed": seed, "p": r.effect("b").p_value, "srm": r.srm().alert}


def check(seed: int, users: int, days: int, entry_day: int, root: Path) -> dict[str, Any]:
    """The full loop and the fast path on one seed: equal per-arm statistics and truth at every look?"""
    config = _config(seed, users, days)
    doc = _doc(config, entry_day, PLANTED)
    started = time.process_time()
    loaded = rehearse(config, doc, path=root / f"check-{seed}")
    seconds = time.process_time() - started
    assert loaded.workspace is not None
    loaded.workspace.close()
    keys = dict(zip(loaded.enrolled.person.tolist(), loaded.enrolled.key.tolist(), strict=True))
    fast = rehearse(config, doc, fast=True, keys=keys)
    equal = True
    for (m1, t1), (m2, t2) in zip(loaded.looks, fast.looks, strict=True):
        for arm in m1:
            a, b = m1[arm], m2[arm]
            equal &= a.conversion == b.conversion and a.revenue.n == b.revenue.n
            equal &= math.isclose(a.revenue.total, b.revenue.total, rel_tol=1e-9, abs_tol=1e-9)
            equal &= math.isclose(a.revenue.total_sq, b.revenue.total_sq, rel_tol=1e-9, abs_tol=1e-9)
            equal &= (t1[arm].people, t1[arm].treated) == (t2[arm].people, t2[arm].treated)
            equal &= math.isclose(t1[arm].conversion, t2[arm].conversion, rel_tol=1e-12, abs_tol=1e-15)
    recount_equal = all(
        loaded.looks[k][0][arm].conversion == loaded.recount(k)[arm].conversion
        for k in range(len(loaded.looks))
        for arm in loaded.arms
    )
    return {"seed": seed, "equal": equal, "recount_equal": recount_equal, "seconds": seconds,
            "people": sum(a.conversion.n for a in loaded.arms.values())}  # fmt: skip


def _share(hits: int, n: int) -> dict[str, float]:
    from scipy.stats import binomtest

    ci = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="exact")
    return {"hits": hits, "n": n, "ci_low": ci.low, "ci_high": ci.high}


def _acceptance(args: argparse.Namespace) -> int:
    """The planted-effect and A/A rehearsals on the fast path, in ``args.workers`` processes; 1 when a target is
    missed."""
    shape = (args.users, args.days, args.entry_day)
    failed = 0
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        seeds = range(1, args.runs + 1)
        runs = list(pool.map(planted, seeds, *([x] * args.runs for x in shape)))
        aa_seeds = range(10_001, 10_001 + args.aa)
        aas = list(pool.map(a_over_a, aa_seeds, *([x] * args.aa for x in shape)))
    n = len(runs)
    for metric in ("conversion", "revenue"):
        hits = sum(r[f"{metric}_covers"] for r in runs)
        arm_hits = sum(r[f"{metric}_covers_arm"] for r in runs)
        report(BENCH, "coverage", hits / n, "share", metric=metric, **_share(hits, n), users=args.users,
               covers_effect_among_the_arms_people=arm_hits / n,
               mean_truth=sum(r[f"{metric}_truth"] for r in runs) / n,
               mean_estimate=sum(r[f"{metric}_estimate"] for r in runs) / n, target=">= 0.93")  # fmt: skip
    failed += sum(r["conversion_covers"] for r in runs) / n < 0.93
    seq = sum(r["sequential_covers"] for r in runs)
    fixed = sum(r["fixed_peeking_covers"] for r in runs)
    report(BENCH, "sequential_coverage", seq / n, "share", looks=7, **_share(seq, n),
           fixed_horizon_at_every_look=fixed / n, target=">= 0.95 (always valid)")  # fmt: skip
    failed += seq / n < 0.93
    fp = sum(a["p"] < 0.05 for a in aas)
    report(BENCH, "false_positive_rate", fp / len(aas), "share", **_share(fp, len(aas)), target="0.03 to 0.07")
    failed += not 0.03 <= fp / len(aas) <= 0.07
    srm = sum(r["srm"] for r in runs) + sum(a["srm"] for a in aas)
    total = len(runs) + len(aas)
    report(BENCH, "srm_alert_rate", srm / total, "share", **_share(srm, total), target="<= 0.01")
    failed += srm / total > 0.01
    report(BENCH, "seconds_per_rehearsal", sum(r["seconds"] for r in runs) / n, "cpu s", path="fast",
           users=args.users, days=args.days)  # fmt: skip
    return failed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments.coverage")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--aa", type=int, default=200)
    parser.add_argument("--users", type=int, default=3_000)
    parser.add_argument("--days", type=int, default=24)
    parser.add_argument("--entry-day", type=int, default=14)
    parser.add_argument("--check", type=int, default=3)
    parser.add_argument("--check-users", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    failed = 0
    if args.check:
        with tempfile.TemporaryDirectory(prefix="userloop-coverage-") as root:
            checks = [
                check(s, args.check_users, args.days, args.entry_day, Path(root)) for s in range(1, args.check + 1)
            ]
        ok = all(c["equal"] and c["recount_equal"] for c in checks)
        report(BENCH, "fast_path_check", float(ok), "all equal", seeds=[c["seed"] for c in checks],
               users=args.check_users, loaded_cpu_seconds=[round(c["seconds"], 2) for c in checks],
               loaded_people=[c["people"] for c in checks],
               target="loaded workspace == fast path == brute-force recount, every look")  # fmt: skip
        failed += not ok
    if args.runs and args.aa:
        failed += _acceptance(args)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
