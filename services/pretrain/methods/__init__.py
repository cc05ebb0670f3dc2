"""Pretraining methods: the base the loop trains (`base`), the registry of methods by spec name
(`method_registry`), and one module per method, each registering itself on import (`plugin_method`:
the method a `bosun.methods` plugin builds).

Importing this package imports every method module below, so the registry is complete whichever
module of the package is imported first. The method modules import `base` and `method_registry`, never
this package's names, so there is no import circle.
"""

from services.pretrain.methods import contrastive, dino, plugin_method, supervised
from services.pretrain.methods.base import PretrainMethod
from services.pretrain.methods.method_registry import (
    DuplicateMethod,
    UnknownMethod,
    build_method,
    method_builder,
    method_names,
    register_method,
)

__all__ = ["DuplicateMethod", "PretrainMethod", "UnknownMethod", "build_method", "contrastive", "dino",
           "method_builder", "method_names", "plugin_method", "register_method", "supervised"]
