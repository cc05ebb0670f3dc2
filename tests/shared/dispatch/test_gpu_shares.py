"""The pure plan with shared jobs (`gpus` < 1), on plain data: packing, the whole-GPU rule, the memory gate."""

from __future__ import annotations

from shared.dispatch.policy import DISPATCHED, NO_FREE_GPU, PRIORITY, RunningJob, Sharing, WorkerSlot, plan
from tests.shared.dispatch.test_policy import OWNERS, T0, job, workers

TWO = Sharing(slots=2, min_free_mb=4000)


def decide(queued, workers_, running=(), sharing=TWO):
    return plan(queued=queued, running=running, workers=workers_, usage={}, owners=OWNERS, sharing=sharing)


def reasons(decided) -> dict[int, str]:
    return {e.job.id: e.reason for e in decided.entries} | {j.id: DISPATCHED for j in decided.dispatch}


def test_two_half_gpu_jobs_share_one_worker() -> None:
    decided = decide([job(1, 1, gpus=0.5, type="evaluate"), job(2, 2, gpus=0.5, type="evaluate")], workers("w1"))
    assert [j.id for j in decided.dispatch] == [1, 2]
    assert decided.ranks == {1: ["w1"], 2: ["w1"]}


def test_a_whole_gpu_job_waits_for_the_shared_gpu_and_shared_jobs_behind_it_wait_too() -> None:
    decided = decide([job(1, 1, gpus=0.5), job(2, 2, gpus=0.5), job(3, 3, gpus=1), job(4, 1, gpus=0.5)],
                     workers("w1"))
    assert decided.ranks == {1: ["w1"], 2: ["w1"]}
    assert reasons(decided)[3] == NO_FREE_GPU and reasons(decided)[4] == PRIORITY  # no backfill past job 3
    # Job 3 keeps waiting while one share of the GPU is still in use; it goes once the GPU is whole again.
    busy = workers("w1", shares=(0.5,))
    running = [RunningJob(id=1, owner_id=1, started_at=T0, gpus=0.5, worker="w1/1")]
    assert reasons(decide([job(3, 3, gpus=1)], busy, running))[3] == NO_FREE_GPU
    assert decide([job(3, 3, gpus=1)], workers("w1")).ranks == {3: ["w1"]}


def test_shared_jobs_fill_the_fullest_gpu_first_and_never_go_beside_a_whole_gpu_job() -> None:
    fleet = [WorkerSlot("busy", frozenset({"gpu"}), busy=True), WorkerSlot("half", frozenset({"gpu"}), shares=(0.5,)),
             WorkerSlot("idle", frozenset({"gpu"}))]
    decided = decide([job(1, 1, gpus=0.5), job(2, 2, gpus=0.5), job(3, 3, gpus=1)], fleet)
    assert decided.ranks == {1: ["half"], 2: ["idle"]}  # the idle GPU only once the half-full one is full
    assert reasons(decided)[3] == NO_FREE_GPU


def test_the_shares_on_a_gpu_never_sum_above_one_nor_pass_the_slots() -> None:
    four = Sharing(slots=4, min_free_mb=0)
    decided = decide([job(1, 1, gpus=0.5), job(2, 1, gpus=0.25), job(3, 1, gpus=0.5)],
                     workers("w1", shares=(0.25,)), sharing=four)
    assert decided.ranks == {1: ["w1"], 2: ["w1"]}  # 0.25 + 0.5 + 0.25 = 1: the second 0.5 waits
    quarters = decide([job(i, 1, gpus=0.25) for i in range(1, 5)], workers("w1"), sharing=Sharing(slots=3))
    assert sorted(quarters.ranks) == [1, 2, 3]  # three slots: the fourth quarter waits though a quarter is free


def test_the_memory_gate_holds_a_third_shared_job() -> None:
    """Free memory as NVML would report it (no NVML here): 9000 MB and 4000 MB per shared job admit two."""
    four = Sharing(slots=4, min_free_mb=4000)
    decided = decide([job(i, 1, gpus=0.25) for i in (1, 2, 3)], workers("w1", free_mb=9000), sharing=four)
    assert sorted(decided.ranks) == [1, 2]
    held = next(e for e in decided.entries if e.job.id == 3)
    assert held.reason == NO_FREE_GPU and "w1 has 1000 MB of GPU memory free" in held.detail
    # A GPU already low on memory takes no shared job at all; one whose worker reads no NVML takes them by slots.
    assert decide([job(1, 1, gpus=0.5)], workers("w1", free_mb=3000)).ranks == {}
    assert decide([job(1, 1, gpus=0.5), job(2, 1, gpus=0.5)], workers("w1")).ranks == {1: ["w1"], 2: ["w1"]}


def test_whole_gpu_and_multi_gpu_jobs_never_take_a_gpu_with_shares() -> None:
    fleet = workers("w1", shares=(0.5,)) + workers("w2")
    decided = decide([job(1, 1, gpus=2, type="pretrain")], fleet)
    assert decided.ranks == {} and "the most free on one box now: 1" in decided.entries[0].detail
    assert decide([job(1, 1, gpus=1, type="pretrain")], fleet).ranks == {1: ["w2"]}


def test_fair_share_counts_a_share_as_a_fraction_of_a_gpu() -> None:
    """A user holding one 0.5 job holds half a GPU: under a 1-GPU limit another 0.5 job may start."""
    from shared.dispatch.policy import Owner

    limited = {1: Owner("ana", max_gpus=1)}
    running = [RunningJob(id=9, owner_id=1, started_at=T0, gpus=0.5, worker="w1/1")]
    decided = plan(queued=[job(1, 1, gpus=0.5), job(2, 1, gpus=1)], running=running,
                   workers=workers("w1", shares=(0.5,)) + workers("w2"), usage={}, owners=limited, sharing=TWO)
    assert decided.ranks == {1: ["w1"]}
    assert next(e for e in decided.entries if e.job.id == 2).detail == "ana holds 1 of 1 GPUs"
