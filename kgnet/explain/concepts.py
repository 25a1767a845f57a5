"""What the knowledge attention says about an image: its top concepts, where they were attended,
and whether the prediction really depends on them.

The attention read is the last infusion block's, `KgnetOutput.attention` [B, heads, T, t]
(T visual tokens over t knowledge tokens). A concept's weight for an image is its attention
averaged over heads and visual tokens (what `python -m kgnet.predict` prints); its map is the
head-averaged attention of each visual token to it, laid on `token_grid` and upsampled to the
image.

Concept faithfulness masks a knowledge token out of the keys of every infusion block
(`kgnet.models.infusion.masking_keys`) and measures how much the probability of the predicted
class falls: if the attention names concepts the prediction uses, masking the most-attended one
hurts more than masking a random one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kgnet.models.infusion import InfusionBlock, masking_keys
from kgnet.models.kgnet_model import KgnetModel


@dataclass
class Concept:
    """One knowledge token as an explanation names it."""

    position: int  # index along the attention's last axis
    label: str
    weight: float  # mean attention over heads and visual tokens


def concept_weights(attention: Tensor) -> Tensor:
    """[B, t] each knowledge token's attention, averaged over heads and visual tokens."""
    return attention.float().mean(dim=(1, 2))


def top_concepts(attention: Tensor, labels: Sequence[str], k: int) -> list[list[Concept]]:
    """The `k` most-attended concepts of each image, strongest first."""
    weights = concept_weights(attention)
    top = weights.topk(min(k, weights.shape[1]), dim=1)
    return [[Concept(int(j), labels[int(j)], float(w)) for w, j in zip(values.tolist(), indices.tolist())]
            for values, indices in zip(top.values, top.indices)]


def concept_maps(attention: Tensor, grid: tuple[int, int], positions: Sequence[int],
                 size: tuple[int, int]) -> np.ndarray:
    """[len(positions), H, W]: one image's head-averaged attention to each concept, upsampled.

    Args:
        attention: One image's attention [heads, T, t].
        grid: (h, w) of the T visual tokens.
        positions: Knowledge-token positions to map.
        size: (H, W) of the image.
    """
    per_token = attention.float().mean(dim=0)[:, list(positions)]  # [T, k]
    maps = per_token.T.reshape(len(positions), 1, *grid)
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)[:, 0].cpu().numpy()


def infusion_blocks(model: KgnetModel) -> list[InfusionBlock]:
    """Every infusion block of a knowledge model (last stage and earlier stages)."""
    if not model.infusion.blocks:
        raise ValueError("the model has no infusion block: no knowledge tokens to mask")
    return model.infusion.blocks


@torch.no_grad()
def concept_faithfulness(model: KgnetModel, images: Tensor, *, seed: int = 0,
                         batch_size: int = 64) -> dict[str, np.ndarray]:
    """Fall of the predicted class's probability when the top / a random concept is masked.

    Per image: the predicted class c and its probability p; the most-attended knowledge token
    and one drawn uniformly from the others (`seed` fixes the draw); the model is rerun with
    each masked from every infusion block's keys.

    Returns:
        Per-image arrays: `probability` p, `top_drop` and `random_drop` (p minus the masked
        probability of c), `top` and `random` (the masked token positions).
    """
    blocks = infusion_blocks(model)
    rng = np.random.default_rng(seed)
    probability, predicted, top = [], [], []
    for start in range(0, len(images), batch_size):
        out = model(images[start:start + batch_size])
        p = out.logits.float().softmax(dim=1)
        c = p.argmax(dim=1)
        probability.append(p.gather(1, c[:, None])[:, 0])
        predicted.append(c)
        top.append(concept_weights(out.attention).argmax(dim=1))
    probability_t, predicted_t, top_t = torch.cat(probability), torch.cat(predicted), torch.cat(top)
    tokens = len(model.graph_encoder.token_index)
    if tokens < 2:
        raise ValueError("concept faithfulness compares two concepts: the model has one knowledge token")
    top_np = top_t.cpu().numpy()
    # a uniform draw among the t - 1 other tokens: draw from 0..t-2 and skip the top one
    random_np = rng.integers(0, tokens - 1, size=len(top_np))
    random_np = random_np + (random_np >= top_np)

    def masked_probability(positions: np.ndarray) -> Tensor:
        result = torch.empty_like(probability_t)
        for node in np.unique(positions):  # one masked forward per distinct node
            index = torch.from_numpy(np.flatnonzero(positions == node)).to(images.device)
            with masking_keys(blocks, [int(node)]):
                for chunk in index.split(batch_size):
                    p = model(images[chunk]).logits.float().softmax(dim=1)
                    result[chunk] = p.gather(1, predicted_t[chunk, None])[:, 0]
        return result

    p = probability_t.cpu().numpy()
    return {
        "probability": p,
        "top_drop": p - masked_probability(top_np).cpu().numpy(),
        "random_drop": p - masked_probability(random_np).cpu().numpy(),
        "top": top_np,
        "random": random_np,
    }


def summarise_concept_faithfulness(result: dict[str, np.ndarray]) -> dict[str, float | int]:
    """Mean +- std of both drops and the fraction of images where the top concept's is larger."""
    top, rand = result["top_drop"], result["random_drop"]
    return {
        "images": int(len(top)),
        "top_drop_mean": float(np.mean(top)), "top_drop_std": float(np.std(top)),
        "random_drop_mean": float(np.mean(rand)), "random_drop_std": float(np.std(rand)),
        "fraction_top_greater": float(np.mean(top > rand)),
    }
