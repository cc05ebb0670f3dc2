"""The pretraining methods by spec name: each method module registers its builder once.

Modelled on timm's `register_model` registry (`timm/models/_registry.py`) and bosun's job types
(`shared/job_types.py`): a builder is declared under the name `PretrainSpec.method` uses, and a
second declaration of a name raises instead of warning, since it would leave it to import order
which builder runs. The registry is filled by importing the `methods` package, whose `__init__`
imports every method module; neither this module nor `base.py` imports a method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from services.pretrain.methods.base import PretrainMethod
from shared.specs.pretrain import PretrainSpec


class DuplicateMethod(ValueError):
    """A method name registered twice."""


class UnknownMethod(ValueError):
    """A method name no method module registers."""


class MethodBuilder(Protocol):
    """Builds the method of `spec` on a freshly built timm backbone (random weights; see
    `backbone.load_source_weights`) for data of `num_classes` classes and `in_chans` channels."""

    def __call__(self, spec: PretrainSpec, *, num_classes: int, in_chans: int = 3,
                 img_size: int | None = None) -> PretrainMethod: ...


Builder = TypeVar("Builder", bound=MethodBuilder)

_BUILDERS: dict[str, MethodBuilder] = {}


def register_method(name: str) -> Callable[[Builder], Builder]:
    """Decorator declaring the builder of method `name`; a name already declared raises `DuplicateMethod`."""
    def register(builder: Builder) -> Builder:
        if name in _BUILDERS:
            known = _BUILDERS[name]
            raise DuplicateMethod(f"pretraining method {name!r} is already registered "
                                  f"(by {known.__module__}.{known.__qualname__})")
        _BUILDERS[name] = builder
        return builder

    return register


def method_builder(name: str) -> MethodBuilder:
    """The builder registered under `name`; an unregistered name raises `UnknownMethod`."""
    try:
        return _BUILDERS[name]
    except KeyError:
        raise UnknownMethod(f"unknown pretraining method {name!r}; known: {', '.join(sorted(_BUILDERS))}") from None


def method_names() -> tuple[str, ...]:
    """Every registered method name, in registration order."""
    return tuple(_BUILDERS)


def build_method(spec: PretrainSpec, *, num_classes: int, in_chans: int = 3,
                 img_size: int | None = None) -> PretrainMethod:
    """The method of `spec` on a freshly built timm backbone (random weights; see `load_source_weights`)."""
    return method_builder(spec.method)(spec, num_classes=num_classes, in_chans=in_chans, img_size=img_size)
