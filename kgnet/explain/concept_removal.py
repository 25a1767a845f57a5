"""Whether a concept head's explanations are true: remove the concepts they name and watch the score.

Removing concept j sets its activation to zero (c_j := 0) and recomputes the logits with the
head's own `logits_from_concepts`: class k's logit moves by exactly j's contribution
`scale * A_kj * c_j`, and the other classes' by theirs. Three checks, over images:

Only the concepts the head scores with count (columns of A with a non-zero weight; a class's own
node has none when `concept_head.self_weight` is 0): removing any other changes nothing.

- removal: the fall of the predicted class's probability when its top-contributing concept is
  removed, against a concept drawn uniformly from the others (the keys `top_drop_mean`,
  `random_drop_mean`, `fraction_top_greater` are those of the attention-masking check of
  `kgnet.explain.concepts`, so reports compare);
- deletion curve: concepts removed one by one in the order of their contribution to the
  predicted class (ties in a fixed random order), the predicted class's probability after each;
  its AUC over the fraction of concepts removed (0..1; lower = the named concepts carry the
  prediction), next to the same curve for a random order;
- concept precision: of each correctly classified image's 3 most activated ontology concepts
  (the class nodes' own columns left out), the fraction the ontology links to its class
  (A's hop distance >= 1), next to chance (the linked share of all ontology concepts). The same
  fraction for the top 3 by contribution (`contribution_precision`) is near 1 by construction:
  a concept the ontology does not link to class k has A_kj = 0 and contributes nothing to it.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import auc
from torch import Tensor

from kgnet.explain.concepts import summarise_concept_faithfulness
from kgnet.models.heads.concept import ConceptHead

#: Concepts per image that concept precision checks.
PRECISION_TOP = 3
_TIE_SEED = 0


def _probability(head: ConceptHead, activations: Tensor, classes: Tensor) -> Tensor:
    """[..., ] probability of `classes` from activations [..., M] (classes broadcast on the front axes)."""
    p = head.logits_from_concepts(activations).float().softmax(dim=-1)
    return p.gather(-1, classes[..., None].expand(*p.shape[:-1], 1))[..., 0]


@torch.no_grad()
def concept_removal(head: ConceptHead, activations: Tensor, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Removal and deletion-curve results per image (see the module doc).

    Args:
        head: The concept head.
        activations: c(x) [N, M] of the images (`KgnetOutput.concepts`).
        seed: Fixes the random concept and the random order.

    Returns:
        Per-image arrays: `predicted`, `probability` of it, `top_drop` and `random_drop`, `top`
        and `random` (the removed columns), `deletion_curve` and `random_deletion_curve`
        [N, m + 1] (probability after 0..m removals of the m concepts the head scores with),
        and their AUCs `deletion` and `random_deletion`.
    """
    c = activations.float()
    n = len(c)
    columns = (head.weights > 0).any(dim=0).nonzero()[:, 0]  # the concepts some class is scored with
    m = len(columns)
    if m < 2:
        raise ValueError("concept removal compares two concepts: the head scores classes with fewer")
    rng = np.random.default_rng(seed)
    logits = head.logits_from_concepts(c).float()
    predicted = logits.argmax(dim=1)
    probability = logits.softmax(dim=1).gather(1, predicted[:, None])[:, 0]
    shares = head.contributions(c).float()[torch.arange(n), predicted][:, columns]  # [N, m] to the predicted class
    top = shares.argmax(dim=1)
    random = torch.from_numpy(rng.integers(0, m - 1, size=n)).to(top.device)
    random = random + (random >= top)  # uniform among the other m - 1

    def without(local: Tensor) -> Tensor:
        removed = c.clone()
        removed[torch.arange(n), columns[local]] = 0.0
        return _probability(head, removed, predicted)

    tie_break = torch.from_numpy(np.random.default_rng(_TIE_SEED).permutation(m)).to(c.device)
    # sort the tie-break order by contribution, stably: tied concepts keep the fixed random order
    order = tie_break[torch.sort(shares[:, tie_break], dim=1, descending=True, stable=True).indices]
    random_order = torch.from_numpy(np.stack([rng.permutation(m) for _ in range(n)]).reshape(n, m)).to(c.device)
    fractions = np.linspace(0.0, 1.0, m + 1)
    curves = {}
    steps = torch.arange(m + 1, device=c.device)
    for name, ranking in (("deletion", order), ("random_deletion", random_order)):
        rank = torch.empty_like(ranking)  # rank[i, j]: when image i's concept j is removed
        rank.scatter_(1, ranking, torch.arange(m, device=c.device).expand(n, m).contiguous())
        keep = (rank[:, None, :] >= steps[None, :, None]).float()  # [N, m + 1, m]: still there after s removals
        reduced = c[:, None, :].repeat(1, m + 1, 1)
        reduced[:, :, columns] = reduced[:, :, columns] * keep
        curves[name] = _probability(head, reduced, predicted[:, None].expand(n, m + 1)).cpu().numpy()
    p = probability.cpu().numpy()
    return {
        "predicted": predicted.cpu().numpy(),
        "probability": p,
        "top_drop": p - without(top).cpu().numpy(),
        "random_drop": p - without(random).cpu().numpy(),
        "top": columns[top].cpu().numpy(),
        "random": columns[random].cpu().numpy(),
        "deletion_curve": curves["deletion"],
        "random_deletion_curve": curves["random_deletion"],
        "deletion": np.array([auc(fractions, y) for y in curves["deletion"]], np.float32),
        "random_deletion": np.array([auc(fractions, y) for y in curves["random_deletion"]], np.float32),
    }


@torch.no_grad()
def concept_precision(head: ConceptHead, activations: Tensor, labels: Tensor, distance: Tensor,
                      ontology_columns: Tensor, top: int = PRECISION_TOP) -> dict[str, float | int]:
    """Concept precision of the correctly classified images (see the module doc).

    Args:
        head: The concept head.
        activations: c(x) [N, M].
        labels: True classes [N].
        distance: [K, M] hops from each class to each concept (-1: not linked).
        ontology_columns: Bool [M], the concepts that count (not a class's own node).
        top: Concepts per image.

    Returns:
        `concept_precision` (top by activation), `concept_precision_chance`,
        `contribution_precision` (top by contribution), and `images` (correct ones counted).
    """
    c = activations.float()
    correct = head.logits_from_concepts(c).argmax(dim=1) == labels
    c, classes = c[correct], labels[correct]
    linked = distance[classes] >= 1  # [N, M]
    columns = ontology_columns.nonzero()[:, 0]
    if len(c) == 0 or len(columns) == 0:
        return {"images": int(len(c)), "concept_precision": float("nan"),
                "concept_precision_chance": float("nan"), "contribution_precision": float("nan")}
    count = min(top, len(columns))
    by_activation = columns[c[:, columns].topk(count, dim=1).indices]
    shares = head.contributions(c).float()[torch.arange(len(c)), classes]
    by_contribution = shares.topk(min(top, shares.shape[1]), dim=1).indices
    return {
        "images": int(len(c)),
        "concept_precision": float(linked.gather(1, by_activation).float().mean()),
        "concept_precision_chance": float(linked[:, columns].float().mean()),
        "contribution_precision": float(linked.gather(1, by_contribution).float().mean()),
    }


def summarise_concept_removal(result: dict[str, np.ndarray]) -> dict[str, float | int | list[float]]:
    """Mean +- std of both drops, the fraction where the top concept's is larger, the deletion AUCs."""
    return {
        **summarise_concept_faithfulness(result),  # the keys the attention check reports too
        "deletion_auc": {"mean": float(result["deletion"].mean()), "std": float(result["deletion"].std())},
        "random_deletion_auc": {"mean": float(result["random_deletion"].mean()),
                                "std": float(result["random_deletion"].std())},
        "mean_deletion_curve": [round(float(v), 5) for v in result["deletion_curve"].mean(axis=0)],
        "mean_random_deletion_curve": [round(float(v), 5) for v in result["random_deletion_curve"].mean(axis=0)],
    }
