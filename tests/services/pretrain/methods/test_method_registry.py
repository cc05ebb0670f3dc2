from types import SimpleNamespace
from typing import get_args

import pytest
import torch

from services.pretrain.methods import (
    DuplicateMethod,
    UnknownMethod,
    build_method,
    method_builder,
    method_names,
    register_method,
)
from services.pretrain.methods.contrastive import ContrastiveMethod
from services.pretrain.methods.dino import DinoMethod
from services.pretrain.methods.supervised import SupervisedMethod
from shared.specs.pretrain import BLOCK_OF_METHOD, Method
from tests.services.pretrain.helpers import spec

torch.set_num_threads(1)


def test_every_method_of_the_spec_is_registered():
    assert sorted(method_names()) == sorted(get_args(Method))
    assert set(method_names()) == set(BLOCK_OF_METHOD)


def test_registering_a_name_twice_raises_and_keeps_the_first_builder():
    first = method_builder("dino")
    with pytest.raises(DuplicateMethod, match="'dino' is already registered .*build_dino"):
        register_method("dino")(lambda spec, **kwargs: None)
    assert method_builder("dino") is first


def test_an_unknown_method_raises_naming_the_known_ones():
    known = "known: dino, plugin, simclr, supcon, supervised"
    with pytest.raises(UnknownMethod, match=f"unknown pretraining method 'byol'; {known}"):
        build_method(SimpleNamespace(method="byol"), num_classes=2)
    with pytest.raises(UnknownMethod, match="'byol'"):
        method_builder("byol")


@pytest.mark.parametrize("name,kind,supervised", [("dino", DinoMethod, None), ("simclr", ContrastiveMethod, False),
                                                  ("supcon", ContrastiveMethod, True),
                                                  ("supervised", SupervisedMethod, None)])
def test_each_name_builds_its_method(name, kind, supervised):
    method = build_method(spec(name), num_classes=2, img_size=16)
    assert type(method) is kind
    if supervised is not None:
        assert method.supervised is supervised
    if kind is SupervisedMethod:
        assert method.classifier().out_features == 2
