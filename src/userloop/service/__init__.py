"""The long-running service's own parts: the job scheduler and its tables."""

from __future__ import annotations

from userloop.service.scheduler import Job, Scheduler

__all__ = ["Job", "Scheduler"]
