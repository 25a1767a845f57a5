"""Training augmentation as batched tensor operations with per-image, reproducible randomness.

CPU training runs at ~500-700 images/s, so the loader must cost far less than that: images
stay uint8 tensors in memory and a whole batch is cropped and flipped in one gather, instead
of one PIL round trip per image. The random choices for an image are a hash of (seed, epoch,
index in the data set), not draws from a shared generator, so they do not depend on batch
composition, worker count, DDP rank or where a resumed run restarted; `__getitem__` and the
batched path give the same image for the same index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kgnet.data.stats import PixelStats

_MASK32 = 0xFFFFFFFF
# Salts give independent random streams per decision (crop row, crop column, flip, ...).
SALT_ROW, SALT_COL, SALT_FLIP, SALT_CROP = 0x1B873593, 0x68E31DA4, 0x2C1B3C6D, 0x297A2D39
SALT_ERASE, SALT_AREA, SALT_ASPECT, SALT_TOP, SALT_LEFT, SALT_NOISE = (
    0x5BD1E995, 0x1B56C4E9, 0x7FEB352D, 0x846CA68B, 0x3243F6A8, 0x4F1BBCDC)


def mix32(x: int | torch.Tensor) -> int | torch.Tensor:
    """A 32-bit integer hash with good avalanche (works on Python ints and int64 tensors).

    Args:
        x: Values in [0, 2**32); products stay below 2**63, so int64 never overflows.
    """
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    return (x >> 16) ^ x


def augment_key(seed: int, epoch: int) -> int:
    """The 32-bit key of one epoch's augmentation for base seed `seed`."""
    return int(mix32(mix32(seed & _MASK32) ^ (epoch & _MASK32)))


def epoch_key(seed: int, epoch: int | None) -> int:
    """`augment_key(seed, epoch)`, or a fresh draw from torch's global generator when `epoch` is None."""
    return augment_key(seed, epoch) if epoch is not None else int(torch.randint(0, 2**31, ()))


def random_bits(key: int, indices: int | torch.Tensor, salt: int) -> int | torch.Tensor:
    """Uniform 32-bit random values, one per index, fixed by (key, index, salt).

    Args:
        key: From `augment_key` (or any 32-bit value).
        indices: Index (or int64 tensor of indices) of images in their data set.
        salt: Which decision the bits are for (`SALT_ROW`, ...).

    Returns:
        Values in [0, 2**32), an int or a tensor shaped like `indices`.
    """
    return mix32((indices & _MASK32) ^ int(mix32(key ^ salt)))


@dataclass(frozen=True)
class Augment:
    """Training augmentation of small in-memory images.

    Attributes:
        pad: Random crop back to the original size after zero-padding this many pixels on
            each side (0 = no crop).
        flip: Mirror left-right with probability 1/2.
        erase: Probability of random erasing (Zhong et al., AAAI 2020): a rectangle of 2-25% of
            the image, aspect ratio 0.3-3.3, becomes uniform noise.
        background_noise: Uniform noise in [0, this] (8-bit levels) on the pixels that are 0: a
            black background (Fashion-MNIST) stops being one constant a model can read.
    """

    pad: int = 0
    flip: bool = False
    erase: float = 0.0
    background_noise: int = 0

    @property
    def moves(self) -> bool:
        """Crops or flips pixels."""
        return bool(self.pad or self.flip)

    @property
    def paints(self) -> bool:
        """Writes noise into pixels."""
        return self.erase > 0 or self.background_noise > 0


def crop_flip(images: torch.Tensor, indices: torch.Tensor, key: int, augment: Augment) -> torch.Tensor:
    """Randomly crop (with zero padding) and flip a batch in one gather.

    Args:
        images: uint8 [B,C,H,W].
        indices: int64 [B], each image's index in its data set (drives its random choices).
        key: The epoch's augmentation key (`augment_key`).
        augment: What to apply.

    Returns:
        uint8 [B,C,H,W], a new tensor.
    """
    b, c, h, w = images.shape
    p = augment.pad
    rows = torch.arange(h).expand(b, h)
    cols = torch.arange(w).expand(b, w)
    if p:
        images = F.pad(images, (p, p, p, p))
        rows = rows + (random_bits(key, indices, SALT_ROW) % (2 * p + 1))[:, None]
        cols = cols + (random_bits(key, indices, SALT_COL) % (2 * p + 1))[:, None]
    if augment.flip:
        flipped = (random_bits(key, indices, SALT_FLIP) & 1).bool()
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    return images[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def _uniform(key: int, indices: torch.Tensor, salt: int) -> torch.Tensor:
    """[B] floats in [0, 1), fixed by (key, index, salt)."""
    return random_bits(key, indices, salt).double() / 2.0**32


def paint_noise(images: torch.Tensor, indices: torch.Tensor, key: int, augment: Augment) -> torch.Tensor:
    """Random erasing and background noise (`Augment.erase`, `.background_noise`) of a batch;
    arguments and result as `crop_flip`'s. A pixel's noise is fixed by (key, image index, pixel)."""
    b, c, h, w = images.shape
    pixel = torch.arange(c * h * w).view(1, c, h, w)
    noise = random_bits(key, indices.view(b, 1, 1, 1) * (c * h * w) + pixel, SALT_NOISE) % 256
    out = images.clone()
    if augment.background_noise:
        dark = images == 0
        out[dark] = (noise[dark] % (augment.background_noise + 1)).to(torch.uint8)
    if augment.erase > 0:
        area = (0.02 + 0.23 * _uniform(key, indices, SALT_AREA)) * h * w
        aspect = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * _uniform(key, indices, SALT_ASPECT))
        eh = (area * aspect).sqrt().round().clamp(1, h).long()
        ew = (area / aspect).sqrt().round().clamp(1, w).long()
        top = (_uniform(key, indices, SALT_TOP) * (h - eh + 1)).long()
        left = (_uniform(key, indices, SALT_LEFT) * (w - ew + 1)).long()
        rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
        inside = ((rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
                  & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1)))
        inside &= (_uniform(key, indices, SALT_ERASE) < augment.erase).view(b, 1, 1)
        inside = inside[:, None].expand(b, c, h, w)
        out[inside] = noise[inside].to(torch.uint8)
    return out


def to_model_input(images: torch.Tensor, stats: PixelStats, size: int | None = None,
                   interpolation: str = "bilinear") -> torch.Tensor:
    """uint8 [B,C,H,W] images as normalised float32, resized to `size` x `size` when given.

    Resizing uses `interpolation` ("bilinear" or "bicubic") with antialiasing (so shrinking
    does not alias) on the 0-255 values, as the image-file path (`kgnet.data.preprocess`) does.
    """
    x = images.float()
    if size is not None and (x.shape[-2], x.shape[-1]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode=interpolation, antialias=True, align_corners=False)
    mean = torch.tensor(stats.mean).view(1, -1, 1, 1) * 255.0
    scale = 1.0 / (torch.tensor(stats.std).view(1, -1, 1, 1) * 255.0)
    return (x - mean) * scale
