"""The data side of pretraining: each method's training augmentation (`augmentation`) and the
deterministic, resumable loaders that feed the loop (`loaders`)."""
