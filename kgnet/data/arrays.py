"""What a reader of an in-memory data set hands back: uint8 images, int64 labels, class names.

Fashion-MNIST and CIFAR are small enough to hold in memory, so their readers decode the whole
file once and return plain arrays in the conventional layout ([N,H,W] or [N,H,W,C]); splitting,
subsampling and augmentation then work on these arrays without touching the files again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ImageArrays:
    """One split of a data set, fully decoded.

    Attributes:
        images: uint8 pixels, [N,H,W] (grayscale) or [N,H,W,C] (colour).
        labels: int64 class indices, [N].
        files: The files the split was read from, for messages.
    """

    images: np.ndarray
    labels: np.ndarray
    files: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class ArrayDataset:
    """A data set's official training and test splits and its class names (label order).

    Attributes:
        train: The official training split (validation is carved out of it later).
        test: The official test split; never used for model selection.
        class_names: Name of each label, index i is label i.
        folder: The folder the files were found in.
    """

    train: ImageArrays
    test: ImageArrays
    class_names: list[str]
    folder: Path
