"""Data layer: datasets from the NAS, the synthetic maritime set, transforms and statistics.

`synthetic` needs only numpy and PIL; the other modules import torch, and FiftyOne only where a
FiftyOne dataset is read (the `bosun[fiftyone]` extra). Import from the modules:
`services.data.builders.build_dataset`, `services.data.synthetic.make_synthetic`,
`services.data.transforms` (eval_transform, DinoMultiCrop, TwoViewTransform, input_size_for),
`services.data.stats.compute_stats`, `services.data.layout.detect_kind`,
`services.data.fiftyone_catalog.describe_datasets`.
"""
