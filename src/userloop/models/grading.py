"""Grade the CLV P(alive) and the churn score against the simulator's ground truth.

``python -m userloop.models.grading --users 30000 --days 150 --lead-days 30`` simulates a business into a new
workspace (or reuses one given with ``--workspace``), runs the models ``lead_days`` days before the end, and
prints one JSON line per figure: P(alive) of each CLV purchase model (and of the automatic choice) against
"truly alive at the as-of day" (AUC, ECE; Fawcett 2006, Naeini et al. 2015), and the churn score against its own
target (no purchase in the next ``horizon_days`` days) and against the true drop-outs. The truth is the
simulator's ``dropout_time`` (:func:`userloop.sim.truth.ground_truth`). The as-of day is fixed by the simulated
calendar, never by the machine's clock.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq

from userloop.core.clock import DEFAULT_TIMEZONE
from userloop.models.base import RunContext, read_outputs
from userloop.models.churn import ChurnModel
from userloop.models.churn_features import read_labels
from userloop.models.clv_model import CLVConfig, CLVRunModel
from userloop.models.evaluation import classification_report
from userloop.store import ProjectStore, Workspace
from userloop.store.sqlbuild import sql

__all__ = ["dropped_out_by", "grade"]

END = date(2026, 6, 30)
KEYS = ("users", "positive_rate", "auc", "ece", "brier")


def dropped_out_by(project: ProjectStore, truth_path: Path, user_id: npt.NDArray[Any], end: Any) -> npt.NDArray[Any]:
    """True where the person behind each ``user_id`` dropped out (truth ``dropout_time``) before ``end``.

    People are matched through their first anonymous id, which the identity table maps to the ``user_id``.
    """
    truth = pq.read_table(truth_path, columns=["anonymous_ids", "dropout_time"])
    first_ids = [ids[0] for ids in truth.column("anonymous_ids").to_pylist()]
    dropout = truth.column("dropout_time").to_numpy(zero_copy_only=False).astype("datetime64[ms]")
    stmt = sql(
        "SELECT id_value, user_id FROM $identities WHERE id_value IN (SELECT unnest(?))",
        identities=project.ref("identities"),
    )
    rows = project.fetchall(stmt, [first_ids])
    person_of_id = {anon: i for i, anon in enumerate(first_ids)}
    person_of_user = {uid: person_of_id[anon] for anon, uid in rows}
    when = dropout[np.array([person_of_user[u] for u in user_id.tolist()], dtype=np.int64)]
    return np.asarray(~np.isnat(when) & (when < np.datetime64(end, "ms")))


def _pick(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in KEYS}


def grade(
    project: ProjectStore, truth_path: Path, as_of: date, timezone: str = DEFAULT_TIMEZONE
) -> list[dict[str, Any]]:
    """The figures, one dict each: P(alive) per CLV model and for ``auto``; churn on its target and on the truth."""
    ctx = RunContext(project, as_of, timezone)
    rows: list[dict[str, Any]] = []
    for name in ("bgnbd", "paretonbd", "mbgnbd", "auto"):
        run = CLVRunModel(CLVConfig(clv_model=name, validate_models=name == "auto")).run(
            project, as_of, timezone=timezone
        )
        out = read_outputs(project, "clv", as_of)
        alive = (~dropped_out_by(project, truth_path, out["user_id"], ctx.end)).astype(np.int8)
        rows.append({"figure": "p_alive_vs_truly_alive", "clv_model": name,
                     "used": run.report["transaction_model"]["name"],
                     **_pick(classification_report(alive, out["p_alive"]))})  # fmt: skip
    model = ChurnModel()
    model.run(project, as_of, timezone=timezone)
    out = read_outputs(project, "churn", as_of)
    outcome = read_labels(ctx, model.config.features, out["user_id"], model.config.horizon_days)
    p = out["churn_probability"]
    rows.append({"figure": "churn_vs_its_target", **_pick(classification_report(outcome, p))})
    for what, end in (
        ("churn_vs_dropped_out_by_as_of", ctx.end),
        ("churn_vs_dropped_out_within_horizon", ctx.end + timedelta(days=model.config.horizon_days)),
    ):
        gone = dropped_out_by(project, truth_path, out["user_id"], end).astype(np.int8)
        rows.append({"figure": what, **_pick(classification_report(gone, p))})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=150)
    parser.add_argument("--lead-days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workspace", type=Path, default=None, help="a new directory (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        from userloop.sim.run import run_simulation

        ws, _ = Workspace.init(args.workspace or Path(tmp) / "ws")
        try:
            sim = run_simulation(ws, "default", users=args.users, days=args.days, seed=args.seed, end_date=END)
            as_of = END - timedelta(days=args.lead_days)
            for row in grade(ws.project("default"), Path(sim.ground_truth), as_of):
                print(json.dumps({"users_simulated": args.users, "days": args.days, "as_of": str(as_of), **row}))
        finally:
            ws.close()


if __name__ == "__main__":
    main()
