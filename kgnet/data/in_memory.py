"""A torch Dataset over uint8 images held in memory (Fashion-MNIST, CIFAR).

These data sets are small (47 MB and 150 MB as uint8), so decoding them once and keeping them
as one [N,C,H,W] tensor makes an item a slice, not a file read. `__getitems__` (which
`DataLoader` calls with a whole batch of indices when the dataset has it) augments, resizes and
normalises the batch at once, so the loader stays far faster than the model at num_workers=0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from kgnet.data.augment import Augment, crop_flip, epoch_key, paint_noise, to_model_input
from kgnet.data.stats import PixelStats


class InMemoryImages(Dataset):
    """Labelled uint8 images in memory, yielding ``(float image [C,H,W], int label)``.

    Augmentation randomness is fixed per (seed, epoch, index): call `set_epoch` at the start of
    every epoch (as with `DistributedSampler`) for reproducible runs. Before the first
    `set_epoch` each batch draws a fresh key from torch's global generator instead, so plain use
    still sees new augmentations every epoch.

    Args:
        images: uint8 [N,C,H,W] (or [N,H,W] grayscale, or [N,H,W,C] as numpy readers return it
            when `channels_last` is set).
        labels: int64 [N].
        stats: Normalisation constants (their length is the channel count).
        image_size: Side length images are resized to; None keeps the stored size.
        interpolation: Resampling of that resize ("bilinear", "bicubic").
        augment: Training augmentation; None for evaluation.
        seed: Base seed of the augmentation (the run's seed, the same on every rank).
        channels_last: `images` is [N,H,W,C].
    """

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray,
        *,
        stats: PixelStats,
        image_size: int | None = None,
        interpolation: str = "bilinear",
        augment: Augment | None = None,
        seed: int = 0,
        channels_last: bool = False,
    ) -> None:
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8:
            raise TypeError(f"images must be uint8, got {images.dtype}")
        if images.ndim == 3:
            images = images.unsqueeze(1)
        elif channels_last:
            images = images.permute(0, 3, 1, 2)
        self.images = images.contiguous()
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if self.images.shape[1] != stats.channels:
            raise ValueError(f"images have {self.images.shape[1]} channels, stats {stats.channels}")
        self.stats = stats
        self.image_size = image_size
        self.interpolation = interpolation
        self.augment = augment
        self.seed = seed
        self.epoch: int | None = None

    @property
    def in_chans(self) -> int:
        """Channels of a yielded image."""
        return int(self.images.shape[1])

    @property
    def output_size(self) -> int:
        """Side length of a yielded image."""
        return self.image_size or int(self.images.shape[-1])

    def set_epoch(self, epoch: int) -> None:
        """Fix the augmentation of the coming epoch to (seed, `epoch`)."""
        self.epoch = epoch

    def subset(self, indices: Sequence[int] | np.ndarray) -> "InMemoryImages":
        """A new dataset of the images at `indices` (copied), with the same settings."""
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return InMemoryImages(self.images[index], self.labels[index], stats=self.stats,
                              image_size=self.image_size, interpolation=self.interpolation,
                              augment=self.augment, seed=self.seed)

    def without_augment(self) -> "InMemoryImages":
        """The same images (shared, not copied) without augmentation, for evaluation."""
        return InMemoryImages(self.images, self.labels, stats=self.stats, image_size=self.image_size,
                              interpolation=self.interpolation, seed=self.seed)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels at `indices`, stacked: float [B,C,H,W] and int64 [B]."""
        index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        images = self.images[index]
        if self.augment is not None and (self.augment.moves or self.augment.paints):
            key = epoch_key(self.seed, self.epoch)
            if self.augment.moves:
                images = crop_flip(images, index, key, self.augment)
            if self.augment.paints:
                images = paint_noise(images, index, key, self.augment)
        return to_model_input(images, self.stats, self.image_size, self.interpolation), self.labels[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        images, labels = self.batch(indices)
        return list(zip(images.unbind(0), labels.tolist()))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        return self.__getitems__([index % len(self)])[0]

    def __repr__(self) -> str:
        c, h, w = self.images.shape[1:]
        return (f"{type(self).__name__}({len(self)} images, {c}x{h}x{w} -> {self.output_size}px, "
                f"augment={self.augment})")
