"""Pretraining research code: DINO, SimCLR, SupCon and supervised training of timm backbones.

The job entry point is `services.pretrain.job.run(spec, ctx)`; the pieces (losses, heads,
schedules, optimizers, multi-crop wrapper) are importable on their own.
"""
