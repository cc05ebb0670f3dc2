"""SimCLR (Chen et al. 2020) and SupCon (Khosla et al. 2020) on a timm backbone.

Each image comes as two augmented views; the backbone and a projection head map both, and the
loss compares the normalised projections: NT-Xent with the other view as the only positive
(SimCLR), or every same-class view as positive (SupCon). The features before the projection
head are the representation that is monitored and exported.

Under data parallelism the projections (and SupCon's labels) of every rank are gathered, with
gradients flowing back to the rank that computed them, so each rank's anchors meet the negatives
of the whole global batch, as in SimCLR's reference.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn

from services.pretrain.backbone import backbone_kwargs, create_backbone
from services.pretrain.heads import ProjectionHead
from services.pretrain.losses.ntxent_loss import nt_xent_loss
from services.pretrain.losses.supcon_loss import supcon_loss
from services.pretrain.methods.base import PretrainMethod
from services.pretrain.methods.method_registry import register_method
from services.pretrain.multicrop import MultiCropWrapper
from shared.specs.common import BackboneSpec
from shared.specs.pretrain import ContrastiveOptions, PretrainSpec


def data_parallel() -> bool:
    """Whether this process is one rank of several in a torch.distributed process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class ContrastiveMethod(PretrainMethod):
    def __init__(self, backbone: BackboneSpec, options: ContrastiveOptions, *, supervised: bool,
                 in_chans: int = 3, img_size: int | None = None) -> None:
        super().__init__()
        self.options = options
        self.supervised = supervised
        self.backbone_kwargs = backbone_kwargs(backbone, in_chans=in_chans, img_size=img_size)
        model = create_backbone(backbone.name, self.backbone_kwargs)
        self.embed_dim = model.num_features
        head = ProjectionHead(self.embed_dim, hidden_dim=options.proj_hidden_dim, out_dim=options.proj_out_dim,
                              num_layers=options.proj_layers)
        self.student = MultiCropWrapper(model, head)

    def prepare(self, batch: Any, device: str) -> tuple[list[torch.Tensor], torch.Tensor]:
        views, labels = batch
        if not isinstance(views, (list, tuple)) or len(views) != 2:
            raise ValueError("contrastive training expects two views per image (a TwoViewTransform)")
        return [v.to(device, non_blocking=True) for v in views], torch.as_tensor(labels).to(device)

    def loss(self, inputs: tuple[list[torch.Tensor], torch.Tensor], epoch: int) -> torch.Tensor:
        views, labels = inputs
        z1, z2 = self.run_student(views).chunk(2)
        features = torch.stack([z1, z2], dim=1)
        if not data_parallel():
            if not self.supervised:
                return nt_xent_loss(z1, z2, self.options.temperature)
            return supcon_loss(features, labels, self.options.temperature, self.options.base_temperature)
        offset = dist.get_rank() * features.shape[0]
        all_features = torch.cat(dist_nn.all_gather(features))
        if not self.supervised:
            return nt_xent_loss(z1, z2, self.options.temperature, batch=(all_features[:, 0], all_features[:, 1]),
                                offset=offset)
        all_labels = [torch.empty_like(labels) for _ in range(dist.get_world_size())]
        dist.all_gather(all_labels, labels)
        return supcon_loss(features, labels, self.options.temperature, self.options.base_temperature,
                           batch=(all_features, torch.cat(all_labels)), offset=offset)


@register_method("simclr")
def build_simclr(spec: PretrainSpec, *, num_classes: int, in_chans: int = 3,
                 img_size: int | None = None) -> ContrastiveMethod:
    """SimCLR: the other view of each image is its only positive (labels unused)."""
    return ContrastiveMethod(spec.backbone, spec.contrastive, supervised=False, in_chans=in_chans, img_size=img_size)


@register_method("supcon")
def build_supcon(spec: PretrainSpec, *, num_classes: int, in_chans: int = 3,
                 img_size: int | None = None) -> ContrastiveMethod:
    """SupCon: every view of the same class is a positive."""
    return ContrastiveMethod(spec.backbone, spec.contrastive, supervised=True, in_chans=in_chans, img_size=img_size)
