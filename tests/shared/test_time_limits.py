"""Which time limit a job gets: its own, else its owner's default, else its queue's, else none."""

from __future__ import annotations

import pytest

from shared.time_limits import effective_max_runtime, parse_queue_limits

QUEUES = {"gpu": 3 * 86400, "default": 3600}


@pytest.mark.parametrize(("job", "user", "queue", "limits", "expected"), [
    (600, 7200, "gpu", QUEUES, (600, "job")),          # the job's own beats every default
    (10 * 86400, 7200, "gpu", QUEUES, (10 * 86400, "job")),  # also above them: defaults are not caps
    (None, 7200, "gpu", QUEUES, (7200, "user")),       # the owner's default beats the queue's
    (None, 0, "gpu", QUEUES, (None, "user")),          # an owner with "no limit" escapes the queue's
    (None, None, "gpu", QUEUES, (3 * 86400, "queue")),
    (None, None, "cpu", QUEUES, (3600, "queue")),      # a queue not named takes `default`
    (None, None, "cpu", {"gpu": 60}, (None, None)),    # no default for it: unbounded
    (None, None, "gpu", {}, (None, None)),
])
def test_precedence(job, user, queue, limits, expected) -> None:
    assert effective_max_runtime(job=job, user=user, queue=queue, queue_limits=limits) == expected


def test_queue_limits_read_from_pairs() -> None:
    assert parse_queue_limits("gpu=3d, cpu=12h,default=90m,") == {"gpu": 259200, "cpu": 43200, "default": 5400}
    assert parse_queue_limits("") == {}
    for bad, why in (("gpu", "QUEUE=DURATION"), ("=3d", "QUEUE=DURATION"), ("gpu=forever", "'gpu=forever'")):
        with pytest.raises(ValueError, match=why):
            parse_queue_limits(bad)


def test_the_setting_refuses_what_it_cannot_read(monkeypatch, tmp_path) -> None:
    from pydantic import ValidationError

    from shared.settings import Settings

    monkeypatch.setenv("BOSUN_QUEUE_MAX_RUNTIME", "gpu=2h,default=30m")
    assert Settings(home=tmp_path).queue_max_runtimes == {"gpu": 7200, "default": 1800}
    monkeypatch.setenv("BOSUN_QUEUE_MAX_RUNTIME", "gpu=2 hours")
    with pytest.raises(ValidationError, match="queue_max_runtime"):
        Settings(home=tmp_path)
