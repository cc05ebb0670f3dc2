"""The Grad-CAM protocol (Selvaraju et al. 2017): heat maps of a few stratified test images.

With target 'class' the map explains the linear probe's logit of the predicted class, through
backbone, probe features and head as one model; with 'embedding' it explains the cosine
similarity of the backbone embedding to the mean train embedding of the image's class. Writes
`gradcam.png` (and `.svg`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from services.evaluate.features import FeatureFn
from services.evaluate.inputs import EvaluationInputs
from services.evaluate.protocols.linear import LinearResult
from services.evaluate.registry import Needed, ProtocolResult, Report, register_protocol


@dataclass(frozen=True)
class GradcamResult(ProtocolResult):
    """The target explained, the layer whose activations the maps weigh, and each row's title
    ('true > predicted' for class targets, the true class for embedding targets)."""

    n_images: int
    target: str
    layer: str
    titles: list[str]


class ProbeModel(nn.Module):
    """Backbone, feature function and linear head as one module, so Grad-CAM can explain class logits."""

    def __init__(self, backbone: nn.Module, feature_fn: FeatureFn, head: nn.Linear) -> None:
        super().__init__()
        self.backbone, self.head, self.feature_fn = backbone, head, feature_fn

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.feature_fn(self.backbone, images).flatten(1))


@register_protocol("gradcam", weight=1.0, needs=("linear",))
def gradcam_protocol(inputs: EvaluationInputs, needed: Needed, report: Report) -> GradcamResult:
    """Grad-CAM of test images for the linear probe's predicted class or the class's mean embedding; gradcam.png."""
    from services.evaluate.attention_maps import display_images
    from services.evaluate.cam_maps import (
        EmbeddingSimilarityTarget,
        class_targets,
        default_target_layer,
        gradcam_figure,
        gradcam_maps,
    )
    from services.evaluate.figures import save_figure

    model, classes, feats = inputs.model, inputs.classes, inputs.features
    target = inputs.spec.resolved_gradcam_target()
    _, images, labels = inputs.sample_test_images(inputs.spec.gradcam.n_images)
    layer, reshape = default_target_layer(model, (inputs.splits.size, inputs.splits.size))
    if target == "class":
        linear = needed.get(LinearResult)
        if linear is None:
            raise ValueError("gradcam.target 'class': the linear head is missing (the linear protocol did not run)")
        probe = ProbeModel(model, feats.linear_fn, linear.head.to(inputs.device)).eval()
        with torch.no_grad():
            predicted = probe(images).argmax(dim=1).cpu()
        cams = gradcam_maps(probe, images, class_targets(predicted.tolist()), target_layer=layer,
                            reshape_transform=reshape)
        pairs = zip(labels.tolist(), predicted.tolist(), strict=True)
        titles = [f"{classes[t]} > {classes[p]}" for t, p in pairs]
    else:
        prototypes = class_prototypes(feats.train.sets["knn"], feats.train.labels, len(classes))
        targets = [EmbeddingSimilarityTarget(prototypes[t]) for t in labels.tolist()]
        cams = gradcam_maps(model, images, targets, target_layer=layer, reshape_transform=reshape)
        titles = [classes[t] for t in labels.tolist()]
    report(0.9, "plotting")
    label = inputs.label
    save_figure(inputs.ctx, "gradcam.png", gradcam_figure(display_images(images), cams, titles, label=label))
    return GradcamResult(n_images=int(images.shape[0]), target=target, layer=module_name(model, layer), titles=titles)


def class_prototypes(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, D) mean of each class's L2-normalized features (zeros for a class without samples)."""
    normed = torch.nn.functional.normalize(features.float(), dim=1)
    sums = torch.zeros(num_classes, normed.shape[1]).index_add_(0, labels.long(), normed)
    counts = torch.bincount(labels.long(), minlength=num_classes).clamp_min(1).unsqueeze(1)
    return sums / counts


def module_name(model: nn.Module, module: nn.Module) -> str:
    """`module`'s dotted name inside `model`, or its class name when it is not a submodule."""
    return next((name for name, m in model.named_modules() if m is module), type(module).__name__)
