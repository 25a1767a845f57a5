"""The training losses: the alignment of stage 1 (the auxiliary term of stage 2) and the step loss.

InfoNCE over classes: each image embedding should be closer (cosine, divided by a
temperature) to the embedding of its own class node than to every other class node. With the
class nodes as the "keys" this is a cross-entropy over cosine similarities, the same form as
CLIP's image-to-text loss with one text per class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def class_alignment_loss(
    image_embeddings: Tensor,
    class_embeddings: Tensor,
    targets: Tensor,
    *,
    temperature: float = 0.1,
    allowed_classes: Tensor | None = None,
) -> Tensor:
    """InfoNCE between image embeddings [B, D] and class node embeddings [K, D].

    Args:
        image_embeddings: one embedding per image.
        class_embeddings: one embedding per class node, in label order.
        targets: [B] label of each image.
        temperature: softmax temperature on cosine similarities.
        allowed_classes: optional [K] bool mask; classes outside it (held out for zero-shot)
            are not offered as negatives, so training never sees them.

    Returns:
        The mean loss over the batch (a scalar).
    """
    similarity = F.normalize(image_embeddings, dim=-1) @ F.normalize(class_embeddings, dim=-1).T
    logits = similarity / temperature
    if allowed_classes is not None:
        logits = logits.masked_fill(~allowed_classes.to(logits.device), torch.finfo(logits.dtype).min)
    return F.cross_entropy(logits, targets)


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


def training_loss(
    logits: Tensor,
    image_embeddings: Tensor,
    class_embeddings: Tensor | None,
    targets: Tensor,
    *,
    seen: Tensor,
    stage: int,
    temperature: float = 0.1,
    align_weight: float = 0.1,
    logit_adjustment: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The loss of one training step, and its parts.

    Classes outside `seen` (held out for zero-shot evaluation) take no part in training: their
    logits are masked before the cross-entropy (they are never a choice) and they are no
    negatives of the alignment, so nothing about them is learned from images.

    Args:
        logits: [B, K] the model's logits.
        image_embeddings: [B, D] the image embeddings z.
        class_embeddings: [K, D] the class nodes' embeddings; None for the baseline (no
            alignment term).
        targets: [B] labels (all of seen classes).
        seen: [K] bool, the classes trained on.
        stage: 1 = alignment only, 2 = cross-entropy plus `align_weight` times the alignment.
        temperature: Temperature of the alignment.
        align_weight: Weight of the alignment in stage 2.
        logit_adjustment: [K] added to the logits inside the cross-entropy only (tau times the
            log of each class's share of the training images: the logit-adjusted loss of Menon
            et al., ICLR 2021), so a class with few images is not out-voted by its prior; the
            model's own logits, which predictions read, stay unadjusted. None = plain
            cross-entropy (also what equal class counts amount to).

    Returns:
        The loss, the cross-entropy, the alignment term (0 without class embeddings) and the
        masked logits (what training accuracy is counted on).
    """
    masked = logits.masked_fill(~seen, torch.finfo(logits.dtype).min)
    adjusted = masked if logit_adjustment is None else (logits + logit_adjustment).masked_fill(
        ~seen, torch.finfo(logits.dtype).min)
    ce = F.cross_entropy(adjusted, targets)
    align = (class_alignment_loss(image_embeddings, class_embeddings, targets, temperature=temperature,
                                  allowed_classes=seen)
             if class_embeddings is not None else ce.new_zeros(()))
    loss = align if stage == 1 else ce + align_weight * align
    return loss, ce, align, masked
