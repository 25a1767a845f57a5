"""Does a map point at the object? The energy-based pointing game (Score-CAM, Wang et al.,
CVPR-W 2020): the share of a map's positive energy that falls on the object's pixels.

The paper kgnet implements argues that injected knowledge makes the model look at the object
rather than the background; this turns that into a number. It needs to know where the object
is: on data sets with a black background (Fashion-MNIST, MNIST) the object is every pixel that
is not zero. Two models' maps of the same images are compared paired, image by image, with a
95% t interval of the mean difference.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

#: A pixel belongs to the object when its [0, 1] value exceeds this: half an 8-bit level, so a
#: background pixel that normalising and unnormalising left at 1e-8 is still background.
OBJECT_THRESHOLD = 0.5 / 255


def object_masks(pixels: np.ndarray) -> np.ndarray:
    """[B, H, W] bool: the object's pixels of grayscale images in [0, 1] ([B, H, W]) with a black
    background."""
    return np.asarray(pixels) > OBJECT_THRESHOLD


def energy_on_object(saliency: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """[B]: the share of each map's positive energy on the object; NaN where a map has none (a
    zero map points nowhere)."""
    energy = np.clip(np.asarray(saliency, dtype=np.float64), 0, None).reshape(len(saliency), -1)
    total = energy.sum(1)
    on = (energy * masks.reshape(len(masks), -1)).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, on / total, np.nan)


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float | int | None]:
    """Mean of a - b over the images where both are defined, with its 95% t interval."""
    both = ~(np.isnan(a) | np.isnan(b))
    d = (np.asarray(a) - np.asarray(b))[both]
    n = int(len(d))
    if n == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "images": 0}
    mean = float(d.mean())
    if n < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "images": n}
    half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "images": n}
