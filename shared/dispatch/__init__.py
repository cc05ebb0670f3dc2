"""The dispatcher's policy: which queued job goes to which free worker slot, and why the others wait.

Jobs wait in the database (`queued`, `enqueued_at` NULL). A slot is an alive worker (heartbeat
within the lease) that is not draining, runs no job and has not been sent one it has yet to claim.
The dispatcher picks the slot itself and sends the job to that worker's own queue (the job's
`job_ranks` row says which), so the slot stays taken until the job ends and no other worker,
draining or busy, receives it. The order is the one Slurm's multifactor priority and
Determined's fair-share scheduler use in spirit:

1. priority, highest first (an admin's override beats fair share);
2. fair share: the owner's recent GPU-seconds, decayed exponentially with a half-life
   (`fair_share_half_life_hours`), fewest first; among equal usage, the owner holding fewer GPUs;
3. age, oldest first.

A job asking for a share of a GPU (`gpus: 0.5`; shared.gpu_shares) goes to a GPU that runs only
shared jobs, the fullest one it fits on (so idle GPUs stay whole for whole-GPU jobs), while the
shares there sum to at most 1, fewer than `gpu_slots` run there, and the free memory its worker
reported is at least `share_min_free_mb`; only then to an idle GPU. A whole-GPU job never goes
to a GPU with shares in use.

A job asking for N > 1 GPUs runs as N ranks on N workers of one box, each sent its rank: it waits
until one box has N free slots. Jobs behind it in its queue
wait too (no backfill), so a big job is never starved by a stream of small ones.

Limits (`max_gpus_per_user`, `max_queued_jobs_per_user`, overridable per user) never reject a
job: it waits with the reason `user limit`. A waiting job of at least `preempt_priority` may ask
the lowest-priority running job of its queue to checkpoint and re-queue itself.

A job, rank or tile sent and not claimed within `redispatch_seconds` is sent again, to the same
worker or another, whatever that worker's state: the broker message is only a nudge, the claim is
one conditional UPDATE, so a duplicate is harmless and a lost message costs one deadline.

The package:
- `policy.plan`: the pure decision over plain data (queued jobs, running jobs, workers, usage),
  O(n log n) in waiting jobs, with a reason for every job that waits;
- `usage`: decayed GPU-seconds per user (fair share) and the usage reports;
- `snapshot`: reads that plain data from the database;
- `passes.run_pass`: one pass under the dispatch lock (deadlines, plan, marks, stored decisions),
  then `publisher` sends the messages;
- `requests`: `request_dispatch` is all any other place does; each worker's dispatcher loop
  (worker.dispatcher) runs the passes, at once when asked and otherwise periodically.
"""

from shared.dispatch.passes import last_decisions, run_pass
from shared.dispatch.policy import (
                                    DEPENDENCY,
                                    DISPATCHED,
                                    HELD,
                                    NO_FREE_GPU,
                                    PRIORITY,
                                    USER_LIMIT,
                                    Entry,
                                    Owner,
                                    Plan,
                                    QueuedJob,
                                    RunningJob,
                                    WorkerSlot,
                                    plan,
                                    queue_for,
)
from shared.dispatch.requests import request_dispatch
from shared.dispatch.snapshot import alive_workers, busy_worker_names, current_load, current_plan, limits_of
from shared.dispatch.usage import decayed_gpu_seconds, gpu_seconds_total, iter_days, usage_by_day

__all__ = ["DEPENDENCY", "DISPATCHED", "HELD", "NO_FREE_GPU", "PRIORITY", "USER_LIMIT", "Entry", "Owner", "Plan",
           "QueuedJob", "RunningJob", "WorkerSlot", "alive_workers", "busy_worker_names", "current_load",
           "current_plan", "decayed_gpu_seconds", "gpu_seconds_total", "iter_days", "last_decisions", "limits_of",
           "plan", "queue_for", "request_dispatch", "run_pass", "usage_by_day"]
