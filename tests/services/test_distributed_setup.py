"""The rendezvous of a multi-GPU job's ranks: a world of one needs none, a missing rank times out."""

from __future__ import annotations

import pytest

from services.distributed import Rendezvous, RendezvousFailed, setup


class Ctx:
    device = "cpu"

    def __init__(self, rendezvous: Rendezvous | None) -> None:
        self.rendezvous = rendezvous


def test_a_world_of_one_needs_no_process_group() -> None:
    one = setup(Ctx(None))
    assert (one.rank, one.world_size, one.enabled, one.is_main) == (0, 1, False, True)
    assert one.any(True) and not one.any(False) and one.mean(2.5) == 2.5 and one.gather_objects("x") == ["x"]


def test_rank_zero_gives_up_when_a_rank_never_comes() -> None:
    published: list[tuple[str, int]] = []
    rendezvous = Rendezvous(rank=0, world_size=2, address="127.0.0.1", publish=lambda a, p: published.append((a, p)),
                            timeout_s=1.5)
    with pytest.raises(RendezvousFailed, match="1 of 2 ranks joined within 2 s"):
        setup(Ctx(rendezvous))
    assert published and published[0][0] == "127.0.0.1" and published[0][1] > 0


def test_a_rank_without_a_lookup_is_refused() -> None:
    with pytest.raises(RendezvousFailed, match="no way to find rank 0"):
        setup(Ctx(Rendezvous(rank=1, world_size=2, address="127.0.0.1")))
