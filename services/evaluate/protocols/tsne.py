"""The t-SNE protocol: a map of a stratified subset of the test features (van der Maaten & Hinton 2008).

Writes `tsne.png` (and `.svg`) and `tsne.npz` (coordinates, labels, the subset's indices, class names), so a
notebook can re-plot the map without re-running the embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.evaluate.artifacts import npz_bytes
from services.evaluate.inputs import EvaluationInputs
from services.evaluate.registry import Needed, ProtocolResult, Report, register_protocol


@dataclass(frozen=True)
class TsneResult(ProtocolResult):
    """How the map was made; the map itself is in the artifacts. `perplexity` is the one used,
    lowered to n - 1 for small subsets."""

    n_points: int
    perplexity: float
    learning_rate: float | str
    max_iter: int


@register_protocol("tsne", weight=2.0)
def tsne_protocol(inputs: EvaluationInputs, needed: Needed, report: Report) -> TsneResult:
    """t-SNE of a stratified subset of the test features; tsne.png and tsne.npz (coordinates, labels)."""
    from services.data.subset import stratified_subset
    from services.evaluate.figures import save_figure
    from services.evaluate.tsne_embedding import tsne_embedding, tsne_figure

    spec, test, classes = inputs.spec, inputs.features.test, inputs.classes
    opts = spec.tsne
    indices = np.asarray(stratified_subset(test.labels, opts.max_points, seed=spec.seed))
    features, labels = test.sets["knn"][indices], test.labels[indices].numpy()
    perplexity = min(opts.perplexity, float(len(indices) - 1))
    coords = tsne_embedding(features, perplexity=perplexity, learning_rate=opts.learning_rate,
                            max_iter=opts.max_iter, seed=spec.seed)
    report(0.9, "plotting")
    title = f"t-SNE of {spec.backbone.name} features ({spec.test_split}, perplexity {perplexity:g})"
    save_figure(inputs.ctx, "tsne.png", tsne_figure(coords, labels, classes, title=title,
                                                    label=inputs.label))
    inputs.ctx.save_artifact("tsne.npz", npz_bytes(coords=coords, labels=labels, indices=indices,
                                                   classes=np.array(classes)))
    return TsneResult(n_points=int(len(indices)), perplexity=perplexity, learning_rate=opts.learning_rate,
                      max_iter=opts.max_iter)
