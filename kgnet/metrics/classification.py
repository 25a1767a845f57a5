"""Accuracy numbers every run reports: top-1, top-k, per class, and zero-shot top-1."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def topk_accuracy(logits: Tensor, targets: Tensor, k: int = 1) -> float:
    """Fraction of rows whose target is among the k highest logits (k capped at the class count)."""
    if len(targets) == 0:
        return float("nan")
    k = min(k, logits.shape[1])
    hits = (logits.topk(k, dim=1).indices == targets[:, None]).any(dim=1)
    return hits.float().mean().item()


def per_class_accuracy(logits: Tensor, targets: Tensor, class_names: Sequence[str]) -> dict[str, float]:
    """Class name -> top-1 accuracy on that class's images (classes without images are left out)."""
    predictions = logits.argmax(dim=1)
    result = {}
    for index, name in enumerate(class_names):
        mask = targets == index
        if mask.any():
            result[name] = (predictions[mask] == index).float().mean().item()
    return result


def restricted_top1(logits: Tensor, targets: Tensor, classes: Sequence[int]) -> float:
    """Top-1 when choosing only among `classes`, on the images of those classes (zero-shot)."""
    allowed = torch.as_tensor(list(classes), dtype=torch.long)
    mask = torch.isin(targets, allowed)
    if not mask.any():
        return float("nan")
    choice = allowed[logits[mask][:, allowed].argmax(dim=1)]
    return (choice == targets[mask]).float().mean().item()


def generalized_zero_shot(logits: Tensor, targets: Tensor, seen: Sequence[int], unseen: Sequence[int]) -> dict[str, float]:
    """Generalized zero-shot accuracy (Xian et al., 2018): predictions among ALL classes.

    `gzsl_seen` / `gzsl_unseen` are per-class mean top-1 accuracies over the seen / unseen
    classes' images; `gzsl_harmonic` is their harmonic mean (0 when either is 0).
    """
    predictions = logits.argmax(dim=1)

    def mean_class_accuracy(classes: Sequence[int]) -> float:
        accuracies = [(predictions[targets == c] == c).float().mean().item() for c in classes if (targets == c).any()]
        return sum(accuracies) / len(accuracies) if accuracies else float("nan")

    s, u = mean_class_accuracy(seen), mean_class_accuracy(unseen)
    harmonic = 2 * s * u / (s + u) if s + u > 0 else 0.0
    return {"gzsl_seen": s, "gzsl_unseen": u, "gzsl_harmonic": harmonic}
