"""Method `plugin`: the pretraining method a `bosun.methods` plugin builds (shared.plugins).

The entry point names a builder with the signature of the built-in ones (`MethodBuilder`):
`build(spec, *, num_classes, in_chans, img_size)` returning a `PretrainMethod`, which reads its
own settings from `spec.plugin.params`. The loop trains it like any method. A method that has
`training_transform(*, size, channels, mean, std, patch_size)` gets its batches through that
transform; any other gets the supervised one-view augmentation (`data/augmentation.py`).
"""

from __future__ import annotations

from services.pretrain.methods.base import PretrainMethod
from services.pretrain.methods.method_registry import register_method
from shared.plugins import PluginError, load_plugin
from shared.specs.pretrain import PretrainSpec


@register_method("plugin")
def build_plugin_method(spec: PretrainSpec, *, num_classes: int, in_chans: int = 3,
                        img_size: int | None = None) -> PretrainMethod:
    """The method of the plugin `spec.plugin.name` on the spec's backbone."""
    builder = load_plugin("methods", spec.plugin.name)
    method = builder(spec, num_classes=num_classes, in_chans=in_chans, img_size=img_size)
    if not isinstance(method, PretrainMethod):
        raise PluginError(f"bosun.methods plugin {spec.plugin.name!r} built a {type(method).__name__}, "
                          f"not a services.pretrain.methods.PretrainMethod")
    return method
