"""The evaluation protocols, one module each; importing this package registers all of them.

Each module holds one protocol's run function, registered with its cost and needs
(`services.evaluate.registry`), and its typed result.
"""

from services.evaluate.protocols import attention, gradcam, knn, linear, robustness, tsne

__all__ = ["attention", "gradcam", "knn", "linear", "robustness", "tsne"]
