"""The pretraining losses, one per module, as in lightly's `lightly/loss/`.

- `dino`: DINO's self-distillation loss with its centre and teacher-temperature schedule.
- `ntxent`: SimCLR's NT-Xent.
- `supcon`: the supervised contrastive loss (SupCon).
- `extra_terms`: loss terms from `bosun.losses` plugins added to a method's loss.
- `global_batch`: how the two contrastive losses see the global batch under data parallelism.
"""
