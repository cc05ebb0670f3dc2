"""The protocol registry: each protocol declared once, run after the protocols it needs."""

from __future__ import annotations

from itertools import combinations

import pytest

import services.evaluate.protocols  # noqa: F401  (registers bosun's protocols)
from services.evaluate.registry import (
    DuplicateProtocol,
    Needed,
    Protocol,
    ProtocolRegistry,
    ProtocolResult,
    UnknownProtocol,
    get_protocol,
    protocol_names,
    register_protocol,
    run_order,
)
from shared.specs.evaluate import PROTOCOLS, EvaluateSpec


def noop(inputs: object, needed: Needed, report: object) -> ProtocolResult:
    return ProtocolResult()


def registry(**needs: tuple[str, ...]) -> ProtocolRegistry:
    """A registry of no-op protocols named by the keywords, each needing the names given."""
    reg = ProtocolRegistry()
    for name, wanted in needs.items():
        reg.register(Protocol(name, noop, 1.0, wanted))
    return reg


def names(protocols: list[Protocol]) -> list[str]:
    return [p.name for p in protocols]


def test_registering_a_name_twice_raises_and_keeps_the_first() -> None:
    reg = registry(knn=())
    first = reg.get("knn")
    with pytest.raises(DuplicateProtocol, match="'knn' is already registered"):
        reg.register(Protocol("knn", noop, 2.0))
    assert reg.get("knn") is first and reg.names() == ("knn",)


def test_the_decorator_registers_once() -> None:
    reg = ProtocolRegistry()
    run = reg.protocol("probe", weight=0.5, needs=["knn"])(noop)
    assert run is noop and reg.get("probe") == Protocol("probe", noop, 0.5, ("knn",))
    with pytest.raises(DuplicateProtocol):
        reg.protocol("probe", weight=0.5)(noop)


def test_bosun_protocols_cannot_be_registered_again() -> None:
    with pytest.raises(DuplicateProtocol, match="'linear' is already registered"):
        register_protocol("linear", weight=2.0)(noop)
    assert get_protocol("linear").run.__module__ == "services.evaluate.protocols.linear"


def test_needs_come_first_and_the_listed_order_holds_otherwise() -> None:
    reg = registry(knn=(), linear=(), gradcam=("linear",), robustness=("linear",))
    assert names(reg.run_order(["gradcam", "knn", "linear"])) == ["knn", "linear", "gradcam"]
    assert names(reg.run_order(["robustness", "gradcam", "linear"])) == ["linear", "robustness", "gradcam"]
    assert names(reg.run_order(["knn", "gradcam"])) == ["knn", "gradcam"]  # a need outside the job: no constraint
    assert names(reg.run_order(["linear", "knn", "linear"])) == ["linear", "knn"]


def test_unknown_names_and_needs_raise() -> None:
    reg = registry(knn=(), gradcam=("linaer",))
    with pytest.raises(UnknownProtocol, match="unknown protocol 'segmentation'; known: gradcam, knn"):
        reg.run_order(["knn", "segmentation"])
    with pytest.raises(UnknownProtocol, match="'gradcam' needs 'linaer', which no protocol registers"):
        reg.run_order(["gradcam"])


def test_a_cycle_of_needs_raises() -> None:
    reg = registry(a=("b",), b=("a",), c=())
    with pytest.raises(ValueError, match="a, b need each other in a cycle"):
        reg.run_order(["c", "a", "b"])


def test_weights_must_be_positive() -> None:
    with pytest.raises(ValueError, match="weight must be > 0"):
        ProtocolRegistry().register(Protocol("free", noop, 0.0))


def test_bosun_declares_every_spec_protocol_with_its_cost_and_needs() -> None:
    assert sorted(protocol_names()) == sorted(PROTOCOLS)
    weights = {name: get_protocol(name).weight for name in PROTOCOLS}
    assert weights == {"knn": 1.0, "linear": 2.0, "robustness": 4.0, "tsne": 2.0, "attention": 0.5, "gradcam": 1.0}
    assert {name: get_protocol(name).needs for name in PROTOCOLS if get_protocol(name).needs} == {
        "linear": ("knn",), "robustness": ("linear",), "gradcam": ("linear",)}
    assert names(run_order(["gradcam", "knn", "linear"])) == ["knn", "linear", "gradcam"]


@pytest.mark.parametrize("n", range(1, len(PROTOCOLS) + 1))
def test_every_spec_runs_in_the_spec_order(n: int) -> None:
    for chosen in combinations(PROTOCOLS, n):
        spec = EvaluateSpec.model_validate({"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime"},
                                            "protocols": list(reversed(chosen))})
        assert names(run_order(spec.protocols)) == spec.protocols == list(chosen)


def test_needed_results_are_found_by_type() -> None:
    class Other(ProtocolResult):
        pass

    first, second = Other(), ProtocolResult()
    assert Needed([first, second]).get(Other) is first and Needed([second]).get(Other) is None
    assert ProtocolResult().summary() == "artifacts written" and ProtocolResult().headline() == {}
