"""The training loss every variant shares: the cross-entropy over the seen classes, logit-adjusted
where classes have different numbers of training images. A head adds its own terms (`Head.loss`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def unequal_class_counts(labels: Tensor, num_classes: int | None = None) -> Tensor | None:
    """Images per class of `labels`, or None when every class with images has as many (where
    neither imbalance correction changes anything)."""
    counts = torch.bincount(labels.long(), minlength=num_classes or 0)
    present = counts[counts > 0]
    return None if len(present) == 0 or present.min() == present.max() else counts


def logit_adjustment(train_labels: Tensor, num_classes: int, tau: float) -> Tensor | None:
    """`tau * log(prior)` per class from the training labels (classes without images get 0:
    they are masked out of the loss); None when every class with images has as many, where
    the adjustment is a constant shift that changes nothing."""
    counts = unequal_class_counts(train_labels, num_classes)
    if tau == 0 or counts is None:
        return None
    present = counts > 0
    prior = counts.float() / counts.sum()
    return torch.where(present, tau * prior.clamp_min(1e-12).log(), torch.zeros_like(prior))


def cross_entropy(logits: Tensor, targets: Tensor, *, seen: Tensor,
                  logit_adjustment: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The cross-entropy of one training step, and the masked logits (what training accuracy counts).

    Classes outside `seen` (held out for zero-shot evaluation) take no part in training: their
    logits are masked before the cross-entropy, so they are never a choice. A head's own terms
    (the prototype head's alignment) come from the head (`Head.loss`).

    Args:
        logits: [B, K] the model's logits.
        targets: [B] labels (all of seen classes).
        seen: [K] bool, the classes trained on.
        logit_adjustment: [K] added to the logits inside the cross-entropy only (tau times the
            log of each class's share of the training images: the logit-adjusted loss of Menon
            et al., ICLR 2021), so a class with few images is not out-voted by its prior; the
            model's own logits, which predictions read, stay unadjusted. None = plain
            cross-entropy (also what equal class counts amount to).
    """
    masked = logits.masked_fill(~seen, torch.finfo(logits.dtype).min)
    adjusted = masked if logit_adjustment is None else (logits + logit_adjustment).masked_fill(
        ~seen, torch.finfo(logits.dtype).min)
    return F.cross_entropy(adjusted, targets), masked
