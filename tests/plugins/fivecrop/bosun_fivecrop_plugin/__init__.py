"""An example `bosun.transforms` plugin: DINO crops whose local views are the image's five crops.

The 2 global crops are the whole image and its mirror image; the local crops are torchvision's
`FiveCrop` (four corners and the centre, each `crop_fraction` of the image side), repeated in
that order up to `local_crops_number` and resized to the local crop side. Declared as
`fivecrop = bosun_fivecrop_plugin:FiveCropViews` in `bosun.transforms`; a spec names it as
`dino: {crop_policy: {name: fivecrop, params: {crop_fraction: 0.5}}}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import transforms as T


class FiveCropViews:
    def __init__(self, dino: Any, *, size: int, local_size: int, channels: int, mean: Sequence[float],
                 std: Sequence[float], crop_fraction: float = 0.5) -> None:
        if dino.strip_crops:
            raise ValueError("fivecrop makes no strips: set dino.strip_crops to 0")
        if not 0 < crop_fraction <= 1:
            raise ValueError("crop_fraction must be in (0, 1]")
        self.n_local, self.size, self.crop_fraction = dino.local_crops_number, size, crop_fraction
        self.finish = T.Compose([T.Grayscale(channels) if channels == 1 else T.Lambda(lambda im: im.convert("RGB")),
                                 T.ToTensor(), T.Normalize(mean, std)])
        self.local = T.Resize((local_size, local_size), antialias=True)

    def __call__(self, image: Any) -> list[torch.Tensor]:
        whole = T.functional.resize(image, [self.size, self.size], antialias=True)
        side = max(1, round(min(image.size) * self.crop_fraction))
        five = T.functional.five_crop(image, [side, side])
        local = [self.local(five[i % 5]) for i in range(self.n_local)]
        return [self.finish(view) for view in (whole, T.functional.hflip(whole), *local)]
