"""The former name of `services.data.builders`, which the pretrain, evaluate and landscape jobs import.

New code imports `services.data.builders`; this module holds no code of its own.
"""

from services.data.builders import DatasetError, ImageDataset, build_dataset, open_split, resolve_data_path

__all__ = ["DatasetError", "ImageDataset", "build_dataset", "open_split", "resolve_data_path"]
