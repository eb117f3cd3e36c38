"""The membership pass as an operation (``POST /api/v1/membership/pass``, ``userloop members run-once``).

The running service repeats the pass on its own (:mod:`userloop.service.membership`); this operation runs one now,
for the embedded mode without a server (the CLI in process) or to hurry one in the server. What a pass does is
:func:`userloop.membership.runner.run_pass`; it is safe to run beside the service's own, every step being
idempotent by its keys.
"""

from __future__ import annotations

from pydantic import Field

from userloop.core.clock import utcnow
from userloop.ops.base import OpContext, ProjectScoped, Strict, operation


class PassRequest(ProjectScoped):
    """The project whose programmes pass. No instant is taken: a pass writes what is due (expiries, birthdays),
    and one run as of a later time would book tomorrow's expiries today."""


class ProgrammeShown(Strict):
    programme: str
    evaluated: int = Field(description="Members evaluated (those who earned; all on the day's full evaluation).")
    full: bool = Field(description="The day's full evaluation ran in this pass.")
    up: int
    down: int
    lots_expired: int
    points_expired: int
    levels_granted: int = Field(description="Levels reached whose coupons were granted.")
    birthdays: int = Field(description="Birthday packs given.")
    coupons: int = Field(description="Coupons granted (level, periodic and birthday).")
    multiplied: int = Field(description="Rewards whose level points multiplier was booked.")
    bonus_points: int
    failed: int = Field(description="Causes left for a later pass (an unknown or used-up benefit).")


class PassShown(Strict):
    programmes: list[ProgrammeShown]
    tasks_completed: int
    rewards_settled: int
    events_written: int = Field(description="Membership events written to the events table.")


@operation("membership.pass", "POST", "/api/v1/membership/pass", right="operate", store_writes=True,
           summary="Run the membership pass: growth, levels, expiries, benefits, tasks, events")  # fmt: skip
def run_pass(ctx: OpContext, req: PassRequest) -> PassShown:
    """One membership pass over the project's active programmes."""
    from userloop.engage.secrets import SecretBox
    from userloop.membership import runner

    done = runner.run_pass(ctx.ws.meta, ctx.info, ctx.store, utcnow(),
                           secret=SecretBox.for_workspace(ctx.ws.path).derive("links"))  # fmt: skip
    return PassShown(programmes=[ProgrammeShown(**p.__dict__) for p in done.programmes],
                     tasks_completed=done.tasks_completed, rewards_settled=done.rewards_settled,
                     events_written=done.events_written)  # fmt: skip
