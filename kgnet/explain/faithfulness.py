"""Deletion and insertion AUC of saliency maps (Petsiuk et al., RISE, BMVC 2018).

Deletion removes the pixels of an image in saliency order, most salient first, a fixed fraction
per step, and records the probability of the explained class after each step; insertion starts
from an image with every pixel removed and reveals them in the same order. The scores are the
areas under these curves over the fraction of pixels changed (0..1): a faithful map makes the
probability collapse early under deletion (low AUC) and recover early under insertion (high
AUC).

What is taken from libraries and what is written here:

- pytorch-grad-cam's `metrics.perturbation_confidence.PerturbationConfidenceMetric` runs the
  model on the perturbed batch and reads the target score, here
  `ClassifierOutputSoftmaxTarget` (the class probability); scikit-learn's `metrics.auc` takes
  the area. pytorch-grad-cam has no deletion/insertion curve itself: its ROAD and
  `RemoveMostRelevantFirst` cut the map at a percentile threshold (`mask < threshold`), so
  every pixel tied with the threshold goes at once. Grad-CAM maps are full of ties (the ReLU
  zeros a whole region, a 2x2 or 7x7 map is upsampled), which would turn "a fixed number of
  steps" into a few uneven jumps. Quantus 0.6 has deletion (`PixelFlipping`) but no insertion,
  and would add a large dependency for one of the two curves. So the ordering and the pixel
  replacement (`SaliencyOrderPerturbation`) are written here: a strict order (ties broken by a
  fixed random permutation, the same at every step), exactly round(f * H * W) pixels changed at
  fraction f.
- A removed pixel takes the value of the `fill` image. `"mean"` (the default) is the
  normalised zero: every channel at the data set's mean, an image that carries no information
  relative to the training data. `"blur"` is RISE's insertion canvas, a Gaussian blur of the
  image (sigma = side / 8). Both curves use the same fill. At 28 px the blur keeps the
  silhouette a Fashion-MNIST class is recognised by, so insertion from it starts almost at the
  end: hence "mean" by default.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF
from pytorch_grad_cam.metrics.perturbation_confidence import PerturbationConfidenceMetric
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from sklearn.metrics import auc
from torch import Tensor, nn

from kgnet.explain import FILLS, STEPS
from kgnet.progress import progress as show_progress

_TIE_SEED = 0


def fill_image(image: Tensor, fill: str) -> Tensor:
    """The image [C, H, W] every pixel removed: the normalised zero, or a strong blur."""
    if fill == "mean":
        return torch.zeros_like(image)
    if fill == "blur":
        side = min(image.shape[-2:])
        sigma = max(side / 8, 0.5)
        kernel = min(2 * math.ceil(3 * sigma) + 1, 2 * ((side - 1) // 2) + 1)  # reflection pad < side
        return TF.gaussian_blur(image, [kernel, kernel], [sigma, sigma])
    raise ValueError(f"fill must be one of {FILLS}, not {fill!r}")


def pixel_order(saliency: np.ndarray) -> np.ndarray:
    """Flat pixel indices, most salient first; ties in a fixed random order."""
    flat = np.asarray(saliency, dtype=np.float64).ravel()
    tie_break = np.random.default_rng(_TIE_SEED).permutation(flat.size)
    return np.lexsort((tie_break, -flat))


class SaliencyOrderPerturbation:
    """pytorch-grad-cam perturbation: change the first round(fraction * H * W) pixels in order.

    `deletion`: those pixels take the fill value; `insertion`: every other pixel does.
    """

    def __init__(self, fraction: float, mode: str, fill: str = "mean") -> None:
        if mode not in ("deletion", "insertion"):
            raise ValueError(f"mode must be deletion or insertion, not {mode!r}")
        self.fraction, self.mode, self.fill = fraction, mode, fill

    def __call__(self, image: Tensor, saliency: Tensor) -> Tensor:
        h, w = image.shape[-2:]
        changed = torch.zeros(h * w, dtype=torch.bool)
        changed[torch.from_numpy(pixel_order(saliency.numpy())[: round(self.fraction * h * w)])] = True
        changed = changed.view(h, w)
        if self.mode == "insertion":
            changed = ~changed
        return torch.where(changed, fill_image(image, self.fill), image)


def deletion_insertion(
    model: nn.Module | Callable[[Tensor], Tensor],
    images: Tensor,
    saliency: np.ndarray,
    classes: Sequence[int],
    *,
    steps: int = STEPS,
    fill: str = "mean",
    batch_size: int = 64,
    progress: str | None = None,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves and AUCs of `saliency` maps for `classes`.

    Args:
        model: Images [B, C, H, W] -> logits [B, K] (wrap a kgnet model in `LogitsOnly`).
        images: Normalised images [B, C, H, W].
        saliency: Maps [B, H, W] (higher = more important).
        classes: The class whose probability is tracked, per image.
        steps: Points on each curve beyond the first (fraction changed = 0, 1/steps, ..., 1).
        fill: What removed pixels become: "mean" or "blur" (see the module doc).
        batch_size: Images per model call.
        progress: A progress display (`kgnet.progress`) with this description; None = silent.

    Returns:
        `deletion` and `insertion` AUCs [B] in [0, 1], and their curves [B, steps + 1].
    """
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, not {fill!r}")
    saliency = np.asarray(saliency, dtype=np.float32)
    if saliency.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(f"saliency {saliency.shape} does not match images {tuple(images.shape)}")
    fractions = np.linspace(0.0, 1.0, steps + 1)
    curves = {mode: np.zeros((len(images), steps + 1), np.float32) for mode in ("deletion", "insertion")}
    bar = show_progress(total=2 * len(fractions) * math.ceil(len(images) / batch_size), desc=progress or "",
                        unit="batch", enabled=progress is not None)
    for mode, curve in curves.items():
        for s, fraction in enumerate(fractions):
            metric = PerturbationConfidenceMetric(SaliencyOrderPerturbation(float(fraction), mode, fill))
            for start in range(0, len(images), batch_size):
                end = start + batch_size
                targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in classes[start:end]]
                curve[start:end, s] = metric(images[start:end], saliency[start:end], targets, model,
                                             return_diff=False)
                bar.update()
    bar.close()
    return {
        "deletion": np.array([auc(fractions, y) for y in curves["deletion"]], np.float32),
        "insertion": np.array([auc(fractions, y) for y in curves["insertion"]], np.float32),
        "deletion_curve": curves["deletion"],
        "insertion_curve": curves["insertion"],
    }


def mean_std(values: np.ndarray) -> dict[str, float]:
    """{"mean": ..., "std": ...} of per-image scores (population std)."""
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std())}
