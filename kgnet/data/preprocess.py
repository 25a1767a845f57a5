"""How an image becomes model input: one definition, resolved once per run, stored in its releases.

Training, evaluation, `kgnet.predict` and `kgnet.explain --images` all prepare images through
the `Preprocessing` a run resolved at its start, which every release stores, so a model never
meets images prepared differently from those it was trained and scored on (a photo
centre-cropped for evaluation but squashed whole for prediction is a different input).

The fields are timm's data config (`timm.data.resolve_data_config`): input size,
interpolation, mean, std, crop_pct, crop_mode. The mean and std are the data set's pixel
statistics for a model trained from scratch, and the pretrained weights' own (timm's
pretrained config) with `model.pretrained`. Photos of any size (image folders) get timm's
evaluation crop, the centre `crop_pct` of the shorter side; data sets whose images share one
size (Fashion-MNIST, CIFAR) are used whole (`crop_pct` 1). Image files go through timm's own
evaluation transform (`timm.data.create_transform`: resize the shorter side to
size / crop_pct, centre-crop, scale to [0, 1], normalise); in-memory arrays are resized with
the same interpolation and normalised with the same numbers
(`kgnet.data.augment.to_model_input`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from kgnet.config import DataConfig, ModelConfig
from kgnet.data.stats import PIXEL_STATS, PixelStats
from kgnet.errors import KgnetError

#: Channels and side length of the data sets held in memory (their images share one size).
NATIVE_SHAPE = {"fashion_mnist": (1, 28), "cifar10": (3, 32), "cifar100": (3, 32)}
#: Side length of ImageFolder images when data.image_size is null: photos have no common
#: native size, and 64 px keeps CPU training of a ResNet-18 practical (set 128-224 on a GPU).
IMAGEFOLDER_DEFAULT_SIZE = 64
#: The evaluation crop of photos for a model trained from scratch (timm's default crop_pct).
DEFAULT_CROP_PCT = 0.875


@dataclass(frozen=True)
class Preprocessing:
    """What turns an image into model input (timm's data-config fields).

    Attributes:
        in_chans: Channels the model reads (1: images are read as greyscale).
        image_size: Side length of the (square) model input.
        mean: Per-channel mean subtracted from pixels scaled to [0, 1].
        std: Per-channel standard deviation they are divided by.
        interpolation: Resampling when resizing ("bilinear", "bicubic").
        crop_pct: The centre crop's share of the shorter side (1 = the whole image).
        crop_mode: timm's crop mode ("center").
    """

    in_chans: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    crop_mode: str = "center"

    @property
    def stats(self) -> PixelStats:
        return PixelStats(tuple(self.mean), tuple(self.std))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        return cls(**{**data, "mean": tuple(data["mean"]), "std": tuple(data["std"])})

    def data_config(self) -> dict[str, Any]:
        """The spec as timm's data config (what `timm.data.create_transform` takes)."""
        return {"input_size": (self.in_chans, self.image_size, self.image_size), "interpolation": self.interpolation,
                "mean": tuple(self.mean), "std": tuple(self.std), "crop_pct": self.crop_pct,
                "crop_mode": self.crop_mode}

    def transform(self) -> Callable:
        """timm's evaluation transform: a PIL image -> normalised float tensor [C, S, S]."""
        return _eval_transform(self)

    def unnormalise(self, image):
        """A normalised [C, H, W] tensor back in [0, 1] (for drawing)."""
        # deferred: this module is imported by `kgnet.train --help`; torch takes ~3 s
        import torch

        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        return (image.cpu().float() * std + mean).clamp(0, 1)


@functools.lru_cache(maxsize=8)
def _eval_transform(spec: Preprocessing) -> Callable:
    # deferred: timm takes ~7 s to import; only building a transform needs it
    from timm.data import create_transform

    return create_transform(**spec.data_config(), is_training=False)


def _pretrained_config(backbone: str) -> dict[str, Any]:
    """timm's data config of `backbone`'s default pretrained weights (ImageNet's when unknown)."""
    # deferred: timm takes ~7 s to import; only building a transform needs it
    from timm.data import resolve_data_config
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(backbone)  # None for hub names (hf-hub:...) and unknown tags
    return resolve_data_config({}, pretrained_cfg=cfg.to_dict() if cfg is not None else None)


def resolve_preprocessing(data: DataConfig, model: ModelConfig | None = None) -> Preprocessing:
    """The preprocessing a run with these settings trains with (see the module doc).

    Args:
        data: The data settings (`name`, `image_size`).
        model: The model settings; with `model.pretrained`, normalisation and interpolation
            come from timm's config of the pretrained weights. None = from scratch.
    """
    if data.name == "imagefolder":
        in_chans, size, crop_pct = 3, data.image_size or IMAGEFOLDER_DEFAULT_SIZE, DEFAULT_CROP_PCT
    else:
        in_chans, native = NATIVE_SHAPE[data.name]
        size, crop_pct = data.image_size or native, 1.0
    stats, interpolation = PIXEL_STATS[data.name], "bilinear"
    if model is not None and (model.pretrained or model.pretrained_file):
        timm_cfg = _pretrained_config(model.backbone)
        mean, std = tuple(timm_cfg["mean"]), tuple(timm_cfg["std"])
        if in_chans == 1:  # timm sums a pretrained stem over RGB for one channel: grey is their average
            mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
        stats, interpolation = PixelStats(mean, std), timm_cfg["interpolation"]
        if data.name == "imagefolder":
            crop_pct = float(timm_cfg["crop_pct"])
    return Preprocessing(in_chans=in_chans, image_size=size, mean=tuple(stats.mean), std=tuple(stats.std),
                         interpolation=interpolation, crop_pct=crop_pct)


#: PIL modes of 16-bit greyscale images (PNG and TIFF with 16 bits a sample).
WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def _eight_bit(image):
    """A 16-bit greyscale image scaled to 8 bits (value / 257, so 65535 -> 255).

    PIL's own `convert` clips such values at 255 instead, which turns almost every pixel white.
    """
    values = np.asarray(image, dtype=np.float32) / 257.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")


def open_image(path: str | Path, mode: str, draft: int | None = None):
    """Decode an image file fully as PIL `mode` ("L" or "RGB"), or a KgnetError naming it.

    16-bit greyscale files (PNG, TIFF) are scaled to 8 bits, not clipped (`_eight_bit`).

    Args:
        path: The file.
        mode: PIL mode to convert to.
        draft: Decode JPEGs at the smallest 1/2, 1/4, 1/8 scale still at least this many
            pixels on each side (much faster for large photos).

    Raises:
        KgnetError: Missing, not an image, truncated, damaged, or larger than PIL's
            decompression-bomb limit.
    """
    try:
        with Image.open(path) as image:
            if draft is not None:
                image.draft(mode, (draft, draft))
            if image.mode in WIDE_GREY_MODES:
                return _eight_bit(image).convert(mode)
            return image.convert(mode)  # convert() loads every pixel, so truncation shows here
    except FileNotFoundError:
        raise KgnetError(f"{path}: no such image file") from None
    except MemoryError:
        raise
    except Image.DecompressionBombError as err:
        raise KgnetError(f"{path}: too many pixels to decode safely ({err}); downscale the image") from None
    except Exception as err:  # PIL's plugins fail with OSError, SyntaxError, struct.error, ...
        raise KgnetError(f"{path}: not a readable image ({err}); re-save or replace the file") from None


def read_image(path: str | Path, spec: Preprocessing):
    """An image file as the normalised [C, S, S] tensor a model with `spec` reads."""
    least = math.ceil(spec.image_size / spec.crop_pct)
    return spec.transform()(open_image(path, "L" if spec.in_chans == 1 else "RGB", draft=least))
