"""ROAD: RemOve And Debias (Rong et al., ICML 2022), pytorch-grad-cam's own faithfulness metric.

Deletion and insertion (`kgnet.explain.faithfulness`) set removed pixels to a fill, and the
shape of the hole can itself tell the model something. ROAD fills them by noisy linear
imputation from their neighbours instead, so what is left of the image is all the model sees.
`pytorch_grad_cam.metrics.road.ROADCombined` is used as it is: at each percentile p it removes
the most relevant (100 - p)% of the pixels (MoRF) and, separately, the least relevant (100 - p)%
(LeRF), and scores (LeRF change - MoRF change) / 2 of the explained class's probability,
averaged over the percentiles. Higher is better: the pixels the map ranks first are the ones the
model needs. The percentile cut is the library's (`mask < threshold`): pixels tied with the
threshold go together, so a map with flat regions removes more than its share.

Each percentile and order costs two model passes over the images (the library scores the
unperturbed batch each time) and one small sparse solve per image (a few milliseconds at
28 x 28, on the CPU), so five percentiles cost about what deletion/insertion with `--steps 8`
does. The imputation's noise comes from a seeded generator: the same call gives the same numbers.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from torch import Tensor, nn

from kgnet.progress import progress as show_progress

#: The percentiles ROAD averages over (the library's default is every tenth; these halve the cost).
PERCENTILES = (10, 30, 50, 70, 90)


def road_scores(
    model: nn.Module | Callable[[Tensor], Tensor],
    images: Tensor,
    saliency: np.ndarray,
    classes: Sequence[int],
    *,
    percentiles: Sequence[int] = PERCENTILES,
    batch_size: int = 64,
    seed: int = 0,
    progress: str | None = None,
) -> np.ndarray:
    """[B]: the combined ROAD score of each map for the probability of its class.

    Args:
        model: Images [B, C, H, W] -> logits [B, K] (wrap a kgnet model in `LogitsOnly`).
        images: Normalised images [B, C, H, W], any number of channels.
        saliency: Maps [B, H, W] (higher = more important).
        classes: The class whose probability is tracked, per image.
        percentiles: Where the map is cut (see the module doc).
        batch_size: Images per model call.
        seed: Seed of the imputation noise.
        progress: A progress display (`kgnet.progress`) with this description; None = silent.
    """
    saliency = np.asarray(saliency, dtype=np.float32)
    if saliency.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(f"saliency {saliency.shape} does not match images {tuple(images.shape)}")
    metric = ROADCombined(percentiles=list(percentiles))
    scores = []
    bar = show_progress(range(0, len(images), batch_size), desc=progress or "", unit="batch",
                        total=math.ceil(len(images) / batch_size), enabled=progress is not None)
    with torch.random.fork_rng(devices=[]):  # the imputer draws its noise from torch's CPU generator
        torch.manual_seed(seed)
        for start in bar:
            end = start + batch_size
            targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in classes[start:end]]
            scores.append(np.asarray(metric(images[start:end], saliency[start:end], targets, model), np.float32))
    return np.concatenate(scores) if scores else np.zeros(0, np.float32)
