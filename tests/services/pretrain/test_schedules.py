import math

import numpy as np
import pytest

from services.pretrain.schedules import cosine_scheduler, teacher_temp_schedule


def reference_value(it: int, base: float, final: float, epochs: int, niter: int, warmup_epochs: int,
                    start: float) -> float:
    """DINO's schedule at one iteration, written out per iteration."""
    warmup_iters = warmup_epochs * niter
    if it < warmup_iters:
        return start + (base - start) * it / (warmup_iters - 1) if warmup_iters > 1 else start
    k, total = it - warmup_iters, epochs * niter - warmup_iters
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * k / total))


@pytest.mark.parametrize("base,final,epochs,niter,warmup,start", [
    (0.0005, 1e-6, 10, 7, 2, 0.0),
    (0.04, 0.4, 5, 3, 0, 0.0),
    (0.996, 1.0, 4, 11, 0, 0.0),
    (0.3, 0.0048, 6, 2, 3, 0.01),
])
def test_cosine_scheduler_matches_formula(base, final, epochs, niter, warmup, start):
    schedule = cosine_scheduler(base, final, epochs, niter, warmup_epochs=warmup, start_warmup_value=start)
    expected = [reference_value(i, base, final, epochs, niter, warmup, start) for i in range(epochs * niter)]
    assert schedule.shape == (epochs * niter,)
    np.testing.assert_allclose(schedule, expected, rtol=1e-12, atol=1e-15)
    assert schedule[warmup * niter] == pytest.approx(base)


def test_cosine_scheduler_rejects_bad_lengths():
    with pytest.raises(ValueError, match="warmup_epochs"):
        cosine_scheduler(1.0, 0.0, 3, 2, warmup_epochs=4)
    with pytest.raises(ValueError, match="niter_per_ep"):
        cosine_scheduler(1.0, 0.0, 3, 0)


def test_teacher_temp_schedule_warms_up_linearly_then_holds():
    schedule = teacher_temp_schedule(0.04, 0.07, 30, 100)
    assert len(schedule) == 100
    assert schedule[0] == pytest.approx(0.04)
    assert schedule[15] == pytest.approx(0.04 + 0.03 * 15 / 29)
    assert schedule[29] == pytest.approx(0.07)
    assert np.all(schedule[29:] == pytest.approx(0.07))
    assert np.all(teacher_temp_schedule(0.04, 0.04, 0, 5) == 0.04)
