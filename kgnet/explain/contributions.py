"""What a concept head says about an image: each concept's exact share of a class's score, and
where in the image the concept was found.

A concept head (`kgnet.models.heads.concept`) scores class k as

    s_k(x) = scale * sum_j A_kj c_j(x),     c_j(x) = max over tokens t of cos(W v_t, e_j),

so concept j adds exactly `scale * A_kj * c_j(x)` logit points to class k (its contribution):
removing it (c_j := 0) moves the score by exactly that and leaves every other term unchanged.
The region that activated a concept is its token score cos(W v_t, e_j) over the spatial tokens,
laid on the token grid and upsampled to the image (a ViT's class token is scored too, but has no
place on the grid).

A class's map (`ConceptReading.class_maps`) is exact in the same sense: each concept's
contribution is placed on the token where it was found, so the regions' shares of a class add
up to its score (plus, for a ViT, the share found on its class token, `off_grid`). Unlike
Grad-CAM it cannot vanish on a scale-invariant cosine head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kgnet.models.kgnet_model import KgnetModel


@dataclass
class ConceptContribution:
    """One concept as the explanation of a prediction names it."""

    position: int  # column of the class-concept matrix A
    label: str
    activation: float  # c_j(x)
    contribution: float  # logit points it adds to the predicted class
    runner_up: float  # logit points it adds to the runner-up class
    path: str  # the ontology path from the class it is shown for to the concept
    for_runner_up: bool = False  # one of the runner-up's own concepts (it adds nothing to the predicted class)


@dataclass
class ConceptReading:
    """A concept head's view of a batch of images."""

    activations: Tensor  # [B, M] c(x)
    scores: Tensor  # [B, T, M] cos of each spatial token with each concept
    grid: tuple[int, int]  # (h, w) of the T spatial tokens
    logits: Tensor  # [B, K]
    class_maps: Tensor  # [B, T, K] logit points each spatial token adds to each class
    off_grid: Tensor  # [B, K] logit points found on tokens with no place on the grid (a ViT's class token)


@torch.no_grad()
def read_concepts(model: KgnetModel, images: Tensor, batch_size: int = 64) -> ConceptReading:
    """Concept activations, per-token scores and logits of `images` under `model`'s concept head."""
    head = model.head
    nodes = model.node_embeddings()
    activations, scores, logits, maps, off_grid, grid = [], [], [], [], [], (1, 1)
    for start in range(0, len(images), batch_size):
        features = model.forward_features(images[start:start + batch_size])
        tokens, grid = model.backbone.to_tokens(features)
        c, per_token = head.concept_activations(tokens, nodes)
        prefix = per_token.shape[1] - grid[0] * grid[1]
        shares = head.token_contributions(per_token).float()
        activations.append(c.float())
        scores.append(per_token[:, prefix:].float())
        logits.append(head.logits_from_concepts(c).float())
        maps.append(shares[:, prefix:])
        off_grid.append(shares[:, :prefix].sum(1))
    return ConceptReading(torch.cat(activations), torch.cat(scores), grid, torch.cat(logits), torch.cat(maps),
                          torch.cat(off_grid))


def class_map_images(reading: ConceptReading, classes: Sequence[int], size: tuple[int, int],
                     mode: str = "nearest") -> np.ndarray:
    """[B, H, W]: each image's exact map of its class in `classes` (logit points per token,
    `class_maps`) laid on the token grid and resized to `size` ("nearest": each token's block
    keeps its value; "bilinear": smooth, for ordering pixels)."""
    maps = reading.class_maps[torch.arange(len(classes)), :, torch.as_tensor(list(classes))]  # [B, T]
    grid = maps.reshape(len(classes), 1, *reading.grid).float()
    smooth = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(grid, size=size, mode=mode, **smooth)[:, 0].cpu().numpy()


#: A figure lists a concept only when it adds at least this share of its class's summed positive
#: contributions: below it ("material +0.00" under a runner-up) a bar is noise shown as a reason.
MATTERS = 0.05


def top_contributions(model: KgnetModel, reading: ConceptReading, paths: dict[tuple[int, int], str], *,
                      predicted: int, runner_up: int,
                      min_share: float = 0.0) -> tuple[list[list[ConceptContribution]], Tensor, Tensor]:
    """Per image, the concepts that explain its prediction: those adding most to the predicted
    class, then the runner-up's strongest own concepts (why it lost), largest first in each.

    A concept with no contribution is never listed: the predicted class's concepts are those
    the ontology links to it (a nonzero contribution), the runner-up's own are those it links to
    the runner-up and not to the predicted class.

    Args:
        model: The concept-head model `reading` came from.
        reading: Its `read_concepts` of the images.
        paths: (class, concept column) -> ontology path text (`ontology_paths`); missing = "".
        predicted: At most this many concepts of the predicted class.
        runner_up: At most this many of the runner-up's own concepts.
        min_share: Leave out a concept adding less than this share of its class's summed
            positive contributions (`MATTERS` in the figures; 0 lists every linked concept).

    Returns:
        The concepts per image, the predicted class [B] and the runner-up class [B].
    """
    head, names = model.head, model.head.matrix.names
    with torch.no_grad():
        shares = head.contributions(reading.activations).float()  # [B, K, M]
    ranked = reading.logits.topk(min(2, reading.logits.shape[1]), dim=1).indices
    first, second = ranked[:, 0], ranked[:, -1]
    out = []
    for i in range(len(shares)):
        p, r = int(first[i]), int(second[i])
        mine, theirs = shares[i, p], shares[i, r]

        def concept(j: int, own: bool) -> ConceptContribution:
            return ConceptContribution(j, names[j], float(reading.activations[i, j]), float(mine[j]),
                                       float(theirs[j]), paths.get((r if own else p, j), ""), own)

        enough_mine = mine.abs() >= min_share * mine.clamp(min=0).sum()
        enough_theirs = theirs.abs() >= min_share * theirs.clamp(min=0).sum()
        adds = _largest(mine, (mine != 0) & enough_mine, predicted)
        lost = _largest(theirs, (mine == 0) & (theirs != 0) & enough_theirs, runner_up)  # none when r == p
        out.append([concept(j, False) for j in adds] + [concept(j, True) for j in lost])
    return out, first, second


def _largest(values: Tensor, where: Tensor, k: int) -> list[int]:
    """Up to `k` indices where `where` holds, largest value first."""
    candidates = torch.nonzero(where).flatten()
    return candidates[values[candidates].argsort(descending=True)[:k]].tolist()


def region_maps(scores: Tensor, grid: tuple[int, int], positions: list[int], size: tuple[int, int]) -> np.ndarray:
    """[len(positions), H, W]: one image's token scores [T, M] of each concept, upsampled to `size`."""
    maps = scores[:, positions].T.reshape(len(positions), 1, *grid).float()
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)[:, 0].cpu().numpy()
