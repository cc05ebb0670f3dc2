"""Job time limits: which `max_runtime` a job runs under, and what ends it.

Precedence. A job runs under its own `max_runtime` when its submission gave one, else its
owner's default (an admin sets it per user: `PUT /users/{name}/limits`, `bosun limits`), else
its queue's default (`BOSUN_QUEUE_MAX_RUNTIME`, e.g. `gpu=3d,cpu=12h,default=1d`), else none:
it may run unbounded. A user default of 0 means no limit for that user, whatever the queue's.
The limit is resolved once, at submission, and stored on the job with where it came from, as
Slurm fixes a job's time limit when it is submitted: a default changed later applies to jobs
submitted later, and the queue view shows each job the limit it will get.

What it bounds: the running time of one attempt, from the claim (set-up included: the job holds
its GPU from then on) to its end. Per attempt and not summed over attempts, because an attempt
that ends by no doing of the job's own (a lost worker, a preemption, an outage, a worker
shutting down) goes back to the queue and resumes from its last checkpoint: the time since that
checkpoint is run again, and charging the box's faults to the job's budget would cut short a
job that is within its limit. Attempts are bounded anyway (`max_attempts`), and a rerun is a new
job with a fresh budget. A multi-GPU job's limit is rank 0's: its stop reaches every rank at the
same step. A landscape's tiles, once its job process has handed the job to them, run outside it.

What it does: once the attempt has run `max_runtime`, the worker asks the job process to stop
exactly as a cancel does (SIGTERM; the service checkpoints at its next `should_stop()`; SIGKILL
after `BOSUN_STOP_GRACE_SECONDS`), and the job ends `cancelled` with the reason `time limit`. A
rerun of it resumes from that checkpoint (see `api.routes.jobs.rerun`).
"""

from __future__ import annotations

from shared.durations import parse_duration

TIME_LIMIT = "time limit"
"""The reason of a job the worker stopped at its `max_runtime` (the job's `error` and message)."""

ANY_QUEUE = "default"
"""The key of `BOSUN_QUEUE_MAX_RUNTIME` that applies to a queue not named there."""


def parse_queue_limits(text: str) -> dict[str, int]:
    """`gpu=3d,cpu=1h,default=12h` as {queue: seconds}; ValueError names the entry it cannot read."""
    limits: dict[str, int] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        queue, sep, value = (s.strip() for s in entry.partition("="))
        if not sep or not queue:
            raise ValueError(f"{entry!r}: write QUEUE=DURATION, e.g. gpu=3d")
        try:
            limits[queue] = parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"{entry!r}: {exc}") from None
    return limits


def effective_max_runtime(*, job: int | None, user: int | None, queue: str,
                          queue_limits: dict[str, int]) -> tuple[int | None, str | None]:
    """(seconds or None for no limit, where it came from: 'job', 'user', 'queue' or None)."""
    if job is not None:
        return job, "job"
    if user is not None:
        return (user or None), "user"
    default = queue_limits.get(queue, queue_limits.get(ANY_QUEUE))
    return (default, "queue") if default is not None else (None, None)
