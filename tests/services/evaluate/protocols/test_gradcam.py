"""The Grad-CAM protocol's result and helpers: class prototypes, target layer names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from services.evaluate.protocols.gradcam import GradcamResult, class_prototypes, module_name


def test_section_headline_and_summary() -> None:
    result = GradcamResult(n_images=2, target="class", layer="blocks.11.norm1",
                           titles=["sailing_boat > kayak", "ship > kayak"])
    assert list(result.section()) == ["n_images", "target", "layer", "titles"]
    assert result.section()["titles"] == ["sailing_boat > kayak", "ship > kayak"]
    assert result.headline() == {} and result.summary() == "artifacts written"


def test_prototypes_are_class_means_of_normalized_features() -> None:
    features = torch.tensor([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]])
    prototypes = class_prototypes(features, torch.tensor([0, 0, 2]), num_classes=4)
    normed = F.normalize(features, dim=1)
    assert torch.allclose(prototypes[0], (normed[0] + normed[1]) / 2) and torch.equal(prototypes[2], normed[2])
    assert torch.equal(prototypes[1], torch.zeros(2)) and torch.equal(prototypes[3], torch.zeros(2))


def test_module_names_are_dotted_paths() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 3)))
    assert module_name(model, model[1][1]) == "1.1" and module_name(model, nn.ReLU()) == "ReLU"
