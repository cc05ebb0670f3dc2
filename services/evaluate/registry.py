"""The evaluation protocols, each declared once: its name, its cost, and whose results it needs.

Modelled on timm's `register_model` registry (`timm/models/_registry.py`), except that a second
registration of a name raises instead of warning, as `shared.job_types` does: two declarations of
one protocol would leave it to import order which one runs.

A protocol declares the protocols whose results it reads (`needs`): robustness and Grad-CAM read
the linear probe's head. `run_order` puts every protocol after those it needs and otherwise keeps
the order it is given (the spec's), so the order a job runs in follows from the declarations
rather than from a list kept in step by hand. A need may be missing from a job: robustness then
classifies with kNN and Grad-CAM explains the embedding; whether a missing need is allowed is for
the spec and the protocol itself to say. A need that names no registered protocol is an error.

Every protocol returns a `ProtocolResult`, which gives its section of the job's result, its
headline numbers and its line in the job log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from services.evaluate.inputs import EvaluationInputs


class DuplicateProtocol(ValueError):
    """A protocol name registered twice."""


class UnknownProtocol(ValueError):
    """A protocol name, or a protocol's need, that no registration declares."""


Report = Callable[[float, str], None]
"""`report(fraction, message)`: how far a protocol is, from 0 to 1, and what it is doing."""


class ProtocolResult:
    """What a protocol hands back; each protocol subclasses it as a frozen dataclass.

    The section of the job's result is the dataclass's fields in order, except those declared
    with `metadata={"in_result": False}` (objects for other protocols, such as the linear head).
    """

    def section(self) -> dict[str, Any]:
        """This protocol's part of the job result (`result[name]`), JSON-ready."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("in_result", True)}

    def headline(self) -> dict[str, float]:
        """The numbers this protocol adds to `result["headline"]`, for comparing jobs side by side."""
        return {}

    def intervals(self) -> dict[str, dict[str, Any]]:
        """95% Wilson intervals of the headline accuracies that are proportions of n images,
        `{metric: {"low", "high", "n"}}`, for telling differences from test-set noise."""
        return {}

    def summary(self) -> str:
        """One line for the job log once the protocol is done."""
        return "artifacts written"


R = TypeVar("R", bound=ProtocolResult)


class Needed:
    """The results a protocol asked for in `needs`, of those that ran before it."""

    def __init__(self, results: Iterable[ProtocolResult] = ()) -> None:
        self._results = tuple(results)

    def get(self, kind: type[R]) -> R | None:
        """The result of type `kind`, or None when its protocol is not part of the job."""
        return next((r for r in self._results if isinstance(r, kind)), None)


ProtocolFn = Callable[["EvaluationInputs", Needed, Report], ProtocolResult]


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol: `run(inputs, needed, report)`, its relative cost, and its needs.

    `weight` spreads the job's progress bar across the protocols in proportion to their rough cost.
    """

    name: str
    run: ProtocolFn
    weight: float
    needs: tuple[str, ...] = ()


class ProtocolRegistry:
    """Protocols by name, and the order a job runs a selection of them in."""

    def __init__(self) -> None:
        self._protocols: dict[str, Protocol] = {}

    def register(self, protocol: Protocol) -> Protocol:
        """Declare a protocol; a name already declared raises `DuplicateProtocol`."""
        if protocol.name in self._protocols:
            raise DuplicateProtocol(f"protocol {protocol.name!r} is already registered "
                                    f"({self._protocols[protocol.name].run.__module__})")
        if protocol.weight <= 0:
            raise ValueError(f"protocol {protocol.name!r}: weight must be > 0, got {protocol.weight}")
        self._protocols[protocol.name] = protocol
        return protocol

    def protocol(self, name: str, *, weight: float, needs: Sequence[str] = ()) -> Callable[[ProtocolFn], ProtocolFn]:
        """Decorator form of `register` for a protocol's run function."""
        def decorate(run: ProtocolFn) -> ProtocolFn:
            self.register(Protocol(name, run, weight, tuple(needs)))
            return run
        return decorate

    def get(self, name: str) -> Protocol:
        try:
            return self._protocols[name]
        except KeyError:
            raise UnknownProtocol(f"unknown protocol {name!r}; known: {', '.join(sorted(self._protocols))}") from None

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._protocols)

    def run_order(self, names: Sequence[str]) -> list[Protocol]:
        """The protocols `names` lists, each after the listed ones it needs, otherwise in the listed order.

        At every step the first listed protocol whose needs have run goes next (a stable
        topological sort), so `["gradcam", "knn", "linear"]` runs knn, linear, gradcam.
        """
        chosen = [self.get(name) for name in dict.fromkeys(names)]
        for protocol in chosen:
            unknown = [need for need in protocol.needs if need not in self._protocols]
            if unknown:
                raise UnknownProtocol(f"protocol {protocol.name!r} needs {', '.join(map(repr, unknown))}, "
                                      f"which no protocol registers")
        listed = {p.name for p in chosen}
        order: list[Protocol] = []
        done: set[str] = set()
        while chosen:
            ready = next((p for p in chosen if all(n in done for n in p.needs if n in listed)), None)
            if ready is None:
                raise ValueError(f"protocols {', '.join(p.name for p in chosen)} need each other in a cycle")
            order.append(ready)
            done.add(ready.name)
            chosen.remove(ready)
        return order


_REGISTRY = ProtocolRegistry()


def register_protocol(name: str, *, weight: float, needs: Sequence[str] = ()) -> Callable[[ProtocolFn], ProtocolFn]:
    """Register the decorated function as protocol `name` of bosun's evaluate job."""
    return _REGISTRY.protocol(name, weight=weight, needs=needs)


def get_protocol(name: str) -> Protocol:
    return _REGISTRY.get(name)


def protocol_names() -> tuple[str, ...]:
    return _REGISTRY.names()


def run_order(names: Sequence[str]) -> list[Protocol]:
    """`ProtocolRegistry.run_order` over bosun's registered protocols."""
    return _REGISTRY.run_order(names)
