"""`services.data.builders` under the name the pretrain, evaluate and landscape jobs import it by.

New code imports `services.data.builders`; this module holds no code of its own.
"""

from services.data.builders import DatasetError, ImageDataset, build_dataset, open_split, resolve_data_path

__all__ = ["DatasetError", "ImageDataset", "build_dataset", "open_split", "resolve_data_path"]
