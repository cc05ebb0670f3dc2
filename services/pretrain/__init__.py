"""Pretraining research code: DINO, SimCLR, SupCon and supervised training of timm backbones.

The job entry point is `services.pretrain.pretrain_job.run(spec, ctx)`, which hands over to the
loop shared by every method (`trainer`). The pieces are importable on their own:

- `methods/`: what the loop trains, one module per method, found by spec name in a registry;
- `losses/`: DINO's loss, NT-Xent and SupCon, one per module;
- `data/`: each method's training augmentation and the deterministic, resumable loaders;
- `backbone`, `heads`, `multicrop`: timm backbones and their starting weights, the projection
  heads, and the wrapper that runs a backbone and head over multi-crop batches;
- `optim`, `schedules`, `rng`, `knn_monitor`: optimizers and gradient handling (SAM included),
  per-iteration schedules, the random state checkpoints hold, and the online k-NN monitor.
"""
