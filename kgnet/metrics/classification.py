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
