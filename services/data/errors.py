"""`DatasetError`, in a module of its own so that code which only reads FiftyOne or the disk
(`python -m services.data catalog`, the layout rules) raises it without importing torch."""


class DatasetError(ValueError):
    """A dataset cannot be read: missing or escaping path, empty split, corrupt image."""
