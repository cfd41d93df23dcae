"""Datasets as in-memory tensors in [0,1], split into train / val / test.

Every loader returns an :class:`ImageData`; ``source`` records where the images came from
(path or package) and is written into every CSV row and figure title.
"""
from robex.data.base import ImageData

__all__ = ["ImageData"]
