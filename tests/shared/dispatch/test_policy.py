"""The pure plan on plain data: order, fair share, limits, gangs, drain, in-flight jobs, preemption."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from shared.dispatch.policy import (
    DEPENDENCY,
    DISPATCHED,
    HELD,
    NO_FREE_GPU,
    PRIORITY,
    USER_LIMIT,
    Owner,
    QueuedJob,
    RunningJob,
    WorkerSlot,
    fair_order,
    plan,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OWNERS = {1: Owner("ana"), 2: Owner("ben"), 3: Owner("cat")}


def job(id_: int, owner: int, **kw) -> QueuedJob:
    return QueuedJob(id=id_, owner_id=owner, created_at=T0 + timedelta(seconds=id_), **kw)


def workers(*names: str, host: str = "box", **kw) -> list[WorkerSlot]:
    return [WorkerSlot(name=n, queues=frozenset({"gpu", "cpu"}), host=host, **kw) for n in names]


def reference_order(jobs: list[QueuedJob], usage: dict[int, float], allocated: dict[int, int]) -> list[QueuedJob]:
    """The former O(n^2) order: the minimum of every remaining job, re-keyed after each pick."""
    held = defaultdict(int, allocated)
    remaining, ordered = list(jobs), []
    while remaining:
        pick = min(remaining, key=lambda j: (-j.priority, round(usage.get(j.owner_id, 0.0), 3), held[j.owner_id],
                                             j.created_at, j.id))
        remaining.remove(pick)
        ordered.append(pick)
        held[pick.owner_id] += pick.gpus
    return ordered


def test_the_heap_order_is_the_reference_order_on_random_queues() -> None:
    rng = random.Random(13)
    for _ in range(200):
        jobs = [QueuedJob(id=i, owner_id=rng.randint(1, 5), created_at=T0 + timedelta(seconds=rng.randint(0, 20)),
                          priority=rng.choice([0, 0, 0, 5]), gpus=rng.choice([0, 1, 1, 2]))
                for i in range(rng.randint(0, 40))]
        usage = {u: rng.choice([0.0, 10.0, 10.0004, 99.0]) for u in range(1, 6)}
        allocated = {u: rng.randint(0, 2) for u in range(1, 6)}
        assert ([j.id for j in fair_order(jobs, usage, allocated)]
                == [j.id for j in reference_order(jobs, usage, allocated)])


def test_equal_users_alternate_and_less_usage_goes_first() -> None:
    queued = [job(1, 1), job(2, 1), job(3, 2), job(4, 2), job(5, 3)]
    decided = plan(queued=queued, running=[], workers=[], usage={3: 50.0}, owners=OWNERS)
    order = [e.job.id for e in sorted(decided.entries, key=lambda e: e.position)]
    assert order == [1, 3, 2, 4, 5]
    assert [(e.reason, e.position) for e in decided.entries][:2] == [(NO_FREE_GPU, 1), (PRIORITY, 2)]


def test_priority_beats_fair_share_and_free_slots_are_filled_in_order() -> None:
    queued = [job(1, 1), job(2, 2, priority=5), job(3, 1)]
    decided = plan(queued=queued, running=[], workers=workers("w1@box", "w2@box"), usage={2: 1e6}, owners=OWNERS)
    assert [j.id for j in decided.dispatch] == [2, 1]
    assert decided.ranks == {2: ["w1@box"], 1: ["w2@box"]}
    assert [(e.job.id, e.reason, e.position) for e in decided.entries] == [(3, NO_FREE_GPU, 1)]


def test_every_waiting_job_has_one_reason() -> None:
    owners = {**OWNERS, 2: Owner("ben", max_gpus=1)}
    queued = [job(1, 1, waits_for=((9, "running"),)), job(2, 1, held=True), job(3, 2), job(4, 2),
              job(5, 3, enqueued_at=T0, assigned=True), job(6, 3)]
    running = [RunningJob(id=9, owner_id=2, started_at=T0, gpus=0)]
    decided = plan(queued=queued, running=running, workers=workers("w1@box"), usage={}, owners=owners)
    reasons = {e.job.id: (e.reason, e.position, e.detail) for e in decided.entries}
    assert [j.id for j in decided.dispatch] == [3]
    assert reasons == {1: (DEPENDENCY, None, "waits for job 9 (running)"), 2: (HELD, None, ""),
                       4: (USER_LIMIT, None, "ben holds 1 of 1 GPUs"), 5: (DISPATCHED, None, ""),
                       6: (NO_FREE_GPU, 1, "")}


def test_queued_jobs_limit_keeps_the_owners_later_jobs_waiting() -> None:
    owners = {1: Owner("ana", max_queued=2)}
    decided = plan(queued=[job(i, 1) for i in range(1, 5)], running=[], workers=[], usage={}, owners=owners)
    reasons = {e.job.id: e.reason for e in decided.entries}
    assert reasons == {1: NO_FREE_GPU, 2: PRIORITY, 3: USER_LIMIT, 4: USER_LIMIT}


def test_a_worker_that_left_the_message_unclaimed_is_the_last_choice() -> None:
    pool = workers("a@box", "b@box")
    decided = plan(queued=[job(1, 1, unclaimed_by=frozenset({"a@box"}))], running=[], workers=pool, usage={},
                   owners=OWNERS)
    assert decided.ranks == {1: ["b@box"]}
    decided = plan(queued=[job(1, 1, unclaimed_by=frozenset({"a@box"}))], running=[], workers=pool[:1], usage={},
                   owners=OWNERS)
    assert decided.ranks == {1: ["a@box"]}


def test_busy_draining_and_in_flight_workers_are_no_slots() -> None:
    pool = workers("a@box", busy=True) + workers("b@box", draining=True) + workers("c@box", "d@box")
    queued = [job(1, 1, enqueued_at=T0), job(2, 2), job(3, 3)]  # job 1 sent with no ranks recorded: it takes one slot
    decided = plan(queued=queued, running=[], workers=pool, usage={}, owners=OWNERS)
    assert [j.id for j in decided.dispatch] == [2] and decided.free_slots == {}
    assert decided.ranks[2] in (["c@box"], ["d@box"])


def test_a_gang_waits_for_one_box_and_nothing_backfills_behind_it() -> None:
    pool = workers("s0@small", host="small") + workers("t0@other", host="other")
    queued = [job(1, 1, gpus=2), job(2, 2)]
    decided = plan(queued=queued, running=[], workers=pool, usage={}, owners=OWNERS)
    entries = {e.job.id: e for e in decided.entries}
    assert decided.dispatch == []
    assert (entries[1].reason, entries[1].detail) == (NO_FREE_GPU, "needs 2 free GPUs on one box; the most free on "
                                                                   "one box now: 1")
    assert (entries[2].reason, entries[2].position) == (PRIORITY, 2)
    pool += workers("s1@small", host="small")
    decided = plan(queued=queued, running=[], workers=pool, usage={}, owners=OWNERS)
    assert decided.ranks == {1: ["s0@small", "s1@small"], 2: ["t0@other"]}


def test_preemption_takes_the_lowest_priority_latest_job_once() -> None:
    running = [RunningJob(id=10, owner_id=1, started_at=T0, priority=0, worker="w1@box/1"),
               RunningJob(id=11, owner_id=1, started_at=T0 + timedelta(hours=1), priority=0, worker="w2@box/1"),
               RunningJob(id=12, owner_id=1, started_at=T0, priority=9, worker="w3@box/1")]
    queued = [job(1, 2, priority=10)]
    pairs = plan(queued=queued, running=running, workers=[], usage={}, owners=OWNERS, preempt_priority=10).preempt
    assert [(v.id, p.id) for v, p in pairs] == [(11, 1)]
    asked = [RunningJob(id=11, owner_id=1, started_at=T0, worker="w2@box/1", preempt_requested=True), *running[:1]]
    assert plan(queued=queued, running=asked, workers=[], usage={}, owners=OWNERS, preempt_priority=10).preempt == []
    assert plan(queued=queued, running=running, workers=[], usage={}, owners=OWNERS).preempt == []
