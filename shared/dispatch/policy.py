"""The pure dispatch decision: plain data in, decisions with reasons out (no database, no broker).

See the package docstring for the policy. `plan` is O(n log n) in waiting jobs: one sort of each
owner's jobs and a heap over owners; slots and running jobs are few (one per GPU).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.gpu_shares import fits, format_gpus, is_share

# Why a queued job is not running now (GET /api/v1/queue).
DEPENDENCY, HELD, USER_LIMIT, NO_FREE_GPU, PRIORITY = "dependency", "held", "user limit", "no free GPU", "priority"
DISPATCHED = "dispatched"


def queue_for(gpus: float) -> str:
    """The Celery queue of a job asking for `gpus` GPUs: CPU-only work never blocks a GPU slot."""
    return "cpu" if gpus == 0 else "gpu"


@dataclass(slots=True)
class QueuedJob:
    """A queued job as the planner sees it (read-only; not frozen, which would make building
    10,000 of them per pass slow); `waits_for` lists its unfinished parents (id, status)."""

    id: int
    owner_id: int
    created_at: datetime
    queue: str = "gpu"
    gpus: float = 1
    priority: int = 0
    enqueued_at: datetime | None = None
    held: bool = False
    waits_for: tuple[tuple[int, str], ...] = ()
    assigned: bool = False  # sent, with its ranks recorded: its workers count as busy already
    unclaimed_by: frozenset[str] = frozenset()  # workers that left its last message unclaimed past the deadline
    attempts: int = 0
    name: str = ""
    type: str = ""


@dataclass(slots=True)
class RunningJob:
    """A running job: what fair share, limits and preemption need of it."""

    id: int
    owner_id: int
    started_at: datetime
    queue: str = "gpu"
    gpus: float = 1
    priority: int = 0
    preempt_requested: bool = False
    cancel_requested: bool = False
    worker: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class WorkerSlot:
    """An alive worker: the queues it serves, its box, whether it holds whole-GPU work or drains, the
    shares of its GPU that shared jobs hold (sent or running) and its GPU's free memory (None: unknown)."""

    name: str
    queues: frozenset[str]
    host: str = ""
    busy: bool = False
    draining: bool = False
    shares: tuple[float, ...] = ()
    free_mb: int | None = None


@dataclass(frozen=True)
class Owner:
    """A user's name and effective limits (0: unlimited)."""

    name: str
    max_gpus: int = 0
    max_queued: int = 0


@dataclass(frozen=True)
class Slot:
    """One free worker: a Celery worker process serving these queues, on the box `host`."""

    worker: str
    queues: frozenset[str]
    host: str = ""
    free_mb: int | None = None


@dataclass(frozen=True)
class Sharing:
    """How shared jobs fill a GPU: at most `slots` at once, each admitted only while the GPU has at
    least `min_free_mb` free (where its worker reports it; the estimate of one shared job's need)."""

    slots: int = 2
    min_free_mb: int = 0


@dataclass
class SharedGpu:
    """A worker whose GPU runs shared jobs: the shares in use and the free memory left for more."""

    worker: str
    queues: frozenset[str]
    shares: list[float]
    free_mb: int | None = None


@dataclass
class Entry:
    """A queued job in the queue listing: its 1-based position in its queue and why it waits."""

    job: QueuedJob
    reason: str
    position: int | None = None
    detail: str = ""


@dataclass
class Plan:
    """What one dispatch pass does: jobs to send, preemptions to ask for, the queue as it stands."""

    dispatch: list[QueuedJob] = field(default_factory=list)
    preempt: list[tuple[RunningJob, QueuedJob]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    usage: dict[int, float] = field(default_factory=dict)
    free_slots: dict[str, int] = field(default_factory=dict)
    # Jobs to send: job id -> the workers of its ranks, rank 0 first (one for a 1-GPU job).
    ranks: dict[int, list[str]] = field(default_factory=dict)


def take_slot(slots: list[Slot], queue: str, avoid: frozenset[str] = frozenset()) -> Slot | None:
    """Remove and return the free slot for `queue` that serves the fewest queues (keeps versatile ones free),
    a worker in `avoid` (it left the job's last message unclaimed) only when no other is free."""
    matching = [s for s in slots if queue in s.queues]
    if not matching:
        return None
    slot = min(matching, key=lambda s: (s.worker in avoid, len(s.queues), s.worker))
    slots.remove(slot)
    return slot


def take_gang(slots: list[Slot], queue: str, n: int) -> list[Slot] | None:
    """Remove and return `n` free slots for `queue` on one box, rank 0 first; None when no box has `n`.

    Best fit: the box with the fewest free slots that still has `n`, so larger holes stay open
    for larger jobs.
    """
    by_host: dict[str, list[Slot]] = defaultdict(list)
    for slot in slots:
        if queue in slot.queues:
            by_host[slot.host].append(slot)
    fitting = [host for host, free in by_host.items() if len(free) >= n]
    if not fitting:
        return None
    host = min(fitting, key=lambda h: (len(by_host[h]), h))
    gang = sorted(by_host[host], key=lambda s: (len(s.queues), s.worker))[:n]
    for slot in gang:
        slots.remove(slot)
    return sorted(gang, key=lambda s: s.worker)


def shared_gpus(workers: Iterable[WorkerSlot]) -> list[SharedGpu]:
    """Undrained workers whose GPU runs shared jobs only: where the next shared job goes first."""
    return [SharedGpu(w.name, w.queues, list(w.shares), w.free_mb) for w in workers
            if w.shares and not w.busy and not w.draining]


def take_share(slots: list[Slot], shared: list[SharedGpu], job: QueuedJob, sharing: Sharing) -> tuple[str | None, str]:
    """The worker for a shared job, its share counted there; else None and, when GPU memory is what
    holds it, why. The fullest GPU it fits on first, so idle GPUs stay whole; an idle one only then."""
    def roomy(free_mb: int | None) -> bool:
        return free_mb is None or free_mb >= sharing.min_free_mb

    fitting = [g for g in shared if job.queue in g.queues and fits(g.shares, job.gpus, sharing.slots)]
    roomy_gpus = [g for g in fitting if roomy(g.free_mb)]
    if roomy_gpus:
        gpu = min(roomy_gpus, key=lambda g: (g.worker in job.unclaimed_by, -sum(g.shares), g.worker))
    else:
        slot = take_slot([s for s in slots if roomy(s.free_mb)], job.queue, job.unclaimed_by)
        if slot is None:
            short = [(g.worker, g.free_mb) for g in fitting] + [(s.worker, s.free_mb) for s in slots
                                                                if job.queue in s.queues]
            return None, "" if not short else (f"{short[0][0]} has {short[0][1]} MB of GPU memory free; a shared "
                                               f"job needs {sharing.min_free_mb} MB")
        slots.remove(slot)
        gpu = SharedGpu(slot.worker, slot.queues, [], slot.free_mb)
        shared.append(gpu)
    gpu.shares.append(job.gpus)
    if gpu.free_mb is not None:
        gpu.free_mb -= sharing.min_free_mb
    return gpu.worker, ""


def most_free_on_one_box(slots: list[Slot], queue: str) -> int:
    counts: dict[str, int] = defaultdict(int)
    for slot in slots:
        if queue in slot.queues:
            counts[slot.host] += 1
    return max(counts.values(), default=0)


def slot_counts(slots: Iterable[Slot]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for slot in slots:
        for queue in slot.queues:
            counts[queue] += 1
    return dict(counts)


def free_slots(workers: Iterable[WorkerSlot], in_flight: Iterable[QueuedJob]) -> list[Slot]:
    """Undrained idle workers, less one slot of its queue for each job sent without ranks recorded.

    Such a job (sent to the shared queue of its type, before jobs went to their worker's own
    queue) is bound to no worker: it takes the slot serving the fewest other queues.
    """
    slots = [Slot(w.name, w.queues, w.host, w.free_mb) for w in workers
             if not w.busy and not w.shares and not w.draining]
    for job in in_flight:
        if not job.assigned and take_slot(slots, job.queue) is None:
            break
    return slots


def fair_order(jobs: Iterable[QueuedJob], usage: dict[int, float], allocated: dict[int, float]) -> list[QueuedJob]:
    """Jobs in dispatch order: priority, then owner's decayed usage, then owner's GPUs held, then age.

    Each pick counts as held by its owner for the picks after it, so users with equal usage
    alternate instead of the oldest user's whole backlog going first. Within one owner the key
    differs only by (priority, age, id), so only each owner's first job competes: a heap over
    owners, re-keyed after each pick, gives the order in O(n log n).
    """
    by_owner: dict[int, list[QueuedJob]] = defaultdict(list)
    for job in jobs:
        by_owner[job.owner_id].append(job)
    held = defaultdict(float, allocated)
    rounded = {owner: round(usage.get(owner, 0.0), 3) for owner in by_owner}

    def key(owner: int, job: QueuedJob) -> tuple:
        return (-job.priority, rounded[owner], held[owner], job.created_at, job.id)

    heap = []
    for owner, owned in by_owner.items():
        owned.sort(key=lambda j: (-j.priority, j.created_at, j.id), reverse=True)  # pop() from the end
        heap.append((key(owner, owned[-1]), owner))
    heapq.heapify(heap)
    ordered: list[QueuedJob] = []
    while heap:
        _, owner = heapq.heappop(heap)
        job = by_owner[owner].pop()
        ordered.append(job)
        held[owner] += job.gpus
        if by_owner[owner]:
            heapq.heappush(heap, (key(owner, by_owner[owner][-1]), owner))
    return ordered


def over_queued_limit(ordered: Sequence[QueuedJob], owners: dict[int, Owner]) -> dict[int, str]:
    """Jobs past their owner's queued-jobs limit (in the owner's own order): they wait, uncounted."""
    seen: dict[int, int] = defaultdict(int)
    over = {}
    for job in ordered:
        owner = owners[job.owner_id]
        seen[job.owner_id] += 1
        if owner.max_queued and seen[job.owner_id] > owner.max_queued:
            over[job.id] = f"{owner.name} has more than {owner.max_queued} jobs queued"
    return over


def plan(*, queued: Sequence[QueuedJob], running: Sequence[RunningJob], workers: Sequence[WorkerSlot],
         usage: dict[int, float], owners: dict[int, Owner], preempt_priority: int | None = None,
         sharing: Sharing = Sharing()) -> Plan:
    """Decide one dispatch pass over plain data: see the package docstring for the policy.

    `workers` are the alive ones; `usage` is each owner's decayed GPU-seconds; `sharing`: how
    shared jobs (`gpus` < 1) fill a GPU.
    """
    in_flight = [j for j in queued if j.enqueued_at is not None]
    result = Plan(usage=dict(usage), entries=[Entry(j, DISPATCHED) for j in in_flight])
    slots = free_slots(workers, in_flight)
    shared = shared_gpus(workers)
    allocated: dict[int, float] = defaultdict(float)
    for job in running:
        allocated[job.owner_id] += job.gpus
    for job in in_flight:
        allocated[job.owner_id] += job.gpus
    waiting = [j for j in queued if j.enqueued_at is None]
    for job in waiting:
        if job.waits_for:
            result.entries.append(Entry(job, DEPENDENCY, detail="waits for " + ", ".join(
                f"job {pid} ({status})" for pid, status in job.waits_for)))
        elif job.held:
            result.entries.append(Entry(job, HELD))
    contenders = fair_order([j for j in waiting if not j.waits_for and not j.held], result.usage, allocated)
    over_queue = over_queued_limit(contenders, owners)
    positions: dict[str, int] = defaultdict(int)
    stuck: set[str] = set()
    for job in contenders:
        owner = owners[job.owner_id]
        if job.id in over_queue:
            result.entries.append(Entry(job, USER_LIMIT, detail=over_queue[job.id]))
            continue
        if owner.max_gpus and allocated[job.owner_id] + job.gpus > owner.max_gpus:
            result.entries.append(Entry(job, USER_LIMIT, detail=f"{owner.name} holds "
                                                               f"{format_gpus(allocated[job.owner_id])} of "
                                                               f"{owner.max_gpus} GPUs"))
            continue
        detail = ""
        if job.queue not in stuck:
            if job.gpus > 1:
                gang = take_gang(slots, job.queue, int(job.gpus))
                placed = None if gang is None else [slot.worker for slot in gang]
            elif is_share(job.gpus):
                worker, detail = take_share(slots, shared, job, sharing)
                placed = None if worker is None else [worker]
            else:
                slot = take_slot(slots, job.queue, job.unclaimed_by)
                placed = None if slot is None else [slot.worker]
            if placed is not None:
                result.ranks[job.id] = placed
                result.dispatch.append(job)
                allocated[job.owner_id] += job.gpus
                continue
        positions[job.queue] += 1
        reason = PRIORITY if job.queue in stuck else NO_FREE_GPU
        if reason == NO_FREE_GPU and job.gpus > 1:
            detail = (f"needs {format_gpus(job.gpus)} free GPUs on one box; the most free on one box now: "
                      f"{most_free_on_one_box(slots, job.queue)}")
        stuck.add(job.queue)
        result.entries.append(Entry(job, reason, position=positions[job.queue], detail=detail))
    result.free_slots = slot_counts(slots)
    if preempt_priority is not None:
        result.preempt = preemptions(running=running, entries=result.entries, preempt_priority=preempt_priority)
    return result


def preemptions(*, running: Sequence[RunningJob], entries: Sequence[Entry],
                preempt_priority: int) -> list[tuple[RunningJob, QueuedJob]]:
    """(victim, preemptor) pairs: each high-priority job waiting for a GPU claims one running job.

    Only for a job of at least `preempt_priority` waiting for a slot (not for a limit), and only
    against a strictly lower-priority running job of the same queue: the lowest priority, the
    most recently started first (it loses the least work). A victim already asked to stop counts
    for the first waiting preemptor, so no pass asks twice.
    """
    wanting = [e.job for e in entries if e.reason in (NO_FREE_GPU, PRIORITY) and e.job.priority >= preempt_priority]
    if not wanting:
        return []
    live = [j for j in running if not j.cancel_requested]
    pending: dict[str, int] = defaultdict(int)
    for job in live:
        if job.preempt_requested:
            pending[job.queue] += 1
    pairs: list[tuple[RunningJob, QueuedJob]] = []
    candidates = [j for j in live if not j.preempt_requested and j.worker and "/" in j.worker]
    for job in sorted(wanting, key=lambda j: -j.priority):
        if pending[job.queue]:
            pending[job.queue] -= 1
            continue
        victims = [v for v in candidates if v.queue == job.queue and v.priority < job.priority]
        if not victims:
            continue
        victim = min(victims, key=lambda v: (v.priority, -v.started_at.timestamp(), -v.id))
        candidates.remove(victim)
        pairs.append((victim, job))
    return pairs
